package afxdp

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
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
	// Mode forces the XDP mode: ModeNative or ModeGeneric; "" tries native
	// first and falls back to generic.
	Mode string
	// CopyOnly skips the zero-copy bind attempt.
	CopyOnly bool
	// Queues limits the number of rx queues (sockets) used; 0 means every
	// queue of the device.
	Queues int
	// Frames is the number of UMEM frames per socket (a power of two, half
	// for rx, half for tx); 0 means 4096.
	Frames int
	// NoCsumFix leaves partial TCP/UDP checksums as they arrive (see
	// completePartial). For tests and measurements.
	NoCsumFix bool
	// RxCopy copies received frames into the batch's own slots instead of
	// handing them over in place in the UMEM. For measurements.
	RxCopy bool
	// Spin is how long ReadBatch keeps looking at the rx rings before it
	// blocks in poll(2) when they are empty: a frame arriving meanwhile is
	// taken without a sleep and a wakeup. 0 means DefaultSpin; negative
	// means none.
	Spin time.Duration
}

// DefaultSpin is Options.Spin's default.
const DefaultSpin = 50 * time.Microsecond

// frameSize is the UMEM frame (chunk) size: a page, so that the largest
// frame is 4096 minus the kernel's XDP headroom (256).
const frameSize = 4096

// maxTxFrame is the largest frame WriteBatch sends.
const maxTxFrame = frameSize

// Port is an AF_XDP port. Create it with Open.
type Port struct {
	name, device string
	ifindex      int
	mac          [6]byte
	mtu          int
	csumFix      bool
	rxCopy       bool
	spin         time.Duration

	prog      *xdpProgram
	xsks      []*xsk
	zeroCopy  bool
	nativeErr error // why native mode was not used (generic fallback), if it was tried

	closed atomic.Bool
	wakeFd int // eventfd: Close wakes a reader blocked in poll

	// Receive state, guarded by rxMu (held by the one reader).
	rxMu    sync.Mutex
	rxNext  int // queue to look at first
	pollFds []unix.PollFd
	rxPolls atomic.Uint64
	// umemOwner: the reader has read in place, so the UMEMs stay mapped
	// after Close until it sees the close (its last batch points into them).
	umemOwner bool
	noRoom    atomic.Uint64 // frames dropped: no headroom in the UMEM frame

	// Transmit state, guarded by txMu.
	txMu sync.Mutex

	rxPackets, rxBytes, csum atomic.Uint64
	txPackets, txBytes       atomic.Uint64
	txTooBig, txRingFull     atomic.Uint64
	txKicks, txKickErrors    atomic.Uint64
	statsMu                  sync.Mutex
	last                     unix.XDPStatistics // kernel counters at Close
	lastSet                  bool
}

var _ port.Port = (*Port)(nil)

