package afxdp

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ring is one of the four single-producer/single-consumer rings the kernel
// shares with an AF_XDP socket (mmap'd): fill and completion hold UMEM
// addresses (8 bytes each), rx and tx hold descriptors (16 bytes each).
type ring struct {
	mem      []byte
	producer *uint32
	consumer *uint32
	flags    *uint32
	base     unsafe.Pointer // the entries
	mask     uint32
	size     uint32
}

// mapRing maps ring pgoff of fd with the given offsets, entries and entry size.
func mapRing(fd int, pgoff int64, off unix.XDPRingOffset, entries, esize uint32) (ring, error) {
	n := int(off.Desc) + int(entries*esize)
	mem, err := unix.Mmap(fd, pgoff, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return ring{}, err
	}
	p := unsafe.Pointer(&mem[0])
	return ring{
		mem:      mem,
		producer: (*uint32)(unsafe.Add(p, off.Producer)),
		consumer: (*uint32)(unsafe.Add(p, off.Consumer)),
		flags:    (*uint32)(unsafe.Add(p, off.Flags)),
		base:     unsafe.Add(p, off.Desc),
		mask:     entries - 1,
		size:     entries,
	}, nil
}

func (r *ring) unmap() {
	if r.mem != nil {
		unix.Munmap(r.mem)
		r.mem = nil
	}
}

// addr is entry i (masked) of a fill or completion ring.
func (r *ring) addr(i uint32) *uint64 {
	return (*uint64)(unsafe.Add(r.base, uintptr(i&r.mask)*8))
}

// desc is entry i (masked) of an rx or tx ring.
func (r *ring) desc(i uint32) *unix.XDPDesc {
	return (*unix.XDPDesc)(unsafe.Add(r.base, uintptr(i&r.mask)*unsafe.Sizeof(unix.XDPDesc{})))
}

// needWakeup reports whether the kernel asked for a wakeup (XDP_USE_NEED_WAKEUP).
func (r *ring) needWakeup() bool { return atomic.LoadUint32(r.flags)&unix.XDP_RING_NEED_WAKEUP != 0 }

// xsk is one AF_XDP socket bound to one queue of the device, with its own
// UMEM: the first half of the frames serve rx (they circulate between the
// fill ring, the kernel and the rx ring), the second half tx (free list,
// tx ring, completion ring).
type xsk struct {
	fd    int
	queue int
	zc    bool // bound in zero-copy mode

	umem      []byte
	frameSize uint32
	fill      ring
	comp      ring
	rx        ring
	tx        ring

	// rx state (the single reader).
	rxCons   uint32   // our consumer index on rx
	fillProd uint32   // our producer index on fill
	held     []uint64 // frames of the last batch, handed over in place

	txBudget int // frames one sendto may transmit (0: the kernel's default, 32)

	// tx state (under Port.txMu).
	txProd   uint32 // our producer index on tx
	compCons uint32 // our consumer index on completion
	txFree   []uint64
}

// socketOpts are the sizes of one socket's UMEM and rings.
type socketOpts struct {
	frames    uint32 // UMEM frames; half rx, half tx
	frameSize uint32
	ifindex   int
	queue     int
	zeroCopy  bool // ask for XDP_ZEROCOPY (else XDP_COPY)
}

// errBind wraps a bind failure so that Open can retry in copy mode.
type errBind struct{ err error }

func (e errBind) Error() string { return "bind: " + e.err.Error() }
func (e errBind) Unwrap() error { return e.err }

