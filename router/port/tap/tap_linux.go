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
// Offloads, without Options.Offloads (the default): the device is opened
// without IFF_VNET_HDR and its offloads are cleared (TUNSETOFFLOAD 0), so
// before handing a frame to the descriptor the kernel segments GSO packets
// and completes partial checksums in software. Every frame ReadBatch returns
// is then at most MTU+header bytes with valid checksums (a test checks this
// with a TCP flow from the VM side), and Port.Offloads is false.
//
// With Options.Offloads the device is opened with IFF_VNET_HDR, every frame
// crosses the descriptor behind a 10-byte struct virtio_net_hdr
// (TUNSETVNETHDRSZ 10: num_buffers is a virtio ring matter the router has no
// use for), and TUNSETOFFLOAD asks for TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6|
// TUN_F_USO4|TUN_F_USO6. The kernel only takes USO4 together with USO6
// (Linux 6.2 and later); where it refuses, the port falls back to
// TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6 and the kernel segments UDP itself
// (OffloadFlags says what was accepted). TSO_ECN is not asked for: the
// kernel segments the rare ECN-CWR super-frames before the descriptor. The
// kernel then hands over TCP and UDP super-frames of both IP versions (up
// to 64 KB) and partial checksums, and ReadBatch passes them on intact,
// described by Batch.Meta: Flags is VnetNeedsCsum or zero
// (VIRTIO_NET_HDR_F_DATA_VALID is dropped: such a frame's checksums are
// complete), HdrLen is set to the exact length of the headers through
// TCP/UDP (IPv6 extension headers included), CsumStart counts from the
// frame's first byte (the 802.1Q tag the kernel puts into the bytes
// included). Any other GSO type, one that does not match the frame's IP
// version, or a malformed super-frame is dropped and counted
// (gso-unsupported). Reads land the virtio header in the batch headroom,
// just in front of the frame, so nothing is copied. WriteBatch writes the
// header from meta (zeros for a plain frame) and the frame with one
// writev(2), the header in a buffer of its own on the stack: it needs no
// headroom in front of the frame and allocates nothing. The kernel takes GSO and partial-checksum frames from
// the descriptor whatever TUNSETOFFLOAD says, and segments them only if the
// path in the VM's namespace needs it.
//
// Reads are non-blocking under the Go runtime poller: ReadBatch reads frames
// with read(2) until EAGAIN or the batch is full (a TAP has no recvmmsg;
// several queues, IFF_MULTI_QUEUE, would need several readers per port,
// which the port API does not have). With offloads a TCP stream from the
// VM costs one read per ~64 KB super-frame instead of one per MSS
// (BenchmarkTAPTCP). WriteBatch does one write(2) or writev(2) per frame
// and is safe for concurrent callers.
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
	"unsafe"

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
	// Offloads opens the device with IFF_VNET_HDR and checksum and
	// segmentation offloads on, so that super-frames and partial checksums
	// cross the descriptor intact in both directions (Port.Offloads is
	// true). Off, the kernel segments and checksums everything first.
	Offloads bool
}

// The TUNSETOFFLOAD flags (include/uapi/linux/if_tun.h), as OffloadFlags
// reports them.
const (
	TunFCsum   = 0x01 // partial checksums
	TunFTSO4   = 0x02 // TCP over IPv4 super-frames
	TunFTSO6   = 0x04 // TCP over IPv6 super-frames
	TunFTSOECN = 0x08 // TCP super-frames with CWR (ECN)
	TunFUSO4   = 0x20 // UDP (GSO_UDP_L4) over IPv4 super-frames
	TunFUSO6   = 0x40 // UDP (GSO_UDP_L4) over IPv6 super-frames
)

