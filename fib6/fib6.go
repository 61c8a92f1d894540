// Package fib6 is the router's IPv6 forwarding table: routes from the same
// sources as fib (connected, static, runtime, kernel), the best one per
// prefix by administrative order (lower fib.Source wins), compiled into a
// longest-prefix-match structure that lookups read without locks while
// updates publish atomically. See README.md for the structure and figures.
package fib6

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"vrouter/fib"
	"vrouter/internal/poptrie"
)

// NextHop is the result of a lookup: Kind, Network (index of the network)
// and Gateway (the IPv6 next hop, global or link-local; KindGateway only).
// It is fib.NextHop6, which the kernel import in package fib fills.
type NextHop = fib.NextHop6

// Route is one route of one source: Prefix, Source, NH.
type Route = fib.Route6

// Update is one change of a batch (see Apply): Route (for a delete only
// Prefix and Source matter) and Delete.
type Update = fib.Update6

// Table is the IPv6 FIB. The zero value is not usable; call New.
//
// Lookup is lock-free and allocation-free and may run on any number of
// goroutines while one writer at a time (serialised by a mutex) changes
// routes. A lookup sees, for its address, the table before or after each
// published change, never a mix.
type Table struct {
	cur atomic.Pointer[snapshot]

	mu    sync.Mutex // serialises writers and control-plane readers
	rib   rib
	nhIdx map[NextHop]uint32
	nhN   int // next-hop indices in use (index 0 is "no route")

	recent  [8]recentNH // the last next hops interned (saves hashing)
	recentN uint8

	nUsed, lUsed int      // tails of the arrays of the current snapshot
	defs         []uint32 // per chunk: next hop of its longest covering prefix up to /16

	b       builder
	changed []change // prefixes longer than /16 changed since the last commit
	shortCh bool     // a prefix up to /16 changed since the last commit

	batches, rebuilds, subBuilds, compactions, nhFull uint64
}

type recentNH struct {
	nh NextHop
	i  uint32
}

// change is a changed prefix, masked.
type change struct {
	hi, lo uint64
	plen   int
}

// New returns an empty table.
func New() *Table {
	t := &Table{nhIdx: map[NextHop]uint32{}, nhN: 1, defs: make([]uint32, dirSize)}
	dir := new([dirSize]uint32)
	for i := range dir {
		dir[i] = leafFlag
	}
	t.cur.Store(&snapshot{dir: dir, nodes: make([]node, 1024), leaves: make([]uint32, 4096), nhs: make([]NextHop, 64)})
	return t
}

func split(a [16]byte) (hi, lo uint64) {
	return binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
}

func join(hi, lo uint64) [16]byte {
	var a [16]byte
	binary.BigEndian.PutUint64(a[:8], hi)
	binary.BigEndian.PutUint64(a[8:], lo)
	return a
}

func maskHL(hi, lo uint64, bits int) (uint64, uint64) {
	switch {
	case bits <= 0:
		return 0, 0
	case bits < 64:
		return hi &^ (1<<(64-bits) - 1), 0
	case bits == 64:
		return hi, 0
	case bits < 128:
		return hi, lo &^ (1<<(128-bits) - 1)
	}
	return hi, lo
}

// Lookup returns the next hop of the longest prefix containing addr.
// Lock-free and allocation-free.
func (t *Table) Lookup(addr [16]byte) (NextHop, bool) {
	s := t.cur.Load()
	hi, lo := split(addr)
	i := s.lookup(hi, lo)
	if i == 0 {
		return NextHop{}, false
	}
	return s.nhs[i], true
}

// keyOf returns the masked prefix as hi/lo/length (ok false: not IPv6).
func keyOf(p netip.Prefix) (hi, lo uint64, plen int, ok bool) {
	if !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() {
		return 0, 0, 0, false
	}
	p = p.Masked()
	hi, lo = split(p.Addr().As16())
	return hi, lo, p.Bits(), true
}

func prefixOf(hi, lo uint64, plen int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom16(join(hi, lo)), plen)
}

// Apply applies a batch of changes to the RIB in order, then compiles and
// publishes the result once: a large batch (more than 4096 changes and more
// than a quarter of the table, such as a full table) is compiled from
// scratch into fresh arrays and published with one pointer swap; a smaller
// one recompiles, for each changed prefix, the smallest subtree that holds
// it and publishes it with one atomic store. It returns how many changes
// had an effect (a delete of an absent route or an add of an identical one
// has none; non-IPv6 prefixes are ignored).
func (t *Table) Apply(ups []Update) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.apply(ups)
}

