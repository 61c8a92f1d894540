package console

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"vrouter/filter"
	"vrouter/router"
)

// collector is the router's Prometheus collector. It reads the counters
// when scraped (the workers' per-worker counters are summed then, as for
// show stats): nothing is recorded on the data path for it.
type collector struct {
	r *router.Router

	port   []portMetric
	portUp *prometheus.Desc

	// counters are the declared counters of every stage (counters.go);
	// arpRequests and arpFailed repeat two of them under their old names.
	counters               counterMetrics
	arpRequests, arpFailed *prometheus.Desc

	fibRoutes, fibMemory *prometheus.Desc

	reloads, lastReloadOK, uptime, goroutines, gomaxprocs, heap, allocs, gcs *prometheus.Desc

	natPoolUsed, natPoolSize *prometheus.Desc

	host                                   hostMetrics // hostif.go
	ha                                     haMetrics   // ha.go
	filterPackets, filterBytes, filterHits *prometheus.Desc
}

// portMetric is one per-port counter.
type portMetric struct {
	desc *prometheus.Desc
	get  func(p *router.PortStats) uint64
}

func newCollector(r *router.Router) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("vrouter_"+name, help, labels, nil)
	}
	pm := func(name, help string, get func(p *router.PortStats) uint64) portMetric {
		return portMetric{d(name, help, "port", "driver", "device"), get}
	}
	c := &collector{
		r: r,
		port: []portMetric{
			pm("port_rx_packets_total", "Frames received on the port.", func(p *router.PortStats) uint64 { return p.RxPackets }),
			pm("port_rx_bytes_total", "Bytes received on the port.", func(p *router.PortStats) uint64 { return p.RxBytes }),
			pm("port_tx_packets_total", "Frames sent on the port.", func(p *router.PortStats) uint64 { return p.TxPackets }),
			pm("port_tx_bytes_total", "Bytes sent on the port.", func(p *router.PortStats) uint64 { return p.TxBytes }),
			pm("port_drops_total", "Frames dropped at the port (malformed, unknown VLAN, refused by the kernel).",
				func(p *router.PortStats) uint64 { return p.Drops + p.TxErrors }),
			pm("port_kernel_rx_dropped_total", "Frames the port driver could not take (too large, kernel drops).",
				func(p *router.PortStats) uint64 { return p.DeviceStats.RxDropped }),
		},
		portUp: d("port_up", "1 if the port's device is up (or its state is unknown), 0 if it is down, administratively down or lost (show interfaces: STATE).",
			"port", "driver", "device"),
		arpRequests:  d("arp_requests_total", "ARP requests the neighbour cache asked for."),
		arpFailed:    d("arp_failed_total", "Neighbour resolutions that failed."),
		fibRoutes:    d("fib_routes", "Routes installed in the FIB, by source.", "source"),
		fibMemory:    d("fib_memory_bytes", "Memory of the compiled FIB."),
		reloads:      d("reloads_total", "Configuration reloads attempted."),
		lastReloadOK: d("last_reload_success", "1 if the last reload succeeded (or none happened), 0 if it failed."),
		uptime:       d("uptime_seconds", "Seconds since the router started."),
		goroutines:   d("goroutines", "Goroutines of the router process (workers, control plane)."),
		gomaxprocs:   d("gomaxprocs", "Threads that may run the router's Go code at once (GOMAXPROCS): [router] workers when set, else the CPUs the process may use."),
		heap:         d("heap_bytes", "Bytes of live heap objects of the router process as of the last garbage collection (Go runtime)."),
		allocs:       d("heap_allocated_bytes_total", "Bytes the router process has allocated on the heap since it started (Go runtime): flat while the data path runs, which allocates nothing per packet."),
		gcs:          d("gc_cycles_total", "Garbage collections since the router started (Go runtime)."),
		natPoolUsed:  d("nat_pool_ports_used", "Dynamic ports held per external address and protocol.", "address", "proto"),
		natPoolSize:  d("nat_pool_ports", "Size of the dynamic port range per external address and protocol.", "address", "proto"),
		filterPackets: d("filter_packets_total", "Packets a filter rule (rule=N, from 1) or a ruleset's default (rule=\"default\") decided.",
			"ruleset", "rule", "action"),
		filterBytes: d("filter_bytes_total", "Bytes of the packets a filter rule or a ruleset's default decided.", "ruleset", "rule", "action"),
		filterHits: d("filter_hits_total", "Classifications by a filter rule or a ruleset's default (first packets of flows; later ones pass on their session).",
			"ruleset", "rule", "action"),
	}
	c.counters.learn(r)
	c.host = newHostMetrics()
	c.ha = newHAMetrics()
	return c
}

