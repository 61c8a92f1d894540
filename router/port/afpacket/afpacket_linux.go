// Package afpacket is a port.Port on an existing kernel interface, read and
// written as raw Ethernet frames through an AF_PACKET socket.
//
// The socket (SOCK_RAW, ETH_P_ALL, bound to the interface) is non-blocking
// and driven by the Go runtime poller; frames move in batches with
// recvmmsg/sendmmsg over arrays prepared at Open, so steady-state reads and
// writes do not allocate. Options set on the socket:
//
//   - PACKET_IGNORE_OUTGOING: the router does not read back what it sends;
//   - PACKET_ADD_MEMBERSHIP/PACKET_MR_PROMISC: frames for other MACs are seen
//     too (the router has its own MACs, and multi-link networks switch);
//   - PACKET_AUXDATA: the kernel strips the 802.1Q/802.1ad tag of received
//     frames into metadata; ReadBatch puts it back into the bytes, using 4
//     bytes of the batch headroom (such frames start at port.Headroom-4);
//   - PACKET_VNET_HDR: each frame comes with a virtio_net_hdr, so that GSO
//     super-frames (a veth peer with TSO hands over ~64 KB TCP frames) and
//     CHECKSUM_PARTIAL frames are recognised. TCPv4 and UDP (GSO_UDP_L4)
//     super-frames are segmented in software into consecutive batch slots
//     and partial checksums are completed (Stats.RxGSO, Stats.RxCsum). Other
//     GSO types (TCPv6, UFO) are dropped and counted in Stats.RxDropped.
//
// Received frames land first in internal 64 KB buffers (RxRing of them) and
// are then copied or segmented into the batch slots. A super-frame that does
// not fit the remaining slots of a batch is continued in the next ReadBatch.
//
// Open sets the interface up if it is down; it changes nothing else on the
// device (no addresses, no offload settings).
package afpacket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
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

// Options tune a port. The zero value is the normal configuration.
type Options struct {
	// MAC is the router's own address on this link; zero means the device's.
	MAC [6]byte
	// MTU is the L3 MTU; 0 means the device's.
	MTU int
	// RxRing is the number of frames taken per recvmmsg (each with a 64 KB
	// buffer); 0 means port.DefaultBatch.
	RxRing int
	// TxBatch is the number of frames per sendmmsg; 0 means port.DefaultBatch.
	TxBatch int
	// RcvBuf is the socket receive buffer in bytes; 0 means 8 MB.
	RcvBuf int
	// NoVnetHdr leaves PACKET_VNET_HDR off: super-frames then arrive
	// without metadata and those larger than a slot are dropped. Partial
	// checksums cannot be recognised either. For diagnosis and tests.
	NoVnetHdr bool
}

// rxBufSize holds a 64 KB GSO super-frame plus its virtio_net_hdr.
const rxBufSize = 1<<16 + 1024

// ctlSize holds one cmsg with a tpacket_auxdata (CMSG_SPACE(20) = 40).
const ctlSize = 64

const sizeofAuxdata = 20

// Port is an AF_PACKET port. Create it with Open.
type Port struct {
	name, device string
	ifindex      int
	mac          [6]byte
	mtu          int
	vnet         bool

	fd     int
	file   *os.File
	rc     syscall.RawConn
	closed atomic.Bool

	// Receive state, owned by the single reader.
	rxBufs  [][]byte
	rxCtl   []byte
	rxIov   []unix.Iovec
	rxMsgs  []unix.Mmsghdr
	rxCount int   // messages returned by the last recvmmsg
	rxNext  int   // next message to deliver
	rxSeg   int   // next segment of message rxNext (when it is a super-frame)
	rxSegN  int   // segments of message rxNext, 0 before it is looked at
	rxErr   error // error of the last recvmmsg
	readFn  func(fd uintptr) bool

	// Transmit state, guarded by txMu.
	txMu        sync.Mutex
	txIov       []unix.Iovec // two per message: vnet header, frame
	txMsgs      []unix.Mmsghdr
	txK         int // messages prepared
	txDone      int // messages handled (sent or refused)
	txOK        int // messages sent
	txFail      int // messages refused
	txFailBytes uint64
	writeFn     func(fd uintptr) bool
	vnetTx      [packet.VnetHdrLen]byte // all zero: no offload requested

	rxPackets, rxBytes, rxGSO, rxCsum atomic.Uint64
	drops                             [nDropReasons]atomic.Uint64
	txPackets, txBytes, txErrors      atomic.Uint64
	kernelDrops                       atomic.Uint64
	statsMu                           sync.Mutex
}

