package fib

import (
	"cmp"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"vrouter/packet"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) uint32        { return packet.U32(netip.MustParseAddr(s)) }

func gw(n uint16, g string) NextHop { return NextHop{Kind: KindGateway, Network: n, Gateway: ip(g)} }

type probe struct {
	addr string
	ok   bool
	nh   NextHop
}

func checkProbes(t *testing.T, tb *Table, ps []probe) {
	t.Helper()
	for _, p := range ps {
		nh, ok := tb.Lookup(ip(p.addr))
		if ok != p.ok || nh != p.nh {
			t.Errorf("Lookup(%s) = %+v,%v; want %+v,%v", p.addr, nh, ok, p.nh, p.ok)
		}
	}
}

func TestEdgeCases(t *testing.T) {
	A, B, C, D := gw(0, "10.0.0.1"), gw(1, "10.1.0.1"), gw(2, "10.2.0.1"), NextHop{Kind: KindDrop}
	type step struct {
		name   string
		add    []Route
		del    []Route
		probes []probe
	}
	steps := []step{
		{name: "empty", probes: []probe{{"1.2.3.4", false, NextHop{}}, {"0.0.0.0", false, NextHop{}}}},
		{name: "default route /0", add: []Route{{pfx("0.0.0.0/0"), Static, A}},
			probes: []probe{{"1.2.3.4", true, A}, {"255.255.255.255", true, A}, {"0.0.0.0", true, A}}},
		{name: "/32 host and overlapping", add: []Route{
			{pfx("198.51.100.7/32"), Static, B},
			{pfx("198.51.100.0/24"), Static, C},
			{pfx("198.51.100.128/25"), Static, D},
			{pfx("198.51.0.0/16"), Runtime, B},
			{pfx("198.0.0.0/8"), Kernel, C},
		}, probes: []probe{
			{"198.51.100.7", true, B}, {"198.51.100.6", true, C}, {"198.51.100.8", true, C},
			{"198.51.100.200", true, D}, {"198.51.101.1", true, B}, {"198.52.0.1", true, C},
			{"199.0.0.1", true, A},
		}},
		{name: "/31 /30 /29 and 255.255.255.255/32", add: []Route{
			{pfx("203.0.113.4/30"), Static, B},
			{pfx("203.0.113.6/31"), Static, C},
			{pfx("203.0.113.0/29"), Static, D},
			{pfx("255.255.255.255/32"), Static, B},
		}, probes: []probe{
			{"203.0.113.3", true, D}, {"203.0.113.4", true, B}, {"203.0.113.5", true, B},
			{"203.0.113.6", true, C}, {"203.0.113.7", true, C}, {"203.0.113.8", true, A},
			{"255.255.255.255", true, B}, {"255.255.255.254", true, A},
		}},
		{name: "delete uncovers shorter", del: []Route{
			{Prefix: pfx("198.51.100.128/25"), Source: Static},
			{Prefix: pfx("198.51.100.7/32"), Source: Static},
			{Prefix: pfx("203.0.113.6/31"), Source: Static},
		}, probes: []probe{
			{"198.51.100.200", true, C}, {"198.51.100.7", true, C}, {"203.0.113.6", true, B},
		}},
		{name: "delete /24 uncovers /16 then /8", del: []Route{{Prefix: pfx("198.51.100.0/24"), Source: Static}},
			probes: []probe{{"198.51.100.7", true, B}}},
		{name: "delete /16 uncovers /8", del: []Route{{Prefix: pfx("198.51.0.0/16"), Source: Runtime}},
			probes: []probe{{"198.51.100.7", true, C}}},
		{name: "replace next hop", add: []Route{{pfx("198.0.0.0/8"), Kernel, D}},
			probes: []probe{{"198.51.100.7", true, D}}},
		{name: "administrative order: static beats kernel, connected beats static", add: []Route{
			{pfx("198.0.0.0/8"), Static, B},
			{pfx("192.168.1.0/24"), Kernel, A},
			{pfx("192.168.1.0/24"), Runtime, B},
			{pfx("192.168.1.0/24"), Connected, NextHop{Kind: KindConnected, Network: 3}},
			{pfx("192.168.1.0/24"), Static, C},
		}, probes: []probe{
			{"198.1.1.1", true, B}, {"192.168.1.9", true, NextHop{Kind: KindConnected, Network: 3}},
		}},
		{name: "deleting a source uncovers the next source of the same prefix", del: []Route{
			{Prefix: pfx("192.168.1.0/24"), Source: Connected},
			{Prefix: pfx("198.0.0.0/8"), Source: Static},
		}, probes: []probe{{"192.168.1.9", true, C}, {"198.1.1.1", true, D}}},
		{name: "and the next", del: []Route{{Prefix: pfx("192.168.1.0/24"), Source: Static}},
			probes: []probe{{"192.168.1.9", true, B}}},
		{name: "and the last", del: []Route{{Prefix: pfx("192.168.1.0/24"), Source: Runtime}},
			probes: []probe{{"192.168.1.9", true, A}}},
		{name: "all gone: default", del: []Route{{Prefix: pfx("192.168.1.0/24"), Source: Kernel}},
			probes: []probe{{"192.168.1.9", true, A}}},
		{name: "delete default", del: []Route{{Prefix: pfx("0.0.0.0/0"), Source: Static}},
			probes: []probe{{"192.168.1.9", false, NextHop{}}, {"1.1.1.1", false, NextHop{}}, {"198.1.1.1", true, D}}},
		{name: "unmasked prefix is masked", add: []Route{{netip.PrefixFrom(netip.MustParseAddr("10.9.9.9"), 16), Static, A}},
			probes: []probe{{"10.9.0.1", true, A}, {"10.10.0.1", false, NextHop{}}}},
	}
	tb := New()
	for _, s := range steps {
		for _, r := range s.add {
			tb.Add(r)
		}
		for _, r := range s.del {
			if !tb.Delete(r.Prefix, r.Source) {
				t.Errorf("%s: Delete(%v,%v) = false", s.name, r.Prefix, r.Source)
			}
		}
		t.Run(s.name, func(t *testing.T) { checkProbes(t, tb, s.probes) })
	}
	if tb.Delete(pfx("10.9.0.0/16"), Kernel) {
		t.Error("Delete of an absent source's route reported true")
	}
	if r, ok := tb.Get(pfx("10.9.0.0/16")); !ok || r.NH != A || r.Source != Static {
		t.Errorf("Get = %+v %v", r, ok)
	}
}

