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

	"vrouter/arp"
	"vrouter/fib"
	"vrouter/router/port"
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

// interfacesJSON is show interfaces -j.
type interfacesJSON struct {
	Ports    []portJSON    `json:"ports"`
	Networks []networkJSON `json:"networks"`
}

// portJSON is one port of show interfaces -j.
type portJSON struct {
	Name        string     `json:"name"`
	Driver      string     `json:"driver"`
	Device      string     `json:"device"`
	MAC         string     `json:"mac"`
	MTU         int        `json:"mtu"`
	RxPackets   uint64     `json:"rx_packets"`
	RxBytes     uint64     `json:"rx_bytes"`
	TxPackets   uint64     `json:"tx_packets"`
	TxBytes     uint64     `json:"tx_bytes"`
	Drops       uint64     `json:"drops"`
	TxErrors    uint64     `json:"tx_errors"`
	DeviceStats port.Stats `json:"device_stats"`
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

func (r *Router) interfaces() interfacesJSON {
	var info interfacesJSON
	for _, p := range r.Ports() {
		info.Ports = append(info.Ports, portJSON{Name: p.Name, Driver: p.Driver, Device: p.Device, MAC: p.MAC.String(), MTU: p.MTU,
			RxPackets: p.RxPackets, RxBytes: p.RxBytes, TxPackets: p.TxPackets, TxBytes: p.TxBytes,
			Drops: p.Drops, TxErrors: p.TxErrors, DeviceStats: p.DeviceStats})
	}
	for _, n := range r.Networks() {
		nj := networkJSON{Name: n.Name, MAC: n.MAC.String(), MTU: n.MTU, ProxyARP: n.ProxyARP, HostRoute: n.HostRoute}
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

func (r *Router) cmdInterfaces(args []string, js bool) (string, error) {
	info := r.interfaces()
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

// routeJSON is one route of show ip route.
type routeJSON struct {
	Prefix  string `json:"prefix"`
	Source  string `json:"source"`
	Type    string `json:"type"`
	Via     string `json:"via,omitempty"`
	Network string `json:"network,omitempty"`
}

func (r *Router) routeInfo(rt fib.Route) routeJSON {
	ri := routeJSON{Prefix: rt.Prefix.String(), Source: rt.Source.String(), Type: rt.NH.Kind.String()}
	if rt.NH.Kind == fib.KindConnected || rt.NH.Kind == fib.KindGateway {
		ri.Network = r.NetworkName(rt.NH.Network)
	}
	if rt.NH.Kind == fib.KindGateway {
		ri.Via = ipv4(rt.NH.Gateway).String()
	}
	return ri
}

func (r *Router) renderRoutes(rs []routeJSON, js bool) (string, error) {
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
			return r.renderRoutes([]routeJSON{r.routeInfo(rt)}, js)
		}
		a, err := netip.ParseAddr(args[0])
		if err != nil || !a.Is4() {
			return "", fmt.Errorf("bad address %q", args[0])
		}
		rt, ok := r.FIB.Match(a)
		if !ok {
			return "", fmt.Errorf("no route to %s", a)
		}
		return r.renderRoutes([]routeJSON{r.routeInfo(rt)}, js)
	}
	all := r.FIB.Routes()
	rs := make([]routeJSON, 0, min(len(all), maxRouteRows))
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

// routeSummaryJSON is show ip route summary -j: the FIB's counts and, when
// a kernel table is followed, the import counters.
type routeSummaryJSON struct {
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

func (r *Router) cmdARP(args []string, js bool) (string, error) {
	var out []neighJSON
	for _, n := range r.Neighbours() {
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

func (r *Router) cmdProxyARP(args []string, js bool) (string, error) {
	var out []proxyJSON
	for _, e := range r.ProxyARP() {
		switch e.Kind {
		case ProxyPublished:
			out = append(out, proxyJSON{IP: e.IP.String(), Network: e.Network, Why: "published"})
		case ProxyNetwork:
			out = append(out, proxyJSON{IP: "*", Network: e.Network, Why: "proxy_arp: addresses routed out of another network"})
		case ProxyHostRoute:
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

// statsJSON is show stats.
type statsJSON struct {
	Uptime   string            `json:"uptime"`
	Counters map[string]uint64 `json:"counters"`
	Drops    map[string]uint64 `json:"drops"`
	Neigh    map[string]uint64 `json:"neighbour"`
}

func (r *Router) stats() statsJSON {
	st := statsJSON{Uptime: r.Uptime().Truncate(time.Second).String(),
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
	st := r.stats()
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
	r.ClearARP()
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
	network, err := r.AddRoute(p, gw)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("added %s via %s (%s)\n", p.Masked(), gw, network), nil
}

func (r *Router) cmdRouteDel(args []string, js bool) (string, error) {
	if len(args) != 1 {
		return "", errors.New("usage: ip route del PREFIX")
	}
	p, err := netip.ParsePrefix(args[0])
	if err != nil || !p.Addr().Is4() {
		return "", fmt.Errorf("bad prefix %q", args[0])
	}
	if !r.DeleteRoute(p) {
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
