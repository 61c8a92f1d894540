package filter

import (
	"net/netip"
	"testing"

	"vrouter/config"
)

// isV6Rule reports whether a rule is for IPv6 packets only (the naive
// references' view of the family rule).
func isV6Rule(r *config.FilterRule) bool {
	if r.Proto == config.ProtoICMPv6 {
		return true
	}
	for _, l := range [][]netip.Prefix{r.Source, r.Destination} {
		for _, p := range l {
			if p.Addr().Is6() {
				return true
			}
		}
	}
	return false
}

func isV4Rule(r *config.FilterRule) bool {
	if r.Proto == config.ProtoICMP {
		return true
	}
	for _, l := range [][]netip.Prefix{r.Source, r.Destination} {
		for _, p := range l {
			if p.Addr().Is4() {
				return true
			}
		}
	}
	return false
}

// naive6 is the reference for IPv6 packets: the rules tried in order.
func naive6(f *config.Filter, k Key6) Verdict {
	for i := range f.Rules {
		if ruleMatches6(&f.Rules[i], k) {
			a, _ := parseAction(f.Rules[i].Action)
			return Verdict{Rule: int32(i), Action: a}
		}
	}
	a, _ := parseAction(f.Default)
	return Verdict{Rule: Default, Action: a}
}

func ruleMatches6(r *config.FilterRule, k Key6) bool {
	if isV4Rule(r) {
		return false
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
	case config.ProtoICMPv6:
		if k.Proto != 58 {
			return false
		}
	}
	in := func(ps []netip.Prefix, a [16]byte) bool {
		if len(ps) == 0 {
			return true
		}
		for _, p := range ps {
			if p.Contains(netip.AddrFrom16(a)) {
				return true
			}
		}
		return false
	}
	if !in(r.Source, k.Src) || !in(r.Destination, k.Dst) {
		return false
	}
	if (len(r.SPort) > 0 || len(r.DPort) > 0 || r.HasICMPType) && !k.HasPorts {
		return false
	}
	if len(r.SPort) > 0 && !inPorts(r.SPort, k.SPort) || len(r.DPort) > 0 && !inPorts(r.DPort, k.DPort) {
		return false
	}
	return !r.HasICMPType || k.ICMPType == r.ICMPType
}

func a6(s string) [16]byte { return netip.MustParseAddr(s).As16() }

func tcp6(src, dst string, sp, dp uint16) Key6 {
	return Key6{Src: a6(src), Dst: a6(dst), Proto: ProtoTCP, SPort: sp, DPort: dp, HasPorts: true}
}

