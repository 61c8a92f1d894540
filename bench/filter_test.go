package main

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"vrouter/config"
)

func TestFilterRuleset(t *testing.T) {
	for _, n := range []int{20, 1000, 10000} {
		rs := genRuleset(n)
		if len(rs.Rules) != n {
			t.Fatalf("%d rules generated, want %d", len(rs.Rules), n)
		}
		if want := n - n/10 - 1; rs.Bench != want {
			t.Errorf("n=%d: the benchmark's rule is %d, want %d", n, rs.Bench, want)
		}
		p := benchPacket()
		if i := rs.firstMatch(p); i != rs.Bench || rs.Rules[i].Action != "accept" {
			t.Errorf("n=%d: the benchmark's flows match rule %d first, want %d", n, i, rs.Bench)
		}
		pol, err := rs.nft()
		if err != nil {
			t.Fatal(err)
		}
		if !pol.accepts(p) || pol.setOf(p) != "src_svc" {
			t.Errorf("n=%d: nftables: accepts %v in @%s", n, pol.accepts(p), pol.setOf(p))
		}
	}
	// Deterministic: the same rules every run.
	if a, b := genRuleset(1000).toml(), genRuleset(1000).toml(); a != b {
		t.Error("two generations differ")
	}
}

// The nftables form decides like vrouter's first match, over random first
// packets near and far from the rules.
func TestFilterNftEquivalent(t *testing.T) {
	rs := genRuleset(1000)
	pol, err := rs.nft()
	if err != nil {
		t.Fatal(err)
	}
	var addrs []netip.Addr
	var ports []uint16
	for _, r := range rs.Rules {
		for _, ps := range [][]netip.Prefix{r.Src, r.Dst} {
			for _, p := range ps {
				addrs = append(addrs, p.Addr(), p.Addr().Next(), lastAddr(p))
			}
		}
		for _, pr := range r.DPort {
			ports = append(ports, pr.Lo, pr.Hi, pr.Lo-1, pr.Hi+1)
		}
	}
	addrs = append(addrs, netip.MustParseAddr(clientIP), netip.MustParseAddr(serverIP), netip.MustParseAddr("10.10.9.7"))
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() netip.Addr {
		if rng.IntN(8) == 0 {
			return netip.AddrFrom4([4]byte{byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		}
		return addrs[rng.IntN(len(addrs))]
	}
	inside := func(ps []netip.Prefix) netip.Addr {
		if len(ps) == 0 || rng.IntN(10) == 0 {
			return pick()
		}
		p := ps[rng.IntN(len(ps))]
		if rng.IntN(2) == 0 {
			return lastAddr(p)
		}
		return p.Addr()
	}
	accepted := 0
	for range 50000 {
		p := pkt{Src: pick(), Dst: pick(), Proto: []string{"tcp", "udp", "icmp"}[rng.IntN(3)], DPort: ports[rng.IntN(len(ports))], ICMPType: -1}
		if rng.IntN(2) == 0 { // near a rule: in its prefixes, one of its ports
			r := &rs.Rules[rng.IntN(len(rs.Rules))]
			p.Src, p.Dst = inside(r.Src), inside(r.Dst)
			if rng.IntN(10) != 0 {
				p.Proto = r.Proto
			}
			if len(r.DPort) > 0 && rng.IntN(10) != 0 {
				pr := r.DPort[rng.IntN(len(r.DPort))]
				p.DPort = pr.Lo + uint16(rng.IntN(int(pr.Hi-pr.Lo)+1))
			}
		}
		if rng.IntN(8) == 0 {
			p.DPort = uint16(rng.IntN(65536))
		}
		if p.Proto == "icmp" {
			p.ICMPType, p.DPort = rng.IntN(12), 0
		}
		want := rs.accepts(p)
		if got := pol.accepts(p); got != want {
			t.Fatalf("%+v: first match (rule %d) accepts %v, the nftables sets %v", p, rs.firstMatch(p)+1, want, got)
		}
		if want {
			accepted++
		}
	}
	if accepted < 10000 {
		t.Errorf("only %d of 50000 random packets accepted: the test is not near the rules", accepted)
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(a)
}

// No two elements of a set overlap (the kernel's interval sets for
// concatenations refuse that) and hash keys are exact.
func TestFilterNftSetsDisjoint(t *testing.T) {
	pol, err := genRuleset(1000).nft()
	if err != nil {
		t.Fatal(err)
	}
	overlaps := func(a, b netip.Prefix) bool { return a.Overlaps(b) }
	for _, s := range pol.Sets {
		for i := range s.Elems {
			a := &s.Elems[i]
			if !s.Interval && (a.Port.Lo != a.Port.Hi || a.Dst.Bits() != 32) {
				t.Errorf("@%s: %+v is not an exact key", s.Name, a)
			}
			for j := i + 1; j < len(s.Elems); j++ {
				b := &s.Elems[j]
				if a.Proto != b.Proto {
					continue
				}
				if has(s, "saddr") && !overlaps(a.Src, b.Src) || has(s, "daddr") && !overlaps(a.Dst, b.Dst) ||
					has(s, "dport") && (a.Port.Hi < b.Port.Lo || b.Port.Hi < a.Port.Lo) {
					continue
				}
				t.Errorf("@%s: %+v and %+v overlap", s.Name, *a, *b)
			}
		}
	}
}

func has(s *nftSet, f string) bool {
	for _, x := range s.Fields {
		if x == f {
			return true
		}
	}
	return false
}

// vrouter's configuration with the filter parses, the ruleset on the
// client network.
func TestFilterConfig(t *testing.T) {
	rs := genRuleset(1000)
	tp := &topo{driver: "afpacket", rules: rs}
	for _, on := range []bool{false, true} {
		c, err := config.Parse("bench.toml", []byte(tp.config("/tmp/x.sock", on)))
		if err != nil {
			t.Fatalf("filter %v: %v", on, err)
		}
		var in string
		for _, n := range c.Networks {
			if n.Name == "inside" {
				in = n.FilterIn
			} else if n.FilterIn != "" || n.FilterOut != "" {
				t.Errorf("network %s filtered", n.Name)
			}
		}
		if !on {
			if in != "" || len(c.Filters) != 0 {
				t.Errorf("no filter: filter_in %q, %d rulesets", in, len(c.Filters))
			}
			continue
		}
		f := c.FilterByName(filterName)
		if in != filterName || f == nil || len(f.Rules) != 1000 || f.Default != config.FilterDrop {
			t.Fatalf("filter_in %q, ruleset %+v", in, f)
		}
		r := f.Rules[rs.Bench]
		if r.Action != config.FilterAccept || r.Proto != "udp" || len(r.Destination) != 1 || r.Destination[0].String() != serverIP+"/32" ||
			len(r.DPort) != 1 || r.DPort[0].Lo != udpPort {
			t.Errorf("rule %d is %+v", rs.Bench+1, r)
		}
	}
}

// The nftables file loads (in a network namespace of its own, gone when
// the command ends) and lists the counters the benchmark reads.
func TestFilterNftLoads(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	for _, tool := range []string{"nft", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip(tool, " not found")
		}
	}
	rs := genRuleset(1000)
	pol, err := rs.nft()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "filter.nft")
	if err := os.WriteFile(path, []byte(pol.render("r-c")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("unshare", "-n", "sh", "-c", "nft -f "+path+" && nft list chain ip "+filterTable+" "+filterChain).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if p, d, err := nftFilterCounters(string(out), "src_svc"); err != nil || p != 0 || d != 0 {
		t.Fatalf("counters %d %d, %v in\n%s", p, d, err, out)
	}
}

func TestFilterCounterParsers(t *testing.T) {
	nft := `table ip bench_filter {
	chain inside_in {
		ip saddr . ip daddr . meta l4proto . th dport @blocked counter packets 3 bytes 180 drop
		ip saddr 10.10.0.0/16 icmp type echo-request counter packets 9 bytes 756 accept
		ip daddr . meta l4proto . th dport @svc counter packets 0 bytes 0 accept
		ip saddr . ip daddr . meta l4proto . th dport @src_svc counter packets 1234567 bytes 56789 accept
		counter packets 42 bytes 2000 drop
	}
}
`
	p, d, err := nftFilterCounters(nft, "src_svc")
	if err != nil || p != 1234567 || d != 42 {
		t.Fatalf("nft: %d %d %v", p, d, err)
	}
	if _, _, err := nftFilterCounters("table ip bench_filter {\n}\n", "src_svc"); err == nil {
		t.Error("nft: no counters, no error")
	}
	js := `[{"name":"other","rules":[]},{"name":"bench-in","default":"drop","rules":[
	{"rule":1,"hits":5,"packets":5,"bytes":420},
	{"rule":900,"line":5000,"hits":10000,"packets":10000,"bytes":460000}],
	"default_counters":{"hits":7,"packets":7,"bytes":300}}]`
	h, pk, dr, err := vrouterFilterCounters(js, 900)
	if err != nil || h != 10000 || pk != 10000 || dr != 7 {
		t.Fatalf("vrouter: %d %d %d %v", h, pk, dr, err)
	}
	if _, _, _, err := vrouterFilterCounters("unknown command: show filter\n", 900); err == nil {
		t.Error("vrouter: an error message parsed")
	}
	if _, _, _, err := vrouterFilterCounters(js, 901); err == nil || !strings.Contains(err.Error(), "no rule 901") {
		t.Errorf("vrouter: missing rule: %v", err)
	}
}

func TestFilterSport(t *testing.T) {
	seen := map[int]bool{}
	for r := 1; r <= filterSportSlots; r++ {
		lo := filterSport(r)
		if lo < udpSport+udpFlows || lo+udpFlows-1 > 65535 || seen[lo] {
			t.Errorf("round %d: source ports %d..%d", r, lo, lo+udpFlows-1)
		}
		seen[lo] = true
	}
}
