package afpacket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"vrouter/packet"
	"vrouter/router/port"
)

// The mmap receive rings. The kernel writes each frame as
//
//	tpacket header | sockaddr_ll (20) | ... | reserve (port.Headroom) | virtio_net_hdr (10) | frame (at tp_mac)
//
// so the batch slot of a frame is the ring itself, from port.Headroom bytes
// before tp_mac to the frame's end. A slot (V2) or block (V3) belongs to the
// kernel until its status has TP_STATUS_USER, then to us until we store
// TP_STATUS_KERNEL again, which release does for everything delivered by the
// previous batch.
//
// TPACKET_V2 (RxRing): fixed slots of RingFrameSize bytes, each with its own
// status; the kernel wakes the reader per frame, so a frame waits for
// nothing. A frame larger than a slot (a super-frame, a jumbo frame) comes
// truncated in the ring with TP_STATUS_COPY and whole on the socket's
// receive queue (PACKET_COPY_THRESH): recvCopy reads it with recvmsg into a
// port buffer of the batch slot's index.
//
// TPACKET_V3 (RxRingV3): blocks of RingBlockSize bytes holding frames of any
// size back to back (tp_next_offset); the kernel hands a block over when it
// is full or RingTimeout after its first frame, and wakes the reader once
// per block.

// Offsets in struct tpacket2_hdr.
const (
	t2Status   = 0
	t2Len      = 4
	t2Snaplen  = 8
	t2Mac      = 12
	t2VlanTCI  = 24
	t2VlanTPID = 26
	t2Size     = 32
)

// Offsets in struct tpacket_block_desc (version, offset_to_priv, then
// struct tpacket_hdr_v1).
const (
	bdBlockStatus = 8
	bdNumPkts     = 12
	bdFirstPkt    = 16
	bdSize        = 48
)

// Offsets in struct tpacket3_hdr.
const (
	t3NextOffset = 0
	t3Snaplen    = 12
	t3Len        = 16
	t3Status     = 20
	t3Mac        = 24
	t3VlanTCI    = 32
	t3VlanTPID   = 36
	t3Size       = 48
)

// Ring ownership (rxRing.state): who unmaps it.
const (
	ringIdle     int32 = iota // never read: Close unmaps
	ringReading               // the reader owns it and unmaps when it sees the close
	ringUnmapped              // gone
)

// Ring geometry defaults and limits.
const (
	defaultRingSize  = 8 << 20
	defaultFrameSize = 2048 // V2: a 1500-byte MTU frame with two tags, reserve and headers
	// SuperFrameSize is a V2 slot that holds a super-frame (port.MaxSuper)
	// after the kernel's headers (tpacket2_hdr and sockaddr_ll, 16-aligned:
	// 80), the reserve and the virtio_net_hdr.
	SuperFrameSize   = (80 + port.Headroom + packet.VnetHdrLen + port.MaxSuper + 15) &^ 15
	v2BigBlockSize   = 1 << 20   // V2 blocks for slots larger than v2BlockSize (15 SuperFrameSize slots)
	defaultBlockSize = 256 << 10 // V3
	minBlockSize     = 128 << 10 // V3: a 64 KB super-frame with headers and reserve
	v2BlockSize      = 64 << 10  // V2: frames are allocated in blocks of this size
	v3FrameSize      = 2048      // V3: tp_frame_size, only checked by the kernel
)

type rxRing struct {
	v3      bool
	mem     []byte
	vnetLen int
	// V2: nf slots of fs bytes, fpb in each block of bs bytes, gap bytes
	// unused at the end of a block. V3: nb blocks of bs bytes.
	fs, nf   int
	fpb, gap int
	bs, nb   int
	// head is the oldest slot (V2) or block (V3) not given back to the
	// kernel, cur the next one to deliver (V3: the block being delivered);
	// both count from the start (index = % nf or % nb). head..cur-1 were
	// delivered and go back at the next ReadBatch.
	head, cur uint64
	off, left int // V3: offset of the next frame in block cur, frames left (0: cur not opened)
	state     atomic.Int32
	readyFn   func(fd uintptr) bool

	// V2 copies (TP_STATUS_COPY), one buffer per batch slot.
	big    [][]byte
	cpIov  unix.Iovec
	cpMsg  unix.Msghdr
	cpN    int
	cpErr  unix.Errno
	cpFlag int32
	cpFn   func(fd uintptr)
}

