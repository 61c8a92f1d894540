package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// The filter case (issue 12): the 64-byte UDP load through SNAT with a
// ruleset of N rules (-filter, default 1,000) on the client's network. The
// rules are generated in the shape of a CloudStack guest network's egress
// rules and network ACL: per-destination /32s with port lists, some with
// source prefixes (a VM or a tier), port ranges, destination networks, a few
// drop rules (a quarantined subnet, blocked services) and ping allowed. The
// benchmark's flows (10.10.1.10 -> 203.0.113.10 udp/9) are accepted by a
// rule at 90% of the list (rule 900 of 1,000); no earlier rule matches them,
// and every other rule has destinations of its own, so the order of the
// accept rules does not change what is accepted and the same policy can be
// written as nftables sets.
//
// vrouter gets the rules as [[filter]] "bench-in", default drop, applied
// with filter_in on the client network. The kernel gets the same policy as
// a good nftables user would write it: a forward chain with ct state
// established,related accept first, then a jump for what comes in from the
// client's interface to a chain of set lookups (concatenations; hash sets
// for exact keys, interval sets for prefixes and port ranges), counter drop
// last.

const (
	filterName    = "bench-in"
	filterTable   = "bench_filter"
	filterChain   = "inside_in"
	filterDefault = 1000
)

type portRange struct{ Lo, Hi uint16 }

func (p portRange) String() string {
	if p.Lo == p.Hi {
		return strconv.Itoa(int(p.Lo))
	}
	return fmt.Sprintf("%d-%d", p.Lo, p.Hi)
}

// fRule is one generated rule. Empty Src/Dst/DPort mean any.
type fRule struct {
	Action   string // accept | drop
	Proto    string // tcp | udp | icmp
	Src      []netip.Prefix
	Dst      []netip.Prefix
	DPort    []portRange
	ICMPType int // -1: any
}

// ruleset is the generated ruleset; Bench is the index of the rule that
// accepts the benchmark's flows (0-based).
type ruleset struct {
	Rules []fRule
	Bench int
}

// The benchmark's own flows: the rule that accepts them.
var benchFlowRule = fRule{Action: "accept", Proto: "udp",
	Src: []netip.Prefix{netip.MustParsePrefix("10.10.1.0/24")}, Dst: []netip.Prefix{netip.MustParsePrefix(serverIP + "/32")},
	DPort: []portRange{{udpPort, udpPort}}, ICMPType: -1}

var (
	tcpPorts   = []uint16{22, 80, 443, 3306, 5432, 6379, 8080, 8443, 9200, 27017, 11211, 5672, 9092, 2379, 3389, 21, 110, 143, 993, 995, 587, 389, 636, 1433}
	udpPorts   = []uint16{53, 123, 161, 514, 1194, 500, 4500, 5060, 69, 1812}
	portRanges = []portRange{{8000, 8100}, {30000, 32767}, {6000, 6063}, {49152, 65535}, {2000, 2099}, {9000, 9099}, {4000, 4099}}
	// Services blocked for everyone (drop rules without a destination):
	// ports no accept rule uses.
	blockedTCP = []portRange{{25, 25}, {445, 445}, {135, 139}}
)

