package fib6

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"vrouter/fib"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func a16(s string) [16]byte     { return netip.MustParseAddr(s).As16() }

// compareAll checks Lookup and Match against the reference on addrs, and
// Len.
func compareAll(t *testing.T, tb *Table, r *ref, addrs [][16]byte) {
	t.Helper()
	bad := 0
	for _, a := range addrs {
		nh, ok := tb.Lookup(a)
		wnh, wok := r.lookup(a)
		if ok != wok || nh != wnh {
			bad++
			if bad <= 5 {
				t.Errorf("Lookup(%v) = %+v %v, want %+v %v", netip.AddrFrom16(a), nh, ok, wnh, wok)
			}
		}
	}
	for _, a := range addrs[:min(len(addrs), 200)] {
		got, ok := tb.Match(netip.AddrFrom16(a))
		want, wok := r.match(a)
		if netip.AddrFrom16(a).Is4In6() {
			want, wok = Route{}, false // an IPv4 address: Match is for IPv6 ones
		}
		if ok != wok || got != want {
			t.Errorf("Match(%v) = %+v %v, want %+v %v", netip.AddrFrom16(a), got, ok, want, wok)
			bad++
		}
	}
	if tb.Len() != r.len() {
		t.Errorf("Len %d, want %d", tb.Len(), r.len())
		bad++
	}
	if bad > 0 {
		t.FailNow()
	}
}

// nested returns a random prefix in a small region (2001:db8::/40 and a
// few shorter ones around it), of any length: dense nesting, deep nodes,
// short prefixes that change chunk defaults.
func nested(rng *rand.Rand) netip.Prefix {
	base, _ := split(a16("2001:db8::"))
	l := rng.IntN(129)
	if rng.IntN(4) != 0 {
		l = 17 + rng.IntN(112)
	}
	hi := base | rng.Uint64()&(1<<24-1)<<(64-40)>>16 // bits 40-63 random, some
	if rng.IntN(2) == 0 {
		hi = base | rng.Uint64()&0xff<<16
	}
	lo := uint64(0)
	if rng.IntN(3) == 0 {
		lo = rng.Uint64()
	}
	if l < 16 && rng.IntN(2) == 0 {
		hi = rng.Uint64()
	}
	h, w := maskHL(hi, lo, l)
	return prefixOf(h, w, l)
}

func nearAddrs(rng *rand.Rand, ps []netip.Prefix, n int) [][16]byte {
	out := randAddrs(rng, ps, n)
	for i := range out[:n/4] {
		// just below and above a prefix: the neighbouring ranges
		p := ps[rng.IntN(len(ps))]
		hi, lo := split(p.Addr().As16())
		if rng.IntN(2) == 0 {
			if lo == 0 {
				hi--
			}
			lo--
		} else {
			mh, ml := maskHL(^uint64(0), ^uint64(0), p.Bits())
			hi, lo = hi|^mh, lo|^ml
			lo++
			if lo == 0 {
				hi++
			}
		}
		out[i] = join(hi, lo)
	}
	return out
}

// TestSmallRandomized exercises the incremental path from an empty table,
// single changes and batches (small ones and, now and then, one large
// enough for a full rebuild), against the reference.
func TestSmallRandomized(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	r := newRef()
	tb := New()
	var seen []netip.Prefix
	for round := range 3000 {
		n := 1
		switch {
		case round%500 == 499:
			n = 5000 // more than 4096 and a quarter of the table: full rebuild
		case rng.IntN(20) == 0:
			n = 50
		}
		var ups []Update
		for range n {
			p := nested(rng)
			if len(seen) > 0 && rng.IntN(2) == 0 {
				p = seen[rng.IntN(len(seen))]
			}
			seen = append(seen, p)
			src := fib.Source(rng.IntN(int(fib.NumSources)))
			u := Update{Route: Route{Prefix: p, Source: src, NH: testNH(rng.IntN(20))}, Delete: rng.IntN(3) == 0}
			ups = append(ups, u)
		}
		if n == 1 && ups[0].Delete {
			got := tb.Delete(ups[0].Route.Prefix, ups[0].Route.Source)
			if want := r.del(ups[0].Route.Prefix, ups[0].Route.Source); got != want {
				t.Fatalf("Delete(%v) = %v want %v", ups[0].Route.Prefix, got, want)
			}
		} else {
			tb.Apply(ups)
			r.apply(ups)
		}
		if round%25 == 0 {
			compareAll(t, tb, r, nearAddrs(rng, seen, 1000))
		}
	}
	st := tb.Stats()
	if st.SubBuilds == 0 || st.Rebuilds == 0 || st.Compactions == 0 {
		t.Fatalf("paths not exercised: %+v", st)
	}
	checkRoutes(t, tb, r)
	t.Logf("stats %+v", st)
}

