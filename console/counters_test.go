package console_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"

	"vrouter/arp"
	"vrouter/config"
	"vrouter/console"
	"vrouter/ha"
	"vrouter/internal/clock"
	"vrouter/internal/counter"
	"vrouter/nat"
	"vrouter/router"
	"vrouter/router/port"
	"vrouter/router/port/afpacket"
	"vrouter/router/port/pipe"
	"vrouter/router/port/tap"
)

// driverPort is a pipe port that reports a real driver's declared counters,
// counter i with value i+1, as that driver would.
type driverPort struct {
	*pipe.Port
	driver string
	descs  []counter.Desc
}

func (p driverPort) Driver() string { return p.driver }

func (p driverPort) Counters() []counter.Value {
	var vs []counter.Value
	for i, d := range p.descs {
		vs = append(vs, counter.Value{Desc: d, Value: uint64(i + 1)})
	}
	return vs
}

// statsStages is show stats -j as far as the declared counters go.
type statsStages struct {
	Stages map[string]map[string]map[string]uint64 `json:"stages"`
	Ports  map[string]struct {
		Driver string            `json:"driver"`
		Drops  map[string]uint64 `json:"drops"`
		Events map[string]uint64 `json:"events"`
		Gauges map[string]uint64 `json:"gauges"`
	} `json:"ports"`
}

var kindKey = map[counter.Kind]string{counter.Drop: "drops", counter.Event: "events", counter.Gauge: "gauges"}

// wantMetric is where the README's metrics section says a declared counter
// is exposed: the family and the labels of its sample (port "" for a stage's
// counter). A NAT drop has a second sample, in vrouter_nat_events_total.
func wantMetric(d counter.Desc, port string) (family string, labels map[string]string) {
	under := func(s string) string { return strings.ReplaceAll(s, "-", "_") }
	label := map[counter.Kind]string{counter.Drop: "reason", counter.Event: "event"}[d.Kind]
	switch {
	case port != "":
		labels = map[string]string{"port": port, "driver": d.Stage, "device": "pipe:" + port}
		if d.Kind == counter.Gauge {
			return "vrouter_port_driver_" + under(d.Name), labels
		}
		labels[label] = d.Name
		return "vrouter_port_driver_" + kindKey[d.Kind] + "_total", labels
	case d.Kind == counter.Gauge:
		legacy := map[string]string{"nat-sessions": "vrouter_conntrack_sessions", "nat-sessions-max": "vrouter_conntrack_max",
			"nat-frag-entries": "vrouter_nat_fragment_entries", "nat-frag-holding": "vrouter_nat_fragments_holding"}
		if f, ok := legacy[d.Name]; ok && d.Stage == "nat" {
			return f, nil
		}
		return "vrouter_" + d.Stage + "_" + under(strings.TrimPrefix(d.Name, d.Stage+"-")), nil
	case d.Stage == "router":
		return "vrouter_" + kindKey[d.Kind] + "_total", map[string]string{label: d.Name}
	}
	return "vrouter_" + d.Stage + "_" + kindKey[d.Kind] + "_total", map[string]string{label: d.Name}
}