// genRuleset generates n rules (n >= 20), deterministic.
func genRuleset(n int) *ruleset {
	rng := rand.New(rand.NewPCG(12, 2026))
	g := &ruleGen{rng: rng}
	rs := &ruleset{Bench: n - n/10 - 1}
	// Rule 1: ping from the guest networks.
	rs.Rules = append(rs.Rules, fRule{Action: "accept", Proto: "icmp", Src: []netip.Prefix{netip.MustParsePrefix("10.10.0.0/16")}, ICMPType: 8})
	// Rules 2..4: blocked services, any destination.
	for _, p := range blockedTCP {
		rs.Rules = append(rs.Rules, fRule{Action: "drop", Proto: "tcp", DPort: []portRange{p}, ICMPType: -1})
	}
	server := []netip.Prefix{netip.MustParsePrefix(serverIP + "/32")}
	for i := len(rs.Rules); i < n; i++ {
		var r fRule
		switch {
		case i == rs.Bench:
			r = benchFlowRule
		// Other rules for the benchmark's server, which the classifier
		// must tell apart from the benchmark's flows.
		case i == n*3/10:
			r = fRule{Action: "accept", Proto: "tcp", Dst: server, DPort: []portRange{{22, 22}, {80, 80}, {443, 443}}}
		case i == n*6/10:
			r = fRule{Action: "accept", Proto: "udp", Src: []netip.Prefix{netip.MustParsePrefix("10.10.2.0/24")}, Dst: server, DPort: []portRange{{53, 53}, {123, 123}}}
		case i == n*8/10:
			r = fRule{Action: "accept", Proto: "tcp", Src: []netip.Prefix{netip.MustParsePrefix("10.10.1.0/24")}, Dst: server, DPort: []portRange{{8000, 8100}}}
		default:
			r = g.rule(i)
		}
		if r.ICMPType == 0 && r.Proto != "icmp" {
			r.ICMPType = -1
		}
		rs.Rules = append(rs.Rules, r)
	}
	return rs
}

type ruleGen struct {
	rng   *rand.Rand
	nDst  int // destinations handed out
	nNet  int
	nHost int
}

// dst is a /32 no other rule has: 198.51.100.0/24, 192.0.2.0/24, then
// 172.16.0.0/14.
func (g *ruleGen) dst() netip.Prefix {
	i := g.nDst
	g.nDst++
	var a [4]byte
	switch {
	case i < 254:
		a = [4]byte{198, 51, 100, byte(i + 1)}
	case i < 508:
		a = [4]byte{192, 0, 2, byte(i - 254 + 1)}
	default:
		j := i - 508
		a = [4]byte{172, byte(16 + j/65024), byte(j % 65024 / 254), byte(j%254 + 1)}
	}
	return netip.PrefixFrom(netip.AddrFrom4(a), 32)
}

// dstNet is a /24 of its own in 172.24.0.0/13.
func (g *ruleGen) dstNet() netip.Prefix {
	j := g.nNet
	g.nNet++
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(24 + j/256), byte(j % 256), 0}), 24)
}

// src is 1..3 disjoint source prefixes: a guest network, VMs (/32s) or
// blocks of a tier (/28s).
func (g *ruleGen) src() []netip.Prefix {
	switch g.rng.IntN(3) {
	case 0:
		nets := []string{"10.10.1.0/24", "10.10.2.0/24", "10.10.0.0/16", "10.10.3.0/24", "10.10.4.0/23"}
		return []netip.Prefix{netip.MustParsePrefix(nets[g.rng.IntN(len(nets))])}
	case 1:
		k := 1 + g.rng.IntN(3)
		var out []netip.Prefix
		for _, h := range g.rng.Perm(230)[:k] {
			out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 10, 1, byte(20 + h)}), 32))
		}
		return out
	default:
		k := 1 + g.rng.IntN(2)
		third := byte(3 + g.rng.IntN(6))
		var out []netip.Prefix
		for _, b := range g.rng.Perm(16)[:k] {
			out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 10, third, byte(16 * b)}), 28))
		}
		return out
	}
}

// ports is k distinct ports of pool.
func (g *ruleGen) ports(pool []uint16, k int) []portRange {
	var out []portRange
	for _, i := range g.rng.Perm(len(pool))[:k] {
		out = append(out, portRange{pool[i], pool[i]})
	}
	return out
}

