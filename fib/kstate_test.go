package fib

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// kr is a kernel route of the tests: its next hop derives from its identity
// (a gateway of network 1), and identities divisible by 5 are not usable.
func kr(prio uint32, id uint64) kroute {
	if id%5 == 0 {
		return kroute{prio: prio, id: id}
	}
	return kroute{prio: prio, id: id, nh: NextHop{Kind: KindGateway, Network: 1, Gateway: ip("10.99.0.0") + uint32(id)}, ok: true}
}

func krNH(id uint64) NextHop { return kr(0, id).nh }

// kernelModel is the kernel's table as the tests see it: the routes of each
// prefix in the kernel's order.
type kernelModel map[uint64][]kroute

// add does what the kernel does for an add with the given request and
// returns where the notification says the route went.
func (m kernelModel) add(k uint64, e kroute, req kplace) kplace {
	l := m[k]
	i, j := group(l, e.prio)
	switch {
	case i == j:
		m[k] = slices.Insert(l, i, e)
		return kOnly
	case req == kReplace:
		l[i] = e
	case req == kLast:
		m[k] = slices.Insert(l, j, e)
	default:
		m[k] = slices.Insert(l, i, e)
		req = kFirst
	}
	return req
}

// check compares the FIB's kernel routes and the held state with m.
func (m kernelModel) check(t *testing.T, s *kstate, what string) {
	t.Helper()
	alt := int64(0)
	for k, l := range m {
		want, wok := best(l)
		got, gok := s.t.kernelNH(k)
		if got != want || gok != wok {
			t.Fatalf("%s: %v: FIB has %+v,%v; kernel's choice %+v,%v (routes %+v)", what, kprefix(k), got, gok, want, wok, l)
		}
		alt += alternates(l)
		held := s.routes(k)
		if len(held) != len(l) {
			t.Fatalf("%s: %v: held %+v, kernel %+v", what, kprefix(k), held, l)
		}
		for i := range l {
			if h := held[i]; h.prio != l[i].prio || h.ok != l[i].ok || h.nh != l[i].nh || h.id != 0 && h.id != l[i].id {
				t.Fatalf("%s: %v: held %+v, kernel %+v", what, kprefix(k), held, l)
			}
		}
	}
	if a := s.alternates.Load(); a != alt {
		t.Fatalf("%s: alternates %d, want %d", what, a, alt)
	}
	if n := s.t.kernelRoutes(); n != m.installed() {
		t.Fatalf("%s: %d kernel routes in the FIB, want %d", what, n, m.installed())
	}
}

func (m kernelModel) installed() int {
	n := 0
	for _, l := range m {
		if _, ok := best(l); ok {
			n++
		}
	}
	return n
}