// TestClassify6: IPv6 packets against a ruleset of IPv4, IPv6 and
// family-less rules; IPv4 packets against the same ruleset.
func TestClassify6(t *testing.T) {
	src := `[[filter.rule]]
action = "accept"
proto = "tcp"
source = ["2001:db8:1::/48"]
dport = 22

[[filter.rule]]
action = "accept"
proto = "icmpv6"
icmp_type = "echo-request"

[[filter.rule]]
action = "accept"
proto = "icmp"
icmp_type = "echo-request"

[[filter.rule]]
action = "drop"
proto = "udp"
dport = 53

[[filter.rule]]
action = "accept"
proto = "tcp"
destination = "192.0.2.0/24"

[[filter.rule]]
action = "reject"
proto = "tcp"
dport = "8000-8100"

[[filter.rule]]
action = "accept"
destination = ["2001:db8:5::1", "2001:db8:6::/64"]
`
	s := mustCompile(t, parseFilters(t, src)...)
	rs := s.Ruleset(0)
	for _, c := range []struct {
		name string
		k    Key6
		want int32
	}{
		{"ssh from the /48", tcp6("2001:db8:1:2::3", "2001:db8:9::1", 40000, 22), 0},
		{"ssh from elsewhere", tcp6("2001:db8:2::3", "2001:db8:9::1", 40000, 22), Default},
		{"echo request", Key6{Src: a6("2001:db8::1"), Dst: a6("2001:db8::2"), Proto: ProtoICMPv6, ICMPType: 128, HasPorts: true}, 1},
		{"icmpv6 type 8 is not echo", Key6{Src: a6("2001:db8::1"), Dst: a6("2001:db8::2"), Proto: ProtoICMPv6, ICMPType: 8, HasPorts: true}, Default},
		{"icmp (v4 protocol) in IPv6", Key6{Src: a6("2001:db8::1"), Dst: a6("2001:db8::2"), Proto: ProtoICMP, ICMPType: 8, HasPorts: true}, Default},
		{"dns: family-less rule", Key6{Src: a6("2001:db8::1"), Dst: a6("2001:db8::2"), Proto: ProtoUDP, SPort: 5353, DPort: 53, HasPorts: true}, 3},
		{"port range", tcp6("2001:db8::1", "2001:db8::2", 1, 8050), 5},
		{"port range fragment", Key6{Src: a6("2001:db8::1"), Dst: a6("2001:db8::2"), Proto: ProtoTCP}, Default},
		{"/128 destination", Key6{Src: a6("2001:db8::1"), Dst: a6("2001:db8:5::1"), Proto: 47}, 6},
		{"next to the /128", Key6{Src: a6("2001:db8::1"), Dst: a6("2001:db8:5::2"), Proto: 47}, Default},
		{"/64 destination", Key6{Src: a6("::1"), Dst: a6("2001:db8:6::ffff:1"), Proto: ProtoUDP, DPort: 9, HasPorts: true}, 6},
	} {
		if v := rs.Classify6(c.k); v.Rule != c.want || v.Action != rs.Action(c.want) {
			t.Errorf("%s: %+v, want rule %d", c.name, v, c.want)
		}
		if v, w := rs.Classify6(c.k), naive6(rs.Config(), c.k); v != w {
			t.Errorf("%s: naive6 %+v, Classify6 %+v", c.name, w, v)
		}
	}
	// IPv4 packets: the IPv6 rules do not apply
	for _, c := range []struct {
		name string
		k    Key
		want int32
	}{
		{"ssh (rule 0 is IPv6)", tcp("198.51.100.1", "203.0.113.1", 40000, 22), Default},
		{"echo request", icmp("198.51.100.1", "203.0.113.1", 8), 2},
		{"dns", udp("198.51.100.1", "203.0.113.1", 5353, 53), 3},
		{"tcp to 192.0.2.0/24", tcp("198.51.100.1", "192.0.2.9", 1, 2), 4},
		{"gre: rule 6 is IPv6", Key{Src: ip("198.51.100.1"), Dst: ip("203.0.113.1"), Proto: 47}, Default},
	} {
		if v := rs.Classify(c.k); v.Rule != c.want {
			t.Errorf("IPv4 %s: %+v, want rule %d", c.name, v, c.want)
		}
	}
	in := rs.Info()
	if in.Entries != 4 || in.Entries6 != 6 || in.Tables6 == 0 || in.Bytes6 == 0 {
		t.Errorf("Info %+v", in)
	}
}

// gen6 makes random IPv6 rules and packets around a few bases, as gen
// does for IPv4; a few rules are IPv4 ones (never matching).
type gen6 struct {
	*gen
	bases [][2]uint64
}

func newGen6(seed uint64, ranged bool) *gen6 {
	g := &gen6{gen: newGen(seed, ranged)}
	for _, s := range []string{"::", "2001:db8::", "2001:db8:0:1::", "2001:db8:1::", "fd00::1", "fe80::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
		g.bases = append(g.bases, [2]uint64(split2(a6(s))))
	}
	for range 3 {
		g.bases = append(g.bases, [2]uint64{g.r.Uint64(), g.r.Uint64()})
	}
	return g
}

func split2(a [16]byte) [2]uint64 { h, l := split6(a); return [2]uint64{h, l} }

func join2(v [2]uint64) [16]byte {
	var a [16]byte
	for i := range 8 {
		a[i] = byte(v[0] >> (56 - 8*i))
		a[8+i] = byte(v[1] >> (56 - 8*i))
	}
	return a
}

func (g *gen6) addr6() [16]byte {
	b := g.bases[g.r.IntN(len(g.bases))]
	switch g.r.IntN(4) {
	case 0:
	case 1:
		b[1] ^= uint64(g.r.IntN(1 << 16))
	case 2:
		b[0] ^= uint64(g.r.IntN(1 << 16))
	default:
		if i := g.r.IntN(128); i < 64 {
			b[0] ^= 1 << i
		} else {
			b[1] ^= 1 << (i - 64)
		}
	}
	return join2(b)
}

func (g *gen6) prefix6() netip.Prefix {
	bits := []int{0, 16, 32, 48, 56, 64, 96, 120, 127, 128, g.r.IntN(129)}[g.r.IntN(11)]
	if g.ranged {
		bits = []int{0, 128}[g.r.IntN(2)]
		b := g.bases[g.r.IntN(3)]
		p, _ := netip.AddrFrom16(join2(b)).Prefix(bits)
		return p
	}
	p, _ := netip.AddrFrom16(g.addr6()).Prefix(bits)
	return p
}

