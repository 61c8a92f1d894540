package console

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"

	"vrouter/config"
	"vrouter/filter"
	"vrouter/router"
)

// filterJSON is one ruleset of show filter -j.
type filterJSON struct {
	Name        string           `json:"name"`
	Default     string           `json:"default"`
	NetworksIn  []string         `json:"networks_in"`  // filter_in of these networks
	NetworksOut []string         `json:"networks_out"` // filter_out of these networks
	Rules       []filterRuleJSON `json:"rules"`
	DefaultHits countsJSON       `json:"default_counters"`
	Compiled    compiledJSON     `json:"compiled"`
}

// filterRuleJSON is one rule with its counters. Empty lists and strings
// mean any.
type filterRuleJSON struct {
	Rule        int      `json:"rule"` // its place, from 1
	Line        int      `json:"line"` // in the configuration file
	Action      string   `json:"action"`
	Proto       string   `json:"proto"`
	Source      []string `json:"source"`
	Destination []string `json:"destination"`
	SPort       string   `json:"sport"`
	DPort       string   `json:"dport"`
	ICMPType    *uint8   `json:"icmp_type"`
	countsJSON
}

// countsJSON: hits are classifications (first packets of flows, and
// packets to the router); packets and bytes are what the rule decided.
type countsJSON struct {
	Hits    uint64 `json:"hits"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

type compiledJSON struct {
	Entries int `json:"entries"`
	Tables  int `json:"tables"`
	Bytes   int `json:"bytes"`
}

func counts(c filter.Count) countsJSON { return countsJSON{c.Hits, c.Packets, c.Bytes} }

// portList renders a port list as written ("22,80,8000-8100"); "" is any.
func portList(ps []config.PortRange) string {
	var b []string
	for _, p := range ps {
		if p.Lo == p.Hi {
			b = append(b, strconv.Itoa(int(p.Lo)))
		} else {
			b = append(b, fmt.Sprintf("%d-%d", p.Lo, p.Hi))
		}
	}
	return strings.Join(b, ",")
}

func prefixes(ps []netip.Prefix) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		if p.Bits() == 32 {
			out = append(out, p.Addr().String())
		} else {
			out = append(out, p.String())
		}
	}
	return out
}

func filterInfo(f router.FilterStats) filterJSON {
	fj := filterJSON{Name: f.Name, Default: f.Default.String(), NetworksIn: f.In, NetworksOut: f.Out,
		DefaultHits: counts(f.Other), Compiled: compiledJSON{Entries: f.Info.Entries, Tables: f.Info.Tables, Bytes: f.Info.Bytes}}
	if fj.NetworksIn == nil {
		fj.NetworksIn = []string{}
	}
	if fj.NetworksOut == nil {
		fj.NetworksOut = []string{}
	}
	fj.Rules = make([]filterRuleJSON, 0, len(f.Rules))
	for i, r := range f.Rules {
		proto := r.Proto
		if proto == "" {
			proto = config.ProtoAny
		}
		rj := filterRuleJSON{Rule: i + 1, Line: r.Pos.Line, Action: string(r.Action), Proto: proto,
			Source: prefixes(r.Source), Destination: prefixes(r.Destination), SPort: portList(r.SPort), DPort: portList(r.DPort)}
		if r.HasICMPType {
			t := r.ICMPType
			rj.ICMPType = &t
		}
		if i < len(f.Counts) {
			rj.countsJSON = counts(f.Counts[i])
		}
		fj.Rules = append(fj.Rules, rj)
	}
	return fj
}

func (c *Console) cmdFilter(args []string, js bool) (string, error) {
	if len(args) > 1 {
		return "", fmt.Errorf("usage: show filter [NAME]")
	}
	var fs []filterJSON
	for _, f := range c.r.Filters() {
		if len(args) == 1 && f.Name != args[0] {
			continue
		}
		fs = append(fs, filterInfo(f))
	}
	if len(args) == 1 && len(fs) == 0 {
		return "", fmt.Errorf("no filter ruleset %q", args[0])
	}
	if js {
		if fs == nil {
			fs = []filterJSON{}
		}
		return toJSON(fs)
	}
	if len(fs) == 0 {
		return "no filter rulesets\n", nil
	}
	var sb strings.Builder
	for i, f := range fs {
		if i > 0 {
			sb.WriteString("\n")
		}
		var nets []string
		for _, n := range f.NetworksIn {
			nets = append(nets, n+" (in)")
		}
		for _, n := range f.NetworksOut {
			nets = append(nets, n+" (out)")
		}
		if len(nets) == 0 {
			nets = []string{"none"}
		}
		fmt.Fprintf(&sb, "filter %s: %d rules, default %s; used by %s\n", f.Name, len(f.Rules), f.Default, strings.Join(nets, ", "))
		sb.WriteString(table(func(tw *tabwriter.Writer) {
			fmt.Fprintln(tw, "#\tACTION\tPROTO\tSOURCE\tDESTINATION\tSPORT\tDPORT/TYPE\tHITS\tPACKETS\tBYTES\tLINE")
			for _, r := range f.Rules {
				dport := r.DPort
				if r.ICMPType != nil {
					dport = fmt.Sprintf("type %d", *r.ICMPType)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", r.Rule, r.Action, r.Proto, anyOf(r.Source),
					anyOf(r.Destination), anyStr(r.SPort), anyStr(dport), r.Hits, r.Packets, r.Bytes, r.Line)
			}
			fmt.Fprintf(tw, "default\t%s\t\t\t\t\t\t%d\t%d\t%d\t\n", f.Default, f.DefaultHits.Hits, f.DefaultHits.Packets, f.DefaultHits.Bytes)
		}))
		fmt.Fprintf(&sb, "compiled: %d entries in %d tables, %d bytes\n", f.Compiled.Entries, f.Compiled.Tables, f.Compiled.Bytes)
	}
	sb.WriteString("hits: first packets of flows classified (later packets pass on their session: show conntrack)\n")
	return sb.String(), nil
}

func anyOf(s []string) string {
	if len(s) == 0 {
		return "any"
	}
	return strings.Join(s, ",")
}

func anyStr(s string) string {
	if s == "" {
		return "any"
	}
	return s
}
