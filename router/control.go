package router

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"vrouter/fib"
	"vrouter/packet"
)

// Request is one control-socket request (one JSON object per line).
type Request struct {
	Args []string `json:"args"`
	JSON bool     `json:"json"`
}

// Response is the answer to a Request.
type Response struct {
	OK     bool   `json:"ok"`
	Output string `json:"output,omitempty"`
	Error  string `json:"error,omitempty"`
}

// ReloadFunc, when set, performs a reload (re-read the file); used by the
// `reload` command. It returns a human-readable summary.
type ReloadFunc func() (string, error)

// Command is one console command.
type Command struct {
	Words []string // fixed words, e.g. {"show", "ip", "route"}
	Args  string   // argument synopsis
	Help  string
	run   func(r *Router, args []string, js bool) (string, error)
}

// Commands lists the console commands (used by help and completion).
func Commands() []Command { return commands }

var commands []Command

func init() {
	commands = []Command{
		{Words: []string{"show", "interfaces"}, Help: "ports and networks: driver, device, MAC, MTU, VLAN, counters", run: (*Router).cmdInterfaces},
		{Words: []string{"show", "ip", "route", "summary"}, Help: "route counts by source and prefix length, FIB memory", run: (*Router).cmdRouteSummary},
		{Words: []string{"show", "ip", "route"}, Args: "[ADDR | PREFIX]", Help: "the FIB; with an address, the route it matches", run: (*Router).cmdRoute},
		{Words: []string{"show", "arp"}, Help: "neighbour cache", run: (*Router).cmdARP},
		{Words: []string{"show", "proxy-arp"}, Help: "addresses answered on behalf of others", run: (*Router).cmdProxyARP},
		{Words: []string{"show", "bridge"}, Args: "[NETWORK]", Help: "MAC addresses learned on multi-link networks", run: (*Router).cmdBridge},
		{Words: []string{"show", "stats"}, Help: "global counters and drop reasons", run: (*Router).cmdStats},
		{Words: []string{"clear", "stats"}, Help: "zero the counters", run: (*Router).cmdClearStats},
		{Words: []string{"clear", "arp"}, Help: "forget learned neighbours (static entries stay)", run: (*Router).cmdClearARP},
		{Words: []string{"ip", "route", "add"}, Args: "PREFIX via ADDR", Help: "add a runtime route (lost on reload unless in the file)", run: (*Router).cmdRouteAdd},
		{Words: []string{"ip", "route", "del"}, Args: "PREFIX", Help: "delete a runtime route", run: (*Router).cmdRouteDel},
		{Words: []string{"show", "conntrack"}, Args: "[ADDR]", Help: "sessions: tuples, state, NAT, timeout, counters", run: (*Router).cmdConntrack},
		{Words: []string{"show", "nat"}, Help: "SNAT rules, floating IPs, port forwards, port-pool use", run: (*Router).cmdShowNAT},
		{Words: []string{"clear", "conntrack"}, Args: "[ADDR]", Help: "delete sessions (of ADDR)", run: (*Router).cmdClearConntrack},
		{Words: []string{"trace"}, Args: "N", Help: "record the next N packets as they pass each stage", run: (*Router).cmdTrace},
		{Words: []string{"show", "trace"}, Help: "the packets recorded by trace", run: (*Router).cmdShowTrace},
		{Words: []string{"capture"}, Args: "PORT FILE [N]", Help: "write the next N frames (default 100) of a port, in and out, to a pcap file", run: (*Router).cmdCapture},
		{Words: []string{"reload"}, Help: "re-read the configuration file and apply it", run: (*Router).cmdReload},
		{Words: []string{"_names"}, Help: "", run: (*Router).cmdNames}, // for console completion
	}
}

// SetReload installs the reload hook.
func (r *Router) SetReload(f ReloadFunc) { r.reloadFn = f }

// Exec runs one console command.
func (r *Router) Exec(args []string, js bool) (string, error) {
	if len(args) == 0 {
		return "", nil
	}
	var best *Command
	for i := range commands {
		c := &commands[i]
		if len(args) >= len(c.Words) && equalWords(args[:len(c.Words)], c.Words) {
			if best == nil || len(c.Words) > len(best.Words) {
				best = c
			}
		}
	}
	if best == nil {
		return "", fmt.Errorf("unknown command %q (try help)", strings.Join(args, " "))
	}
	return best.run(r, args[len(best.Words):], js)
}

