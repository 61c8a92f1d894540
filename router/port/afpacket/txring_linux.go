package afpacket

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"vrouter/packet"
)

// The TPACKET_V2 transmit ring. WriteBatch copies each plain frame (and
// its virtio_net_hdr) into the next free slot, marks it SEND_REQUEST, and
// one send(2) per batch makes the kernel send every marked slot.
//
// The slot's virtio_net_hdr says hdr_len = the frame's length: the kernel
// copies that many bytes into the skb's linear part, so the whole frame is
// copied and no ring page is attached to the skb. (With the kernel's
// default the frame's payload stays in the ring's pages as skb fragments,
// and the slot is marked free when the skb is orphaned, which a veth, a
// TAP and the local IP receive path do while they still read those pages:
// a reused slot could change a frame under a local receiver. Copied, the
// slot is free once sent.) Measured (BenchmarkTx, 64-byte frames, veth):
// about 1.9 times the frames per CPU second of sendmmsg with the qdisc
// bypassed, and faster than the ring with the pages attached.
//
// What does not fit a slot goes through a second socket with sendmmsg, the
// pending ring slots sent first so that frames leave in order: GSO
// super-frames (the kernel segments them from the skb), and frames larger
// than a slot or than the device's MTU (which the side socket refuses with
// an error that is counted, where the ring would drop them silently).
type txRing struct {
	fd      int    // the ring's own socket, not in the runtime poller
	mem     []byte // the slots
	fs, nf  int
	next    int     // next slot to fill
	pending int     // slots marked since the last send
	last    *uint32 // status of the last slot marked
	vnetLen int
	maxLen  int // largest frame a slot takes
}

const (
	txSlotSize    = 2048
	txDefaultNum  = 512
	txDataOff     = 32 // TPACKET2_HDRLEN - sizeof(struct sockaddr_ll)
	txStatusAvail = unix.TP_STATUS_AVAILABLE
	txStatusSend  = unix.TP_STATUS_SEND_REQUEST
	txWaitSpins   = 1000 // kicks and yields before a frame finds no free slot
)

func newTxRing(n int, vnet bool) *txRing {
	if n <= 0 {
		n = txDefaultNum
	}
	per := v2BlockSize / txSlotSize
	n = (n + per - 1) / per * per
	t := &txRing{fs: txSlotSize, nf: n}
	if vnet {
		t.vnetLen = packet.VnetHdrLen
	}
	t.maxLen = t.fs - txDataOff - t.vnetLen
	return t
}

// openTxRing opens a socket (no protocol: it receives nothing) with a
// tx ring of n slots (0: txDefaultNum), bound to the device.
//
// The ring has a socket of its own, kept out of the Go runtime's poller
// (nothing ever waits on it: kicks are MSG_DONTWAIT): the kernel frees
// every sent frame's skb with a write-space wake-up of its socket, and on
// a socket in the poller (registered for writability, edge-triggered)
// each of those is an epoll event that can wake the poller's thread for
// nothing. In a system profile of the iperf3 benchmark with the hosts'
// offloads off (1500-byte frames) they were 1.6% of all CPU samples (the
// receive wake-ups 2.4%); BenchmarkTx/port: about a quarter less process
// CPU with the ring on its own socket. End to end (bench, TCP) the
// difference was lost in the shared machine's noise.
func openTxRing(ifindex, n int, vnet, bypass bool) (*txRing, error) {
	t := newTxRing(n, vnet)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	t.fd = fd
	set := func(opt, v int, what string) error {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, opt, v); err != nil {
			unix.Close(fd)
			return fmt.Errorf("%s: %v", what, err)
		}
		return nil
	}
	if err := set(unix.PACKET_VERSION, unix.TPACKET_V2, "TPACKET_V2"); err != nil {
		return nil, err
	}
	if vnet {
		if err := set(unix.PACKET_VNET_HDR, 1, "PACKET_VNET_HDR"); err != nil {
			return nil, err
		}
	}
	if bypass {
		if err := set(unix.PACKET_QDISC_BYPASS, 1, "PACKET_QDISC_BYPASS"); err != nil {
			return nil, err
		}
	}
	// Frames the ring refuses are skipped, not left to block it.
	if err := set(unix.PACKET_LOSS, 1, "PACKET_LOSS"); err != nil {
		return nil, err
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	}
	req := unix.TpacketReq{Block_size: v2BlockSize, Block_nr: uint32(t.nf * t.fs / v2BlockSize), Frame_size: uint32(t.fs), Frame_nr: uint32(t.nf)}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &req); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("PACKET_TX_RING (TPACKET_V2, %d frames of %d bytes): %v", t.nf, t.fs, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("binding: %v", err)
	}
	if t.mem, err = unix.Mmap(fd, 0, t.nf*t.fs, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("mmap of the %d-byte ring: %v", t.nf*t.fs, err)
	}
	return t, nil
}

// close unmaps the ring and closes its socket (txMu held, or before the
// port is in use).
func (t *txRing) close() {
	if t.mem != nil {
		_ = unix.Munmap(t.mem)
		t.mem = nil
	}
	unix.Close(t.fd)
}