var _ port.Port = (*Port)(nil)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Open opens an AF_PACKET port called name on the existing interface device.
func Open(name, device string, opts Options) (*Port, error) {
	link, err := netlink.LinkByName(device)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("port %q: device %q not found", name, device)
		}
		return nil, fmt.Errorf("port %q: looking up device %q: %v", name, device, err)
	}
	a := link.Attrs()
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("port %q: opening AF_PACKET socket on %q needs CAP_NET_RAW (run as root)", name, device)
		}
		return nil, fmt.Errorf("port %q: opening AF_PACKET socket on %q: %v", name, device, err)
	}
	p := &Port{name: name, device: device, ifindex: a.Index, fd: fd, vnet: !opts.NoVnetHdr}
	fail := func(what string, err error) (*Port, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("port %q: %s on %q: %v", name, what, device, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fail("PACKET_IGNORE_OUTGOING", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		return fail("PACKET_AUXDATA", err)
	}
	if p.vnet {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			return fail("PACKET_VNET_HDR", err)
		}
	}
	rcvbuf := opts.RcvBuf
	if rcvbuf <= 0 {
		rcvbuf = 8 << 20
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: a.Index}); err != nil {
		return fail("binding AF_PACKET socket", err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(a.Index), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return fail("promiscuous mode", err)
	}
	if a.Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(link); err != nil {
			return fail("setting link up", err)
		}
	}
	copy(p.mac[:], a.HardwareAddr)
	if opts.MAC != ([6]byte{}) {
		p.mac = opts.MAC
	}
	p.mtu = a.MTU
	if opts.MTU > 0 {
		p.mtu = opts.MTU
	}

	p.initBuffers(opts.RxRing, opts.TxBatch)
	p.file = os.NewFile(uintptr(fd), "afpacket:"+device)
	if p.file == nil {
		unix.Close(fd)
		return nil, fmt.Errorf("port %q: cannot use socket of %q", name, device)
	}
	rc, err := p.file.SyscallConn()
	if err != nil {
		p.file.Close()
		return nil, fmt.Errorf("port %q: %v", name, err)
	}
	p.rc = rc
	return p, nil
}

// initBuffers allocates the recvmmsg/sendmmsg arrays and buffers.
func (p *Port) initBuffers(ring, tb int) {
	if ring <= 0 {
		ring = port.DefaultBatch
	}
	p.rxBufs = make([][]byte, ring)
	mem := make([]byte, ring*rxBufSize) // touched only as far as frames reach
	p.rxCtl = make([]byte, ring*ctlSize)
	p.rxIov = make([]unix.Iovec, ring)
	p.rxMsgs = make([]unix.Mmsghdr, ring)
	for i := range p.rxBufs {
		p.rxBufs[i] = mem[i*rxBufSize : (i+1)*rxBufSize : (i+1)*rxBufSize]
		p.rxIov[i].Base = &p.rxBufs[i][0]
		p.rxIov[i].SetLen(rxBufSize)
		h := &p.rxMsgs[i].Hdr
		h.Iov = &p.rxIov[i]
		h.Iovlen = 1
		h.Control = &p.rxCtl[i*ctlSize]
	}
	if tb <= 0 {
		tb = port.DefaultBatch
	}
	p.txIov = make([]unix.Iovec, 2*tb)
	p.txMsgs = make([]unix.Mmsghdr, tb)
	for i := range p.txMsgs {
		h := &p.txMsgs[i].Hdr
		if p.vnet {
			p.txIov[2*i].Base = &p.vnetTx[0]
			p.txIov[2*i].SetLen(packet.VnetHdrLen)
			h.Iov = &p.txIov[2*i]
			h.Iovlen = 2
		} else {
			h.Iov = &p.txIov[2*i+1]
			h.Iovlen = 1
		}
	}
	p.readFn = p.doRead
	p.writeFn = p.doWrite
}

func (p *Port) Name() string   { return p.name }
func (p *Port) Device() string { return p.device }
func (p *Port) Driver() string { return "afpacket" }