func (t *Table) apply(ups []Update) int {
	t.batches++
	full := len(ups) > 4096 && len(ups) > t.rib.prefixes/4
	if full {
		// room for a bulk load (a list at the tail grows in place)
		t.rib.slab = slices.Grow(t.rib.slab, len(ups)+len(ups)/4)
		t.rib.keys = slices.Grow(t.rib.keys, len(ups)/4)
		t.rib.lists = slices.Grow(t.rib.lists, len(ups)/4)
	}
	n := 0
	for i := range ups {
		u := &ups[i]
		hi, lo, plen, ok := keyOf(u.Route.Prefix)
		src := u.Route.Source
		if !ok || src >= fib.NumSources {
			continue
		}
		if u.Delete {
			if t.rib.del(hi, lo, plen, src) == 0 {
				continue
			}
		} else {
			nh := t.intern(u.Route.NH)
			if nh == 0 || t.rib.set(hi, lo, plen, src, nh) == nh {
				continue
			}
		}
		n++
		if full {
			continue
		}
		if plen <= dirBits {
			t.shortCh = true
		} else {
			t.changed = append(t.changed, change{hi, lo, plen})
		}
	}
	if full {
		t.rebuild()
	} else if n > 0 {
		t.commit()
	}
	return n
}

func (t *Table) intern(h NextHop) uint32 {
	for j := range t.recent {
		if t.recent[j].i != 0 && t.recent[j].nh == h {
			return t.recent[j].i
		}
	}
	i := t.internMap(h)
	t.recent[t.recentN%uint8(len(t.recent))] = recentNH{h, i}
	t.recentN++
	return i
}

func (t *Table) internMap(h NextHop) uint32 {
	if i, ok := t.nhIdx[h]; ok {
		return i
	}
	if t.nhN > maxNH {
		t.nhFull++
		return 0
	}
	s := t.cur.Load()
	if t.nhN >= len(s.nhs) {
		t.compact(0, 0, 2*len(s.nhs))
		s = t.cur.Load()
	}
	i := uint32(t.nhN)
	s.nhs[i] = h
	t.nhN++
	t.nhIdx[h] = i
	return i
}

// paintDefs computes every chunk's default from the prefixes up to /16
// into defs. Such a prefix is in the list of a key whose low 16 bits are
// zero, before the list's longer routes.
func (t *Table) paintDefs(defs []uint32) {
	clear(defs)
	r := &t.rib
	for ki, k := range r.keys {
		if k&0xffff != 0 {
			continue
		}
		last := rent{a: ^uint64(0), b: ^uint64(0)}
		for _, e := range r.list(ki) {
			if e.a != 0 || e.plen() > dirBits {
				break
			}
			if e.samePrefix(last) {
				continue
			}
			last = e
			c := k >> dirBits
			for i := c; i < c+1<<(dirBits-e.plen()); i++ {
				defs[i] = e.nh()
			}
		}
	}
}

// commit recompiles what changed since the last commit.
func (t *Table) commit() {
	t.rib.compact(false)
	var redone []uint32 // chunks compiled in full here
	if t.shortCh {
		t.shortCh = false
		defs := make([]uint32, dirSize)
		t.paintDefs(defs)
		for c, d := range defs {
			if d != t.defs[c] {
				t.defs[c] = d
				t.rebuildSub(uint64(c)<<(64-dirBits), 0, dirBits)
				redone = append(redone, uint32(c))
			}
		}
	}
	slices.SortFunc(t.changed, func(a, b change) int {
		switch {
		case a.hi != b.hi:
			return cmpU(a.hi, b.hi)
		case a.lo != b.lo:
			return cmpU(a.lo, b.lo)
		}
		return a.plen - b.plen
	})
	var done change // the last subtree compiled: a change inside it is in it
	doneOK := false
	for _, ch := range t.changed {
		if _, ok := slices.BinarySearch(redone, uint32(ch.hi>>(64-dirBits))); ok {
			continue
		}
		if doneOK && ch.plen >= done.plen {
			if h, l := maskHL(ch.hi, ch.lo, done.plen); h == done.hi && l == done.lo {
				continue
			}
		}
		_, _, d := t.locate(t.cur.Load(), ch.hi, ch.lo, ch.plen)
		done.hi, done.lo = maskHL(ch.hi, ch.lo, d)
		done.plen, doneOK = d, true
		t.rebuildSub(ch.hi, ch.lo, d)
	}
	t.changed = t.changed[:0]
}