// The offloads asked for, and what is left when the kernel refuses USO.
const (
	offloadsWanted   = TunFCsum | TunFTSO4 | TunFTSO6 | TunFUSO4 | TunFUSO6
	offloadsFallback = TunFCsum | TunFTSO4 | TunFTSO6
)

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
	vnet         bool // IFF_VNET_HDR: Options.Offloads
	offloads     int  // the TUN_F_* flags the kernel accepted

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
	acc    [numCounters]uint64 // counted during a ReadBatch, then added to cnt

	cnt                          [numCounters]atomic.Uint64
	rxPackets, rxBytes           atomic.Uint64
	txPackets, txBytes, txErrors atomic.Uint64
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
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if opts.Offloads {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		switch {
		case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
			return nil, fmt.Errorf("port %q: creating TAP %q needs CAP_NET_ADMIN (run as root)", name, device)
		case errors.Is(err, unix.EBUSY):
			return nil, fmt.Errorf("port %q: TAP %q is in use by another process (stop it, or choose another device for the port)", name, device)
		case errors.Is(err, unix.EINVAL):
			return nil, fmt.Errorf("port %q: device %q exists and is not a TAP device (choose another device for the port, or driver = \"afpacket\" to use that interface)", name, device)
		}
		return nil, fmt.Errorf("port %q: creating TAP %q: %v", name, device, err)
	}
	p := &Port{name: name, device: ifr.Name(), fd: fd, persist: opts.Persist, vnet: opts.Offloads}
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
	if opts.Offloads {
		if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, packet.VnetHdrLen); err != nil {
			return fail("setting the virtio-net header size of", err)
		}
		p.offloads = offloadsWanted
		err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, p.offloads)
		if errors.Is(err, unix.EINVAL) {
			p.offloads = offloadsFallback // a kernel without USO
			err = unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, p.offloads)
		}
		if err != nil {
			return fail("enabling offloads on", err)
		}
	} else if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, 0); err != nil {
		// A fresh TAP has none; a persistent one may keep those of an
		// earlier owner, and without the virtio header the kernel would hand
		// over super-frames as if they were plain frames.
		return fail("clearing the offloads of", err)
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
	if p.vnet {
		p.readFn = p.doReadVnet
	}
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

// Offloads implements port.Port: true with Options.Offloads (IFF_VNET_HDR);
// without it the kernel segments and completes checksums before frames
// reach the port.
func (p *Port) Offloads() bool { return p.vnet }

// OffloadFlags are the TUN_F_* flags the kernel accepted (TunFCsum...), 0
// without Options.Offloads.
func (p *Port) OffloadFlags() int { return p.offloads }

// DeviceNetNS says where the TAP's kernel device is now: a new descriptor
// of its network namespace (TUNGETDEVNETNS, Linux 5.2; the caller closes
// it) and its name there (TUNGETIFF). The device may have been moved into
// another namespace (the VM's) and renamed there since Open; the router
// looks its state up there for show interfaces.
func (p *Port) DeviceNetNS() (nsfd int, name string, err error) {
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.closed.Load() {
		return -1, "", port.ErrClosed
	}
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return -1, "", err
	}
	if err := unix.IoctlIfreq(p.fd, unix.TUNGETIFF, ifr); err != nil {
		return -1, "", err
	}
	nsfd, err = unix.IoctlRetInt(p.fd, unix.TUNGETDEVNETNS)
	if err != nil {
		return -1, "", err
	}
	unix.CloseOnExec(nsfd)
	return nsfd, ifr.Name(), nil
}

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
			p.acc[dropBadLength]++
			continue
		}
		b.Off[p.rn], b.Len[p.rn] = port.Headroom, n
		if p.rn < len(b.Meta) {
			b.Meta[p.rn] = packet.VnetHdr{}
		}
		p.rn++
	}
	return true
}

// doReadVnet is doRead for a device with IFF_VNET_HDR: each read lands the
// virtio header in the headroom, right in front of the frame at
// port.Headroom, and take decides what becomes of the frame.
func (p *Port) doReadVnet(fd uintptr) bool {
	b := p.rb
	for p.rn < b.Cap() {
		buf := b.Bufs[p.rn][port.Headroom-packet.VnetHdrLen:]
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
		if n <= packet.VnetHdrLen || n >= len(buf) {
			p.acc[dropBadLength]++
			continue
		}
		p.take(b, packet.ParseVnetHdr(buf), buf[packet.VnetHdrLen:n])
	}
	return true
}

// take accepts frame f, just read into slot p.rn at port.Headroom with
// virtio header vh: it records the frame and its metadata, or drops it.
func (p *Port) take(b *port.Batch, vh packet.VnetHdr, f []byte) {
	var m packet.VnetHdr
	if vh.Flags&packet.VnetNeedsCsum != 0 {
		if int(vh.CsumStart)+int(vh.CsumOffset)+2 > len(f) {
			p.acc[dropBadCsumOffsets]++
			return
		}
		m = packet.VnetHdr{Flags: packet.VnetNeedsCsum, CsumStart: vh.CsumStart, CsumOffset: vh.CsumOffset}
	}
	if g := vh.GSOType &^ packet.GSOECNBit; g != packet.GSONone {
		l3, et, ok := packet.L3Offset(f)
		proto, csumOff := uint8(packet.ProtoTCP), uint16(16)
		if g == packet.GSOUDPL4 {
			proto, csumOff = packet.ProtoUDP, 6
		}
		v4 := et == packet.EtherTypeIPv4 && (g == packet.GSOTCPv4 || g == packet.GSOUDPL4)
		v6 := et == packet.EtherTypeIPv6 && (g == packet.GSOTCPv6 || g == packet.GSOUDPL4)
		// GSOSegments checks the headers (and refuses a GSO size of 0).
		if !ok || !(v4 || v6) || m.Flags == 0 || vh.CsumOffset != csumOff || packet.GSOSegments(f, l3, proto, int(vh.GSOSize)) == 0 {
			p.acc[dropGSOUnsupported]++
			return
		}
		l4, hdrLen, _ := packet.GSOHeaders(f, l3, proto)
		if int(vh.CsumStart) != l4 {
			p.acc[dropGSOUnsupported]++
			return
		}
		m.GSOType, m.GSOSize, m.HdrLen = vh.GSOType, vh.GSOSize, uint16(hdrLen)
		p.acc[cGSOIntact]++
	}
	if m.Flags != 0 {
		p.acc[cCsumPartial]++
	}
	b.Off[p.rn], b.Len[p.rn], b.Meta[p.rn] = port.Headroom, len(f), m
	p.rn++
}

