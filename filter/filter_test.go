package filter

import (
	"net/netip"
	"strings"
	"sync"
	"testing"

	"vrouter/config"
	"vrouter/packet"
)

func ip(s string) uint32 { return packet.U32(netip.MustParseAddr(s)) }

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		if !strings.Contains(s, "/") {
			s += "/32"
		}
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func ports(t *testing.T, s string) []config.PortRange {
	t.Helper()
	r, err := config.ParsePortList(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func tcp(src, dst string, sp, dp uint16) Key {
	return Key{Src: ip(src), Dst: ip(dst), Proto: ProtoTCP, SPort: sp, DPort: dp, HasPorts: true}
}

func udp(src, dst string, sp, dp uint16) Key {
	k := tcp(src, dst, sp, dp)
	k.Proto = ProtoUDP
	return k
}

func icmp(src, dst string, typ uint8) Key {
	return Key{Src: ip(src), Dst: ip(dst), Proto: ProtoICMP, ICMPType: typ, HasPorts: true}
}

func frag(k Key) Key {
	k.HasPorts = false
	return k
}

// Edge cases, each checked against the expected rule and the reference.
func TestEdges(t *testing.T) {
	f := config.Filter{Name: "edges", Default: config.FilterReject, Rules: []config.FilterRule{
		0:  {Action: config.FilterDrop, Proto: config.ProtoTCP, Source: pfx("198.51.100.66"), DPort: ports(t, "0")},
		1:  {Action: config.FilterAccept, Proto: config.ProtoTCP, Destination: pfx("192.0.2.10"), DPort: ports(t, "22,80,443,8000-8100")},
		2:  {Action: config.FilterDrop, Proto: config.ProtoUDP, DPort: ports(t, "65535")},
		3:  {Action: config.FilterAccept, Proto: config.ProtoUDP, Source: pfx("10.0.0.0/8"), SPort: ports(t, "53"), DPort: ports(t, "1024-65535")},
		4:  {Action: config.FilterAccept, Proto: config.ProtoICMP, ICMPType: 8, HasICMPType: true},
		5:  {Action: config.FilterDrop, Proto: config.ProtoICMP, Destination: pfx("192.0.2.99")},
		6:  {Action: config.FilterAccept, Proto: config.ProtoTCP, Destination: pfx("192.0.2.10"), DPort: ports(t, "0-65535")},
		7:  {Action: config.FilterAccept, Proto: config.ProtoTCP, Source: pfx("203.0.113.0/24")},
		8:  {Action: config.FilterDrop, Destination: pfx("192.0.2.200/32", "192.0.2.128/25")},
		9:  {Action: config.FilterAccept, Proto: config.ProtoAny, Source: pfx("0.0.0.0/0"), Destination: pfx("255.255.255.255")},
		10: {Action: config.FilterAccept, Proto: config.ProtoUDP, DPort: ports(t, "20-30,25-40,41")},
		11: {Action: config.FilterAccept, Proto: config.ProtoTCP, DPort: ports(t, "8")},
	}}
	tests := []struct {
		name string
		k    Key
		rule int32
	}{
		{"port 0", tcp("198.51.100.66", "192.0.2.10", 1000, 0), 0},
		{"port 0 other source", tcp("198.51.100.67", "192.0.2.10", 1000, 0), 6},
		{"exact port", tcp("198.51.100.1", "192.0.2.10", 1000, 443), 1},
		{"range low end", tcp("198.51.100.1", "192.0.2.10", 1000, 8000), 1},
		{"range high end", tcp("198.51.100.1", "192.0.2.10", 1000, 8100), 1},
		{"below range", tcp("198.51.100.1", "192.0.2.10", 1000, 7999), 6},
		{"above range", tcp("198.51.100.1", "192.0.2.10", 1000, 8101), 6},
		{"other destination /32", tcp("198.51.100.1", "192.0.2.11", 1000, 22), Default},
		{"port 65535", udp("192.0.2.1", "192.0.2.2", 53, 65535), 2},
		{"sport and dport range", udp("10.9.9.9", "192.0.2.2", 53, 1024), 3},
		{"sport mismatch", udp("10.9.9.9", "192.0.2.2", 54, 1024), Default},
		{"dport below range", udp("10.9.9.9", "192.0.2.2", 53, 1023), Default},
		{"source outside /8", udp("11.0.0.1", "192.0.2.2", 53, 2000), Default},
		{"echo request", icmp("198.51.100.1", "192.0.2.99", 8), 4},
		{"echo reply to .99", icmp("198.51.100.1", "192.0.2.99", 0), 5},
		{"icmp fragment: no type, type rule skipped", frag(icmp("198.51.100.1", "192.0.2.99", 8)), 5},
		{"icmp elsewhere", icmp("198.51.100.1", "192.0.2.98", 3), Default},
		{"tcp 0-65535 needs ports", frag(tcp("198.51.100.1", "192.0.2.10", 1, 2)), Default},
		{"tcp 0-65535", tcp("198.51.100.1", "192.0.2.10", 1, 2), 6},
		{"tcp rule without ports matches a fragment", frag(tcp("203.0.113.9", "192.0.2.10", 0, 0)), 7},
		{"any proto /25", Key{Src: ip("1.2.3.4"), Dst: ip("192.0.2.129"), Proto: 47}, 8},
		{"any proto /32 inside /25", udp("1.2.3.4", "192.0.2.200", 1, 1), 8},
		{"just outside /25", Key{Src: ip("1.2.3.4"), Dst: ip("192.0.2.127"), Proto: 47}, Default},
		{"/0 source, broadcast", Key{Src: ip("0.0.0.0"), Dst: ip("255.255.255.255"), Proto: 0}, 9},
		{"merged list", udp("1.1.1.1", "2.2.2.2", 1, 40), 10},
		{"merged list single", udp("1.1.1.1", "2.2.2.2", 1, 41), 10},
		{"merged list past end", udp("1.1.1.1", "2.2.2.2", 1, 42), Default},
		{"tcp dport 8 is not icmp type 8", Key{Src: ip("1.1.1.1"), Dst: ip("2.2.2.2"), Proto: ProtoTCP, DPort: 0, ICMPType: 8, HasPorts: true}, Default},
		{"icmp type 8 is not tcp dport 8", icmp("1.1.1.1", "2.2.2.2", 8), 4},
		{"tcp dport 8", tcp("1.1.1.1", "2.2.2.2", 0, 8), 11},
	}
	rs := mustCompile(t, f).Ruleset(0)
	for _, tt := range tests {
		v := rs.Classify(tt.k)
		want := Verdict{Rule: tt.rule, Action: Reject}
		if tt.rule >= 0 {
			want.Action, _ = parseAction(f.Rules[tt.rule].Action)
		}
		if v != want {
			t.Errorf("%s: %+v: got %+v, want %+v", tt.name, tt.k, v, want)
		}
		if ref := naive(&f, tt.k); ref != want {
			t.Errorf("%s: reference gives %+v, want %+v", tt.name, ref, want)
		}
	}
}

// An empty ruleset gives its default; rule order decides, not specificity.
func TestDefaultAndOrder(t *testing.T) {
	for _, d := range []struct {
		c config.FilterAction
		a Action
	}{{config.FilterAccept, Accept}, {config.FilterDrop, Drop}, {config.FilterReject, Reject}} {
		rs := mustCompile(t, config.Filter{Name: "e", Default: d.c}).Ruleset(0)
		if v := rs.Classify(tcp("1.2.3.4", "5.6.7.8", 1, 2)); v != (Verdict{Rule: Default, Action: d.a}) {
			t.Errorf("default %s: %+v", d.c, v)
		}
		if rs.Info().Tables != 0 {
			t.Errorf("empty ruleset has tables: %+v", rs.Info())
		}
	}
	f := config.Filter{Name: "o", Default: config.FilterAccept, Rules: []config.FilterRule{
		{Action: config.FilterDrop, Proto: config.ProtoAny, Source: pfx("10.0.0.0/8")},
		{Action: config.FilterAccept, Proto: config.ProtoTCP, Source: pfx("10.1.2.3"), DPort: ports(t, "22")},
		{Action: config.FilterReject, Proto: config.ProtoAny},
	}}
	rs := mustCompile(t, f).Ruleset(0)
	if v := rs.Classify(tcp("10.1.2.3", "192.0.2.1", 999, 22)); v != (Verdict{0, Drop}) {
		t.Errorf("earlier broad rule must win: %+v", v)
	}
	if v := rs.Classify(tcp("11.1.2.3", "192.0.2.1", 999, 22)); v != (Verdict{2, Reject}) {
		t.Errorf("catch-all: %+v", v)
	}
	if rs.Action(0) != Drop || rs.Action(Default) != Accept || rs.Len() != 3 || rs.Name() != "o" || rs.DefaultAction() != Accept {
		t.Errorf("accessors")
	}
}

func TestSet(t *testing.T) {
	s := mustCompile(t,
		config.Filter{Name: "a", Default: config.FilterDrop, Rules: []config.FilterRule{{Action: config.FilterAccept}}},
		config.Filter{Name: "b", Default: config.FilterAccept})
	if s.Len() != 2 || s.Lookup("a") != s.Ruleset(0) || s.Lookup("b").Index() != 1 || s.Lookup("c") != nil || s.Ruleset(2) != nil || s.Ruleset(-1) != nil {
		t.Errorf("set accessors")
	}
	for _, a := range []Action{Accept, Drop, Reject, 9} {
		if a.String() == "" {
			t.Errorf("no name for %d", a)
		}
	}
}

// The compiled ruleset keeps its own copy of the configuration.
func TestCompileCopies(t *testing.T) {
	f := config.Filter{Name: "c", Default: config.FilterDrop, Rules: []config.FilterRule{
		{Action: config.FilterAccept, Proto: config.ProtoTCP, DPort: ports(t, "22"), Source: pfx("10.0.0.0/8")}}}
	rs := mustCompile(t, f).Ruleset(0)
	f.Rules[0].DPort[0].Lo, f.Rules[0].Source[0] = 23, netip.MustParsePrefix("0.0.0.0/0")
	if rs.Config().Rules[0].DPort[0].Lo != 22 || rs.Config().Rules[0].Source[0].Bits() != 8 {
		t.Errorf("config shared with the caller: %+v", rs.Config().Rules[0])
	}
	if v := rs.Classify(tcp("10.0.0.1", "1.1.1.1", 1, 22)); v.Rule != 0 {
		t.Errorf("%+v", v)
	}
}

func TestCompileErrors(t *testing.T) {
	big := make([]netip.Prefix, 1024)
	for i := range big {
		big[i] = netip.PrefixFrom(packet.Addr(uint32(i)<<8), 24)
	}
	tests := []struct {
		name string
		fs   []config.Filter
		want string
	}{
		{"duplicate", []config.Filter{{Name: "a", Default: config.FilterDrop}, {Name: "a", Default: config.FilterDrop}}, `duplicate ruleset name "a"`},
		{"default", []config.Filter{{Name: "a", Default: "deny"}}, `default "deny"`},
		{"action", []config.Filter{{Name: "a", Default: config.FilterDrop, Rules: []config.FilterRule{{Action: "allow"}}}}, `rule 1: action "allow"`},
		{"proto", []config.Filter{{Name: "a", Default: config.FilterDrop, Rules: []config.FilterRule{{Action: config.FilterDrop, Proto: "gre"}}}}, `proto "gre"`},
		{"ports with any", []config.Filter{{Name: "a", Default: config.FilterDrop, Rules: []config.FilterRule{{Action: config.FilterDrop, DPort: []config.PortRange{{Lo: 1, Hi: 1}}}}}}, "ports need proto tcp or udp"},
		{"icmp type with udp", []config.Filter{{Name: "a", Default: config.FilterDrop, Rules: []config.FilterRule{{Action: config.FilterDrop, Proto: config.ProtoUDP, HasICMPType: true}}}}, "icmp_type needs proto icmp"},
		{"ipv6 prefix with icmp", []config.Filter{{Name: "a", Default: config.FilterDrop, Rules: []config.FilterRule{{Action: config.FilterDrop, Proto: config.ProtoICMP, Source: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}}}}}, "mixes IPv4 and IPv6"},
		{"both families", []config.Filter{{Name: "a", Default: config.FilterDrop, Rules: []config.FilterRule{{Action: config.FilterDrop, Source: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("10.0.0.0/8")}}}}}, "mixes IPv4 and IPv6"},
		{"too large", []config.Filter{{Name: "a", Default: config.FilterDrop, Rules: []config.FilterRule{{Action: config.FilterDrop, Source: big, Destination: big, Proto: config.ProtoTCP, DPort: []config.PortRange{{Lo: 1, Hi: 1}, {Lo: 3, Hi: 3}}}}}}, "more than 1048576 entries"},
	}
	for _, tt := range tests {
		_, err := Compile(tt.fs)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
	}
}

