package console

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"vrouter/config"
	"vrouter/internal/counter"
	"vrouter/nat"
)

func parseFilter(args []string) (netip.Addr, error) {
	if len(args) == 0 {
		return netip.Addr{}, nil
	}
	if len(args) > 1 {
		return netip.Addr{}, fmt.Errorf("too many arguments")
	}
	a, err := netip.ParseAddr(args[0])
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("bad address %q", args[0])
	}
	return a, nil
}

// conntrackJSON is one session of show conntrack.
type conntrackJSON struct {
	Proto   string `json:"proto"`
	Orig    string `json:"original"`
	Reply   string `json:"reply"`
	State   string `json:"state"`
	NAT     string `json:"nat"`
	Timeout string `json:"timeout"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

const maxconntrackJSONs = 1000

func (c *Console) cmdConntrack(args []string, js bool) (string, error) {
	f, err := parseFilter(args)
	if err != nil {
		return "", fmt.Errorf("usage: show conntrack [ADDR]: %v", err)
	}
	ss := c.r.NAT.Sessions(f)
	rows := make([]conntrackJSON, 0, len(ss))
	for _, s := range ss {
		rows = append(rows, conntrackJSON{Proto: protoName(s.Proto), Orig: s.Orig.String(), Reply: s.Reply.String(),
			State: s.State, NAT: s.NAT, Timeout: s.Timeout.Truncate(time.Second).String(), Packets: s.Packets, Bytes: s.Bytes})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Orig < rows[j].Orig })
	if js {
		return toJSON(rows)
	}
	shown := rows
	if len(shown) > maxconntrackJSONs {
		shown = shown[:maxconntrackJSONs]
	}
	out := table(func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "PROTO\tORIGINAL\tREPLY\tSTATE\tNAT\tTIMEOUT\tPACKETS\tBYTES")
		for _, c := range shown {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", c.Proto, c.Orig, c.Reply, c.State, c.NAT, c.Timeout, c.Packets, c.Bytes)
		}
	})
	out += fmt.Sprintf("%d sessions (table: %d of %d; IPv6 table: %d of %d)\n", len(rows), c.r.NAT.Len(), c.r.NAT.Max(), c.r.NAT.Len6(), c.r.NAT.Max())
	return out, nil
}

func protoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 58:
		return "icmpv6"
	}
	return fmt.Sprint(p)
}

func (c *Console) cmdClearConntrack(args []string, js bool) (string, error) {
	f, err := parseFilter(args)
	if err != nil {
		return "", fmt.Errorf("usage: clear conntrack [ADDR]: %v", err)
	}
	n := c.r.NAT.Clear(f)
	return done(js, fmt.Sprintf("%d sessions cleared", n), map[string]any{"cleared": n})
}

// natJSON is show nat -j: the rules with their session counts and port
// use, the table's fill, and counters, every counter of the NAT stage by
// kind (drop reasons, table-full and evictions among them; as in show
// stats -j stages.nat). Addresses, ranges and ports are strings as the
// table shows them; line is the rule's line in the configuration file.
type natJSON struct {
	Filtering string            `json:"filtering"`
	SNAT      []natSNATJSON     `json:"snat"`
	Floating  []natFloatingJSON `json:"floating"`
	Forward   []natForwardJSON  `json:"forward"`
	Sessions  int               `json:"sessions"`
	Max       int               `json:"max"`
	Counters  kindsJSON         `json:"counters"`
}

// natSNATJSON is one [[nat.snat]] rule: to is an address or a range
// "FIRST-LAST", ports a port or a range "LO-HI".
type natSNATJSON struct {
	Source   string        `json:"source"`
	Out      string        `json:"out"`
	To       string        `json:"to"`
	Ports    string        `json:"ports"`
	Line     int           `json:"line"`
	Sessions int           `json:"sessions"`
	Pools    []natPoolJSON `json:"pools"`
}

// natPoolJSON is the port use of one external address of an SNAT rule,
// for one protocol; exhausted counts the new flows refused (out of ports).
type natPoolJSON struct {
	Address    string `json:"address"`
	Proto      string `json:"proto"`
	PortsUsed  int    `json:"ports_used"`
	PortsTotal int    `json:"ports_total"`
	Exhausted  uint64 `json:"exhausted"`
}

// natFloatingJSON is one [[nat.floating]].
type natFloatingJSON struct {
	External string `json:"external"`
	Internal string `json:"internal"`
	Line     int    `json:"line"`
	Sessions int    `json:"sessions"`
}

// natForwardJSON is one [[nat.forward]]: its backends in order, each with
// its sessions.
type natForwardJSON struct {
	Proto    string           `json:"proto"`
	External string           `json:"external"`
	Internal []natBackendJSON `json:"internal"`
	Line     int              `json:"line"`
	Sessions int              `json:"sessions"`
}

type natBackendJSON struct {
	Address  string `json:"address"`
	Sessions int    `json:"sessions"`
}

// addrRange renders an address range as written: one address, or FIRST-LAST.
func addrRange(r config.AddrRange) string {
	if r.First == r.Last {
		return r.First.String()
	}
	return r.First.String() + "-" + r.Last.String()
}

func natView(ri nat.RulesInfo, cs []counter.Value) natJSON {
	nj := natJSON{Filtering: ri.Filtering, Sessions: ri.Sessions, Max: ri.Max,
		SNAT: []natSNATJSON{}, Floating: []natFloatingJSON{}, Forward: []natForwardJSON{}}
	for _, s := range ri.SNAT {
		sj := natSNATJSON{Source: s.Rule.Source.String(), Out: s.Rule.Out, To: addrRange(s.Rule.To),
			Ports: portList([]config.PortRange{s.Rule.Ports}), Line: s.Rule.Pos.Line, Sessions: s.Sessions,
			Pools: make([]natPoolJSON, 0, len(s.Pools))}
		for _, p := range s.Pools {
			sj.Pools = append(sj.Pools, natPoolJSON{Address: p.Addr.String(), Proto: p.Proto, PortsUsed: p.Used,
				PortsTotal: p.Size, Exhausted: p.Exhausted})
		}
		nj.SNAT = append(nj.SNAT, sj)
	}
	for _, f := range ri.Floating {
		nj.Floating = append(nj.Floating, natFloatingJSON{External: f.Rule.External.String(), Internal: f.Rule.Internal.String(),
			Line: f.Rule.Pos.Line, Sessions: f.Sessions})
	}
	for _, f := range ri.Forward {
		fj := natForwardJSON{Proto: f.Rule.Proto, External: f.Rule.External.String(), Line: f.Rule.Pos.Line,
			Sessions: f.Sessions, Internal: make([]natBackendJSON, 0, len(f.Rule.Internal))}
		for i, b := range f.Rule.Internal {
			n := 0
			if i < len(f.Backends) {
				n = f.Backends[i]
			}
			fj.Internal = append(fj.Internal, natBackendJSON{Address: b.String(), Sessions: n})
		}
		nj.Forward = append(nj.Forward, fj)
	}
	for _, v := range cs {
		nj.Counters.add(v)
	}
	return nj
}

func (c *Console) cmdShowNAT(args []string, js bool) (string, error) {
	ri := c.r.NAT.Rules()
	cs := c.r.NAT.Counters()
	if js {
		return toJSON(natView(ri, cs))
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "filtering: %s; sessions: %d of %d\n\n", ri.Filtering, ri.Sessions, ri.Max)
	sb.WriteString(table(func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "SNAT SOURCE\tOUT\tTO\tPORTS\tSESSIONS")
		for _, s := range ri.SNAT {
			fmt.Fprintf(tw, "%s\t%s\t%s-%s\t%d-%d\t%d\n", s.Rule.Source, s.Rule.Out, s.Rule.To.First, s.Rule.To.Last,
				s.Rule.Ports.Lo, s.Rule.Ports.Hi, s.Sessions)
		}
	}))
	sb.WriteString("\n" + table(func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "POOL ADDRESS\tPROTO\tPORTS USED\tPORTS\tEXHAUSTED")
		for _, s := range ri.SNAT {
			for _, p := range s.Pools {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", p.Addr, p.Proto, p.Used, p.Size, p.Exhausted)
			}
		}
	}))
	sb.WriteString("\n" + table(func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "FLOATING EXTERNAL\tINTERNAL\tSESSIONS")
		for _, f := range ri.Floating {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", f.Rule.External, f.Rule.Internal, f.Sessions)
		}
	}))
	sb.WriteString("\n" + table(func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "FORWARD\tEXTERNAL\tINTERNAL\tSESSIONS")
		for _, f := range ri.Forward {
			var in []string
			for i, b := range f.Rule.Internal {
				n := 0
				if i < len(f.Backends) {
					n = f.Backends[i]
				}
				in = append(in, fmt.Sprintf("%s(%d)", b, n))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", f.Rule.Proto, f.Rule.External, strings.Join(in, ","), f.Sessions)
		}
	}))
	sb.WriteString("\n" + table(func(tw *tabwriter.Writer) {
		stageTable(tw, "NAT COUNTER", cs)
	}))
	return sb.String(), nil
}