// Open opens an AF_XDP port called name on the existing interface device:
// it attaches the XDP program (native mode where the driver has it, else
// generic), opens one socket per rx queue and binds it (zero-copy where the
// driver has it, else copy).
func Open(name, device string, opts Options) (*Port, error) {
	link, err := netlink.LinkByName(device)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("port %q: device %q not found (an afxdp port needs an existing interface: create it, or correct device in the file)", name, device)
		}
		return nil, fmt.Errorf("port %q: looking up device %q: %v", name, device, err)
	}
	a := link.Attrs()
	switch opts.Mode {
	case "", ModeNative, ModeGeneric:
	default:
		return nil, fmt.Errorf("port %q: unknown XDP mode %q", name, opts.Mode)
	}
	frames := opts.Frames
	if frames == 0 {
		frames = 4096
	}
	if frames < 8 || frames&(frames-1) != 0 {
		return nil, fmt.Errorf("port %q: UMEM frames %d: want a power of two >= 8", name, frames)
	}
	nq := a.NumRxQueues
	if nq < 1 {
		nq = 1
	}
	if opts.Queues > 0 && opts.Queues < nq {
		nq = opts.Queues
	}
	p := &Port{name: name, device: device, ifindex: a.Index, csumFix: !opts.NoCsumFix, rxCopy: opts.RxCopy, wakeFd: -1}
	switch {
	case opts.Spin == 0:
		p.spin = DefaultSpin
	case opts.Spin > 0:
		p.spin = opts.Spin
	}
	fail := func(err error) (*Port, error) {
		p.release()
		return nil, fmt.Errorf("port %q on %q: %v", name, device, err)
	}
	if a.Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(link); err != nil {
			return fail(fmt.Errorf("setting link up: %v", err))
		}
	}
	if p.prog, err = loadProgram(max(a.NumRxQueues, nq, 1)); err != nil {
		if errors.Is(err, unix.EPERM) {
			return fail(fmt.Errorf("%v (needs CAP_BPF and CAP_NET_ADMIN: run as root)", err))
		}
		return fail(err)
	}
	if p.nativeErr, err = p.prog.attach(a.Index, opts.Mode); err != nil {
		return fail(err)
	}
	zc := !opts.CopyOnly && p.prog.mode == ModeNative
	for q := 0; q < nq; q++ {
		so := socketOpts{frames: uint32(frames), frameSize: frameSize, ifindex: a.Index, queue: q, zeroCopy: zc}
		x, err := newXSK(so)
		var be errBind
		if err != nil && zc && errors.As(err, &be) {
			// The driver has no zero-copy (EOPNOTSUPP) or refuses it here: copy mode.
			zc = false
			so.zeroCopy = false
			x, err = newXSK(so)
		}
		if err != nil {
			if errors.As(err, &be) && q > 0 && errors.Is(err, unix.EINVAL) {
				break // fewer active queues than the device has allocated
			}
			if errors.Is(err, unix.EAFNOSUPPORT) {
				return fail(fmt.Errorf("queue %d: the kernel has no AF_XDP (CONFIG_XDP_SOCKETS): %v", q, err))
			}
			if errors.Is(err, unix.EPERM) {
				return fail(fmt.Errorf("queue %d: %v (needs CAP_NET_RAW and CAP_NET_ADMIN: run as root)", q, err))
			}
			return fail(fmt.Errorf("queue %d: %v", q, err))
		}
		p.xsks = append(p.xsks, x)
		if err := p.prog.xsks.Put(uint32(q), uint32(x.fd)); err != nil {
			return fail(fmt.Errorf("queue %d: adding the socket to the XSKMAP: %v", q, err))
		}
	}
	p.zeroCopy = p.xsks[0].zc
	for _, x := range p.xsks {
		p.zeroCopy = p.zeroCopy && x.zc
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return fail(fmt.Errorf("eventfd: %v", err))
	}
	p.wakeFd = efd
	p.pollFds = make([]unix.PollFd, len(p.xsks)+1)
	for i, x := range p.xsks {
		p.pollFds[i] = unix.PollFd{Fd: int32(x.fd), Events: unix.POLLIN}
	}
	p.pollFds[len(p.xsks)] = unix.PollFd{Fd: int32(efd), Events: unix.POLLIN}

	copy(p.mac[:], a.HardwareAddr)
	if opts.MAC != ([6]byte{}) {
		p.mac = opts.MAC
	}
	p.mtu = a.MTU
	if opts.MTU > 0 {
		p.mtu = opts.MTU
	}
	return p, nil
}

// release frees whatever Open got so far (also the normal end of Close).
func (p *Port) release() {
	if p.prog != nil {
		p.prog.close() // detach first: no more frames for the sockets
	}
	for _, x := range p.xsks {
		x.close()
	}
	p.xsks = nil
	if p.wakeFd >= 0 {
		unix.Close(p.wakeFd)
		p.wakeFd = -1
	}
}

func (p *Port) Name() string   { return p.name }
func (p *Port) Device() string { return p.device }
func (p *Port) Driver() string { return "afxdp" }
func (p *Port) MAC() [6]byte   { return p.mac }
func (p *Port) MTU() int       { return p.mtu }

// Offloads implements port.Port: AF_XDP frames carry no GSO or checksum
// metadata, so only plain frames move in either direction.
func (p *Port) Offloads() bool { return false }

// Ifindex is the interface index the program is attached to.
func (p *Port) Ifindex() int { return p.ifindex }

// Mode is the XDP mode the program runs in: ModeNative or ModeGeneric.
func (p *Port) Mode() string { return p.prog.mode }

