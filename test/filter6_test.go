package test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The IPv6 filter lab is the dual-stack lab (lab.Dual) with h1's network
// net1 guarded by filter_out "h1-in6": ssh (tcp/22) to h1 and echo
// requests in, tcp/443 rejected, everything else dropped. p2 keeps the
// default MTU here, and 2001:db8:5::/48 is routed via h2, whose kernel
// forwards it over a route locked to MTU 1280: the packet too big comes
// from h2, a router beyond vrouter, and must pass the filter as related.
const filter6Rules = `
[[route]]
prefix = "2001:db8:5::/48"
via    = "2001:db8:2::10"

[[filter]]
name    = "h1-in6"
default = "drop"

[[filter.rule]]
action      = "accept"
proto       = "tcp"
destination = ["2001:db8:1::10"]
dport       = "22"

[[filter.rule]]
action = "reject"
proto  = "tcp"
dport  = "443"

[[filter.rule]]
action    = "accept"
proto     = "icmpv6"
icmp_type = "echo-request"
`

func newFilter6Lab(t *testing.T) *v6Lab {
	t.Helper()
	return newV6LabEdit(t, "vf6", false, func(cfg, _ string) string {
		cfg = strings.Replace(cfg, "device = \"r-h2\"\nmtu    = 1280\n", "device = \"r-h2\"\n", 1)
		cfg = strings.Replace(cfg, "addresses = [\"192.0.2.1/24\", \"2001:db8:1::1/64\"]\n",
			"addresses = [\"192.0.2.1/24\", \"2001:db8:1::1/64\"]\nfilter_out = \"h1-in6\"\n", 1)
		return cfg + filter6Rules
	})
}

func TestFilterIPv6(t *testing.T) {
	v := newFilter6Lab(t)
	tl := v.topo()
	for _, c := range []string{
		"sysctl -qw net.ipv6.conf.all.forwarding=1",
		"ip -6 route add 2001:db8:5::/64 dev eth0 mtu lock 1280",
	} {
		run(t, tl, v.H2, strings.Fields(c)...)
	}
	// Servers on h1 (behind the filter) and on h2.
	for _, port := range []string{"22", "443", "2323"} {
		if _, err := v.Start(v.H1, "socat-"+port+".log", "socat", "TCP6-LISTEN:"+port+",bind=[2001:db8:1::10],fork,reuseaddr", "SYSTEM:echo port"+port); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := v.Start(v.H2, "socat-8080.log", "socat", "TCP6-LISTEN:8080,bind=[2001:db8:2::10],fork,reuseaddr", "SYSTEM:echo out8080"); err != nil {
		t.Fatal(err)
	}
	waitListening(t, v.Lab, v.H1, 3)
	waitListening(t, v.Lab, v.H2, 1)
	connect := func(ns, addr, port string) (string, error) {
		out, err := v.ExecTimeout(ns, 10*time.Second, "socat", "-T", "3", "-", "TCP6:["+addr+"]:"+port+",connect-timeout=3")
		return strings.TrimSpace(out), err
	}

	// Ping both ways resolves the neighbours; ping6 to h1 is allowed.
	out := run(t, tl, v.H2, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "2001:db8:1::10")
	contains(t, out, "3 received")
	// ssh's port: connects, three times (three flows, three hits).
	for i := 0; i < 3; i++ {
		if got, err := connect(v.H2, "2001:db8:1::10", "22"); err != nil || got != "port22" {
			t.Fatalf("tcp/22 over IPv6: %q %v", got, err)
		}
	}
	// Another port: dropped (the connect times out) or rejected (refused at once).
	if got, err := connect(v.H2, "2001:db8:1::10", "2323"); err == nil || got == "port2323" {
		t.Fatalf("tcp/2323 reached h1: %q", got)
	}
	start := time.Now()
	got, err := connect(v.H2, "2001:db8:1::10", "443")
	if err == nil || got == "port443" {
		t.Fatalf("tcp/443 reached h1: %q", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("tcp/443 took %v: not refused by an RST", d)
	}
	// h1's own connection out: its replies pass with no rule for them.
	if got, err := connect(v.H1, "2001:db8:2::10", "8080"); err != nil || got != "out8080" {
		t.Fatalf("h1's connection out: %q %v", got, err)
	}
	// Path MTU discovery from behind the filter: h2 (a router beyond)
	// answers packet too big, which passes filter_out as related.
	out, _ = v.Exec(v.H1, "ping", "-6", "-M", "do", "-s", "1400", "-c", "2", "-i", "0.3", "-W", "2", "2001:db8:5::1")
	if !strings.Contains(out, "mtu=1280") && !strings.Contains(out, "mtu = 1280") {
		t.Fatalf("ping -6 -M do -s 1400 behind the filter does not learn mtu 1280:\n%s", out)
	}

	fs := showFilter(t, v.Router)
	if len(fs) != 1 || fs[0].Name != "h1-in6" {
		t.Fatalf("show filter: %+v", fs)
	}
	r := fs[0]
	if r.Rules[0].Hits != 3 || r.Rules[1].Hits == 0 || r.Rules[2].Hits != 1 || r.Default.Hits == 0 {
		t.Fatalf("show filter counts: ssh %d, 443 %d, echo %d, default %d (want 3, >0, 1, >0)",
			r.Rules[0].Hits, r.Rules[1].Hits, r.Rules[2].Hits, r.Default.Hits)
	}
	s := stats(t, v.Router)
	if s.Drops["filter"] == 0 || s.Counters["filter-resets-sent"] == 0 || s.Counters["filter-rejects"] == 0 {
		t.Fatalf("drops %v counters %v", s.Drops, s.Counters)
	}
	ct, err := v.Router.Console("show", "conntrack", "2001:db8:1::10")
	if err != nil || !strings.Contains(ct, "[2001:db8:2::10]") || !strings.Contains(ct, ":22") || !strings.Contains(ct, "none") {
		t.Fatalf("show conntrack: %v\n%s", err, ct)
	}
	if !strings.Contains(ct, "icmpv6") {
		t.Fatalf("show conntrack lacks the ping:\n%s", ct)
	}
	// Sessions: the ping in, three ssh flows, h1's flow out, h1's big
	// ping; nothing for the refused ones.
	nat, err := v.Router.Console("show", "nat")
	m := regexp.MustCompile(`nat-tracking-sessions6\s+event\s+(\d+)`).FindStringSubmatch(nat)
	if err != nil || m == nil {
		t.Fatalf("show nat: %v\n%s", err, nat)
	}
	if n, _ := strconv.Atoi(m[1]); n < 6 {
		t.Fatalf("nat-tracking-sessions6 %d, want at least 6", n)
	}
}
