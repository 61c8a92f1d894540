// Package fib is the router's forwarding table: routes from several sources
// (connected, static, runtime, kernel), the best one per prefix by
// administrative order, compiled into a longest-prefix-match structure that
// lookups read without locks while updates publish atomically.
package fib

import (
	"math/bits"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"vrouter/internal/poptrie"
	"vrouter/packet"
)

// Source is where a route came from. Lower wins when two sources give the
// same prefix: connected > static > runtime > kernel.
type Source uint8

const (
	Connected Source = iota
	Static
	Runtime
	Kernel
	NumSources
)

func (s Source) String() string {
	switch s {
	case Connected:
		return "connected"
	case Static:
		return "static"
	case Runtime:
		return "runtime"
	case Kernel:
		return "kernel"
	}
	return "unknown"
}

// Kind is what a next hop does with a packet.
type Kind uint8

const (
	KindDrop        Kind = iota // blackhole: drop silently (counted)
	KindUnreachable             // drop, ICMP 3/1 (host unreachable)
	KindProhibit                // drop, ICMP 3/13 (administratively prohibited)
	KindConnected               // destination is on Network itself
	KindGateway                 // forward to Gateway on Network
)

func (k Kind) String() string {
	return [...]string{"blackhole", "unreachable", "prohibit", "connected", "gateway"}[k]
}

// NextHop is the result of a lookup.
type NextHop struct {
	Kind    Kind
	Network uint16 // index of the network (config order)
	Gateway uint32 // IPv4, host order; KindGateway only
}

// Route is one route of one source.
type Route struct {
	Prefix netip.Prefix
	Source Source
	NH     NextHop
}

// Table is the FIB. The zero value is not usable; call New.
//
// Lookup is lock-free and allocation-free and may run on any number of
// goroutines while one writer at a time (serialised by a mutex) changes
// routes. Every change reaches lookups chunk by chunk (a chunk is a /18):
// a lookup sees, for its address, either the table before or after an
// update, never a mix.
type Table struct {
	cur atomic.Pointer[snapshot]

	mu    sync.Mutex // serialises writers and control-plane readers
	rib   *rib
	nhIdx map[uint64]uint32 // packed NextHop -> index
	nhN   int               // next-hop indices in use (index 0 is "no route")

	nUsed, lUsed int // tails of the arrays of the current snapshot

	b         builder
	dirty     []uint64 // bitset over chunks
	dfull     []uint64 // bitset over chunks: more than one change, compile in full
	dlist     []uint32
	dkey      []uint64 // per dlist entry: its one changed prefix (addr<<8 | length; 0: none)
	noRewrite bool     // tests: never rewrite leaves in place
	shortCh   []uint64 // short prefixes changed since the last commit

	compactions, rebuilds, chunkBuilds, batches uint64
	nhFull                                      uint64
	leafRewrites                                uint64
}

// New returns an empty table.
func New() *Table {
	t := &Table{
		rib:   newRIB(),
		nhIdx: map[uint64]uint32{},
		nhN:   1,
		dirty: make([]uint64, dirSize/64),
		dfull: make([]uint64, dirSize/64),
	}
	dir := new([dirSize]uint32)
	for i := range dir {
		dir[i] = leafFlag
	}
	t.cur.Store(&snapshot{dir: dir, nodes: make([]node, 1024), leaves: make([]uint32, 4096), nhs: make([]NextHop, 256)})
	return t
}

// Lookup returns the next hop of the longest prefix containing addr
// (IPv4, host order). Lock-free and allocation-free.
func (t *Table) Lookup(addr uint32) (NextHop, bool) {
	s := t.cur.Load()
	i := s.lookup(addr)
	if i == 0 {
		return NextHop{}, false
	}
	return s.nhs[i], true
}

// Update is one change of a batch (see Apply).
type Update struct {
	Route  Route // for a delete only Prefix and Source matter
	Delete bool
}