// errNoMeta is returned by ReadBatch on an offload port when the batch has
// no Meta for its slots.
var errNoMeta = errors.New("tap: batch without Meta on a port with offloads")

// ReadBatch fills b with frames from the TAP (see port.Port).
func (p *Port) ReadBatch(b *port.Batch) (int, error) {
	b.N = 0
	if p.vnet && len(b.Meta) < b.Cap() {
		return 0, errNoMeta
	}
	p.rb, p.rn, p.rerr = b, 0, nil
	defer func() { p.rb = nil }()
	for {
		if p.closed.Load() {
			return 0, port.ErrClosed
		}
		var err error
		if p.rn < b.Cap() {
			err = p.rc.Read(p.readFn)
		}
		p.flush()
		if p.rn > 0 {
			var bytes uint64
			b.HasMeta = false
			for i := 0; i < p.rn; i++ {
				bytes += uint64(b.Len[i])
				if p.vnet && b.Meta[i].Flags|b.Meta[i].GSOType != 0 {
					b.HasMeta = true
				}
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

// flush adds what the reader counted to the port's counters.
func (p *Port) flush() {
	for i, v := range p.acc {
		if v != 0 {
			p.cnt[i].Add(v)
			p.acc[i] = 0
		}
	}
}

// WriteBatch writes each frame with one write(2) (writev(2) with the
// virtio header first, on a port with offloads) and returns how many the
// kernel took; refused frames count in Stats.TxErrors. meta[i], when meta
// is not nil, describes frame i (see port.Port); a port without offloads
// ignores it. Safe for concurrent callers.
func (p *Port) WriteBatch(frames [][]byte, meta []packet.VnetHdr) (int, error) {
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.closed.Load() {
		return 0, port.ErrClosed
	}
	sent := 0
	var bytes, errs uint64
	if p.vnet {
		sent, bytes, errs = p.writeVnet(frames, meta)
	} else {
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
	}
	p.txPackets.Add(uint64(sent))
	p.txBytes.Add(bytes)
	if errs != 0 {
		p.txErrors.Add(errs)
	}
	return sent, nil
}

// writeVnet writes each frame behind its virtio header with writev(2). The
// header and the iovecs live on this goroutine's stack, so concurrent
// callers share nothing and nothing is allocated.
func (p *Port) writeVnet(frames [][]byte, meta []packet.VnetHdr) (sent int, bytes, errs uint64) {
	var hdr [packet.VnetHdrLen]byte
	var iov [2]unix.Iovec
	iov[0].Base = &hdr[0]
	iov[0].SetLen(len(hdr))
	for i, f := range frames {
		var h packet.VnetHdr
		if i < len(meta) {
			h = meta[i]
		}
		h.Put(hdr[:])
		cnt := 1
		if len(f) > 0 {
			iov[1].Base = &f[0]
			iov[1].SetLen(len(f))
			cnt = 2
		}
		for {
			_, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(p.fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(cnt))
			if e == unix.EINTR {
				continue
			}
			if e != 0 {
				errs++
			} else {
				sent++
				bytes += uint64(len(f))
			}
			break
		}
	}
	return sent, bytes, errs
}

// Stats returns the port counters. Super-frames and partial checksums are
// passed on, never segmented or completed here, so RxGSO and RxCsum stay 0.
func (p *Port) Stats() port.Stats {
	var dropped uint64
	for i := 0; i < nDropReasons; i++ {
		dropped += p.cnt[i].Load()
	}
	return port.Stats{
		RxPackets: p.rxPackets.Load(),
		RxBytes:   p.rxBytes.Load(),
		RxDropped: dropped,
		TxPackets: p.txPackets.Load(),
		TxBytes:   p.txBytes.Load(),
		TxErrors:  p.txErrors.Load(),
	}
}

// Counters returns the port's counters (Descs).
func (p *Port) Counters() []counter.Value {
	v := make([]counter.Value, numCounters)
	for i := range v {
		v[i] = counter.Value{Desc: descs[i], Value: p.cnt[i].Load()}
	}
	return v
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