// A ruleset from the configuration file, end to end.
func TestFromConfig(t *testing.T) {
	c, err := config.Parse("t.toml", []byte(`[router]
name = "r"
[[port]]
name = "p1"
driver = "pipe"
[[network]]
name = "n1"
links = ["p1"]
addresses = ["192.0.2.1/24"]
filter_out = "guest-ingress"

[[filter]]
name    = "guest-ingress"
default = "drop"

[[filter.rule]]
action      = "accept"
proto       = "tcp"
source      = ["198.51.100.0/24"]
destination = ["10.1.1.5"]
dport       = "22,80,443,8000-8100"

[[filter.rule]]
action = "reject"
proto  = "tcp"
destination = ["10.1.1.5"]

[[filter.rule]]
action = "accept"
proto = "icmp"
icmp_type = "echo-request"
`))
	if err != nil {
		t.Fatal(err)
	}
	s := mustCompile(t, c.Filters...)
	rs := s.Lookup(c.Networks[0].FilterOut)
	for _, tt := range []struct {
		k Key
		v Verdict
	}{
		{tcp("198.51.100.7", "10.1.1.5", 40000, 22), Verdict{0, Accept}},
		{tcp("198.51.100.7", "10.1.1.5", 40000, 8050), Verdict{0, Accept}},
		{tcp("198.51.100.7", "10.1.1.5", 40000, 23), Verdict{1, Reject}},
		{tcp("192.0.2.7", "10.1.1.5", 40000, 22), Verdict{1, Reject}},
		{udp("198.51.100.7", "10.1.1.5", 40000, 22), Verdict{Default, Drop}},
		{icmp("192.0.2.7", "10.1.1.5", 8), Verdict{2, Accept}},
		{icmp("192.0.2.7", "10.1.1.5", 0), Verdict{Default, Drop}},
	} {
		if v := rs.Classify(tt.k); v != tt.v {
			t.Errorf("%+v: got %+v, want %+v", tt.k, v, tt.v)
		}
	}
}