// Apply applies a batch of changes to the RIB in order, then compiles and
// publishes the result once: a large batch (more than 4096 changes and more
// than a quarter of the table, such as a full table) is compiled from
// scratch into fresh arrays and published with one pointer swap; a smaller
// one recompiles each /18 chunk it touches once and publishes each with one
// atomic store (lookups meanwhile see every chunk either before or after).
// It returns how many changes had an effect (a delete of an absent route or
// an add of an identical one has none; non-IPv4 prefixes are ignored).
func (t *Table) Apply(ups []Update) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.apply(ups)
}

func (t *Table) apply(ups []Update) int {
	t.batches++
	full := len(ups) > 4096 && len(ups) > t.rib.prefixes/4
	changed := 0
	for i := range ups {
		u := &ups[i]
		p := u.Route.Prefix
		if !p.IsValid() || !p.Addr().Unmap().Is4() || u.Route.Source >= NumSources {
			continue
		}
		plen := p.Bits()
		if p.Addr().Is4In6() {
			if plen < 96 {
				continue
			}
			plen -= 96
		}
		addr := packet.U32(p.Addr().Unmap()) & mask(plen)
		if u.Delete {
			if t.rib.del(addr, plen, u.Route.Source) == 0 {
				continue
			}
		} else {
			nh := t.intern(u.Route.NH)
			if nh == 0 {
				continue
			}
			if t.rib.set(addr, plen, u.Route.Source, nh) == nh {
				continue
			}
		}
		changed++
		if !full {
			if plen <= shortMax {
				t.shortCh = append(t.shortCh, shortKey(addr, plen))
			} else {
				t.markChange(addr, plen)
			}
		}
	}
	if full {
		t.rebuild()
	} else {
		t.commit()
	}
	return changed
}

func (h NextHop) pack() uint64 {
	return uint64(h.Kind)<<48 | uint64(h.Network)<<32 | uint64(h.Gateway)
}

