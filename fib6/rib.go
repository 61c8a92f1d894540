package fib6

import (
	"slices"

	"vrouter/fib"
)

// The RIB holds every route of every source, pointer-free. Routes are
// grouped by the top 32 bits of their (masked) address, the "key": a route
// of /32 or longer is in the list of its /32, a shorter one in the list of
// its masked address's /32 (2001:db8::/29 in the list of 2001:db8). The
// keys are in one sorted array with a parallel array of list headers into
// one slab; a list is sorted by (address, length, source). Walking the keys
// in order and each list in order gives every route in (address, length)
// order, covering prefixes first: what the compiler sweeps, and what a
// range of addresses (a trie node) is, a contiguous run. A key whose list
// empties stays (an add back does not move the key array); rebuilds drop
// it. The best route of a prefix is the one of the lowest source, the
// first of its prefix in the list.

// rent is one route in 16 bytes: a holds address bits 32-95; b holds bits
// 96-127 in its high half and plen<<24 | src<<22 | next-hop index in its
// low half. Ordering by (a, b>>22) orders by (address, length, source).
type rent struct{ a, b uint64 }

const (
	nhBits = 22
	maxNH  = 1<<nhBits - 1
)

func mkRent(hi, lo uint64, plen int, src fib.Source, nh uint32) rent {
	return rent{hi<<32 | lo>>32, lo<<32 | uint64(plen)<<24 | uint64(src)<<nhBits | uint64(nh)}
}

func (e rent) plen() int       { return int(e.b >> 24 & 0xff) }
func (e rent) src() fib.Source { return fib.Source(e.b >> nhBits & 3) }
func (e rent) nh() uint32      { return uint32(e.b & maxNH) }
func (e rent) addr(key uint32) (hi, lo uint64) {
	return uint64(key)<<32 | e.a>>32, e.a<<32 | e.b>>32
}

// before reports whether e sorts before (a, b>>shift) with the given
// shift: 22 compares address, length and source; 24 address and length.
func (e rent) less(a, b uint64, shift uint) bool {
	return e.a < a || e.a == a && e.b>>shift < b>>shift
}

func (e rent) samePrefix(f rent) bool { return e.a == f.a && e.b>>24 == f.b>>24 }

// clist is a key's list: slab[off : off+n], with room up to capacity.
type clist struct {
	off, n, cap uint32
}

type rib struct {
	keys    []uint32 // sorted
	lists   []clist  // parallel to keys
	slab    []rent
	garbage int // slab entries in no list's capacity

	lenCount [129]int // prefixes per length
	bySrc    [fib.NumSources]int
	perSrc   [fib.NumSources]int
	prefixes int
}

// find returns the position of key k in r.keys and whether it is there.
func (r *rib) find(k uint32) (int, bool) {
	return slices.BinarySearch(r.keys, k)
}

func (r *rib) list(i int) []rent {
	l := r.lists[i]
	return r.slab[l.off : l.off+l.n]
}