// Offloads implements port.Port: super-frames are segmented and partial
// checksums completed on receive, and only plain frames are sent.
func (p *Port) Offloads() bool { return false }
func (p *Port) MAC() [6]byte   { return p.mac }
func (p *Port) MTU() int       { return p.mtu }

// Ifindex is the interface index the socket is bound to.
func (p *Port) Ifindex() int { return p.ifindex }

// doRead runs under the runtime poller: it returns false to wait for
// readability when nothing is queued.
func (p *Port) doRead(fd uintptr) bool {
	for i := range p.rxMsgs {
		p.rxMsgs[i].Hdr.SetControllen(ctlSize)
		p.rxMsgs[i].Hdr.Flags = 0
		p.rxMsgs[i].Len = 0
	}
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&p.rxMsgs[0])),
			uintptr(len(p.rxMsgs)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			p.rxCount = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		p.rxErr = e
		return true
	}
}

// ReadBatch fills b with received frames (see port.Port). It blocks until at
// least one frame is available.
func (p *Port) ReadBatch(b *port.Batch) (int, error) {
	b.N = 0
	for {
		if p.closed.Load() {
			return 0, port.ErrClosed
		}
		if p.rxNext < p.rxCount {
			if n := p.deliver(b); n > 0 {
				b.N = n
				return n, nil
			}
			continue
		}
		p.rxCount, p.rxNext, p.rxErr = 0, 0, nil
		if err := p.rc.Read(p.readFn); err != nil {
			if p.closed.Load() || errors.Is(err, os.ErrClosed) {
				return 0, port.ErrClosed
			}
			return 0, err
		}
		if p.rxErr != nil {
			if p.rxErr == unix.ENETDOWN {
				// The link went down (reported once); frames follow when it is up again.
				continue
			}
			return 0, p.rxErr
		}
	}
}

// auxVLAN returns the tag the kernel stripped from message i.
func (p *Port) auxVLAN(i int) (tci, tpid uint16, ok bool) {
	h := &p.rxMsgs[i].Hdr
	ctl := p.rxCtl[i*ctlSize : i*ctlSize+int(h.Controllen)]
	for len(ctl) >= unix.SizeofCmsghdr {
		l := int(binary.NativeEndian.Uint64(ctl[0:8]))
		level := int32(binary.NativeEndian.Uint32(ctl[8:12]))
		typ := int32(binary.NativeEndian.Uint32(ctl[12:16]))
		if l < unix.SizeofCmsghdr || l > len(ctl) {
			return 0, 0, false
		}
		if level == unix.SOL_PACKET && typ == unix.PACKET_AUXDATA && l >= unix.SizeofCmsghdr+sizeofAuxdata {
			d := ctl[unix.SizeofCmsghdr:]
			status := binary.NativeEndian.Uint32(d[0:4])
			if status&unix.TP_STATUS_VLAN_VALID == 0 {
				return 0, 0, false
			}
			tci = binary.NativeEndian.Uint16(d[16:18])
			tpid = packet.EtherTypeVLAN
			if status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
				tpid = binary.NativeEndian.Uint16(d[18:20])
			}
			return tci, tpid, true
		}
		l = (l + 7) &^ 7
		if l > len(ctl) {
			break
		}
		ctl = ctl[l:]
	}
	return 0, 0, false
}

// place records frame n of b, written at Bufs[n][Headroom:Headroom+l], and
// puts the stripped tag back in front of the EtherType when there is one.
func place(b *port.Batch, n, l int, tci, tpid uint16, tagged bool) {
	if !tagged {
		b.Off[n], b.Len[n] = port.Headroom, l
		return
	}
	s := b.Bufs[n]
	o := port.Headroom - packet.VLANHdrLen
	copy(s[o:o+12], s[port.Headroom:port.Headroom+12])
	binary.BigEndian.PutUint16(s[o+12:], tpid)
	binary.BigEndian.PutUint16(s[o+14:], tci)
	b.Off[n], b.Len[n] = o, l+packet.VLANHdrLen
}