func TestMatchGetRoutesSummary(t *testing.T) {
	tb := New()
	A, B := gw(0, "10.0.0.1"), gw(1, "10.1.0.1")
	tb.Add(Route{pfx("10.0.0.0/8"), Kernel, A})
	tb.Add(Route{pfx("10.0.0.0/8"), Static, B})
	tb.Add(Route{pfx("10.1.2.0/24"), Runtime, A})
	tb.Add(Route{pfx("10.1.2.3/32"), Connected, B})
	tb.Add(Route{pfx("0.0.0.0/0"), Kernel, A})
	r, ok := tb.Match(netip.MustParseAddr("10.1.2.4"))
	if !ok || r.Prefix != pfx("10.1.2.0/24") || r.Source != Runtime || r.NH != A {
		t.Errorf("Match = %+v %v", r, ok)
	}
	r, ok = tb.Match(netip.MustParseAddr("10.1.2.3"))
	if !ok || r.Prefix != pfx("10.1.2.3/32") || r.Source != Connected {
		t.Errorf("Match = %+v %v", r, ok)
	}
	r, ok = tb.Match(netip.MustParseAddr("10.200.0.1"))
	if !ok || r.Prefix != pfx("10.0.0.0/8") || r.Source != Static || r.NH != B {
		t.Errorf("Match = %+v %v", r, ok)
	}
	r, ok = tb.Match(netip.MustParseAddr("11.0.0.1"))
	if !ok || r.Prefix != pfx("0.0.0.0/0") || r.Source != Kernel {
		t.Errorf("Match = %+v %v", r, ok)
	}
	if _, ok := tb.Get(pfx("10.1.0.0/16")); ok {
		t.Error("Get of absent prefix")
	}
	rs := tb.Routes()
	want := []string{"0.0.0.0/0", "10.0.0.0/8", "10.1.2.0/24", "10.1.2.3/32"}
	if len(rs) != len(want) {
		t.Fatalf("Routes = %v", rs)
	}
	for i, w := range want {
		if rs[i].Prefix.String() != w {
			t.Errorf("Routes[%d] = %v, want %s", i, rs[i].Prefix, w)
		}
	}
	if rs[1].Source != Static {
		t.Errorf("Routes[1] source %v", rs[1].Source)
	}
	s := tb.Summary()
	if s.Routes != 4 || s.BySource["kernel"] != 1 || s.BySource["static"] != 1 || s.BySource["runtime"] != 1 || s.BySource["connected"] != 1 {
		t.Errorf("Summary = %+v", s)
	}
	if s.ByLength[0] != 1 || s.ByLength[8] != 1 || s.ByLength[24] != 1 || s.ByLength[32] != 1 || len(s.ByLength) != 4 {
		t.Errorf("Summary.ByLength = %v", s.ByLength)
	}
	if s.MemoryBytes < dirSize*4 {
		t.Errorf("MemoryBytes = %d", s.MemoryBytes)
	}
	tb.Delete(pfx("10.0.0.0/8"), Static)
	s = tb.Summary()
	if s.Routes != 4 || s.BySource["kernel"] != 2 || s.BySource["static"] != 0 {
		t.Errorf("Summary after delete = %+v", s)
	}
	if tb.Len() != 4 {
		t.Errorf("Len = %d", tb.Len())
	}
	// ReplaceSource
	tb.ReplaceSource(Kernel, []Route{{Prefix: pfx("192.0.2.0/24"), NH: A}})
	s = tb.Summary()
	if s.Routes != 3 || s.BySource["kernel"] != 1 {
		t.Errorf("Summary after ReplaceSource = %+v", s)
	}
	if nh, ok := tb.Lookup(ip("10.200.0.1")); ok {
		t.Errorf("10.200.0.1 still routed: %+v", nh)
	}
	if nh, ok := tb.Lookup(ip("192.0.2.1")); !ok || nh != A {
		t.Errorf("192.0.2.1: %+v %v", nh, ok)
	}
}

