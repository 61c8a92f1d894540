package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"vrouter/test/lab"
)

// The filter lab is the NAT lab (lab.NATTopo) with lab.FilterRules as the
// filter_out of the VM in1's network: from outside (srv, 198.51.100.10 and
// .20) the VM is reached through its floating IP 203.0.113.50.

func newFilterTopo(t *testing.T) *natTopo {
	t.Helper()
	needRoot(t)
	nt, err := lab.NATConfigured("f", lab.FilterConfig)
	if err != nil {
		t.Fatal(err)
	}
	n := &natTopo{NATTopo: nt}
	cleanupLab(t, n.Router, n.Close)
	return n
}

// listen runs TCP servers on the VM that answer "PORT" on each connection.
func (n *natTopo) listen(t *testing.T, ports ...string) {
	t.Helper()
	for _, p := range ports {
		n.server(t, n.In1, "10.1.1.5", p, "port"+p)
	}
	waitListening(t, n.Lab, n.In1, len(ports))
}

// waitListening waits until ns has at least k listening TCP sockets.
func waitListening(t *testing.T, l *lab.Lab, ns string, k int) { waitSockets(t, l, ns, "-Hltn", k) }

// waitSockets waits until `ss flags` in ns lists at least k sockets.
func waitSockets(t *testing.T, l *lab.Lab, ns, flags string, k int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		out, _ := l.Exec(ns, "ss", flags)
		if len(lab.Lines(out)) >= k {
			return
		}
	}
	t.Fatalf("servers in %s not listening", ns)
}

var nmapPorts = regexp.MustCompile(`(\d+)/(open|closed|filtered|unfiltered|open\|filtered)/tcp`)

