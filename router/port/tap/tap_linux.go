// Package tap is a port.Port on a TAP device that the router creates (or
// attaches to) through /dev/net/tun.
//
// The TAP is the wire to a VM: the router holds the file descriptor end, and
// the kernel-side network device is the VM's NIC (a test moves it into
// another network namespace with `ip link set tapX netns NS` while the router
// keeps reading and writing its descriptor). Hence two MAC addresses:
//
//   - Port.MAC() is the router's own address on this link, the source of
//     the frames it writes and the address the VM resolves for the router's
//     IPs: Options.MAC, or when zero a stable locally administered unicast
//     address derived from the port name (02:xx:xx:xx:xx:xx).
//   - The kernel device's address (what `ip link show tapX` prints) belongs
//     to the VM; the router never uses it.
//
// Offloads: the device is opened without IFF_VNET_HDR and no TUNSETOFFLOAD is
// issued, so the kernel does not enable checksum or segmentation offloads on
// it: before handing a frame to the descriptor it segments GSO packets and
// completes partial checksums in software. Every frame ReadBatch returns is
// therefore at most MTU+header bytes with valid checksums (a test checks this
// with a TCP flow from the VM side). 802.1Q tags are in the frame bytes.
//
// Reads are non-blocking under the Go runtime poller: ReadBatch reads frames
// with read(2) until EAGAIN or the batch is full. WriteBatch does one write(2)
// per frame and is safe for concurrent callers.
//
// Close removes the device unless Options.Persist is set (it also clears
// the persist flag of a device that was persistent before, so the device
// goes away with the descriptor).
package tap

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"vrouter/internal/counter"
	"vrouter/packet"
	"vrouter/router/port"
)

// Options tune a TAP port.
type Options struct {
	// MAC is the router's address on this link; zero: RouterMAC(name).
	MAC [6]byte
	// MTU sets the device MTU (L3); 0 leaves the device's (1500 for a new TAP).
	MTU int
	// Persist keeps the device after Close (TUNSETPERSIST).
	Persist bool
}

// RouterMAC is the default router-side MAC of a TAP port called name: a
// locally administered unicast address from an FNV-1a hash of the name,
// stable across restarts.
func RouterMAC(name string) [6]byte {
	h := fnv.New64a()
	h.Write([]byte(name))
	s := h.Sum64()
	return [6]byte{0x02, byte(s >> 32), byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)}
}

// Port is a TAP port. Create it with Open.
type Port struct {
	name, device string
	mac          [6]byte
	mtu          int
	persist      bool

	fd      int
	file    *os.File
	rc      syscall.RawConn
	closed  atomic.Bool
	closeMu sync.RWMutex // writers hold it shared; Close exclusively

	// Receive state, owned by the single reader.
	rb     *port.Batch
	rn     int
	rerr   error
	readFn func(fd uintptr) bool

	rxPackets, rxBytes, rxDropped atomic.Uint64
	txPackets, txBytes, txErrors  atomic.Uint64
}

var _ port.Port = (*Port)(nil)

// Open creates the TAP device (or attaches to an existing one of that name),
// sets its MTU when asked and sets it up. An empty device lets the kernel
// choose a name (Device() reports it).
func Open(name, device string, opts Options) (*Port, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV):
			return nil, fmt.Errorf("port %q: /dev/net/tun not available (is the tun module loaded?)", name)
		case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
			return nil, fmt.Errorf("port %q: creating TAP %q needs CAP_NET_ADMIN (run as root)", name, device)
		}
		return nil, fmt.Errorf("port %q: opening /dev/net/tun: %v", name, err)
	}
	ifr, err := unix.NewIfreq(device)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("port %q: bad TAP name %q: %v", name, device, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		switch {
		case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
			return nil, fmt.Errorf("port %q: creating TAP %q needs CAP_NET_ADMIN (run as root)", name, device)
		case errors.Is(err, unix.EBUSY):
			return nil, fmt.Errorf("port %q: TAP %q is in use by another process", name, device)
		case errors.Is(err, unix.EINVAL):
			return nil, fmt.Errorf("port %q: device %q exists and is not a TAP device", name, device)
		}
		return nil, fmt.Errorf("port %q: creating TAP %q: %v", name, device, err)
	}
	p := &Port{name: name, device: ifr.Name(), fd: fd, persist: opts.Persist}
	fail := func(what string, err error) (*Port, error) {
		if !opts.Persist {
			_ = unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 0)
		}
		unix.Close(fd)
		return nil, fmt.Errorf("port %q: %s TAP %q: %v", name, what, p.device, err)
	}
	if opts.Persist {
		if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
			return fail("making persistent", err)
		}
	}
	link, err := netlink.LinkByName(p.device)
	if err != nil {
		return fail("looking up", err)
	}
	if opts.MTU > 0 && link.Attrs().MTU != opts.MTU {
		if err := netlink.LinkSetMTU(link, opts.MTU); err != nil {
			return fail(fmt.Sprintf("setting MTU %d on", opts.MTU), err)
		}
	}
	p.mtu = link.Attrs().MTU
	if opts.MTU > 0 {
		p.mtu = opts.MTU
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fail("setting up", err)
	}
	p.mac = opts.MAC
	if p.mac == ([6]byte{}) {
		p.mac = RouterMAC(name)
	}
	p.readFn = p.doRead
	p.file = os.NewFile(uintptr(fd), "tap:"+p.device)
	rc, err := p.file.SyscallConn()
	if err != nil {
		p.file.Close()
		return nil, fmt.Errorf("port %q: %v", name, err)
	}
	p.rc = rc
	return p, nil
}

