package fib

import (
	"cmp"
	"net/netip"
	"slices"
	"sync/atomic"

	"vrouter/packet"
)

// Which of the routes of a prefix the kernel import installs.
//
// The kernel keeps any number of routes per prefix in a table: ordered by
// metric (priority), and among routes of equal metric in the order
// `ip route prepend/append` put them. It uses the first one whose next hop
// is alive. The import follows that choice: of the routes of a prefix it
// installs the first one vrouter can use (a route whose gateway is on no
// vrouter network, or of a type vrouter does not forward, counts as dead)
// and keeps the others to fall back on when that one is deleted or replaced.
//
// Memory: a full table is ~900k prefixes that nearly all have a single
// route, all at the metric of the daemon that installed them. Such a route
// is not held here at all ("implicit"): the FIB holds its next hop, and the
// import remembers the one metric those routes share (m0). Only the others
// are held, pointer-free where there are many of them: a prefix whose one
// route has another metric or is not usable (one), and a prefix with
// several routes (many).

// krouteOf is one kernel route of a prefix, with a next hop of type N
// (NextHop or NextHop6).
type krouteOf[N comparable] struct {
	prio uint32
	// id identifies the route among those of its prefix and metric (a hash
	// of its type, protocol, source, gateways and devices); 0: unknown (the
	// route came from the dump as the only one of its prefix). A delete
	// notification names the route it deleted by the same attributes.
	id uint64
	nh N
	ok bool // vrouter can use it: nh is what it installs
}

// The IPv4 instances.
type (
	kroute = krouteOf[NextHop]
	kstate = kstateOf[uint64, NextHop]
	kdump  = kdumpOf[uint64, NextHop]
)

// kupd is a change of the FIB's kernel route of prefix k: install nh, or
// (del) remove the route.
type kupd[K comparable, N comparable] struct {
	k   K
	nh  N
	del bool
}

// kfam is what the import needs of one address family's FIB. K is the key
// of a masked prefix, N the family's next hop.
type kfam[K comparable, N comparable] interface {
	// kernelNH returns the next hop of the FIB's kernel route of k.
	kernelNH(k K) (N, bool)
	// addrLen splits k into its address (hi, lo) and length.
	addrLen(k K) (hi, lo uint64, plen int)
	// apply publishes changes in one batch.
	apply(ups []kupd[K, N])
	// replace replaces all kernel routes with rs (none deletes).
	replace(rs []kupd[K, N])
	// kernelRoutes counts the FIB's kernel routes.
	kernelRoutes() int
}

// kplace is where a new route goes among the routes of its prefix of equal
// metric, from the flags of the kernel's notification.
type kplace uint8

const (
	kFirst   kplace = iota // ip route prepend: before the routes of equal metric
	kLast                  // ip route append: after them
	kReplace               // ip route replace / change: instead of the first of them
	kOnly                  // there were none (the kernel says NLM_F_EXCL)
)

// kinst is what the import installed for a prefix in a batch not yet applied.
type kinst[N comparable] struct {
	nh N
	ok bool
}

// kstateOf is the import's view of the routes of the kernel table of one
// address family: the FIB's kernel routes (implicit) plus one and many.
type kstateOf[K comparable, N comparable] struct {
	t     kfam[K, N]
	m0    uint32 // metric of the implicit routes
	m0set bool
	one   map[K]krouteOf[N]   // prefix key -> its only route (not implicit)
	many  map[K][]krouteOf[N] // prefix key -> its routes (two or more), in kernel order

	// pending holds the FIB updates not applied yet; pend, what they leave
	// installed for each prefix they touch (the FIB does not show it yet).
	pending []kupd[K, N]
	pend    map[K]kinst[N]

	alternates atomic.Int64  // usable routes held but not installed
	old, cur   []krouteOf[N] // scratch
}

func newKStateOf[K comparable, N comparable](t kfam[K, N]) *kstateOf[K, N] {
	return &kstateOf[K, N]{t: t, one: map[K]krouteOf[N]{}, many: map[K][]krouteOf[N]{}, pend: map[K]kinst[N]{}}
}

func newKState(t *Table) *kstate { return newKStateOf[uint64, NextHop](&fam4{t: t}) }

// fam4 is the IPv4 FIB as the import sees it.
type fam4 struct {
	t   *Table
	ups []Update
}

func (f *fam4) kernelNH(k uint64) (NextHop, bool) { return f.t.sourceNH(k, Kernel) }

func (f *fam4) addrLen(k uint64) (uint64, uint64, int) { return k >> 8, 0, int(k & 0xff) }

func (f *fam4) apply(us []kupd[uint64, NextHop]) {
	f.ups = f.ups[:0]
	for _, u := range us {
		f.ups = append(f.ups, Update{Route: Route{Prefix: kprefix(u.k), Source: Kernel, NH: u.nh}, Delete: u.del})
	}
	f.t.Apply(f.ups)
	clear(f.ups)
	if cap(f.ups) > 4096 {
		f.ups = nil // do not keep a flood's buffer
	}
}

