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

// kroute is one kernel route of a prefix.
type kroute struct {
	prio uint32
	// id identifies the route among those of its prefix and metric (a hash
	// of its type, protocol, source, gateways and devices); 0: unknown (the
	// route came from the dump as the only one of its prefix). A delete
	// notification names the route it deleted by the same attributes.
	id uint64
	nh NextHop
	ok bool // vrouter can use it: nh is what it installs
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
type kinst struct {
	nh NextHop
	ok bool
}

// kstate is the import's view of the routes of the kernel table: the FIB's
// kernel routes (implicit) plus one and many.
type kstate struct {
	t     *Table
	m0    uint32 // metric of the implicit routes
	m0set bool
	one   map[uint64]kroute   // prefix key -> its only route (not implicit)
	many  map[uint64][]kroute // prefix key -> its routes (two or more), in kernel order

	// pending holds the FIB updates not applied yet; pend, what they leave
	// installed for each prefix they touch (the FIB does not show it yet).
	pending []Update
	pend    map[uint64]kinst

	alternates atomic.Int64 // usable routes held but not installed
	old, cur   []kroute     // scratch
}

func newKState(t *Table) *kstate {
	return &kstate{t: t, one: map[uint64]kroute{}, many: map[uint64][]kroute{}, pend: map[uint64]kinst{}}
}

// kkey is the key of a masked IPv4 prefix.
func kkey(p netip.Prefix) uint64 { return shortKey(packet.U32(p.Addr()), p.Bits()) }

func kprefix(k uint64) netip.Prefix {
	return netip.PrefixFrom(packet.Addr(uint32(k>>8)), int(k&0xff))
}

// best returns the next hop of the route the kernel's choice gives: the
// first usable one.
func best(l []kroute) (NextHop, bool) {
	for _, e := range l {
		if e.ok {
			return e.nh, true
		}
	}
	return NextHop{}, false
}

// alternates counts the usable routes of l that are not installed.
func alternates(l []kroute) int64 {
	n := int64(0)
	for _, e := range l {
		if e.ok {
			n++
		}
	}
	return max(n-1, 0)
}

// routes returns the routes of prefix k into s.old.
func (s *kstate) routes(k uint64) []kroute {
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
		in.nh, in.ok = s.t.sourceNH(k, Kernel)
	}
	if in.ok {
		s.old = append(s.old, kroute{prio: s.m0, nh: in.nh, ok: true})
	}
	return s.old
}

// set records l as the routes of prefix k, which were old, and queues the
// FIB update if the route to install changed.
func (s *kstate) set(k uint64, old, l []kroute) {
	onh, ook := best(old)
	nnh, nok := best(l)
	if ook != nok || onh != nnh {
		s.pending = append(s.pending, Update{Route: Route{Prefix: kprefix(k), Source: Kernel, NH: nnh}, Delete: !nok})
		s.pend[k] = kinst{nnh, nok}
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
func group(l []kroute, prio uint32) (i, j int) {
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
func same(h, e kroute) bool {
	return h.id == 0 && e.ok && h.ok && h.nh == e.nh
}

// add applies a notification of a new or replaced route e of prefix k.
//
// The notifications queued while the dump ran may describe changes the dump
// already showed; they must converge on the kernel's state: a route held
// already is updated in place (the kernel never holds the same route twice
// in a table), and a route that was the first of its metric replaces what
// is held at that metric.
func (s *kstate) add(k uint64, e kroute, place kplace) {
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
func (s *kstate) del(k uint64, e kroute) {
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
func (s *kstate) applied() {
	clear(s.pending)
	s.pending = s.pending[:0]
	if len(s.pend) > 4096 {
		s.pend = map[uint64]kinst{} // do not keep (and clear) a flood's buckets
	} else {
		clear(s.pend)
	}
}

// kdump builds the state from a dump of the table. The kernel dumps the
// routes of a prefix one after the other, in its order; add checks that and
// reports false if it is not so (the dump is then grouped by a map).
type kdump struct {
	s      *kstate
	routes []Route  // the installed route of every prefix
	prios  []uint32 // metric of routes[i] when it is its prefix's only route
	byMap  map[uint64][]kroute

	key     uint64
	grp     []kroute
	started bool
	addr    uint32 // address of the last prefix, and its lengths seen
	lens    uint64

	cand  uint32 // majority vote for m0 among the prefixes with one route
	votes int
	any   bool
}

func newKDump(s *kstate, byMap bool) *kdump {
	s.m0, s.m0set = 0, false
	s.one = map[uint64]kroute{}
	s.many = map[uint64][]kroute{}
	s.alternates.Store(0)
	s.applied()
	d := &kdump{s: s}
	if byMap {
		d.byMap = map[uint64][]kroute{}
	}
	return d
}

func (d *kdump) add(k uint64, e kroute) bool {
	if d.byMap != nil {
		d.byMap[k] = append(d.byMap[k], e)
		return true
	}
	if d.started && k == d.key {
		d.grp = append(d.grp, e)
		return true
	}
	addr, plen := uint32(k>>8), k&0xff
	if d.started {
		d.finish(d.key, d.grp)
		d.grp = d.grp[:0]
		if addr < d.addr || addr == d.addr && d.lens&(1<<plen) != 0 {
			return false
		}
	}
	if !d.started || addr != d.addr {
		d.addr, d.lens = addr, 0
	}
	d.started = true
	d.lens |= 1 << plen
	d.key = k
	d.grp = append(d.grp, e)
	return true
}

// finish records the routes of prefix k.
func (d *kdump) finish(k uint64, g []kroute) {
	s := d.s
	if len(g) > 1 {
		slices.SortStableFunc(g, func(a, b kroute) int { return cmp.Compare(a.prio, b.prio) })
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
		d.routes = append(d.routes, Route{Prefix: kprefix(k), Source: Kernel, NH: nh})
		d.prios = append(d.prios, g[0].prio)
	}
}

// end completes the state and returns the routes to install.
func (d *kdump) end() []Route {
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
		k := kkey(r.Prefix)
		if _, ok := s.many[k]; !ok {
			s.one[k] = kroute{prio: d.prios[i], nh: r.NH, ok: true}
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
