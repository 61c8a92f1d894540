// Package fib6 is the router's IPv6 forwarding table: routes from the same
// sources as fib (connected, static, runtime, kernel), the best one per
// prefix by administrative order (lower fib.Source wins), compiled into a
// longest-prefix-match structure that lookups read without locks while
// updates publish atomically.
//
// This first version is a simple reference implementation (a map per prefix
// length); the compiled, pointer-free structure replaces it behind the same
// API.
package fib6

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"vrouter/fib"
)

// NextHop is the result of a lookup.
type NextHop struct {
	Kind    fib.Kind
	Network uint16   // index (slot) of the network
	Gateway [16]byte // IPv6 next hop (global or link-local); KindGateway only
}

// Route is one route of one source.
type Route struct {
	Prefix netip.Prefix
	Source fib.Source
	NH     NextHop
}

// Update is one change of a batch (see Apply).
type Update struct {
	Route  Route // for a delete only Prefix and Source matter
	Delete bool
}

type key struct {
	hi, lo uint64
	bits   uint8
}

type entry struct {
	has [fib.NumSources]bool
	nh  [fib.NumSources]NextHop
}

func (e *entry) best() (fib.Source, NextHop, bool) {
	for s := range fib.NumSources {
		if e.has[s] {
			return s, e.nh[s], true
		}
	}
	return 0, NextHop{}, false
}

// snapshot is what lookups read: best next hop per prefix, per length.
type snapshot struct {
	lens   []uint8 // lengths present, longest first
	byLen  [129]map[[2]uint64]NextHop
	routes int
}

// Table is the IPv6 FIB. The zero value is not usable; call New.
type Table struct {
	cur atomic.Pointer[snapshot]

	mu  sync.Mutex
	rib map[key]*entry
}

// New returns an empty table.
func New() *Table {
	t := &Table{rib: map[key]*entry{}}
	t.cur.Store(&snapshot{})
	return t
}

func split(a [16]byte) (hi, lo uint64) {
	for i := range 8 {
		hi = hi<<8 | uint64(a[i])
		lo = lo<<8 | uint64(a[8+i])
	}
	return
}

func maskHL(hi, lo uint64, bits int) (uint64, uint64) {
	switch {
	case bits == 0:
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
	for _, l := range s.lens {
		h, w := maskHL(hi, lo, int(l))
		if nh, ok := s.byLen[l][[2]uint64{h, w}]; ok {
			return nh, true
		}
	}
	return NextHop{}, false
}

func keyOf(p netip.Prefix) (key, bool) {
	if !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() {
		return key{}, false
	}
	p = p.Masked()
	hi, lo := split(p.Addr().As16())
	return key{hi, lo, uint8(p.Bits())}, true
}

// Apply applies a batch of changes in order and publishes the result once.
// It returns how many changes had an effect (non-IPv6 prefixes are ignored).
func (t *Table) Apply(ups []Update) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.apply(ups)
}

func (t *Table) apply(ups []Update) int {
	n := 0
	for _, u := range ups {
		k, ok := keyOf(u.Route.Prefix)
		src := u.Route.Source
		if !ok || src >= fib.NumSources {
			continue
		}
		e := t.rib[k]
		if u.Delete {
			if e == nil || !e.has[src] {
				continue
			}
			e.has[src] = false
			if _, _, any := e.best(); !any {
				delete(t.rib, k)
			}
			n++
			continue
		}
		if e == nil {
			e = &entry{}
			t.rib[k] = e
		}
		if e.has[src] && e.nh[src] == u.Route.NH {
			continue
		}
		e.has[src], e.nh[src] = true, u.Route.NH
		n++
	}
	if n > 0 {
		t.publish()
	}
	return n
}

func (t *Table) publish() {
	s := &snapshot{routes: len(t.rib)}
	for k, e := range t.rib {
		_, nh, _ := e.best()
		if s.byLen[k.bits] == nil {
			s.byLen[k.bits] = map[[2]uint64]NextHop{}
			s.lens = append(s.lens, k.bits)
		}
		s.byLen[k.bits][[2]uint64{k.hi, k.lo}] = nh
	}
	slices.SortFunc(s.lens, func(a, b uint8) int { return int(b) - int(a) })
	t.cur.Store(s)
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
	for k, e := range t.rib {
		for src := range set {
			if src < fib.NumSources && e.has[src] {
				ups = append(ups, Update{Route: Route{Prefix: k.prefix(), Source: src}, Delete: true})
			}
		}
	}
	for src := fib.Source(0); src < fib.NumSources; src++ {
		for _, r := range set[src] {
			r.Source = src
			ups = append(ups, Update{Route: r})
		}
	}
	t.apply(ups)
}

func (k key) prefix() netip.Prefix {
	var a [16]byte
	for i := range 8 {
		a[i] = byte(k.hi >> (56 - 8*i))
		a[8+i] = byte(k.lo >> (56 - 8*i))
	}
	return netip.PrefixFrom(netip.AddrFrom16(a), int(k.bits))
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
		h, w := maskHL(hi, lo, l)
		k := key{h, w, uint8(l)}
		if e, ok := t.rib[k]; ok {
			s, nh, _ := e.best()
			return Route{Prefix: k.prefix(), Source: s, NH: nh}, true
		}
	}
	return Route{}, false
}

// Get returns the best route for exactly prefix.
func (t *Table) Get(prefix netip.Prefix) (Route, bool) {
	k, ok := keyOf(prefix)
	if !ok {
		return Route{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.rib[k]; ok {
		s, nh, _ := e.best()
		return Route{Prefix: k.prefix(), Source: s, NH: nh}, true
	}
	return Route{}, false
}

// Routes returns the best route of every prefix, sorted by address then length.
func (t *Table) Routes() []Route {
	t.mu.Lock()
	out := make([]Route, 0, len(t.rib))
	for k, e := range t.rib {
		s, nh, _ := e.best()
		out = append(out, Route{Prefix: k.prefix(), Source: s, NH: nh})
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b Route) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Prefix.Bits() - b.Prefix.Bits()
	})
	return out
}

// Len returns the number of prefixes.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.rib)
}
