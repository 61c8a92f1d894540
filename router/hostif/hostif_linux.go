// Package hostif is the kernel side of the router's host interfaces
// (router/hostif.go; config: [[network]] host = "NAME"): it implements
// router.HostSystem on Linux.
//
//   - Open creates the TAP with the tap driver (no virtio header: the kernel
//     segments and checksums what it sends, the host's traffic is control
//     plane), gives the kernel device the network's MAC and MTU, turns IPv6
//     off on it (vrouter does not route IPv6 yet, and the kernel would
//     otherwise send router solicitations and MLD reports through it) and
//     sets it up. A device of that name must not exist: vrouter never takes
//     over someone else's interface. Closing the port removes the device.
//   - AddAddr and DelAddr are RTM_NEWADDR (replace; broadcast computed for
//     prefixes up to /30) and RTM_DELADDR.
//   - Watch subscribes to RTNLGRP_IPV4_IFADDR, then dumps the IPv4 addresses
//     and reports them after a Reset event; events then follow in batches
//     (whatever is queued when one is read). A lost subscription (socket
//     buffer overrun) is renewed the same way after 100 ms.
//   - Isolate keeps the kernel's own stack off the devices the router reads:
//     with host interfaces the kernel holds the router's addresses, and a
//     frame for them arriving on a port's device would otherwise be taken
//     by the kernel there too (Linux accepts packets for any local address
//     on any interface, and answers ARP for them). One nftables table,
//     `netdev vrouter_NAME`, has a base chain per device on the ingress hook
//     with policy drop: the AF_PACKET socket still sees every frame (taps
//     run before the ingress hook), the kernel's IP and ARP stacks see none.
//     It is written with `nft -f -` in one transaction and deleted by
//     Isolate(nil). AF_XDP ports need it not (their frames never reach the
//     stack) but it does them no harm.
//
// Everything happens in one network namespace, Options.NS (default: the
// namespace the process runs in).
package hostif

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"vrouter/packet"
	"vrouter/router"
	"vrouter/router/port"
	"vrouter/router/port/tap"
)

// Options configure a System.
type Options struct {
	// Name names the nftables table of Isolate ("vrouter_" + Name, other
	// characters than letters, digits and '_' replaced by '_'): the
	// router's name.
	Name string
	// NS is the network namespace to work in; none (the zero value or -1)
	// means the process's own.
	NS     netns.NsHandle
	Logger *slog.Logger
}

// System is router.HostSystem on Linux.
type System struct {
	opts  Options
	h     *netlink.Handle
	ns    netns.NsHandle // the namespace, or -1
	table string
}

var _ router.HostSystem = (*System)(nil)

// New returns a System for the namespace of opts.
func New(opts Options) (*System, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ns := opts.NS
	if ns == 0 {
		ns = -1
	}
	var h *netlink.Handle
	var err error
	if ns.IsOpen() {
		h, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	} else {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	}
	if err != nil {
		return nil, fmt.Errorf("host interfaces: netlink: %w", err)
	}
	var tb strings.Builder
	tb.WriteString("vrouter_")
	for _, c := range opts.Name {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' {
			tb.WriteRune(c)
		} else {
			tb.WriteByte('_')
		}
	}
	return &System{opts: opts, h: h, ns: ns, table: tb.String()}, nil
}

// Table is the name of the nftables table Isolate writes (family netdev).
func (s *System) Table() string { return s.table }

// in runs f on an OS thread in the System's namespace (things that act on
// the calling thread's namespace: /dev/net/tun, /proc/sys/net, fork).
func (s *System) in(f func() error) error {
	if !s.ns.IsOpen() {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(s.ns); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		err = f()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		} // else: the thread dies with the goroutine, as it must
		errc <- err
	}()
	return <-errc
}

