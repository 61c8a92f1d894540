package fib

import "slices"

// The RIB holds every route of every source, pointer-free:
//   - prefixes up to /18 in a map keyed by address<<8|length, holding the
//     next-hop index of each source (0: none);
//   - longer prefixes in one sorted list per /18 chunk (address, length,
//     source), stored in a slab.
// The best route of a prefix is the one of the lowest Source.

const shortMax = dirBits // prefixes up to this length are "short"

// rent is one long route in 6 bytes: 48 bits holding the low 14 address
// bits (the chunk gives the rest), length, source and next hop:
// v = low14<<32 | plen<<26 | src<<24 | nh. Ordering by v>>24 orders a
// chunk's routes by (address, length, source).
type rent [3]uint16

func mkRent(addr uint32, plen uint8, src Source, nh uint32) rent {
	v := uint64(addr&(1<<(32-dirBits)-1))<<32 | uint64(plen)<<26 | uint64(src)<<24 | uint64(nh)
	return rent{uint16(v >> 32), uint16(v >> 16), uint16(v)}
}

func (e rent) v() uint64 { return uint64(e[0])<<32 | uint64(e[1])<<16 | uint64(e[2]) }

// addr returns the route's address; base is any address of the chunk.
func (e rent) addr(base uint32) uint32 {
	return base&^(1<<(32-dirBits)-1) | uint32(e[0])&(1<<(32-dirBits)-1)
}
func (e rent) plen() uint8  { return uint8(e.v() >> 26 & 63) }
func (e rent) src() Source  { return Source(e.v() >> 24 & 3) }
func (e rent) nh() uint32   { return uint32(e.v() & maxNH) }
func (e rent) key() uint64  { return e.v() >> 24 }
func (e rent) pkey() uint64 { return e.v() >> 26 }

// pkeyOf is pkey of a route of addr/plen (without the source).
func pkeyOf(addr uint32, plen int) uint64 {
	return uint64(addr&(1<<(32-dirBits)-1))<<6 | uint64(plen)
}

// chunk list: slab[off : off+count], with spare slots after it up to its
// capacity (a delete leaves a spare slot that the next add in the chunk
// reuses, so churn does not move lists).
type clist struct {
	off uint32
	n   uint32 // low 24 bits: count; high 8 bits: spare slots (capacity - count)
	def uint32 // next hop of the longest covering prefix up to /18 (the chunk's default)
}

func (c clist) count() int    { return int(c.n & 0xffffff) }
func (c clist) capacity() int { return c.count() + int(c.n>>24) }

const maxSpare = 255

type rib struct {
	short    map[uint64][NumSources]uint32
	shortLen [shortMax + 1]int // prefixes per length among short ones
	chunks   []clist           // dirSize
	slab     []rent
	garbage  int // slab entries not in any list

	// counts of prefixes (best route) by length and source, and routes per source
	byLen    [33]int
	bySrc    [NumSources]int
	perSrc   [NumSources]int
	prefixes int
}

func newRIB() *rib {
	return &rib{short: map[uint64][NumSources]uint32{}, chunks: make([]clist, dirSize)}
}

func mask(plen int) uint32 {
	if plen == 0 {
		return 0
	}
	return ^uint32(0) << (32 - plen)
}

func shortKey(addr uint32, plen int) uint64 { return uint64(addr)<<8 | uint64(plen) }

func bestOf(v *[NumSources]uint32) (Source, uint32) {
	for s, nh := range v {
		if nh != 0 {
			return Source(s), nh
		}
	}
	return NumSources, 0
}

// account updates the counters for one prefix going from best source ob
// (NumSources: absent) to nb.
func (r *rib) account(plen int, ob, nb Source) {
	if ob == nb {
		return
	}
	if ob != NumSources {
		r.bySrc[ob]--
	} else {
		r.byLen[plen]++
		r.prefixes++
	}
	if nb != NumSources {
		r.bySrc[nb]++
	} else {
		r.byLen[plen]--
		r.prefixes--
	}
}

