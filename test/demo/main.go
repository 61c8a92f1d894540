// Command demo builds throw-away labs in network namespaces, runs vrouter on
// them and removes everything at the end (also on Ctrl-C or failure). Part 1,
// the standard lab: ping, traceroute, fragmentation and iperf3 through the
// router and the console's view. Part 2, the NAT lab: a tenant VM behind SNAT,
// a VM reached through its floating IP, and the router's NAT and conntrack
// tables. Part 3, host interfaces: dnsmasq gives a VM its address through
// vrouter, BIRD peers over the router's uplink and feeds its FIB. Part 4,
// the NAT lab with a stateful filter: the floating-IP VM with only ssh and
// http open, scanned with nmap from outside. Part 5, dual stack: ping6 and
// traceroute6 through the router, packet too big over a 1280-byte port, a
// VM configured by SLAAC from vrouter's advertisements, and a host-routed
// IPv6 guest reached through proxy NDP. Part 6, a redundant pair with
// keepalived: streams survive killing the master. `make demo` runs it (as
// root).
package main

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"vrouter/test/lab"
)

//go:embed peer.py
var peerPy []byte

// The labs that exist; mu is held while one is built or removed, so that
// Ctrl-C never races with a half-made lab. Cancelling ctx kills the
// commands the scenes run in the foreground.
var (
	mu          sync.Mutex
	labs        []*lab.Lab
	ctx, cancel = context.WithCancel(context.Background())
)

func closeAll() {
	for i := len(labs) - 1; i >= 0; i-- {
		labs[i].Close()
	}
	labs = nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "demo:", err)
	cancel()
	mu.Lock()
	closeAll()
	os.Exit(1)
}

func main() {
	if os.Getuid() != 0 {
		fmt.Fprintln(os.Stderr, "demo: needs root (network namespaces, AF_PACKET, TAP)")
		os.Exit(1)
	}
	if _, err := lab.Binary(); err != nil {
		fail(err)
	}
	sig := make(chan os.Signal, 1)
	// SIGPIPE too: `make demo | head` must not leave the lab behind.
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "\ndemo: %v; removing the labs\n", s)
		cancel()
		mu.Lock()
		closeAll()
		os.Exit(1)
	}()
	// VRDEMO_PARTS="5" (or "2,5") runs some parts only.
	parts := os.Getenv("VRDEMO_PARTS")
	for i, part := range []func(){standard, natScenes, hostScenes, filterScene, dualStack, haScene} {
		if parts == "" || strings.Contains(","+parts+",", fmt.Sprintf(",%d,", i+1)) {
			part()
		}
	}
	mu.Lock()
	closeAll()
	mu.Unlock()
}

// stopping parks the scenes once the labs are being removed (Ctrl-C or a
// failure), until the process exits.
func stopping() {
	if ctx.Err() != nil {
		select {}
	}
}

// startProc is l.Start under mu: a process is either started before the
// labs are removed (and so stopped by it) or not at all.
func startProc(l *lab.Lab, ns, logName string, args ...string) error {
	mu.Lock()
	if ctx.Err() != nil {
		mu.Unlock()
		select {}
	}
	_, err := l.Start(ns, logName, args...)
	mu.Unlock()
	return err
}

// build runs mk with mu held and records the lab it made.
func build[T any](mk func() (T, *lab.Lab, error)) T {
	mu.Lock()
	t, l, err := mk()
	if err == nil {
		labs = append(labs, l)
	}
	mu.Unlock()
	if err != nil {
		fail(err)
	}
	return t
}

