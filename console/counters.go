package console

// The counters every stage declares (internal/counter), as show stats,
// show nat and /metrics present them. Nothing here knows a stage's
// counters by name: each is rendered from its Desc.

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/prometheus/client_golang/prometheus"

	"vrouter/internal/counter"
	"vrouter/nat"
	"vrouter/router"
)

// kindsJSON is one stage's (or one port driver's) counters by kind, each a
// map of counter name to value. A kind the stage declares nothing of is
// left out.
type kindsJSON struct {
	Drops  map[string]uint64 `json:"drops,omitempty"`
	Events map[string]uint64 `json:"events,omitempty"`
	Gauges map[string]uint64 `json:"gauges,omitempty"`
}

func (k *kindsJSON) add(v counter.Value) {
	m := &k.Events
	switch v.Kind {
	case counter.Drop:
		m = &k.Drops
	case counter.Gauge:
		m = &k.Gauges
	}
	if *m == nil {
		*m = map[string]uint64{}
	}
	(*m)[v.Name] = v.Value
}

// portCountersJSON is one port's driver counters in show stats -j.
type portCountersJSON struct {
	Driver string `json:"driver"`
	kindsJSON
}

// stageTable renders counters as a table headed title, with their kind and
// description: drops first, then events, then gauges, each in declaration
// order.
func stageTable(tw *tabwriter.Writer, title string, vs []counter.Value) {
	vs = append([]counter.Value(nil), vs...)
	sort.SliceStable(vs, func(i, j int) bool { return vs[i].Kind < vs[j].Kind })
	fmt.Fprintf(tw, "%s\tKIND\tVALUE\tDESCRIPTION\n", title)
	for _, v := range vs {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", v.Name, v.Kind, v.Value, v.Help)
	}
}

// portTable renders the port drivers' counters.
func portTable(tw *tabwriter.Writer, vs []counter.Value) {
	fmt.Fprintln(tw, "PORT\tDRIVER\tCOUNTER\tKIND\tVALUE\tDESCRIPTION")
	for _, v := range vs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", v.Port, v.Stage, v.Name, v.Kind, v.Value, v.Help)
	}
}

// The metrics of the declared counters (README, "Metrics"):
//
//	router drops            vrouter_drops_total{reason}
//	router events           vrouter_events_total{event}
//	stage S drops           vrouter_S_drops_total{reason}
//	stage S events          vrouter_S_events_total{event}
//	stage S gauge G         vrouter_S_G (G without a leading "S-", '-' as '_'),
//	                        except the four NAT gauges in legacyGauges
//	port driver drops       vrouter_port_driver_drops_total{port,driver,device,reason}
//	port driver events      vrouter_port_driver_events_total{port,driver,device,event}
//	port driver gauge G     vrouter_port_driver_G{port,driver,device}
//
// The NAT's drops are also in vrouter_nat_events_total{event}, as they
// were before the NAT had a drops family.

// legacyGauges are the metric names (and help) gauges had before the
// naming rule.
var legacyGauges = map[string][2]string{
	"nat/nat-sessions":     {"vrouter_conntrack_sessions", "Sessions in the conntrack table."},
	"nat/nat-sessions-max": {"vrouter_conntrack_max", "Capacity of the conntrack table."},
	"nat/nat-frag-entries": {"vrouter_nat_fragment_entries", "First fragments remembered for translating later fragments."},
	"nat/nat-frag-holding": {"vrouter_nat_fragments_holding", "Early fragments held until their first fragment comes."},
}

// series is one sample of a declared counter: its metric family, help and
// label names, and the label values.
type series struct {
	name, help string
	labels     []string
	values     []string
	typ        prometheus.ValueType
}