// deliver moves received messages into b (from slot 0) and returns the
// number of frames. It stops when b is full; the rest stays pending.
func (p *Port) deliver(b *port.Batch) int {
	n, room := 0, b.Cap()
	var bytes, gso, csum uint64
	var drops [nDropReasons]uint64
	for p.rxNext < p.rxCount && n < room {
		i := p.rxNext
		m := &p.rxMsgs[i]
		f := p.rxBufs[i][:m.Len]
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			drops[dropTruncated]++
			p.rxNext++
			continue
		}
		var vh packet.VnetHdr
		if p.vnet {
			if len(f) < packet.VnetHdrLen {
				drops[dropBadVnetHdr]++
				p.rxNext++
				continue
			}
			vh = packet.ParseVnetHdr(f)
			f = f[packet.VnetHdrLen:]
		}
		tci, tpid, tagged := p.auxVLAN(i)
		if g := vh.GSOType &^ packet.GSOECNBit; g != packet.GSONone {
			proto := uint8(packet.ProtoTCP)
			if g == packet.GSOUDPL4 {
				proto = packet.ProtoUDP
			}
			l3, et, ok := packet.L3Offset(f)
			if p.rxSegN == 0 {
				if ok && et == packet.EtherTypeIPv4 && (g == packet.GSOTCPv4 || g == packet.GSOUDPL4) {
					p.rxSegN = packet.GSOSegmentsV4(f, l3, proto, int(vh.GSOSize))
				}
				if p.rxSegN == 0 {
					drops[dropGSOUnsupported]++
					p.rxNext++
					continue
				}
				p.rxSeg = 0
			}
			for p.rxSeg < p.rxSegN && n < room {
				l := packet.SegmentV4(b.Bufs[n][port.Headroom:], f, l3, proto, int(vh.GSOSize), p.rxSeg)
				p.rxSeg++
				if l == 0 {
					drops[dropTooBig]++ // segment larger than a slot
					continue
				}
				place(b, n, l, tci, tpid, tagged)
				bytes += uint64(b.Len[n])
				n++
			}
			if p.rxSeg < p.rxSegN {
				break // batch full; continue this super-frame next time
			}
			gso++
			p.rxSeg, p.rxSegN = 0, 0
			p.rxNext++
			continue
		}
		if vh.Flags&packet.VnetNeedsCsum != 0 {
			end := len(f)
			if l3, et, ok := packet.L3Offset(f); ok && et == packet.EtherTypeIPv4 && len(f) >= l3+packet.IPv4MinLen {
				if tl := packet.IPv4(f[l3:]).TotalLen(); tl >= packet.IPv4MinLen && l3+tl <= end {
					end = l3 + tl // leave Ethernet padding out of the sum
				}
			}
			if !packet.CompleteChecksum(f[:end], int(vh.CsumStart), int(vh.CsumOffset)) {
				drops[dropBadCsumOffsets]++
				p.rxNext++
				continue
			}
			csum++
		}
		if len(f) > port.MaxFrame {
			drops[dropTooBig]++
			p.rxNext++
			continue
		}
		copy(b.Bufs[n][port.Headroom:], f)
		place(b, n, len(f), tci, tpid, tagged)
		bytes += uint64(b.Len[n])
		n++
		p.rxNext++
	}
	p.rxPackets.Add(uint64(n))
	p.rxBytes.Add(bytes)
	for r, v := range drops {
		if v != 0 {
			p.drops[r].Add(v)
		}
	}
	if gso != 0 {
		p.rxGSO.Add(gso)
	}
	if csum != 0 {
		p.rxCsum.Add(csum)
	}
	return n
}

// doWrite runs under the runtime poller with txMu held: it sends the
// prepared messages, skipping those the kernel refuses, and returns false to
// wait for room in the socket buffer.
func (p *Port) doWrite(fd uintptr) bool {
	for p.txDone < p.txK {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&p.txMsgs[p.txDone])),
			uintptr(p.txK-p.txDone), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			p.txDone += int(n)
			p.txOK += int(n)
			continue
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		// The first pending message was refused (too big, link down, ...).
		p.txFailBytes += p.txIov[2*p.txDone+1].Len
		p.txDone++
		p.txFail++
	}
	return true
}

