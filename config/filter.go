package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// This file holds the stateful filter's configuration: [[filter]] rulesets,
// their [[filter.rule]]s, and the checks that tie them to the networks that
// name them (filter_in / filter_out). The filter package compiles them.

// FilterAction is what a rule, or a ruleset's default, does with the first
// packet of a flow.
type FilterAction string

const (
	FilterAccept FilterAction = "accept"
	FilterDrop   FilterAction = "drop"   // silently (counted)
	FilterReject FilterAction = "reject" // TCP RST, otherwise ICMP 3/13
)

// Protocols a [[filter.rule]] matches.
const (
	ProtoAny    = "any"
	ProtoTCP    = "tcp"
	ProtoUDP    = "udp"
	ProtoICMP   = "icmp"   // IPv4 only
	ProtoICMPv6 = "icmpv6" // IPv6 only
)

// MaxFilterEntries bounds the size of one compiled ruleset: the sum over its
// rules of FilterRule.Entries. A ruleset over it is a configuration error.
const MaxFilterEntries = 1 << 20

// Filter is one [[filter]] ruleset: rules tried in order, the first match
// decides, no match gives Default.
type Filter struct {
	Name    string
	Default FilterAction
	Rules   []FilterRule
	Pos     Pos
}

// FilterRule is one [[filter.rule]]. A packet matches when every field
// given matches: its protocol, its source in one of Source, its destination
// in one of Destination, its ports in SPort and DPort, its ICMP type.
// Empty lists match anything. Rules with ports or an ICMP type need the
// packet's L4 header: they never match a non-first fragment. A rule's
// prefixes are all IPv4 or all IPv6, and it matches packets of that family
// only (icmp: IPv4, icmpv6: IPv6); a rule without prefixes and of another
// protocol matches both.
type FilterRule struct {
	Action      FilterAction
	Proto       string         // ProtoAny (default), ProtoTCP, ProtoUDP, ProtoICMP, ProtoICMPv6
	Source      []netip.Prefix // masked; an address is a /32 (IPv6: /128); empty = any
	Destination []netip.Prefix
	SPort       []PortRange // inclusive, 0..65535; tcp and udp only; empty = any
	DPort       []PortRange
	ICMPType    uint8 // when HasICMPType (proto icmp or icmpv6)
	HasICMPType bool
	Pos         Pos
}

// Entries is the number of match entries the rule compiles to at most:
// one per combination of its source, destination, sport and dport items.
// It saturates at MaxFilterEntries+1.
func (r *FilterRule) Entries() int {
	n := 1
	for _, k := range []int{len(r.Source), len(r.Destination), len(r.SPort), len(r.DPort)} {
		if k > 1 {
			n *= k
			if n > MaxFilterEntries {
				return MaxFilterEntries + 1
			}
		}
	}
	return n
}

// FilterByName is the ruleset called name, or nil.
func (c *Config) FilterByName(name string) *Filter {
	for i := range c.Filters {
		if c.Filters[i].Name == name {
			return &c.Filters[i]
		}
	}
	return nil
}

// ICMP type names accepted for icmp_type besides numbers (the names nft uses).
var icmpTypeNames = map[string]uint8{
	"echo-reply":              0,
	"destination-unreachable": 3,
	"source-quench":           4,
	"redirect":                5,
	"echo-request":            8,
	"router-advertisement":    9,
	"router-solicitation":     10,
	"time-exceeded":           11,
	"parameter-problem":       12,
	"timestamp-request":       13,
	"timestamp-reply":         14,
	"info-request":            15,
	"info-reply":              16,
	"address-mask-request":    17,
	"address-mask-reply":      18,
}

// ICMPv6 type names accepted for icmp_type with proto icmpv6 (nft's names).
var icmp6TypeNames = map[string]uint8{
	"destination-unreachable": 1,
	"packet-too-big":          2,
	"time-exceeded":           3,
	"parameter-problem":       4,
	"echo-request":            128,
	"echo-reply":              129,
	"mld-listener-query":      130,
	"mld-listener-report":     131,
	"mld-listener-done":       132,
	"nd-router-solicit":       133,
	"nd-router-advert":        134,
	"nd-neighbor-solicit":     135,
	"nd-neighbor-advert":      136,
	"nd-redirect":             137,
	"router-renumbering":      138,
	"mld2-listener-report":    143,
}

// ParsePortList parses a port list: ports and inclusive ranges separated by
// commas, "22,80,443,8000-8100". Ports are 0..65535; blanks around items
// are allowed.
func ParsePortList(s string) ([]PortRange, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("empty port list (write e.g. \"22,80,8000-8100\")")
	}
	var out []PortRange
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, fmt.Errorf("port list %q has an empty item", s)
		}
		los, his, isRange := strings.Cut(item, "-")
		if !isRange {
			his = los
		}
		lo, err := parsePort(strings.TrimSpace(los))
		if err != nil {
			return nil, fmt.Errorf("port list %q: %v", s, err)
		}
		hi, err := parsePort(strings.TrimSpace(his))
		if err != nil {
			return nil, fmt.Errorf("port list %q: %v", s, err)
		}
		if hi < lo {
			return nil, fmt.Errorf("invalid port range %q: %d is above %d", item, lo, hi)
		}
		out = append(out, PortRange{Lo: lo, Hi: hi})
	}
	return out, nil
}

