// Package port defines how the router moves frames in and out: a Port reads
// and writes batches of Ethernet frames. Implementations live in
// subpackages: afpacket (an existing kernel interface), tap (a TAP device the
// router creates) and pipe (in memory, for tests and benchmarks).
package port

import (
	"errors"

	"vrouter/internal/counter"
	"vrouter/packet"
)

// Headroom is the space kept in front of every received frame so that the
// router can prepend or grow the link-layer header (an 802.1Q tag) in place.
const Headroom = 64

// MaxFrame is the largest plain frame a port takes (a 9000-byte jumbo
// payload plus Ethernet and VLAN headers, rounded up).
const MaxFrame = 9216

// MaxSuper is the largest GSO super-frame a batch slot holds: a 64 KB IP
// packet plus an Ethernet header and two VLAN tags.
const MaxSuper = 1<<16 + 32

// SlotSize is the size of one buffer of a Batch.
const SlotSize = Headroom + MaxSuper

// DefaultBatch is the default number of frames in a batch.
const DefaultBatch = 64

// Batch is a reusable set of frame buffers. Frame i occupies
// Bufs[i][Off[i] : Off[i]+Len[i]]. ReadBatch sets Off to Headroom, or a
// little less when it put back an 802.1Q tag the kernel had removed; the
// router never assumes more than Off bytes in front of a frame.
//
// Meta[i] describes frame i when it is a GSO super-frame or carries a
// partial checksum (only from a port whose Offloads is true): the
// virtio-net header's meaning, with CsumStart counted from the frame's first
// byte. The zero value is a plain frame with complete checksums.
type Batch struct {
	Bufs [][]byte
	Off  []int
	Len  []int
	Meta []packet.VnetHdr
	// HasMeta: some frame of the batch has metadata (set by ReadBatch; when
	// false Meta is not read).
	HasMeta bool
	N       int // frames filled by the last ReadBatch
}

// NewBatch allocates a batch of n slots of SlotSize bytes.
func NewBatch(n int) *Batch {
	b := &Batch{Bufs: make([][]byte, n), Off: make([]int, n), Len: make([]int, n), Meta: make([]packet.VnetHdr, n)}
	mem := make([]byte, n*SlotSize)
	for i := range b.Bufs {
		b.Bufs[i] = mem[i*SlotSize : (i+1)*SlotSize : (i+1)*SlotSize]
	}
	return b
}

// Frame returns frame i of the batch.
func (b *Batch) Frame(i int) []byte { return b.Bufs[i][b.Off[i] : b.Off[i]+b.Len[i]] }

// Cap is the number of slots.
func (b *Batch) Cap() int { return len(b.Bufs) }

// Stats are a port's own counters (kept by the port implementation).
type Stats struct {
	RxPackets, RxBytes, TxPackets, TxBytes uint64
	RxDropped                              uint64 // frames the port had to drop (too large, ring full, kernel drops)
	TxErrors                               uint64 // frames the kernel refused
	RxGSO                                  uint64 // super-frames segmented in software
	RxCsum                                 uint64 // partial checksums completed in software
}

// Port is a source and sink of Ethernet frames.
//
// ReadBatch blocks until at least one frame is available and fills b from
// slot 0, returning the number of frames (also stored in b.N). Only one
// goroutine reads a port. Frames carry their 802.1Q tag in the bytes when
// they had one on the wire, whatever the kernel did with it. A port whose
// Offloads is false delivers GSO super-frames segmented and partial
// checksums completed; one whose Offloads is true may deliver them intact,
// described by Batch.Meta.
//
// WriteBatch sends frames (complete Ethernet frames, tag included when
// tagged) and returns how many were accepted. meta is nil or holds one
// entry per frame (the zero value for a plain frame); a port whose
// Offloads is false is never given a non-zero entry. It is safe for
// concurrent use by several goroutines and does not retain the slices.
//
// Offloads reports whether the port passes super-frames and partial
// checksums through in both directions (AF_PACKET and TAP with the
// virtio-net header), so the kernel or the peer segments them only if it
// must.
//
// Counters are the driver's own counters (its drop reasons with a Desc
// each, and its events), Value.Port left empty: the router labels them.
//
// After Close, ReadBatch returns ErrClosed.
type Port interface {
	Name() string
	Device() string
	Driver() string
	MAC() [6]byte
	MTU() int // the L3 MTU of the device (without Ethernet header)
	ReadBatch(b *Batch) (int, error)
	WriteBatch(frames [][]byte, meta []packet.VnetHdr) (int, error)
	Offloads() bool
	Stats() Stats
	Counters() []counter.Value
	Close() error
}

// Multi is a Port that receives on several queues (AF_PACKET fanout
// sockets, AF_XDP queues), each read by a router worker of its own so that
// the workers share the port with every flow on one worker. Queues returns
// them all, the port itself first; the worker of queue i sends through
// queue i of the egress port (modulo its queue count). Closing the port
// closes every queue.
type Multi interface {
	Port
	Queues() []Port
}

// Poller is a Port (or queue) whose receive side can be looked at without
// blocking, so that one worker can serve several of them and sleep in one
// poll(2) over all their descriptors ([router] shared_poll).
type Poller interface {
	// TryReadBatch is ReadBatch without the wait: 0 when no frame is
	// there. The same one-reader and batch rules apply.
	TryReadBatch(b *Batch) (int, error)
	// PollFds are descriptors that become readable (POLLIN) when
	// TryReadBatch may have frames, or when the port is closed.
	PollFds() []int32
}

// ErrClosed is returned by ReadBatch after Close.
var ErrClosed = errors.New("port closed")

// Queues makes one Multi of a port's queues (queues[0] answers for the
// port: name, device, MAC, MTU, counters); closing it closes every queue.
func Queues(queues []Port) Multi {
	if len(queues) == 0 {
		panic("port.Queues: no queue")
	}
	return &multi{Port: queues[0], qs: queues}
}

type multi struct {
	Port
	qs []Port
}

func (m *multi) Queues() []Port { return m.qs }

func (m *multi) Close() error {
	var first error
	for _, q := range m.qs {
		if err := q.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
