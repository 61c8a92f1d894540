package router

// The kernel's state of a port's device (linkstate.go), asked over
// rtnetlink (RTM_GETLINK by name, as ip link does) rather than read from
// /sys/class/net: a socket is in the namespace of the thread that made it,
// while /sys shows the namespace of whoever mounted it, which is not the
// router's when it was put into its namespace by setns (nsenter) without a
// new mount.

import (
	"encoding/binary"
	"errors"
	"runtime"

	"golang.org/x/sys/unix"

	"vrouter/router/port"
)

// rtextFilterSkipStats is RTEXT_FILTER_SKIP_STATS (IFLA_EXT_MASK): the
// answer leaves out the device's statistics.
const rtextFilterSkipStats = 1 << 3

// nlaTypeMask is NLA_TYPE_MASK: an attribute's type without the nested
// and byte-order flags.
const nlaTypeMask = 0x3fff

// nsDevice is a port whose device may live in another namespace than the
// router's (tap.Port: the VM's).
type nsDevice interface {
	DeviceNetNS() (nsfd int, name string, err error)
}

// osLinks is the lookup of one Ports call: one rtnetlink socket in the
// router's namespace, opened on first use, and one for each TAP whose
// device is elsewhere.
type osLinks struct {
	own    *nlLinks
	ownErr error
}

func osLinkLookup() linkLookup { return &osLinks{} }

func (o *osLinks) close() {
	if o.own != nil {
		o.own.close()
	}
}

func (o *osLinks) state(p port.Port) (string, bool) {
	if d, ok := p.(nsDevice); ok {
		nsfd, name, err := d.DeviceNetNS()
		if err == nil {
			defer unix.Close(nsfd)
			if !sameNetNS(nsfd) {
				l, err := openNLLinksIn(nsfd)
				if err != nil {
					return PortStateUnknown, true
				}
				defer l.close()
				return l.state(name)
			}
			return o.ownState(name)
		}
		// A kernel before 5.2 (no TUNGETDEVNETNS): where the router is.
	}
	return o.ownState(p.Device())
}

func (o *osLinks) ownState(name string) (string, bool) {
	if o.own == nil && o.ownErr == nil {
		o.own, o.ownErr = openNLLinks()
	}
	if o.ownErr != nil {
		return PortStateUnknown, true
	}
	return o.own.state(name)
}

// sameNetNS: nsfd is the calling thread's network namespace.
func sameNetNS(nsfd int) bool {
	var a, b unix.Stat_t
	if unix.Fstat(nsfd, &a) != nil || unix.Stat("/proc/thread-self/ns/net", &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// nlLinks asks one namespace's kernel about its devices.
type nlLinks struct {
	fd  int
	seq uint32
	req []byte
	buf []byte
}

// openNLLinks opens an rtnetlink socket in the calling thread's namespace.
func openNLLinks() (*nlLinks, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	tv := unix.Timeval{Sec: 1} // a show never hangs on it
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &nlLinks{fd: fd}, nil
}

// openNLLinksIn opens an rtnetlink socket in the namespace nsfd, from an
// OS thread of its own that goes there and back.
func openNLLinksIn(nsfd int) (*nlLinks, error) {
	type result struct {
		l   *nlLinks
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{nil, err}
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{nil, err}
			return
		}
		l, err := openNLLinks()
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		} // else the thread ends with the goroutine, as it must
		done <- result{l, err}
	}()
	r := <-done
	return r.l, r.err
}

func (l *nlLinks) close() { unix.Close(l.fd) }

// state is the state of device name, false when there is none.
func (l *nlLinks) state(name string) (string, bool) {
	oper, flags, found, err := l.get(name)
	switch {
	case err != nil:
		return PortStateUnknown, true
	case !found:
		return "", false
	}
	return linkStateName(oper, flags), true
}

