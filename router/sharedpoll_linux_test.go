package router

import (
	"testing"
	"time"

	"vrouter/internal/clock"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

// fixedPoller is a pipe port that can be polled and delivers n copies of
// frame per TryReadBatch while left > 0, without allocating.
type fixedPoller struct {
	*pipe.Port
	frame   []byte
	n, left int
}

func (p *fixedPoller) TryReadBatch(b *port.Batch) (int, error) {
	b.N, b.HasMeta = 0, false
	if p.left == 0 {
		return 0, nil
	}
	p.left--
	for i := 0; i < p.n; i++ {
		b.Off[i] = port.Headroom
		b.Len[i] = copy(b.Bufs[i][port.Headroom:], p.frame)
	}
	b.N = p.n
	return p.n, nil
}

func (p *fixedPoller) PollFds() []int32 { return []int32{0} } // not polled here

// A pass of the shared worker over its ports forwards the batches it takes
// without allocating.
func TestZeroAllocSharedPass(t *testing.T) {
	cfg := testConfig()
	cfg.Router.SharedPoll = true
	pa, pb := pipe.New("pa", macA, 1500), pipe.New("pb", macB, 1400)
	fa, fb := &fixedPoller{Port: pa, n: 32}, &fixedPoller{Port: pb}
	clk := clock.NewManual()
	r, err := New(cfg, []port.Port{fa, fb}, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{t: t, r: r, clk: clk, pa: pa, pb: pb}
	l.resolveBoth()
	for i := range r.ports {
		if !r.sp.add(r.workers[i], r.ports[i]) {
			t.Fatalf("port %d not taken by the shared worker", i)
		}
	}
	pb.SetSink(true)
	fa.frame = icmpEcho(t, hostA, macA, ipHostA, ipHostB, 64, false, 64)
	ms := *r.sp.members.Load()
	var lastLog time.Time
	before := r.Counters()[CntForwarded]
	allocs := testing.AllocsPerRun(200, func() {
		fa.left = 1
		if busy, closed := r.sharedPass(ms, &lastLog); !busy || closed {
			t.Fatalf("pass: busy %v closed %v", busy, closed)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per pass, want 0", allocs)
	}
	if got := r.Counters()[CntForwarded] - before; got < 201*32 { // AllocsPerRun runs once more to warm up
		t.Fatalf("%d forwarded, want %d", got, 201*32)
	}
}