func (g *ruleGen) rule(i int) fRule {
	tcp := func(k int) []portRange { return g.ports(tcpPorts, k) }
	switch i % 20 {
	case 0, 1, 2, 3, 4, 5, 6, 7: // firewall rule of a public IP / egress to a service
		return fRule{Action: "accept", Proto: "tcp", Dst: []netip.Prefix{g.dst()}, DPort: tcp(1 + g.rng.IntN(3))}
	case 8, 9: // DNS, NTP, syslog... to a server
		return fRule{Action: "accept", Proto: "udp", Dst: []netip.Prefix{g.dst()}, DPort: g.ports(udpPorts, 1+g.rng.IntN(2))}
	case 10, 11, 12, 13: // from some VMs or a tier only
		proto, pool := "tcp", tcpPorts
		if i%20 == 13 {
			proto, pool = "udp", udpPorts
		}
		return fRule{Action: "accept", Proto: proto, Src: g.src(), Dst: []netip.Prefix{g.dst()}, DPort: g.ports(pool, 1+g.rng.IntN(2))}
	case 14, 15: // a port range, with a port or two beside it
		d := g.dst()
		ps := []portRange{portRanges[g.rng.IntN(len(portRanges))]}
		if g.rng.IntN(2) == 0 {
			if p := tcp(1)[0]; p.Lo < ps[0].Lo || p.Lo > ps[0].Hi {
				ps = append(ps, p)
			}
		}
		return fRule{Action: "accept", Proto: "tcp", Dst: []netip.Prefix{d}, DPort: ps}
	case 16: // a pool of servers behind one service
		var ds []netip.Prefix
		for range 2 + g.rng.IntN(3) {
			ds = append(ds, g.dst())
		}
		return fRule{Action: "accept", Proto: "tcp", Dst: ds, DPort: []portRange{{443, 443}}}
	case 17: // everything of one protocol to a network
		proto := "tcp"
		if g.rng.IntN(3) == 0 {
			proto = "udp"
		}
		return fRule{Action: "accept", Proto: proto, Dst: []netip.Prefix{g.dstNet()}}
	case 18: // a quarantined subnet must not reach a server
		return fRule{Action: "drop", Proto: "tcp", Src: []netip.Prefix{netip.MustParsePrefix("10.10.9.0/24")}, Dst: []netip.Prefix{g.dst()}, DPort: tcp(1 + g.rng.IntN(3))}
	default: // a denied service on one server (network ACL deny)
		return fRule{Action: "drop", Proto: "udp", Dst: []netip.Prefix{g.dst()}, DPort: g.ports(udpPorts, 1)}
	}
}

// pkt is a first packet to classify.
type pkt struct {
	Src, Dst netip.Addr
	Proto    string
	DPort    uint16
	ICMPType int
}

func prefixesContain(ps []netip.Prefix, a netip.Addr) bool {
	if len(ps) == 0 {
		return true
	}
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (r *fRule) matches(p pkt) bool {
	if r.Proto != p.Proto || !prefixesContain(r.Src, p.Src) || !prefixesContain(r.Dst, p.Dst) {
		return false
	}
	if p.Proto == "icmp" {
		return r.ICMPType < 0 || r.ICMPType == p.ICMPType
	}
	if len(r.DPort) == 0 {
		return true
	}
	for _, pr := range r.DPort {
		if p.DPort >= pr.Lo && p.DPort <= pr.Hi {
			return true
		}
	}
	return false
}

// firstMatch is the index of the first rule p matches (-1: the default).
func (rs *ruleset) firstMatch(p pkt) int {
	for i := range rs.Rules {
		if rs.Rules[i].matches(p) {
			return i
		}
	}
	return -1
}

// accepts is what vrouter's first-match semantics decide (default drop).
func (rs *ruleset) accepts(p pkt) bool {
	i := rs.firstMatch(p)
	return i >= 0 && rs.Rules[i].Action == "accept"
}

// toml is the ruleset as [[filter]] and [[filter.rule]] tables.
func (rs *ruleset) toml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n# %d rules generated by the benchmark (bench/filter.go); the benchmark's flows: rule %d\n", len(rs.Rules), rs.Bench+1)
	fmt.Fprintf(&b, "[[filter]]\nname    = %q\ndefault = \"drop\"\n", filterName)
	quoted := func(ps []netip.Prefix) string {
		var s []string
		for _, p := range ps {
			s = append(s, strconv.Quote(prefixString(p)))
		}
		return "[" + strings.Join(s, ", ") + "]"
	}
	for _, r := range rs.Rules {
		fmt.Fprintf(&b, "\n[[filter.rule]]\naction = %q\nproto  = %q\n", r.Action, r.Proto)
		if len(r.Src) > 0 {
			fmt.Fprintf(&b, "source = %s\n", quoted(r.Src))
		}
		if len(r.Dst) > 0 {
			fmt.Fprintf(&b, "destination = %s\n", quoted(r.Dst))
		}
		if len(r.DPort) > 0 {
			fmt.Fprintf(&b, "dport  = %q\n", portList(r.DPort))
		}
		if r.Proto == "icmp" && r.ICMPType >= 0 {
			fmt.Fprintf(&b, "icmp_type = %d\n", r.ICMPType)
		}
	}
	return b.String()
}

