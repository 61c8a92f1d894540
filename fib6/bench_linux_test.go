package fib6

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gaissmai/bart"

	"vrouter/fib"
	"vrouter/internal/benchtest"
)

// The benchmarks compare this FIB with github.com/gaissmai/bart (Table and
// Fast) on the 160,147 IPv6 prefixes of ../fib/testdata/prefixes.txt.gz,
// with the same next hops (one of 11 per prefix) and the same addresses:
// "mixed" is 70% inside a random prefix of the table and 30% uniform in
// 2000::/3; "inside" is 100% inside a random prefix.

const benchAddrs = 1 << 20

type addrSet struct {
	name  string
	addrs [][16]byte
	na    []netip.Addr
}

type benchData struct {
	ps    []netip.Prefix
	nhIdx []uint32
	ups   []Update
	sets  []addrSet
	fib   *Table
	bt    *bart.Table[uint32]
	bf    *bart.Fast[uint32]
}

var (
	bdOnce sync.Once
	bd     benchData
)

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
			bd.ups[i] = Update{Route: Route{Prefix: p, Source: fib.Kernel, NH: testNH(k)}}
		}
		mixed := randAddrs(rng, ps, benchAddrs)
		inside := make([][16]byte, benchAddrs)
		for i := range inside {
			inside[i] = randIn(rng, ps[rng.IntN(len(ps))])
		}
		for _, s := range []addrSet{{name: "mixed", addrs: mixed}, {name: "inside", addrs: inside}} {
			s.na = make([]netip.Addr, len(s.addrs))
			for i, a := range s.addrs {
				s.na[i] = netip.AddrFrom16(a)
			}
			bd.sets = append(bd.sets, s)
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
	for _, s := range d.sets {
		// sanity: all three agree on the sample
		for i := range 10000 {
			nh, ok := d.fib.Lookup(s.addrs[i])
			v, bok := d.bf.Lookup(s.na[i])
			w, wok := d.bt.Lookup(s.na[i])
			if ok != bok || ok != wok || ok && (nh != testNH(int(v)) || v != w) {
				b.Fatalf("fib and bart disagree on %v: %+v %v / %v %v", s.na[i], nh, ok, v, bok)
			}
		}
		b.Run("addrs="+s.name+"/impl=fib", func(b *testing.B) {
			b.ReportAllocs()
			var sum uint16
			done := benchtest.CPUTimer(b)
			for i := 0; i < b.N; i++ {
				nh, _ := d.fib.Lookup(s.addrs[i&(benchAddrs-1)])
				sum += nh.Network
			}
			done()
			runtime.KeepAlive(sum)
		})
		b.Run("addrs="+s.name+"/impl=bart.Table", func(b *testing.B) {
			b.ReportAllocs()
			var sum uint32
			done := benchtest.CPUTimer(b)
			for i := 0; i < b.N; i++ {
				v, _ := d.bt.Lookup(s.na[i&(benchAddrs-1)])
				sum += v
			}
			done()
			runtime.KeepAlive(sum)
		})
		b.Run("addrs="+s.name+"/impl=bart.Fast", func(b *testing.B) {
			b.ReportAllocs()
			var sum uint32
			done := benchtest.CPUTimer(b)
			for i := 0; i < b.N; i++ {
				v, _ := d.bf.Lookup(s.na[i&(benchAddrs-1)])
				sum += v
			}
			done()
			runtime.KeepAlive(sum)
		})
	}
}

// BenchmarkLookupInterleaved runs the three lookups in alternating rounds
// of 65,536 addresses on one locked thread, so that the load of the shared
// machine hits them alike; it reports each one's thread CPU time per lookup
// and the ratios (an op is one round of all three).
func BenchmarkLookupInterleaved(b *testing.B) {
	d := getBench(b)
	for _, s := range d.sets {
		b.Run("addrs="+s.name, func(b *testing.B) {
			const round = 1 << 16
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var cpu [3]int64
			var sum uint32
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				off := (i * round) & (benchAddrs - 1)
				for impl := range 3 {
					c0 := benchtest.ThreadCPU()
					switch impl {
					case 0:
						for _, a := range s.addrs[off : off+round] {
							nh, _ := d.fib.Lookup(a)
							sum += uint32(nh.Network)
						}
					case 1:
						for _, a := range s.na[off : off+round] {
							v, _ := d.bt.Lookup(a)
							sum += v
						}
					case 2:
						for _, a := range s.na[off : off+round] {
							v, _ := d.bf.Lookup(a)
							sum += v
						}
					}
					cpu[impl] += benchtest.ThreadCPU() - c0
				}
			}
			runtime.KeepAlive(sum)
			n := float64(b.N) * round
			b.ReportMetric(float64(cpu[0])/n, "fib-cpu-ns/lookup")
			b.ReportMetric(float64(cpu[1])/n, "bartTable-cpu-ns/lookup")
			b.ReportMetric(float64(cpu[2])/n, "bartFast-cpu-ns/lookup")
			b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "bartTable/fib")
			b.ReportMetric(float64(cpu[2])/float64(cpu[0]), "bartFast/fib")
		})
	}
}

// BenchmarkBuild builds the full table per iteration; B/prefix is the heap
// it keeps (HeapAlloc after minus before, after GC), measured on one extra
// build. For the FIB that is everything (RIB of all sources, compiled
// structure, next hops); fibB/prefix is the compiled structure alone.
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
// lookups run on another goroutine. For the FIB, batch=1 publishes every
// update on its own (Add/Delete), batch=N groups N updates per Apply. bart
// is made safe for concurrent readers the way its API intends:
// InsertPersist/DeletePersist (copy-on-write) and an atomic pointer swap
// per update.
func BenchmarkUpdate(b *testing.B) {
	d := getBench(b)
	mixed := d.sets[0]
	for _, batch := range []int{1, 100} {
		b.Run("impl=fib/batch="+strconv.Itoa(batch), func(b *testing.B) {
			t := New()
			t.Apply(d.ups)
			ch := benchtest.NewChurn(len(d.ps))
			ups := make([]Update, 0, batch)
			benchtest.RunUpdates(b, batch, func(i int) { t.Lookup(mixed.addrs[i&(benchAddrs-1)]) }, func(int) {
				ups = ups[:0]
				for range batch {
					k, del := ch.Next()
					ups = append(ups, Update{Route: d.ups[k].Route, Delete: del})
				}
				t.Apply(ups)
			})
		})
	}
	b.Run("impl=bart.Table/persist", func(b *testing.B) {
		var cur atomic.Pointer[bart.Table[uint32]]
		cur.Store(buildBartTable(d.ps, d.nhIdx))
		ch := benchtest.NewChurn(len(d.ps))
		benchtest.RunUpdates(b, 1, func(i int) { cur.Load().Lookup(mixed.na[i&(benchAddrs-1)]) }, func(int) {
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
		benchtest.RunUpdates(b, 1, func(i int) { cur.Load().Lookup(mixed.na[i&(benchAddrs-1)]) }, func(int) {
			if k, del := ch.Next(); del {
				cur.Store(cur.Load().DeletePersist(d.ps[k]))
			} else {
				cur.Store(cur.Load().InsertPersist(d.ps[k], d.nhIdx[k]))
			}
		})
	})
}