// compareAll checks Lookup against the reference for the given addresses.
func compareAll(t *testing.T, tb *Table, r *ref, addrs []uint32) {
	t.Helper()
	bad := 0
	for _, a := range addrs {
		got, gok := tb.Lookup(a)
		want, wok := r.lookup(a)
		if got != want || gok != wok {
			if bad < 10 {
				p, _ := r.match(a)
				t.Errorf("Lookup(%v) = %+v,%v; want %+v,%v (ref prefix %v)", packet.Addr(a), got, gok, want, wok, p)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d lookups differ", bad, len(addrs))
	}
}

func TestFullTableRandomized(t *testing.T) {
	if testing.Short() {
		t.Skip("full-table test: runs in the main pass of make test, not in the -short -race pass")
	}
	ps := loadFull(t)
	rng := rand.New(rand.NewPCG(1, 2))
	r := newRef()
	tb := New()
	ups := make([]Update, 0, len(ps)+100)
	for i, p := range ps {
		rt := Route{Prefix: p, Source: Source(rng.IntN(int(NumSources))), NH: testNH(rng.IntN(1000))}
		_ = i
		ups = append(ups, Update{Route: rt})
		r.add(rt)
	}
	// a default route and some short and host routes on top
	extra := []Route{{pfx("0.0.0.0/0"), Kernel, testNH(1)}, {pfx("10.0.0.0/8"), Static, testNH(2)}}
	for _, rt := range extra {
		ups = append(ups, Update{Route: rt})
		r.add(rt)
	}
	st := time.Now()
	tb.Apply(ups)
	t.Logf("full build of %d routes: %v", len(ups), time.Since(st))
	if tb.Len() != len(r.routes) {
		t.Fatalf("Len = %d, want %d", tb.Len(), len(r.routes))
	}
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	compareAll(t, tb, r, randAddrs(rng, ps, n))

	// random small batches of adds, replaces and deletes (incremental path)
	rounds := 300
	if testing.Short() {
		rounds = 50
	}
	for round := range rounds {
		var batch []Update
		var touched []netip.Prefix
		for range 1 + rng.IntN(200) {
			var p netip.Prefix
			switch rng.IntN(4) {
			case 0: // existing prefix
				p = ps[rng.IntN(len(ps))]
			case 1: // random new prefix, any length
				l := rng.IntN(33)
				p = netip.PrefixFrom(packet.Addr(rng.Uint32()&mask(l)), l)
			case 2: // more specific of an existing prefix
				q := ps[rng.IntN(len(ps))]
				l := q.Bits() + rng.IntN(33-q.Bits())
				p = netip.PrefixFrom(packet.Addr((packet.U32(q.Addr())|rng.Uint32()&^mask(q.Bits()))&mask(l)), l)
			default: // shorter prefix
				l := rng.IntN(19)
				p = netip.PrefixFrom(packet.Addr(rng.Uint32()&mask(l)), l)
			}
			src := Source(rng.IntN(int(NumSources)))
			if rng.IntN(2) == 0 {
				batch = append(batch, Update{Route: Route{Prefix: p, Source: src}, Delete: true})
				r.del(p, src)
			} else {
				rt := Route{Prefix: p, Source: src, NH: testNH(rng.IntN(1000))}
				batch = append(batch, Update{Route: rt})
				r.add(rt)
			}
			touched = append(touched, p)
		}
		tb.Apply(batch)
		// addresses in and around the touched prefixes, plus random ones
		var addrs []uint32
		for _, p := range touched {
			a := packet.U32(p.Addr())
			addrs = append(addrs, a, a|^mask(p.Bits()), a-1, (a|^mask(p.Bits()))+1, a|rng.Uint32()&^mask(p.Bits()))
		}
		addrs = append(addrs, randAddrs(rng, ps, 2000)...)
		compareAll(t, tb, r, addrs)
		if round%50 == 0 && tb.Len() != len(r.routes) {
			t.Fatalf("round %d: Len = %d, want %d", round, tb.Len(), len(r.routes))
		}
	}
	compareAll(t, tb, r, randAddrs(rng, ps, n/4))
	st2 := tb.Stats()
	t.Logf("stats: %+v", st2)

	// summary against the reference
	sum := tb.Summary()
	bySrc := map[string]int{}
	byLen := map[int]int{}
	for p := range r.routes {
		s, _ := r.best(p)
		bySrc[s.String()]++
		byLen[p.Bits()]++
	}
	if sum.Routes != len(r.routes) {
		t.Errorf("Summary.Routes = %d, want %d", sum.Routes, len(r.routes))
	}
	for s := range NumSources {
		if sum.BySource[s.String()] != bySrc[s.String()] {
			t.Errorf("Summary.BySource[%v] = %d, want %d", s, sum.BySource[s.String()], bySrc[s.String()])
		}
	}
	for l := range 33 {
		if sum.ByLength[l] != byLen[l] {
			t.Errorf("Summary.ByLength[%d] = %d, want %d", l, sum.ByLength[l], byLen[l])
		}
	}
	// Get and Match against the reference on a sample
	for i := range 2000 {
		a := randAddrs(rng, ps, 1)[0]
		got, gok := tb.Match(packet.Addr(a))
		p, wok := r.match(a)
		if gok != wok {
			t.Fatalf("Match(%v) ok=%v want %v", packet.Addr(a), gok, wok)
		}
		if !wok {
			continue
		}
		src, nh := r.best(p)
		if got.Prefix != p || got.Source != src || got.NH != nh {
			t.Fatalf("Match(%v) = %+v, want %v %v %+v", packet.Addr(a), got, p, src, nh)
		}
		if i%4 == 0 {
			g, ok := tb.Get(p)
			if !ok || g != got {
				t.Fatalf("Get(%v) = %+v %v", p, g, ok)
			}
		}
	}
	// a full compaction keeps everything
	tb.mu.Lock()
	tb.compact(0, 0, 0)
	tb.mu.Unlock()
	compareAll(t, tb, r, randAddrs(rng, ps, 100_000))
	// Routes: count and order
	rs := tb.Routes()
	if len(rs) != len(r.routes) {
		t.Fatalf("Routes: %d, want %d", len(rs), len(r.routes))
	}
	for i := 1; i < len(rs); i++ {
		a, b := rs[i-1].Prefix, rs[i].Prefix
		if c := a.Addr().Compare(b.Addr()); c > 0 || c == 0 && a.Bits() >= b.Bits() {
			t.Fatalf("Routes not sorted at %d: %v %v", i, a, b)
		}
	}
}

// TestSmallRandomized exercises the incremental path from an empty table,
// with dense nested prefixes in a small address range (deep nodes).
func TestSmallRandomized(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	r := newRef()
	tb := New()
	base := ip("192.168.0.0")
	for round := range 2000 {
		l := rng.IntN(33)
		a := (base | rng.Uint32()&0x0003ffff) & mask(l)
		if l < 14 {
			a = rng.Uint32() & mask(l)
		}
		p := netip.PrefixFrom(packet.Addr(a), l)
		src := Source(rng.IntN(int(NumSources)))
		if rng.IntN(3) == 0 {
			got := tb.Delete(p, src)
			if want := r.del(p, src); got != want {
				t.Fatalf("Delete(%v,%v) = %v want %v", p, src, got, want)
			}
		} else {
			rt := Route{Prefix: p, Source: src, NH: testNH(rng.IntN(20))}
			tb.Add(rt)
			r.add(rt)
		}
		if round%20 == 0 {
			var addrs []uint32
			for range 500 {
				addrs = append(addrs, base|rng.Uint32()&0x0003ffff)
			}
			addrs = append(addrs, randAddrs(rng, []netip.Prefix{p}, 100)...)
			compareAll(t, tb, r, addrs)
		}
	}
}

func TestLookupAllocs(t *testing.T) {
	tb := New()
	tb.Add(Route{pfx("10.0.0.0/8"), Static, gw(0, "10.0.0.1")})
	tb.Add(Route{pfx("10.1.2.128/25"), Static, gw(0, "10.0.0.2")})
	tb.Add(Route{pfx("10.1.2.129/32"), Static, gw(0, "10.0.0.3")})
	addrs := []uint32{ip("10.1.2.129"), ip("10.1.2.130"), ip("10.9.9.9"), ip("11.0.0.1")}
	var sum uint32
	n := testing.AllocsPerRun(1000, func() {
		for _, a := range addrs {
			nh, _ := tb.Lookup(a)
			sum += nh.Gateway
		}
	})
	if n != 0 {
		t.Fatalf("Lookup allocates %v per run", n)
	}
	if want := uint32(1001) * (ip("10.0.0.1") + ip("10.0.0.2") + ip("10.0.0.3")); sum != want {
		t.Fatalf("lookups gave gateway sum %d, want %d", sum, want)
	}
}

// TestConcurrentUpdates runs lookups on one goroutine while another
// publishes updates (run with -race). Addresses under prefixes that never
// change must always give their next hop; addresses under changing prefixes
// must give one of the values they may have.
func TestConcurrentUpdates(t *testing.T) {
	tb := New()
	stable := gw(0, "10.0.0.1")
	var ups []Update
	for i := range 4096 {
		// stable /24s in 100.64.0.0/10.. (100.64.0.0 - 100.79.255.0)
		ups = append(ups, Update{Route: Route{Prefix: netip.PrefixFrom(packet.Addr(ip("100.64.0.0")+uint32(i)<<8), 24), Source: Static, NH: stable}})
	}
	tb.Apply(ups)
	A, B := gw(1, "10.1.0.1"), gw(1, "10.1.0.2")
	var stop atomic.Bool
	var wg sync.WaitGroup
	var lookups, bad atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(5, 6))
		for !stop.Load() {
			for range 1000 {
				a := ip("100.64.0.0") + rng.Uint32()%(4096<<8)
				if nh, ok := tb.Lookup(a); !ok || nh != stable {
					bad.Add(1)
				}
				// changing region: 192.168.0.0/16, either unrouted, A or B
				a = ip("192.168.0.0") | rng.Uint32()&0xffff
				if nh, ok := tb.Lookup(a); ok && nh != A && nh != B {
					bad.Add(1)
				}
				// 172.16.0.0/16: only /19-/24 prefixes (flat chunks,
				// mostly leaves rewritten in place), unrouted, A or B
				a = ip("172.16.0.0") | rng.Uint32()&0xffff
				if nh, ok := tb.Lookup(a); ok && nh != A && nh != B {
					bad.Add(1)
				}
			}
			lookups.Add(3000)
		}
	}()
	rng := rand.New(rand.NewPCG(7, 8))
	deadline := time.Now().Add(time.Second)
	updates := 0
	for time.Now().Before(deadline) {
		var b []Update
		for range 64 {
			l := 17 + rng.IntN(16)
			p := netip.PrefixFrom(packet.Addr((ip("192.168.0.0")|rng.Uint32()&0xffff)&mask(l)), l)
			nh := A
			if rng.IntN(2) == 0 {
				nh = B
			}
			b = append(b, Update{Route: Route{Prefix: p, Source: Runtime, NH: nh}, Delete: rng.IntN(3) == 0})
		}
		for range 4 { // single changes: Add/Delete publish each on its own
			l := 19 + rng.IntN(6)
			p := netip.PrefixFrom(packet.Addr((ip("172.16.0.0")|rng.Uint32()&0xffff)&mask(l)), l)
			if rng.IntN(3) == 0 {
				tb.Delete(p, Static)
			} else {
				tb.Add(Route{Prefix: p, Source: Static, NH: [2]NextHop{A, B}[rng.IntN(2)]})
			}
		}
		tb.Apply(b)
		updates += len(b)
		if rng.IntN(50) == 0 { // full rebuilds publish new snapshots too
			tb.mu.Lock()
			tb.compact(0, 0, 0)
			tb.mu.Unlock()
		}
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d wrong lookups during updates", bad.Load())
	}
	if lookups.Load() == 0 || updates == 0 {
		t.Fatalf("no work done: %d lookups, %d updates", lookups.Load(), updates)
	}
	tb.mu.Lock()
	rw := tb.leafRewrites
	tb.mu.Unlock()
	if rw == 0 {
		t.Fatalf("no leaf rewritten in place during the lookups")
	}
	t.Logf("%d lookups during %d updates, %d leaf rewrites, stats %+v", lookups.Load(), updates, rw, tb.Stats())
}