// checkRoutes checks Routes and Get against the reference.
func checkRoutes(t *testing.T, tb *Table, r *ref) {
	t.Helper()
	rs := tb.Routes()
	if len(rs) != r.len() {
		t.Fatalf("Routes: %d, want %d", len(rs), r.len())
	}
	for i, rt := range rs {
		l, k := refKey(rt.Prefix)
		s := r.byLen[l][k]
		if s == nil {
			t.Fatalf("Routes has %v, the reference not", rt.Prefix)
		}
		src, nh := bestOf(s)
		if rt.Source != src || rt.NH != nh {
			t.Fatalf("Routes %v: %v %+v, want %v %+v", rt.Prefix, rt.Source, rt.NH, src, nh)
		}
		if g, ok := tb.Get(rt.Prefix); !ok || g != rt {
			t.Fatalf("Get(%v) = %+v %v, want %+v", rt.Prefix, g, ok, rt)
		}
		if i > 0 {
			a, b := rs[i-1].Prefix, rt.Prefix
			if c := a.Addr().Compare(b.Addr()); c > 0 || c == 0 && a.Bits() >= b.Bits() {
				t.Fatalf("Routes not sorted at %d: %v %v", i, a, b)
			}
		}
	}
}

// TestFullTable loads the real IPv6 table, compares it with the reference,
// then churns it with single changes and small batches (incremental
// recompiles), changes of short prefixes (chunk defaults) and a
// ReplaceSource.
func TestFullTable(t *testing.T) {
	ps := loadFull(t)
	rng := rand.New(rand.NewPCG(1, 2))
	r := newRef()
	tb := New()
	ups := make([]Update, len(ps))
	for i, p := range ps {
		ups[i] = Update{Route: Route{Prefix: p, Source: fib.Kernel, NH: testNH(rng.IntN(11))}}
	}
	if n := tb.Apply(ups); n != len(ps) {
		t.Fatalf("Apply: %d changes, want %d", n, len(ps))
	}
	r.apply(ups)
	addrs := randAddrs(rng, ps, 200000)
	compareAll(t, tb, r, addrs)
	checkRoutes(t, tb, r)
	st := tb.Stats()
	t.Logf("full table: %d prefixes, %d nodes, %d leaves, %.1f B/prefix compiled", st.Prefixes, st.Nodes, st.Leaves, float64(st.MemoryBytes)/float64(st.Prefixes))

	// churn: random deletes and re-adds with other next hops and sources
	for i := range 20000 {
		p := ps[rng.IntN(len(ps))]
		src := fib.Source(2 + rng.IntN(2))
		if rng.IntN(2) == 0 {
			tb.Delete(p, src)
			r.del(p, src)
		} else {
			rt := Route{Prefix: p, Source: src, NH: testNH(rng.IntN(11))}
			tb.Add(rt)
			r.add(rt)
		}
		if i%5000 == 0 {
			compareAll(t, tb, r, randAddrs(rng, ps, 20000))
		}
	}
	// short and new prefixes, in batches
	for range 50 {
		var b []Update
		for range 20 {
			p := nested(rng)
			b = append(b, Update{Route: Route{Prefix: p, Source: fib.Static, NH: testNH(rng.IntN(11))}, Delete: rng.IntN(3) == 0})
		}
		b = append(b, Update{Route: Route{Prefix: pfx("::/0"), Source: fib.Static, NH: testNH(rng.IntN(11))}, Delete: rng.IntN(2) == 0})
		tb.Apply(b)
		r.apply(b)
	}
	compareAll(t, tb, r, addrs)
	checkRoutes(t, tb, r)
	// replace the static routes with a few
	tb.ReplaceSource(fib.Static, []Route{{Prefix: pfx("2001:db8::/32"), NH: testNH(1)}})
	for l := range r.byLen {
		for k, s := range r.byLen[l] {
			if s[fib.Static] != nil {
				r.del(prefixOf(k[0], k[1], l), fib.Static)
			}
		}
	}
	r.add(Route{Prefix: pfx("2001:db8::/32"), Source: fib.Static, NH: testNH(1)})
	compareAll(t, tb, r, addrs)
	t.Logf("after churn: %+v", tb.Stats())
}