func (t *txRing) status(i int) *uint32 {
	return (*uint32)(unsafe.Pointer(&t.mem[i*t.fs]))
}

// sideSocket opens the socket for frames that do not go into the ring: no
// protocol (it receives nothing), bound to the device, non-blocking.
func sideSocket(ifindex int, vnet, bypass bool) (int, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	set := func(opt, v int) error { return unix.SetsockoptInt(fd, unix.SOL_PACKET, opt, v) }
	if vnet {
		if err := set(unix.PACKET_VNET_HDR, 1); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	if bypass {
		if err := set(unix.PACKET_QDISC_BYPASS, 1); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// unmapRings unmaps the rx ring (the tx ring has its own mapping, which
// Close removes).
func (p *Port) unmapRings() {
	p.ring.unmap()
}

// ringFits reports whether frame f with metadata m goes into a ring slot.
func (p *Port) ringFits(f []byte, m *packet.VnetHdr) bool {
	return len(f) > 0 && len(f) <= p.txr.maxLen && len(f) <= p.mtu+packet.EtherHdrLen+2*packet.VLANHdrLen &&
		m.GSOType == packet.GSONone && (p.vnet || *m == packet.VnetHdr{})
}

// ringPut copies f into the next slot and marks it; false when no slot
// came free (the kernel is still sending all of them).
func (p *Port) ringPut(f []byte, m packet.VnetHdr) bool {
	t := p.txr
	st := t.status(t.next)
	for i := 0; atomic.LoadUint32(st) != txStatusAvail; i++ {
		if atomic.LoadUint32(st) == unix.TP_STATUS_WRONG_FORMAT {
			break // refused (and skipped, PACKET_LOSS): reuse it
		}
		if i == txWaitSpins {
			return false
		}
		if atomic.LoadUint32(st) == txStatusSend {
			t.pending = max(t.pending, 1) // left marked by a send that stopped early
			t.last = st
		}
		p.ringKick()
		if i > 8 {
			runtime.Gosched()
		}
	}
	slot := t.mem[t.next*t.fs : (t.next+1)*t.fs]
	if t.vnetLen > 0 {
		m.HdrLen = uint16(len(f)) // copy the whole frame into the skb
		m.Put(slot[txDataOff:])
	}
	copy(slot[txDataOff+t.vnetLen:], f)
	*(*uint32)(unsafe.Pointer(&slot[t2Len])) = uint32(t.vnetLen + len(f))
	atomic.StoreUint32(st, txStatusSend)
	t.next++
	if t.next == t.nf {
		t.next = 0
	}
	t.pending++
	t.last = st
	return true
}

// writeRing sends frames through the ring, and those that do not fit a
// slot through the side socket (ring slots before them sent first).
func (p *Port) writeRing(frames [][]byte, meta []packet.VnetHdr) (int, error) {
	metaOf := func(i int) packet.VnetHdr {
		if i < len(meta) {
			return meta[i]
		}
		return packet.VnetHdr{}
	}
	sent, ringSent, full := 0, 0, 0
	var ringBytes, csum uint64
	var err error
	for i := 0; i < len(frames); {
		m := metaOf(i)
		if !p.ringFits(frames[i], &m) {
			// A run of frames for the side socket.
			j := i + 1
			for j < len(frames) {
				if mj := metaOf(j); p.ringFits(frames[j], &mj) {
					break
				}
				j++
			}
			p.ringKick()
			var mm []packet.VnetHdr
			if i < len(meta) {
				mm = meta[i:min(j, len(meta))]
			}
			var n int
			n, err = p.writeMmsg(frames[i:j], mm, p.sideRC)
			sent += n
			if err != nil {
				break
			}
			i = j
			continue
		}
		if m.Flags&packet.VnetNeedsCsum != 0 {
			csum++
		}
		if p.ringPut(frames[i], m) {
			ringSent++
			ringBytes += uint64(len(frames[i]))
		} else {
			full++
		}
		i++
	}
	p.ringKick()
	c := p.c
	c.txPackets.Add(uint64(ringSent))
	c.txBytes.Add(ringBytes)
	if csum != 0 {
		c.c[cTxCsum].Add(csum)
	}
	if full != 0 {
		c.txErrors.Add(uint64(full))
		c.c[dropTxRingFull].Add(uint64(full))
	}
	return sent + ringSent, err
}

// ringKick makes the kernel send the marked slots.
func (p *Port) ringKick() {
	if p.txr.pending == 0 {
		return
	}
	p.txr.pending = 0
	p.txr.kick()
}

// kick runs send(2) on the ring's socket. The kernel stops early when the
// socket's send buffer is full (EAGAIN, frames still marked): again, a
// bounded number of times, so that a batch does not wait for the next one.
func (t *txRing) kick() {
	for i := 0; i < txWaitSpins; i++ {
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(t.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e == 0 || atomic.LoadUint32(t.last) != txStatusSend {
			return
		}
		runtime.Gosched()
	}
}
