package test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"

	"vrouter/arp"
	"vrouter/ha"
	"vrouter/internal/counter"
	"vrouter/nat"
	"vrouter/router"
	"vrouter/router/port/afpacket"
	"vrouter/router/port/tap"
)

// Every counter that the router, NAT and neighbour stages and the afpacket
// and TAP drivers declare is in `show stats -j` and in /metrics of the
// running binary, under the names the README's metrics section gives. The
// declarations are iterated: a counter added to any table is checked.
func TestMetricsEveryCounter(t *testing.T) {
	l := standard(t, "")
	ping(t, l.Lab, l.H1, "198.51.100.10")
	out, err := l.Router.Console("-j", "show", "stats")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var st struct {
		Drops  map[string]uint64                       `json:"drops"`
		Stages map[string]map[string]map[string]uint64 `json:"stages"`
		Ports  map[string]map[string]json.RawMessage   `json:"ports"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("show stats -j: %v\n%s", err, out)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(run(t, l, l.R, "curl", "-sf", "http://127.0.0.1:9469/metrics")))
	if err != nil {
		t.Fatal(err)
	}
	kindKey := map[counter.Kind]string{counter.Drop: "drops", counter.Event: "events", counter.Gauge: "gauges"}
	has := func(family string, labels map[string]string) bool {
	next:
		for _, m := range fams[family].GetMetric() {
			have := map[string]string{}
			for _, lp := range m.Label {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			return true
		}
		return false
	}
	under := func(s string) string { return strings.ReplaceAll(s, "-", "_") }
	label := map[counter.Kind]string{counter.Drop: "reason", counter.Event: "event"}

	legacy := map[string]string{"nat-sessions": "vrouter_conntrack_sessions", "nat-sessions-max": "vrouter_conntrack_max",
		"nat-frag-entries": "vrouter_nat_fragment_entries", "nat-frag-holding": "vrouter_nat_fragments_holding"}
	for _, ds := range [][]counter.Desc{router.Descs(), nat.Descs(), arp.Descs(), ha.Descs()} {
		for _, d := range ds {
			if _, ok := st.Stages[d.Stage][kindKey[d.Kind]][d.Name]; !ok {
				t.Errorf("%s %s: not in show stats -j stages", d.Stage, d.Name)
			}
			var fam string
			var labels map[string]string
			switch {
			case d.Kind == counter.Gauge && d.Stage == "nat" && legacy[d.Name] != "":
				fam = legacy[d.Name]
			case d.Kind == counter.Gauge:
				fam = "vrouter_" + d.Stage + "_" + under(strings.TrimPrefix(d.Name, d.Stage+"-"))
			case d.Stage == "router":
				fam, labels = "vrouter_"+kindKey[d.Kind]+"_total", map[string]string{label[d.Kind]: d.Name}
			default:
				fam, labels = "vrouter_"+d.Stage+"_"+kindKey[d.Kind]+"_total", map[string]string{label[d.Kind]: d.Name}
			}
			if !has(fam, labels) {
				t.Errorf("%s %s: no %s%v in /metrics", d.Stage, d.Name, fam, labels)
			}
		}
	}
	if _, ok := st.Drops["no-route"]; !ok {
		t.Error("the drops key lost the router's reasons")
	}

	for _, pt := range []struct {
		port, device string
		descs        []counter.Desc
	}{
		{"p1", "r-h1", afpacket.Descs()},
		{"p2", "r-h2", afpacket.Descs()},
		{"vm", l.TapDev, tap.Descs()},
	} {
		ps := st.Ports[pt.port]
		for _, d := range pt.descs {
			var driver string
			var byName map[string]uint64
			json.Unmarshal(ps["driver"], &driver)
			json.Unmarshal(ps[kindKey[d.Kind]], &byName)
			if _, ok := byName[d.Name]; !ok || driver != d.Stage {
				t.Errorf("port %s: %s %s (driver %q) not in show stats -j", pt.port, d.Stage, d.Name, driver)
			}
			labels := map[string]string{"port": pt.port, "driver": d.Stage, "device": pt.device}
			fam := "vrouter_port_driver_" + under(d.Name)
			if d.Kind != counter.Gauge {
				fam = "vrouter_port_driver_" + kindKey[d.Kind] + "_total"
				labels[label[d.Kind]] = d.Name
			}
			if !has(fam, labels) {
				t.Errorf("port %s: no %s%v in /metrics", pt.port, fam, labels)
			}
		}
	}
}
