package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vrouter/test/lab"
)

func newLab(t *testing.T, tag string) *lab.Lab {
	t.Helper()
	needRoot(t)
	l, err := lab.New(tag)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustNS(t *testing.T, l *lab.Lab, names ...string) []string {
	t.Helper()
	var out []string
	for _, n := range names {
		ns, err := l.NS(n)
		must(t, err)
		out = append(out, ns)
	}
	return out
}

func execAll(t *testing.T, l *lab.Lab, cmds [][2]string) {
	t.Helper()
	for _, c := range cmds {
		if _, err := l.Exec(c[0], strings.Fields(c[1])...); err != nil {
			t.Fatal(err)
		}
	}
}

func startRouter(t *testing.T, l *lab.Lab, ns, name, cfg string) *lab.Router {
	t.Helper()
	r, err := l.StartRouter(ns, name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", name, r.Log())
		}
	})
	return r
}

func ping(t *testing.T, l *lab.Lab, ns, dst string) {
	t.Helper()
	out, err := l.Exec(ns, "ping", "-c", "2", "-i", "0.2", "-W", "2", dst)
	if os.Getenv("VROUTER_RACE") != "" && err == nil {
		return // a router built with -race on a busy machine may lose one: a reply is enough
	}
	if err != nil || !strings.Contains(out, " 0% packet loss") {
		t.Fatalf("ping %s from %s failed: %v\n%s", dst, ns, err, out)
	}
}

func noPing(t *testing.T, l *lab.Lab, ns, dst string) {
	t.Helper()
	if out, err := l.Exec(ns, "ping", "-c", "2", "-i", "0.2", "-W", "1", dst); err == nil {
		t.Fatalf("ping %s from %s should fail:\n%s", dst, ns, out)
	}
}

// Two VMs on TAPs in one switched network reach each other and the router;
// a network with no address and no physical port (local-only) keeps its
// guests to themselves.
func TestTAPNetworkAndLocalOnly(t *testing.T) {
	l := newLab(t, "v")
	ns := mustNS(t, l, "r", "vm1", "vm2", "vm3", "vm4")
	r, vm1, vm2, vm3, vm4 := ns[0], ns[1], ns[2], ns[3], ns[4]
	p := l.Prefix
	cfg := `
[router]
name = "vn"
console = "SOCKET"
[[port]]
name = "vm1"
driver = "tap"
device = "` + p + `-t1"
[[port]]
name = "vm2"
driver = "tap"
device = "` + p + `-t2"
[[port]]
name = "vm3"
driver = "tap"
device = "` + p + `-t3"
[[port]]
name = "vm4"
driver = "tap"
device = "` + p + `-t4"
[[network]]
name = "lan"
links = ["vm1", "vm2"]
addresses = ["10.20.0.1/24"]
[[network]]
name = "isolated"
links = ["vm3", "vm4"]
`
	rt := startRouter(t, l, r, "vn", cfg)
	must(t, l.MoveTAP(r, p+"-t1", vm1, "10.20.0.11/24", "10.20.0.1"))
	must(t, l.MoveTAP(r, p+"-t2", vm2, "10.20.0.12/24", "10.20.0.1"))
	must(t, l.MoveTAP(r, p+"-t3", vm3, "10.30.0.13/24", ""))
	must(t, l.MoveTAP(r, p+"-t4", vm4, "10.30.0.14/24", ""))
	ping(t, l, vm1, "10.20.0.12")
	ping(t, l, vm2, "10.20.0.1")
	ping(t, l, vm3, "10.30.0.14")
	// The isolated guests cannot reach out, and nothing of theirs leaks to lan.
	wait, err := l.Tcpdump(vm1, p+"-t1", 1, "host", "10.30.0.13")
	must(t, err)
	l.Exec(vm3, "ip", "route", "add", "default", "dev", p+"-t3")
	noPing(t, l, vm3, "10.20.0.11")
	noPing(t, l, vm3, "10.20.0.1")
	if out := wait(); strings.Contains(out, "10.30.0.13") {
		t.Fatalf("isolated traffic leaked into lan:\n%s", out)
	}
	out, err := rt.Console("show", "bridge")
	must(t, err)
	for _, want := range []string{"lan", "isolated", "vm1", "vm4"} {
		contains(t, out, want)
	}
}