func (p *Port) Name() string   { return p.name }
func (p *Port) Device() string { return p.device }
func (p *Port) Driver() string { return "tap" }

// Offloads implements port.Port: the TAP is opened without IFF_VNET_HDR, so
// the kernel segments and completes checksums before frames reach it.
func (p *Port) Offloads() bool { return false }

// MAC is the router's own address on this link (not the device's).
func (p *Port) MAC() [6]byte { return p.mac }
func (p *Port) MTU() int     { return p.mtu }

// doRead reads frames into p.rb until EAGAIN or the batch is full; it returns
// false (wait for readability) when nothing was read.
func (p *Port) doRead(fd uintptr) bool {
	b := p.rb
	for p.rn < b.Cap() {
		buf := b.Bufs[p.rn][port.Headroom:]
		n, err := unix.Read(int(fd), buf)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				return p.rn > 0
			}
			p.rerr = err
			return true
		}
		if n <= 0 || n >= len(buf) {
			// Empty, or possibly truncated (larger than a slot).
			p.rxDropped.Add(1) // dropBadLength
			continue
		}
		b.Off[p.rn], b.Len[p.rn] = port.Headroom, n
		p.rn++
	}
	return true
}

// ReadBatch fills b with frames from the TAP (see port.Port).
func (p *Port) ReadBatch(b *port.Batch) (int, error) {
	b.N = 0
	p.rb, p.rn, p.rerr = b, 0, nil
	defer func() { p.rb = nil }()
	for {
		if p.closed.Load() {
			return 0, port.ErrClosed
		}
		err := p.rc.Read(p.readFn)
		if p.rn > 0 {
			var bytes uint64
			for i := 0; i < p.rn; i++ {
				bytes += uint64(b.Len[i])
			}
			p.rxPackets.Add(uint64(p.rn))
			p.rxBytes.Add(bytes)
			b.N = p.rn
			return p.rn, nil
		}
		if err != nil {
			if p.closed.Load() || errors.Is(err, os.ErrClosed) {
				return 0, port.ErrClosed
			}
			return 0, err
		}
		if p.rerr != nil {
			return 0, p.rerr
		}
	}
}

// WriteBatch writes each frame with one write(2) and returns how many the
// kernel took; refused frames count in Stats.TxErrors. Safe for concurrent
// callers.
func (p *Port) WriteBatch(frames [][]byte, meta []packet.VnetHdr) (int, error) {
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.closed.Load() {
		return 0, port.ErrClosed
	}
	sent := 0
	var bytes, errs uint64
	for _, f := range frames {
		for {
			_, err := unix.Write(p.fd, f)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				errs++
			} else {
				sent++
				bytes += uint64(len(f))
			}
			break
		}
	}
	p.txPackets.Add(uint64(sent))
	p.txBytes.Add(bytes)
	if errs != 0 {
		p.txErrors.Add(errs)
	}
	return sent, nil
}

// Stats returns the port counters.
func (p *Port) Stats() port.Stats {
	return port.Stats{
		RxPackets: p.rxPackets.Load(),
		RxBytes:   p.rxBytes.Load(),
		RxDropped: p.rxDropped.Load(),
		TxPackets: p.txPackets.Load(),
		TxBytes:   p.txBytes.Load(),
		TxErrors:  p.txErrors.Load(),
	}
}

// Counters returns the port's counters (Descs).
func (p *Port) Counters() []counter.Value {
	return []counter.Value{{Desc: descs[dropBadLength], Value: p.rxDropped.Load()}}
}

// Close releases the descriptor; the device goes away unless Persist was
// set. A ReadBatch in progress returns port.ErrClosed.
func (p *Port) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	if !p.persist {
		_ = unix.IoctlSetInt(p.fd, unix.TUNSETPERSIST, 0)
	}
	return p.file.Close()
}
