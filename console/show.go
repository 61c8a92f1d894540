package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"vrouter/arp"
	"vrouter/fib"
	"vrouter/internal/counter"
	"vrouter/router"
	"vrouter/router/port"
)

// interfacesJSON is show interfaces -j.
type interfacesJSON struct {
	Ports    []portJSON    `json:"ports"`
	Networks []networkJSON `json:"networks"`
}

// portJSON is one port of show interfaces -j.
type portJSON struct {
	Name        string          `json:"name"`
	Driver      string          `json:"driver"`
	Device      string          `json:"device"`
	MAC         string          `json:"mac"`
	MTU         int             `json:"mtu"`
	State       string          `json:"state"`
	RxPackets   uint64          `json:"rx_packets"`
	RxBytes     uint64          `json:"rx_bytes"`
	TxPackets   uint64          `json:"tx_packets"`
	TxBytes     uint64          `json:"tx_bytes"`
	Drops       uint64          `json:"drops"`
	TxErrors    uint64          `json:"tx_errors"`
	DeviceStats deviceStatsJSON `json:"device_stats"`
}

// deviceStatsJSON is a port's own counters, as its implementation keeps
// them (router/port.Stats): rx_dropped are frames the port had to drop,
// tx_errors frames the kernel refused, rx_gso super-frames segmented and
// rx_csum partial checksums completed in software.
type deviceStatsJSON struct {
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxDropped uint64 `json:"rx_dropped"`
	TxErrors  uint64 `json:"tx_errors"`
	RxGSO     uint64 `json:"rx_gso"`
	RxCsum    uint64 `json:"rx_csum"`
}

func deviceStats(s port.Stats) deviceStatsJSON {
	return deviceStatsJSON{RxPackets: s.RxPackets, RxBytes: s.RxBytes, TxPackets: s.TxPackets, TxBytes: s.TxBytes,
		RxDropped: s.RxDropped, TxErrors: s.TxErrors, RxGSO: s.RxGSO, RxCsum: s.RxCsum}
}

// networkJSON is one network of show interfaces -j.
type networkJSON struct {
	Name      string     `json:"name"`
	MAC       string     `json:"mac"`
	MTU       int        `json:"mtu"`
	Links     []string   `json:"links"`
	Addresses []string   `json:"addresses"`
	ProxyARP  bool       `json:"proxy_arp"`
	HostRoute bool       `json:"hostroute,omitempty"`
	LinkStats []linkJSON `json:"link_stats"`
	RxPackets uint64     `json:"rx_packets"`
	TxPackets uint64     `json:"tx_packets"`
}

// linkJSON is the counters of one link of a network.
type linkJSON struct {
	Link      string `json:"link"`
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
}

func (c *Console) interfaces() interfacesJSON {
	var info interfacesJSON
	for _, p := range c.r.Ports() {
		info.Ports = append(info.Ports, portJSON{Name: p.Name, Driver: p.Driver, Device: p.Device, MAC: p.MAC.String(), MTU: p.MTU, State: p.State,
			RxPackets: p.RxPackets, RxBytes: p.RxBytes, TxPackets: p.TxPackets, TxBytes: p.TxBytes,
			Drops: p.Drops, TxErrors: p.TxErrors, DeviceStats: deviceStats(p.DeviceStats)})
	}
	for _, n := range c.r.Networks() {
		nj := networkJSON{Name: n.Name, MAC: n.MAC.String(), MTU: n.MTU, ProxyARP: n.ProxyARP, HostRoute: n.HostRoute,
			Addresses: []string{}} // [] rather than null in -j
		for _, l := range n.Links {
			nj.Links = append(nj.Links, l.Name)
			nj.LinkStats = append(nj.LinkStats, linkJSON{Link: l.Name, RxPackets: l.RxPackets, RxBytes: l.RxBytes,
				TxPackets: l.TxPackets, TxBytes: l.TxBytes})
			nj.RxPackets += l.RxPackets
			nj.TxPackets += l.TxPackets
		}
		for _, a := range n.Addresses {
			nj.Addresses = append(nj.Addresses, a.String())
		}
		info.Networks = append(info.Networks, nj)
	}
	return info
}