// WriteBatch sends frames and returns how many the kernel accepted; refused
// frames are counted in Stats.TxErrors. Safe for concurrent callers (they
// take turns on the port's prepared sendmmsg arrays).
func (p *Port) WriteBatch(frames [][]byte, meta []packet.VnetHdr) (int, error) {
	if p.closed.Load() {
		return 0, port.ErrClosed
	}
	p.txMu.Lock()
	defer p.txMu.Unlock()
	sent, failed := 0, 0
	var bytes uint64
	var err error
	for off := 0; off < len(frames); {
		k := min(len(frames)-off, len(p.txMsgs))
		for i := 0; i < k; i++ {
			f := frames[off+i]
			iov := &p.txIov[2*i+1]
			if len(f) == 0 {
				iov.Base = &p.vnetTx[0]
			} else {
				iov.Base = &f[0]
			}
			iov.SetLen(len(f))
			bytes += uint64(len(f))
		}
		p.txK, p.txDone, p.txOK, p.txFail, p.txFailBytes = k, 0, 0, 0, 0
		err = p.rc.Write(p.writeFn)
		sent += p.txOK
		failed += p.txFail
		bytes -= p.txFailBytes
		for i := 0; i < k; i++ {
			p.txIov[2*i+1].Base = nil // do not retain the caller's buffers
		}
		if err != nil {
			failed += k - p.txDone
			for i := p.txDone; i < k; i++ {
				bytes -= uint64(len(frames[off+i]))
			}
			break
		}
		off += k
	}
	p.txPackets.Add(uint64(sent))
	p.txBytes.Add(bytes)
	if failed != 0 {
		p.txErrors.Add(uint64(failed))
	}
	if err != nil {
		if p.closed.Load() || errors.Is(err, os.ErrClosed) {
			return sent, port.ErrClosed
		}
		return sent, err
	}
	return sent, nil
}

// Stats returns the port counters; RxDropped includes the kernel's drops
// for this socket (buffer full).
func (p *Port) Stats() port.Stats {
	p.pollKernel()
	d := p.Drops()
	return port.Stats{
		RxPackets: p.rxPackets.Load(),
		RxBytes:   p.rxBytes.Load(),
		TxPackets: p.txPackets.Load(),
		TxBytes:   p.txBytes.Load(),
		RxDropped: d.Truncated + d.BadVnetHdr + d.GSOUnsupported + d.TooBig + d.BadCsumOffsets + d.Kernel,
		TxErrors:  p.txErrors.Load(),
		RxGSO:     p.rxGSO.Load(),
		RxCsum:    p.rxCsum.Load(),
	}
}

// pollKernel adds the kernel's drops since the last poll to kernelDrops
// (reading PACKET_STATISTICS resets the kernel's counts).
func (p *Port) pollKernel() {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	if !p.closed.Load() {
		_ = p.rc.Control(func(fd uintptr) {
			if st, err := unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
				p.kernelDrops.Add(uint64(st.Drops))
			}
		})
	}
}

// Counters returns the port's counters (Descs): receive drops by reason,
// the kernel's drops (polled now) and the offload work done in software.
func (p *Port) Counters() []counter.Value {
	p.pollKernel()
	var v [numCounters]uint64
	for i := range p.drops {
		v[i] = p.drops[i].Load()
	}
	v[cKernelDrops] = p.kernelDrops.Load()
	v[cGSO] = p.rxGSO.Load()
	v[cCsum] = p.rxCsum.Load()
	out := make([]counter.Value, numCounters)
	for i := range out {
		out[i] = counter.Value{Desc: descs[i], Value: v[i]}
	}
	return out
}

// Drops are a port's receive drops by reason; Stats().RxDropped is their sum.
type Drops struct {
	Truncated      uint64 // larger than the 64 KB receive buffer (MSG_TRUNC)
	BadVnetHdr     uint64 // shorter than its virtio_net_hdr
	GSOUnsupported uint64 // super-frame of a GSO type not segmented here (TCPv6, UFO) or malformed
	TooBig         uint64 // frame or segment larger than a batch slot (port.MaxFrame)
	BadCsumOffsets uint64 // partial checksum offsets outside the frame
	Kernel         uint64 // dropped by the kernel before the socket (receive buffer full), as of the last Stats call
}

// Drops returns the receive drops by reason.
func (p *Port) Drops() Drops {
	return Drops{
		Truncated:      p.drops[dropTruncated].Load(),
		BadVnetHdr:     p.drops[dropBadVnetHdr].Load(),
		GSOUnsupported: p.drops[dropGSOUnsupported].Load(),
		TooBig:         p.drops[dropTooBig].Load(),
		BadCsumOffsets: p.drops[dropBadCsumOffsets].Load(),
		Kernel:         p.kernelDrops.Load(),
	}
}

// Close closes the socket; a ReadBatch in progress returns port.ErrClosed.
func (p *Port) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	return p.file.Close()
}