// Describe sends every metric's description.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.port {
		ch <- m.desc
	}
	for _, d := range []*prometheus.Desc{c.portUp, c.arpRequests, c.arpFailed, c.fibRoutes, c.fibMemory,
		c.reloads, c.lastReloadOK, c.uptime, c.goroutines, c.gomaxprocs, c.heap, c.allocs, c.gcs, c.natPoolUsed, c.natPoolSize, c.filterPackets, c.filterBytes, c.filterHits} {
		ch <- d
	}
	c.counters.describe(ch)
	c.host.describe(ch)
	c.ha.describe(ch)
}

// Collect reads the router's counters.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	r := c.r
	ports := r.Ports()
	for _, m := range c.port {
		for i := range ports {
			p := &ports[i]
			counter(m.desc, m.get(p), p.Name, p.Driver, p.Device)
		}
	}
	for i := range ports {
		p := &ports[i]
		up := 0.0
		if p.Up() {
			up = 1
		}
		gauge(c.portUp, up, p.Name, p.Driver, p.Device)
	}
	c.counters.collect(r, ch)
	c.host.collect(r, ch)
	c.ha.collect(r, ch)
	ns := r.Neigh.Stats()
	counter(c.arpRequests, ns.Requests)
	counter(c.arpFailed, ns.Failed)
	sum := r.FIB.Summary()
	for src, n := range sum.BySource {
		gauge(c.fibRoutes, float64(n), src)
	}
	gauge(c.fibMemory, float64(sum.MemoryBytes))
	reloads, lastOK := r.Reloads()
	counter(c.reloads, reloads)
	ok := 0.0
	if lastOK {
		ok = 1
	}
	gauge(c.lastReloadOK, ok)
	gauge(c.uptime, float64(int64(r.Uptime()/time.Second)))
	gauge(c.goroutines, float64(runtime.NumGoroutine()))
	gauge(c.gomaxprocs, float64(runtime.GOMAXPROCS(0)))
	heap, allocs, gcs := runtimeStats()
	gauge(c.heap, float64(heap))
	counter(c.allocs, allocs)
	counter(c.gcs, gcs)

	for _, f := range r.Filters() {
		one := func(rule, action string, x filter.Count) {
			counter(c.filterPackets, x.Packets, f.Name, rule, action)
			counter(c.filterBytes, x.Bytes, f.Name, rule, action)
			counter(c.filterHits, x.Hits, f.Name, rule, action)
		}
		for i, x := range f.Counts {
			one(strconv.Itoa(i+1), string(f.Rules[i].Action), x)
		}
		one("default", f.Default.String(), f.Other)
	}

	// An address in the `to` range of several SNAT rules has one pool: it
	// is listed once.
	seen := map[string]bool{}
	for _, s := range r.NAT.Rules().SNAT {
		for _, p := range s.Pools {
			key := p.Addr.String() + "/" + p.Proto
			if seen[key] {
				continue
			}
			seen[key] = true
			gauge(c.natPoolUsed, float64(p.Used), p.Addr.String(), p.Proto)
			gauge(c.natPoolSize, float64(p.Size), p.Addr.String(), p.Proto)
		}
	}
}

// NewRegistry returns a Prometheus registry of the router's metrics (every
// name starts with vrouter_). It is a registry of its own, not the global
// default one.
func NewRegistry(r *router.Router) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(r))
	return reg
}

// MetricsHandler serves the router's metrics in the Prometheus exposition
// formats.
func MetricsHandler(r *router.Router) http.Handler {
	reg := NewRegistry(r)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// MetricsServer serves /metrics over HTTP.
type MetricsServer struct {
	srv  *http.Server
	addr net.Addr
	done chan struct{}
}

// ServeMetrics serves r's metrics at http://addr/metrics until Close.
func ServeMetrics(addr string, r *router.Router) (*MetricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics endpoint %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", MetricsHandler(r))
	m := &MetricsServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, addr: ln.Addr(), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		m.srv.Serve(ln)
	}()
	return m, nil
}

// Addr is the address the server listens on.
func (m *MetricsServer) Addr() string { return m.addr.String() }

// Close stops the server (and the scrapes in progress).
func (m *MetricsServer) Close() error {
	err := m.srv.Close()
	<-m.done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// runtimeStats reads from runtime/metrics (no stop-the-world, unlike
// runtime.ReadMemStats) the live heap (marked by the last GC: garbage not
// yet collected does not count, so a leak shows and the GC's pacing does
// not), the bytes allocated since start and the GC cycles.
func runtimeStats() (heap, allocs, gcs uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[i].Value.Uint64()
	}
	return v(0), v(1), v(2)
}