func (g *gen6) rule6() config.FilterRule {
	r := g.rule() // IPv4 shaped: keep its action, protocol and ports
	if g.r.IntN(10) == 0 {
		return r // an IPv4 rule (or family-less)
	}
	if r.Proto == config.ProtoICMP {
		r.Proto = config.ProtoICMPv6
		if r.HasICMPType {
			r.ICMPType = []uint8{1, 2, 128, 129, 135, 255, uint8(g.r.IntN(256))}[g.r.IntN(7)]
		}
	}
	r.Source, r.Destination = nil, nil
	for _, l := range []*[]netip.Prefix{&r.Source, &r.Destination} {
		if g.r.IntN(3) != 0 {
			for range 1 + g.r.IntN(3) {
				*l = append(*l, g.prefix6())
			}
		}
	}
	return r
}

func (g *gen6) key6(f *config.Filter) Key6 {
	k := Key6{Src: g.addr6(), Dst: g.addr6(), SPort: g.port(), DPort: g.port(), HasPorts: g.r.IntN(10) != 0}
	k.ICMPType = []uint8{1, 2, 128, 129, 135, 255, uint8(g.r.IntN(256))}[g.r.IntN(7)]
	k.Proto = []uint8{6, 17, 58, 1, 47, 0}[g.r.IntN(6)]
	if len(f.Rules) > 0 && g.r.IntN(2) == 0 {
		r := &f.Rules[g.r.IntN(len(f.Rules))]
		inside := func(ps []netip.Prefix, a [16]byte) [16]byte {
			if len(ps) == 0 || !ps[0].Addr().Is6() {
				return a
			}
			p := ps[g.r.IntN(len(ps))]
			m := mask6(p.Bits())
			pa, x := split2(p.Addr().As16()), split2(a)
			return join2([2]uint64{pa[0]&m[0] | x[0]&^m[0], pa[1]&m[1] | x[1]&^m[1]})
		}
		k.Src, k.Dst = inside(r.Source, k.Src), inside(r.Destination, k.Dst)
		switch r.Proto {
		case config.ProtoTCP:
			k.Proto = 6
		case config.ProtoUDP:
			k.Proto = 17
		case config.ProtoICMPv6:
			k.Proto = 58
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

// TestAgainstNaive6 compares Classify6 with the first-match reference on
// random rulesets (plain and port-range heavy) and packets near their edges.
func TestAgainstNaive6(t *testing.T) {
	for seed := range uint64(12) {
		for _, ranged := range []bool{false, true} {
			g := newGen6(seed, ranged)
			var f config.Filter
			f.Name, f.Default = "f", config.FilterDrop
			for range 1 + g.r.IntN(120) {
				f.Rules = append(f.Rules, g.rule6())
			}
			s, err := Compile([]config.Filter{f})
			if err != nil {
				t.Fatal(err)
			}
			rs := s.Ruleset(0)
			for range 4000 {
				k := g.key6(&f)
				if got, want := rs.Classify6(k), naive6(&f, k); got != want {
					t.Fatalf("seed %d ranged %v: %+v: Classify6 %+v, naive6 %+v (rule %+v)", seed, ranged, k, got, want, ruleAt(&f, want.Rule))
				}
			}
			// the IPv4 side of the same ruleset
			for range 1000 {
				k := g.key(&f)
				if got, want := rs.Classify(k), naive(&f, k); got != want {
					t.Fatalf("seed %d: IPv4 %+v: Classify %+v, naive %+v", seed, k, got, want)
				}
			}
		}
	}
}

func TestZeroAlloc6(t *testing.T) {
	g := newGen6(5, false)
	var f config.Filter
	f.Name, f.Default = "f", config.FilterAccept
	for range 200 {
		f.Rules = append(f.Rules, g.rule6())
	}
	rs := mustCompile(t, f).Ruleset(0)
	keys := make([]Key6, 256)
	for i := range keys {
		keys[i] = g.key6(&f)
	}
	i, hits := 0, 0
	if n := testing.AllocsPerRun(1000, func() {
		if rs.Classify6(keys[i%len(keys)]).Rule != Default {
			hits++
		}
		i++
	}); n != 0 {
		t.Fatalf("Classify6 allocates %v", n)
	}
	if hits == 0 {
		t.Fatal("no key matched a rule")
	}
}

// parseFilters parses rules into one ruleset "f" of a minimal configuration.
func parseFilters(t *testing.T, rules string) []config.Filter {
	t.Helper()
	c, err := config.Parse("t.toml", []byte(`[router]
name = "r"
[[port]]
name = "p1"
driver = "pipe"
[[network]]
name = "n1"
links = ["p1"]
addresses = ["192.0.2.1/24"]
filter_in = "f"

[[filter]]
name = "f"
default = "drop"

`+rules))
	if err != nil {
		t.Fatal(err)
	}
	return c.Filters
}
