package test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"vrouter/test/lab"
)

var gomaxprocsMetric = regexp.MustCompile(`(?m)^vrouter_gomaxprocs (\d+)`)

// TestWorkersOne: `[router] workers = 1` (one thread for the data path, the
// README's advice for afpacket on two CPUs shared with other work) runs Go
// code on one thread, and the router still forwards both ways, TCP included,
// with the bytes intact.
func TestWorkersOne(t *testing.T) {
	needRoot(t)
	l, err := lab.StandardEdit("e", "afpacket", func(cfg, _ string) string {
		return strings.Replace(cfg, "[router]\n", "[router]\nworkers = 1\n", 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	cleanupLab(t, l.Router, l.Close)
	out, err := l.ExecTimeout(l.R, 5*time.Second, "curl", "-s", "-m", "3", "http://127.0.0.1:9469/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if m := gomaxprocsMetric.FindStringSubmatch(out); m == nil || m[1] != "1" {
		t.Fatalf("vrouter_gomaxprocs = %v, want 1 with workers = 1", m)
	}
	contains(t, run(t, l, l.H1, "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.51.100.10"), " 0% packet loss")
	contains(t, run(t, l, l.H2, "ping", "-c", "3", "-i", "0.2", "-W", "2", "192.0.2.10"), " 0% packet loss")
	mbit := iperf(t, l)
	t.Logf("iperf3 TCP h1->h2 with workers = 1: %.0f Mbit/s", mbit)
	if mbit <= 0 {
		t.Fatal("no TCP throughput with workers = 1")
	}
	transferIntact(t, l)
}