// nmap SYN-scans ports of addr from ns (extra: more nmap flags) and returns
// each port's state.
func nmap(t *testing.T, l *lab.Lab, ns, addr, ports string, extra ...string) map[string]string {
	t.Helper()
	args := append([]string{"nmap", "-n", "-Pn", "-sS", "-T4", "--max-retries", "1", "--host-timeout", "60s", "-p", ports, "-oG", "-"}, extra...)
	out, err := l.ExecTimeout(ns, 90*time.Second, append(args, addr)...)
	if err != nil {
		t.Fatalf("nmap: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, m := range nmapPorts.FindAllStringSubmatch(out, -1) {
		got[m[1]] = m[2]
	}
	return got
}

// nmap from outside against the floating IP sees exactly the allowed ports
// open, the rejected one closed and the rest filtered, although the VM
// listens on all of them but 443; the admin port is open to its one
// source only.
func TestFilterNmapFloatingIP(t *testing.T) {
	n := newFilterTopo(t)
	n.listen(t, "22", "80", "3306", "8080")
	got := nmap(t, n.Lab, n.Srv, "203.0.113.50", "22,23,80,443,3306,8080")
	want := map[string]string{"22": "open", "80": "open", "443": "closed", "23": "filtered", "3306": "filtered", "8080": "filtered"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("nmap from 198.51.100.10: %v, want %v", got, want)
	}
	got = nmap(t, n.Lab, n.Srv, "203.0.113.50", "8080,3306", "-S", "198.51.100.20", "-e", "eth0")
	if got["8080"] != "open" || got["3306"] != "filtered" {
		t.Fatalf("nmap from 198.51.100.20: %v, want 8080 open, 3306 filtered", got)
	}
	// The source restriction holds for a real connection too.
	out, err := n.ExecTimeout(n.Srv, 10*time.Second, "socat", "-T", "2", "-", "TCP:203.0.113.50:8080,connect-timeout=2")
	if err == nil || strings.Contains(out, "port8080") {
		t.Fatalf("8080 reached from 198.51.100.10: %q %v", out, err)
	}
	out, err = n.ExecTimeout(n.Srv, 10*time.Second, "socat", "-T", "2", "-", "TCP:203.0.113.50:8080,connect-timeout=2,bind=198.51.100.20")
	if err != nil || strings.TrimSpace(out) != "port8080" {
		t.Fatalf("8080 from 198.51.100.20: %q %v", out, err)
	}
	s := stats(t, n.Router)
	if s.Drops["filter"] == 0 || s.Counters["filter-resets-sent"] == 0 {
		t.Fatalf("drops %v, resets %d", s.Drops, s.Counters["filter-resets-sent"])
	}
}

// The VM's own connections and datagrams out, and their replies, pass
// without a rule for the replies; ping from outside is allowed.
func TestFilterOutbound(t *testing.T) {
	n := newFilterTopo(t)
	n.server(t, n.Srv, "198.51.100.10", "80", "PEER")
	if _, err := n.Start(n.Srv, "udp-echo.log", "socat", "UDP-LISTEN:5353,bind=198.51.100.10,fork,reuseaddr", "SYSTEM:echo pong"); err != nil {
		t.Fatal(err)
	}
	waitListening(t, n.Lab, n.Srv, 1)
	waitSockets(t, n.Lab, n.Srv, "-Hlun", 1)
	if got := n.get(t, n.In1, "198.51.100.10", "80"); got != "203.0.113.50" {
		t.Fatalf("VM's connection out: %q", got)
	}
	out, err := n.ExecTimeout(n.In1, 10*time.Second, "sh", "-c", "echo ping | socat -t 3 -T 3 - UDP:198.51.100.10:5353")
	if err != nil || strings.TrimSpace(out) != "pong" {
		t.Fatalf("VM's datagram and its answer: %q %v", out, err)
	}
	run(t, &lab.Topo{Lab: n.Lab}, n.Srv, "ping", "-c", "2", "-i", "0.2", "-W", "2", "203.0.113.50")
	rules := showFilter(t, n.Router)[0]
	if rules.Default.Hits != 0 {
		t.Fatalf("a reply was classified (default hits %d)", rules.Default.Hits)
	}
	if rules.Rules[3].Hits != 1 {
		t.Fatalf("ping: echo rule hits %d, want 1 (one flow)", rules.Rules[3].Hits)
	}
}

// PMTU discovery (frag-needed from a router beyond) and traceroute
// (time-exceeded from the router and beyond, port unreachable from the
// destination) work for the VM behind the filter.
func TestFilterPMTUTraceroute(t *testing.T) {
	n := newFilterTopo(t)
	out := run(t, &lab.Topo{Lab: n.Lab}, n.In1, "traceroute", "-n", "-q", "1", "-w", "2", "198.51.100.10")
	lines := lab.Lines(out)
	if len(lines) < 4 || !strings.HasPrefix(lines[1], "1  10.1.1.1") || !strings.HasPrefix(lines[2], "2  203.0.113.254") ||
		!strings.HasPrefix(lines[3], "3  198.51.100.10") {
		t.Fatalf("traceroute from behind the filter:\n%s", out)
	}
	out, _ = n.Exec(n.In1, "ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1400", "198.51.100.10")
	if !strings.Contains(out, "mtu = 1300") && !strings.Contains(out, "mtu=1300") {
		t.Fatalf("path MTU from behind the filter:\n%s", out)
	}
}

// filterShow is one ruleset of show filter -j.
type filterShow struct {
	Name  string `json:"name"`
	Rules []struct {
		Hits    uint64 `json:"hits"`
		Packets uint64 `json:"packets"`
		Bytes   uint64 `json:"bytes"`
	} `json:"rules"`
	Default struct {
		Hits    uint64 `json:"hits"`
		Packets uint64 `json:"packets"`
		Bytes   uint64 `json:"bytes"`
	} `json:"default_counters"`
}

func showFilter(t *testing.T, r *lab.Router) []filterShow {
	t.Helper()
	out, err := r.Console("-j", "show", "filter")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var fs []filterShow
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatalf("show filter -j: %v\n%s", err, out)
	}
	return fs
}