func parsePort(s string) (uint16, error) {
	if s == "" {
		return 0, fmt.Errorf("missing port number")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a port number", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > 65535 {
		return 0, fmt.Errorf("port %s out of range 0..65535", s)
	}
	return uint16(n), nil
}

// parseFilterAddr parses "a.b.c.d" (a /32) or a masked "a.b.c.d/n", or
// an IPv6 address (a /128) or masked prefix.
func parseFilterAddr(what, s string) (netip.Prefix, error) {
	bad := fmt.Errorf("invalid address or prefix %q (write a.b.c.d, a.b.c.d/n, an IPv6 address or an IPv6 prefix)", s)
	var p netip.Prefix
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, bad
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%s %s has a zone: a filter matches addresses on any link; leave it out", what, s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	} else {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, bad
		}
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%s %s is IPv4-mapped: write the IPv4 address or prefix", what, s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%s %s has host bits set; did you mean %s?", what, s, m)
	}
	return p, nil
}

func (d *decoder) filterAction(v *value, p string) FilterAction {
	s, ok := d.str(v, p)
	if !ok {
		return ""
	}
	switch a := FilterAction(s); a {
	case FilterAccept, FilterDrop, FilterReject:
		return a
	}
	d.errf(v.pos, "%s %q is not one of accept, drop, reject", p, s)
	return ""
}

func (d *decoder) filter(t *table) {
	f := Filter{Pos: t.pos}
	var rts []*table
	d.each(t, "filter", []string{"name", "default", "rule"}, func(e *entry, p string) {
		v := e.val
		switch e.key {
		case "name":
			if s, ok := d.str(v, p); ok {
				if s == "" || strings.ContainsAny(s, " \t\"'") {
					d.errf(v.pos, "filter.name %q must be non-empty without blanks or quotes", s)
				} else {
					f.Name = s
				}
			}
		case "default":
			f.Default = d.filterAction(v, p)
		case "rule":
			ts, ok := d.tableList(v, p)
			if !ok {
				return
			}
			for _, rt := range ts {
				f.Rules = append(f.Rules, d.filterRule(rt))
				rts = append(rts, rt)
			}
		}
	})
	d.required(t, "[[filter]]", "name", "default")
	d.c.Filters = append(d.c.Filters, f)
	d.filterT = append(d.filterT, t)
	d.ruleT = append(d.ruleT, rts)
}

// prefixList decodes source or destination: an array of strings, or one
// string.
func (d *decoder) prefixList(v *value, p, what string) []netip.Prefix {
	elems := []*value{v}
	if v.kind != kString {
		if v.kind != kArray || v.aot {
			d.wrongType(v, p, "an array of strings")
			return nil
		}
		if len(v.arr) == 0 {
			d.errf(v.pos, "%s must list at least one address or prefix (leave it out for any)", p)
			return nil
		}
		elems = v.arr
	}
	var out []netip.Prefix
	for _, ev := range elems {
		s, ok := d.str(ev, p)
		if !ok {
			continue
		}
		pf, err := parseFilterAddr(what, s)
		if err != nil {
			d.errf(ev.pos, "%s: %v", p, err)
			continue
		}
		out = append(out, pf)
	}
	return out
}

// portList decodes sport or dport: a port list string, or one port as an
// integer.
func (d *decoder) portList(v *value, p string) []PortRange {
	if v.kind == kInt {
		n, ok := d.intIn(v, p, 0, 65535)
		if !ok {
			return nil
		}
		return []PortRange{{Lo: uint16(n), Hi: uint16(n)}}
	}
	s, ok := d.str(v, p)
	if !ok {
		return nil
	}
	rs, err := ParsePortList(s)
	if err != nil {
		d.errf(v.pos, "%s: %v", p, err)
		return nil
	}
	return rs
}