func (f *fam4) replace(rs []kupd[uint64, NextHop]) {
	routes := make([]Route, len(rs))
	for i, r := range rs {
		routes[i] = Route{Prefix: kprefix(r.k), Source: Kernel, NH: r.nh}
	}
	f.t.ReplaceSource(Kernel, routes)
}

func (f *fam4) kernelRoutes() int {
	f.t.mu.Lock()
	defer f.t.mu.Unlock()
	return f.t.rib.perSrc[Kernel]
}

// kkey is the key of a masked IPv4 prefix.
func kkey(p netip.Prefix) uint64 { return shortKey(packet.U32(p.Addr()), p.Bits()) }

func kprefix(k uint64) netip.Prefix {
	return netip.PrefixFrom(packet.Addr(uint32(k>>8)), int(k&0xff))
}

// best returns the next hop of the route the kernel's choice gives: the
// first usable one.
func best[N comparable](l []krouteOf[N]) (N, bool) {
	for _, e := range l {
		if e.ok {
			return e.nh, true
		}
	}
	var none N
	return none, false
}

// alternates counts the usable routes of l that are not installed.
func alternates[N comparable](l []krouteOf[N]) int64 {
	n := int64(0)
	for _, e := range l {
		if e.ok {
			n++
		}
	}
	return max(n-1, 0)
}

// routes returns the routes of prefix k into s.old.
func (s *kstateOf[K, N]) routes(k K) []krouteOf[N] {
	s.old = s.old[:0]
	if l, ok := s.many[k]; ok {
		s.old = append(s.old, l...)
		return s.old
	}
	if e, ok := s.one[k]; ok {
		s.old = append(s.old, e)
		return s.old
	}
	in, found := s.pend[k]
	if !found {
		in.nh, in.ok = s.t.kernelNH(k)
	}
	if in.ok {
		s.old = append(s.old, krouteOf[N]{prio: s.m0, nh: in.nh, ok: true})
	}
	return s.old
}

// set records l as the routes of prefix k, which were old, and queues the
// FIB update if the route to install changed.
func (s *kstateOf[K, N]) set(k K, old, l []krouteOf[N]) {
	onh, ook := best(old)
	nnh, nok := best(l)
	if ook != nok || onh != nnh {
		s.pending = append(s.pending, kupd[K, N]{k: k, nh: nnh, del: !nok})
		s.pend[k] = kinst[N]{nnh, nok}
	}
	if d := alternates(l) - alternates(old); d != 0 {
		s.alternates.Add(d)
	}
	if len(old) > 1 {
		delete(s.many, k)
	} else if len(s.one) > 0 {
		delete(s.one, k)
	}
	switch {
	case len(l) == 0:
	case len(l) == 1 && l[0].ok && (!s.m0set || l[0].prio == s.m0):
		s.m0, s.m0set = l[0].prio, true // implicit
	case len(l) == 1:
		s.one[k] = l[0]
	default:
		s.many[k] = slices.Clone(l)
	}
}

// group returns the bounds of the routes of metric prio in l.
func group[N comparable](l []krouteOf[N], prio uint32) (i, j int) {
	for i < len(l) && l[i].prio < prio {
		i++
	}
	j = i
	for j < len(l) && l[j].prio == prio {
		j++
	}
	return i, j
}

// same reports whether held route h of unknown identity (the only route of
// its prefix in the dump) stands for the kernel route e: same next hop. Two
// routes of a prefix, metric and next hop told apart by other attributes
// (ip route append of the same gateway with another protocol) may be taken
// for one; which next hop is installed does not depend on it.
func same[N comparable](h, e krouteOf[N]) bool {
	return h.id == 0 && e.ok && h.ok && h.nh == e.nh
}

// add applies a notification of a new or replaced route e of prefix k.
//
// The notifications queued while the dump ran may describe changes the dump
// already showed; they must converge on the kernel's state: a route held
// already is updated in place (the kernel never holds the same route twice
// in a table), and a route that was the first of its metric replaces what
// is held at that metric.
func (s *kstateOf[K, N]) add(k K, e krouteOf[N], place kplace) {
	old := s.routes(k)
	l := append(s.cur[:0], old...)
	i, j := group(l, e.prio)
	at := -1
	switch place {
	case kOnly:
		l = slices.Delete(l, i, j)
		j = i
	case kReplace:
		if i < j {
			at = i
		}
	}
	if at < 0 {
		// the same route, or the one of unknown identity held for it
		for m := i; m < j && at < 0; m++ {
			if l[m].id == e.id {
				at = m
			}
		}
		for m := i; m < j && at < 0; m++ {
			if same(l[m], e) {
				at = m
			}
		}
	}
	switch {
	case at >= 0:
		l[at] = e
	case place == kLast:
		l = slices.Insert(l, j, e)
	default:
		l = slices.Insert(l, i, e)
	}
	s.set(k, old, l)
	s.cur = l[:0]
}