func prefixString(p netip.Prefix) string {
	if p.Bits() == 32 {
		return p.Addr().String()
	}
	return p.String()
}

func portList(ps []portRange) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}

// The nftables form: sets keyed by the fields a shape of rule uses.
type nftElem struct {
	Src, Dst netip.Prefix // the fields the set has
	Proto    string
	Port     portRange
}

type nftSet struct {
	Name     string
	Fields   []string // of "saddr", "daddr", "proto", "dport"
	Interval bool
	Verdict  string // accept | drop
	Elems    []nftElem
}

// nftPolicy is the chain of set lookups (in this order) plus the rules
// kept as rules (ping), before the final drop.
type nftPolicy struct {
	Sets  []*nftSet
	Pings []fRule // icmp rules, after the drop set and before the accept sets
}

var (
	any4 = netip.MustParsePrefix("0.0.0.0/0")
)

// nft translates the ruleset into sets: drops (one interval set, checked
// first; generated drop rules overlap no accept rule, so their place in
// the list does not matter), exact service keys (daddr . proto . dport,
// a hash), port ranges (interval), destination networks (daddr . proto,
// interval) and rules with a source (saddr . daddr . proto . dport,
// interval).
func (rs *ruleset) nft() (*nftPolicy, error) {
	blocked := &nftSet{Name: "blocked", Fields: []string{"saddr", "daddr", "proto", "dport"}, Interval: true, Verdict: "drop"}
	svc := &nftSet{Name: "svc", Fields: []string{"daddr", "proto", "dport"}, Verdict: "accept"}
	svcRange := &nftSet{Name: "svc_range", Fields: []string{"daddr", "proto", "dport"}, Interval: true, Verdict: "accept"}
	dstNet := &nftSet{Name: "dst_net", Fields: []string{"daddr", "proto"}, Interval: true, Verdict: "accept"}
	srcSvc := &nftSet{Name: "src_svc", Fields: []string{"saddr", "daddr", "proto", "dport"}, Interval: true, Verdict: "accept"}
	pol := &nftPolicy{Sets: []*nftSet{blocked, svc, svcRange, dstNet, srcSvc}}
	orAny := func(ps []netip.Prefix) []netip.Prefix {
		if len(ps) == 0 {
			return []netip.Prefix{any4}
		}
		return ps
	}
	for i, r := range rs.Rules {
		switch {
		case r.Proto == "icmp":
			if r.Action != "accept" || len(r.Dst) > 0 {
				return nil, fmt.Errorf("rule %d: icmp rules are accept rules without destination", i+1)
			}
			pol.Pings = append(pol.Pings, r)
		case r.Action == "drop":
			if len(r.DPort) == 0 {
				return nil, fmt.Errorf("rule %d: a drop rule needs ports", i+1)
			}
			for _, s := range orAny(r.Src) {
				for _, d := range orAny(r.Dst) {
					for _, p := range r.DPort {
						blocked.Elems = append(blocked.Elems, nftElem{Src: s, Dst: d, Proto: r.Proto, Port: p})
					}
				}
			}
		case len(r.Src) > 0:
			if len(r.DPort) == 0 || len(r.Dst) == 0 {
				return nil, fmt.Errorf("rule %d: a rule with a source needs destinations and ports", i+1)
			}
			for _, s := range r.Src {
				for _, d := range r.Dst {
					for _, p := range r.DPort {
						srcSvc.Elems = append(srcSvc.Elems, nftElem{Src: s, Dst: d, Proto: r.Proto, Port: p})
					}
				}
			}
		case len(r.DPort) == 0:
			if len(r.Dst) == 0 {
				return nil, fmt.Errorf("rule %d: an accept rule needs a destination", i+1)
			}
			for _, d := range r.Dst {
				dstNet.Elems = append(dstNet.Elems, nftElem{Dst: d, Proto: r.Proto})
			}
		default:
			if len(r.Dst) == 0 {
				return nil, fmt.Errorf("rule %d: an accept rule needs a destination", i+1)
			}
			for _, d := range r.Dst {
				if d.Bits() != 32 {
					return nil, fmt.Errorf("rule %d: service rules have /32 destinations", i+1)
				}
				for _, p := range r.DPort {
					if p.Lo == p.Hi {
						svc.Elems = append(svc.Elems, nftElem{Dst: d, Proto: r.Proto, Port: p})
					} else {
						svcRange.Elems = append(svcRange.Elems, nftElem{Dst: d, Proto: r.Proto, Port: p})
					}
				}
			}
		}
	}
	return pol, nil
}