func TestLookupAllocs(t *testing.T) {
	tb := New()
	g1, g2 := testNH(1), testNH(2)
	tb.Add(Route{Prefix: pfx("2001:db8::/32"), Source: fib.Static, NH: g1})
	tb.Add(Route{Prefix: pfx("2001:db8:1:2::/64"), Source: fib.Static, NH: g2})
	addrs := [][16]byte{a16("2001:db8::1"), a16("2001:db8:1:2::3"), a16("2001:db9::1"), a16("::1")}
	hits := 0
	n := testing.AllocsPerRun(1000, func() {
		for _, a := range addrs {
			if _, ok := tb.Lookup(a); ok {
				hits++
			}
		}
	})
	if n != 0 {
		t.Fatalf("Lookup allocates %v per run", n)
	}
	if hits != 1001*2 {
		t.Fatalf("%d hits, want %d", hits, 1001*2)
	}
}

func TestEdgeCases(t *testing.T) {
	tb := New()
	a, b, c := testNH(0), testNH(1), testNH(2)
	tb.Add(Route{Prefix: pfx("::/0"), Source: fib.Static, NH: a})
	tb.Add(Route{Prefix: pfx("2001:db8::1/128"), Source: fib.Static, NH: b})
	tb.Add(Route{Prefix: pfx("2001:db8::/127"), Source: fib.Static, NH: c})
	tb.Add(Route{Prefix: pfx("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"), Source: fib.Static, NH: b})
	tb.Add(Route{Prefix: pfx("10.0.0.0/8"), Source: fib.Static, NH: b})          // IPv4: ignored
	tb.Add(Route{Prefix: pfx("::ffff:10.0.0.0/104"), Source: fib.Static, NH: b}) // IPv4-mapped: ignored
	for _, x := range []struct {
		addr string
		want NextHop
	}{
		{"2001:db8::1", b}, {"2001:db8::", c}, {"2001:db8::2", a}, {"::", a},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", b}, {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", a},
	} {
		if nh, ok := tb.Lookup(a16(x.addr)); !ok || nh != x.want {
			t.Errorf("Lookup(%s) = %+v %v, want %+v", x.addr, nh, ok, x.want)
		}
	}
	if tb.Len() != 4 {
		t.Errorf("Len %d, want 4", tb.Len())
	}
	if _, ok := tb.Match(netip.MustParseAddr("10.1.1.1")); ok {
		t.Error("Match of an IPv4 address")
	}
	if tb.Delete(pfx("2001:db8::1/128"), fib.Kernel) {
		t.Error("Delete of another source's route reported true")
	}
	if !tb.Delete(pfx("2001:db8::1/128"), fib.Static) {
		t.Error("Delete failed")
	}
	if nh, _ := tb.Lookup(a16("2001:db8::1")); nh != c {
		t.Errorf("after delete: %+v", nh)
	}
	if n := tb.Apply([]Update{{Route: Route{Prefix: pfx("2001:db8::/127"), Source: fib.Static, NH: c}}}); n != 0 {
		t.Errorf("identical add counted: %d", n)
	}
	if n := tb.Apply([]Update{{Route: Route{Prefix: pfx("2001:db8::/32"), Source: fib.NumSources, NH: c}}}); n != 0 {
		t.Errorf("invalid source counted: %d", n)
	}
	s := tb.Summary()
	if s.Routes != 3 || s.BySource["static"] != 3 || s.ByLength[128] != 1 || s.MemoryBytes <= 0 {
		t.Errorf("Summary %+v", s)
	}
}

