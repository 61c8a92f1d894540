// Package afpacket is a port.Port on an existing kernel interface, read and
// written as raw Ethernet frames through AF_PACKET sockets.
//
// # Sockets
//
// Each socket (SOCK_RAW, ETH_P_ALL, bound to the interface) is non-blocking
// and driven by the Go runtime poller. Options set on it:
//
//   - PACKET_IGNORE_OUTGOING: the router does not read back what it sends;
//   - PACKET_ADD_MEMBERSHIP/PACKET_MR_PROMISC: frames for other MACs are seen
//     too (the router has its own MACs, and multi-link networks switch);
//   - PACKET_VNET_HDR (unless Options.NoVnetHdr): every frame, both ways,
//     comes with a virtio_net_hdr, so that GSO super-frames (a veth peer
//     with TSO hands over ~64 KB TCP frames) and CHECKSUM_PARTIAL frames are
//     recognised on receive and can be handed to the kernel on transmit;
//   - PACKET_QDISC_BYPASS (unless Options.KeepQdisc): transmitted frames go
//     straight to the driver, skipping the device's qdisc (tc) and the
//     packet taps: less work per frame, and the router keeps its own queues.
//     The price: tc shaping on the device does not apply, a full driver
//     queue drops the frame (counted in Stats.TxErrors) instead of queueing
//     it, and tcpdump on this device does not see the router's frames (use
//     the console's capture, or tcpdump on the peer). The kernel's direct
//     transmit cannot segment: a super-frame for a device without TSO is
//     refused (ENOBUFS), and WriteBatch resends it with the bypass off for
//     that one send, so the qdisc path segments it (tx-gso-via-qdisc). On a
//     veth (qdisc noqueue) the bypass measured no difference; it is on for
//     real NICs;
//   - PACKET_FANOUT (hash) when the port has several queues (OpenQueues) or
//     Options.FanoutGroup is set, see below.
//
// Open sets the interface up if it is down; it changes nothing else on the
// device (no addresses, no offload settings).
//
// # Receive: rings, in place
//
// Three receive paths (Options.Rx), measured with this package's benchmarks
// (bench_linux_test.go, figures there):
//
//   - RxRing (the default): a TPACKET_V2 mmap ring of RingFrameSize slots.
//     The kernel writes each frame into a slot shared with the process and
//     wakes the reader per frame, so nothing waits; a frame larger than a
//     slot (a super-frame, a jumbo frame) is read whole with one recvmsg
//     (PACKET_COPY_THRESH). Small frames cost about what recvmmsg costs
//     (the per-frame wake-ups dominate); super-frames go 1.8 times as fast
//     for 60% of the CPU (one copy instead of two).
//   - RxRingV3: a TPACKET_V3 ring of RingBlockSize blocks, frames packed
//     back to back and handed over a block at a time: the fewest wake-ups
//     and the most frames per CPU second (1.3 to 1.7 times recvmmsg's
//     64-byte frames, 2.5 to 3 times its super-frames), but the kernel hands
//     a block over only when it is full or RingTimeout (at least 1 ms) after
//     its first frame: at rates that do not fill a block per millisecond
//     every frame waits up to that long. For throughput where that latency
//     does not matter.
//   - RxMmsg: recvmmsg into internal 64 KB buffers, then a copy into the
//     batch slots (the driver before the rings; kept as a fallback).
//
// In both ring modes PACKET_RESERVE keeps port.Headroom bytes (plus the
// virtio_net_hdr) in front of every frame, and ReadBatch points
// Batch.Bufs[i] into the ring instead of copying: Bufs[i] is the frame with
// exactly port.Headroom bytes before it (Off is port.Headroom, or 4 less
// with a re-inserted tag) and nothing after it. The router may rewrite the
// frame and those bytes in place. Slots and blocks go back to the kernel at
// the start of the next ReadBatch, so the frames of a batch stay valid (and
// the kernel does not write into them) until the reader asks for the next
// batch. Consequences for the caller: a Batch read from a ring port must not
// be given to another port's ReadBatch (its Bufs point into this port's
// ring, sized to each frame; keep one Batch per port queue), and nothing may
// keep a frame past the next ReadBatch (the router copies the frames it
// holds, e.g. behind an ARP resolution). Frames the port segments in
// software, and V2 frames read with recvmsg, sit in port buffers with the
// same layout.
//
// # Offloads
//
// With Options.Offloads (and the virtio_net_hdr on), Offloads() is true and
// the port passes offload work through in both directions: ReadBatch hands
// a TCP or UDP (GSO_UDP_L4) super-frame, over IPv4 or IPv6, over as ONE
// frame with its metadata in Batch.Meta, and a frame with a partial
// checksum with its metadata instead of completing it. Meta's CsumStart and
// HdrLen count from the frame's first byte as it is in the slot, i.e. 4
// more when the port put a stripped tag back; for a super-frame HdrLen is
// the length of the headers (Ethernet to the end of the L4 header, IPv6
// extension headers included), CsumStart must point at the L4 header and
// CsumOffset at its checksum (else bad-csum-offsets); DATA_VALID is not
// passed on (Meta is zero for a frame with nothing left to do). WriteBatch
// puts each frame's metadata into the virtio_net_hdr it sends, so the
// kernel (or the peer of a veth, or a NIC with TSO) segments and checksums
// only where it must.
//
// Without it TCP and UDP super-frames of either IP version are segmented in
// software into consecutive batch slots and partial checksums are completed
// (events gso-segmented and csum-completed); a super-frame that does not
// fit the remaining slots of a batch is continued in the next ReadBatch.
// Other GSO types (UFO), and a TCP GSO type of the other IP version, are
// dropped and counted (gso-unsupported) either way. Meta is zero for every
// frame then. A socket without the virtio_net_hdr refuses frames given
// metadata (tx-no-vnet).
//
// # Transmit
//
// With the RxRing receive path (the default) WriteBatch copies each plain
// frame into a slot of a TPACKET_V2 tx ring and makes one send(2) per
// batch (txring_linux.go). The ring is on a socket of its own that
// receives nothing and is kept out of the runtime poller, so the kernel's
// write-space wake-up for every sent frame finds nobody to wake. The slot's virtio_net_hdr
// says hdr_len = the frame's length, so the kernel copies the whole frame
// into the skb: with its default the payload would stay in the ring's
// pages, and the slot is marked free when the skb is orphaned, which the
// TAP driver and the IP receive path do while still holding those pages,
// so a reused slot could change a frame under a local receiver. Measured
// (BenchmarkTx, 64-byte frames on a veth): about 1.9 times the frames per
// writer CPU second of sendmmsg. Super-frames (the kernel segments them
// from the skb) and frames larger than a 2 KB slot or the MTU go through a
// second socket (no protocol: it receives nothing) with sendmmsg, after the
// pending slots, so frames leave in order. A frame that finds no free slot
// is dropped (tx-ring-full). Options.TxMmsg, and the other receive paths,
// send everything with sendmmsg over arrays prepared at Open (a
// virtio_net_hdr iovec and the frame per message). Several goroutines may
// write at once; they take turns on the port's ring and arrays (give each
// worker its own queue to avoid that).
//
// # Queues and fanout
//
// OpenQueues opens n sockets on one device in one PACKET_FANOUT group of
// type hash: the kernel spreads received frames over the sockets by a
// symmetric flow hash (addresses, protocol and ports; both directions of a
// flow hash alike), so a flow always lands on the same queue and each
// router worker reads its own queue with no lock. IP fragments hash by
// addresses and protocol only, so they may land on another queue than the
// unfragmented packets of their flow. Every queue is a complete port.Port
// (it can also transmit: give each worker its own queue to write through).
// Stats and Counters of any queue are those of the whole port (all queues;
// do not add them up); Close closes one queue. Each queue has its own ring.
//
// Every drop has a reason and a counter (counters.go). Steady-state reads
// and writes do not allocate.
package afpacket

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"vrouter/internal/counter"
	"vrouter/packet"
	"vrouter/router/port"
)

