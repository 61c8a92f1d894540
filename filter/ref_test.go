package filter

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"vrouter/config"
	"vrouter/packet"
)

// naive is the reference: the rules of the configuration tried in order,
// straight from their definition, with nothing precompiled.
func naive(f *config.Filter, k Key) Verdict {
	for i := range f.Rules {
		if ruleMatches(&f.Rules[i], k) {
			a, _ := parseAction(f.Rules[i].Action)
			return Verdict{Rule: int32(i), Action: a}
		}
	}
	a, _ := parseAction(f.Default)
	return Verdict{Rule: Default, Action: a}
}

func ruleMatches(r *config.FilterRule, k Key) bool {
	if isV6Rule(r) {
		return false // an IPv6 rule
	}
	switch r.Proto {
	case config.ProtoTCP:
		if k.Proto != 6 {
			return false
		}
	case config.ProtoUDP:
		if k.Proto != 17 {
			return false
		}
	case config.ProtoICMP:
		if k.Proto != 1 {
			return false
		}
	}
	if !inPrefixes(r.Source, k.Src) || !inPrefixes(r.Destination, k.Dst) {
		return false
	}
	if len(r.SPort) > 0 || len(r.DPort) > 0 || r.HasICMPType {
		if !k.HasPorts {
			return false
		}
	}
	if len(r.SPort) > 0 && !inPorts(r.SPort, k.SPort) || len(r.DPort) > 0 && !inPorts(r.DPort, k.DPort) {
		return false
	}
	return !r.HasICMPType || k.ICMPType == r.ICMPType
}

func inPrefixes(ps []netip.Prefix, a uint32) bool {
	if len(ps) == 0 {
		return true
	}
	for _, p := range ps {
		if p.Contains(packet.Addr(a)) {
			return true
		}
	}
	return false
}

func inPorts(rs []config.PortRange, p uint16) bool {
	for _, r := range rs {
		if r.Lo <= p && p <= r.Hi {
			return true
		}
	}
	return false
}

// gen makes random rulesets and packets that hit their edges: addresses
// drawn around a few bases so that prefixes nest and overlap, ports around
// a few values and the ends of the range.
type gen struct {
	r     *rand.Rand
	bases []uint32
	ports []uint16
	// ranged: few addresses, many port ranges (long buckets, interval
	// indexes, two-dimensional ranges).
	ranged bool
}

func newGen(seed uint64, ranged bool) *gen {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x5eed)), ranged: ranged}
	g.bases = []uint32{0, 0x0a000000, 0x0a010100, 0xc0000200, 0xc6336400, 0xcb007100, 0xffffffff, 0x7f000001}
	for range 4 {
		g.bases = append(g.bases, g.r.Uint32())
	}
	g.ports = []uint16{0, 1, 22, 53, 80, 443, 1023, 1024, 8000, 8100, 32767, 32768, 65534, 65535}
	return g
}

func (g *gen) addr() uint32 {
	b := g.bases[g.r.IntN(len(g.bases))]
	switch g.r.IntN(4) {
	case 0:
		return b
	case 1:
		return b ^ uint32(g.r.IntN(256))
	case 2:
		return b ^ uint32(g.r.IntN(1<<16))
	}
	if g.r.IntN(2) == 0 {
		return b ^ 1<<g.r.IntN(32)
	}
	return g.r.Uint32()
}

func (g *gen) prefix() netip.Prefix {
	var bits int
	if g.ranged {
		bits = []int{0, 32}[g.r.IntN(2)]
	} else {
		switch g.r.IntN(3) {
		case 0:
			bits = []int{0, 8, 16, 24, 32}[g.r.IntN(5)]
		default:
			bits = g.r.IntN(33)
		}
	}
	p, _ := packet.Addr(g.addr()).Prefix(bits)
	if g.ranged {
		p, _ = packet.Addr(g.bases[g.r.IntN(3)]).Prefix(bits)
	}
	return p
}

func (g *gen) port() uint16 {
	p := g.ports[g.r.IntN(len(g.ports))]
	switch g.r.IntN(4) {
	case 0:
		return p + 1
	case 1:
		return p - 1
	case 2:
		return uint16(g.r.IntN(65536))
	}
	return p
}

