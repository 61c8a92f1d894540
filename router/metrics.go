package router

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"
)

// MetricsSource adds metrics of other subsystems (NAT, conntrack) to /metrics.
type MetricsSource func(w io.Writer)

// AddMetrics registers an extra metrics writer.
func (r *Router) AddMetrics(f MetricsSource) { r.extraMetrics = append(r.extraMetrics, f) }

// WriteMetrics writes the Prometheus text exposition of the router's counters.
// Everything is read from per-worker counters; nothing on the data path locks.
func (r *Router) WriteMetrics(w io.Writer) {
	metric := func(name, typ, help string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	ports := r.Ports()
	type pm struct {
		name, help string
		get        func(p PortStats) uint64
	}
	for _, m := range []pm{
		{"vrouter_port_rx_packets_total", "Frames received on the port.", func(p PortStats) uint64 { return p.RxPackets }},
		{"vrouter_port_rx_bytes_total", "Bytes received on the port.", func(p PortStats) uint64 { return p.RxBytes }},
		{"vrouter_port_tx_packets_total", "Frames sent on the port.", func(p PortStats) uint64 { return p.TxPackets }},
		{"vrouter_port_tx_bytes_total", "Bytes sent on the port.", func(p PortStats) uint64 { return p.TxBytes }},
		{"vrouter_port_drops_total", "Frames dropped at the port (malformed, unknown VLAN, refused by the kernel).", func(p PortStats) uint64 { return p.Drops + p.TxErrors }},
		{"vrouter_port_kernel_rx_dropped_total", "Frames the port driver could not take (too large, kernel drops).", func(p PortStats) uint64 { return p.DeviceStats.RxDropped }},
	} {
		metric(m.name, "counter", m.help)
		for _, p := range ports {
			fmt.Fprintf(w, "%s{port=%q,driver=%q,device=%q} %d\n", m.name, p.Name, p.Driver, p.Device, m.get(p))
		}
	}
	metric("vrouter_drops_total", "counter", "Packets dropped by the router, by reason.")
	d := r.Drops()
	for i := DropReason(1); i < NumDropReasons; i++ {
		fmt.Fprintf(w, "vrouter_drops_total{reason=%q} %d\n", i.String(), d[i])
	}
	metric("vrouter_events_total", "counter", "Data-path events (forwarded packets, ICMP sent, ARP, L2 switching).")
	c := r.Counters()
	for i := Counter(0); i < NumCounters; i++ {
		fmt.Fprintf(w, "vrouter_events_total{event=%q} %d\n", i.String(), c[i])
	}
	ns := r.Neigh.Stats()
	metric("vrouter_arp_entries", "gauge", "Entries in the neighbour cache.")
	fmt.Fprintf(w, "vrouter_arp_entries %d\n", ns.Entries)
	metric("vrouter_arp_requests_total", "counter", "ARP requests the neighbour cache asked for.")
	fmt.Fprintf(w, "vrouter_arp_requests_total %d\n", ns.Requests)
	metric("vrouter_arp_failed_total", "counter", "Neighbour resolutions that failed.")
	fmt.Fprintf(w, "vrouter_arp_failed_total %d\n", ns.Failed)
	sum := r.FIB.Summary()
	metric("vrouter_fib_routes", "gauge", "Routes installed in the FIB, by source.")
	srcs := make([]string, 0, len(sum.BySource))
	for s := range sum.BySource {
		srcs = append(srcs, s)
	}
	sort.Strings(srcs)
	for _, s := range srcs {
		fmt.Fprintf(w, "vrouter_fib_routes{source=%q} %d\n", s, sum.BySource[s])
	}
	metric("vrouter_fib_memory_bytes", "gauge", "Memory of the compiled FIB.")
	fmt.Fprintf(w, "vrouter_fib_memory_bytes %d\n", sum.MemoryBytes)
	metric("vrouter_reloads_total", "counter", "Configuration reloads attempted.")
	reloads, lastOK := r.Reloads()
	fmt.Fprintf(w, "vrouter_reloads_total %d\n", reloads)
	metric("vrouter_last_reload_success", "gauge", "1 if the last reload succeeded (or none happened), 0 if it failed.")
	ok := 0
	if lastOK {
		ok = 1
	}
	fmt.Fprintf(w, "vrouter_last_reload_success %d\n", ok)
	metric("vrouter_uptime_seconds", "gauge", "Seconds since the router started.")
	fmt.Fprintf(w, "vrouter_uptime_seconds %d\n", int64(r.Uptime().Seconds()))
	r.writeNATMetrics(w)
	for _, f := range r.extraMetrics {
		f(w)
	}
}

// ServeMetrics serves /metrics on addr until Stop.
func (r *Router) ServeMetrics(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics endpoint %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		var sb strings.Builder
		r.WriteMetrics(&sb)
		io.WriteString(w, sb.String())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	go func() {
		<-r.stop
		srv.Close()
	}()
	return nil
}

// writeNATMetrics adds conntrack and NAT metrics.
func (r *Router) writeNATMetrics(w io.Writer) {
	fmt.Fprintf(w, "# HELP vrouter_conntrack_sessions Sessions in the conntrack table.\n# TYPE vrouter_conntrack_sessions gauge\nvrouter_conntrack_sessions %d\n", r.NAT.Len())
	fmt.Fprintf(w, "# HELP vrouter_conntrack_max Capacity of the conntrack table.\n# TYPE vrouter_conntrack_max gauge\nvrouter_conntrack_max %d\n", r.NAT.Max())
	c := r.NAT.Counters()
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	gauges := map[string]bool{"nat-sessions": true, "nat-sessions-max": true, "nat-frag-entries": true, "nat-frag-holding": true}
	fmt.Fprintf(w, "# HELP vrouter_nat_events_total NAT and conntrack counters, drops by reason.\n# TYPE vrouter_nat_events_total counter\n")
	for _, k := range keys {
		if !gauges[k] {
			fmt.Fprintf(w, "vrouter_nat_events_total{event=%q} %d\n", k, c[k])
		}
	}
	fmt.Fprintf(w, "# HELP vrouter_nat_fragment_entries First fragments remembered for translating later fragments.\n# TYPE vrouter_nat_fragment_entries gauge\nvrouter_nat_fragment_entries %d\n", c["nat-frag-entries"])
	fmt.Fprintf(w, "# HELP vrouter_nat_fragments_holding Early fragments held until their first fragment comes.\n# TYPE vrouter_nat_fragments_holding gauge\nvrouter_nat_fragments_holding %d\n", c["nat-frag-holding"])
	ri := r.NAT.Rules()
	fmt.Fprintf(w, "# HELP vrouter_nat_pool_ports_used Dynamic ports held per external address and protocol.\n# TYPE vrouter_nat_pool_ports_used gauge\n")
	for _, s := range ri.SNAT {
		for _, p := range s.Pools {
			fmt.Fprintf(w, "vrouter_nat_pool_ports_used{address=%q,proto=%q} %d\n", p.Addr, p.Proto, p.Used)
		}
	}
	fmt.Fprintf(w, "# HELP vrouter_nat_pool_ports Size of the dynamic port range per external address and protocol.\n# TYPE vrouter_nat_pool_ports gauge\n")
	for _, s := range ri.SNAT {
		for _, p := range s.Pools {
			fmt.Fprintf(w, "vrouter_nat_pool_ports{address=%q,proto=%q} %d\n", p.Addr, p.Proto, p.Size)
		}
	}
}