// RxMode selects the receive path.
type RxMode uint8

const (
	// RxRing: TPACKET_V2 mmap ring, frames handed over in place, no
	// hand-over delay (the default).
	RxRing RxMode = iota
	// RxRingV3: TPACKET_V3 block ring, frames handed over in place a
	// block at a time (up to RingTimeout late at low rates).
	RxRingV3
	// RxMmsg: recvmmsg into internal buffers, frames copied into the batch.
	RxMmsg
)

func (m RxMode) String() string {
	switch m {
	case RxRing:
		return "ring"
	case RxRingV3:
		return "ring-v3"
	case RxMmsg:
		return "mmsg"
	}
	return "rx?"
}

// Options tune a port. The zero value is the normal configuration.
type Options struct {
	// MAC is the router's own address on this link; zero means the device's.
	MAC [6]byte
	// MTU is the L3 MTU; 0 means the device's.
	MTU int

	// Offloads passes super-frames and partial checksums through in both
	// directions (see the package comment); Offloads() reports it. It needs
	// the virtio_net_hdr (ignored with NoVnetHdr).
	Offloads bool

	// Rx selects the receive path (RxRing by default).
	Rx RxMode
	// RingSize is the size of an rx ring in bytes; 0 means 8 MB.
	RingSize int
	// RingFrameSize is the slot size of a TPACKET_V2 ring (RxRing), a
	// divisor of 64 KB or up to 1 MB (slots larger than 64 KB come 1 MB
	// blocks at a time, as many as fit); 0 means 2048 (a 1500-byte MTU
	// frame with two tags). Larger frames are read from the socket queue
	// instead (one recvmsg each, no loss). SuperFrameSize takes a 64 KB
	// super-frame into the ring in place: half the CPU per super-frame
	// (BenchmarkRxSuper), but every small frame takes a whole slot too, so
	// a ring of RingSize holds few frames (8 MB: 120) and small frames
	// arrive at half the rate with most dropped (BenchmarkRx/ring-super):
	// not the default.
	RingFrameSize int
	// RingBlockSize is the size of one TPACKET_V3 block (RxRingV3), a
	// multiple of the page size that holds a 64 KB super-frame; 0 means
	// 256 KB. Smaller values are raised to 128 KB.
	RingBlockSize int
	// RingTimeout is how long the kernel waits for a TPACKET_V3 block to
	// fill before it hands the block over anyway (whole milliseconds); 0
	// means 1 ms, the smallest it takes. It is the delay a frame sees at
	// low rates.
	RingTimeout time.Duration

	// RxMsgs is the number of messages taken per recvmmsg (RxMmsg), each
	// with a 64 KB buffer; 0 means port.DefaultBatch.
	RxMsgs int
	// RcvBuf is the socket receive buffer in bytes (RxMmsg; RxRing: for
	// frames larger than a slot); 0 means 8 MB.
	RcvBuf int

	// TxBatch is the number of frames per sendmmsg; 0 means port.DefaultBatch.
	TxBatch int
	// TxMmsg sends every frame with sendmmsg instead of through the
	// TPACKET_V2 tx ring (the ring needs the RxRing receive path).
	TxMmsg bool
	// TxRingFrames is the number of tx ring slots (2048 bytes each); 0
	// means 512.
	TxRingFrames int
	// KeepQdisc sends through the device's qdisc (PACKET_QDISC_BYPASS
	// off): for tc shaping on the device or tcpdump there.
	KeepQdisc bool

	// FanoutGroup is the PACKET_FANOUT group id the sockets join (type
	// hash); 0 means none for Open and a free id the kernel picks for
	// OpenQueues with n > 1 (Port.FanoutGroup tells which). Ids are per
	// network namespace: two ports (or processes) must not share one
	// unless they mean to share the frames.
	FanoutGroup uint16

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

// Port is an AF_PACKET port (or one queue of one). Create it with Open or
// OpenQueues.
type Port struct {
	name, device string
	ifindex      int
	mac          [6]byte
	mtu          int
	vnet         bool
	offloads     bool
	rxMode       RxMode
	queue        int
	fanout       uint16
	inFanout     bool

	fd     int
	file   *os.File
	rc     syscall.RawConn
	closed atomic.Bool

	// Receive state, owned by the single reader.
	seg     segState
	segBufs [][]byte // ring mode: slots for software segments
	// recvmmsg
	rxBufs  [][]byte
	rxCtl   []byte
	rxIov   []unix.Iovec
	rxMsgs  []unix.Mmsghdr
	rxCount int   // messages returned by the last recvmmsg
	rxNext  int   // next message to deliver
	rxErr   error // error of the last recvmmsg
	readFn  func(fd uintptr) bool
	// TPACKET_V3 ring
	ring *rxRing

	// Transmit state, guarded by txMu.
	txMu        sync.Mutex
	txIov       []unix.Iovec // two per message: vnet header, frame
	txMsgs      []unix.Mmsghdr
	txVnet      []byte // one virtio_net_hdr per message
	txK         int    // messages prepared
	txDone      int    // messages handled (sent or refused)
	txOK        int    // messages sent
	txFail      int    // messages refused
	txFailBytes uint64
	txRetried   bool // an ENETDOWN was retried in this sendmmsg round
	txViaQdisc  int  // super-frames sent through the qdisc in this round
	bypass      bool // PACKET_QDISC_BYPASS on
	writeFn     func(fd uintptr) bool
	txEmpty     [1]byte // iovec base for an empty frame
	// The tx ring (nil: sendmmsg only) and the side socket that sends
	// what does not go into a slot (super-frames, oversized frames).
	txr      *txRing
	side     int // fd, -1 when none
	sideFile *os.File
	sideRC   syscall.RawConn

	c *shared
}

// shared holds the counters of a port, common to all its queues.
type shared struct {
	rxPackets, rxBytes           atomic.Uint64
	txPackets, txBytes, txErrors atomic.Uint64
	c                            [numCounters]atomic.Uint64 // keyed by the counter constants
	mu                           sync.Mutex                 // pollKernel
	queues                       []*Port
}

// add adds a batch's local counts to the shared counters.
func (s *shared) add(v *[numCounters]uint64) {
	for i, x := range v {
		if x != 0 {
			s.c[i].Add(x)
		}
	}
}

var _ port.Port = (*Port)(nil)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Open opens an AF_PACKET port called name on the existing interface device.
func Open(name, device string, opts Options) (*Port, error) {
	qs, err := open(name, device, 1, opts)
	if err != nil {
		return nil, err
	}
	return qs[0], nil
}

// OpenQueues opens port name on device as n sockets (queues) in one
// PACKET_FANOUT hash group (opts.FanoutGroup, or a free id when it is 0 and
// n > 1): each received frame goes to one queue, all frames of a flow to
// the same one. Every queue is a port.Port; Stats and Counters of any of
// them cover the whole port. On error nothing stays open.
func OpenQueues(name, device string, n int, opts Options) ([]*Port, error) {
	if n < 1 || n > 1024 {
		return nil, fmt.Errorf("port %q: %d queues (1..1024)", name, n)
	}
	return open(name, device, n, opts)
}

func open(name, device string, n int, opts Options) ([]*Port, error) {
	link, err := netlink.LinkByName(device)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("port %q: device %q not found (an afpacket port needs an existing interface: create it, or correct device in the file)", name, device)
		}
		return nil, fmt.Errorf("port %q: looking up device %q: %v", name, device, err)
	}
	a := link.Attrs()
	sh := &shared{}
	group := int32(-1) // none yet
	if opts.FanoutGroup != 0 {
		group = int32(opts.FanoutGroup)
	}
	for q := 0; q < n; q++ {
		p, err := openSocket(name, device, a.Index, q, n, &group, opts)
		if err != nil {
			for _, o := range sh.queues {
				o.Close()
			}
			return nil, err
		}
		p.c = sh
		copy(p.mac[:], a.HardwareAddr)
		if opts.MAC != ([6]byte{}) {
			p.mac = opts.MAC
		}
		p.mtu = a.MTU
		if opts.MTU > 0 {
			p.mtu = opts.MTU
		}
		sh.queues = append(sh.queues, p)
	}
	if a.Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(link); err != nil {
			for _, o := range sh.queues {
				o.Close()
			}
			return nil, fmt.Errorf("port %q: setting link up on %q: %v", name, device, err)
		}
	}
	for _, q := range sh.queues {
		// Binding to a device that was down left ENETDOWN pending on the
		// socket; the ring path never reads it, and the first send would.
		_, _ = unix.GetsockoptInt(q.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	}
	return sh.queues, nil
}