// NativeError is why native mode could not be used when Open fell back to
// generic mode (nil otherwise).
func (p *Port) NativeError() error { return p.nativeErr }

// ZeroCopy reports whether every socket is bound in zero-copy mode (else copy mode).
func (p *Port) ZeroCopy() bool { return p.zeroCopy }

// Queues is the number of rx queues read (one socket each).
func (p *Port) Queues() int { return len(p.xsks) }

// ReadBatch fills b with received frames (see port.Port). It blocks until at
// least one frame is available. Unless Options.RxCopy, b.Bufs point into the
// UMEM (each frame with port.Headroom bytes before it, nothing after it)
// until the next ReadBatch, which gives those frames back to the kernel: as
// with an afpacket ring, keep one Batch per port and nothing past the next
// read.
func (p *Port) ReadBatch(b *port.Batch) (int, error) {
	p.rxMu.Lock()
	defer p.rxMu.Unlock()
	b.N, b.HasMeta = 0, false
	if !p.closed.Load() {
		p.releaseHeld()
	}
	var spinStart time.Time
	for {
		if p.closed.Load() {
			return 0, p.leaveClosed()
		}
		if n := p.deliver(b); n > 0 {
			b.N = n
			return n, nil
		}
		if p.spin > 0 {
			// Look again for a while before sleeping: a wakeup costs more
			// than the frames of a busy link take to arrive, and the
			// scheduler tends to wake the reader on the CPU that is
			// delivering to it.
			if spinStart.IsZero() {
				spinStart = time.Now()
			}
			if time.Since(spinStart) < p.spin {
				for i := 0; i < 64 && !p.rxWaiting(); i++ {
				}
				continue
			}
		}
		spinStart = time.Time{}
		p.rxPolls.Add(1)
		for i := range p.pollFds {
			p.pollFds[i].Revents = 0
		}
		// poll also wakes the driver for the fill ring when it asked
		// (need_wakeup, zero-copy mode).
		if _, err := unix.Poll(p.pollFds, -1); err != nil && err != unix.EINTR {
			if p.closed.Load() {
				continue
			}
			return 0, fmt.Errorf("port %q: poll: %w", p.name, err)
		}
	}
}

// TryReadBatch is ReadBatch without the spin and the wait (port.Poller): it
// gives the previous batch's frames back and returns 0 when no frame is
// there.
func (p *Port) TryReadBatch(b *port.Batch) (int, error) {
	p.rxMu.Lock()
	defer p.rxMu.Unlock()
	b.N, b.HasMeta = 0, false
	if p.closed.Load() {
		return 0, p.leaveClosed()
	}
	p.releaseHeld()
	b.N = p.deliver(b)
	return b.N, nil
}

// PollFds are the sockets and the eventfd Close signals (port.Poller); a
// poll on the sockets also wakes the driver for the fill ring when it asks.
func (p *Port) PollFds() []int32 {
	fds := make([]int32, len(p.pollFds))
	for i, f := range p.pollFds {
		fds[i] = f.Fd
	}
	return fds
}

// leaveClosed is the reader's end after Close (rxMu held): Close has
// released the sockets and rings, and the UMEM, if the reader still held
// frames in it, is the reader's to unmap.
func (p *Port) leaveClosed() error {
	if p.umemOwner {
		p.umemOwner = false
		for _, x := range p.xsks {
			x.held = x.held[:0]
			x.unmapUMEM()
		}
	}
	return port.ErrClosed
}

// rxWaiting reports whether some rx ring holds a frame.
func (p *Port) rxWaiting() bool {
	for _, x := range p.xsks {
		if x.rxAvailable() != 0 {
			return true
		}
	}
	return false
}

// releaseHeld gives the frames of the previous batch back to their fill rings.
func (p *Port) releaseHeld() {
	for _, x := range p.xsks {
		if len(x.held) == 0 {
			continue
		}
		for i, a := range x.held {
			*x.fill.addr(x.fillProd + uint32(i)) = a
		}
		x.fillProd += uint32(len(x.held))
		atomic.StoreUint32(x.fill.producer, x.fillProd)
		x.held = x.held[:0]
	}
}