func (g *gen) portList() []config.PortRange {
	n := 1 + g.r.IntN(3)
	var out []config.PortRange
	for range n {
		a, b := g.port(), g.port()
		if g.r.IntN(3) == 0 {
			b = a
		}
		if b < a {
			a, b = b, a
		}
		out = append(out, config.PortRange{Lo: a, Hi: b})
	}
	return out
}

func (g *gen) rule() config.FilterRule {
	r := config.FilterRule{Action: []config.FilterAction{config.FilterAccept, config.FilterDrop, config.FilterReject}[g.r.IntN(3)]}
	r.Proto = []string{config.ProtoAny, config.ProtoTCP, config.ProtoUDP, config.ProtoICMP}[g.r.IntN(4)]
	if g.ranged && g.r.IntN(4) != 0 {
		r.Proto = config.ProtoTCP
	}
	for _, l := range []*[]netip.Prefix{&r.Source, &r.Destination} {
		if g.r.IntN(3) != 0 {
			for range 1 + g.r.IntN(3) {
				*l = append(*l, g.prefix())
			}
		}
	}
	switch r.Proto {
	case config.ProtoTCP, config.ProtoUDP:
		sp, dp := 4, 2
		if g.ranged {
			sp, dp = 2, 1
		}
		if g.r.IntN(sp) == 0 {
			r.SPort = g.portList()
		}
		if g.r.IntN(dp) == 0 {
			r.DPort = g.portList()
		}
	case config.ProtoICMP:
		if g.r.IntN(2) == 0 {
			r.HasICMPType = true
			r.ICMPType = []uint8{0, 3, 8, 11, 255, uint8(g.r.IntN(256))}[g.r.IntN(6)]
		}
	}
	return r
}

func (g *gen) filter(n int) config.Filter {
	f := config.Filter{Name: "f", Default: []config.FilterAction{config.FilterAccept, config.FilterDrop, config.FilterReject}[g.r.IntN(3)]}
	for range n {
		f.Rules = append(f.Rules, g.rule())
	}
	return f
}

// key makes a packet, often one that a rule of f almost or just matches.
func (g *gen) key(f *config.Filter) Key {
	k := Key{Src: g.addr(), Dst: g.addr(), SPort: g.port(), DPort: g.port(), HasPorts: g.r.IntN(10) != 0}
	k.Proto = []uint8{6, 17, 1, 47, 0}[g.r.IntN(5)]
	k.ICMPType = []uint8{0, 3, 8, 11, 255, uint8(g.r.IntN(256))}[g.r.IntN(6)]
	if len(f.Rules) > 0 && g.r.IntN(2) == 0 {
		r := &f.Rules[g.r.IntN(len(f.Rules))]
		inside := func(ps []netip.Prefix, a uint32) uint32 {
			if len(ps) == 0 {
				return a
			}
			p := ps[g.r.IntN(len(ps))]
			if !p.Addr().Is4() {
				return a // an IPv6 rule (six_test.go)
			}
			m := mask(p.Bits())
			return packet.U32(p.Addr())&m | a&^m
		}
		k.Src, k.Dst = inside(r.Source, k.Src), inside(r.Destination, k.Dst)
		switch r.Proto {
		case config.ProtoTCP:
			k.Proto = 6
		case config.ProtoUDP:
			k.Proto = 17
		case config.ProtoICMP:
			k.Proto = 1
		}
		pick := func(rs []config.PortRange, p uint16) uint16 {
			if len(rs) == 0 {
				return p
			}
			x := rs[g.r.IntN(len(rs))]
			switch g.r.IntN(4) {
			case 0:
				return x.Lo
			case 1:
				return x.Hi
			case 2:
				return x.Lo + uint16(g.r.IntN(int(x.Hi-x.Lo)+1))
			}
			return x.Hi + 1
		}
		k.SPort, k.DPort = pick(r.SPort, k.SPort), pick(r.DPort, k.DPort)
		if r.HasICMPType && g.r.IntN(4) != 0 {
			k.ICMPType = r.ICMPType
		}
	}
	return k
}