func (d *decoder) filterRule(t *table) FilterRule {
	r := FilterRule{Pos: t.pos, Proto: ProtoAny}
	var icmpName *value // an icmp_type name: its table depends on proto
	d.each(t, "filter.rule", []string{"action", "proto", "source", "destination", "sport", "dport", "icmp_type"}, func(e *entry, p string) {
		v := e.val
		switch e.key {
		case "action":
			r.Action = d.filterAction(v, p)
		case "proto":
			r.Proto = ""
			if s, ok := d.str(v, p); ok {
				switch s {
				case ProtoAny, ProtoTCP, ProtoUDP, ProtoICMP, ProtoICMPv6:
					r.Proto = s
				default:
					d.errf(v.pos, "%s %q is not one of tcp, udp, icmp, icmpv6, any", p, s)
				}
			}
		case "source":
			r.Source = d.prefixList(v, p, "source")
		case "destination":
			r.Destination = d.prefixList(v, p, "destination")
		case "sport":
			r.SPort = d.portList(v, p)
		case "dport":
			r.DPort = d.portList(v, p)
		case "icmp_type":
			switch v.kind {
			case kString:
				icmpName = v
			default:
				if n, ok := d.intIn(v, p, 0, 255); ok {
					r.ICMPType, r.HasICMPType = uint8(n), true
				}
			}
		}
	})
	d.required(t, "[[filter.rule]]", "action")
	if v := icmpName; v != nil {
		names, what := icmpTypeNames, "an ICMP"
		if r.Proto == ProtoICMPv6 {
			names, what = icmp6TypeNames, "an ICMPv6"
		}
		if n, ok := names[v.s]; ok {
			r.ICMPType, r.HasICMPType = n, true
		} else {
			d.errf(v.pos, "filter.rule.icmp_type %q is not %s type name (use a number 0..255 or e.g. \"echo-request\")", v.s, what)
		}
	}
	d.ruleFamily(t, &r)
	// Ports belong to tcp and udp, ICMP types to icmp and icmpv6. A rule
	// without proto is "any", which has neither: write one rule per
	// protocol.
	if r.Proto != "" {
		for _, k := range []string{"sport", "dport"} {
			if e := t.get(k); e != nil && r.Proto != ProtoTCP && r.Proto != ProtoUDP {
				d.errf(e.keyPos, "filter.rule.%s needs proto = \"tcp\" or \"udp\" (this rule's proto is %q)", k, r.Proto)
			}
		}
		if e := t.get("icmp_type"); e != nil && r.Proto != ProtoICMP && r.Proto != ProtoICMPv6 {
			d.errf(e.keyPos, "filter.rule.icmp_type needs proto = \"icmp\" or \"icmpv6\" (this rule's proto is %q)", r.Proto)
		}
	}
	return r
}

// ruleFamily checks that a rule's prefixes are of one address family, the
// family of its proto if that is icmp (IPv4) or icmpv6 (IPv6): such a rule
// could never match. It reports the first prefix that does not fit.
func (d *decoder) ruleFamily(t *table, r *FilterRule) {
	six := func(p netip.Prefix) bool { return p.Addr().Is6() }
	fam, by := 0, ""
	switch r.Proto {
	case ProtoICMP:
		fam, by = 4, "proto icmp (IPv4; IPv6 rules use icmpv6)"
	case ProtoICMPv6:
		fam, by = 6, "proto icmpv6 (IPv6; IPv4 rules use icmp)"
	}
	for _, k := range []struct {
		key string
		ps  []netip.Prefix
	}{{"source", r.Source}, {"destination", r.Destination}} {
		for _, p := range k.ps {
			f := 4
			if six(p) {
				f = 6
			}
			if fam != 0 && f != fam {
				d.errf(vpos(t, k.key), "filter.rule.%s %v is IPv%d, but the rule has %s: write one rule per address family", k.key, p, f, by)
				return
			}
			if fam == 0 {
				fam, by = f, fmt.Sprintf("IPv%d prefix %v", f, p)
			}
		}
	}
}

// validateFilters checks what relates filters to each other and to the
// networks: unique names, known rulesets in filter_in and filter_out, and
// the size of each compiled ruleset.
func (d *decoder) validateFilters() {
	c := d.c
	at := map[string]int{}
	for i, f := range c.Filters {
		t := d.filterT[i]
		if f.Name != "" {
			if j, dup := at[f.Name]; dup {
				d.errf(vpos(t, "name"), "duplicate filter name %q (first at line %d)", f.Name, vpos(d.filterT[j], "name").Line)
			} else {
				at[f.Name] = i
			}
		}
		total := 0
		for k := range f.Rules {
			n := f.Rules[k].Entries()
			total += n
			if total > MaxFilterEntries {
				d.errf(d.ruleT[i][k].pos, "filter %q is too large: with this rule its rules expand to more than %d entries (sources x destinations x sport items x dport items per rule); split the lists or use wider prefixes", f.Name, MaxFilterEntries)
				break
			}
		}
	}
	for i, n := range c.Networks {
		t := d.netT[i]
		for _, k := range []struct{ key, name string }{{"filter_in", n.FilterIn}, {"filter_out", n.FilterOut}} {
			if k.name == "" {
				continue
			}
			if _, ok := at[k.name]; !ok {
				d.errf(vpos(t, k.key), "network %s %q is not a filter (no [[filter]] with that name)", k.key, k.name)
			}
		}
	}
}

// filters decodes the root key "filter": the [[filter]] array.
func (d *decoder) filters(v *value, p string) {
	if v.kind == kTable && v.tbl.origin == originImplicit {
		if e := v.tbl.get("rule"); e != nil {
			d.errf(e.val.pos, "[[filter.rule]] must follow the [[filter]] it belongs to")
			return
		}
	}
	ts, ok := d.tableList(v, p)
	if !ok {
		return
	}
	for _, t := range ts {
		d.filter(t)
	}
}
