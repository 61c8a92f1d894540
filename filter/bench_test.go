package filter

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"

	"vrouter/config"
	"vrouter/internal/benchtest"
	"vrouter/packet"
)

// cloudstack makes n rules shaped like the firewall of a CloudStack zone:
// per public address (a /32 destination) ssh from an admin /24, http and
// https from anywhere, a web range from a partner /24, a UDP range, ping,
// and for some addresses a single client.
func cloudstack(n int) config.Filter {
	admins := pfx("198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24", "100.64.1.0/24", "100.64.2.0/24")
	f := config.Filter{Name: "cloud", Default: config.FilterDrop}
	add := func(r config.FilterRule) {
		if len(f.Rules) < n {
			f.Rules = append(f.Rules, r)
		}
	}
	pr := func(s string) []config.PortRange {
		r, err := config.ParsePortList(s)
		if err != nil {
			panic(err)
		}
		return r
	}
	for i := 0; len(f.Rules) < n; i++ {
		dst := []netip.Prefix{netip.PrefixFrom(packet.Addr(0xc6120000+uint32(i)), 32)} // 198.18.0.0/15
		add(config.FilterRule{Action: config.FilterAccept, Proto: config.ProtoTCP, Source: admins[i%5 : i%5+1], Destination: dst, DPort: pr("22")})
		add(config.FilterRule{Action: config.FilterAccept, Proto: config.ProtoTCP, Destination: dst, DPort: pr("80,443")})
		if i%2 == 0 {
			add(config.FilterRule{Action: config.FilterAccept, Proto: config.ProtoTCP, Source: admins[(i+1)%5 : (i+1)%5+1], Destination: dst, DPort: pr("8000-8100")})
		}
		if i%3 == 0 {
			add(config.FilterRule{Action: config.FilterAccept, Proto: config.ProtoUDP, Destination: dst, DPort: pr(fmt.Sprintf("%d-%d", 10000+i%50, 10100+i%50))})
		}
		add(config.FilterRule{Action: config.FilterAccept, Proto: config.ProtoICMP, Destination: dst, ICMPType: 8, HasICMPType: true})
		if i%4 == 1 {
			add(config.FilterRule{Action: config.FilterReject, Proto: config.ProtoTCP, Source: pfx(fmt.Sprintf("203.0.113.%d", i%250+1)), Destination: dst})
		}
	}
	return f
}

// benchKeys: "hit" packets start a flow some rule accepts (a random rule,
// a random source inside it, one of its ports); "miss" packets are a scan
// of the public addresses (random source, protocol and port: nearly all
// get the default); "mixed" alternates them.
func benchKeys(f *config.Filter, kind string, n int) []Key {
	r := rand.New(rand.NewPCG(1, 2))
	var ndst uint32
	for _, rule := range f.Rules {
		ndst = max(ndst, packet.U32(rule.Destination[0].Addr())-0xc6120000+1)
	}
	keys := make([]Key, n)
	for i := range keys {
		hit := kind == "hit" || kind == "mixed" && i%2 == 0
		if !hit {
			keys[i] = Key{Src: r.Uint32(), Dst: 0xc6120000 + r.Uint32N(ndst), Proto: []uint8{ProtoTCP, ProtoUDP}[r.IntN(2)],
				SPort: uint16(r.IntN(65536)), DPort: uint16(r.IntN(65536)), HasPorts: true}
			continue
		}
		rule := &f.Rules[r.IntN(len(f.Rules))]
		k := Key{Src: r.Uint32(), Dst: packet.U32(rule.Destination[0].Addr()), SPort: uint16(1024 + r.IntN(60000)), HasPorts: true}
		if len(rule.Source) > 0 {
			p := rule.Source[0]
			m := mask(p.Bits())
			k.Src = packet.U32(p.Addr())&m | k.Src&^m
		}
		switch rule.Proto {
		case config.ProtoTCP:
			k.Proto = ProtoTCP
		case config.ProtoUDP:
			k.Proto = ProtoUDP
		case config.ProtoICMP:
			k.Proto, k.ICMPType = ProtoICMP, rule.ICMPType
		}
		if len(rule.DPort) > 0 {
			pr := rule.DPort[r.IntN(len(rule.DPort))]
			k.DPort = pr.Lo + uint16(r.IntN(int(pr.Hi-pr.Lo)+1))
		}
		keys[i] = k
	}
	return keys
}