// openSocket opens queue q of n. *group is the fanout group id to join: -1
// with n > 1 asks the kernel for a free one (on the first queue) and stores
// it (the kernel's ids start at 0).
func openSocket(name, device string, ifindex, q, n int, group *int32, opts Options) (*Port, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("port %q: opening AF_PACKET socket on %q needs CAP_NET_RAW (run as root)", name, device)
		}
		return nil, fmt.Errorf("port %q: opening AF_PACKET socket on %q: %v", name, device, err)
	}
	p := &Port{name: name, device: device, ifindex: ifindex, fd: fd, vnet: !opts.NoVnetHdr, rxMode: opts.Rx, queue: q, side: -1}
	p.offloads = opts.Offloads && p.vnet
	var ring *rxRing
	fail := func(what string, err error) (*Port, error) {
		if ring != nil {
			ring.unmap()
		}
		if p.txr != nil {
			p.txr.close()
		}
		if p.side >= 0 {
			unix.Close(p.side)
		}
		unix.Close(fd)
		return nil, fmt.Errorf("port %q: %s on %q: %v", name, what, device, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fail("PACKET_IGNORE_OUTGOING", err)
	}
	switch opts.Rx {
	case RxRing:
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
			return fail("TPACKET_V2", err)
		}
	case RxRingV3:
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
			return fail("TPACKET_V3", err)
		}
	case RxMmsg:
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return fail("PACKET_AUXDATA", err)
		}
	default:
		unix.Close(fd)
		return nil, fmt.Errorf("port %q: unknown receive mode %d", name, opts.Rx)
	}
	if p.vnet {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			return fail("PACKET_VNET_HDR", err)
		}
	}
	if opts.Rx != RxMmsg {
		if ring, err = newRxRing(fd, opts, p.vnet); err != nil {
			return fail("rx ring", err)
		}
		p.ring = ring
		if opts.Rx == RxRing && !opts.TxMmsg {
			if p.txr, err = openTxRing(ifindex, opts.TxRingFrames, p.vnet, !opts.KeepQdisc); err != nil {
				return fail("tx ring", err)
			}
			if p.side, err = sideSocket(ifindex, p.vnet, !opts.KeepQdisc); err != nil {
				return fail("transmit socket", err)
			}
			p.sideFile = os.NewFile(uintptr(p.side), "afpacket-tx:"+device)
			if p.sideRC, err = p.sideFile.SyscallConn(); err != nil {
				return fail("transmit socket", err)
			}
		}
	} else {
		rcvbuf := opts.RcvBuf
		if rcvbuf <= 0 {
			rcvbuf = 8 << 20
		}
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
		}
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	}
	if !opts.KeepQdisc {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			return fail("PACKET_QDISC_BYPASS", err)
		}
		p.bypass = true
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return fail("binding AF_PACKET socket", err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return fail("promiscuous mode", err)
	}
	if *group >= 0 || n > 1 {
		arg := unix.PACKET_FANOUT_HASH << 16
		if *group < 0 {
			arg |= unix.PACKET_FANOUT_FLAG_UNIQUEID << 16
		} else {
			arg |= int(*group)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, arg); err != nil {
			return fail(fmt.Sprintf("PACKET_FANOUT group %d", max(*group, 0)), err)
		}
		if *group < 0 {
			v, err := unix.GetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT)
			if err != nil {
				return fail("reading the PACKET_FANOUT group", err)
			}
			*group = int32(uint16(v))
		}
		p.fanout, p.inFanout = uint16(*group), true
	}

	p.initBuffers(opts.RxMsgs, opts.TxBatch)
	p.file = os.NewFile(uintptr(fd), "afpacket:"+device)
	if p.file == nil {
		return fail("using the socket", errors.New("os.NewFile failed"))
	}
	rc, err := p.file.SyscallConn()
	if err != nil {
		p.file.Close()
		if ring != nil {
			ring.unmap()
		}
		if p.txr != nil {
			p.txr.close()
		}
		return nil, fmt.Errorf("port %q: %v", name, err)
	}
	p.rc = rc
	return p, nil
}