func (c *Console) cmdInterfaces(args []string, js bool) (string, error) {
	info := c.interfaces()
	if js {
		return toJSON(info)
	}
	return table(func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "PORT\tDRIVER\tDEVICE\tMAC\tMTU\tSTATE\tRX PKTS\tRX BYTES\tTX PKTS\tTX BYTES\tDROPS")
		for _, p := range info.Ports {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%d\n", p.Name, p.Driver, p.Device, p.MAC, p.MTU, p.State,
				p.RxPackets, p.RxBytes, p.TxPackets, p.TxBytes, p.Drops+p.TxErrors)
		}
		fmt.Fprintln(tw, "\nNETWORK\tMAC\tMTU\tLINKS\tADDRESSES\tPROXY-ARP\tRX PKTS\tTX PKTS")
		for _, n := range info.Networks {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%v\t%d\t%d\n", n.Name, n.MAC, n.MTU, strings.Join(n.Links, ","),
				dash(strings.Join(n.Addresses, ",")), n.ProxyARP, n.RxPackets, n.TxPackets)
		}
		fmt.Fprintln(tw, "\nLINK\tNETWORK\tVLAN\tRX PKTS\tRX BYTES\tTX PKTS\tTX BYTES")
		for _, n := range info.Networks {
			for _, l := range n.LinkStats {
				vlan := "-"
				if i := strings.LastIndexByte(l.Link, '.'); i >= 0 {
					vlan = l.Link[i+1:]
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\n", l.Link, n.Name, vlan, l.RxPackets, l.RxBytes, l.TxPackets, l.TxBytes)
			}
		}
	}), nil
}

// routeJSON is one route of show ip route.
type routeJSON struct {
	Prefix  string `json:"prefix"`
	Source  string `json:"source"`
	Type    string `json:"type"`
	Via     string `json:"via,omitempty"`
	Network string `json:"network,omitempty"`
}

func (c *Console) routeInfo(rt fib.Route) routeJSON {
	ri := routeJSON{Prefix: rt.Prefix.String(), Source: rt.Source.String(), Type: rt.NH.Kind.String()}
	if rt.NH.Kind == fib.KindConnected || rt.NH.Kind == fib.KindGateway {
		ri.Network = c.r.NetworkName(rt.NH.Network)
	}
	if rt.NH.Kind == fib.KindGateway {
		ri.Via = ipv4(rt.NH.Gateway).String()
	}
	return ri
}

func (c *Console) renderRoutes(rs []routeJSON, js bool) (string, error) {
	if js {
		return toJSON(rs)
	}
	return table(func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "PREFIX\tSOURCE\tTYPE\tVIA\tNETWORK")
		for _, ri := range rs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ri.Prefix, ri.Source, ri.Type, dash(ri.Via), dash(ri.Network))
		}
	}), nil
}

// ipv4 is the address of a uint32 as the FIB and the neighbour cache hold it.
func ipv4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

const maxRouteRows = 1000