// Open implements router.HostSystem.
func (s *System) Open(dev string, mac packet.MAC, mtu int) (port.Port, int, error) {
	if _, err := s.h.LinkByName(dev); err == nil {
		return nil, 0, fmt.Errorf("a device named %q exists already (vrouter creates the host interface itself; remove it or pick another name)", dev)
	}
	var p *tap.Port
	err := s.in(func() error {
		var err error
		p, err = tap.Open("host:"+dev, dev, tap.Options{MTU: mtu})
		if err != nil {
			return err
		}
		// IPv6 off before the device is up (no DAD, RS, MLD); best effort.
		_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+dev+"/disable_ipv6", []byte("1"), 0)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	link, err := s.h.LinkByName(dev)
	if err == nil {
		err = s.setMAC(link, mac)
	}
	if err != nil {
		p.Close()
		return nil, 0, err
	}
	return p, link.Attrs().Index, nil
}

// setMAC gives the device mac; a device that refuses while up is taken
// down for it.
func (s *System) setMAC(link netlink.Link, mac packet.MAC) error {
	hw := net.HardwareAddr(mac[:])
	if bytes.Equal(link.Attrs().HardwareAddr, hw) {
		return nil
	}
	err := s.h.LinkSetHardwareAddr(link, hw)
	if errors.Is(err, unix.EBUSY) {
		if err = s.h.LinkSetDown(link); err == nil {
			err = s.h.LinkSetHardwareAddr(link, hw)
			if uerr := s.h.LinkSetUp(link); err == nil {
				err = uerr
			}
		}
	}
	if err != nil {
		return fmt.Errorf("setting MAC %s: %v", hw, err)
	}
	return nil
}

// SetLink implements router.HostSystem.
func (s *System) SetLink(dev string, mac packet.MAC, mtu int) error {
	link, err := s.h.LinkByName(dev)
	if err != nil {
		return err
	}
	if link.Attrs().MTU != mtu {
		if err := s.h.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("setting MTU %d: %v", mtu, err)
		}
	}
	return s.setMAC(link, mac)
}

func ipNet(p netip.Prefix) *net.IPNet {
	if p.Addr().Is6() {
		a := p.Addr().As16()
		return &net.IPNet{IP: net.IP(a[:]), Mask: net.CIDRMask(p.Bits(), 128)}
	}
	a := p.Addr().As4()
	return &net.IPNet{IP: net.IP(a[:]), Mask: net.CIDRMask(p.Bits(), 32)}
}

// AddAddr implements router.HostSystem. An IPv6 address turns IPv6 on for
// the device first (Open leaves it off), without DAD (the router probes
// its addresses itself), router advertisements or autoconfiguration: the
// kernel gets the network's addresses and nothing else.
func (s *System) AddAddr(dev string, p netip.Prefix) error {
	link, err := s.h.LinkByName(dev)
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: ipNet(p)}
	if p.Addr().Is6() {
		if err := s.enableIPv6(dev); err != nil {
			return err
		}
		a.Flags = unix.IFA_F_NODAD
	}
	return s.h.AddrReplace(link, a)
}

// enableIPv6 turns IPv6 on for dev in the router's namespace.
func (s *System) enableIPv6(dev string) error {
	return s.in(func() error {
		for _, kv := range [][2]string{{"accept_dad", "0"}, {"accept_ra", "0"}, {"autoconf", "0"}, {"disable_ipv6", "0"}} {
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+dev+"/"+kv[0], []byte(kv[1]), 0); err != nil {
				return fmt.Errorf("enabling IPv6 on %s: %v", dev, err)
			}
		}
		return nil
	})
}

// DelAddr implements router.HostSystem.
func (s *System) DelAddr(dev string, p netip.Prefix) error {
	link, err := s.h.LinkByName(dev)
	if err != nil {
		return err
	}
	err = s.h.AddrDel(link, &netlink.Addr{IPNet: ipNet(p)})
	if errors.Is(err, unix.EADDRNOTAVAIL) {
		return nil
	}
	return err
}