func standard() {
	t := build(func() (*lab.Topo, *lab.Lab, error) {
		t, err := lab.Standard("demo", "")
		if err != nil {
			return nil, nil, err
		}
		return t, t.Lab, nil
	})

	fmt.Println(`vrouter demo lab (all inside network namespaces, removed at the end):

  h1 192.0.2.10 --veth-- [p1 afpacket] vrouter [p2 afpacket, mtu 1400] --veth-- h2 198.51.100.10
  vm 10.10.0.10 --TAP--- [vm tap]`)
	step := func(title, ns string, args ...string) {
		stopping()
		fmt.Printf("\n### %s\n$ %s\n", title, strings.Join(args, " "))
		c, done := context.WithTimeout(ctx, time.Minute)
		out, err := t.ExecContext(c, ns, args...)
		done()
		fmt.Print(out)
		if err != nil && !strings.Contains(err.Error(), "exit status") {
			fmt.Println("error:", err)
		}
	}
	step("ping h1 -> h2 through two AF_PACKET ports", t.H1, "ping", "-c", "3", "-i", "0.2", "198.51.100.10")
	step("ping h1 -> vm through the TAP port", t.H1, "ping", "-c", "3", "-i", "0.2", "10.10.0.10")
	step("traceroute h1 -> h2: the router is hop 1", t.H1, "traceroute", "-n", "-q", "1", "-w", "1", "198.51.100.10")
	step("no route: Destination Net Unreachable", t.H1, "ping", "-c", "1", "-W", "1", "10.99.0.1")
	step("1478-byte packets without DF over the 1400-byte port: fragmented by the router and answered", t.H1, "ping", "-c", "2", "-i", "0.2", "-M", "dont", "-s", "1450", "198.51.100.10")
	step("the same with DF: Frag needed (mtu = 1400)", t.H1, "ping", "-c", "1", "-W", "1", "-M", "do", "-s", "1450", "198.51.100.10")
	// The iperf3 server is one of the lab's processes (not a daemon) so that
	// removing the lab always stops it.
	if _, err := exec.LookPath("iperf3"); err == nil && start(t.Lab, t.H2, "iperf3-server.log", "-Hltn sport = :5201", "iperf3", "-s", "-1") == nil {
		step("iperf3 TCP h1 -> h2 (default offloads on the hosts' veths)", t.H1, "iperf3", "-c", "198.51.100.10", "-t", "3", "-f", "m")
	}
	if _, err := exec.LookPath("iperf3"); err == nil && start(t.Lab, t.H2, "iperf3-server2.log", "-Hltn sport = :5202", "iperf3", "-s", "-1", "-p", "5202") == nil {
		for _, ns := range []string{t.H1, t.H2} {
			t.Exec(ns, "ethtool", "-K", "eth0", "tso", "off", "gso", "off", "gro", "off")
		}
		step("the same with the hosts' offloads off: h1 sends 1500-byte segments and vrouter sends each batch's run of them to h2 as one super-frame (GRO: gro-superframes and gro-segments in show stats below)",
			t.H1, "iperf3", "-c", "198.51.100.10", "-p", "5202", "-t", "3", "-f", "m")
	}
	for _, c := range [][]string{{"show", "interfaces"}, {"show", "ip", "route"}, {"show", "arp"}, {"show", "stats"}} {
		stopping()
		out, _ := t.Router.Console(c...)
		fmt.Printf("\n### vrouter console %s\n%s", strings.Join(c, " "), out)
	}
	fmt.Println("\npart 1 done; removing the standard lab")
	mu.Lock()
	closeAll()
	mu.Unlock()
}

// natDemo is the NAT lab with the demo's peer.py servers and clients.
type natDemo struct {
	*lab.NATTopo
	peer string // path of peer.py
	n    int    // log file counter
	seen map[string]int
}

func natScenes() {
	n := &natDemo{NATTopo: build(func() (*lab.NATTopo, *lab.Lab, error) {
		n, err := lab.NAT("demo")
		if err != nil {
			return nil, nil, err
		}
		return n, n.Lab, nil
	}), seen: map[string]int{}}
	n.peer = filepath.Join(n.Dir, "peer.py")
	if err := os.WriteFile(n.peer, peerPy, 0o644); err != nil {
		fail(err)
	}
	cfg := lab.NATConfig[strings.Index(lab.NATConfig, "[[nat.snat]]"):strings.Index(lab.NATConfig, "[conntrack]")]
	fmt.Printf(`
========================================================================
Part 2: vrouter as the virtual router of a tenant network (the job of the
OpenStack/Virtuozzo/CloudStack virtual router): SNAT and a floating IP.

  in1 10.1.1.5 (floating IP 203.0.113.50) --[pin1]
                                                vrouter [pup 203.0.113.1] -- up (plain Linux router) -- srv 198.51.100.10
  in2 10.1.2.6 (SNAT to 203.0.113.1)      --[pin2]

in1 and in2 play VMs on private networks, srv a host outside. The NAT part of
the router's configuration:

%s`, strings.TrimSpace(cfg)+"\n")
	// Servers printing the address each connection or datagram comes from.
	srvLog := n.serve(n.Srv, "198.51.100.10")
	vmLog := n.serve(n.In1, "10.1.1.5")

	fmt.Println("\n### SNAT: VM in2 (10.1.2.6) opens TCP and UDP to srv; the server sees the router's public address 203.0.113.1")
	n.client(n.In2, "in2", "tcp", "198.51.100.10", true)
	n.client(n.In2, "in2", "udp", "198.51.100.10", false)
	n.show("srv", srvLog)

	fmt.Println("\n### Floating IP: srv connects to 203.0.113.50; VM in1 (10.1.1.5) sees the client's own address 198.51.100.10")
	n.client(n.Srv, "srv", "tcp", "203.0.113.50", true)
	n.show("in1", vmLog)
	fmt.Println("\n### ... and VM in1's own connections leave with its floating IP, not the SNAT address")
	n.client(n.In1, "in1", "tcp", "198.51.100.10", false)
	n.show("srv", srvLog)

	fmt.Println("\n### the router's view while the TCP connections marked (kept open) are still established")
	for _, c := range [][]string{{"show", "nat"}, {"show", "conntrack"}} {
		stopping()
		out, err := n.Router.Console(c...)
		fmt.Printf("$ vrouter console %s\n%s\n", strings.Join(c, " "), out)
		if err != nil {
			fmt.Println("error:", err)
		}
	}
	fmt.Println("part 2 done; removing the NAT lab")
	mu.Lock()
	closeAll()
	mu.Unlock()
}