// counterSeries returns the samples of v (two for a NAT drop). device is
// the device of v's port, if any.
func counterSeries(v counter.Value, device string) []series {
	typ := prometheus.CounterValue
	if v.Kind == counter.Gauge {
		typ = prometheus.GaugeValue
	}
	gaugeName := func(prefix string) string {
		return prefix + strings.ReplaceAll(strings.TrimPrefix(v.Name, v.Stage+"-"), "-", "_")
	}
	if v.Port != "" {
		labels, values := []string{"port", "driver", "device"}, []string{v.Port, v.Stage, device}
		switch v.Kind {
		case counter.Drop:
			return []series{{"vrouter_port_driver_drops_total", "Frames the port drivers dropped, by port and reason.",
				append(labels, "reason"), append(values, v.Name), typ}}
		case counter.Event:
			return []series{{"vrouter_port_driver_events_total", "Port driver events, by port.",
				append(labels, "event"), append(values, v.Name), typ}}
		}
		return []series{{gaugeName("vrouter_port_driver_"), sentence(v.Help), labels, values, typ}}
	}
	if v.Stage == router.CounterStage {
		if v.Kind == counter.Drop {
			return []series{{"vrouter_drops_total", "Packets dropped by the router, by reason.", []string{"reason"}, []string{v.Name}, typ}}
		}
		return []series{{"vrouter_events_total", "Data-path events (forwarded packets, ICMP sent, ARP, L2 switching).",
			[]string{"event"}, []string{v.Name}, typ}}
	}
	switch v.Kind {
	case counter.Drop:
		s := []series{{"vrouter_" + v.Stage + "_drops_total", fmt.Sprintf("Packets dropped in the %s stage, by reason.", v.Stage),
			[]string{"reason"}, []string{v.Name}, typ}}
		if v.Stage == nat.CounterStage {
			s = append(s, natEvent(v))
		}
		return s
	case counter.Event:
		if v.Stage == nat.CounterStage {
			return []series{natEvent(v)}
		}
		return []series{{"vrouter_" + v.Stage + "_events_total", fmt.Sprintf("Events of the %s stage.", v.Stage),
			[]string{"event"}, []string{v.Name}, typ}}
	}
	if l, ok := legacyGauges[v.Stage+"/"+v.Name]; ok {
		return []series{{l[0], l[1], nil, nil, typ}}
	}
	return []series{{gaugeName("vrouter_" + v.Stage + "_"), sentence(v.Help), nil, nil, typ}}
}

// sentence makes a Desc's help a metric's: capitalised, with a full stop.
func sentence(h string) string {
	if h == "" {
		return h
	}
	return strings.ToUpper(h[:1]) + h[1:] + "."
}

func natEvent(v counter.Value) series {
	return series{"vrouter_nat_events_total", "NAT and conntrack counters, drops by reason.", []string{"event"}, []string{v.Name},
		prometheus.CounterValue}
}

// counterMetrics makes the Prometheus descriptions of the declared
// counters' families, once per family.
type counterMetrics struct {
	mu    sync.Mutex
	descs map[string]*prometheus.Desc
}

func (m *counterMetrics) desc(s series) *prometheus.Desc {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.descs[s.name]
	if d == nil {
		if m.descs == nil {
			m.descs = map[string]*prometheus.Desc{}
		}
		d = prometheus.NewDesc(s.name, s.help, s.labels, nil)
		m.descs[s.name] = d
	}
	return d
}

// learn makes the families of the counters r has now (a port driver a
// reload brings in later gets its families when first collected).
func (m *counterMetrics) learn(r *router.Router) {
	for _, v := range r.AllCounters() {
		for _, s := range counterSeries(v, "") {
			m.desc(s)
		}
	}
}

// describe sends the families known so far.
func (m *counterMetrics) describe(ch chan<- *prometheus.Desc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range m.descs {
		ch <- d
	}
}

// collect sends every counter of every stage.
func (m *counterMetrics) collect(r *router.Router, ch chan<- prometheus.Metric) {
	devices := map[string]string{}
	for _, p := range r.Ports() {
		devices[p.Name] = p.Device
	}
	for _, v := range r.AllCounters() {
		for _, s := range counterSeries(v, devices[v.Port]) {
			ch <- prometheus.MustNewConstMetric(m.desc(s), s.typ, float64(v.Value), s.values...)
		}
	}
}