func (t *Table) intern(h NextHop) uint32 {
	k := h.pack()
	if i, ok := t.nhIdx[k]; ok {
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
	t.nhIdx[k] = i
	return i
}

func (t *Table) markChunk(c uint32) {
	if t.dirty[c>>6]>>(c&63)&1 == 0 {
		t.dirty[c>>6] |= 1 << (c & 63)
		t.dlist = append(t.dlist, c)
		t.dkey = append(t.dkey, 0)
	}
	t.dfull[c>>6] |= 1 << (c & 63)
}

// markChange marks the chunk of the long prefix addr/plen: a chunk with
// only this change may have it applied in place (rewriteLeaf).
func (t *Table) markChange(addr uint32, plen int) {
	c := addr >> (32 - dirBits)
	if t.dirty[c>>6]>>(c&63)&1 == 0 {
		t.dirty[c>>6] |= 1 << (c & 63)
		t.dlist = append(t.dlist, c)
		t.dkey = append(t.dkey, shortKey(addr, plen))
		return
	}
	t.dfull[c>>6] |= 1 << (c & 63)
}

// commit recompiles the chunks touched since the last commit.
func (t *Table) commit() {
	if len(t.shortCh) > 0 {
		// repaint each changed prefix's range, unless that is more work
		// than recomputing every chunk
		work := 0
		for _, k := range t.shortCh {
			work += min(1<<(shortMax+1-int(k&0xff)), 2*len(t.rib.short))
		}
		if work > 2*dirSize {
			// many: recompute every chunk's default at once
			sb := make([]uint32, dirSize)
			t.rib.paintShort(sb)
			t.diffShort(sb, 0)
		} else {
			for _, k := range t.shortCh {
				t.repaintShort(uint32(k>>8), int(k&0xff))
			}
		}
		t.shortCh = t.shortCh[:0]
	}
	t.rib.compactSlab(false)
	for i, c := range t.dlist {
		one := t.dfull[c>>6]>>(c&63)&1 == 0
		t.dirty[c>>6] &^= 1 << (c & 63)
		t.dfull[c>>6] &^= 1 << (c & 63)
		if one && t.dkey[i]&0xff <= 24 && !t.noRewrite && t.rewriteLeaf(c, uint32(t.dkey[i]>>8), int(t.dkey[i]&0xff)) {
			continue
		}
		t.rebuildChunk(c)
	}
	t.dlist = t.dlist[:0]
	t.dkey = t.dkey[:0]
}

// rewriteLeaf applies the change of addr/plen (/19-/24), the only change
// of chunk c, in place when the chunk's root has no children and the
// prefix's slots hold whole runs whose new values are each still one value
// (a /24 whose slot is a run of its own; a shorter prefix whose runs stay
// the same): the new chunk is the published one with those leaves changed,
// each with one atomic store. A lookup reads one leaf, so it sees for its
// address the value before or after; nothing is compiled and no garbage is
// left. (When a new value equals a neighbouring run's, two runs hold the
// same value: a longer encoding than a compile gives, read the same way.)
// It reports whether it did.
func (t *Table) rewriteLeaf(c, addr uint32, plen int) bool {
	s := t.cur.Load()
	e := s.dir[c]
	if e&leafFlag != 0 {
		return false
	}
	R := s.nodes[e]
	k := (addr >> 8) & 63
	n := uint32(1) << (24 - plen)
	lv := R.Leafvec
	if R.Vec != 0 || lv>>k&1 == 0 || (k+n < 64 && lv>>(k+n)&1 == 0) {
		return false
	}
	// the slots' new values: the routes up to /24 covering or inside
	// addr/plen painted in list order (covering routes come first)
	a14 := uint32(addr & (1<<(32-dirBits) - 1))
	end14 := a14 + n<<8
	vals := &t.b.slots[1]
	def := t.rib.chunks[c].def
	for j := k; j < k+n; j++ {
		vals[j] = def
	}
	last := ^uint32(0)
	l := t.rib.list(c)
	for i := range l {
		r := &l[i]
		ra := uint32(r[0])
		if ra >= end14 {
			break
		}
		rl := uint32(r[1] >> 10)
		pk := ra<<6 | rl
		if rl > 24 || pk == last {
			continue
		}
		last = pk
		nh := uint32(r[1]&0xff)<<16 | uint32(r[2])
		switch {
		case rl <= uint32(plen):
			if a14&^(1<<(32-rl)-1) == ra {
				for j := k; j < k+n; j++ {
					vals[j] = nh
				}
			}
		case ra >= a14:
			j0 := (ra >> 8) & 63
			for j := j0; j < j0+1<<(24-rl); j++ {
				vals[j&63] = nh
			}
		}
	}
	// every run in the range must keep one value
	for j := k + 1; j < k+n; j++ {
		if lv>>j&1 == 0 && vals[j] != vals[j-1] {
			return false
		}
	}
	t.leafRewrites++
	idx := R.Base0 + uint32(bits.OnesCount64(lv&(uint64(1)<<k-1)))
	for j := k; j < k+n; j++ {
		if lv>>j&1 == 0 {
			continue
		}
		if s.leaves[idx] != vals[j] {
			atomic.StoreUint32(&s.leaves[idx], vals[j])
		}
		idx++
	}
	return true
}

// diffShort takes sb as the defaults of the chunks from c0 on and marks
// the chunks whose default changed.
func (t *Table) diffShort(sb []uint32, c0 uint32) {
	for i, nh := range sb {
		c := c0 + uint32(i)
		if nh != t.rib.chunks[c].def {
			t.rib.chunks[c].def = nh
			t.markChunk(c)
		}
	}
}

// repaintShort recomputes the chunk defaults under the short prefix
// addr/plen: its covering default, then every short prefix inside it,
// shortest first. The map is probed for every possible prefix inside
// (2^(19-plen) probes) or, for very short prefixes, scanned.
func (t *Table) repaintShort(addr uint32, plen int) {
	c0 := addr >> (32 - dirBits)
	n := uint32(1) << (shortMax - plen)
	sb := make([]uint32, n)
	var def uint32
	if plen > 0 {
		def = t.rib.shortLPM(addr&mask(plen-1), plen-1)
	}
	for i := range sb {
		sb[i] = def
	}
	if 2*n > uint32(len(t.rib.short)) {
		keys := make([]uint64, 0, 64)
		for k := range t.rib.short {
			if l := int(k & 0xff); l >= plen && uint32(k>>8)&mask(plen) == addr {
				keys = append(keys, k)
			}
		}
		slices.SortFunc(keys, func(a, b uint64) int { return int(a&0xff) - int(b&0xff) })
		for _, k := range keys {
			v := t.rib.short[k]
			_, nh := bestOf(&v)
			a, l := uint32(k>>8), int(k&0xff)
			c := a>>(32-dirBits) - c0
			for i := c; i < c+1<<(shortMax-l); i++ {
				sb[i] = nh
			}
		}
	} else {
		for l := plen; l <= shortMax; l++ {
			if t.rib.shortLen[l] == 0 {
				continue
			}
			step := uint32(1) << (32 - l)
			for a, j := addr, 0; j < 1<<(l-plen); a, j = a+step, j+1 {
				v, ok := t.rib.short[shortKey(a, l)]
				if !ok {
					continue
				}
				_, nh := bestOf(&v)
				c := a>>(32-dirBits) - c0
				for i := c; i < c+1<<(shortMax-l); i++ {
					sb[i] = nh
				}
			}
		}
	}
	t.diffShort(sb, c0)
}

// compileChunk builds chunk c into t.b; it returns the dir entry if the
// chunk is a single leaf.
func (t *Table) compileChunk(c uint32) (uint32, bool) {
	if t.rib.chunks[c].count() == 0 {
		return leafFlag | t.rib.chunks[c].def, true
	}
	t.chunkBuilds++
	if t.b.buildFlat(t.rib.list(c), t.rib.chunks[c].def) {
		return 0, false
	}
	t.rib.fillChunk(&t.b, c)
	t.b.build(t.rib.chunks[c].def)
	if len(t.b.nodes) == 1 && t.b.nodes[0].Vec == 0 && len(t.b.leaves) == 1 {
		return leafFlag | t.b.leaves[0], true
	}
	return 0, false
}

func (t *Table) rebuildChunk(c uint32) {
	ne, leaf := t.compileChunk(c)
	s := t.cur.Load()
	if !leaf {
		nn, nl := len(t.b.nodes), len(t.b.leaves)
		if t.nUsed+nn > len(s.nodes) || t.lUsed+nl > len(s.leaves) {
			t.compact(nn, nl, 0)
			s = t.cur.Load()
		}
		poptrie.Place(s.nodes, s.leaves, uint32(t.nUsed), uint32(t.lUsed), t.b.nodes, t.b.leaves)
		ne = uint32(t.nUsed)
		t.nUsed += nn
		t.lUsed += nl
	}
	if s.dir[c] != ne {
		atomic.StoreUint32(&s.dir[c], ne)
	}
}

// compact copies the live chunks into fresh arrays with room for need more
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

// rebuild compiles the whole table from the RIB into fresh arrays and
// publishes them with one pointer swap.
func (t *Table) rebuild() {
	t.rebuilds++
	t.rib.compactSlab(true)
	sb := make([]uint32, dirSize)
	t.rib.paintShort(sb)
	for c, nh := range sb {
		t.rib.chunks[c].def = nh
	}
	for _, c := range t.dlist {
		t.dirty[c>>6] &^= 1 << (c & 63)
		t.dfull[c>>6] &^= 1 << (c & 63)
	}
	t.dlist = t.dlist[:0]
	t.dkey = t.dkey[:0]
	t.shortCh = t.shortCh[:0]
	used := 0
	for _, cl := range t.rib.chunks {
		if cl.count() > 0 {
			used++
		}
	}
	nodes := make([]node, 0, used+used/8+4096)
	leaves := make([]uint32, 0, len(t.rib.slab)+len(t.rib.slab)/8+16384)
	dir := new([dirSize]uint32)
	for c := range uint32(dirSize) {
		ne, leaf := t.compileChunk(c)
		if !leaf {
			ne = uint32(len(nodes))
			nodes, leaves = poptrie.Append(nodes, leaves, t.b.nodes, t.b.leaves)
		}
		dir[c] = ne
	}
	t.nUsed, t.lUsed = len(nodes), len(leaves)
	// exact size: the first incremental change after a full build compacts
	// into arrays with room to grow
	nodes = slices.Clone(nodes)
	leaves = slices.Clone(leaves)
	old := t.cur.Load()
	t.cur.Store(&snapshot{dir: dir, nodes: nodes[:cap(nodes)], leaves: leaves[:cap(leaves)], nhs: old.nhs})
}

// Add inserts or replaces the route of r.Source for r.Prefix.
func (t *Table) Add(r Route) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.apply([]Update{{Route: r}})
}

