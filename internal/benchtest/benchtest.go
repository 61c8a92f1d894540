// Package benchtest holds what the packages' benchmarks share for figures
// that hold up on a shared machine: thread CPU time per op, and the heap a
// structure keeps.
package benchtest

import (
	"runtime"
	"testing"
)

// CPUTimer locks the benchmark loop to its OS thread and starts counting
// the thread's CPU time; the function it returns stops, unlocks and reports
// cpu-ns/op, which waiting for a core does not inflate.
func CPUTimer(b *testing.B) func() {
	runtime.LockOSThread()
	c0 := ThreadCPU()
	return func() {
		c1 := ThreadCPU()
		runtime.UnlockOSThread()
		b.ReportMetric(float64(c1-c0)/float64(b.N), "cpu-ns/op")
	}
}

// HeapAlloc returns the live heap after two collections.
func HeapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