// get asks for device name's IFLA_OPERSTATE and flags.
func (l *nlLinks) get(name string) (oper uint8, flags uint32, found bool, err error) {
	l.seq++
	l.req = linkRequest(l.req[:0], l.seq, name)
	if err := unix.Sendto(l.fd, l.req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, 0, false, err
	}
	if l.buf == nil {
		l.buf = make([]byte, 32<<10)
	}
	for {
		n, err := unix.Read(l.fd, l.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, 0, false, err
		}
		oper, flags, found, done, err := parseLinkReply(l.buf[:n], l.seq)
		if done || err != nil {
			return oper, flags, found, err
		}
	}
}

// linkRequest appends to b an RTM_GETLINK request for device name,
// statistics left out.
func linkRequest(b []byte, seq uint32, name string) []byte {
	ne := binary.NativeEndian
	nameLen := unix.SizeofRtAttr + len(name) + 1
	total := unix.SizeofNlMsghdr + unix.SizeofIfInfomsg + align4(nameLen) + unix.SizeofRtAttr + 4
	b = ne.AppendUint32(b, uint32(total))
	b = ne.AppendUint16(b, unix.RTM_GETLINK)
	b = ne.AppendUint16(b, unix.NLM_F_REQUEST)
	b = ne.AppendUint32(b, seq)
	b = ne.AppendUint32(b, 0)                            // pid: the kernel's
	b = append(b, make([]byte, unix.SizeofIfInfomsg)...) // AF_UNSPEC, any index
	b = ne.AppendUint16(b, uint16(nameLen))
	b = ne.AppendUint16(b, unix.IFLA_IFNAME)
	b = append(b, name...)
	b = append(b, 0)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	b = ne.AppendUint16(b, unix.SizeofRtAttr+4)
	b = ne.AppendUint16(b, unix.IFLA_EXT_MASK)
	return ne.AppendUint32(b, rtextFilterSkipStats)
}

func align4(n int) int { return (n + 3) &^ 3 }

var errBadReply = errors.New("malformed rtnetlink answer")

// parseLinkReply reads the answer to request seq in b (one datagram): the
// device's IFLA_OPERSTATE (0, unknown, when absent) and interface flags,
// or found false when there is no such device (ENODEV). done is false when
// b holds nothing of that answer.
func parseLinkReply(b []byte, seq uint32) (oper uint8, flags uint32, found, done bool, err error) {
	ne := binary.NativeEndian
	for len(b) >= unix.SizeofNlMsghdr {
		n := int(ne.Uint32(b))
		if n < unix.SizeofNlMsghdr || n > len(b) {
			return 0, 0, false, true, errBadReply
		}
		msg, typ, mseq := b[unix.SizeofNlMsghdr:n], ne.Uint16(b[4:]), ne.Uint32(b[8:])
		b = b[min(align4(n), len(b)):]
		if mseq != seq {
			continue
		}
		switch typ {
		case unix.NLMSG_ERROR:
			if len(msg) < 4 {
				return 0, 0, false, true, errBadReply
			}
			errno := unix.Errno(-int32(ne.Uint32(msg)))
			if errno == unix.ENODEV {
				return 0, 0, false, true, nil
			}
			return 0, 0, false, true, errno
		case unix.RTM_NEWLINK:
			if len(msg) < unix.SizeofIfInfomsg {
				return 0, 0, false, true, errBadReply
			}
			flags = ne.Uint32(msg[8:])
			for a := msg[unix.SizeofIfInfomsg:]; len(a) >= unix.SizeofRtAttr; {
				alen, atyp := int(ne.Uint16(a)), ne.Uint16(a[2:])&nlaTypeMask
				if alen < unix.SizeofRtAttr || alen > len(a) {
					return 0, 0, false, true, errBadReply
				}
				if atyp == unix.IFLA_OPERSTATE && alen > unix.SizeofRtAttr {
					oper = a[unix.SizeofRtAttr]
				}
				a = a[min(align4(alen), len(a)):]
			}
			return oper, flags, true, true, nil
		}
	}
	return 0, 0, false, false, nil
}
