package ha

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// MemLink is an in-memory datagram link between two engines (tests and
// benchmarks), which can drop a share of the datagrams it carries: tc
// netem is not available everywhere, and a seeded loss is reproducible.
type MemLink struct {
	A, B *MemConn
	seed uint64
	gen  uint64
}

// MemConn is one end of a MemLink.
type MemConn struct {
	in      chan []byte
	peer    atomic.Pointer[MemConn]
	loss    atomic.Uint64 // drop probability, scaled by 1<<32
	mu      sync.Mutex
	rng     *rand.Rand
	closed  chan struct{}
	once    sync.Once
	Dropped atomic.Uint64 // datagrams this end's sends lost
	Sent    atomic.Uint64
}

// NewMemLink makes a link whose ends drop the given share (0..1) of what
// they send, with a seeded generator.
func NewMemLink(loss float64, seed uint64) *MemLink {
	mk := func(s uint64) *MemConn {
		c := &MemConn{in: make(chan []byte, 8192), rng: rand.New(rand.NewPCG(seed, s)), closed: make(chan struct{})}
		c.SetLoss(loss)
		return c
	}
	a, b := mk(1), mk(2)
	a.peer.Store(b)
	b.peer.Store(a)
	return &MemLink{A: a, B: b, seed: seed}
}

// RenewB gives the link a new B end, as if the router on that side
// restarted (a new socket; what was in flight to the old one is lost).
// Close the old end first.
func (l *MemLink) RenewB() *MemConn {
	l.gen++
	b := &MemConn{in: make(chan []byte, 8192), rng: rand.New(rand.NewPCG(l.seed, 2+l.gen)), closed: make(chan struct{})}
	b.SetLoss(float64(l.B.loss.Load()) / (1 << 32))
	b.peer.Store(l.A)
	l.A.peer.Store(b)
	l.B = b
	return b
}

// SetLoss changes the share of this end's sends that are dropped.
func (c *MemConn) SetLoss(loss float64) { c.loss.Store(uint64(loss * (1 << 32))) }

// Send implements Conn.
func (c *MemConn) Send(b []byte) error {
	c.Sent.Add(1)
	c.mu.Lock()
	drop := c.rng.Uint64()&(1<<32-1) < c.loss.Load()
	c.mu.Unlock()
	if drop {
		c.Dropped.Add(1)
		return nil
	}
	p := c.peer.Load()
	select {
	case p.in <- append([]byte(nil), b...):
	case <-p.closed:
	default:
		c.Dropped.Add(1) // the receiver's queue is full, like a socket buffer
	}
	return nil
}

// Recv implements Conn.
func (c *MemConn) Recv(b []byte) (int, bool, error) {
	select {
	case d := <-c.in:
		return copy(b, d), true, nil
	case <-c.closed:
		return 0, false, errClosed
	}
}

// Close implements Conn.
func (c *MemConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}
