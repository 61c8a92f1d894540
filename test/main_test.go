// Package test holds the end-to-end tests: the real vrouter binary in
// network namespaces with veth pairs and TAPs, driven by real tools (ping,
// traceroute, iperf3, scapy, tcpdump). They need root; they skip only when
// not root and CI is unset.
package test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"vrouter/test/lab"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "" {
			t.Skip("end-to-end test needs root (network namespaces); runs in CI")
		}
		t.Fatal("end-to-end tests must run as root in CI")
	}
	if _, err := lab.Binary(); err != nil {
		t.Fatal(err)
	}
}

// drivers are the port drivers the data-path tests run with (the test
// matrix of the fast-path issue): VROUTER_TEST_DRIVERS, comma-separated;
// default afpacket and afxdp.
func drivers() []string {
	if v := os.Getenv("VROUTER_TEST_DRIVERS"); v != "" {
		return strings.Split(v, ",")
	}
	return []string{"afpacket", "afxdp"}
}

// forDrivers runs f as a subtest per driver.
func forDrivers(t *testing.T, f func(t *testing.T, driver string)) {
	for _, d := range drivers() {
		t.Run(d, func(t *testing.T) { f(t, d) })
	}
}

func standard(t *testing.T, extra string) *lab.Topo {
	t.Helper()
	return standardDriver(t, "afpacket", extra)
}

// standardDriver is the standard lab with its two veth ports on driver.
func standardDriver(t *testing.T, driver, extra string) *lab.Topo {
	t.Helper()
	needRoot(t)
	topo, err := lab.StandardDriver("e", driver, extra)
	if err != nil {
		t.Fatal(err)
	}
	cleanupLab(t, topo.Router, topo.Close)
	return topo
}

// cleanupLab closes a lab when the test ends, after printing its router's
// log if the test failed.
func cleanupLab(t *testing.T, r *lab.Router, closeLab func()) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("router log:\n%s", r.Log())
		}
		closeLab()
	})
}

func run(t *testing.T, l *lab.Topo, ns string, args ...string) string {
	t.Helper()
	out, err := l.Exec(ns, args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

// statsJSON reads `show stats -j`.
type statsJSON struct {
	Counters map[string]uint64 `json:"counters"`
	Drops    map[string]uint64 `json:"drops"`
}

func stats(t *testing.T, r *lab.Router) statsJSON {
	t.Helper()
	out, err := r.Console("-j", "show", "stats")
	if err != nil {
		t.Fatalf("console: %v: %s", err, out)
	}
	var s statsJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("show stats -j: %v: %s", err, out)
	}
	return s
}

var iperfRate = regexp.MustCompile(`([\d.]+) ([MG])bits/sec\s+\d*\s*receiver`)

// iperf runs a 3 s iperf3 TCP test from h1 to h2 and returns Mbit/s.
func iperf(t *testing.T, l *lab.Topo) float64 { return iperfFrom(t, l, l.H1) }

// iperfServer starts a one-test iperf3 server on port in ns as a lab process
// (killed with the lab even when no client ever comes).
func iperfServer(t *testing.T, l *lab.Lab, ns, port string) {
	t.Helper()
	if _, err := l.Start(ns, fmt.Sprintf("iperf3-s-%s-%d.log", port, time.Now().UnixNano()), "iperf3", "-s", "-1", "-p", port); err != nil {
		t.Fatal(err)
	}
}

// iperfFrom runs a 3 s iperf3 TCP test from namespace from to h2.
func iperfFrom(t *testing.T, l *lab.Topo, from string) float64 {
	t.Helper()
	iperfServer(t, l.Lab, l.H2, "5201")
	time.Sleep(300 * time.Millisecond)
	out, err := l.ExecTimeout(from, 30*time.Second, "iperf3", "-c", "198.51.100.10", "-p", "5201", "-t", "3", "-f", "m")
	if err != nil {
		t.Fatalf("iperf3: %v", err)
	}
	m := iperfRate.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no iperf3 result in:\n%s", out)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	if m[2] == "G" {
		v *= 1000
	}
	return v
}

func contains(t *testing.T, out, want string) {
	t.Helper()
	if !strings.Contains(out, want) {
		t.Fatalf("want %q in:\n%s", want, out)
	}
}