func (e *nftElem) matches(s *nftSet, p pkt) bool {
	if p.Proto != e.Proto {
		return false
	}
	for _, f := range s.Fields {
		switch f {
		case "saddr":
			if !e.Src.Contains(p.Src) {
				return false
			}
		case "daddr":
			if !e.Dst.Contains(p.Dst) {
				return false
			}
		case "dport":
			if p.Proto == "icmp" || p.DPort < e.Port.Lo || p.DPort > e.Port.Hi {
				return false
			}
		}
	}
	return true
}

// accepts is what the nftables chain decides for a new flow from the
// client (the model of the rendered chain: drop set, ping rules, accept
// sets, drop).
func (pol *nftPolicy) accepts(p pkt) bool {
	lookup := func(s *nftSet) bool {
		for i := range s.Elems {
			if s.Elems[i].matches(s, p) {
				return true
			}
		}
		return false
	}
	if lookup(pol.Sets[0]) {
		return false
	}
	for _, r := range pol.Pings {
		if r.matches(p) {
			return true
		}
	}
	for _, s := range pol.Sets[1:] {
		if lookup(s) {
			return true
		}
	}
	return false
}

var nftFieldType = map[string]string{"saddr": "ipv4_addr", "daddr": "ipv4_addr", "proto": "inet_proto", "dport": "inet_service"}
var nftFieldExpr = map[string]string{"saddr": "ip saddr", "daddr": "ip daddr", "proto": "meta l4proto", "dport": "th dport"}

