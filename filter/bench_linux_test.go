package filter

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"vrouter/config"
	"vrouter/internal/benchtest"
)

// BenchmarkClassifyScaling classifies the "mixed" packets of the 10, 1,000
// and 10,000-rule CloudStack rulesets in alternating rounds of 65,536 on
// one locked thread, so the load of the machine hits all three alike. It
// reports thread CPU and wall time per classification for each, and the
// ratios to the 10-rule case (an op is one round of all three).
func BenchmarkClassifyScaling(b *testing.B) {
	sizes := []int{10, 1000, 10000}
	var rss []*Ruleset
	var keys [][]Key
	for _, n := range sizes {
		f := cloudstack(n)
		s, err := Compile([]config.Filter{f})
		if err != nil {
			b.Fatal(err)
		}
		rss = append(rss, s.Ruleset(0))
		keys = append(keys, benchKeys(&f, "mixed", 1<<16))
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu := make([]int64, len(sizes))
	wall := make([]int64, len(sizes))
	var acc int32
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for i, rs := range rss {
			w0, c0 := time.Now(), benchtest.ThreadCPU()
			for _, k := range keys[i] {
				acc += rs.Classify(k).Rule
			}
			cpu[i] += benchtest.ThreadCPU() - c0
			wall[i] += int64(time.Since(w0))
		}
	}
	sink = acc
	n := float64(b.N) * (1 << 16)
	for i, sz := range sizes {
		b.ReportMetric(float64(cpu[i])/n, fmt.Sprintf("r%d-cpu-ns", sz))
		b.ReportMetric(float64(wall[i])/n, fmt.Sprintf("r%d-ns", sz))
	}
	b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "r1000/r10-cpu")
	b.ReportMetric(float64(cpu[2])/float64(cpu[0]), "r10000/r10-cpu")
}