// initBuffers allocates the recvmmsg (RxMmsg) and sendmmsg arrays and buffers.
func (p *Port) initBuffers(msgs, tb int) {
	if p.ring == nil {
		if msgs <= 0 {
			msgs = port.DefaultBatch
		}
		p.rxBufs = make([][]byte, msgs)
		mem := make([]byte, msgs*rxBufSize) // touched only as far as frames reach
		p.rxCtl = make([]byte, msgs*ctlSize)
		p.rxIov = make([]unix.Iovec, msgs)
		p.rxMsgs = make([]unix.Mmsghdr, msgs)
		for i := range p.rxBufs {
			p.rxBufs[i] = mem[i*rxBufSize : (i+1)*rxBufSize : (i+1)*rxBufSize]
			p.rxIov[i].Base = &p.rxBufs[i][0]
			p.rxIov[i].SetLen(rxBufSize)
			h := &p.rxMsgs[i].Hdr
			h.Iov = &p.rxIov[i]
			h.Iovlen = 1
			h.Control = &p.rxCtl[i*ctlSize]
		}
		p.readFn = p.doRead
	}
	if tb <= 0 {
		tb = port.DefaultBatch
	}
	p.txIov = make([]unix.Iovec, 2*tb)
	p.txMsgs = make([]unix.Mmsghdr, tb)
	p.txVnet = make([]byte, tb*packet.VnetHdrLen)
	for i := range p.txMsgs {
		h := &p.txMsgs[i].Hdr
		if p.vnet {
			p.txIov[2*i].Base = &p.txVnet[i*packet.VnetHdrLen]
			p.txIov[2*i].SetLen(packet.VnetHdrLen)
			h.Iov = &p.txIov[2*i]
			h.Iovlen = 2
		} else {
			h.Iov = &p.txIov[2*i+1]
			h.Iovlen = 1
		}
	}
	p.writeFn = p.doWrite
}