// IsolateScript is the nft script of Isolate for devs.
func (s *System) IsolateScript(devs []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table netdev %s\ndelete table netdev %s\n", s.table, s.table)
	if len(devs) == 0 {
		return b.String()
	}
	fmt.Fprintf(&b, "table netdev %s {\n", s.table)
	for i, d := range devs {
		fmt.Fprintf(&b, "\tchain port%d {\n\t\ttype filter hook ingress device %q priority -500; policy drop;\n\t}\n", i, d)
	}
	b.WriteString("}\n")
	return b.String()
}

// Isolate implements router.HostSystem.
func (s *System) Isolate(devs []string) error {
	script := s.IsolateScript(devs)
	return s.in(func() error {
		cmd := exec.Command("nft", "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		out, err := cmd.CombinedOutput()
		if err != nil {
			if errors.Is(err, exec.ErrNotFound) {
				return errors.New("nft not found (Debian: apt-get install nftables)")
			}
			return fmt.Errorf("nft: %v: %s", err, bytes.TrimSpace(out))
		}
		return nil
	})
}

// Watch implements router.HostSystem.
func (s *System) Watch(f func([]router.AddrEvent)) (func(), error) {
	done := make(chan struct{})
	ch, err := s.subscribe(done)
	if err != nil {
		close(done)
		return nil, fmt.Errorf("host interfaces: following addresses: %w", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.follow(ch, done, f)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}, nil
}

// subscribe subscribes to IPv4 address events and sends the dump of the
// addresses there are (after a Reset) into the channel's consumer's
// first batch through the pending slice (see follow).
func (s *System) subscribe(done chan struct{}) (chan netlink.AddrUpdate, error) {
	ch := make(chan netlink.AddrUpdate, 1024)
	opts := netlink.AddrSubscribeOptions{
		ErrorCallback: func(err error) {
			select {
			case <-done: // closing the socket at stop
			default:
				s.opts.Logger.Warn("host interfaces: address events", "err", err)
			}
		},
		ReceiveBufferSize: 1 << 20,
	}
	if s.ns.IsOpen() {
		ns := s.ns
		opts.Namespace = &ns
	}
	if err := netlink.AddrSubscribeWithOptions(ch, done, opts); err != nil {
		return nil, err
	}
	return ch, nil
}

// dump lists every IPv4 address as a batch that starts with Reset.
func (s *System) dump() ([]router.AddrEvent, error) {
	addrs, err := s.h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	evs := []router.AddrEvent{{Reset: true}}
	for _, a := range addrs {
		if p, ok := prefixOf(a.IPNet); ok {
			evs = append(evs, router.AddrEvent{Ifindex: a.LinkIndex, Prefix: p, Added: true})
		}
	}
	return evs, nil
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP.To4())
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits != 32 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones), true
}

// follow delivers the dump, then the events of ch in batches, until done;
// a closed channel (lost subscription) is renewed.
func (s *System) follow(ch chan netlink.AddrUpdate, done chan struct{}, f func([]router.AddrEvent)) {
	for {
		if evs, err := s.dump(); err != nil {
			s.opts.Logger.Warn("host interfaces: listing addresses", "err", err)
		} else {
			f(evs)
		}
		for open := true; open; {
			var batch []router.AddrEvent
			add := func(u netlink.AddrUpdate) {
				if p, ok := prefixOf(&u.LinkAddress); ok {
					batch = append(batch, router.AddrEvent{Ifindex: u.LinkIndex, Prefix: p, Added: u.NewAddr})
				}
			}
			select {
			case <-done:
				return
			case u, ok := <-ch:
				if !ok {
					open = false
					break
				}
				add(u)
			drain:
				for {
					select {
					case u, ok := <-ch:
						if !ok {
							open = false
							break drain
						}
						add(u)
					default:
						break drain
					}
				}
			}
			if len(batch) > 0 {
				f(batch)
			}
		}
		// The subscription was lost: subscribe again and start over from a
		// dump.
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			var err error
			if ch, err = s.subscribe(done); err == nil {
				break
			}
			s.opts.Logger.Warn("host interfaces: renewing the address subscription", "err", err)
		}
	}
}

// Close releases the netlink handle.
func (s *System) Close() { s.h.Close() }