func equalWords(a, b []string) bool {
	for i := range b {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func toJSON(v any) (string, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return string(b) + "\n", err
}

func table(f func(tw *tabwriter.Writer)) string {
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 4, 2, ' ', 0)
	f(tw)
	tw.Flush()
	return sb.String()
}

// InterfaceInfo is one row of show interfaces.
type InterfaceInfo struct {
	Ports    []PortStats   `json:"ports"`
	Networks []NetworkInfo `json:"networks"`
}

// NetworkInfo describes a network.
type NetworkInfo struct {
	Name      string      `json:"name"`
	MAC       string      `json:"mac"`
	MTU       int         `json:"mtu"`
	Links     []string    `json:"links"`
	Addresses []string    `json:"addresses"`
	ProxyARP  bool        `json:"proxy_arp"`
	HostRoute bool        `json:"hostroute,omitempty"`
	LinkStats []LinkStats `json:"link_stats"`
	RxPackets uint64      `json:"rx_packets"`
	TxPackets uint64      `json:"tx_packets"`
}

// LinkStats are the counters of one link of a network.
type LinkStats struct {
	Link      string `json:"link"`
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
}

func (r *Router) networks() []NetworkInfo {
	s := r.snap.Load()
	var out []NetworkInfo
	s.eachNetwork(func(n *network) {
		ni := NetworkInfo{Name: n.name, MAC: n.mac.String(), MTU: n.mtu, ProxyARP: n.proxyARP, HostRoute: n.hostRoute}
		for _, l := range n.links {
			name := s.ports[l.port].name
			if l.vid != 0 {
				name = fmt.Sprintf("%s.%d", name, l.vid)
			}
			ni.Links = append(ni.Links, name)
			lc := s.links[l.id]
			ls := LinkStats{Link: name, RxPackets: lc.rxPackets.Load(), RxBytes: lc.rxBytes.Load(),
				TxPackets: lc.txPackets.Load(), TxBytes: lc.txBytes.Load()}
			ni.LinkStats = append(ni.LinkStats, ls)
			ni.RxPackets += ls.RxPackets
			ni.TxPackets += ls.TxPackets
		}
		for _, a := range n.addrs {
			ni.Addresses = append(ni.Addresses, a.prefix.String())
		}
		out = append(out, ni)
	})
	return out
}

func (r *Router) cmdInterfaces(args []string, js bool) (string, error) {
	info := InterfaceInfo{Ports: r.Ports(), Networks: r.networks()}
	if js {
		return toJSON(info)
	}
	return table(func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "PORT\tDRIVER\tDEVICE\tMAC\tMTU\tRX PKTS\tRX BYTES\tTX PKTS\tTX BYTES\tDROPS")
		for _, p := range info.Ports {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", p.Name, p.Driver, p.Device, p.MAC, p.MTU,
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

// RouteInfo is one route for display.
type RouteInfo struct {
	Prefix  string `json:"prefix"`
	Source  string `json:"source"`
	Type    string `json:"type"`
	Via     string `json:"via,omitempty"`
	Network string `json:"network,omitempty"`
}

func (r *Router) routeInfo(rt fib.Route) RouteInfo {
	s := r.snap.Load()
	ri := RouteInfo{Prefix: rt.Prefix.String(), Source: rt.Source.String(), Type: rt.NH.Kind.String()}
	if rt.NH.Kind == fib.KindConnected || rt.NH.Kind == fib.KindGateway {
		if int(rt.NH.Network) < len(s.nets) {
			ri.Network = s.nets[rt.NH.Network].name
		}
	}
	if rt.NH.Kind == fib.KindGateway {
		ri.Via = packet.Addr(rt.NH.Gateway).String()
	}
	return ri
}

func (r *Router) renderRoutes(rs []RouteInfo, js bool) (string, error) {
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

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

const maxRouteRows = 1000

func (r *Router) cmdRoute(args []string, js bool) (string, error) {
	if len(args) > 1 {
		return "", errors.New("usage: show ip route [ADDR | PREFIX | summary]")
	}
	if len(args) == 1 {
		if strings.Contains(args[0], "/") {
			p, err := netip.ParsePrefix(args[0])
			if err != nil || !p.Addr().Is4() {
				return "", fmt.Errorf("bad prefix %q", args[0])
			}
			rt, ok := r.FIB.Get(p)
			if !ok {
				return "", fmt.Errorf("no route for %s", p.Masked())
			}
			return r.renderRoutes([]RouteInfo{r.routeInfo(rt)}, js)
		}
		a, err := netip.ParseAddr(args[0])
		if err != nil || !a.Is4() {
			return "", fmt.Errorf("bad address %q", args[0])
		}
		rt, ok := r.FIB.Match(a)
		if !ok {
			return "", fmt.Errorf("no route to %s", a)
		}
		return r.renderRoutes([]RouteInfo{r.routeInfo(rt)}, js)
	}
	all := r.FIB.Routes()
	rs := make([]RouteInfo, 0, min(len(all), maxRouteRows))
	for i, rt := range all {
		if i == maxRouteRows && !js {
			break
		}
		rs = append(rs, r.routeInfo(rt))
	}
	out, err := r.renderRoutes(rs, js)
	if !js && len(all) > maxRouteRows {
		out += fmt.Sprintf("... %d more routes (use show ip route summary, or -j for all)\n", len(all)-maxRouteRows)
	}
	return out, err
}

// RouteSummary is show ip route summary: the FIB's counts and, when a
// kernel table is followed, the import counters.
type RouteSummary struct {
	fib.Summary
	Kernel any `json:"kernel,omitempty"`
}

func (r *Router) cmdRouteSummary(args []string, js bool) (string, error) {
	s := r.FIB.Summary()
	var ks any
	if f := r.kernelStats.Load(); f != nil {
		ks = (*f)()
	}
	if js {
		return toJSON(RouteSummary{Summary: s, Kernel: ks})
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

// NeighInfo is one neighbour for display.
type NeighInfo struct {
	IP      string `json:"ip"`
	MAC     string `json:"mac"`
	Network string `json:"network"`
	State   string `json:"state"`
	Age     string `json:"age"`
	Queued  int    `json:"queued,omitempty"`
}

func (r *Router) cmdARP(args []string, js bool) (string, error) {
	s := r.snap.Load()
	es := r.Neigh.Entries(r.clock.Now())
	sort.Slice(es, func(i, j int) bool {
		if es[i].Network != es[j].Network {
			return es[i].Network < es[j].Network
		}
		return es[i].IP < es[j].IP
	})
	var out []NeighInfo
	for _, e := range es {
		ni := NeighInfo{IP: packet.Addr(e.IP).String(), State: e.State.String(), Age: e.Age.Truncate(time.Second).String(), Queued: e.Queued}
		if e.State != 1 { // incomplete has no MAC yet
			ni.MAC = e.MAC.String()
		}
		if int(e.Network) < len(s.nets) {
			ni.Network = s.nets[e.Network].name
		}
		out = append(out, ni)
	}
	if js {
		if out == nil {
			out = []NeighInfo{}
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

// ProxyInfo is one published address.
type ProxyInfo struct {
	IP      string `json:"ip"`
	Network string `json:"network"`
	Why     string `json:"why"`
}

func (r *Router) cmdProxyARP(args []string, js bool) (string, error) {
	s := r.snap.Load()
	var out []ProxyInfo
	for k := range s.published {
		ni := int(k >> 32)
		out = append(out, ProxyInfo{IP: packet.Addr(uint32(k)).String(), Network: s.nets[ni].name, Why: "published"})
	}
	s.eachNetwork(func(n *network) {
		if n.proxyARP {
			out = append(out, ProxyInfo{IP: "*", Network: n.name, Why: "proxy_arp: addresses routed out of another network"})
		}
		if n.hostRoute {
			out = append(out, ProxyInfo{IP: "*", Network: n.name, Why: "host-routed link: every request answered"})
		}
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Network != out[j].Network {
			return out[i].Network < out[j].Network
		}
		return out[i].IP < out[j].IP
	})
	if js {
		if out == nil {
			out = []ProxyInfo{}
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

// StatsInfo is show stats.
type StatsInfo struct {
	Uptime   string            `json:"uptime"`
	Counters map[string]uint64 `json:"counters"`
	Drops    map[string]uint64 `json:"drops"`
	Neigh    map[string]uint64 `json:"neighbour"`
}

// Stats gathers show stats.
func (r *Router) Stats() StatsInfo {
	st := StatsInfo{Uptime: time.Since(r.started).Truncate(time.Second).String(),
		Counters: map[string]uint64{}, Drops: map[string]uint64{}, Neigh: map[string]uint64{}}
	c := r.Counters()
	for i, v := range c {
		st.Counters[Counter(i).String()] = v
	}
	d := r.Drops()
	for i, v := range d {
		if i != int(DropNone) {
			st.Drops[DropReason(i).String()] = v
		}
	}
	ns := r.Neigh.Stats()
	st.Neigh["entries"] = uint64(ns.Entries)
	st.Neigh["requests"] = ns.Requests
	st.Neigh["queued"] = ns.Queued
	st.Neigh["queue-drops"] = ns.QueueDrops
	st.Neigh["failed"] = ns.Failed
	st.Neigh["failed-drops"] = ns.FailedDrops
	st.Neigh["table-full"] = ns.TableFull
	return st
}

func (r *Router) cmdStats(args []string, js bool) (string, error) {
	st := r.Stats()
	if js {
		return toJSON(st)
	}
	return table(func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "uptime\t%s\n\nCOUNTER\tVALUE\n", st.Uptime)
		for i := Counter(0); i < NumCounters; i++ {
			fmt.Fprintf(tw, "%s\t%d\n", i, st.Counters[i.String()])
		}
		fmt.Fprintln(tw, "\nDROP REASON\tPACKETS\tDESCRIPTION")
		for i := DropReason(1); i < NumDropReasons; i++ {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", i, st.Drops[i.String()], i.Description())
		}
		fmt.Fprintln(tw, "\nNEIGHBOUR\tVALUE")
		keys := make([]string, 0, len(st.Neigh))
		for k := range st.Neigh {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%d\n", k, st.Neigh[k])
		}
	}), nil
}

func (r *Router) cmdClearStats(args []string, js bool) (string, error) {
	r.ClearStats()
	return "counters cleared\n", nil
}

func (r *Router) cmdClearARP(args []string, js bool) (string, error) {
	r.Neigh.Flush()
	return "neighbour cache cleared (static entries kept)\n", nil
}

func (r *Router) cmdRouteAdd(args []string, js bool) (string, error) {
	if len(args) != 3 || args[1] != "via" {
		return "", errors.New("usage: ip route add PREFIX via ADDR")
	}
	p, err := netip.ParsePrefix(args[0])
	if err != nil || !p.Addr().Is4() {
		return "", fmt.Errorf("bad prefix %q", args[0])
	}
	gw, err := netip.ParseAddr(args[2])
	if err != nil || !gw.Is4() {
		return "", fmt.Errorf("bad address %q", args[2])
	}
	s := r.snap.Load()
	ni := s.networkContaining(packet.U32(gw))
	if ni < 0 {
		return "", fmt.Errorf("gateway %s is on no connected network", gw)
	}
	r.FIB.Add(fib.Route{Prefix: p.Masked(), Source: fib.Runtime,
		NH: fib.NextHop{Kind: fib.KindGateway, Network: uint16(ni), Gateway: packet.U32(gw)}})
	return fmt.Sprintf("added %s via %s (%s)\n", p.Masked(), gw, s.nets[ni].name), nil
}

func (r *Router) cmdRouteDel(args []string, js bool) (string, error) {
	if len(args) != 1 {
		return "", errors.New("usage: ip route del PREFIX")
	}
	p, err := netip.ParsePrefix(args[0])
	if err != nil || !p.Addr().Is4() {
		return "", fmt.Errorf("bad prefix %q", args[0])
	}
	if !r.FIB.Delete(p.Masked(), fib.Runtime) {
		return "", fmt.Errorf("no runtime route for %s", p.Masked())
	}
	return fmt.Sprintf("deleted %s\n", p.Masked()), nil
}

func (r *Router) cmdReload(args []string, js bool) (string, error) {
	if r.reloadFn == nil {
		return "", errors.New("reload is not available")
	}
	msg, err := r.reloadFn()
	if err != nil {
		return "", err
	}
	return msg + "\n", nil
}

// Serve answers control requests on a unix socket at path until Stop.
func (r *Router) Serve(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return fmt.Errorf("control socket %s is in use by another router", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	os.Chmod(path, 0o660)
	go func() {
		<-r.stop
		ln.Close()
		os.Remove(path)
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.serveConn(c)
		}
	}()
	return nil
}

func (r *Router) serveConn(c net.Conn) {
	defer c.Close()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	enc := json.NewEncoder(c)
	for sc.Scan() {
		var req Request
		var resp Response
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp.Error = "bad request: " + err.Error()
		} else {
			out, err := r.Exec(req.Args, req.JSON)
			resp.Output = out
			if err != nil {
				resp.Error = err.Error()
			} else {
				resp.OK = true
			}
		}
		if err := enc.Encode(&resp); err != nil {
			return
		}
	}
}