func (p *Port) Name() string   { return p.name }
func (p *Port) Device() string { return p.device }
func (p *Port) Driver() string { return "afpacket" }
func (p *Port) MAC() [6]byte   { return p.mac }
func (p *Port) MTU() int       { return p.mtu }

// Offloads implements port.Port: true when the port was opened with
// Options.Offloads and the virtio_net_hdr.
func (p *Port) Offloads() bool { return p.offloads }

// Ifindex is the interface index the socket is bound to.
func (p *Port) Ifindex() int { return p.ifindex }

// Queue is this socket's index among the port's queues (0 for Open).
func (p *Port) Queue() int { return p.queue }

// FanoutGroup is the PACKET_FANOUT group id the socket is in; ok is false
// when it is in none.
func (p *Port) FanoutGroup() (id uint16, ok bool) { return p.fanout, p.inFanout }

// RxMode is the receive path in use.
func (p *Port) RxMode() RxMode { return p.rxMode }

// ReadBatch fills b with received frames (see port.Port and the package
// comment: in ring mode b.Bufs point into the ring until the next call). It
// blocks until at least one frame is available. b.Meta must have an entry
// per slot (port.NewBatch) for super-frames to be delivered intact; with a
// shorter Meta the port segments them as without Options.Offloads.
func (p *Port) ReadBatch(b *port.Batch) (int, error) {
	if p.ring != nil {
		return p.readRing(b)
	}
	return p.readMmsg(b)
}