func (c *Console) cmdRoute(args []string, js bool) (string, error) {
	if len(args) > 1 {
		return "", errors.New("usage: show ip route [ADDR | PREFIX | summary]")
	}
	if len(args) == 1 {
		if strings.Contains(args[0], "/") {
			p, err := netip.ParsePrefix(args[0])
			if err != nil || !p.Addr().Is4() {
				return "", fmt.Errorf("bad prefix %q", args[0])
			}
			rt, ok := c.r.FIB.Get(p)
			if !ok {
				return "", fmt.Errorf("no route for %s", p.Masked())
			}
			return c.renderRoutes([]routeJSON{c.routeInfo(rt)}, js)
		}
		a, err := netip.ParseAddr(args[0])
		if err != nil || !a.Is4() {
			return "", fmt.Errorf("bad address %q", args[0])
		}
		rt, ok := c.r.FIB.Match(a)
		if !ok {
			return "", fmt.Errorf("no route to %s", a)
		}
		return c.renderRoutes([]routeJSON{c.routeInfo(rt)}, js)
	}
	all := c.r.FIB.Routes()
	rs := make([]routeJSON, 0, min(len(all), maxRouteRows))
	for i, rt := range all {
		if i == maxRouteRows && !js {
			break
		}
		rs = append(rs, c.routeInfo(rt))
	}
	out, err := c.renderRoutes(rs, js)
	if !js && len(all) > maxRouteRows {
		out += fmt.Sprintf("... %d more routes (use show ip route summary, or -j for all)\n", len(all)-maxRouteRows)
	}
	return out, err
}

// routeSummaryJSON is show ip route summary -j: the FIB's counts and, when
// a kernel table is followed, the import counters.
type routeSummaryJSON struct {
	fib.Summary
	Kernel any `json:"kernel,omitempty"`
}

func (c *Console) cmdRouteSummary(args []string, js bool) (string, error) {
	return c.renderSummary(c.r.FIB.Summary(), js)
}

// renderSummary prints a FIB's summary (show ip route summary, show ipv6
// route summary), with the kernel table import's counters when one is
// followed (one import serves both families).
func (c *Console) renderSummary(s fib.Summary, js bool) (string, error) {
	var ks any
	if f := c.opts.KernelStats; f != nil {
		ks = f()
	}
	if js {
		return toJSON(routeSummaryJSON{Summary: s, Kernel: ks})
	}
	var lens []int
	for l := range s.ByLength {
		lens = append(lens, l)
	}
	sort.Ints(lens)
	return table(func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "routes\t%d\n", s.Routes)
		for src := fib.Source(0); src < fib.NumSources; src++ {
			fmt.Fprintf(tw, "  %s\t%d\n", src, s.BySource[src.String()])
		}
		fmt.Fprintf(tw, "memory\t%d bytes\n", s.MemoryBytes)
		if ks != nil {
			b, _ := json.Marshal(ks)
			fmt.Fprintf(tw, "kernel import\t%s\n", b)
		}
		fmt.Fprintln(tw, "LENGTH\tROUTES")
		for _, l := range lens {
			fmt.Fprintf(tw, "/%d\t%d\n", l, s.ByLength[l])
		}
	}), nil
}

// neighJSON is one neighbour of show arp.
type neighJSON struct {
	IP      string `json:"ip"`
	MAC     string `json:"mac"`
	Network string `json:"network"`
	State   string `json:"state"`
	Age     string `json:"age"`
	Queued  int    `json:"queued,omitempty"`
}

func (c *Console) cmdARP(args []string, js bool) (string, error) {
	var out []neighJSON
	for _, n := range c.r.Neighbours() {
		nj := neighJSON{IP: n.IP.String(), Network: n.Network, State: n.State.String(), Age: n.Age.Truncate(time.Second).String(), Queued: n.Queued}
		if n.State != arp.Incomplete {
			nj.MAC = n.MAC.String()
		}
		out = append(out, nj)
	}
	if js {
		if out == nil {
			out = []neighJSON{}
		}
		return toJSON(out)
	}
	return table(func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "IP\tMAC\tNETWORK\tSTATE\tAGE")
		for _, n := range out {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.IP, dash(n.MAC), n.Network, n.State, n.Age)
		}
	}), nil
}

// proxyJSON is one entry of show proxy-arp.
type proxyJSON struct {
	IP      string `json:"ip"`
	Network string `json:"network"`
	Why     string `json:"why"`
}