// The CloudStack-replacement setup: vrouter joins guest VLAN 1234 on a
// trunk (eth1.1234 style) and answers proxy ARP upstream for a public IP
// routed to a VM on that VLAN. A second vrouter instance is the switch that
// puts the VM on the VLAN.
func TestTrunkProxyARP(t *testing.T) {
	forDrivers(t, func(t *testing.T, driver string) {
		l := newLab(t, "c")
		ns := mustNS(t, l, "r1", "r2", "up", "vm")
		r1, r2, up, vm := ns[0], ns[1], ns[2], ns[3]
		must(t, l.Veth(up, "eth0", r1, "r-up"))
		must(t, l.Veth(r1, "t1", r2, "t2"))
		must(t, l.Veth(r2, "r-vm", vm, "eth0"))
		execAll(t, l, [][2]string{
			{up, "ip addr add 203.0.113.254/24 dev eth0"},
			{vm, "ip addr add 10.1.1.11/24 dev eth0"}, {vm, "ip addr add 203.0.113.10/32 dev eth0"},
			{vm, "ip route add default via 10.1.1.10 src 203.0.113.10"},
			{r2, "ethtool -K t2 rxvlan off txvlan off"},
		})
		r1cfg := `
[router]
name = "edge"
console = "SOCKET"
[[port]]
name = "up"
driver = "afpacket"
device = "r-up"
[[port]]
name = "trunk"
driver = "afpacket"
device = "t1"
[[network]]
name = "public"
links = ["up"]
addresses = ["203.0.113.1/24"]
proxy_arp = true
[[network]]
name = "guest1234"
links = ["trunk.1234"]
addresses = ["10.1.1.10/24"]
[[network]]
name = "guest1235"
links = ["trunk.1235"]
addresses = ["10.1.2.10/24"]
[[route]]
prefix = "203.0.113.10/32"
network = "guest1234"
`
		r2cfg := `
[router]
name = "switch"
console = "SOCKET"
[[port]]
name = "trunk"
driver = "afpacket"
device = "t2"
[[port]]
name = "vmp"
driver = "afpacket"
device = "r-vm"
[[network]]
name = "sw1234"
links = ["trunk.1234", "vmp"]
`
		r1cfg = strings.ReplaceAll(r1cfg, `driver = "afpacket"`, `driver = "`+driver+`"`)
		// The switch stays on afpacket: scapy crafts and sniffs on its trunk
		// port, which an XDP program would take every frame from.
		edge := startRouter(t, l, r1, "edge", r1cfg)
		sw := startRouter(t, l, r2, "switch", r2cfg)
		t.Cleanup(func() {
			if t.Failed() {
				for _, rt := range []*lab.Router{edge, sw} {
					for _, c := range [][]string{{"show", "arp"}, {"show", "bridge"}, {"show", "stats"}} {
						out, _ := rt.Console(c...)
						t.Logf("%s %v:\n%s", rt.Config, c, out)
					}
				}
			}
		})

		// The router's own capture sees the trunk's frames with either driver
		// (a tcpdump on an AF_XDP port sees neither what XDP redirects nor
		// what the socket sends).
		pcap := filepath.Join(l.Dir, "trunk.pcap")
		if _, err := edge.Console("capture", "trunk", pcap, "1000"); err != nil {
			t.Fatal(err)
		}
		ping(t, l, up, "203.0.113.10")
		if _, err := edge.Console("capture", "trunk", "stop"); err != nil {
			t.Fatal(err)
		}
		dump, err := l.Exec(r1, "tcpdump", "-e", "-n", "-r", pcap, "vlan and icmp")
		must(t, err)
		if !strings.Contains(dump, "vlan 1234") {
			t.Fatalf("no 802.1Q tag 1234 on the trunk:\n%s", dump)
		}
		// The upstream host learned the VM's public IP at the router's MAC.
		rmac, err := l.MAC(r1, "r-up")
		must(t, err)
		neigh, err := l.Exec(up, "ip", "neigh", "show", "203.0.113.10")
		must(t, err)
		contains(t, neigh, rmac)
		ping(t, l, vm, "10.1.1.10")

		// Tagged ARP on the trunk: VLAN 1234 is answered (tagged), VLAN 300 is not;
		// proxy ARP never answers probes or targets on the asking segment.
		scapy(t, &lab.Topo{Lab: l}, r2, `
import logging, sys
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import *
conf.verb = 0
def ask(vid, pdst, psrc="10.1.1.99"):
    p = Ether(dst="ff:ff:ff:ff:ff:ff", src="02:00:00:00:99:99")/Dot1Q(vlan=vid)/ARP(op=1, hwsrc="02:00:00:00:99:99", psrc=psrc, pdst=pdst)
    return srp1(p, iface="t2", timeout=2)
r = ask(1234, "10.1.1.10")
if r is None or Dot1Q not in r or r[Dot1Q].vlan != 1234 or r[ARP].op != 2 or r[ARP].psrc != "10.1.1.10":
    print("no tagged reply on VLAN 1234:", r and r.summary()); sys.exit(1)
if ask(300, "10.1.1.10") is not None:
    print("reply on VLAN 300"); sys.exit(1)
print("ok")
`)
		scapy(t, &lab.Topo{Lab: l}, up, `
import logging, sys
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import *
conf.verb = 0
def ask(pdst, psrc):
    return srp1(Ether(dst="ff:ff:ff:ff:ff:ff")/ARP(op=1, psrc=psrc, pdst=pdst), iface="eth0", timeout=1)
if ask("203.0.113.10", "203.0.113.254") is None:
    print("proxy ARP did not answer"); sys.exit(1)
if ask("203.0.113.10", "0.0.0.0") is not None:
    print("proxy ARP answered a probe"); sys.exit(1)
if ask("203.0.113.77", "203.0.113.254") is not None:
    print("proxy ARP answered for an address on the asking segment"); sys.exit(1)
print("ok")
`)
		s := stats(t, edge)
		if s.Drops["unknown-vlan"] == 0 || s.Counters["arp-proxy-replies"] == 0 {
			t.Fatalf("stats: %v %v", s.Drops, s.Counters)
		}
		out, err := edge.Console("show", "proxy-arp")
		must(t, err)
		contains(t, out, "proxy_arp")
	})
}