// TestBuilderSweepVsPaint checks the sweep builder against the painting one
// on random chunks (nested prefixes of all lengths /19-/32).
func TestBuilderSweepVsPaint(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	var b1, b2 builder
	for round := range 20000 {
		base := rng.Uint32() &^ (1<<(32-dirBits) - 1)
		n := rng.IntN(40)
		if round%10 == 0 {
			n = rng.IntN(400)
		}
		maxL := 32 - dirBits
		if round%2 == 0 {
			maxL = 24 - dirBits // routes up to /24 only (the flat builder)
		}
		seen := map[uint64]bool{}
		var ents []bent
		for range n {
			l := dirBits + 1 + rng.IntN(maxL)
			if rng.IntN(3) == 0 {
				l = dirBits + 1 + rng.IntN(6)
			}
			a := (base | rng.Uint32()&(1<<(32-dirBits)-1)) & mask(l)
			if seen[pkeyOf(a, l)] {
				continue
			}
			seen[pkeyOf(a, l)] = true
			ents = append(ents, bent{addr: a, plen: uint8(l), nh: uint32(1 + rng.IntN(4))})
		}
		slices.SortFunc(ents, func(x, y bent) int {
			if x.addr != y.addr {
				return cmp.Compare(x.addr, y.addr)
			}
			return int(x.plen) - int(y.plen)
		})
		def := uint32(rng.IntN(3))
		b1.ents, b2.ents = ents, ents
		b1.build(def)
		b2.buildPaint(def)
		if !slices.Equal(b1.nodes, b2.nodes) || !slices.Equal(b1.leaves, b2.leaves) {
			t.Fatalf("round %d: sweep and paint differ for %v def %d:\nsweep %v %v\npaint %v %v", round, ents, def, b1.nodes, b1.leaves, b2.nodes, b2.leaves)
		}
		// the flat builder (routes up to /24 only) from the RIB encoding,
		// with a worse source of some prefixes after the best one
		var l []rent
		flat := true
		for _, e := range ents {
			flat = flat && e.plen <= 24
			l = append(l, mkRent(e.addr, e.plen, Static, e.nh))
			if rng.IntN(4) == 0 {
				l = append(l, mkRent(e.addr, e.plen, Kernel, e.nh+7))
			}
		}
		var b3 builder
		ok := b3.buildFlat(l, def)
		single := len(b2.nodes) == 1 && b2.nodes[0].Vec == 0 && len(b2.leaves) == 1
		if ok != (flat && !single) {
			t.Fatalf("round %d: buildFlat = %v for flat %v single %v: %v", round, ok, flat, single, ents)
		}
		if ok && (!slices.Equal(b3.nodes, b2.nodes) || !slices.Equal(b3.leaves, b2.leaves)) {
			t.Fatalf("round %d: flat and paint differ for %v def %d:\nflat %v %v\npaint %v %v", round, ents, def, b3.nodes, b3.leaves, b2.nodes, b2.leaves)
		}
	}
}