// Delete removes the route of src for prefix; it reports whether one existed.
func (t *Table) Delete(prefix netip.Prefix, src Source) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.apply([]Update{{Route: Route{Prefix: prefix, Source: src}, Delete: true}}) > 0
}

// ReplaceSource replaces every route of src with routes (used on start and
// reload for connected and static routes, and by the kernel import after a
// dump) and publishes once.
func (t *Table) ReplaceSource(src Source, routes []Route) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if src >= NumSources {
		return
	}
	var ups []Update
	if t.rib.perSrc[src] > 0 {
		t.eachRoute(func(p netip.Prefix, s Source, _ uint32) {
			if s == src {
				ups = append(ups, Update{Route: Route{Prefix: p, Source: src}, Delete: true})
			}
		}, false)
	}
	for _, r := range routes {
		r.Source = src
		ups = append(ups, Update{Route: r})
	}
	t.apply(ups)
}

// ReplaceSources replaces every route of each source in set with the
// source's new routes, in one batch published once (a reload's connected,
// static and runtime routes change together).
func (t *Table) ReplaceSources(set map[Source][]Route) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ups []Update
	present := false
	for src := range set {
		present = present || (src < NumSources && t.rib.perSrc[src] > 0)
	}
	if present {
		t.eachRoute(func(p netip.Prefix, s Source, _ uint32) {
			if _, ok := set[s]; ok {
				ups = append(ups, Update{Route: Route{Prefix: p, Source: s}, Delete: true})
			}
		}, false)
	}
	for src := Source(0); src < NumSources; src++ {
		for _, r := range set[src] {
			r.Source = src
			ups = append(ups, Update{Route: r})
		}
	}
	t.apply(ups)
}