// The counters count what was sent: each first packet once, on the rule
// (or default) that decided it, with its bytes; show stats and /metrics
// agree.
func TestFilterCounters(t *testing.T) {
	n := newFilterTopo(t)
	n.listen(t, "22")
	const datagrams = 7
	for i := 0; i < datagrams; i++ {
		// 6-byte payload: 34-byte IP packets, each a first packet (a refused
		// flow gets no session).
		if _, err := n.Exec(n.Srv, "sh", "-c", "echo hello | socat -u - UDP:203.0.113.50:5000,sourceport=41000"); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		if got := n.get(t, n.Srv, "203.0.113.50", "22"); got != "port22" {
			t.Fatalf("ssh %d: %q", i, got)
		}
	}
	time.Sleep(200 * time.Millisecond)
	f := showFilter(t, n.Router)[0]
	if f.Default.Hits != datagrams || f.Default.Packets != datagrams || f.Default.Bytes != datagrams*34 {
		t.Fatalf("default counters %+v, want %d packets of 34 bytes", f.Default, datagrams)
	}
	if f.Rules[0].Hits != 3 || f.Rules[0].Packets != 3 {
		t.Fatalf("ssh/http rule %+v, want the 3 SYNs", f.Rules[0])
	}
	if s := stats(t, n.Router); s.Drops["filter"] != datagrams {
		t.Fatalf("filter drops %d, want %d", s.Drops["filter"], datagrams)
	}
	out, err := n.Exec(n.R, "curl", "-s", "http://127.0.0.1:9469/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf(`vrouter_filter_packets_total{action="drop",rule="default",ruleset="vm-in"} %d`, datagrams),
		fmt.Sprintf(`vrouter_filter_bytes_total{action="drop",rule="default",ruleset="vm-in"} %d`, datagrams*34),
		`vrouter_filter_hits_total{action="accept",rule="1",ruleset="vm-in"} 3`,
		fmt.Sprintf(`vrouter_drops_total{reason="filter"} %d`, datagrams),
	} {
		contains(t, out, want)
	}
}

// keepTalking runs a client in ns that holds a TCP connection to addr:port
// and exchanges a line every 0.3 s, printing "ok" or "cut" per exchange;
// it returns the path of its log.
func keepTalking(t *testing.T, n *natTopo, ns, addr, port string) string {
	t.Helper()
	const script = `
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
s.settimeout(1.5)
while True:
    try:
        s.sendall(b"x\n")
        print("ok" if s.recv(100) else "closed", flush=True)
    except Exception as e:
        print("cut", type(e).__name__, flush=True)
    time.sleep(0.3)
`
	name := "talk-" + port + ".log"
	if _, err := n.Start(ns, name, "python3", "-u", "-c", script, addr, port); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(n.Dir, name)
}

// lastLines is the last k lines of a log.
func lastLines(path string, k int) []string {
	b, _ := os.ReadFile(path)
	ls := lab.Lines(string(b))
	return ls[max(0, len(ls)-k):]
}

func allAre(ls []string, prefix string) bool {
	for _, l := range ls {
		if !strings.HasPrefix(l, prefix) {
			return false
		}
	}
	return len(ls) > 0
}

// A reload that removes the rule an established connection was accepted
// by cuts it (its session is flushed: the next segments are invalid) and
// says so; a connection the new rules still accept goes on.
func TestFilterReloadCutsFlow(t *testing.T) {
	n := newFilterTopo(t)
	for _, p := range []string{"22", "80"} {
		if _, err := n.Start(n.In1, "echo-"+p+".log", "socat", "TCP-LISTEN:"+p+",bind=10.1.1.5,fork,reuseaddr", "EXEC:cat"); err != nil {
			t.Fatal(err)
		}
	}
	waitListening(t, n.Lab, n.In1, 2)
	http := keepTalking(t, n, n.Srv, "203.0.113.50", "80")
	ssh := keepTalking(t, n, n.Srv, "203.0.113.50", "22")
	time.Sleep(1500 * time.Millisecond)
	if !allAre(lastLines(http, 3), "ok") || !allAre(lastLines(ssh, 3), "ok") {
		t.Fatalf("connections not established: %v %v", lastLines(http, 3), lastLines(ssh, 3))
	}
	cfg, err := os.ReadFile(n.Router.Config)
	if err != nil {
		t.Fatal(err)
	}
	writeCfg(t, n.Router.Config, strings.Replace(string(cfg), `dport       = "22,80"`, `dport       = "22"`, 1))
	out, err := n.Router.Console("reload")
	if err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	contains(t, out, "1 session flushed: no longer accepted by filter vm-in")
	time.Sleep(4 * time.Second)
	if !allAre(lastLines(http, 2), "cut") {
		t.Fatalf("http connection not cut by the reload: %v", lastLines(http, 5))
	}
	if !allAre(lastLines(ssh, 5), "ok") {
		t.Fatalf("ssh connection hurt by the reload: %v", lastLines(ssh, 5))
	}
	if s := stats(t, n.Router); s.Drops["filter-invalid"] == 0 {
		t.Fatalf("segments of the cut connection not counted invalid: %v", s.Drops)
	}
}
