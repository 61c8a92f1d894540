// Package pipe is an in-memory Port for tests and benchmarks. Frames written
// with Inject are read by the router; frames the router writes are kept and
// can be taken with Take, or counted and discarded (Sink mode). A Generator
// port replays a fixed list of frames forever without blocking, for
// benchmarks.
package pipe

import (
	"sync"
	"sync/atomic"

	"vrouter/internal/counter"
	"vrouter/packet"
	"vrouter/router/port"
)

// Port is an in-memory port.
type Port struct {
	name string
	mac  [6]byte
	mtu  int

	mu      sync.Mutex
	cond    *sync.Cond
	in      [][]byte
	inMeta  []packet.VnetHdr
	out     [][]byte
	outMeta []packet.VnetHdr
	closed  bool

	offloads bool // see SetOffloads

	sink bool     // discard written frames (count only)
	gen  [][]byte // generator frames
	gi   int      // next generator frame
	st   port.Stats
	txN  atomic.Uint64
	txB  atomic.Uint64
}

// New makes a pipe port.
func New(name string, mac [6]byte, mtu int) *Port {
	p := &Port{name: name, mac: mac, mtu: mtu}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// NewGenerator makes a port whose ReadBatch never blocks and replays frames
// in a loop; written frames are counted and discarded.
func NewGenerator(name string, mac [6]byte, mtu int, frames [][]byte) *Port {
	p := New(name, mac, mtu)
	p.gen = frames
	p.sink = true
	return p
}

// SetSink makes written frames be counted and discarded instead of kept.
func (p *Port) SetSink(on bool) { p.sink = on }

func (p *Port) Name() string   { return p.name }
func (p *Port) Device() string { return "pipe:" + p.name }
func (p *Port) Driver() string { return "pipe" }
func (p *Port) MAC() [6]byte   { return p.mac }
func (p *Port) MTU() int       { return p.mtu }

// Inject queues a copy of frame for the router to read.
func (p *Port) Inject(frame []byte) { p.InjectMeta(frame, packet.VnetHdr{}) }

// InjectMeta queues a copy of frame with offload metadata (a super-frame or
// a partial checksum; the port must have offloads on).
func (p *Port) InjectMeta(frame []byte, m packet.VnetHdr) {
	if m != (packet.VnetHdr{}) && !p.offloads {
		panic("pipe: offload metadata injected into a port without offloads")
	}
	c := append([]byte(nil), frame...)
	p.mu.Lock()
	p.in = append(p.in, c)
	p.inMeta = append(p.inMeta, m)
	p.mu.Unlock()
	p.cond.Signal()
}

// Pending is the number of injected frames not yet read.
func (p *Port) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.in)
}

// Take returns and forgets the frames written so far.
func (p *Port) Take() [][]byte {
	o, _ := p.TakeMeta()
	return o
}

// TakeMeta returns and forgets the frames written so far with their
// offload metadata.
func (p *Port) TakeMeta() ([][]byte, []packet.VnetHdr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, m := p.out, p.outMeta
	p.out, p.outMeta = nil, nil
	return o, m
}

// ReadBatch implements port.Port.
func (p *Port) ReadBatch(b *port.Batch) (int, error) {
	if p.gen != nil {
		n := 0
		for n < len(b.Bufs) {
			f := p.gen[p.gi]
			p.gi++
			if p.gi == len(p.gen) {
				p.gi = 0
			}
			b.Off[n] = port.Headroom
			b.Len[n] = copy(b.Bufs[n][port.Headroom:], f)
			n++
		}
		b.N, b.HasMeta = n, false
		p.st.RxPackets += uint64(n)
		return n, nil
	}
	p.mu.Lock()
	for len(p.in) == 0 && !p.closed {
		p.cond.Wait()
	}
	if len(p.in) == 0 && p.closed {
		p.mu.Unlock()
		b.N = 0
		return 0, port.ErrClosed
	}
	n := 0
	b.HasMeta = false
	for n < len(b.Bufs) && len(p.in) > 0 {
		f, m := p.in[0], p.inMeta[0]
		p.in, p.inMeta = p.in[1:], p.inMeta[1:]
		b.Off[n] = port.Headroom
		b.Len[n] = copy(b.Bufs[n][port.Headroom:], f)
		b.Meta[n] = m
		b.HasMeta = b.HasMeta || m != (packet.VnetHdr{})
		p.st.RxPackets++
		p.st.RxBytes += uint64(len(f))
		n++
	}
	p.mu.Unlock()
	b.N = n
	return n, nil
}

// TryReadBatch is ReadBatch that returns 0 instead of blocking.
func (p *Port) TryReadBatch(b *port.Batch) int {
	p.mu.Lock()
	empty := len(p.in) == 0
	p.mu.Unlock()
	if empty {
		b.N = 0
		return 0
	}
	n, _ := p.ReadBatch(b)
	return n
}

// SetOffloads makes the port pass super-frames and partial checksums through
// (Offloads true): injected frames may carry metadata (InjectMeta) and the
// metadata of written frames is kept (TakeMeta).
func (p *Port) SetOffloads(on bool) { p.offloads = on }

// Offloads implements port.Port.
func (p *Port) Offloads() bool { return p.offloads }

// WriteBatch implements port.Port.
func (p *Port) WriteBatch(frames [][]byte, meta []packet.VnetHdr) (int, error) {
	for _, m := range meta {
		if m != (packet.VnetHdr{}) && !p.offloads {
			panic("pipe: offload metadata written to a port without offloads")
		}
	}
	if p.sink {
		var by uint64
		for _, f := range frames {
			by += uint64(len(f))
		}
		p.txN.Add(uint64(len(frames)))
		p.txB.Add(by)
		return len(frames), nil
	}
	p.mu.Lock()
	for i, f := range frames {
		p.out = append(p.out, append([]byte(nil), f...))
		var m packet.VnetHdr
		if meta != nil {
			m = meta[i]
		}
		p.outMeta = append(p.outMeta, m)
	}
	p.mu.Unlock()
	p.txN.Add(uint64(len(frames)))
	return len(frames), nil
}

// Stats implements port.Port.
func (p *Port) Stats() port.Stats {
	p.mu.Lock()
	s := p.st
	p.mu.Unlock()
	s.TxPackets = p.txN.Load()
	s.TxBytes = p.txB.Load()
	return s
}

// Counters implements port.Port: a pipe drops nothing and has no counters
// of its own.
func (p *Port) Counters() []counter.Value { return nil }

// Close wakes a blocked reader, which then returns port.ErrClosed.
func (p *Port) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cond.Broadcast()
	return nil
}
