// Package clock is the router's injected time source. The data path reads it
// once per batch and passes the value down as nanoseconds (int64), so tests
// drive every timer with a Manual clock.
package clock

import (
	"sync/atomic"
	"time"
)

// Clock gives monotonic nanoseconds.
type Clock interface {
	Now() int64
}

var start = time.Now()

// System is the real monotonic clock (nanoseconds since process start, never 0).
type System struct{}

// Now implements Clock.
func (System) Now() int64 { return int64(time.Since(start)) + 1 }

// Manual is a clock that moves only when told.
type Manual struct{ t atomic.Int64 }

// NewManual starts a manual clock at 1s.
func NewManual() *Manual { m := &Manual{}; m.t.Store(int64(time.Second)); return m }

// Now implements Clock.
func (m *Manual) Now() int64 { return m.t.Load() }

// Advance moves the clock forward.
func (m *Manual) Advance(d time.Duration) { m.t.Add(int64(d)) }