// TestConcurrentUpdates runs lookups on one goroutine while another
// publishes updates (run with -race). Addresses under prefixes that never
// change must always give their next hop; addresses under changing prefixes
// must give one of the values they may have.
func TestConcurrentUpdates(t *testing.T) {
	tb := New()
	stable := testNH(0)
	A, B := testNH(1), testNH(2)
	var ups []Update
	for i := range 4096 {
		// stable /48s in 2001:db8:1000::/36
		hi, _ := split(a16("2001:db8:1000::"))
		ups = append(ups, Update{Route: Route{Prefix: prefixOf(hi+uint64(i)<<16, 0, 48), Source: fib.Static, NH: stable}})
	}
	tb.Apply(ups)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var lookups, bad atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(5, 6))
		stHi, _ := split(a16("2001:db8:1000::"))
		chHi, _ := split(a16("2001:db8:8000::"))
		for !stop.Load() {
			for range 1000 {
				a := join(stHi+rng.Uint64()%(4096<<16), rng.Uint64())
				if nh, ok := tb.Lookup(a); !ok || nh != stable {
					bad.Add(1)
				}
				// changing region 2001:db8:8000::/33: unrouted, A or B
				a = join(chHi|rng.Uint64()&(1<<31-1), rng.Uint64())
				if nh, ok := tb.Lookup(a); ok && nh != A && nh != B {
					bad.Add(1)
				}
			}
			lookups.Add(2000)
		}
	}()
	rng := rand.New(rand.NewPCG(7, 8))
	deadline := time.Now().Add(time.Second)
	updates := 0
	chHi, _ := split(a16("2001:db8:8000::"))
	for time.Now().Before(deadline) {
		var b []Update
		for range 16 {
			l := 33 + rng.IntN(96)
			h, w := maskHL(chHi|rng.Uint64()&(1<<31-1), rng.Uint64(), l)
			b = append(b, Update{Route: Route{Prefix: prefixOf(h, w, l), Source: fib.Runtime, NH: [2]NextHop{A, B}[rng.IntN(2)]}, Delete: rng.IntN(3) == 0})
		}
		if rng.IntN(2) == 0 {
			tb.Apply(b)
		} else {
			for _, u := range b {
				tb.Apply([]Update{u})
			}
		}
		updates += len(b)
		if rng.IntN(50) == 0 {
			tb.mu.Lock()
			tb.compact(0, 0, 0)
			tb.mu.Unlock()
		}
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d wrong lookups during updates", bad.Load())
	}
	if lookups.Load() == 0 || updates == 0 {
		t.Fatalf("no work done: %d lookups, %d updates", lookups.Load(), updates)
	}
	t.Logf("%d lookups during %d updates, stats %+v", lookups.Load(), updates, tb.Stats())
}

// FuzzApply applies fuzzer-chosen batches and compares with the reference.
// Each 20 bytes of input are one change: 16 address bytes, length, source,
// next hop, and delete flag (low bit of the last byte) plus batch break.
func FuzzApply(f *testing.F) {
	f.Add([]byte("\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20\x01\x03\x00"))
	f.Add(make([]byte, 60))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb := New()
		r := newRef()
		var b []Update
		var addrs [][16]byte
		for len(data) >= 20 {
			var a [16]byte
			copy(a[:], data[:16])
			l := int(data[16]) % 129
			hi, lo := split(a)
			h, w := maskHL(hi, lo, l)
			p := prefixOf(h, w, l)
			addrs = append(addrs, a, join(h, w), join(h-1, w))
			b = append(b, Update{Route: Route{Prefix: p, Source: fib.Source(data[17] % 4), NH: testNH(int(data[18]))}, Delete: data[19]&1 != 0})
			if data[19]&2 != 0 {
				tb.Apply(b)
				r.apply(b)
				b = b[:0]
			}
			data = data[20:]
		}
		tb.Apply(b)
		r.apply(b)
		if len(addrs) > 0 {
			compareAll(t, tb, r, addrs)
		}
		checkRoutes(t, tb, r)
	})
}