// eachRoute calls f for every route of every source, or (bestOnly) for the
// best route of every prefix.
func (t *Table) eachRoute(f func(p netip.Prefix, s Source, nh uint32), bestOnly bool) {
	for k, v := range t.rib.short {
		p := netip.PrefixFrom(packet.Addr(uint32(k>>8)), int(k&0xff))
		for s, nh := range v {
			if nh != 0 {
				f(p, Source(s), nh)
				if bestOnly {
					break
				}
			}
		}
	}
	for c := range uint32(dirSize) {
		last := ^uint64(0)
		for _, e := range t.rib.list(c) {
			if bestOnly && e.pkey() == last {
				continue
			}
			last = e.pkey()
			f(netip.PrefixFrom(packet.Addr(e.addr(c<<(32-dirBits))), int(e.plen())), e.src(), e.nh())
		}
	}
}

func (t *Table) route(p netip.Prefix, s Source, nh uint32) Route {
	return Route{Prefix: p, Source: s, NH: t.cur.Load().nhs[nh]}
}

// Match returns the best route (with its source) that addr matches.
func (t *Table) Match(addr netip.Addr) (Route, bool) {
	addr = addr.Unmap()
	if !addr.Is4() {
		return Route{}, false
	}
	a := packet.U32(addr)
	t.mu.Lock()
	defer t.mu.Unlock()
	var best rent
	found := false
	for _, e := range t.rib.list(a >> (32 - dirBits)) {
		if a&mask(int(e.plen())) == e.addr(a) && (!found || e.plen() > best.plen()) {
			best, found = e, true
		}
	}
	if found {
		return t.route(netip.PrefixFrom(packet.Addr(best.addr(a)), int(best.plen())), best.src(), best.nh()), true
	}
	for l := shortMax; l >= 0; l-- {
		if t.rib.shortLen[l] == 0 {
			continue
		}
		if v, ok := t.rib.short[shortKey(a&mask(l), l)]; ok {
			s, nh := bestOf(&v)
			return t.route(netip.PrefixFrom(packet.Addr(a&mask(l)), l), s, nh), true
		}
	}
	return Route{}, false
}