// Virtuozzo host-routed (venet) mode: guests own /32s, use 169.254.0.1 as
// gateway, are published by proxy ARP on the uplink, cannot spoof, and
// see none of each other's traffic.
func TestHostRouted(t *testing.T) {
	l := newLab(t, "h")
	ns := mustNS(t, l, "r", "up", "ct1", "ct2")
	r, up, ct1, ct2 := ns[0], ns[1], ns[2], ns[3]
	must(t, l.Veth(up, "eth0", r, "r-up"))
	must(t, l.Veth(ct1, "eth0", r, "r-ct1"))
	must(t, l.Veth(ct2, "eth0", r, "r-ct2"))
	execAll(t, l, [][2]string{
		{up, "ip addr add 203.0.113.254/24 dev eth0"},
		{ct1, "ip addr add 203.0.113.101/32 dev eth0"}, {ct1, "ip route add 169.254.0.1 dev eth0"},
		{ct1, "ip route add default via 169.254.0.1"},
		{ct2, "ip addr add 203.0.113.102/32 dev eth0"}, {ct2, "ip route add 169.254.0.1 dev eth0"},
		{ct2, "ip route add default via 169.254.0.1"},
	})
	// Gratuitous ARP for the guests when the router starts.
	garp, err := l.Tcpdump(up, "eth0", 1, "arp", "and", "host", "203.0.113.101")
	must(t, err)
	rt := startRouter(t, l, r, "venet", `
[router]
name = "venet"
console = "SOCKET"
[[port]]
name = "up"
driver = "afpacket"
device = "r-up"
[[port]]
name = "ct101"
driver = "afpacket"
device = "r-ct1"
[[port]]
name = "ct102"
driver = "afpacket"
device = "r-ct2"
[[network]]
name = "public"
links = ["up"]
addresses = ["203.0.113.1/24"]
[[hostroute]]
link = "ct101"
addresses = ["203.0.113.101"]
publish = ["public"]
[[hostroute]]
link = "ct102"
addresses = ["203.0.113.102"]
publish = ["public"]
`)
	if out := garp(); !strings.Contains(out, "203.0.113.101") {
		t.Fatalf("no gratuitous ARP for the guest on the uplink:\n%s", out)
	}
	ping(t, l, ct1, "203.0.113.254")
	ping(t, l, ct1, "203.0.113.102")
	ping(t, l, up, "203.0.113.102")
	rmac, err := l.MAC(r, "r-up")
	must(t, err)
	neigh, err := l.Exec(up, "ip", "neigh", "show", "203.0.113.101")
	must(t, err)
	contains(t, neigh, rmac)

	// ct2 sees none of ct1's traffic with the uplink.
	wait, err := l.Tcpdump(ct2, "eth0", 1, "host", "203.0.113.101", "and", "host", "203.0.113.254")
	must(t, err)
	ping(t, l, ct1, "203.0.113.254")
	if out := wait(); strings.Contains(out, "203.0.113.254") {
		t.Fatalf("ct2 saw ct1's traffic:\n%s", out)
	}
	// A guest using an address that is not its own is dropped and counted.
	execAll(t, l, [][2]string{{ct1, "ip addr add 203.0.113.150/32 dev eth0"}})
	if out, err := l.Exec(ct1, "ping", "-c", "2", "-i", "0.2", "-W", "1", "-I", "203.0.113.150", "203.0.113.254"); err == nil {
		t.Fatalf("spoofed ping went through:\n%s", out)
	}
	time.Sleep(100 * time.Millisecond)
	if s := stats(t, rt); s.Drops["spoofed"] == 0 {
		t.Fatalf("spoofed not counted: %v", s.Drops)
	}
}