// TestManyNextHops grows the next-hop table far beyond its initial size
// (which republishes the structure) and checks every route.
func TestManyNextHops(t *testing.T) {
	tb := New()
	r := newRef()
	rng := rand.New(rand.NewPCG(31, 32))
	var all []netip.Prefix
	for i := range 5000 {
		l := 16 + rng.IntN(17)
		p := netip.PrefixFrom(packet.Addr(rng.Uint32()&mask(l)), l)
		rt := Route{Prefix: p, Source: Static, NH: NextHop{Kind: KindGateway, Network: uint16(i % 7), Gateway: uint32(i)}}
		tb.Add(rt)
		r.add(rt)
		all = append(all, p)
	}
	if st := tb.Stats(); st.NextHops != 5000 || st.Compactions == 0 {
		t.Fatalf("stats %+v", st)
	}
	compareAll(t, tb, r, randAddrs(rng, all, 50_000))
}

// TestInputs: non-IPv4 prefixes and invalid sources are ignored, IPv4-mapped
// IPv6 prefixes are taken as IPv4, Apply counts the changes that had an effect.
func TestInputs(t *testing.T) {
	tb := New()
	A := gw(0, "10.0.0.1")
	n := tb.Apply([]Update{
		{Route: Route{Prefix: pfx("2001:db8::/32"), Source: Static, NH: A}},
		{Route: Route{Prefix: netip.Prefix{}, Source: Static, NH: A}},
		{Route: Route{Prefix: pfx("192.0.2.0/24"), Source: NumSources, NH: A}},
		{Route: Route{Prefix: pfx("::ffff:198.51.100.0/120"), Source: Static, NH: A}},
		{Route: Route{Prefix: pfx("203.0.113.0/24"), Source: Static, NH: A}},
		{Route: Route{Prefix: pfx("203.0.113.0/24"), Source: Static, NH: A}}, // same again: no effect
		{Route: Route{Prefix: pfx("192.0.2.0/24"), Source: Static}, Delete: true},
	})
	if n != 2 || tb.Len() != 2 {
		t.Fatalf("Apply = %d, Len = %d", n, tb.Len())
	}
	checkProbes(t, tb, []probe{{"198.51.100.9", true, A}, {"203.0.113.9", true, A}, {"192.0.2.1", false, NextHop{}}})
	if _, ok := tb.Match(netip.MustParseAddr("2001:db8::1")); ok {
		t.Error("Match of an IPv6 address")
	}
	if r, ok := tb.Match(netip.MustParseAddr("::ffff:203.0.113.1")); !ok || r.Prefix != pfx("203.0.113.0/24") {
		t.Errorf("Match of a mapped address = %+v %v", r, ok)
	}
}