// Stats returns the port counters (all queues); RxDropped includes the
// kernel's drops for the sockets (buffer or ring full).
func (p *Port) Stats() port.Stats {
	p.pollKernel()
	d := p.Drops()
	return port.Stats{
		RxPackets: p.c.rxPackets.Load(),
		RxBytes:   p.c.rxBytes.Load(),
		TxPackets: p.c.txPackets.Load(),
		TxBytes:   p.c.txBytes.Load(),
		RxDropped: d.Truncated + d.BadVnetHdr + d.GSOUnsupported + d.TooBig + d.BadCsumOffsets + d.RingBadFrame + d.Kernel,
		TxErrors:  p.c.txErrors.Load(),
		RxGSO:     p.c.c[cGSO].Load(),
		RxCsum:    p.c.c[cCsum].Load(),
	}
}

// pollKernel adds the kernel's drops since the last poll to the
// kernel-drops counter (reading PACKET_STATISTICS resets the kernel's
// counts), for every open queue.
func (p *Port) pollKernel() {
	s := p.c
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range s.queues {
		if q.closed.Load() {
			continue
		}
		_ = q.rc.Control(func(fd uintptr) {
			if q.ring != nil {
				if st, err := unix.GetsockoptTpacketStatsV3(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
					s.c[cKernelDrops].Add(uint64(st.Drops))
				}
			} else if st, err := unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
				s.c[cKernelDrops].Add(uint64(st.Drops))
			}
		})
	}
}

