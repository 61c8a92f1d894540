package fib

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gaissmai/bart"

	"vrouter/internal/benchtest"
	"vrouter/packet"
)

// The benchmarks compare this FIB with github.com/gaissmai/bart (Table and
// Fast) on the 901,899 IPv4 prefixes of testdata/prefixes.txt.gz, with the
// same next hops (one of 11 per prefix) and the same random addresses (70%
// inside a random prefix of the table, 30% uniform).

type benchData struct {
	ps     []netip.Prefix
	nhIdx  []uint32 // per prefix, the value stored in bart
	ups    []Update // the full table for Apply
	addrs  []uint32
	naddrs []netip.Addr
	fib    *Table
	bt     *bart.Table[uint32]
	bf     *bart.Fast[uint32]
}

var (
	bdOnce sync.Once
	bd     benchData
)

const benchAddrs = 1 << 20

func getBench(b *testing.B) *benchData {
	ps := loadFull(b)
	bdOnce.Do(func() {
		rng := rand.New(rand.NewPCG(42, 43))
		bd.ps = ps
		bd.nhIdx = make([]uint32, len(ps))
		bd.ups = make([]Update, len(ps))
		for i, p := range ps {
			k := rng.IntN(11)
			bd.nhIdx[i] = uint32(k)
			bd.ups[i] = Update{Route: Route{Prefix: p, Source: Kernel, NH: testNH(k)}}
		}
		bd.addrs = randAddrs(rng, ps, benchAddrs)
		bd.naddrs = make([]netip.Addr, len(bd.addrs))
		for i, a := range bd.addrs {
			bd.naddrs[i] = packet.Addr(a)
		}
		bd.fib = New()
		bd.fib.Apply(bd.ups)
		bd.bt = buildBartTable(ps, bd.nhIdx)
		bd.bf = buildBartFast(ps, bd.nhIdx)
	})
	return &bd
}

func buildBartTable(ps []netip.Prefix, v []uint32) *bart.Table[uint32] {
	return benchtest.Insert(new(bart.Table[uint32]), ps, v)
}

func buildBartFast(ps []netip.Prefix, v []uint32) *bart.Fast[uint32] {
	return benchtest.Insert(new(bart.Fast[uint32]), ps, v)
}

func BenchmarkLookup(b *testing.B) {
	d := getBench(b)
	// sanity: all three agree on the sample
	for i := range 10000 {
		nh, ok := d.fib.Lookup(d.addrs[i])
		v, bok := d.bf.Lookup(d.naddrs[i])
		if ok != bok || ok && nh != testNH(int(v)) {
			b.Fatalf("fib and bart disagree on %v: %+v %v / %v %v", d.naddrs[i], nh, ok, v, bok)
		}
	}
	b.Run("impl=fib", func(b *testing.B) {
		b.ReportAllocs()
		var sum uint32
		done := benchtest.CPUTimer(b)
		for i := 0; i < b.N; i++ {
			nh, _ := d.fib.Lookup(d.addrs[i&(benchAddrs-1)])
			sum += nh.Gateway
		}
		done()
		runtime.KeepAlive(sum)
	})
	b.Run("impl=bart.Table", func(b *testing.B) {
		b.ReportAllocs()
		var sum uint32
		done := benchtest.CPUTimer(b)
		for i := 0; i < b.N; i++ {
			v, _ := d.bt.Lookup(d.naddrs[i&(benchAddrs-1)])
			sum += v
		}
		done()
		runtime.KeepAlive(sum)
	})
	b.Run("impl=bart.Fast", func(b *testing.B) {
		b.ReportAllocs()
		var sum uint32
		done := benchtest.CPUTimer(b)
		for i := 0; i < b.N; i++ {
			v, _ := d.bf.Lookup(d.naddrs[i&(benchAddrs-1)])
			sum += v
		}
		done()
		runtime.KeepAlive(sum)
	})
}

// BenchmarkBuild builds the full table per iteration; B/prefix is the heap
// it keeps (HeapAlloc after minus before, after GC), measured on one extra
// build. For the FIB that is everything (RIB of all sources + compiled
// structure + next-hop table); fibB/prefix is the compiled structure alone.
func BenchmarkBuild(b *testing.B) {
	d := getBench(b)
	n := float64(len(d.ps))
	b.Run("impl=fib", func(b *testing.B) {
		t := benchtest.BuildKept(b, len(d.ps), func() *Table {
			t := New()
			t.Apply(d.ups)
			return t
		})
		b.ReportMetric(float64(t.Summary().MemoryBytes)/n, "fibB/prefix")
	})
	b.Run("impl=bart.Table", func(b *testing.B) {
		benchtest.BuildKept(b, len(d.ps), func() *bart.Table[uint32] { return buildBartTable(d.ps, d.nhIdx) })
	})
	b.Run("impl=bart.Fast", func(b *testing.B) {
		benchtest.BuildKept(b, len(d.ps), func() *bart.Fast[uint32] { return buildBartFast(d.ps, d.nhIdx) })
	})
}