func TestCounters(t *testing.T) {
	s := mustCompile(t,
		config.Filter{Name: "a", Default: config.FilterDrop, Rules: []config.FilterRule{
			{Action: config.FilterAccept, Proto: config.ProtoTCP}, {Action: config.FilterReject, Proto: config.ProtoUDP}}},
		config.Filter{Name: "b", Default: config.FilterAccept, Rules: []config.FilterRule{{Action: config.FilterDrop, Proto: config.ProtoICMP}}})
	a, b := s.Lookup("a"), s.Lookup("b")
	w := []*Counters{s.NewCounters(), s.NewCounters()}
	var wg sync.WaitGroup
	for i := range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := w[i]
			for j := range 1000 {
				c.Hit(a, a.Classify(tcp("1.1.1.1", "2.2.2.2", 1, 2)), 60)
				c.Hit(a, a.Classify(Key{Proto: 47}), 100)
				c.Hit(b, b.Classify(icmp("1.1.1.1", "2.2.2.2", 8)), 84)
				c.Add(a, 0, 3, 3000)
				c.Add(a, 1, 0, 0) // nothing
				if j%10 == 9 {
					c.Flush() // end of a batch
				}
			}
		}()
	}
	// read while they count (the race detector checks the access pattern)
	_ = s.Stats(w)
	wg.Wait()
	other := mustCompile(t, config.Filter{Name: "a", Default: config.FilterDrop})
	oc := other.NewCounters()
	oc.Hit(other.Ruleset(0), Verdict{Rule: Default}, 1)
	oc.Hit(a, Verdict{Rule: 0}, 1) // a ruleset of another Set: ignored
	w[0].Hit(other.Ruleset(0), Verdict{Rule: Default}, 1)
	oc.Flush()
	w[0].Flush()
	var nilc *Counters
	nilc.Hit(a, Verdict{Rule: 0}, 1)
	nilc.Flush()
	w[1].Hit(a, Verdict{Rule: 0}, 1) // not flushed: not in the stats yet
	st := s.Stats(append(w, oc, nil))
	want := []Stats{
		{Name: "a", Default: Drop, Rules: []Count{{2000, 2000 + 6000, 2000*60 + 6000000}, {}}, Other: Count{2000, 2000, 200000}},
		{Name: "b", Default: Accept, Rules: []Count{{2000, 2000, 2000 * 84}}},
	}
	if len(st) != 2 {
		t.Fatalf("%+v", st)
	}
	for i := range want {
		if st[i].Name != want[i].Name || st[i].Default != want[i].Default || st[i].Other != want[i].Other ||
			len(st[i].Rules) != len(want[i].Rules) {
			t.Fatalf("stats %d: %+v, want %+v", i, st[i], want[i])
		}
		for r := range want[i].Rules {
			if st[i].Rules[r] != want[i].Rules[r] {
				t.Errorf("stats %d rule %d: %+v, want %+v", i, r, st[i].Rules[r], want[i].Rules[r])
			}
		}
	}
	if w[0].Set() != s {
		t.Errorf("Set()")
	}
}