// Get returns the best route for exactly prefix.
func (t *Table) Get(prefix netip.Prefix) (Route, bool) {
	if !prefix.IsValid() || !prefix.Addr().Is4() {
		return Route{}, false
	}
	prefix = prefix.Masked()
	a, l := packet.U32(prefix.Addr()), prefix.Bits()
	t.mu.Lock()
	defer t.mu.Unlock()
	if l <= shortMax {
		if v, ok := t.rib.short[shortKey(a, l)]; ok {
			s, nh := bestOf(&v)
			return t.route(prefix, s, nh), true
		}
		return Route{}, false
	}
	lst := t.rib.list(a >> (32 - dirBits))
	pk := pkeyOf(a, l)
	i, _ := search(lst, pk<<2)
	if i < len(lst) && lst[i].pkey() == pk {
		return t.route(prefix, lst[i].src(), lst[i].nh()), true
	}
	return Route{}, false
}

// Routes returns the best route of every prefix, sorted by address then length.
func (t *Table) Routes() []Route {
	t.mu.Lock()
	out := make([]Route, 0, t.rib.prefixes)
	t.eachRoute(func(p netip.Prefix, s Source, nh uint32) {
		out = append(out, t.route(p, s, nh))
	}, true)
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b Route) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Prefix.Bits() - b.Prefix.Bits()
	})
	return out
}

// Len returns the number of prefixes (each counted once, whatever the
// number of sources giving it).
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rib.prefixes
}

// Summary counts routes.
type Summary struct {
	Routes      int            `json:"routes"`       // prefixes (best routes)
	BySource    map[string]int `json:"by_source"`    // best routes per source (all four sources)
	ByLength    map[int]int    `json:"by_length"`    // prefixes per length (lengths present)
	MemoryBytes int64          `json:"memory_bytes"` // compiled lookup structure (what lookups read)
	RIBBytes    int64          `json:"rib_bytes"`    // route store of all sources (estimate)
}

// Summary returns counts of installed (best) routes by source and length.
func (t *Table) Summary() Summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Summary{BySource: map[string]int{}, ByLength: map[int]int{}, Routes: t.rib.prefixes}
	for src, n := range t.rib.bySrc {
		s.BySource[Source(src).String()] = n
	}
	for l, n := range t.rib.byLen {
		if n > 0 {
			s.ByLength[l] = n
		}
	}
	s.MemoryBytes = t.cur.Load().memBytes()
	s.RIBBytes = t.rib.memBytes()
	return s
}

// Stats describes the compiled structure and the writer's work.
type Stats struct {
	Prefixes    int             // prefixes installed
	Routes      [NumSources]int // routes per source (including ones that are not best)
	NextHops    int             // distinct next hops
	Nodes       int             // live trie nodes
	Leaves      int             // live leaves
	NodeCap     int             // allocated nodes (live + garbage + room)
	LeafCap     int             // allocated leaves
	MemoryBytes int64           // compiled structure
	Batches     uint64          // Apply/Add/Delete/ReplaceSource calls
	ChunkBuilds uint64          // /18 chunks compiled
	Compactions uint64          // copies of the live structure into fresh arrays
	Rebuilds    uint64          // full compilations from the RIB
	NHFull      uint64          // routes refused because the next-hop table was full
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
		MemoryBytes: s.memBytes(), Batches: t.batches, ChunkBuilds: t.chunkBuilds,
		Compactions: t.compactions, Rebuilds: t.rebuilds, NHFull: t.nhFull,
	}
}