// search returns the first position in l not before (a, b) (compared with
// shift, see less).
func search(l []rent, a, b uint64, shift uint) int {
	lo, hi := 0, len(l)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if l[m].less(a, b, shift) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (r *rib) account(plen int, ob, nb fib.Source) {
	if ob == nb {
		return
	}
	if ob != fib.NumSources {
		r.bySrc[ob]--
	} else {
		r.lenCount[plen]++
		r.prefixes++
	}
	if nb != fib.NumSources {
		r.bySrc[nb]++
	} else {
		r.lenCount[plen]--
		r.prefixes--
	}
}

// set installs (or replaces) the route of src for the masked prefix
// hi/lo/plen; it returns the previous next hop of that source (0: none).
func (r *rib) set(hi, lo uint64, plen int, src fib.Source, nh uint32) uint32 {
	k := uint32(hi >> 32)
	ki, ok := r.find(k)
	if !ok {
		r.keys = slices.Insert(r.keys, ki, k)
		r.lists = slices.Insert(r.lists, ki, clist{})
	}
	e := mkRent(hi, lo, plen, src, nh)
	l := r.list(ki)
	g := search(l, e.a, e.b, 24) // first route of the prefix
	ob := fib.NumSources
	if g < len(l) && l[g].samePrefix(e) {
		ob = l[g].src()
	}
	i := search(l, e.a, e.b, nhBits)
	if i < len(l) && l[i].b>>nhBits == e.b>>nhBits && l[i].a == e.a {
		old := l[i].nh()
		l[i] = e
		return old
	}
	cl := r.lists[ki]
	if cl.n == cl.cap {
		nc := max(2, cl.cap*2)
		if int(cl.off+cl.cap) == len(r.slab) && cl.n > 0 {
			// the last list of the slab (a sorted bulk load adds to
			// it): grow in place
			r.slab = slices.Grow(r.slab, int(nc-cl.cap))[:len(r.slab)+int(nc-cl.cap)]
		} else {
			// move the list to the end of the slab with room to grow
			off := len(r.slab)
			r.slab = slices.Grow(r.slab, int(nc))
			r.slab = append(r.slab, l...)
			r.slab = r.slab[:off+int(nc)]
			r.garbage += int(cl.cap)
			cl.off = uint32(off)
		}
		cl.cap = nc
	}
	l = r.slab[cl.off : cl.off+cl.n+1]
	copy(l[i+1:], l[i:cl.n])
	l[i] = e
	cl.n++
	r.lists[ki] = cl
	r.perSrc[src]++
	r.account(plen, ob, min(ob, src))
	return 0
}

// get returns the next hop of src's route for the masked prefix (0: none).
func (r *rib) get(hi, lo uint64, plen int, src fib.Source) uint32 {
	ki, ok := r.find(uint32(hi >> 32))
	if !ok {
		return 0
	}
	e := mkRent(hi, lo, plen, src, 0)
	l := r.list(ki)
	i := search(l, e.a, e.b, nhBits)
	if i < len(l) && l[i].a == e.a && l[i].b>>nhBits == e.b>>nhBits {
		return l[i].nh()
	}
	return 0
}

// best returns the best route of the masked prefix (ok false: none).
func (r *rib) best(hi, lo uint64, plen int) (rent, bool) {
	ki, ok := r.find(uint32(hi >> 32))
	if !ok {
		return rent{}, false
	}
	e := mkRent(hi, lo, plen, 0, 0)
	l := r.list(ki)
	i := search(l, e.a, e.b, 24)
	if i < len(l) && l[i].samePrefix(e) {
		return l[i], true
	}
	return rent{}, false
}

// del removes the route of src; it returns its next hop (0: none).
func (r *rib) del(hi, lo uint64, plen int, src fib.Source) uint32 {
	ki, ok := r.find(uint32(hi >> 32))
	if !ok {
		return 0
	}
	e := mkRent(hi, lo, plen, src, 0)
	l := r.list(ki)
	g := search(l, e.a, e.b, 24)
	i := search(l, e.a, e.b, nhBits)
	if i >= len(l) || l[i].a != e.a || l[i].b>>nhBits != e.b>>nhBits {
		return 0
	}
	ob := l[g].src()
	old := l[i].nh()
	copy(l[i:], l[i+1:])
	r.lists[ki].n--
	l = l[:len(l)-1]
	nb := fib.NumSources
	if g < len(l) && l[g].samePrefix(e) {
		nb = l[g].src()
	}
	r.account(plen, ob, nb)
	r.perSrc[src]--
	return old
}

// compact packs all lists (exact capacity) and drops empty keys when at
// least half of the slab is garbage or spare room, or always if force.
func (r *rib) compact(force bool) {
	n := 0
	for _, c := range r.perSrc {
		n += c
	}
	if !force && (len(r.slab)-n)*2 < len(r.slab) {
		return
	}
	ns := make([]rent, 0, n)
	keys := r.keys[:0]
	lists := r.lists[:0]
	for i, cl := range r.lists {
		if cl.n == 0 {
			continue
		}
		off := uint32(len(ns))
		ns = append(ns, r.slab[cl.off:cl.off+cl.n]...)
		keys = append(keys, r.keys[i])
		lists = append(lists, clist{off: off, n: cl.n, cap: cl.n})
	}
	r.keys, r.lists = slices.Clip(keys), slices.Clip(lists)
	r.slab = ns
	r.garbage = 0
}

// eachIn calls f for the best route of every prefix longer than d inside
// the masked prefix hi/lo/d, in (address, length) order.
func (r *rib) eachIn(hi, lo uint64, d int, f func(key uint32, e rent)) {
	k0 := uint32(hi >> 32)
	k1 := k0
	if d < 32 {
		k1 = k0 | uint32(1<<(32-d)-1)
	}
	ki, _ := r.find(k0)
	var sa, sb uint64
	if d >= 32 {
		s := mkRent(hi, lo, d+1, 0, 0)
		sa, sb = s.a, s.b
	} else {
		sb = uint64(d+1) << 24
	}
	for ; ki < len(r.keys) && r.keys[ki] <= k1; ki++ {
		l := r.list(ki)
		i := 0
		if r.keys[ki] == k0 {
			i = search(l, sa, sb, 24)
		}
		last := rent{a: ^uint64(0), b: ^uint64(0)}
		for ; i < len(l); i++ {
			e := l[i]
			if d >= 32 && !inside(e, hi, lo, d) {
				break
			}
			if e.samePrefix(last) {
				continue
			}
			last = e
			f(r.keys[ki], e)
		}
	}
}

// inside reports whether route e (of the key of hi) is inside hi/lo/d (d >= 32).
func inside(e rent, hi, lo uint64, d int) bool {
	ehi, elo := e.addr(uint32(hi >> 32))
	mh, ml := maskHL(ehi, elo, d)
	return mh == hi && ml == lo
}

// covering returns the best next hop of the longest prefix of length in
// [from, to] containing hi/lo (0: none).
func (r *rib) covering(hi, lo uint64, from, to int) uint32 {
	// the prefixes of /32 or longer are all in the list of hi's key
	var l32 []rent
	if ki, ok := r.find(uint32(hi >> 32)); ok {
		l32 = r.list(ki)
	}
	for l := to; l >= from; l-- {
		if r.lenCount[l] == 0 {
			continue
		}
		h, w := maskHL(hi, lo, l)
		if l < 32 {
			if e, ok := r.best(h, w, l); ok {
				return e.nh()
			}
			continue
		}
		e := mkRent(h, w, l, 0, 0)
		if i := search(l32, e.a, e.b, 24); i < len(l32) && l32[i].samePrefix(e) {
			return l32[i].nh()
		}
	}
	return 0
}

// each calls f for every route of every source (or, bestOnly, the best of
// every prefix) in (address, length, source) order.
func (r *rib) each(bestOnly bool, f func(key uint32, e rent)) {
	for ki, k := range r.keys {
		last := rent{a: ^uint64(0), b: ^uint64(0)}
		for _, e := range r.list(ki) {
			if bestOnly && e.samePrefix(last) {
				continue
			}
			last = e
			f(k, e)
		}
	}
}

func (r *rib) memBytes() int64 {
	return int64(cap(r.keys))*4 + int64(cap(r.lists))*12 + int64(cap(r.slab))*16
}
