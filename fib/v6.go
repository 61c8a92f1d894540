package fib

import (
	"encoding/binary"
	"net/netip"
)

// The IPv6 FIB is package fib6, which builds on this package (sources,
// kinds); the kernel import here fills it through Table6. fib6's NextHop,
// Route and Update are these types.

// NextHop6 is the result of an IPv6 lookup (fib6.NextHop).
type NextHop6 struct {
	Kind    Kind
	Network uint16   // index (slot) of the network
	Gateway [16]byte // IPv6 next hop (global or link-local); KindGateway only
}

// Route6 is one IPv6 route of one source (fib6.Route).
type Route6 struct {
	Prefix netip.Prefix
	Source Source
	NH     NextHop6
}

// Update6 is one change of a batch of IPv6 routes (fib6.Update).
type Update6 struct {
	Route  Route6 // for a delete only Prefix and Source matter
	Delete bool
}

// Table6 is what the kernel import needs of the IPv6 FIB (*fib6.Table).
type Table6 interface {
	Apply(ups []Update6) int
	ReplaceSource(src Source, routes []Route6)
	// SourceNH returns the next hop of src's route for exactly p.
	SourceNH(p netip.Prefix, src Source) (NextHop6, bool)
	// SourceRoutes counts src's routes.
	SourceRoutes(src Source) int
}

// k6 is the key of a masked IPv6 prefix in the kernel import.
type k6 struct {
	hi, lo uint64
	plen   uint8
}

func k6Of(p netip.Prefix) k6 {
	a := p.Addr().As16()
	return k6{binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:]), uint8(p.Bits())}
}

func (k k6) prefix() netip.Prefix {
	var a [16]byte
	binary.BigEndian.PutUint64(a[:8], k.hi)
	binary.BigEndian.PutUint64(a[8:], k.lo)
	return netip.PrefixFrom(netip.AddrFrom16(a), int(k.plen))
}

// fam6 is the IPv6 FIB as the kernel import sees it.
type fam6 struct {
	t   Table6
	ups []Update6
}

func (f *fam6) kernelNH(k k6) (NextHop6, bool) { return f.t.SourceNH(k.prefix(), Kernel) }

func (f *fam6) addrLen(k k6) (uint64, uint64, int) { return k.hi, k.lo, int(k.plen) }

func (f *fam6) apply(us []kupd[k6, NextHop6]) {
	f.ups = f.ups[:0]
	for _, u := range us {
		f.ups = append(f.ups, Update6{Route: Route6{Prefix: u.k.prefix(), Source: Kernel, NH: u.nh}, Delete: u.del})
	}
	f.t.Apply(f.ups)
	clear(f.ups)
	if cap(f.ups) > 4096 {
		f.ups = nil
	}
}

func (f *fam6) replace(rs []kupd[k6, NextHop6]) {
	routes := make([]Route6, len(rs))
	for i, r := range rs {
		routes[i] = Route6{Prefix: r.k.prefix(), Source: Kernel, NH: r.nh}
	}
	f.t.ReplaceSource(Kernel, routes)
}

func (f *fam6) kernelRoutes() int { return f.t.SourceRoutes(Kernel) }