var sink int32

// BenchmarkClassify: first-packet classification with 10, 1,000 and 10,000
// rules of the CloudStack shape. The cost depends on the number of shapes
// (tables), which is the same for all three; the 10,000-rule tables no
// longer fit in L1 (see the package documentation for the figures).
func BenchmarkClassify(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		f := cloudstack(n)
		s, err := Compile([]config.Filter{f})
		if err != nil {
			b.Fatal(err)
		}
		rs := s.Ruleset(0)
		in := rs.Info()
		for _, kind := range []string{"mixed", "hit", "miss"} {
			keys := benchKeys(&f, kind, 1<<16)
			b.Run(fmt.Sprintf("rules=%d/%s", n, kind), func(b *testing.B) {
				b.ReportAllocs()
				b.ReportMetric(float64(in.Tables), "tables")
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				var acc int32
				c0 := benchtest.ThreadCPU()
				for i := 0; b.Loop(); i++ {
					acc += rs.Classify(keys[i&(len(keys)-1)]).Rule
				}
				if c := benchtest.ThreadCPU() - c0; c > 0 {
					b.ReportMetric(float64(c)/float64(b.N), "cpu-ns/op")
				}
				sink = acc
			})
		}
	}
}

// BenchmarkClassifyCount adds the per-worker counting the router does
// after each classification, with a Flush per batch of 64.
func BenchmarkClassifyCount(b *testing.B) {
	f := cloudstack(10000)
	s, err := Compile([]config.Filter{f})
	if err != nil {
		b.Fatal(err)
	}
	rs, c := s.Ruleset(0), s.NewCounters()
	keys := benchKeys(&f, "mixed", 1<<16)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Hit(rs, rs.Classify(keys[i&(len(keys)-1)]), 64)
		if i&63 == 63 {
			c.Flush() // the end of a batch of 64
		}
	}
}

// BenchmarkNaive is the first-match scan the classifier replaces, for scale.
func BenchmarkNaive(b *testing.B) {
	for _, n := range []int{10, 1000} {
		f := cloudstack(n)
		keys := benchKeys(&f, "mixed", 1<<12)
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			var acc int32
			for i := 0; b.Loop(); i++ {
				acc += naive(&f, keys[i&(len(keys)-1)]).Rule
			}
			sink = acc
		})
	}
}

// BenchmarkCompile: building the tables at reload, off the data path.
func BenchmarkCompile(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		fs := []config.Filter{cloudstack(n)}
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Compile(fs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The benchmark's packets are what they say: hits match a rule, and the
// 10,000-rule ruleset has no more shapes than the 10-rule one.
func TestBenchmarkShapes(t *testing.T) {
	var tables []int
	for _, n := range []int{10, 1000, 10000} {
		f := cloudstack(n)
		if len(f.Rules) != n {
			t.Fatalf("%d rules, want %d", len(f.Rules), n)
		}
		rs := mustCompile(t, f).Ruleset(0)
		hits, misses := 0, 0
		for _, kind := range []string{"hit", "miss"} {
			for _, k := range benchKeys(&f, kind, 2000) {
				v := rs.Classify(k)
				if v != naive(&f, k) {
					t.Fatalf("%+v: %+v", k, v)
				}
				if kind == "hit" && v.Rule >= 0 {
					hits++
				}
				if kind == "miss" && v.Rule < 0 {
					misses++
				}
			}
		}
		if hits < 1900 || misses < 1900 {
			t.Errorf("%d rules: %d of 2000 hits match, %d of 2000 misses miss", n, hits, misses)
		}
		in := rs.Info()
		tables = append(tables, in.Tables)
		t.Logf("%d rules: %+v", n, in)
	}
	if tables[2] > tables[0]+1 {
		t.Errorf("tables %v: the large ruleset has more shapes", tables)
	}
}
