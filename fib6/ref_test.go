package fib6

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"

	"vrouter/fib"
	"vrouter/internal/prefixfile"
)

// ref is the naive reference (the first version of this package): every
// route of every source per prefix in a map per length, and lookups by
// probing each length from /128 down.
type ref struct {
	byLen [129]map[[2]uint64]*[fib.NumSources]*NextHop
}

func newRef() *ref {
	r := &ref{}
	for i := range r.byLen {
		r.byLen[i] = map[[2]uint64]*[fib.NumSources]*NextHop{}
	}
	return r
}

func refKey(p netip.Prefix) (int, [2]uint64) {
	hi, lo, l, _ := keyOf(p)
	return l, [2]uint64{hi, lo}
}

func (r *ref) add(rt Route) {
	l, k := refKey(rt.Prefix)
	s := r.byLen[l][k]
	if s == nil {
		s = new([fib.NumSources]*NextHop)
		r.byLen[l][k] = s
	}
	nh := rt.NH
	s[rt.Source] = &nh
}

func (r *ref) del(p netip.Prefix, src fib.Source) bool {
	l, k := refKey(p)
	s := r.byLen[l][k]
	if s == nil || s[src] == nil {
		return false
	}
	s[src] = nil
	for _, x := range s {
		if x != nil {
			return true
		}
	}
	delete(r.byLen[l], k)
	return true
}

func (r *ref) apply(ups []Update) {
	for _, u := range ups {
		if _, _, _, ok := keyOf(u.Route.Prefix); !ok || u.Route.Source >= fib.NumSources {
			continue
		}
		if u.Delete {
			r.del(u.Route.Prefix, u.Route.Source)
		} else {
			r.add(u.Route)
		}
	}
}

func bestOf(s *[fib.NumSources]*NextHop) (fib.Source, NextHop) {
	for i, nh := range s {
		if nh != nil {
			return fib.Source(i), *nh
		}
	}
	panic("empty")
}

// match returns the best route of the longest prefix containing a.
func (r *ref) match(a [16]byte) (Route, bool) {
	hi, lo := split(a)
	for l := 128; l >= 0; l-- {
		if len(r.byLen[l]) == 0 {
			continue
		}
		h, w := maskHL(hi, lo, l)
		if s, ok := r.byLen[l][[2]uint64{h, w}]; ok {
			src, nh := bestOf(s)
			return Route{Prefix: prefixOf(h, w, l), Source: src, NH: nh}, true
		}
	}
	return Route{}, false
}

func (r *ref) lookup(a [16]byte) (NextHop, bool) {
	rt, ok := r.match(a)
	return rt.NH, ok
}

func (r *ref) len() int {
	n := 0
	for _, m := range r.byLen {
		n += len(m)
	}
	return n
}

var (
	fullOnce sync.Once
	fullPfx  []netip.Prefix
	fullErr  error
)

// loadFull returns the 160,147 IPv6 prefixes of ../fib/testdata/prefixes.txt.gz
// (see ../fib/testdata/README.md). A missing file fails the test.
func loadFull(tb testing.TB) []netip.Prefix {
	tb.Helper()
	fullOnce.Do(func() {
		fullPfx, fullErr = prefixfile.Read("../fib/testdata/prefixes.txt.gz", func(p netip.Prefix) bool { return p.Addr().Is6() })
	})
	if fullErr != nil {
		tb.Fatalf("full table test data ../fib/testdata/prefixes.txt.gz missing or unreadable: %v", fullErr)
	}
	if len(fullPfx) != 160147 {
		tb.Fatalf("../fib/testdata/prefixes.txt.gz: %d IPv6 prefixes, want 160147", len(fullPfx))
	}
	return fullPfx
}

// testNH returns one of 11 distinct next hops.
func testNH(i int) NextHop {
	switch i % 11 {
	case 9:
		return NextHop{Kind: fib.KindDrop}
	case 10:
		return NextHop{Kind: fib.KindUnreachable}
	}
	g := netip.MustParseAddr("fe80::1").As16()
	g[15] += byte(i % 9)
	return NextHop{Kind: fib.KindGateway, Network: uint16(i % 3), Gateway: g}
}

// randIn returns a random address inside p.
func randIn(rng *rand.Rand, p netip.Prefix) [16]byte {
	hi, lo := split(p.Addr().As16())
	rh, rl := rng.Uint64(), rng.Uint64()
	mh, ml := maskHL(^uint64(0), ^uint64(0), p.Bits())
	return join(hi|rh&^mh, lo|rl&^ml)
}

// randAddrs returns n addresses, 70% inside prefixes of ps, 30% uniform in
// 2000::/3 (global unicast; uniform over all of ::/0 would nearly always
// miss).
func randAddrs(rng *rand.Rand, ps []netip.Prefix, n int) [][16]byte {
	out := make([][16]byte, n)
	g := netip.MustParsePrefix("2000::/3")
	for i := range out {
		if rng.IntN(10) < 7 {
			out[i] = randIn(rng, ps[rng.IntN(len(ps))])
		} else {
			out[i] = randIn(rng, g)
		}
	}
	return out
}

func newRng() *rand.Rand { return rand.New(rand.NewPCG(11, 12)) }