// Counters returns the port's counters (Descs), all queues together:
// drops by reason, the kernel's drops (polled now) and the offload events.
func (p *Port) Counters() []counter.Value {
	p.pollKernel()
	out := make([]counter.Value, numCounters)
	for i := range out {
		out[i] = counter.Value{Desc: descs[i], Value: p.c.c[i].Load()}
	}
	return out
}

// Drops are a port's drops by reason; Stats().RxDropped is the sum of the
// receive ones.
type Drops struct {
	Truncated      uint64 // larger than the 64 KB receive buffer (MSG_TRUNC) or the ring block
	BadVnetHdr     uint64 // shorter than its virtio_net_hdr
	GSOUnsupported uint64 // super-frame of a GSO type not handled here (UFO) or malformed
	TooBig         uint64 // frame or segment larger than a batch slot (port.MaxFrame, port.MaxSuper)
	BadCsumOffsets uint64 // partial checksum offsets outside the frame (or not at the L4 header of a super-frame)
	RingBadFrame   uint64 // ring frame with offsets outside its block
	Kernel         uint64 // dropped by the kernel before the socket (buffer or ring full), as of the last Stats call
	TxNoVnet       uint64 // frames with offload metadata refused by a socket without the virtio_net_hdr
}

// Drops returns the drops by reason (all queues).
func (p *Port) Drops() Drops {
	c := &p.c.c
	return Drops{
		Truncated:      c[dropTruncated].Load(),
		BadVnetHdr:     c[dropBadVnetHdr].Load(),
		GSOUnsupported: c[dropGSOUnsupported].Load(),
		TooBig:         c[dropTooBig].Load(),
		BadCsumOffsets: c[dropBadCsumOffsets].Load(),
		RingBadFrame:   c[dropRingBadFrame].Load(),
		Kernel:         c[cKernelDrops].Load(),
		TxNoVnet:       c[dropTxNoVnet].Load(),
	}
}

// Close closes this queue's socket; a ReadBatch in progress returns
// port.ErrClosed. The ring is unmapped by the reader when it sees the close
// (the frames of its last batch stay valid until then), or here when the
// port was never read.
func (p *Port) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	err := p.file.Close()
	if p.ring != nil && p.ring.state.CompareAndSwap(ringIdle, ringUnmapped) {
		p.unmapRings()
	}
	if p.sideFile != nil {
		p.sideFile.Close() // wakes a writer waiting on it
		p.txMu.Lock()
		p.sideFile, p.side = nil, -1
		if p.txr != nil {
			p.txr.close()
			p.txr = nil
		}
		p.txMu.Unlock()
	}
	return err
}