func cmpU(a, b uint64) int {
	if a < b {
		return -1
	}
	return 1
}

// locate finds the deepest node whose range contains the prefix
// hi/lo/plen (longer than /16): its index (ni), its parent's (-1: it is
// the chunk root; both -1: the chunk is a leaf) and its depth d (the node
// splits bits d..d+5).
func (t *Table) locate(s *snapshot, hi, lo uint64, plen int) (ni, parent int, d int) {
	e := s.dir[hi>>(64-dirBits)]
	if e&leafFlag != 0 {
		return -1, -1, dirBits
	}
	ni, parent, d = int(e), -1, dirBits
	for plen >= d+stride {
		n := &s.nodes[ni]
		v := slotAt(hi, lo, uint(d))
		if n.Vec>>v&1 == 0 {
			break
		}
		parent = ni
		ni = int(n.Base1) + bits.OnesCount64(n.Vec&(uint64(1)<<v-1))
		d += stride
	}
	return ni, parent, d
}

// fill puts the best route of every prefix longer than d inside the
// masked prefix hi/lo/d into t.b.ents and returns the default of that
// range: the next hop of the longest prefix of length d or less covering it.
func (t *Table) fill(hi, lo uint64, d int) uint32 {
	b := &t.b
	b.ents = b.ents[:0]
	t.rib.eachIn(hi, lo, d, func(key uint32, e rent) {
		h, l := e.addr(key)
		b.ents = append(b.ents, bent{hi: h, lo: l, plen: uint8(e.plen()), nh: e.nh()})
	})
	if d > dirBits {
		if nh := t.rib.covering(hi, lo, dirBits+1, d); nh != 0 {
			return nh
		}
	}
	return t.defs[hi>>(64-dirBits)]
}

// singleLeaf reports whether t.b holds a subtree that is one leaf.
func (t *Table) singleLeaf() bool {
	return len(t.b.nodes) == 1 && t.b.nodes[0].Vec == 0 && len(t.b.leaves) == 1
}

// rebuildSub recompiles the subtree of the node at depth d whose range
// contains hi/lo (d = 16: the chunk) from the RIB and publishes it: a
// chunk with one atomic store of its dir entry; a deeper node by a copy of
// its siblings with the new subtree in its place and one atomic store of
// its parent's base1. The node at depth d must exist (locate found it).
func (t *Table) rebuildSub(hi, lo uint64, d int) {
	t.subBuilds++
	hi, lo = maskHL(hi, lo, d)
	c := hi >> (64 - dirBits)
	def := t.fill(hi, lo, d)
	b := &t.b
	s := t.cur.Load()
	if d == dirBits {
		ne := leafFlag | def
		if len(b.ents) > 0 {
			b.build(dirBits, def)
			if t.singleLeaf() {
				ne = leafFlag | b.leaves[0]
			} else {
				nn, nl := len(b.nodes), len(b.leaves)
				if t.nUsed+nn > len(s.nodes) || t.lUsed+nl > len(s.leaves) {
					t.compact(nn, nl, 0)
					s = t.cur.Load()
				}
				poptrie.Place(s.nodes, s.leaves, uint32(t.nUsed), uint32(t.lUsed), b.nodes, b.leaves)
				ne = uint32(t.nUsed)
				t.nUsed += nn
				t.lUsed += nl
			}
		}
		if s.dir[c] != ne {
			atomic.StoreUint32(&s.dir[c], ne)
		}
		return
	}
	b.build(uint(d), def)
	ni, parent, nd := t.locate(s, hi, lo, d)
	if nd != d || parent < 0 {
		panic("fib6: rebuildSub of a node that does not exist")
	}
	k := bits.OnesCount64(s.nodes[parent].Vec)
	nn, nl := len(b.nodes), len(b.leaves)
	if t.nUsed+nn+k > len(s.nodes) || t.lUsed+nl > len(s.leaves) {
		t.compact(nn+k, nl, 0)
		s = t.cur.Load()
		ni, parent, _ = t.locate(s, hi, lo, d)
	}
	p := &s.nodes[parent]
	root := uint32(t.nUsed)
	poptrie.Place(s.nodes, s.leaves, root, uint32(t.lUsed), b.nodes, b.leaves)
	sib := root + uint32(nn)
	copy(s.nodes[sib:sib+uint32(k)], s.nodes[p.Base1:p.Base1+uint32(k)])
	s.nodes[sib+uint32(ni)-p.Base1] = s.nodes[root]
	t.nUsed += nn + k
	t.lUsed += nl
	atomic.StoreUint32(&p.Base1, sib)
}