// dump fills s from m as a dump would (byMap: grouped by a map), and
// installs the result.
func (m kernelModel) dump(s *kstate, byMap bool) {
	keys := make([]uint64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// the kernel's order: by address, the lengths of an address together
	slices.SortFunc(keys, func(a, b uint64) int {
		if a>>8 != b>>8 {
			return int(int64(a>>8) - int64(b>>8))
		}
		return int(b&0xff) - int(a&0xff)
	})
	d := newKDump(s, byMap)
	for _, k := range keys {
		for _, e := range m[k] {
			if !d.add(k, e) {
				panic("not grouped")
			}
		}
	}
	s.t.replace(d.end())
}

func applyPending(s *kstate) {
	s.t.apply(s.pending)
	s.applied()
}

var testKeys = []uint64{
	kkey(pfx("192.0.2.0/24")), kkey(pfx("192.0.2.0/25")), kkey(pfx("198.51.0.0/17")),
	kkey(pfx("192.0.0.0/18")), kkey(pfx("203.0.113.7/32")),
}

// TestKStateMetrics: the lowest metric wins whatever the order of the adds;
// deleting it falls back to the next; deleting that leaves no route.
func TestKStateMetrics(t *testing.T) {
	for _, batched := range []bool{false, true} {
		t.Run(fmt.Sprint("batched=", batched), func(t *testing.T) {
			s := newKState(New())
			m := kernelModel{}
			k := testKeys[0]
			step := func(what string, f func()) {
				t.Helper()
				f()
				if !batched {
					applyPending(s)
					m.check(t, s, what)
				}
			}
			step("add 10", func() { s.add(k, kr(10, 1), m.add(k, kr(10, 1), kFirst)) })
			step("add 20", func() { s.add(k, kr(20, 2), m.add(k, kr(20, 2), kFirst)) })
			if !batched && (s.m0 != 10 || len(s.many) != 1) {
				t.Fatalf("state m0 %d, many %v", s.m0, s.many)
			}
			step("del 10", func() { m[k] = m[k][1:]; s.del(k, kr(10, 1)) })
			step("del 20", func() { m[k] = nil; s.del(k, kr(20, 2)) })
			step("add 20 again", func() { s.add(k, kr(20, 2), m.add(k, kr(20, 2), kFirst)) })
			step("add 10 again", func() { s.add(k, kr(10, 1), m.add(k, kr(10, 1), kFirst)) })
			step("del 20 under 10", func() { m[k] = m[k][:1]; s.del(k, kr(20, 2)) })
			step("add 20 again", func() { s.add(k, kr(20, 2), m.add(k, kr(20, 2), kFirst)) })
			step("replace 20", func() { s.add(k, kr(20, 3), m.add(k, kr(20, 3), kReplace)) })
			step("replace 10 by unusable", func() { s.add(k, kr(10, 5), m.add(k, kr(10, 5), kReplace)) })
			step("append 20", func() { s.add(k, kr(20, 4), m.add(k, kr(20, 4), kLast)) })
			step("prepend 20", func() { s.add(k, kr(20, 6), m.add(k, kr(20, 6), kFirst)) })
			applyPending(s)
			m.check(t, s, "end")
			if nh, _ := s.t.kernelNH(k); nh != krNH(6) {
				t.Fatalf("installed %+v, want %+v", nh, krNH(6))
			}
		})
	}
}

// TestKStateModel applies random kernel changes, applied to the FIB at
// random points, with dumps in between, and compares with the kernel's
// choice.
func TestKStateModel(t *testing.T) {
	for seed := range uint64(8) {
		rnd := rand.New(rand.NewPCG(seed, 7))
		s := newKState(New())
		m := kernelModel{}
		nextID := uint64(1)
		for op := range 1500 {
			k := testKeys[rnd.IntN(len(testKeys))]
			switch r := rnd.IntN(100); {
			case r < 45:
				e := kr(uint32(rnd.IntN(3))*10, nextID)
				if rnd.IntN(4) == 0 {
					e.prio = 32 // the metric most routes have
				}
				nextID++
				req := []kplace{kFirst, kLast, kReplace}[rnd.IntN(3)]
				s.add(k, e, m.add(k, e, req))
			case r < 85:
				l := m[k]
				if len(l) == 0 {
					continue
				}
				i := rnd.IntN(len(l))
				e := l[i]
				m[k] = slices.Delete(l, i, i+1)
				s.del(k, e)
			case r < 87:
				applyPending(s)
				m.dump(s, rnd.IntN(2) == 0)
			default:
				applyPending(s)
				m.check(t, s, fmt.Sprintf("seed %d op %d", seed, op))
			}
		}
	}
}

// TestKStateDumpRace: notifications queued before the dump ran, applied
// after it, converge on the kernel's state.
func TestKStateDumpRace(t *testing.T) {
	k := testKeys[1]
	type ev struct {
		del   bool
		e     kroute
		place kplace
	}
	for i, c := range []struct {
		final []kroute // the kernel's routes at the dump
		evs   []ev     // notifications received after it
	}{
		{[]kroute{kr(10, 1)}, []ev{{e: kr(10, 1), place: kOnly}}},
		{[]kroute{kr(10, 2)}, []ev{{e: kr(10, 1), place: kOnly}, {e: kr(10, 2), place: kLast}, {del: true, e: kr(10, 1)}}},
		{[]kroute{kr(10, 2), kr(10, 1)}, []ev{{e: kr(10, 1), place: kOnly}, {e: kr(10, 2), place: kFirst}}},
		{[]kroute{kr(10, 2)}, []ev{{e: kr(10, 1), place: kOnly}, {e: kr(10, 2), place: kFirst}, {del: true, e: kr(10, 1)}}},
		{[]kroute{kr(10, 3), kr(20, 2)}, []ev{{e: kr(10, 1), place: kOnly}, {e: kr(20, 2), place: kOnly}, {e: kr(10, 3), place: kReplace}}},
		{nil, []ev{{e: kr(10, 1), place: kOnly}, {del: true, e: kr(10, 1)}}},
		{[]kroute{kr(32, 1)}, []ev{{e: kr(32, 1), place: kOnly}, {del: true, e: kr(32, 1)}, {e: kr(32, 1), place: kOnly}}},
	} {
		s := newKState(New())
		m := kernelModel{k: slices.Clone(c.final)}
		m.dump(s, false)
		for _, e := range c.evs {
			if e.del {
				s.del(k, e.e)
			} else {
				s.add(k, e.e, e.place)
			}
		}
		applyPending(s)
		m.check(t, s, fmt.Sprint("case ", i))
	}
}

// TestKStateDump: the dump keeps the kernel's choice, holds nothing for the
// prefixes with one usable route at the common metric, and reports when
// the routes of a prefix do not come together.
func TestKStateDump(t *testing.T) {
	m := kernelModel{}
	for i := range 100 {
		k := kkey(pfx(fmt.Sprintf("10.%d.0.0/16", i)))
		m[k] = []kroute{kr(32, uint64(i*7+1))}
	}
	a, b, c := kkey(pfx("10.0.0.0/16")), kkey(pfx("10.1.0.0/16")), kkey(pfx("10.2.0.0/16"))
	m[a] = []kroute{kr(10, 1000), kr(20, 1001)} // two routes
	m[b] = []kroute{kr(20, 1002)}               // another metric
	m[c] = []kroute{kr(32, 1005)}               // not usable
	for _, byMap := range []bool{false, true} {
		s := newKState(New())
		m.dump(s, byMap)
		m.check(t, s, fmt.Sprint("byMap ", byMap))
		if s.m0 != 32 || !s.m0set || len(s.many) != 1 || len(s.one) != 1+20 { // another metric, and 20 not usable
			t.Fatalf("byMap %v: m0 %d, many %d, one %d", byMap, s.m0, len(s.many), len(s.one))
		}
	}
	d := newKDump(newKState(New()), false)
	for i, k := range []uint64{kkey(pfx("10.0.0.0/16")), kkey(pfx("10.0.0.0/8")), kkey(pfx("10.0.0.0/16"))} {
		if ok := d.add(k, kr(10, 1)); ok != (i < 2) {
			t.Fatalf("add %d: grouped %v", i, ok)
		}
	}
	d = newKDump(newKState(New()), false)
	if !d.add(kkey(pfx("10.1.0.0/16")), kr(10, 1)) || d.add(kkey(pfx("10.0.0.0/16")), kr(10, 1)) {
		t.Fatal("a lower address after a higher one not reported")
	}
}
