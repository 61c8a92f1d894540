package router

import (
	"testing"

	"vrouter/internal/clock"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

// multiPipe is a pipe port with several receive queues (port.Multi).
type multiPipe struct {
	*pipe.Port
	qs []*pipe.Port
}

func newMultiPipe(name string, mac [6]byte, mtu, n int) *multiPipe {
	m := &multiPipe{Port: pipe.New(name, mac, mtu)}
	m.qs = append(m.qs, m.Port)
	for i := 1; i < n; i++ {
		m.qs = append(m.qs, pipe.New(name, mac, mtu))
	}
	return m
}

func (m *multiPipe) Queues() []port.Port {
	out := make([]port.Port, len(m.qs))
	for i, q := range m.qs {
		out[i] = q
	}
	return out
}

func (m *multiPipe) Close() error {
	for _, q := range m.qs {
		q.Close()
	}
	return nil
}

// A port with several queues gets a worker per queue; each worker sends
// through the egress port's queue of its own index (so a flow, which the
// kernel's fanout hash keeps on one queue, stays on one socket both ways).
func TestQueueWorkers(t *testing.T) {
	pa, pb := newMultiPipe("pa", macA, 1500, 2), newMultiPipe("pb", macB, 1400, 2)
	clk := clock.NewManual()
	r, err := New(testConfig(), []port.Port{pa, pb}, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.workers) != 2 || len(r.qworkers) != 2 || r.nworkers.Load() != 4 {
		t.Fatalf("workers %d + %d queue workers (nworkers %d), want 2 + 2", len(r.workers), len(r.qworkers), r.nworkers.Load())
	}
	r.Neigh.Update(1, 0xc633640a, [6]byte(hostB), true, clk.Now(), func([]byte) {})
	r.Neigh.Update(0, 0xc000020a, [6]byte(hostA), true, clk.Now(), func([]byte) {})
	// A packet read on queue 1 of pa by its worker leaves by queue 1 of pb.
	var qw *worker
	for _, w := range r.qworkers {
		if w.id == 0 && w.q == 1 {
			qw = w
		}
	}
	pa.qs[1].Inject(icmpEcho(t, hostA, macA, ipHostA, ipHostB, 64, false, 10))
	if pa.qs[1].TryReadBatch(qw.rx) != 1 {
		t.Fatal("queue 1 has no frame")
	}
	qw.processBatch(r.ports[0], qw.rx)
	if n0, n1 := len(pb.qs[0].Take()), len(pb.qs[1].Take()); n0 != 0 || n1 != 1 {
		t.Fatalf("frames out on pb queues 0/1: %d/%d, want 0/1", n0, n1)
	}
	if st := r.Ports(); st[0].RxPackets != 1 || st[1].TxPackets != 1 {
		t.Fatalf("port counters rx %d tx %d", st[0].RxPackets, st[1].TxPackets)
	}
}