// rebuild compiles the whole table from the RIB into fresh arrays and
// publishes them with one pointer swap.
func (t *Table) rebuild() {
	t.rebuilds++
	t.rib.compact(true)
	t.paintDefs(t.defs)
	t.changed = t.changed[:0]
	t.shortCh = false
	b := &t.b
	r := &t.rib
	nodes := make([]node, 0, r.prefixes*3/4+1024)
	leaves := make([]uint32, 0, r.prefixes*2+4096)
	dir := new([dirSize]uint32)
	for c := range dir {
		dir[c] = leafFlag | t.defs[c]
	}
	for ki := 0; ki < len(r.keys); {
		c := r.keys[ki] >> (32 - dirBits)
		for ki < len(r.keys) && r.keys[ki]>>(32-dirBits) == c {
			ki++
		}
		def := t.fill(uint64(c)<<(64-dirBits), 0, dirBits)
		if len(b.ents) == 0 {
			continue
		}
		b.build(dirBits, def)
		if t.singleLeaf() {
			dir[c] = leafFlag | b.leaves[0]
			continue
		}
		dir[c] = uint32(len(nodes))
		nodes, leaves = poptrie.Append(nodes, leaves, b.nodes, b.leaves)
	}
	// the scratch of the largest chunk: not kept for the small
	// recompiles that follow
	if cap(b.ents) > 4096 {
		b.ents, b.nodes, b.leaves = nil, nil, nil
	}
	t.nUsed, t.lUsed = len(nodes), len(leaves)
	// exact size: the first incremental change after a full build compacts
	// into arrays with room to grow
	nodes = slices.Clone(nodes)
	leaves = slices.Clone(leaves)
	if len(nodes) == 0 {
		nodes, leaves = make([]node, 1024), make([]uint32, 4096)
	}
	old := t.cur.Load()
	t.cur.Store(&snapshot{dir: dir, nodes: nodes[:cap(nodes)], leaves: leaves[:cap(leaves)], nhs: old.nhs})
}

// compact copies the live tree into fresh arrays with room for need more
// nodes and leaves (and nhCap next hops) and publishes them.
func (t *Table) compact(needN, needL, nhCap int) {
	t.compactions++
	old := t.cur.Load()
	dir := new([dirSize]uint32)
	nodes, leaves, nUsed, lUsed := poptrie.Compact(dir[:], old.dir[:], old.nodes, old.leaves, needN, needL)
	nhs := old.nhs
	if nhCap > len(nhs) {
		nhs = make([]NextHop, nhCap)
		copy(nhs, old.nhs)
	}
	t.nUsed, t.lUsed = nUsed, lUsed
	t.cur.Store(&snapshot{dir: dir, nodes: nodes, leaves: leaves, nhs: nhs})
}

// Add inserts or replaces the route of r.Source for r.Prefix.
func (t *Table) Add(r Route) { t.Apply([]Update{{Route: r}}) }

// Delete removes the route of src for prefix; it reports whether one existed.
func (t *Table) Delete(prefix netip.Prefix, src fib.Source) bool {
	return t.Apply([]Update{{Route: Route{Prefix: prefix, Source: src}, Delete: true}}) > 0
}

// ReplaceSource replaces every route of src with routes and publishes once.
func (t *Table) ReplaceSource(src fib.Source, routes []Route) {
	t.ReplaceSources(map[fib.Source][]Route{src: routes})
}

// ReplaceSources replaces every route of each source in set with the
// source's new routes, in one batch published once.
func (t *Table) ReplaceSources(set map[fib.Source][]Route) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ups []Update
	present := false
	for src := range set {
		present = present || (src < fib.NumSources && t.rib.perSrc[src] > 0)
	}
	if present {
		t.rib.each(false, func(key uint32, e rent) {
			if _, ok := set[e.src()]; ok {
				h, l := e.addr(key)
				ups = append(ups, Update{Route: Route{Prefix: prefixOf(h, l, e.plen()), Source: e.src()}, Delete: true})
			}
		})
	}
	for src := fib.Source(0); src < fib.NumSources; src++ {
		for _, r := range set[src] {
			r.Source = src
			ups = append(ups, Update{Route: r})
		}
	}
	t.apply(ups)
}

