package benchtest

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

// Churn yields the update stream of the FIB update benchmarks: odd steps
// delete a random prefix of the table, even steps add back the prefix
// deleted 1024 deletes earlier, so every step changes the table and it
// stays full (minus about 1024 prefixes).
type Churn struct {
	rng   *rand.Rand
	ring  [1024]int
	n, nd int
	max   int
}

// NewChurn is a churn over prefix indices [0, max), the same stream on
// every run.
func NewChurn(max int) *Churn { return &Churn{rng: rand.New(rand.NewPCG(9, 9)), max: max} }

// Next returns the prefix index and whether it is a delete.
func (c *Churn) Next() (int, bool) {
	c.n++
	if c.n&1 == 1 {
		k := c.rng.IntN(c.max)
		c.ring[c.nd&1023] = k
		c.nd++
		return k, true
	}
	if c.nd >= 1024 {
		return c.ring[c.nd&1023], false // the oldest delete
	}
	return c.ring[c.nd-1], false
}

// RunUpdates times update(i) for i = 0, step, 2*step, ... < b.N while
// lookup(0), lookup(1), ... run on another goroutine, and reports
// updates/s, lookups/s and the updating thread's cpu-ns/op.
func RunUpdates(b *testing.B, step int, lookup func(i int), update func(i int)) {
	var stop atomic.Bool
	done := make(chan int64)
	go func() {
		var n int64
		for !stop.Load() {
			for i := range 1024 {
				lookup(int(n) + i)
			}
			n += 1024
		}
		done <- n
	}()
	b.ResetTimer()
	st := time.Now()
	cpu := CPUTimer(b)
	for i := 0; i < b.N; i += step {
		update(i)
	}
	el := time.Since(st)
	cpu()
	stop.Store(true)
	n := <-done
	b.ReportMetric(float64(b.N)/el.Seconds(), "updates/s")
	b.ReportMetric(float64(n)/el.Seconds(), "lookups/s")
}
