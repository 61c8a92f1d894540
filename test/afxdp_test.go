package test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"vrouter/test/lab"
)

// TestAfxdpForwarding runs the standard lab with both veth ports on the
// afxdp driver: the XDP program attaches in native mode, pings pass both
// ways (ARP included: every frame goes through the sockets), and a TCP
// transfer passes with the hosts' offloads on (their partial checksums are
// completed by the port) and off.
func TestAfxdpForwarding(t *testing.T) {
	needRoot(t)
	l, err := lab.StandardDriver("x", "afxdp", "")
	if err != nil {
		t.Fatal(err)
	}
	cleanupLab(t, l.Router, l.Close)
	log := l.Router.Log()
	for _, dev := range []string{"r-h1", "r-h2"} {
		if !strings.Contains(log, "device="+dev+" xdp-mode=native") {
			t.Fatalf("no native XDP on %s in the log:\n%s", dev, log)
		}
		if out := run(t, l, l.R, "ip", "-d", "link", "show", dev); !strings.Contains(out, "prog/xdp") {
			t.Fatalf("no XDP program on %s:\n%s", dev, out)
		}
	}
	contains(t, run(t, l, l.H1, "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.51.100.10"), " 0% packet loss")
	contains(t, run(t, l, l.H2, "ping", "-c", "3", "-i", "0.2", "-W", "2", "192.0.2.10"), " 0% packet loss")
	contains(t, run(t, l, l.H1, "ping", "-c", "2", "-i", "0.2", "-W", "2", "192.0.2.1"), " 0% packet loss")
	contains(t, run(t, l, l.VM, "ping", "-c", "2", "-i", "0.2", "-W", "2", "198.51.100.10"), " 0% packet loss")

	on := iperf(t, l)
	for _, ns := range []string{l.H1, l.H2} {
		run(t, l, ns, "ethtool", "-K", "eth0", "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off")
	}
	off := iperf(t, l)
	t.Logf("iperf3 TCP h1->h2 through vrouter (afxdp ports): offloads on %.0f Mbit/s, off %.0f Mbit/s", on, off)
	if on <= 0 || off <= 0 {
		t.Fatal("no throughput")
	}

	out, err := l.Router.Console("-j", "show", "interfaces")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, `"afxdp"`) < 2 {
		t.Fatalf("show interfaces does not name the afxdp driver:\n%s", out)
	}
	out, err = l.Router.Console("-j", "show", "stats")
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("show stats: %s", out)
	if s := stats(t, l.Router); s.Counters["forwarded"] < 1000 {
		t.Fatalf("counters: %v", s.Counters)
	}
	// Stopping the router detaches the programs.
	l.Router.Signal(os.Interrupt)
	l.Router.Cmd.Wait()
	for _, dev := range []string{"r-h1", "r-h2"} {
		if out := run(t, l, l.R, "ip", "-d", "link", "show", dev); strings.Contains(out, "prog/xdp") {
			t.Fatalf("XDP program left on %s after the router stopped:\n%s", dev, out)
		}
	}
}
