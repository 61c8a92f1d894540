package router

import (
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

var gcSink []byte

// With the Go GC's own pacing turned off, the router still collects once
// gcGarbage bytes of garbage have been allocated.
func TestPaceGCCollects(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	r := &Router{stop: make(chan struct{})}
	done := make(chan struct{})
	go func() { r.paceGC(); close(done) }()
	defer func() { close(r.stop); <-done }()
	cycles := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	time.Sleep(1500 * time.Millisecond) // paceGC has looked once
	before := cycles()
	for i := 0; i < 2*gcGarbage/(64<<10); i++ {
		gcSink = make([]byte, 64<<10)
	}
	for deadline := time.Now().Add(4 * time.Second); cycles() == before; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no collection after %d KB of garbage", 2*gcGarbage>>10)
		}
	}
}