// filterScene: the floating-IP VM behind a stateful filter, scanned from
// outside.
func filterScene() {
	n := build(func() (*lab.NATTopo, *lab.Lab, error) {
		n, err := lab.NATConfigured("demo", lab.FilterConfig)
		if err != nil {
			return nil, nil, err
		}
		return n, n.Lab, nil
	})
	fmt.Printf(`
========================================================================
Part 4: a stateful filter (CloudStack firewall rules, OpenStack FWaaS). The
same lab; the VM in1 (floating IP 203.0.113.50) gets a ruleset on what the
router sends into its network:

[[network]]
name       = "inside1"
...
filter_out = "vm-in"
%s
The VM listens on 22, 80 and 3306 (a tiny server on each); the scan comes
from srv (198.51.100.10), outside. Replies to the VM's own connections need
no rule: the filter is stateful.
`, lab.FilterRules)
	for _, port := range []string{"22", "80", "3306"} {
		if err := start(n.Lab, n.In1, "listen-"+port+".log", "-Hltn sport = :"+port, "socat",
			"TCP-LISTEN:"+port+",bind=10.1.1.5,fork,reuseaddr", "SYSTEM:echo hello from port "+port); err != nil {
			fail(err)
		}
	}
	stopping()
	if _, err := exec.LookPath("nmap"); err != nil {
		fmt.Println("\n(nmap is not installed: make deps installs it; the scan is skipped)")
	} else {
		args := []string{"nmap", "-n", "-Pn", "-sS", "-T4", "--max-retries", "1", "-p", "22,80,443,3306,8080", "203.0.113.50"}
		fmt.Printf("\n### srv scans the floating IP: ssh and http open, https rejected (closed), the rest filtered\n$ %s\n",
			strings.Join(args, " "))
		c, done := context.WithTimeout(ctx, time.Minute)
		out, err := n.ExecContext(c, n.Srv, args...)
		done()
		for _, l := range lab.Lines(out) {
			if strings.HasPrefix(l, "PORT") || strings.Contains(l, "/tcp") {
				fmt.Println(l)
			}
		}
		if err != nil && !strings.Contains(err.Error(), "exit status") {
			fmt.Println("error:", err)
		}
	}
	for _, c := range [][]string{{"show", "filter"}} {
		stopping()
		out, err := n.Router.Console(c...)
		fmt.Printf("\n$ vrouter console %s\n%s", strings.Join(c, " "), out)
		if err != nil {
			fmt.Println("error:", err)
		}
	}
	fmt.Println("\npart 4 done; removing the filter lab")
}

func (n *natDemo) logName(what string) string {
	n.n++
	return fmt.Sprintf("peer-%d-%s.log", n.n, what)
}

// start runs a server in ns as one of the lab's processes and waits until
// `ss <listening>` lists its socket.
func start(l *lab.Lab, ns, logName, listening string, args ...string) error {
	if err := startProc(l, ns, logName, args...); err != nil {
		return err
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if out, _ := l.Exec(ns, append([]string{"ss"}, strings.Fields(listening)...)...); strings.TrimSpace(out) != "" {
			return nil
		}
	}
	return fmt.Errorf("%s: not listening (ss %s) after 5s", strings.Join(args, " "), listening)
}

// serve starts peer.py serve addr:80 (TCP and UDP) in ns, waits until it
// listens and returns its log file.
func (n *natDemo) serve(ns, addr string) string {
	name := n.logName("serve")
	if err := start(n.Lab, ns, name, "-Hlnu src "+addr+":80", "/usr/bin/python3", n.peer, "serve", addr, "80"); err != nil {
		fail(err)
	}
	return filepath.Join(n.Dir, name)
}