// TestReplaceSourceFull replaces a full kernel table by half of it (the
// resync path of the kernel import: a large batch of deletes and adds).
func TestReplaceSourceFull(t *testing.T) {
	if testing.Short() {
		t.Skip("full-table test: runs in the main pass of make test, not in the -short -race pass")
	}
	ps := loadFull(t)
	tb := New()
	r := newRef()
	A, B := gw(1, "10.99.0.2"), gw(1, "10.99.0.3")
	var rs []Route
	for _, p := range ps {
		rs = append(rs, Route{Prefix: p, NH: A})
	}
	tb.ReplaceSource(Kernel, rs)
	tb.Add(Route{pfx("10.0.0.0/8"), Static, B})
	var half []Route
	for i, p := range ps {
		if i%2 == 0 {
			half = append(half, Route{Prefix: p, NH: B})
			r.add(Route{p, Kernel, B})
		}
	}
	r.add(Route{pfx("10.0.0.0/8"), Static, B})
	st := time.Now()
	tb.ReplaceSource(Kernel, half)
	t.Logf("ReplaceSource of %d by %d routes: %v", len(ps), len(half), time.Since(st))
	if tb.Len() != len(r.routes) {
		t.Fatalf("Len = %d, want %d", tb.Len(), len(r.routes))
	}
	if s := tb.Summary(); s.BySource["kernel"] != len(half) || s.BySource["static"] != 1 {
		t.Fatalf("summary %v", s.BySource)
	}
	compareAll(t, tb, r, randAddrs(rand.New(rand.NewPCG(41, 42)), ps, 200_000))
}