// newRxRing sets up the ring on fd (PACKET_VERSION and PACKET_VNET_HDR
// already set) and maps it.
func newRxRing(fd int, opts Options, vnet bool) (*rxRing, error) {
	size := opts.RingSize
	if size <= 0 {
		size = defaultRingSize
	}
	r := &rxRing{v3: opts.Rx == RxRingV3}
	if vnet {
		r.vnetLen = packet.VnetHdrLen
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_RESERVE, port.Headroom); err != nil {
		return nil, fmt.Errorf("PACKET_RESERVE: %v", err)
	}
	var total int
	if r.v3 {
		bs := opts.RingBlockSize
		if bs <= 0 {
			bs = defaultBlockSize
		}
		bs = max(bs, minBlockSize)
		pg := os.Getpagesize()
		bs = (bs + pg - 1) / pg * pg
		nb := max(size/bs, 2)
		ms := opts.RingTimeout.Milliseconds()
		if ms <= 0 {
			ms = 1
		}
		req := unix.TpacketReq3{
			Block_size:     uint32(bs),
			Block_nr:       uint32(nb),
			Frame_size:     v3FrameSize,
			Frame_nr:       uint32(bs / v3FrameSize * nb),
			Retire_blk_tov: uint32(ms),
		}
		if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
			return nil, fmt.Errorf("PACKET_RX_RING (TPACKET_V3, %d blocks of %d bytes): %v", nb, bs, err)
		}
		r.bs, r.nb, total = bs, nb, bs*nb
	} else {
		fs := opts.RingFrameSize
		if fs <= 0 {
			fs = defaultFrameSize
		}
		fs = (fs + 15) &^ 15 // TPACKET_ALIGNMENT
		bs := v2BlockSize
		if fs > v2BlockSize {
			bs = v2BigBlockSize
		}
		if fs < t2Size+20+port.Headroom+r.vnetLen+64 || fs > bs || fs <= v2BlockSize && v2BlockSize%fs != 0 {
			return nil, fmt.Errorf("ring frame size %d: must divide %d, or be at most %d, and hold a minimal frame", fs, v2BlockSize, v2BigBlockSize)
		}
		nblk := max(size/bs, 1)
		fpb := bs / fs
		nf := nblk * fpb
		// A frame too large for a slot is queued whole for recvmsg.
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_COPY_THRESH, 1); err != nil {
			return nil, fmt.Errorf("PACKET_COPY_THRESH: %v", err)
		}
		rcvbuf := opts.RcvBuf
		if rcvbuf <= 0 {
			rcvbuf = 8 << 20
		}
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
		}
		req := unix.TpacketReq{Block_size: uint32(bs), Block_nr: uint32(nblk), Frame_size: uint32(fs), Frame_nr: uint32(nf)}
		if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
			return nil, fmt.Errorf("PACKET_RX_RING (TPACKET_V2, %d frames of %d bytes): %v", nf, fs, err)
		}
		r.fs, r.nf, r.fpb, r.bs, total = fs, nf, fpb, bs, nblk*bs
		r.gap = bs - fpb*fs
		r.cpMsg.Iov = &r.cpIov
		r.cpMsg.Iovlen = 1
	}
	mem, err := unix.Mmap(fd, 0, total, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap of the %d-byte ring: %v", total, err)
	}
	r.mem = mem
	r.readyFn = func(uintptr) bool { return r.ready() }
	r.cpFn = r.recvmsg
	return r, nil
}

func (r *rxRing) unmap() {
	if r.mem != nil {
		_ = unix.Munmap(r.mem)
		r.mem = nil
	}
}

// statusAt is the status word of the V2 slot or V3 block starting at off.
func (r *rxRing) statusAt(off int) *uint32 {
	if r.v3 {
		off += bdBlockStatus
	}
	return (*uint32)(unsafe.Pointer(&r.mem[off]))
}

// at is the offset of slot (V2) or block (V3) number i.
func (r *rxRing) at(i uint64) int {
	if r.v3 {
		return int(i%uint64(r.nb)) * r.bs
	}
	k := int(i % uint64(r.nf))
	if r.gap == 0 {
		return k * r.fs
	}
	return k/r.fpb*r.bs + k%r.fpb*r.fs // slots do not cross blocks
}

func (r *rxRing) slots() uint64 {
	if r.v3 {
		return uint64(r.nb)
	}
	return uint64(r.nf)
}

// ready reports whether a frame can be delivered without waiting.
func (r *rxRing) ready() bool {
	if r.left > 0 {
		return true
	}
	return r.cur-r.head < r.slots() && atomic.LoadUint32(r.statusAt(r.at(r.cur)))&unix.TP_STATUS_USER != 0
}

// release gives what earlier batches delivered back to the kernel.
func (r *rxRing) release() {
	for r.head < r.cur {
		atomic.StoreUint32(r.statusAt(r.at(r.head)), unix.TP_STATUS_KERNEL)
		r.head++
	}
}