// client runs peer.py connect in ns (named who) to host:80 and prints what
// it says. With hold the socket stays open (in the background, until the
// lab is removed) so that its session stays established.
func (n *natDemo) client(ns, who, proto, host string, hold bool) {
	args := []string{"connect", proto, host, "80"}
	note := ""
	if hold {
		args = append(args, "120")
		note = "   (kept open)"
	}
	stopping()
	fmt.Printf("%s$ peer.py %s%s\n", who, strings.Join(args[:4], " "), note)
	name := n.logName("connect")
	if err := startProc(n.Lab, ns, name, append([]string{"/usr/bin/python3", n.peer}, args...)...); err != nil {
		fail(err)
	}
	// It prints one line with the answer, or a Python traceback ending in
	// "...Error: ..." after its 3 s timeout.
	path := filepath.Join(n.Dir, name)
	for deadline := time.Now().Add(6 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), "answers") || strings.Contains(string(b), "Error") {
			time.Sleep(50 * time.Millisecond)
			break
		}
	}
	b, _ := os.ReadFile(path)
	out := strings.TrimSpace(string(b))
	if !strings.Contains(out, "answers") {
		out += "\n(no answer)"
	}
	fmt.Println(out)
}

// show prints the lines of a server log not printed yet.
func (n *natDemo) show(who, path string) {
	time.Sleep(100 * time.Millisecond)
	b, _ := os.ReadFile(path)
	lines := lab.Lines(string(b))
	fmt.Printf("%s, the server's log:\n", who)
	for _, l := range lines[min(n.seen[path], len(lines)):] {
		fmt.Println("  " + l)
	}
	n.seen[path] = len(lines)
}

func dualStack() {
	t := build(func() (*lab.DualTopo, *lab.Lab, error) {
		t, err := lab.Dual("demo6", true)
		if err != nil {
			return nil, nil, err
		}
		return t, t.Lab, nil
	})
	fmt.Println(`
part 5: dual stack (IPv4 and IPv6 on the same networks):

  h1 192.0.2.10 2001:db8:1::10 --veth-- [p1] vrouter [p2, mtu 1280] --veth-- h2 198.51.100.10 2001:db8:2::10
  vm (SLAAC, 2001:db8:3::/64) --TAP-- [vm, ra = true]
  g 2001:db8:1::77 (host-routed, published on net1 by proxy NDP) --veth-- [g]`)
	step := func(title, ns string, args ...string) {
		stopping()
		fmt.Printf("\n### %s\n$ %s\n", title, strings.Join(args, " "))
		c, done := context.WithTimeout(ctx, time.Minute)
		out, err := t.ExecContext(c, ns, args...)
		done()
		fmt.Print(out)
		if err != nil && !strings.Contains(err.Error(), "exit status") {
			fmt.Println("error:", err)
		}
	}
	step("ping6 h1 -> h2", t.H1, "ping", "-6", "-c", "3", "-i", "0.2", "2001:db8:2::10")
	step("traceroute6 h1 -> h2: the router is hop 1", t.H1, "traceroute", "-6", "-n", "-q", "1", "-w", "1", "2001:db8:2::10")
	step("1400 bytes with DF over the 1280-byte port: packet too big (mtu = 1280)", t.H1, "ping", "-6", "-c", "1", "-W", "1", "-M", "do", "-s", "1400", "2001:db8:2::10")
	step("tracepath6 finds the path MTU", t.H1, "tracepath", "-6", "-n", "2001:db8:2::10")
	for i := 0; i < 50; i++ { // the VM's SLAAC address, from vrouter's RA
		stopping()
		if out, _ := t.Exec(t.VM, "ip", "-6", "route", "show", "default"); strings.Contains(out, "proto ra") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	step("the VM's address and default route, from vrouter's router advertisement", t.VM, "ip", "-6", "addr", "show", "dev", t.TapDev, "scope", "global")
	step("", t.VM, "ip", "-6", "route", "show", "default")
	step("ping6 vm -> h1 with its SLAAC address", t.VM, "ping", "-6", "-c", "2", "-i", "0.2", "2001:db8:1::10")
	step("ping6 h1 -> the host-routed guest (proxy NDP on net1, gateway fe80::1 on its link)", t.H1, "ping", "-6", "-c", "2", "-i", "0.2", "2001:db8:1::77")
	for _, c := range [][]string{{"show", "ipv6", "route"}, {"show", "ipv6", "neighbors"}, {"show", "interfaces"}} {
		stopping()
		out, _ := t.Router.Console(c...)
		fmt.Printf("\n### vrouter console %s\n%s", strings.Join(c, " "), out)
	}
	fmt.Println("\npart 5 done; removing the dual-stack lab")
	mu.Lock()
	closeAll()
	mu.Unlock()
}
