package test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"vrouter/test/lab"
)

// natTopo is the NAT lab:
//
//	in1 10.1.1.5 (floating 203.0.113.50) --[pin1]
//	                                          vrouter --[pup] 203.0.113.1 -- up (Linux router) 203.0.113.254
//	in2 10.1.2.6, 10.1.2.7 (SNAT; forward) --[pin2]                        198.51.100.1 --(mtu 1300)-- srv 198.51.100.10, .20
type natTopo struct {
	*lab.Lab
	R, In1, In2, Up, Srv string
	Router               *lab.Router
}

const natConfig = `
[router]
name    = "nat"
console = "SOCKET"

[[port]]
name   = "pup"
driver = "afpacket"
device = "r-up"

[[port]]
name   = "pin1"
driver = "afpacket"
device = "r-in1"

[[port]]
name   = "pin2"
driver = "afpacket"
device = "r-in2"

[[network]]
name      = "public"
links     = ["pup"]
addresses = ["203.0.113.1/24"]

[[network]]
name      = "inside1"
links     = ["pin1"]
addresses = ["10.1.1.1/24"]

[[network]]
name      = "inside2"
links     = ["pin2"]
addresses = ["10.1.2.1/24"]

[[route]]
prefix = "0.0.0.0/0"
via    = "203.0.113.254"

[[nat.snat]]
source = "10.1.0.0/16"
out    = "public"
to     = "203.0.113.1"

[[nat.floating]]
external = "203.0.113.50"
internal = "10.1.1.5"

[[nat.forward]]
proto    = "tcp"
external = "203.0.113.1:8080"
internal = ["10.1.2.6:80", "10.1.2.7:80"]

[conntrack]
max = 65536
`

func newNATTopo(t *testing.T) *natTopo {
	t.Helper()
	needRoot(t)
	l, err := lab.New("n")
	if err != nil {
		t.Fatal(err)
	}
	n := &natTopo{Lab: l}
	t.Cleanup(func() {
		if t.Failed() && n.Router != nil {
			t.Logf("router log:\n%s", n.Router.Log())
		}
		l.Close()
	})
	for _, x := range []struct {
		p    *string
		name string
	}{{&n.R, "r"}, {&n.In1, "in1"}, {&n.In2, "in2"}, {&n.Up, "up"}, {&n.Srv, "srv"}} {
		if *x.p, err = l.NS(x.name); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range [][4]string{{n.In1, "eth0", n.R, "r-in1"}, {n.In2, "eth0", n.R, "r-in2"}, {n.Up, "eth0", n.R, "r-up"}, {n.Up, "eth1", n.Srv, "eth0"}} {
		if err := l.Veth(v[0], v[1], v[2], v[3]); err != nil {
			t.Fatal(err)
		}
	}
	cmds := [][2]string{
		{n.In1, "ip addr add 10.1.1.5/24 dev eth0"}, {n.In1, "ip route add default via 10.1.1.1"},
		{n.In2, "ip addr add 10.1.2.6/24 dev eth0"}, {n.In2, "ip addr add 10.1.2.7/24 dev eth0"},
		{n.In2, "ip route add default via 10.1.2.1"},
		{n.Up, "ip addr add 203.0.113.254/24 dev eth0"}, {n.Up, "ip addr add 198.51.100.1/24 dev eth1"},
		{n.Up, "ip link set eth1 mtu 1300"}, {n.Up, "sysctl -qw net.ipv4.ip_forward=1"},
		{n.Srv, "ip link set eth0 mtu 1300"},
		{n.Srv, "ip addr add 198.51.100.10/24 dev eth0"}, {n.Srv, "ip addr add 198.51.100.20/24 dev eth0"},
		{n.Srv, "ip route add default via 198.51.100.1"},
	}
	for _, c := range cmds {
		if _, err := l.Exec(c[0], strings.Fields(c[1])...); err != nil {
			t.Fatal(err)
		}
	}
	if n.Router, err = l.StartRouter(n.R, "nat", natConfig); err != nil {
		t.Fatal(err)
	}
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
	n := newNATTopo(t)
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
}

type ctRow struct {
	Proto string `json:"proto"`
	Orig  string `json:"original"`
	Reply string `json:"reply"`
}

func TestNATEndpointIndependentMapping(t *testing.T) {
	n := newNATTopo(t)
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
}

func TestNATTracerouteAndPMTU(t *testing.T) {
	n := newNATTopo(t)
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
}

func TestNATUnsolicitedInbound(t *testing.T) {
	n := newNATTopo(t)
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
}
