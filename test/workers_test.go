package test

import (
	"strings"
	"testing"

	"vrouter/test/lab"
)

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
	if n := metric(t, l, "vrouter_gomaxprocs"); n != 1 {
		t.Fatalf("vrouter_gomaxprocs = %d, want 1 with workers = 1", n)
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