func (r *rib) list(c uint32) []rent {
	l := r.chunks[c]
	return r.slab[l.off : l.off+uint32(l.count())]
}

// search returns the position of key k in chunk list l and whether it is there.
func search(l []rent, k uint64) (int, bool) {
	if len(l) <= 48 {
		// short lists (most): a linear scan, whose loads do not depend on
		// each other, so the cache misses of a cold list overlap
		// the low 14 address bits first (one load per route), then the
		// length and source among the routes of that address
		a := uint16(k >> 8)
		i := 0
		for i < len(l) && l[i][0] < a {
			i++
		}
		for i < len(l) && l[i][0] == a && l[i].key() < k {
			i++
		}
		return i, i < len(l) && l[i].key() == k
	}
	lo, hi := 0, len(l)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if l[m].key() < k {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(l) && l[lo].key() == k
}

// set installs (or replaces) the route; it returns the previous next hop of
// that source (0: none).
func (r *rib) set(addr uint32, plen int, src Source, nh uint32) uint32 {
	if plen <= shortMax {
		k := shortKey(addr, plen)
		v, ok := r.short[k]
		ob, _ := bestOf(&v)
		old := v[src]
		v[src] = nh
		r.short[k] = v
		if !ok {
			r.shortLen[plen]++
		}
		nb, _ := bestOf(&v)
		r.account(plen, ob, nb)
		if old == 0 {
			r.perSrc[src]++
		}
		return old
	}
	c := addr >> (32 - dirBits)
	e := mkRent(addr, uint8(plen), src, nh)
	l := r.list(c)
	pk := e.pkey()
	g, _ := search(l, pk<<2) // first route of the prefix
	ob := NumSources
	if g < len(l) && l[g].pkey() == pk {
		ob = l[g].src()
	}
	i := g
	for i < len(l) && l[i].pkey() == pk && l[i].src() < src {
		i++
	}
	if i < len(l) && l[i].key() == e.key() {
		old := l[i].nh()
		l[i] = e
		return old
	}
	cl := r.chunks[c]
	n := cl.count()
	if cl.n>>24 == 0 {
		// full: move the list to the end of the slab with room to grow
		sp := min(maxSpare-1, max(3, n))
		off := len(r.slab)
		r.slab = slices.Grow(r.slab, n+1+sp)
		r.slab = append(r.slab, l...)
		r.slab = r.slab[:off+n+1+sp]
		r.garbage += cl.capacity()
		cl = clist{off: uint32(off), n: uint32(n) | uint32(sp+1)<<24, def: cl.def}
	}
	l = r.slab[cl.off : int(cl.off)+n+1]
	copy(l[i+1:], l[i:n])
	l[i] = e
	cl.n = cl.n + 1 - 1<<24 // one more route, one spare slot less
	r.chunks[c] = cl
	r.perSrc[src]++
	r.account(plen, ob, min(ob, src))
	return 0
}

// get returns the next hop of src's route for the prefix (0: none).
func (r *rib) get(addr uint32, plen int, src Source) uint32 {
	if plen <= shortMax {
		return r.short[shortKey(addr, plen)][src]
	}
	l := r.list(addr >> (32 - dirBits))
	if i, ok := search(l, pkeyOf(addr, plen)<<2|uint64(src)); ok {
		return l[i].nh()
	}
	return 0
}

// del removes the route of src; it returns its next hop (0: there was none).
func (r *rib) del(addr uint32, plen int, src Source) uint32 {
	if plen <= shortMax {
		k := shortKey(addr, plen)
		v, ok := r.short[k]
		if !ok || v[src] == 0 {
			return 0
		}
		ob, _ := bestOf(&v)
		old := v[src]
		v[src] = 0
		nb, _ := bestOf(&v)
		if nb == NumSources {
			delete(r.short, k)
			r.shortLen[plen]--
		} else {
			r.short[k] = v
		}
		r.account(plen, ob, nb)
		r.perSrc[src]--
		return old
	}
	c := addr >> (32 - dirBits)
	e := mkRent(addr, uint8(plen), src, 0)
	l := r.list(c)
	pk := e.pkey()
	g, _ := search(l, pk<<2)
	i := g
	for i < len(l) && l[i].pkey() == pk && l[i].src() < src {
		i++
	}
	if i >= len(l) || l[i].key() != e.key() {
		return 0
	}
	ob := l[g].src()
	old := l[i].nh()
	copy(l[i:], l[i+1:])
	cl := r.chunks[c]
	if cl.n>>24 == maxSpare {
		r.garbage++ // no room to count another spare slot: it is lost
		cl.n--
	} else {
		cl.n += 1<<24 - 1 // one route less, one spare slot more
	}
	r.chunks[c] = cl
	l = l[:len(l)-1]
	nb := NumSources
	if g < len(l) && l[g].pkey() == pk {
		nb = l[g].src()
	}
	r.account(plen, ob, nb)
	r.perSrc[src]--
	return old
}

// compactSlab packs all chunk lists (exact capacity) when at least half of
// the slab is garbage, or always if force.
func (r *rib) compactSlab(force bool) {
	if !force && r.garbage*2 < len(r.slab) {
		return
	}
	if r.garbage == 0 && len(r.slab) == cap(r.slab) {
		return
	}
	n := 0 // routes (the slab also holds spare slots)
	for _, cl := range r.chunks {
		n += cl.count()
	}
	ns := make([]rent, 0, n)
	for c := range r.chunks {
		cl := r.chunks[c]
		cnt := cl.count()
		off := uint32(len(ns))
		ns = append(ns, r.slab[cl.off:int(cl.off)+cnt]...)
		r.chunks[c] = clist{off: off, n: uint32(cnt), def: cl.def}
	}
	// lists that had spare capacity leave no garbage now
	r.slab = ns
	r.garbage = 0
}

// shortLPM returns the best next hop of the longest prefix of at most
// maxLen bits containing addr (0: none).
func (r *rib) shortLPM(addr uint32, maxLen int) uint32 {
	for l := maxLen; l >= 0; l-- {
		if r.shortLen[l] == 0 {
			continue
		}
		if v, ok := r.short[shortKey(addr&mask(l), l)]; ok {
			_, nh := bestOf(&v)
			return nh
		}
	}
	return 0
}

// paintShort computes the default next hop of every chunk from the short
// prefixes into sb (len dirSize).
func (r *rib) paintShort(sb []uint32) {
	clear(sb)
	keys := make([]uint64, 0, len(r.short))
	for k := range r.short {
		keys = append(keys, k)
	}
	slices.Sort(keys) // address, then length: covering prefixes first
	for _, k := range keys {
		v := r.short[k]
		_, nh := bestOf(&v)
		addr, plen := uint32(k>>8), int(k&0xff)
		c := addr >> (32 - dirBits)
		n := uint32(1) << (shortMax - plen)
		for i := c; i < c+n; i++ {
			sb[i] = nh
		}
	}
}

// fillChunk fills b.ents with the best route of every prefix of chunk c.
func (r *rib) fillChunk(b *builder, c uint32) {
	b.ents = b.ents[:0]
	base := c << (32 - dirBits)
	var last uint64 = ^uint64(0)
	for _, e := range r.list(c) {
		if pk := e.pkey(); pk != last {
			last = pk
			b.ents = append(b.ents, bent{addr: e.addr(base), plen: e.plen(), nh: e.nh()})
		}
	}
}

func (r *rib) memBytes() int64 {
	// map: key 8 + value 16 bytes per slot, roughly 8/7 slots per entry + control bytes
	return int64(len(r.chunks))*12 + int64(cap(r.slab))*6 + int64(len(r.short))*(24*8/7+2)
}