func (c *Console) cmdProxyARP(args []string, js bool) (string, error) {
	var out []proxyJSON
	for _, e := range c.r.ProxyARP() {
		switch e.Kind {
		case router.ProxyPublished:
			out = append(out, proxyJSON{IP: e.IP.String(), Network: e.Network, Why: "published"})
		case router.ProxyNetwork:
			out = append(out, proxyJSON{IP: "*", Network: e.Network, Why: "proxy_arp: addresses routed out of another network"})
		case router.ProxyHostRoute:
			out = append(out, proxyJSON{IP: "*", Network: e.Network, Why: "host-routed link: every request answered"})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Network != out[j].Network {
			return out[i].Network < out[j].Network
		}
		return out[i].IP < out[j].IP
	})
	if js {
		if out == nil {
			out = []proxyJSON{}
		}
		return toJSON(out)
	}
	return table(func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "IP\tNETWORK\tWHY")
		for _, p := range out {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", p.IP, p.Network, p.Why)
		}
	}), nil
}

// bridgeJSON is one learned MAC of show bridge.
type bridgeJSON struct {
	Network string `json:"network"`
	MAC     string `json:"mac"`
	Link    string `json:"link"`
	Age     int64  `json:"age_seconds"`
}

func (c *Console) cmdBridge(args []string, js bool) (string, error) {
	if len(args) > 1 {
		return "", fmt.Errorf("usage: show bridge [NETWORK]")
	}
	name := ""
	if len(args) == 1 {
		name = args[0]
	}
	es, err := c.r.BridgeEntries(name)
	if err != nil {
		return "", err
	}
	var rows []bridgeJSON
	for _, e := range es {
		rows = append(rows, bridgeJSON{Network: e.Network, MAC: e.MAC.String(), Link: e.Link, Age: int64(e.Age / time.Second)})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Network != rows[j].Network {
			return rows[i].Network < rows[j].Network
		}
		return rows[i].MAC < rows[j].MAC
	})
	if js {
		if rows == nil {
			rows = []bridgeJSON{}
		}
		return toJSON(rows)
	}
	return table(func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "NETWORK\tMAC\tLINK\tAGE")
		for _, b := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%ds\n", b.Network, b.MAC, b.Link, b.Age)
		}
	}), nil
}

// statsJSON is show stats -j. Counters, Drops and Neigh are the keys
// scripts have read from the start (the router's events and drops, seven
// of the neighbour cache's counters); Stages has every counter every stage
// declares, by stage ("router", "nat", "arp") and kind; Ports has each
// open port's driver and its driver's counters.
type statsJSON struct {
	Uptime   string                       `json:"uptime"`
	Counters map[string]uint64            `json:"counters"`
	Drops    map[string]uint64            `json:"drops"`
	Neigh    map[string]uint64            `json:"neighbour"`
	Stages   map[string]*kindsJSON        `json:"stages"`
	Ports    map[string]*portCountersJSON `json:"ports"`
}

func (c *Console) stats(all []counter.Value) statsJSON {
	st := statsJSON{Uptime: c.r.Uptime().Truncate(time.Second).String(),
		Counters: map[string]uint64{}, Drops: map[string]uint64{}, Neigh: map[string]uint64{},
		Stages: map[string]*kindsJSON{}, Ports: map[string]*portCountersJSON{}}
	for i, v := range c.r.Counters() {
		st.Counters[router.Counter(i).String()] = v
	}
	for i, v := range c.r.Drops() {
		if i != int(router.DropNone) {
			st.Drops[router.DropReason(i).String()] = v
		}
	}
	ns := c.r.Neigh.Stats()
	st.Neigh["entries"] = uint64(ns.Entries)
	st.Neigh["requests"] = ns.Requests
	st.Neigh["queued"] = ns.Queued
	st.Neigh["queue-drops"] = ns.QueueDrops
	st.Neigh["failed"] = ns.Failed
	st.Neigh["failed-drops"] = ns.FailedDrops
	st.Neigh["table-full"] = ns.TableFull
	for _, p := range c.r.Ports() {
		st.Ports[p.Name] = &portCountersJSON{Driver: p.Driver}
	}
	for _, v := range all {
		if v.Port != "" {
			if p := st.Ports[v.Port]; p != nil {
				p.add(v)
			}
			continue
		}
		k := st.Stages[v.Stage]
		if k == nil {
			k = &kindsJSON{}
			st.Stages[v.Stage] = k
		}
		k.add(v)
	}
	return st
}

