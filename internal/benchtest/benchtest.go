// Package benchtest holds what the packages' benchmarks share for figures
// that hold up on a shared machine: thread CPU time per op, and the heap a
// structure keeps.
package benchtest

import (
	"net/netip"
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

// BuildKept benchmarks build, one per iteration, and reports B/prefix:
// the heap one build keeps (HeapAlloc after minus before, after GC) per
// prefix of the n it holds. It returns the measured build.
func BuildKept[T any](b *testing.B, n int, build func() T) T {
	h0 := HeapAlloc()
	t := build()
	h1 := HeapAlloc()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		build()
	}
	b.StopTimer()
	b.ReportMetric(float64(h1-h0)/float64(n), "B/prefix")
	return t
}

// Insert inserts each prefix ps[i] with value v[i] into t (a table of
// another implementation the benchmarks compare with, e.g. bart's) and
// returns t.
func Insert[T interface{ Insert(netip.Prefix, uint32) }](t T, ps []netip.Prefix, v []uint32) T {
	for i, p := range ps {
		t.Insert(p, v[i])
	}
	return t
}