// newXSK creates, sizes, maps and binds one socket. On error nothing is left open.
func newXSK(o socketOpts) (x *xsk, err error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("AF_XDP socket: %w", err)
	}
	x = &xsk{fd: fd, queue: o.queue, frameSize: o.frameSize}
	defer func() {
		if err != nil {
			x.close()
			x = nil
		}
	}()
	x.umem, err = unix.Mmap(-1, 0, int(o.frames*o.frameSize), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return x, fmt.Errorf("UMEM of %d bytes: %w", o.frames*o.frameSize, err)
	}
	reg := unix.XDPUmemReg{
		Addr: uint64(uintptr(unsafe.Pointer(&x.umem[0]))),
		Len:  uint64(len(x.umem)),
		Size: o.frameSize,
	}
	// The kernel takes the older, shorter layout too; pass the size it has.
	if err := setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		return x, fmt.Errorf("XDP_UMEM_REG: %w", err)
	}
	half := o.frames / 2
	for _, s := range []struct{ opt, n int }{
		{unix.XDP_UMEM_FILL_RING, int(half)},
		{unix.XDP_UMEM_COMPLETION_RING, int(half)},
		{unix.XDP_RX_RING, int(half)},
		{unix.XDP_TX_RING, int(half)},
	} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, s.opt, s.n); err != nil {
			return x, fmt.Errorf("ring size (option %d): %w", s.opt, err)
		}
	}
	var off unix.XDPMmapOffsets
	l := uint32(unsafe.Sizeof(off))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS,
		uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&l)), 0); e != 0 {
		return x, fmt.Errorf("XDP_MMAP_OFFSETS: %w", e)
	}
	if x.fill, err = mapRing(fd, unix.XDP_UMEM_PGOFF_FILL_RING, off.Fr, half, 8); err != nil {
		return x, fmt.Errorf("mapping the fill ring: %w", err)
	}
	if x.comp, err = mapRing(fd, unix.XDP_UMEM_PGOFF_COMPLETION_RING, off.Cr, half, 8); err != nil {
		return x, fmt.Errorf("mapping the completion ring: %w", err)
	}
	dsz := uint32(unsafe.Sizeof(unix.XDPDesc{}))
	if x.rx, err = mapRing(fd, unix.XDP_PGOFF_RX_RING, off.Rx, half, dsz); err != nil {
		return x, fmt.Errorf("mapping the rx ring: %w", err)
	}
	if x.tx, err = mapRing(fd, unix.XDP_PGOFF_TX_RING, off.Tx, half, dsz); err != nil {
		return x, fmt.Errorf("mapping the tx ring: %w", err)
	}
	// The fill ring gets every rx frame before bind, so that the first
	// frames find room.
	for i := uint32(0); i < half; i++ {
		*x.fill.addr(i) = uint64(i) * uint64(o.frameSize)
	}
	x.fillProd = half
	atomic.StoreUint32(x.fill.producer, x.fillProd)
	x.held = make([]uint64, 0, half)
	x.txFree = make([]uint64, 0, half)
	for i := o.frames - 1; i >= half; i-- {
		x.txFree = append(x.txFree, uint64(i)*uint64(o.frameSize))
	}
	// One sendto may transmit a whole batch instead of the kernel's
	// default 32 frames (Linux 6.17+; older kernels refuse the option and
	// keep their budget).
	if unix.SetsockoptInt(fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, int(min(half/2, 512))) == nil {
		x.txBudget = int(min(half/2, 512))
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	}
	flags := uint16(unix.XDP_USE_NEED_WAKEUP)
	if o.zeroCopy {
		flags |= unix.XDP_ZEROCOPY
	} else {
		flags |= unix.XDP_COPY
	}
	if err := unix.Bind(fd, &unix.SockaddrXDP{Flags: flags, Ifindex: uint32(o.ifindex), QueueID: uint32(o.queue)}); err != nil {
		return x, errBind{err}
	}
	var opts uint32
	l = 4
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_OPTIONS,
		uintptr(unsafe.Pointer(&opts)), uintptr(unsafe.Pointer(&l)), 0); e == 0 {
		x.zc = opts&unix.XDP_OPTIONS_ZEROCOPY != 0
	} else {
		x.zc = o.zeroCopy
	}
	return x, nil
}

func setsockopt(fd, opt int, p unsafe.Pointer, n uintptr) error {
	if _, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), n, 0); e != 0 {
		return e
	}
	return nil
}

// close releases the socket, its rings and its UMEM.
func (x *xsk) close() {
	x.closeSocket()
	x.unmapUMEM()
}

// closeSocket releases the socket and its rings (the kernel lets go of the
// UMEM).
func (x *xsk) closeSocket() {
	x.rx.unmap()
	x.tx.unmap()
	x.fill.unmap()
	x.comp.unmap()
	if x.fd >= 0 {
		unix.Close(x.fd)
		x.fd = -1
	}
}

// unmapUMEM unmaps the UMEM (after closeSocket).
func (x *xsk) unmapUMEM() {
	if x.umem != nil {
		unix.Munmap(x.umem)
		x.umem = nil
	}
}

// stats reads the kernel's counters of the socket (XDP_STATISTICS).
func (x *xsk) stats() (unix.XDPStatistics, error) {
	var st unix.XDPStatistics
	l := uint32(unsafe.Sizeof(st))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(x.fd), unix.SOL_XDP, unix.XDP_STATISTICS,
		uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&l)), 0); e != 0 {
		return st, e
	}
	return st, nil
}

// rxAvailable is the number of received descriptors waiting on rx.
func (x *xsk) rxAvailable() uint32 { return atomic.LoadUint32(x.rx.producer) - x.rxCons }

// reclaim moves completed tx frames back to the free list.
func (x *xsk) reclaim() int {
	prod := atomic.LoadUint32(x.comp.producer)
	n := prod - x.compCons
	for i := uint32(0); i < n; i++ {
		a := *x.comp.addr(x.compCons + i)
		x.txFree = append(x.txFree, a&^uint64(x.frameSize-1))
	}
	if n > 0 {
		x.compCons = prod
		atomic.StoreUint32(x.comp.consumer, prod)
	}
	return int(n)
}

// txOutstanding is the number of descriptors on tx the kernel has not taken yet.
func (x *xsk) txOutstanding() uint32 { return x.txProd - atomic.LoadUint32(x.tx.consumer) }

// kick asks the kernel to transmit what is on tx: always in copy mode (the
// kernel sends only from sendto), in zero-copy mode only when the driver
// asked for a wakeup. In copy mode one sendto sends at
// most a few dozen frames and returns EAGAIN when more are left; it is
// repeated while it makes progress. It returns the number of sendto calls
// and a hard error (transient ones are left for the next kick).
func (x *xsk) kick() (calls int, err error) {
	stalls := 0
	for x.txOutstanding() > 0 {
		if x.zc && !x.tx.needWakeup() {
			return calls, nil // the driver polls the ring itself
		}
		before := x.txOutstanding()
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(x.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		calls++
		switch e {
		case 0, unix.EAGAIN, unix.EBUSY, unix.ENOBUFS, unix.EINTR:
		case unix.ENETDOWN, unix.ENXIO:
			return calls, nil // link down: the frames wait on tx
		default:
			return calls, e
		}
		if x.txOutstanding() >= before {
			if stalls++; stalls > 3 {
				return calls, nil
			}
		} else {
			stalls = 0
		}
	}
	return calls, nil
}