// BenchmarkUpdate measures updates per second on the full table while
// lookups run on another goroutine (see benchtest.Churn for the updates). For the
// FIB, batch=1 publishes every update on its own (Add/Delete), batch=N
// groups N updates per Apply. bart is made safe for concurrent readers the
// way its API intends: InsertPersist/DeletePersist (copy-on-write) and an
// atomic pointer swap per update. lookups/s is the rate of the reader
// goroutine meanwhile; cpu-ns/op the updating thread's CPU time per update.
func BenchmarkUpdate(b *testing.B) {
	d := getBench(b)
	for _, batch := range []int{1, 100} {
		b.Run("impl=fib/batch="+itoa(batch), func(b *testing.B) {
			t := New()
			t.Apply(d.ups)
			ch := benchtest.NewChurn(len(d.ps))
			ups := make([]Update, 0, batch)
			benchtest.RunUpdates(b, batch, func(i int) { t.Lookup(d.addrs[i&(benchAddrs-1)]) }, func(int) {
				ups = ups[:0]
				for j := 0; j < batch; j++ {
					k, del := ch.Next()
					ups = append(ups, Update{Route: d.ups[k].Route, Delete: del})
				}
				if batch == 1 {
					if ups[0].Delete {
						t.Delete(ups[0].Route.Prefix, ups[0].Route.Source)
					} else {
						t.Add(ups[0].Route)
					}
				} else {
					t.Apply(ups)
				}
			})
		})
	}
	// clustered: a batch is 1000 consecutive prefixes of the table (the
	// file is sorted), deleted, then added back by the next batch, as when
	// a BGP peer goes down and comes back; many changes share a chunk.
	b.Run("impl=fib/batch=1000/clustered", func(b *testing.B) {
		t := New()
		t.Apply(d.ups)
		ups := make([]Update, 0, 1000)
		rng := rand.New(rand.NewPCG(7, 7))
		start := 0
		benchtest.RunUpdates(b, 1000, func(i int) { t.Lookup(d.addrs[i&(benchAddrs-1)]) }, func(i int) {
			del := (i/1000)&1 == 0
			if del {
				start = rng.IntN(len(d.ups) - 1000)
			}
			ups = ups[:0]
			for _, u := range d.ups[start : start+1000] {
				ups = append(ups, Update{Route: u.Route, Delete: del})
			}
			t.Apply(ups)
		})
	})
	b.Run("impl=bart.Table/persist", func(b *testing.B) {
		var cur atomic.Pointer[bart.Table[uint32]]
		cur.Store(buildBartTable(d.ps, d.nhIdx))
		ch := benchtest.NewChurn(len(d.ps))
		benchtest.RunUpdates(b, 1, func(i int) { cur.Load().Lookup(d.naddrs[i&(benchAddrs-1)]) }, func(int) {
			if k, del := ch.Next(); del {
				cur.Store(cur.Load().DeletePersist(d.ps[k]))
			} else {
				cur.Store(cur.Load().InsertPersist(d.ps[k], d.nhIdx[k]))
			}
		})
	})
	b.Run("impl=bart.Fast/persist", func(b *testing.B) {
		var cur atomic.Pointer[bart.Fast[uint32]]
		cur.Store(buildBartFast(d.ps, d.nhIdx))
		ch := benchtest.NewChurn(len(d.ps))
		benchtest.RunUpdates(b, 1, func(i int) { cur.Load().Lookup(d.naddrs[i&(benchAddrs-1)]) }, func(int) {
			if k, del := ch.Next(); del {
				cur.Store(cur.Load().DeletePersist(d.ps[k]))
			} else {
				cur.Store(cur.Load().InsertPersist(d.ps[k], d.nhIdx[k]))
			}
		})
	})
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// BenchmarkLookupInterleaved runs the three lookups in alternating rounds
// of 65,536 addresses on one locked thread, so that the load of the shared
// machine hits them alike; it reports each one's thread CPU time and wall
// time per lookup and the ratios (an op is one round of all three).
func BenchmarkLookupInterleaved(b *testing.B) {
	d := getBench(b)
	const round = 1 << 16
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var cpu, wall [3]int64
	var sum uint32
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		off := (i * round) & (benchAddrs - 1)
		for impl := range 3 {
			w0, c0 := time.Now(), benchtest.ThreadCPU()
			switch impl {
			case 0:
				for _, a := range d.addrs[off : off+round] {
					nh, _ := d.fib.Lookup(a)
					sum += nh.Gateway
				}
			case 1:
				for _, a := range d.naddrs[off : off+round] {
					v, _ := d.bt.Lookup(a)
					sum += v
				}
			case 2:
				for _, a := range d.naddrs[off : off+round] {
					v, _ := d.bf.Lookup(a)
					sum += v
				}
			}
			cpu[impl] += benchtest.ThreadCPU() - c0
			wall[impl] += int64(time.Since(w0))
		}
	}
	runtime.KeepAlive(sum)
	n := float64(b.N) * round
	b.ReportMetric(float64(cpu[0])/n, "fib-cpu-ns/lookup")
	b.ReportMetric(float64(cpu[1])/n, "bartTable-cpu-ns/lookup")
	b.ReportMetric(float64(cpu[2])/n, "bartFast-cpu-ns/lookup")
	b.ReportMetric(float64(wall[0])/n, "fib-ns/lookup")
	b.ReportMetric(float64(wall[1])/n, "bartTable-ns/lookup")
	b.ReportMetric(float64(wall[2])/n, "bartFast-ns/lookup")
	b.ReportMetric(float64(cpu[2])/float64(cpu[0]), "bartFast/fib-cpu")
	b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "bartTable/fib-cpu")
}