// A batch that touches more slots than the pending list holds publishes
// early, without allocating.
func TestCountersManySlots(t *testing.T) {
	f := config.Filter{Name: "m", Default: config.FilterDrop}
	for i := range 600 {
		f.Rules = append(f.Rules, config.FilterRule{Action: config.FilterAccept, Proto: config.ProtoUDP, DPort: []config.PortRange{{Lo: uint16(i), Hi: uint16(i)}}})
	}
	s := mustCompile(t, f)
	rs, c := s.Ruleset(0), s.NewCounters()
	allocs := testing.AllocsPerRun(1, func() {
		for i := range 600 {
			c.Hit(rs, rs.Classify(udp("1.1.1.1", "2.2.2.2", 9, uint16(i))), 10)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations", allocs)
	}
	published := func() (n uint64) {
		for _, r := range s.Stats([]*Counters{c})[0].Rules {
			n += r.Hits
		}
		return n
	}
	// AllocsPerRun ran the function twice (a warm-up and the run).
	if n := published(); n < 2*600-maxTouched || n >= 2*600 {
		t.Errorf("%d hits published before Flush", n)
	}
	c.Flush()
	if n := published(); n != 2*600 {
		t.Errorf("%d hits after Flush", n)
	}
}

func TestZeroAlloc(t *testing.T) {
	g := newGen(3, false)
	f := g.filter(500)
	s := mustCompile(t, f)
	rs := s.Ruleset(0)
	keys := make([]Key, 256)
	for i := range keys {
		keys[i] = g.key(&f)
	}
	gr := newGen(4, true)
	fr := gr.filter(2000)
	rr := mustCompile(t, fr).Ruleset(0)
	c := s.NewCounters()
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		k := keys[i%len(keys)]
		i++
		v := rs.Classify(k)
		c.Hit(rs, v, 64)
		c.Add(rs, v.Rule, 1, 64)
		if i%64 == 0 {
			c.Flush()
		}
		rr.Classify(k)
	}); n != 0 {
		t.Errorf("%v allocations per Classify+count", n)
	}
}
