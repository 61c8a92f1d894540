package fib

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"

	"vrouter/internal/prefixfile"
	"vrouter/packet"
)

// ref is the naive reference: every route of every source per prefix, and
// lookups by probing each length from /32 down.
type ref struct {
	routes map[netip.Prefix]*[NumSources]*NextHop
	byLen  [33]map[uint32]netip.Prefix
}

func newRef() *ref {
	r := &ref{routes: map[netip.Prefix]*[NumSources]*NextHop{}}
	for i := range r.byLen {
		r.byLen[i] = map[uint32]netip.Prefix{}
	}
	return r
}

func (r *ref) add(rt Route) {
	p := rt.Prefix.Masked()
	s := r.routes[p]
	if s == nil {
		s = new([NumSources]*NextHop)
		r.routes[p] = s
		r.byLen[p.Bits()][packet.U32(p.Addr())] = p
	}
	nh := rt.NH
	s[rt.Source] = &nh
}

func (r *ref) del(p netip.Prefix, src Source) bool {
	p = p.Masked()
	s := r.routes[p]
	if s == nil || s[src] == nil {
		return false
	}
	s[src] = nil
	for _, x := range s {
		if x != nil {
			return true
		}
	}
	delete(r.routes, p)
	delete(r.byLen[p.Bits()], packet.U32(p.Addr()))
	return true
}

func (r *ref) best(p netip.Prefix) (Source, NextHop) {
	for s, nh := range r.routes[p] {
		if nh != nil {
			return Source(s), *nh
		}
	}
	panic("empty")
}

func (r *ref) match(a uint32) (netip.Prefix, bool) {
	for l := 32; l >= 0; l-- {
		if len(r.byLen[l]) == 0 {
			continue
		}
		if p, ok := r.byLen[l][a&mask(l)]; ok {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

func (r *ref) lookup(a uint32) (NextHop, bool) {
	p, ok := r.match(a)
	if !ok {
		return NextHop{}, false
	}
	_, nh := r.best(p)
	return nh, true
}

var (
	fullOnce sync.Once
	fullPfx  []netip.Prefix
	fullErr  error
)

// loadFull returns the 901,899 IPv4 prefixes of testdata/prefixes.txt.gz.
// A missing file fails the test (it is part of the repository).
func loadFull(tb testing.TB) []netip.Prefix {
	tb.Helper()
	fullOnce.Do(func() {
		fullPfx, fullErr = prefixfile.Read("testdata/prefixes.txt.gz", func(p netip.Prefix) bool { return p.Addr().Is4() })
	})
	if fullErr != nil {
		tb.Fatalf("full table test data testdata/prefixes.txt.gz missing or unreadable (see testdata/README.md; copy it from ../shared/data/): %v", fullErr)
	}
	if len(fullPfx) != 901899 {
		tb.Fatalf("testdata/prefixes.txt.gz: %d IPv4 prefixes, want 901899", len(fullPfx))
	}
	return fullPfx
}

// testNH returns one of n distinct next hops.
func testNH(i int) NextHop {
	switch i % 11 {
	case 9:
		return NextHop{Kind: KindDrop}
	case 10:
		return NextHop{Kind: KindUnreachable}
	}
	return NextHop{Kind: KindGateway, Network: uint16(i % 3), Gateway: 0x0a000001 + uint32(i%9)}
}

// randAddrs returns n addresses, 70% inside prefixes of ps, 30% uniform.
func randAddrs(rng *rand.Rand, ps []netip.Prefix, n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		if rng.IntN(10) < 7 {
			p := ps[rng.IntN(len(ps))]
			out[i] = packet.U32(p.Addr()) | rng.Uint32()&^mask(p.Bits())
		} else {
			out[i] = rng.Uint32()
		}
	}
	return out
}