// deliver hands what the rx rings hold to b, from slot 0, taking the queues
// in turn: in place (the UMEM frames are held until the next ReadBatch) or,
// with RxCopy, copied into the batch's slots (the UMEM frame goes back to
// the fill ring at once).
func (p *Port) deliver(b *port.Batch) int {
	n, room := 0, b.Cap()
	var bytes, csum, noRoom uint64
	nq := len(p.xsks)
	for k := 0; k < nq && n < room; k++ {
		x := p.xsks[(p.rxNext+k)%nq]
		avail := x.rxAvailable()
		if avail == 0 {
			continue
		}
		take := min(avail, uint32(room-n))
		mask := uint64(x.frameSize - 1)
		back := uint32(0) // frames copied, given back at once
		for i := uint32(0); i < take; i++ {
			d := x.rx.desc(x.rxCons + i)
			l := int(d.Len)
			base := d.Addr &^ mask
			var dst []byte
			switch {
			case p.rxCopy:
				dst = b.Bufs[n][port.Headroom : port.Headroom+l]
				copy(dst, x.umem[d.Addr:d.Addr+uint64(l)])
				*x.fill.addr(x.fillProd + back) = base
				back++
			case d.Addr-base >= port.Headroom && d.Addr+uint64(l) <= base+uint64(x.frameSize):
				// The kernel leaves XDP_PACKET_HEADROOM (256) in front.
				end := d.Addr + uint64(l)
				b.Bufs[n] = x.umem[d.Addr-port.Headroom : end : end]
				dst = b.Bufs[n][port.Headroom:]
				x.held = append(x.held, base)
			default:
				noRoom++
				*x.fill.addr(x.fillProd + back) = base
				back++
				continue
			}
			if p.csumFix && completePartial(dst) {
				csum++
			}
			b.Off[n], b.Len[n] = port.Headroom, l
			bytes += uint64(l)
			n++
		}
		x.rxCons += take
		atomic.StoreUint32(x.rx.consumer, x.rxCons)
		if back > 0 {
			x.fillProd += back
			atomic.StoreUint32(x.fill.producer, x.fillProd)
		}
		if len(x.held) > 0 {
			p.umemOwner = true
		}
	}
	if nq > 1 {
		p.rxNext = (p.rxNext + 1) % nq
	}
	if n > 0 {
		p.rxPackets.Add(uint64(n))
		p.rxBytes.Add(bytes)
		if csum != 0 {
			p.csum.Add(csum)
		}
	}
	if noRoom != 0 {
		p.noRoom.Add(noRoom)
	}
	return n
}

// WriteBatch copies frames into free UMEM tx frames of the first queue's
// socket, puts them on its tx ring and wakes the kernel when it asks to.
// It returns the number of frames accepted; the others (larger than a UMEM
// frame, or no free frame while the kernel lags) are counted as drops.
// Safe for concurrent callers.
func (p *Port) WriteBatch(frames [][]byte, meta []packet.VnetHdr) (int, error) {
	if p.closed.Load() {
		return 0, port.ErrClosed
	}
	p.txMu.Lock()
	defer p.txMu.Unlock()
	if p.closed.Load() {
		return 0, port.ErrClosed
	}
	x := p.xsks[0]
	if len(x.txFree) < len(frames) {
		x.reclaim()
	}
	sent := 0
	var bytes, tooBig, full uint64
	for _, f := range frames {
		if len(f) > maxTxFrame || len(f) == 0 {
			tooBig++
			continue
		}
		if len(x.txFree) == 0 {
			// Hand what is queued to the kernel and take back what it finished.
			x.tx.producerStore(x.txProd)
			p.kick(x)
			if x.reclaim() == 0 {
				full++
				continue
			}
		}
		a := x.txFree[len(x.txFree)-1]
		x.txFree = x.txFree[:len(x.txFree)-1]
		copy(x.umem[a:a+uint64(len(f))], f)
		d := x.tx.desc(x.txProd)
		d.Addr, d.Len, d.Options = a, uint32(len(f)), 0
		x.txProd++
		sent++
		bytes += uint64(len(f))
	}
	x.tx.producerStore(x.txProd)
	p.kick(x)
	p.txPackets.Add(uint64(sent))
	p.txBytes.Add(bytes)
	if tooBig != 0 {
		p.txTooBig.Add(tooBig)
	}
	if full != 0 {
		p.txRingFull.Add(full)
	}
	return sent, nil
}

