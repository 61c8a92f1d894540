package test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"vrouter/test/lab"
)

// natTopo is the NAT lab (lab.NATTopo, lab.NATConfig) with its test servers.
type natTopo struct {
	*lab.NATTopo
}

func newNATTopo(t *testing.T) *natTopo { return newNATTopoDriver(t, "afpacket") }

// newNATTopoDriver is the NAT lab with the router's ports on driver.
func newNATTopoDriver(t *testing.T, driver string) *natTopo {
	t.Helper()
	needRoot(t)
	nt, err := lab.NATDriver("n", driver)
	if err != nil {
		t.Fatal(err)
	}
	n := &natTopo{NATTopo: nt}
	cleanupLab(t, n.Router, n.Close)
	// Servers that answer with the address the connection came from.
	n.server(t, n.Srv, "198.51.100.10", "80", "PEER")
	n.server(t, n.In1, "10.1.1.5", "80", "PEER")
	n.server(t, n.In2, "10.1.2.6", "80", "backend-6")
	n.server(t, n.In2, "10.1.2.7", "80", "backend-7")
	time.Sleep(200 * time.Millisecond)
	return n
}

// server runs a TCP server on addr:port that answers each connection with
// reply ("PEER" = the client's address as the server sees it).
func (n *natTopo) server(t *testing.T, ns, addr, port, reply string) {
	t.Helper()
	sys := "echo " + reply
	if reply == "PEER" {
		sys = "echo $SOCAT_PEERADDR"
	}
	if _, err := n.Start(ns, "socat-"+addr+".log", "socat", "TCP-LISTEN:"+port+",bind="+addr+",fork,reuseaddr", "SYSTEM:"+sys); err != nil {
		t.Fatal(err)
	}
}

// get connects from ns to addr:port and returns the trimmed answer.
func (n *natTopo) get(t *testing.T, ns, addr, port string) string {
	t.Helper()
	out, err := n.ExecTimeout(ns, 10*time.Second, "socat", "-T", "3", "-", "TCP:"+addr+":"+port+",connect-timeout=3")
	if err != nil {
		t.Fatalf("connect %s:%s from %s: %v", addr, port, ns, err)
	}
	return strings.TrimSpace(out)
}

func TestNATSnatFloatingForward(t *testing.T) {
	forDrivers(t, func(t *testing.T, driver string) {
		n := newNATTopoDriver(t, driver)
		// SNAT: the server sees the router's address.
		if got := n.get(t, n.In2, "198.51.100.10", "80"); got != "203.0.113.1" {
			t.Fatalf("SNAT: server saw %q, want 203.0.113.1", got)
		}
		// VM-initiated traffic from the floating IP's host leaves with the floating IP.
		if got := n.get(t, n.In1, "198.51.100.10", "80"); got != "203.0.113.50" {
			t.Fatalf("floating outbound: server saw %q, want 203.0.113.50", got)
		}
		// A client reaches the VM through its floating IP and the VM sees the client's address.
		if got := n.get(t, n.Srv, "203.0.113.50", "80"); got != "198.51.100.10" {
			t.Fatalf("floating inbound: VM saw %q, want 198.51.100.10", got)
		}
		// Port forward balances over both backends.
		seen := map[string]int{}
		for i := 0; i < 12; i++ {
			seen[n.get(t, n.Srv, "203.0.113.1", "8080")]++
		}
		if seen["backend-6"] == 0 || seen["backend-7"] == 0 || len(seen) != 2 {
			t.Fatalf("port forward did not balance: %v", seen)
		}
		// Hairpin: an inside host reaches the floating IP; the VM sees the sender's external address.
		if got := n.get(t, n.In2, "203.0.113.50", "80"); got != "203.0.113.1" {
			t.Fatalf("hairpin: VM saw %q, want 203.0.113.1", got)
		}
		out, err := n.Router.Console("show", "conntrack")
		if err != nil {
			t.Fatal(err)
		}
		contains(t, out, "10.1.2.6")
		out, err = n.Router.Console("show", "nat")
		if err != nil {
			t.Fatal(err)
		}
		contains(t, out, "203.0.113.50")
	})
}

type ctRow struct {
	Proto string `json:"proto"`
	Orig  string `json:"original"`
	Reply string `json:"reply"`
}

func TestNATEndpointIndependentMapping(t *testing.T) {
	forDrivers(t, func(t *testing.T, driver string) {
		n := newNATTopoDriver(t, driver)
		for _, dst := range []string{"198.51.100.10", "198.51.100.20"} {
			if _, err := n.Exec(n.In2, "sh", "-c", "echo x | socat -u - UDP:"+dst+":9999,sourceport=40000,reuseaddr"); err != nil {
				t.Fatal(err)
			}
		}
		out, err := n.Router.Console("-j", "show", "conntrack", "10.1.2.6")
		if err != nil {
			t.Fatal(err)
		}
		var rows []ctRow
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		ext := map[string]bool{}
		for _, r := range rows {
			if r.Proto == "udp" && strings.HasPrefix(r.Orig, "10.1.2.6:40000") {
				// reply tuple: server -> external address:port
				ext[r.Reply[strings.Index(r.Reply, "-> ")+3:]] = true
			}
		}
		if len(ext) != 1 {
			t.Fatalf("want one external mapping for 10.1.2.6:40000 to two servers, got %v\n%s", ext, out)
		}
		for e := range ext {
			if e != "203.0.113.1:40000" {
				t.Errorf("mapping %s: want port preserved as 203.0.113.1:40000", e)
			}
		}
	})
}

func TestNATTracerouteAndPMTU(t *testing.T) {
	forDrivers(t, func(t *testing.T, driver string) {
		n := newNATTopoDriver(t, driver)
		out := run(t, &lab.Topo{Lab: n.Lab}, n.In2, "traceroute", "-n", "-q", "1", "-w", "2", "198.51.100.10")
		lines := lab.Lines(out)
		if len(lines) < 4 || !strings.HasPrefix(lines[1], "1  10.1.2.1") || !strings.HasPrefix(lines[2], "2  203.0.113.254") ||
			!strings.HasPrefix(lines[3], "3  198.51.100.10") {
			t.Fatalf("traceroute through SNAT:\n%s", out)
		}
		out, _ = n.Exec(n.In2, "ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1400", "198.51.100.10")
		if !strings.Contains(out, "mtu = 1300") && !strings.Contains(out, "mtu=1300") {
			t.Fatalf("path MTU through SNAT:\n%s", out)
		}
	})
}

func TestNATUnsolicitedInbound(t *testing.T) {
	forDrivers(t, func(t *testing.T, driver string) {
		n := newNATTopoDriver(t, driver)
		n.server(t, n.In2, "10.1.2.6", "2222", "leak")
		// Nothing maps 203.0.113.1:2222 inside: the connection must fail.
		out, err := n.ExecTimeout(n.Srv, 10*time.Second, "socat", "-T", "2", "-", "TCP:203.0.113.1:2222,connect-timeout=2")
		if err == nil || strings.Contains(out, "leak") {
			t.Fatalf("unsolicited inbound connection was delivered: %q %v", out, err)
		}
		// A UDP packet to the SNAT address with no session is not delivered either.
		s := stats(t, n.Router)
		if s.Drops["local-protocol"] == 0 && s.Drops["nat"] == 0 {
			t.Fatalf("unsolicited inbound not counted: %v", s.Drops)
		}
	})
}