// Every counter every stage declares, and every port driver's, is in show
// stats -j and in /metrics; the NAT's are in show nat too. The declarations
// are iterated, so a counter added to any table is checked here.
func TestEveryCounterShown(t *testing.T) {
	cfg, err := config.Parse("c.toml", []byte(`
[router]
name = "c"
[[port]]
name = "pa"
driver = "pipe"
[[port]]
name = "fa"
driver = "pipe"
[[port]]
name = "ft"
driver = "pipe"
[[network]]
name = "a"
links = ["pa"]
addresses = ["192.0.2.1/24"]
[[network]]
name = "b"
links = ["fa"]
addresses = ["198.51.100.1/24"]
[[network]]
name = "c"
links = ["ft"]
addresses = ["10.0.0.1/24"]
[[nat.snat]]
source = "10.0.0.0/24"
out = "b"
`))
	if err != nil {
		t.Fatal(err)
	}
	drivers := map[string]driverPort{
		"fa": {pipe.New("fa", gMAC(2), 1500), afpacket.CounterStage, afpacket.Descs()},
		"ft": {pipe.New("ft", gMAC(3), 1500), tap.CounterStage, tap.Descs()},
	}
	r, err := router.New(cfg, []port.Port{pipe.New("pa", gMAC(1), 1500), drivers["fa"], drivers["ft"]}, router.Options{Clock: clock.NewManual()})
	if err != nil {
		t.Fatal(err)
	}
	stages := [][]counter.Desc{router.Descs(), nat.Descs(), arp.Descs(), ha.Descs()}
	for _, ds := range stages {
		if len(ds) == 0 {
			t.Fatal("a stage declares nothing")
		}
	}

	c := console.New(r, console.Options{})
	out, err := c.Exec([]string{"show", "stats"}, true)
	if err != nil {
		t.Fatal(err)
	}
	var st statsStages
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	text, err := c.Exec([]string{"show", "stats"}, false)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(console.MetricsHandler(r))
	defer srv.Close()
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(scrape(t, srv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	// sample returns the value of the sample of family with (at least) labels.
	sample := func(family string, labels map[string]string) (float64, bool) {
	next:
		for _, m := range fams[family].GetMetric() {
			have := map[string]string{}
			for _, l := range m.Label {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue(), true
		}
		return 0, false
	}
	inMetrics := func(d counter.Desc, port string, want int) {
		t.Helper()
		fam, labels := wantMetric(d, port)
		got, ok := sample(fam, labels)
		if !ok {
			t.Errorf("%s %s (port %q): no %s%v in /metrics", d.Stage, d.Name, port, fam, labels)
			return
		}
		if want >= 0 && got != float64(want) {
			t.Errorf("%s %s (port %q): %s = %v, want %d", d.Stage, d.Name, port, fam, got, want)
		}
		if _, ok := sample("vrouter_nat_events_total", map[string]string{"event": d.Name}); d.Stage == "nat" && d.Kind == counter.Drop && !ok {
			t.Errorf("nat drop %s not in vrouter_nat_events_total", d.Name)
		}
	}
	for _, ds := range stages {
		for _, d := range ds {
			if _, ok := st.Stages[d.Stage][kindKey[d.Kind]][d.Name]; !ok {
				t.Errorf("%s %s %s not in show stats -j stages", d.Stage, d.Kind, d.Name)
			}
			if !strings.Contains(text, d.Name) || !strings.Contains(text, d.Help) {
				t.Errorf("%s %s not in show stats", d.Stage, d.Name)
			}
			inMetrics(d, "", -1)
		}
	}
	for name, dp := range drivers {
		ps := st.Ports[name]
		if ps.Driver != dp.driver {
			t.Errorf("port %s: driver %q", name, ps.Driver)
		}
		byKind := map[counter.Kind]map[string]uint64{counter.Drop: ps.Drops, counter.Event: ps.Events, counter.Gauge: ps.Gauges}
		for i, d := range dp.descs {
			if v, ok := byKind[d.Kind][d.Name]; !ok || v != uint64(i+1) {
				t.Errorf("port %s: %s %s = %d, %v in show stats -j", name, d.Kind, d.Name, v, ok)
			}
			row := regexp.MustCompile(fmt.Sprintf(`(?m)^%s +%s +%s +%s +%d +`, name, d.Stage, d.Name, d.Kind, i+1))
			if !row.MatchString(text) || !strings.Contains(text, d.Help) {
				t.Errorf("port %s: %s not in show stats", name, d.Name)
			}
			inMetrics(d, name, i+1)
		}
	}
	if ps, ok := st.Ports["pa"]; !ok || ps.Driver != "pipe" {
		t.Errorf("pipe port in show stats -j: %+v", st.Ports)
	}

	natText, err := c.Exec([]string{"show", "nat"}, false)
	if err != nil {
		t.Fatal(err)
	}
	natJS, err := c.Exec([]string{"show", "nat"}, true)
	if err != nil {
		t.Fatal(err)
	}
	var nj struct {
		Filtering string
		Counters  map[string]map[string]uint64
	}
	if err := json.Unmarshal([]byte(natJS), &nj); err != nil {
		t.Fatal(err)
	}
	if nj.Filtering == "" {
		t.Error("show nat -j lost its rules")
	}
	for _, d := range nat.Descs() {
		if _, ok := nj.Counters[kindKey[d.Kind]][d.Name]; !ok {
			t.Errorf("nat %s not in show nat -j", d.Name)
		}
		if !strings.Contains(natText, d.Name) {
			t.Errorf("nat %s not in show nat", d.Name)
		}
	}
}