func (r *ring) producerStore(v uint32) { atomic.StoreUint32(r.producer, v) }

func (p *Port) kick(x *xsk) {
	calls, err := x.kick()
	if calls != 0 {
		p.txKicks.Add(uint64(calls))
	}
	if err != nil {
		p.txKickErrors.Add(1)
	}
}

// kernelStats sums the kernel's counters over the sockets (or returns those
// saved at Close).
func (p *Port) kernelStats() unix.XDPStatistics {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	if p.lastSet {
		return p.last
	}
	var s unix.XDPStatistics
	for _, x := range p.xsks {
		st, err := x.stats()
		if err != nil {
			continue
		}
		s.Rx_dropped += st.Rx_dropped
		s.Rx_invalid_descs += st.Rx_invalid_descs
		s.Tx_invalid_descs += st.Tx_invalid_descs
		s.Rx_ring_full += st.Rx_ring_full
		s.Rx_fill_ring_empty_descs += st.Rx_fill_ring_empty_descs
		s.Tx_ring_empty_descs += st.Tx_ring_empty_descs
	}
	return s
}

// Stats returns the port counters; RxDropped holds the kernel's receive
// drops, TxErrors the frames not sent.
func (p *Port) Stats() port.Stats {
	k := p.kernelStats()
	return port.Stats{
		RxPackets: p.rxPackets.Load(),
		RxBytes:   p.rxBytes.Load(),
		TxPackets: p.txPackets.Load(),
		TxBytes:   p.txBytes.Load(),
		RxDropped: k.Rx_dropped + k.Rx_ring_full + k.Rx_invalid_descs + p.noRoom.Load(),
		TxErrors:  k.Tx_invalid_descs + p.txTooBig.Load() + p.txRingFull.Load(),
		RxCsum:    p.csum.Load(),
	}
}

// Counters returns the port's counters (Descs), the kernel's read now.
func (p *Port) Counters() []counter.Value {
	k := p.kernelStats()
	var v [numCounters]uint64
	v[cRxDropped] = k.Rx_dropped
	v[cRxRingFull] = k.Rx_ring_full
	v[cRxInvalidDescs] = k.Rx_invalid_descs
	v[cTxInvalidDescs] = k.Tx_invalid_descs
	v[cFillRingEmpty] = k.Rx_fill_ring_empty_descs
	v[cTxRingEmpty] = k.Tx_ring_empty_descs
	v[cTxTooBig] = p.txTooBig.Load()
	v[cTxRingFull] = p.txRingFull.Load()
	v[cCsum] = p.csum.Load()
	v[cTxKicks] = p.txKicks.Load()
	v[cTxKickErrors] = p.txKickErrors.Load()
	v[cRxPolls] = p.rxPolls.Load()
	v[cRxNoHeadroom] = p.noRoom.Load()
	out := make([]counter.Value, numCounters)
	for i := range out {
		out[i] = counter.Value{Desc: descs[i], Value: v[i]}
	}
	return out
}

// Close detaches the XDP program and releases the sockets, rings and UMEM;
// a ReadBatch in progress returns port.ErrClosed.
func (p *Port) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	one := uint64(1)
	unix.Write(p.wakeFd, (*[8]byte)(unsafe.Pointer(&one))[:])
	p.rxMu.Lock() // the reader has left the rings
	defer p.rxMu.Unlock()
	p.txMu.Lock()
	defer p.txMu.Unlock()
	st := p.kernelStats()
	p.statsMu.Lock()
	p.last, p.lastSet = st, true
	var err error
	if p.prog != nil {
		err = p.prog.close()
	}
	for _, x := range p.xsks {
		x.closeSocket()
		if !p.umemOwner {
			x.unmapUMEM()
		}
	}
	if p.wakeFd >= 0 {
		unix.Close(p.wakeFd)
		p.wakeFd = -1
	}
	p.statsMu.Unlock()
	if err != nil {
		return fmt.Errorf("port %q: detaching the XDP program from %q: %v", p.name, p.device, err)
	}
	return nil
}