// TestChurnVsRebuild applies random batches (mostly /19-/24 prefixes, the
// flat chunk compiler's case, with some longer and shorter ones and all
// sources, deletes leaving spare slots in the RIB lists that later adds
// reuse) to a table in a dense region of 16 chunks and checks every
// address of the region against the naive reference and against a table
// compiled from scratch from the same routes (one full rebuild).
func TestChurnVsRebuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	r := newRef()
	tb := New()
	base := ip("10.0.0.0") // 10.0.0.0/14: 16 chunks
	var addrs []uint32
	for a := base; a < base+1<<18; a += 61 {
		addrs = append(addrs, a)
	}
	steps := 3000
	if testing.Short() {
		steps = 600
	}
	for step := range steps {
		var ups []Update
		for range 1 + rng.IntN(6) {
			l := 19 + rng.IntN(6)
			switch rng.IntN(20) {
			case 0:
				l = 14 + rng.IntN(5)
			case 1, 2:
				l = 25 + rng.IntN(8)
			}
			a := base | rng.Uint32()&(1<<18-1)
			if l > 24 && a>>(32-dirBits)&8 == 0 {
				l = 24 // half of the chunks only up to /24 (flat roots)
			}
			p := netip.PrefixFrom(packet.Addr(a&mask(l)), l)
			src := Source(rng.IntN(int(NumSources)))
			if rng.IntN(2) == 0 {
				ups = append(ups, Update{Route: Route{Prefix: p, Source: src}, Delete: true})
				r.del(p, src)
			} else {
				rt := Route{Prefix: p, Source: src, NH: testNH(rng.IntN(30))}
				ups = append(ups, Update{Route: rt})
				r.add(rt)
			}
		}
		tb.Apply(ups)
		if step%100 != 99 {
			continue
		}
		compareAll(t, tb, r, addrs)
		// the same routes, compiled from scratch
		full := New()
		var all []Update
		for p, srcs := range r.routes {
			for s, nh := range srcs {
				if nh != nil {
					all = append(all, Update{Route: Route{Prefix: p, Source: Source(s), NH: *nh}})
				}
			}
		}
		full.mu.Lock()
		for _, u := range all {
			p := u.Route.Prefix
			full.rib.set(packet.U32(p.Addr()), p.Bits(), u.Route.Source, full.intern(u.Route.NH))
		}
		full.rebuild()
		full.mu.Unlock()
		for _, a := range addrs {
			got, _ := tb.Lookup(a)
			want, _ := full.Lookup(a)
			if got != want {
				t.Fatalf("step %d: Lookup(%v) = %+v incrementally, %+v compiled from scratch", step, packet.Addr(a), got, want)
			}
		}
		if tb.Len() != full.Len() || tb.rib.perSrc != full.rib.perSrc {
			t.Fatalf("step %d: %d prefixes %v routes incrementally, %d %v from scratch", step, tb.Len(), tb.rib.perSrc, full.Len(), full.rib.perSrc)
		}
	}
	// the RIB lists kept spare slots and the slab was compacted along the way
	st := tb.Stats()
	if st.ChunkBuilds == 0 || st.Prefixes == 0 || tb.leafRewrites == 0 {
		t.Fatalf("no work done: %+v, %d leaves rewritten in place", st, tb.leafRewrites)
	}
	t.Logf("%d chunk compilations, %d leaves rewritten in place", st.ChunkBuilds, tb.leafRewrites)
}