func (p *Port) readRing(b *port.Batch) (int, error) {
	for {
		if n, err := p.TryReadBatch(b); n > 0 || err != nil {
			return n, err
		}
		if err := p.rc.Read(p.ring.readyFn); err != nil {
			if p.closed.Load() || errors.Is(err, os.ErrClosed) {
				continue
			}
			return 0, err
		}
	}
}

// TryReadBatch is ReadBatch without the wait (port.Poller, ring modes): it
// gives the previous batch's slots back and returns 0 when no frame is
// there.
func (p *Port) TryReadBatch(b *port.Batch) (int, error) {
	r := p.ring
	b.N, b.HasMeta = 0, false
	if r == nil {
		return 0, errNotPollable
	}
	if r.state.Load() != ringReading && !r.state.CompareAndSwap(ringIdle, ringReading) {
		return 0, port.ErrClosed
	}
	for {
		if p.closed.Load() {
			if r.state.CompareAndSwap(ringReading, ringUnmapped) {
				p.unmapRings()
			}
			return 0, port.ErrClosed
		}
		r.release()
		var n int
		if r.v3 {
			n = p.deliverV3(b)
		} else {
			n = p.deliverV2(b)
		}
		if n > 0 || (!r.ready() && p.seg.n == 0) {
			b.N = n
			return n, nil
		}
		// frames that were all dropped: look again
	}
}

// PollFds is the socket (port.Poller), readable when the ring has a frame
// (or the socket queue one too big for a slot); nil in the recvmmsg mode,
// which cannot be polled this way.
func (p *Port) PollFds() []int32 {
	if p.ring == nil {
		return nil
	}
	return []int32{int32(p.fd)}
}

var errNotPollable = errors.New("afpacket: only a ring port can be polled")

// vlan decodes the stripped tag of a ring frame from its status and the
// header's tci and tpid fields.
func vlan(st uint32, tci, tpid uint16) (uint16, uint16, bool) {
	if st&unix.TP_STATUS_VLAN_VALID == 0 {
		return 0, 0, false
	}
	if st&unix.TP_STATUS_VLAN_TPID_VALID == 0 {
		tpid = packet.EtherTypeVLAN
	}
	return tci, tpid, true
}

// deliverV2 hands out the next frames of a TPACKET_V2 ring.
func (p *Port) deliverV2(b *port.Batch) int {
	r := p.ring
	mem := r.mem
	ne := binary.NativeEndian
	n, room := 0, b.Cap()
	intact := p.offloads && len(b.Meta) >= room
	var c rxCount
	for n < room {
		if p.seg.n != 0 {
			if n = p.segment(b, n, &c); p.seg.n != 0 {
				break // batch full; continue this super-frame next time
			}
			r.cur++
			continue
		}
		if r.cur-r.head >= uint64(r.nf) {
			break // every slot is ours
		}
		at := r.at(r.cur)
		st := atomic.LoadUint32(r.statusAt(at))
		if st&unix.TP_STATUS_USER == 0 {
			break
		}
		h := mem[at : at+t2Size]
		tci, tpid, tagged := vlan(st, ne.Uint16(h[t2VlanTCI:]), ne.Uint16(h[t2VlanTPID:]))
		if st&unix.TP_STATUS_COPY != 0 {
			if l, ok := p.recvCopy(n, &c); ok {
				n = p.take(b, n, r.big[n], port.Headroom, l, tci, tpid, tagged, intact, true, &c)
				if p.seg.n != 0 {
					break
				}
			}
			r.cur++
			continue
		}
		flen := int(ne.Uint32(h[t2Len:]))
		snap := int(ne.Uint32(h[t2Snaplen:]))
		mac := int(ne.Uint16(h[t2Mac:]))
		switch {
		case mac < port.Headroom+r.vnetLen || mac+snap > r.fs:
			c.ev[dropRingBadFrame]++
		case snap < flen:
			c.ev[dropTruncated]++
		default:
			n = p.take(b, n, mem, at+mac, snap, tci, tpid, tagged, intact, true, &c)
		}
		if p.seg.n != 0 {
			break
		}
		r.cur++
	}
	p.flush(n, &c)
	return n
}