func (t *Table) route(key uint32, e rent) Route {
	h, l := e.addr(key)
	return Route{Prefix: prefixOf(h, l, e.plen()), Source: e.src(), NH: t.cur.Load().nhs[e.nh()]}
}

// Match returns the best route (with its source) that addr matches.
func (t *Table) Match(addr netip.Addr) (Route, bool) {
	if !addr.Is6() || addr.Is4In6() {
		return Route{}, false
	}
	hi, lo := split(addr.As16())
	t.mu.Lock()
	defer t.mu.Unlock()
	for l := 128; l >= 0; l-- {
		if t.rib.lenCount[l] == 0 {
			continue
		}
		h, w := maskHL(hi, lo, l)
		if e, ok := t.rib.best(h, w, l); ok {
			return t.route(uint32(h>>32), e), true
		}
	}
	return Route{}, false
}

// Get returns the best route for exactly prefix.
func (t *Table) Get(prefix netip.Prefix) (Route, bool) {
	hi, lo, plen, ok := keyOf(prefix)
	if !ok {
		return Route{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.rib.best(hi, lo, plen); ok {
		return t.route(uint32(hi>>32), e), true
	}
	return Route{}, false
}

// SourceNH returns the next hop of src's route for exactly prefix (the
// kernel import asks for its own routes).
func (t *Table) SourceNH(prefix netip.Prefix, src fib.Source) (NextHop, bool) {
	hi, lo, plen, ok := keyOf(prefix)
	if !ok || src >= fib.NumSources {
		return NextHop{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if nh := t.rib.get(hi, lo, plen, src); nh != 0 {
		return t.cur.Load().nhs[nh], true
	}
	return NextHop{}, false
}

// SourceRoutes counts the routes of src (best or not).
func (t *Table) SourceRoutes(src fib.Source) int {
	if src >= fib.NumSources {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rib.perSrc[src]
}

// Routes returns the best route of every prefix, sorted by address then length.
func (t *Table) Routes() []Route {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Route, 0, t.rib.prefixes)
	t.rib.each(true, func(key uint32, e rent) { out = append(out, t.route(key, e)) })
	return out
}

// Len returns the number of prefixes (each counted once, whatever the
// number of sources giving it).
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rib.prefixes
}

// Summary returns counts of installed (best) routes by source and length,
// in the form of fib's (show ipv6 route summary).
func (t *Table) Summary() fib.Summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := fib.Summary{BySource: map[string]int{}, ByLength: map[int]int{}, Routes: t.rib.prefixes}
	for src, n := range t.rib.bySrc {
		s.BySource[fib.Source(src).String()] = n
	}
	for l, n := range t.rib.lenCount {
		if n > 0 {
			s.ByLength[l] = n
		}
	}
	s.MemoryBytes = t.cur.Load().memBytes()
	s.RIBBytes = t.rib.memBytes() + int64(len(t.defs))*4
	return s
}

// Stats describes the compiled structure and the writer's work.
type Stats struct {
	Prefixes    int                 // prefixes installed
	Routes      [fib.NumSources]int // routes per source (including ones that are not best)
	NextHops    int                 // distinct next hops
	Nodes       int                 // live trie nodes
	Leaves      int                 // live leaves
	NodeCap     int                 // allocated nodes (live + garbage + room)
	LeafCap     int                 // allocated leaves
	MemoryBytes int64               // compiled structure
	Batches     uint64              // Apply/Add/Delete/ReplaceSource calls
	SubBuilds   uint64              // subtrees (or chunks) compiled incrementally
	Compactions uint64              // copies of the live structure into fresh arrays
	Rebuilds    uint64              // full compilations from the RIB
	NHFull      uint64              // routes refused because the next-hop table was full
}

// Stats returns the current figures.
func (t *Table) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.cur.Load()
	nLive, lLive := poptrie.LiveSize(s.dir[:], s.nodes)
	return Stats{
		Prefixes: t.rib.prefixes, Routes: t.rib.perSrc, NextHops: t.nhN - 1,
		Nodes: nLive, Leaves: lLive, NodeCap: len(s.nodes), LeafCap: len(s.leaves),
		MemoryBytes: s.memBytes(), Batches: t.batches, SubBuilds: t.subBuilds,
		Compactions: t.compactions, Rebuilds: t.rebuilds, NHFull: t.nhFull,
	}
}

var _ fib.Table6 = (*Table)(nil)