// del applies the notification that route e of prefix k was deleted. A
// route not held (one that the dump already did not show) is ignored.
func (s *kstateOf[K, N]) del(k K, e krouteOf[N]) {
	old := s.routes(k)
	i, j := group(old, e.prio)
	at := -1
	for m := i; m < j && at < 0; m++ {
		if old[m].id == e.id {
			at = m
		}
	}
	for m := i; m < j && at < 0; m++ {
		if same(old[m], e) {
			at = m
		}
	}
	if at < 0 {
		return
	}
	l := append(s.cur[:0], old[:at]...)
	l = append(l, old[at+1:]...)
	s.set(k, old, l)
	s.cur = l[:0]
}

// applied forgets the pending updates once they are in the FIB.
func (s *kstateOf[K, N]) applied() {
	clear(s.pending)
	s.pending = s.pending[:0]
	if len(s.pend) > 4096 {
		s.pend = map[K]kinst[N]{} // do not keep (and clear) a flood's buckets
	} else {
		clear(s.pend)
	}
}

// kdump builds the state from a dump of the table. The kernel dumps the
// routes of a prefix one after the other, in its order; add checks that and
// reports false if it is not so (the dump is then grouped by a map).
type kdumpOf[K comparable, N comparable] struct {
	s      *kstateOf[K, N]
	routes []kupd[K, N] // the installed route of every prefix
	prios  []uint32     // metric of routes[i] when it is its prefix's only route
	byMap  map[K][]krouteOf[N]

	key     K
	grp     []krouteOf[N]
	started bool
	hi, lo  uint64    // address of the last prefix, and its lengths seen
	lens    [3]uint64 // bitset over lengths 0-128

	cand  uint32 // majority vote for m0 among the prefixes with one route
	votes int
	any   bool
}

func newKDump[K comparable, N comparable](s *kstateOf[K, N], byMap bool) *kdumpOf[K, N] {
	s.m0, s.m0set = 0, false
	s.one = map[K]krouteOf[N]{}
	s.many = map[K][]krouteOf[N]{}
	s.alternates.Store(0)
	s.applied()
	d := &kdumpOf[K, N]{s: s}
	if byMap {
		d.byMap = map[K][]krouteOf[N]{}
	}
	return d
}

func (d *kdumpOf[K, N]) add(k K, e krouteOf[N]) bool {
	if d.byMap != nil {
		d.byMap[k] = append(d.byMap[k], e)
		return true
	}
	if d.started && k == d.key {
		d.grp = append(d.grp, e)
		return true
	}
	hi, lo, plen := d.s.t.addrLen(k)
	if d.started {
		d.finish(d.key, d.grp)
		d.grp = d.grp[:0]
		if hi < d.hi || hi == d.hi && lo < d.lo || hi == d.hi && lo == d.lo && d.lens[plen>>6]&(1<<(plen&63)) != 0 {
			return false
		}
	}
	if !d.started || hi != d.hi || lo != d.lo {
		d.hi, d.lo, d.lens = hi, lo, [3]uint64{}
	}
	d.started = true
	d.lens[plen>>6] |= 1 << (plen & 63)
	d.key = k
	d.grp = append(d.grp, e)
	return true
}

// finish records the routes of prefix k.
func (d *kdumpOf[K, N]) finish(k K, g []krouteOf[N]) {
	s := d.s
	if len(g) > 1 {
		slices.SortStableFunc(g, func(a, b krouteOf[N]) int { return cmp.Compare(a.prio, b.prio) })
	}
	nh, ok := best(g)
	switch {
	case len(g) > 1:
		s.many[k] = slices.Clone(g)
		s.alternates.Add(alternates(g))
	case !ok:
		s.one[k] = g[0]
	default:
		p := g[0].prio
		switch {
		case d.votes == 0:
			d.cand, d.votes = p, 1
		case p == d.cand:
			d.votes++
		default:
			d.votes--
		}
		d.any = true
	}
	if ok {
		d.routes = append(d.routes, kupd[K, N]{k: k, nh: nh})
		d.prios = append(d.prios, g[0].prio)
	}
}

// end completes the state and returns the routes to install.
func (d *kdumpOf[K, N]) end() []kupd[K, N] {
	s := d.s
	if d.byMap != nil {
		for k, g := range d.byMap {
			d.finish(k, g)
		}
		d.byMap = nil
	} else if d.started {
		d.finish(d.key, d.grp)
	}
	if !d.any {
		return d.routes
	}
	s.m0, s.m0set = d.cand, true
	for i, r := range d.routes {
		if d.prios[i] == s.m0 {
			continue
		}
		if _, ok := s.many[r.k]; !ok {
			s.one[r.k] = krouteOf[N]{prio: d.prios[i], nh: r.nh, ok: true}
		}
	}
	return d.routes
}

// sourceNH returns the next hop of src's route for the prefix of key k.
func (t *Table) sourceNH(k uint64, src Source) (NextHop, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	nh := t.rib.get(uint32(k>>8), int(k&0xff), src)
	if nh == 0 {
		return NextHop{}, false
	}
	return t.cur.Load().nhs[nh], true
}
