// Package fib is the router's forwarding table: routes from several sources
// (connected, static, runtime, kernel), the best one per prefix by
// administrative order, compiled into a longest-prefix-match structure that
// lookups read without locks while updates publish atomically.
package fib

import (
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
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
type Table struct {
	mu     sync.Mutex // serialises writers
	routes map[netip.Prefix]*[NumSources]*Route
	cur    atomic.Pointer[lpm]
}

// lpm is the published lookup structure (naive reference: one map per length).
type lpm struct {
	byLen [33]map[uint32]NextHop
	lens  []int // lengths present, longest first
}

// New returns an empty table.
func New() *Table {
	t := &Table{routes: map[netip.Prefix]*[NumSources]*Route{}}
	t.publish()
	return t
}

// Lookup returns the next hop of the longest prefix containing addr
// (IPv4, host order). Lock-free and allocation-free.
func (t *Table) Lookup(addr uint32) (NextHop, bool) {
	l := t.cur.Load()
	for _, n := range l.lens {
		var m uint32
		if n > 0 {
			m = ^uint32(0) << (32 - n)
		}
		if nh, ok := l.byLen[n][addr&m]; ok {
			return nh, true
		}
	}
	return NextHop{}, false
}

// Add inserts or replaces the route of r.Source for r.Prefix.
func (t *Table) Add(r Route) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.add(r)
	t.publish()
}

func (t *Table) add(r Route) {
	r.Prefix = r.Prefix.Masked()
	s := t.routes[r.Prefix]
	if s == nil {
		s = new([NumSources]*Route)
		t.routes[r.Prefix] = s
	}
	rc := r
	s[r.Source] = &rc
}

// Delete removes the route of src for prefix; it reports whether one existed.
func (t *Table) Delete(prefix netip.Prefix, src Source) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	ok := t.del(prefix.Masked(), src)
	t.publish()
	return ok
}

func (t *Table) del(p netip.Prefix, src Source) bool {
	s := t.routes[p]
	if s == nil || s[src] == nil {
		return false
	}
	s[src] = nil
	for _, r := range s {
		if r != nil {
			return true
		}
	}
	delete(t.routes, p)
	return true
}

// ReplaceSource replaces every route of src with routes (used on start and
// reload for connected and static routes) and publishes once.
func (t *Table) ReplaceSource(src Source, routes []Route) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for p, s := range t.routes {
		if s[src] != nil {
			t.del(p, src)
		}
	}
	for _, r := range routes {
		r.Source = src
		t.add(r)
	}
	t.publish()
}

func (t *Table) best(s *[NumSources]*Route) *Route {
	for _, r := range s {
		if r != nil {
			return r
		}
	}
	return nil
}

func (t *Table) publish() {
	l := &lpm{}
	for p, s := range t.routes {
		r := t.best(s)
		n := p.Bits()
		if l.byLen[n] == nil {
			l.byLen[n] = map[uint32]NextHop{}
		}
		a := p.Addr().As4()
		l.byLen[n][uint32(a[0])<<24|uint32(a[1])<<16|uint32(a[2])<<8|uint32(a[3])] = r.NH
	}
	for n := 32; n >= 0; n-- {
		if l.byLen[n] != nil {
			l.lens = append(l.lens, n)
		}
	}
	t.cur.Store(l)
}

// Match returns the best route (with its source) that addr matches.
func (t *Table) Match(addr netip.Addr) (Route, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for n := 32; n >= 0; n-- {
		p, _ := addr.Prefix(n)
		if s := t.routes[p]; s != nil {
			return *t.best(s), true
		}
	}
	return Route{}, false
}

// Get returns the best route for exactly prefix.
func (t *Table) Get(prefix netip.Prefix) (Route, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.routes[prefix.Masked()]; s != nil {
		return *t.best(s), true
	}
	return Route{}, false
}

// Routes returns the best route of every prefix, sorted by address then length.
func (t *Table) Routes() []Route {
	t.mu.Lock()
	out := make([]Route, 0, len(t.routes))
	for _, s := range t.routes {
		out = append(out, *t.best(s))
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if c := out[i].Prefix.Addr().Compare(out[j].Prefix.Addr()); c != 0 {
			return c < 0
		}
		return out[i].Prefix.Bits() < out[j].Prefix.Bits()
	})
	return out
}

// Summary counts routes.
type Summary struct {
	Routes      int            `json:"routes"`
	BySource    map[string]int `json:"by_source"`
	ByLength    map[int]int    `json:"by_length"`
	MemoryBytes int64          `json:"memory_bytes"`
}

// Summary returns counts of installed (best) routes by source and length.
func (t *Table) Summary() Summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Summary{BySource: map[string]int{}, ByLength: map[int]int{}}
	for p, rs := range t.routes {
		r := t.best(rs)
		s.Routes++
		s.BySource[r.Source.String()]++
		s.ByLength[p.Bits()]++
	}
	return s
}
