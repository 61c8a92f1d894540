package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"vrouter/test/lab"
)

func writeCfg(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// portRx is port name's received packets in show interfaces -j.
func portRx(t *testing.T, r *lab.Router, name string) uint64 { return showPort(t, r, name).RxPackets }

// A long TCP stream keeps running across five reloads that add and remove
// routes, a port and a network; unchanged ports are not reopened.
func TestReloadUnderTraffic(t *testing.T) {
	l := standard(t, "")
	orig, err := os.ReadFile(l.Router.Config)
	if err != nil {
		t.Fatal(err)
	}
	extraPort := "\n[[port]]\nname = \"extra\"\ndriver = \"tap\"\ndevice = \"" + l.Prefix + "-x\"\n" +
		"\n[[network]]\nname = \"extra\"\nlinks = [\"extra\"]\naddresses = [\"10.99.0.1/24\"]\n"
	route := "\n[[route]]\nprefix = \"10.88.0.0/16\"\nvia = \"198.51.100.10\"\n"
	steps := []string{string(orig) + route, string(orig) + route + extraPort, string(orig) + extraPort, string(orig) + route, string(orig)}

	iperfServer(t, l.Lab, l.H2, "5201")
	time.Sleep(300 * time.Millisecond)
	iperfOut := make(chan string, 1)
	go func() {
		out, err := l.ExecTimeout(l.H1, 40*time.Second, "iperf3", "-c", "198.51.100.10", "-t", "8", "-f", "m")
		if err != nil {
			out += "\nERROR: " + err.Error()
		}
		iperfOut <- out
	}()
	if out, err := l.Router.Console("ip", "route", "add", "10.66.0.0/16", "via", "198.51.100.10"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	time.Sleep(time.Second)
	rx0 := portRx(t, l.Router, "p1")
	for i, cfg := range steps {
		writeCfg(t, l.Router.Config, cfg)
		out, err := l.Router.Console("reload")
		if err != nil {
			t.Fatalf("reload %d: %v\n%s", i+1, err, out)
		}
		contains(t, out, "unchanged")
		for _, p := range []string{"p1", "p2", "vm"} {
			if strings.Contains(out, "~"+p) || strings.Contains(out, "-"+p) {
				t.Fatalf("reload %d touched port %s: %s", i+1, p, out)
			}
		}
		time.Sleep(700 * time.Millisecond)
	}
	if out, err := l.Router.Console("show", "ip", "route", "10.66.1.1"); err == nil {
		t.Fatalf("runtime route survived a reload:\n%s", out)
	}
	if rx := portRx(t, l.Router, "p1"); rx <= rx0 {
		t.Fatalf("p1 counters went from %d to %d: was the port reopened?", rx0, rx)
	}
	out := <-iperfOut
	if strings.Contains(out, "ERROR") || !strings.Contains(out, "receiver") {
		t.Fatalf("iperf3 across reloads:\n%s", out)
	}
	m := iperfRate.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no iperf3 rate:\n%s", out)
	}
	t.Logf("iperf3 across 5 reloads: %s %sbit/s", m[1], m[2])
	// SIGHUP reloads too.
	if err := l.Router.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	contains(t, l.Router.Log(), "reloaded")
	// Metrics count the reloads.
	m2, err := l.Router.Console("show", "stats")
	if err != nil || m2 == "" {
		t.Fatal(err)
	}
}

// An invalid file changes nothing: the error names file:line:col and the
// router keeps forwarding with the old configuration.
func TestReloadBrokenFile(t *testing.T) {
	l := standard(t, "")
	orig, _ := os.ReadFile(l.Router.Config)
	writeCfg(t, l.Router.Config, string(orig)+"\n[[route]]\nprefix = \"10.1.2.3/33\"\nvia = \"198.51.100.10\"\n")
	out, err := l.Router.Console("reload")
	if err == nil {
		t.Fatalf("broken reload accepted:\n%s", out)
	}
	contains(t, out, l.Router.Config+":")
	ping(t, l.Lab, l.H1, "198.51.100.10")
	rt, err := l.Router.Console("show", "ip", "route")
	if err != nil || strings.Contains(rt, "10.1.2.") {
		t.Fatalf("routes changed by a broken reload:\n%s", rt)
	}
}

// Removing a floating IP flushes its sessions and says so.
func TestReloadFlushesFloatingSessions(t *testing.T) {
	n := newNATTopo(t)
	if got := n.get(t, n.Srv, "203.0.113.50", "80"); got != "198.51.100.10" {
		t.Fatalf("floating: %q", got)
	}
	out, err := n.Router.Console("show", "conntrack", "10.1.1.5")
	if err != nil || !strings.Contains(out, "10.1.1.5") {
		t.Fatalf("no session for the floating IP: %v\n%s", err, out)
	}
	cfg, _ := os.ReadFile(n.Router.Config)
	s := string(cfg)
	i := strings.Index(s, "[[nat.floating]]")
	j := strings.Index(s, "[[nat.forward]]")
	writeCfg(t, n.Router.Config, s[:i]+s[j:])
	out, err = n.Router.Console("reload")
	if err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	contains(t, out, "flushed")
	contains(t, out, "203.0.113.50")
	out, _ = n.Router.Console("show", "conntrack", "10.1.1.5")
	if strings.Contains(out, "10.1.1.5:") {
		t.Fatalf("floating sessions survived:\n%s", out)
	}
	// The SNAT of other hosts still works.
	if got := n.get(t, n.In2, "198.51.100.10", "80"); got != "203.0.113.1" {
		t.Fatalf("SNAT after reload: %q", got)
	}
}

// capture writes a pcap that tcpdump reads; /metrics serves Prometheus text.
func TestCaptureAndMetrics(t *testing.T) {
	l := standard(t, "")
	path := filepath.Join(l.Dir, "p1.pcap")
	out, err := l.Router.Console("capture", "p1", path, "50")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	run(t, l, l.H1, "ping", "-c", "2", "-i", "0.2", "198.51.100.10")
	time.Sleep(200 * time.Millisecond)
	if out, err := l.Router.Console("capture", "p1", "stop"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	dump, err := exec.Command("tcpdump", "-n", "-e", "-r", path).CombinedOutput()
	if err != nil {
		t.Fatalf("tcpdump -r: %v\n%s", err, dump)
	}
	if c := strings.Count(string(dump), "ICMP echo"); c != 4 {
		t.Fatalf("want 4 ICMP echo frames (2 in, 2 out) in the capture, got %d:\n%s", c, dump)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	l := standard(t, "")
	ping(t, l.Lab, l.H1, "198.51.100.10")
	out := run(t, l, l.R, "curl", "-sf", "http://127.0.0.1:9469/metrics")
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(out))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, out)
	}
	for name := range fams {
		if !strings.HasPrefix(name, "vrouter_") {
			t.Errorf("metric %s lacks the vrouter_ prefix", name)
		}
	}
	for _, want := range []string{"vrouter_port_rx_packets_total", "vrouter_drops_total", "vrouter_conntrack_sessions",
		"vrouter_arp_entries", "vrouter_fib_routes", "vrouter_reloads_total", "vrouter_last_reload_success"} {
		if fams[want] == nil {
			t.Errorf("metric %s missing", want)
		}
	}
	var fwd float64
	for _, m := range fams["vrouter_events_total"].Metric {
		for _, lp := range m.Label {
			if lp.GetValue() == "forwarded" {
				fwd = m.GetCounter().GetValue()
			}
		}
	}
	if fwd < 4 {
		t.Fatalf("forwarded = %v after a ping", fwd)
	}
}