// render is the nft -f file: table ip bench_filter with the sets, the
// forward chain and the client's chain. clientIf is the router's
// interface to the client network.
func (pol *nftPolicy) render(clientIf string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n", filterTable)
	for _, s := range pol.Sets {
		if len(s.Elems) == 0 {
			continue
		}
		var types []string
		for _, f := range s.Fields {
			types = append(types, nftFieldType[f])
		}
		fmt.Fprintf(&b, "\tset %s {\n\t\ttype %s\n", s.Name, strings.Join(types, " . "))
		if s.Interval {
			b.WriteString("\t\tflags interval\n")
		}
		b.WriteString("\t\telements = {\n")
		for i, e := range s.Elems {
			var parts []string
			for _, f := range s.Fields {
				switch f {
				case "saddr":
					parts = append(parts, prefixString(e.Src))
				case "daddr":
					parts = append(parts, prefixString(e.Dst))
				case "proto":
					parts = append(parts, e.Proto)
				case "dport":
					parts = append(parts, e.Port.String())
				}
			}
			sep := ","
			if i == len(s.Elems)-1 {
				sep = ""
			}
			fmt.Fprintf(&b, "\t\t\t%s%s\n", strings.Join(parts, " . "), sep)
		}
		b.WriteString("\t\t}\n\t}\n")
	}
	fmt.Fprintf(&b, "\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n")
	b.WriteString("\t\tct state established,related accept\n\t\tct state invalid drop\n")
	fmt.Fprintf(&b, "\t\tiifname %q jump %s\n\t}\n", clientIf, filterChain)
	fmt.Fprintf(&b, "\tchain %s {\n", filterChain)
	setRule := func(s *nftSet) {
		if len(s.Elems) == 0 {
			return
		}
		var ex []string
		for _, f := range s.Fields {
			ex = append(ex, nftFieldExpr[f])
		}
		fmt.Fprintf(&b, "\t\t%s @%s counter %s\n", strings.Join(ex, " . "), s.Name, s.Verdict)
	}
	setRule(pol.Sets[0])
	for _, r := range pol.Pings {
		var m []string
		if len(r.Src) == 1 {
			m = append(m, "ip saddr "+prefixString(r.Src[0]))
		} else if len(r.Src) > 1 {
			var s []string
			for _, p := range r.Src {
				s = append(s, prefixString(p))
			}
			m = append(m, "ip saddr { "+strings.Join(s, ", ")+" }")
		}
		if r.ICMPType >= 0 {
			m = append(m, fmt.Sprintf("icmp type %d", r.ICMPType))
		} else {
			m = append(m, "meta l4proto icmp")
		}
		fmt.Fprintf(&b, "\t\t%s counter accept\n", strings.Join(m, " "))
	}
	for _, s := range pol.Sets[1:] {
		setRule(s)
	}
	b.WriteString("\t\tcounter drop\n\t}\n}\n")
	return b.String()
}

// summary describes the policy in one line.
func (pol *nftPolicy) summary() string {
	var s []string
	for _, set := range pol.Sets {
		kind := "hash"
		if set.Interval {
			kind = "interval"
		}
		s = append(s, fmt.Sprintf("%s %d (%s)", set.Name, len(set.Elems), kind))
	}
	return strings.Join(s, ", ")
}

// filterCheck is what the router says its filter did during one filtered
// load: proof that the ruleset was in the data path.
type filterCheck struct {
	// Active: the router reported the ruleset's counters and the rule of
	// the benchmark's flows counted them.
	Active bool `json:"active"`
	// vrouter: hits = first packets classified by the benchmark's rule;
	// kernel: packets through the set rule holding the benchmark's key
	// (unreplied UDP stays ct state new, so every packet).
	RuleHits    uint64 `json:"rule_hits"`
	RulePackets uint64 `json:"rule_packets"`
	Dropped     uint64 `json:"default_dropped"` // the default / final drop
	Note        string `json:"note,omitempty"`
}