func mustCompile(t testing.TB, fs ...config.Filter) *Set {
	t.Helper()
	s, err := Compile(fs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The compiled classifier gives the same verdict as the first-match scan,
// over random rulesets of several sizes and random packets.
func TestAgainstNaive(t *testing.T) {
	type run struct {
		rules, sets, keys int
		ranged            bool
	}
	runs := []run{
		{0, 2, 200, false}, {1, 50, 200, false}, {3, 50, 200, false}, {10, 40, 300, false},
		{50, 20, 1000, false}, {200, 10, 2000, false}, {1000, 3, 5000, false}, {3000, 1, 8000, false},
		{20, 30, 500, true}, {100, 10, 2000, true}, {1000, 3, 5000, true}, {5000, 1, 10000, true},
	}
	if testing.Short() {
		for i := range runs {
			runs[i].keys /= 10
		}
	}
	cases, ranged, indexed, probe := 0, 0, 0, 0
	for ri, rn := range runs {
		for si := range rn.sets {
			g := newGen(uint64(ri*1000+si), rn.ranged)
			f := g.filter(rn.rules)
			rs := mustCompile(t, f).Ruleset(0)
			in := rs.Info()
			ranged += in.Ranged
			indexed += in.Indexed
			probe = max(probe, in.Probe)
			for range rn.keys {
				k := g.key(&f)
				got, want := rs.Classify(k), naive(&f, k)
				cases++
				if got != want {
					t.Fatalf("%d rules (seed %d): %+v: got %+v, want %+v\nrule got: %+v\nrule want: %+v", rn.rules, ri*1000+si, k, got, want, ruleAt(&f, got.Rule), ruleAt(&f, want.Rule))
				}
			}
		}
	}
	if !testing.Short() && cases < 100000 {
		t.Errorf("only %d cases", cases)
	}
	if indexed == 0 {
		t.Errorf("no interval index built (%d range buckets): the ranged runs do not cover it", ranged)
	}
	if probe < 2 {
		t.Errorf("no key was stored past its first hash line: the overflow path is not covered")
	}
	t.Logf("%d cases, %d range buckets, %d with an interval index, longest probe %d lines", cases, ranged, indexed, probe)
}

func ruleAt(f *config.Filter, i int32) any {
	if i < 0 {
		return "default " + string(f.Default)
	}
	return f.Rules[i]
}

// Long buckets of two-dimensional ranges: the interval index (or the scan
// when it would be too big) against the reference, every port pair of a
// small grid.
func TestRangeBuckets(t *testing.T) {
	var total Info
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		f := config.Filter{Name: "f", Default: config.FilterDrop}
		n := 9 + r.IntN(200)
		pr := func() []config.PortRange {
			a, b := uint16(r.IntN(64)), uint16(r.IntN(64))
			if a > b {
				a, b = b, a
			}
			if seed >= 10 { // narrow ranges: two-dimensional interval indexes fit
				b = min(b, a+uint16(r.IntN(4)))
			}
			if r.IntN(8) == 0 {
				return []config.PortRange{{Lo: 0, Hi: 65535}}
			}
			return []config.PortRange{{Lo: a, Hi: b}}
		}
		for i := range n {
			rule := config.FilterRule{Action: config.FilterAccept, Proto: config.ProtoUDP, Destination: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}}
			if i%3 != 0 || seed%2 == 0 {
				rule.DPort = pr()
			}
			if i%2 == 0 {
				rule.SPort = pr()
			}
			f.Rules = append(f.Rules, rule)
		}
		rs := mustCompile(t, f).Ruleset(0)
		for sp := uint16(0); sp < 70; sp++ {
			for dp := uint16(0); dp < 70; dp++ {
				k := Key{Src: 1, Dst: 0xc0000201, Proto: 17, SPort: sp, DPort: dp, HasPorts: true}
				if got, want := rs.Classify(k), naive(&f, k); got != want {
					t.Fatalf("seed %d: %+v: got %+v, want %+v", seed, k, got, want)
				}
			}
		}
		in := rs.Info()
		total.Indexed += in.Indexed
		total.Scanned += in.Scanned
		t.Logf("seed %d: %d rules: %+v", seed, n, in)
	}
	if total.Indexed == 0 || total.Scanned == 0 {
		t.Errorf("indexed %d, scanned %d: want both", total.Indexed, total.Scanned)
	}
}

func TestInfo(t *testing.T) {
	g := newGen(1, false)
	f := g.filter(300)
	in := mustCompile(t, f).Ruleset(0).Info()
	if in.Rules != 300 || in.Entries < 300 || in.Tables == 0 || in.Slots < 2*in.Tables || in.Bytes == 0 {
		t.Errorf("%+v", in)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%+v", in)
	t.Log(b.String())
}