func (c *Console) cmdStats(args []string, js bool) (string, error) {
	all := c.r.AllCounters()
	st := c.stats(all)
	if js {
		return toJSON(st)
	}
	return table(func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "uptime\t%s\n\nCOUNTER\tVALUE\tDESCRIPTION\n", st.Uptime)
		for i := router.Counter(0); i < router.NumCounters; i++ {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", i, st.Counters[i.String()], i.Description())
		}
		fmt.Fprintln(tw, "\nDROP REASON\tPACKETS\tDESCRIPTION")
		for i := router.DropReason(1); i < router.NumDropReasons; i++ {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", i, st.Drops[i.String()], i.Description())
		}
		// The other stages, a table each, then the port drivers'.
		var stage, ports []counter.Value
		flush := func() {
			if len(stage) > 0 {
				fmt.Fprintln(tw)
				stageTable(tw, strings.ToUpper(stage[0].Stage)+" COUNTER", stage)
				stage = stage[:0]
			}
		}
		for _, v := range all {
			switch {
			case v.Port != "":
				ports = append(ports, v)
			case v.Stage != router.CounterStage:
				if len(stage) > 0 && stage[0].Stage != v.Stage {
					flush()
				}
				stage = append(stage, v)
			}
		}
		flush()
		if len(ports) > 0 {
			fmt.Fprintln(tw)
			portTable(tw, ports)
		}
	}), nil
}

func (c *Console) cmdClearStats(args []string, js bool) (string, error) {
	c.r.ClearStats()
	return done(js, "counters cleared", nil)
}

func (c *Console) cmdClearARP(args []string, js bool) (string, error) {
	c.r.ClearARP()
	return done(js, "neighbour cache cleared (static entries kept)", nil)
}

func (c *Console) cmdRouteAdd(args []string, js bool) (string, error) {
	if len(args) != 3 || args[1] != "via" {
		return "", errors.New("usage: ip route add PREFIX via ADDR")
	}
	p, err := netip.ParsePrefix(args[0])
	if err != nil {
		return "", fmt.Errorf("bad prefix %q", args[0])
	}
	gw, err := netip.ParseAddr(args[2])
	if err != nil || gw.Is4() != p.Addr().Is4() || gw.Zone() != "" {
		return "", fmt.Errorf("bad address %q", args[2])
	}
	addRoute := c.r.AddRoute
	if p.Addr().Is6() {
		addRoute = c.r.AddRoute6
	}
	network, err := addRoute(p, gw)
	if err != nil {
		return "", err
	}
	return done(js, fmt.Sprintf("added %s via %s (%s)", p.Masked(), gw, network),
		map[string]any{"prefix": p.Masked().String(), "via": gw.String(), "network": network})
}

func (c *Console) cmdRouteDel(args []string, js bool) (string, error) {
	if len(args) != 1 {
		return "", errors.New("usage: ip route del PREFIX")
	}
	p, err := netip.ParsePrefix(args[0])
	if err != nil {
		return "", fmt.Errorf("bad prefix %q", args[0])
	}
	del := c.r.DeleteRoute
	if p.Addr().Is6() {
		del = c.r.DeleteRoute6
	}
	if !del(p) {
		return "", fmt.Errorf("no runtime route for %s", p.Masked())
	}
	return done(js, fmt.Sprintf("deleted %s", p.Masked()), map[string]any{"prefix": p.Masked().String()})
}

func (c *Console) cmdReload(args []string, js bool) (string, error) {
	if c.opts.Reload == nil {
		return "", errors.New("reload is not available")
	}
	msg, err := c.opts.Reload()
	if err != nil {
		return "", err
	}
	return done(js, msg, nil)
}