// vrouterFilterCounters parses `show filter -j bench-in`: the counters of
// rule (1-based) and of the default.
func vrouterFilterCounters(out string, rule int) (hits, packets, dropped uint64, err error) {
	var fs []struct {
		Name  string `json:"name"`
		Rules []struct {
			Rule    int    `json:"rule"`
			Hits    uint64 `json:"hits"`
			Packets uint64 `json:"packets"`
		} `json:"rules"`
		Default struct {
			Packets uint64 `json:"packets"`
		} `json:"default_counters"`
	}
	if err = json.Unmarshal([]byte(out), &fs); err != nil {
		return 0, 0, 0, fmt.Errorf("show filter -j: %v: %s", err, firstLine(out))
	}
	for _, f := range fs {
		if f.Name != filterName {
			continue
		}
		for _, r := range f.Rules {
			if r.Rule == rule {
				return r.Hits, r.Packets, f.Default.Packets, nil
			}
		}
		return 0, 0, 0, fmt.Errorf("show filter: %s has no rule %d", filterName, rule)
	}
	return 0, 0, 0, fmt.Errorf("show filter: no ruleset %s", filterName)
}

var nftRuleCounterRe = regexp.MustCompile(`(?m)^\s*(.*?)\s*counter packets (\d+) bytes \d+ (accept|drop)`)

// nftFilterCounters parses `nft list chain ip bench_filter inside_in`:
// the packets counted by the rule of set, and by the final drop.
func nftFilterCounters(out, set string) (packets, dropped uint64, err error) {
	found, foundDrop := false, false
	for _, m := range nftRuleCounterRe.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseUint(m[2], 10, 64)
		switch {
		case strings.Contains(m[1], "@"+set):
			packets, found = v, true
		case m[1] == "" && m[3] == "drop":
			dropped, foundDrop = v, true
		}
	}
	if !found || !foundDrop {
		return 0, 0, fmt.Errorf("nft list chain: no counter for @%s or the final drop: %q", set, firstLine(out))
	}
	return packets, dropped, nil
}

// benchPacket is the first packet of one of the benchmark's flows as the
// router's filter sees it (before SNAT).
func benchPacket() pkt {
	return pkt{Src: netip.MustParseAddr(clientIP), Dst: netip.MustParseAddr(serverIP), Proto: "udp", DPort: udpPort, ICMPType: -1}
}

// setOf is the name of the first set in the chain whose lookup p hits
// ("" if none).
func (pol *nftPolicy) setOf(p pkt) string {
	for _, s := range pol.Sets {
		for i := range s.Elems {
			if s.Elems[i].matches(s, p) {
				return s.Name
			}
		}
	}
	return ""
}

// shapes counts the rules by shape, in words.
func (rs *ruleset) shapes() string {
	var acc, drop, src, rng, nets, ping, ports int
	for _, r := range rs.Rules {
		switch {
		case r.Proto == "icmp":
			ping++
		case r.Action == "drop":
			drop++
		case len(r.Src) > 0:
			src++
		case len(r.DPort) == 0:
			nets++
		default:
			hasRange := false
			for _, p := range r.DPort {
				hasRange = hasRange || p.Lo != p.Hi
			}
			if hasRange {
				rng++
			} else {
				ports++
			}
		}
		if r.Action == "accept" {
			acc++
		}
	}
	return fmt.Sprintf("%d accept, %d drop, default drop: %d destination /32s with port lists, %d with port ranges, %d with source prefixes, %d destination networks, %d drop, %d ping",
		acc, len(rs.Rules)-acc, ports, rng, src, nets, drop, ping)
}

// The filter case's flows are new in each round: source ports
// filterSport(round) .. +udpFlows-1, in filterSportSlots ranges apart from
// the unfiltered case's (a round after those reuses the first range,
// whose sessions vrouter may still hold).
const filterSportSlots = 4

func filterSport(round int) int { return 20000 + udpFlows*((round-1)%filterSportSlots) }

// filterSetup describes the filter case in the report.
type filterSetup struct {
	Rules     int    `json:"rules"`
	BenchRule int    `json:"bench_rule"` // 1-based: the rule that accepts the benchmark's flows
	Shapes    string `json:"shapes"`
	NftSets   string `json:"nft_sets"`
	NftSet    string `json:"nft_bench_set"` // the set holding the benchmark's key
}