// recvCopy reads the whole frame of a TP_STATUS_COPY slot from the socket
// into the port buffer for batch slot n (virtio_net_hdr in front, the frame
// at port.Headroom) and returns the frame's length.
func (p *Port) recvCopy(n int, c *rxCount) (int, bool) {
	r := p.ring
	if len(r.big) <= n {
		r.growBig(max(n+1, port.DefaultBatch))
	}
	buf := r.big[n]
	r.cpIov.Base = &buf[port.Headroom-r.vnetLen]
	r.cpIov.SetLen(len(buf) - port.Headroom + r.vnetLen)
	r.cpN, r.cpErr, r.cpFlag = 0, 0, 0
	if p.rc.Control(r.cpFn) != nil || r.cpErr != 0 {
		c.ev[dropTruncated]++ // the copy was not there (cannot happen) or the socket is closed
		return 0, false
	}
	if r.cpFlag&unix.MSG_TRUNC != 0 {
		c.ev[dropTruncated]++
		return 0, false
	}
	if r.cpN < r.vnetLen {
		c.ev[dropBadVnetHdr]++
		return 0, false
	}
	return r.cpN - r.vnetLen, true
}

// recvmsg runs under RawConn.Control for recvCopy.
func (r *rxRing) recvmsg(fd uintptr) {
	for {
		r.cpMsg.Flags = 0
		n, _, e := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&r.cpMsg)), unix.MSG_DONTWAIT)
		if e == unix.EINTR {
			continue
		}
		r.cpN, r.cpErr, r.cpFlag = int(n), e, r.cpMsg.Flags
		return
	}
}

// growBig allocates the buffers for frames copied out of the socket (V2),
// each a super-frame with headroom. Done once, at the first such frame.
func (r *rxRing) growBig(n int) {
	const size = port.Headroom + port.MaxSuper
	k := n - len(r.big)
	mem := make([]byte, k*size)
	for i := 0; i < k; i++ {
		r.big = append(r.big, mem[i*size:(i+1)*size:(i+1)*size])
	}
}

// next moves past the V3 frame at fo whose header says next, closing the
// block after its last frame.
func (r *rxRing) next(fo int, next uint32, c *rxCount) {
	r.left--
	if r.left == 0 {
		r.cur++
		return
	}
	off := fo + int(next)
	if next == 0 || off > r.bs-t3Size {
		r.badFrame(c) // a broken chain: the rest of the block is lost
		return
	}
	r.off = off
}

// badFrame skips the rest of V3 block cur.
func (r *rxRing) badFrame(c *rxCount) {
	c.ev[dropRingBadFrame] += uint64(r.left)
	r.left = 0
	r.cur++
}

// deliverV3 hands out the next frames of a TPACKET_V3 ring.
func (p *Port) deliverV3(b *port.Batch) int {
	r := p.ring
	mem := r.mem
	ne := binary.NativeEndian
	n, room := 0, b.Cap()
	intact := p.offloads && len(b.Meta) >= room
	var c rxCount
	for n < room {
		if p.seg.n != 0 {
			if n = p.segment(b, n, &c); p.seg.n != 0 {
				break // batch full; continue this super-frame next time
			}
			r.next(r.off, ne.Uint32(mem[r.at(r.cur)+r.off+t3NextOffset:]), &c)
			continue
		}
		if r.left == 0 {
			if r.cur-r.head >= uint64(r.nb) {
				break // every block is ours (a batch can hold frames of all of them)
			}
			base := r.at(r.cur)
			if atomic.LoadUint32(r.statusAt(base))&unix.TP_STATUS_USER == 0 {
				break
			}
			np := int(ne.Uint32(mem[base+bdNumPkts:]))
			if np == 0 {
				r.cur++
				continue
			}
			r.left, r.off = np, int(ne.Uint32(mem[base+bdFirstPkt:]))
		}
		base := r.at(r.cur)
		fo := r.off
		if fo < bdSize || fo > r.bs-t3Size {
			r.badFrame(&c)
			continue
		}
		h := mem[base+fo : base+fo+t3Size]
		nextOff := ne.Uint32(h[t3NextOffset:])
		snap := int(ne.Uint32(h[t3Snaplen:]))
		st := ne.Uint32(h[t3Status:])
		mac := int(ne.Uint16(h[t3Mac:]))
		start := fo + mac
		if mac < port.Headroom+r.vnetLen || start+snap > r.bs {
			r.badFrame(&c)
			continue
		}
		if snap < int(ne.Uint32(h[t3Len:])) {
			c.ev[dropTruncated]++
			r.next(fo, nextOff, &c)
			continue
		}
		tci, tpid, tagged := vlan(st, uint16(ne.Uint32(h[t3VlanTCI:])), ne.Uint16(h[t3VlanTPID:]))
		n = p.take(b, n, mem, base+start, snap, tci, tpid, tagged, intact, true, &c)
		if p.seg.n != 0 {
			break
		}
		r.next(fo, nextOff, &c)
	}
	p.flush(n, &c)
	return n
}
