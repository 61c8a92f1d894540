package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// HAPair is the redundant-pair lab: two vrouters on a shared inside segment
// (hosts 10.1.1.5, a floating IP's VM, and 10.1.1.6, behind SNAT) and a
// shared outside segment (a host at 203.0.113.100), both segments Linux
// bridges in namespace SW. keepalived runs VRRPv3 with 0.1 s adverts on
// each router's inside host interface (ha-in), holds the inside gateway VIP
// 10.1.1.1 and tells its router its state through the console; the routers
// sync sessions over the inside segment.
//
//	in (10.1.1.5, .6) ── brin ──┬── r1 (10.1.1.2 | 203.0.113.2) ──┬── brout ── out (203.0.113.100)
//	                            └── r2 (10.1.1.3 | 203.0.113.3) ──┘
//	SNAT 10.1.1.0/24 -> 203.0.113.10; floating 203.0.113.50 -> 10.1.1.5
type HAPair struct {
	*Lab
	SW, In, Out string
	R           [2]*HANode
	// Stream is the path of the stream helper (HAStream), run with
	// /usr/bin/python3.
	Stream string
}

// HANode is one router of the pair and its keepalived.
type HANode struct {
	NS, Name, Config string
	Router           *Router
	KA               *exec.Cmd
	KADir            string
}

// HAKey is the pair's [ha] key.
const HAKey = "4e6f74206120736563726574206b6579206275742061207465737420666978"

// HARouterConfig is a router of the pair.
func HARouterConfig(name, inAddr, outAddr, peer string) string {
	return fmt.Sprintf(`[router]
name = %q
console = "SOCKET"

[[port]]
name = "in"
driver = "afpacket"
device = "eth-in"

[[port]]
name = "out"
driver = "afpacket"
device = "eth-out"

[[network]]
name = "inside"
links = ["in"]
addresses = ["%s/24"]
host = "ha-in"

[[network]]
name = "outside"
links = ["out"]
addresses = ["%s/24"]

[[nat.snat]]
source = "10.1.1.0/24"
out = "outside"
to = "203.0.113.10"

[[nat.floating]]
external = "203.0.113.50"
internal = "10.1.1.5"

[ha]
local = %q
peer = %q
key = %q
initial = "backup"
`, name, inAddr, outAddr, inAddr, peer, HAKey)
}

// HANotifyScript is keepalived's vrrp_notify_fifo_script (VROUTER and
// SOCKET replaced): keepalived runs it once with its FIFO as the last
// argument and writes a line per transition there, in the order they
// happen; the script hands them to the router one at a time.
const HANotifyScript = `#!/bin/sh
# Lines: INSTANCE "NAME" STATE PRIORITY
while read -r kind name state prio; do
	[ "$kind" = INSTANCE ] || continue
	case "$state" in
	MASTER) s=master ;;
	BACKUP) s=backup ;;
	FAULT|STOP|DELETED) s=fault ;;
	*) continue ;; # MASTER_RX_LOWER_PRI: no transition
	esac
	VROUTER console -s SOCKET ha state $s
done < "$1"
`

// HAStream is the stream helper: `server BIND PORT LOG` sends 1 KiB every
// 5 ms to every client (and logs each client's address); `client SRC DST
// PORT OUT` reads until SIGTERM and writes JSON: bytes, the longest gap
// between two reads and when, every gap over 0.1 s, and the error that
// ended it ("" when none); `once SRC DST PORT` connects, reads a byte and
// prints ok.
const HAStream = `
import json, signal, socket, sys, threading, time
mode = sys.argv[1]
if mode == "server":
    bind, port, log = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((bind, port))
    s.listen(16)
    def serve(c):
        buf = b"x" * 1024
        try:
            while True:
                c.sendall(buf)
                time.sleep(0.005)
        except Exception:
            return
    while True:
        c, peer = s.accept()
        with open(log, "a") as f:
            f.write("%s:%d\n" % peer)
        threading.Thread(target=serve, args=(c,), daemon=True).start()
elif mode == "client":
    src, dst, port, out = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *a: stop.__setitem__(0, True))
    s = socket.create_connection((dst, port), timeout=5, source_address=(src, 0))
    s.settimeout(0.02)
    start = last = time.monotonic()
    res = {"local": "%s:%d" % s.getsockname(), "bytes": 0, "maxgap": 0.0, "at": 0.0, "error": "", "gaps": []}
    while not stop[0]:
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        except Exception as e:
            res["error"] = repr(e)
            break
        if not b:
            res["error"] = "EOF"
            break
        now = time.monotonic()
        if now - last > 0.1:
            res["gaps"].append([round(now - start, 2), round(now - last, 3)])
        if now - last > res["maxgap"]:
            res["maxgap"], res["at"] = now - last, now - start
        last = now
        res["bytes"] += len(b)
    with open(out, "w") as f:
        json.dump(res, f)
elif mode == "once":
    src, dst, port = sys.argv[2], sys.argv[3], int(sys.argv[4])
    s = socket.create_connection((dst, port), timeout=3, source_address=(src, 0))
    s.settimeout(3)
    if not s.recv(1):
        sys.exit("no data")
    print("ok")
`

// StreamResult is what a stream client reports.
type StreamResult struct {
	Local  string
	Bytes  int64
	MaxGap float64
	At     float64
	Error  string
	Gaps   [][2]float64
}

// NewHAPair builds the pair's namespaces, bridges and hosts; the routers
// and keepalived are started with StartRouter and StartKeepalived.
func NewHAPair(tag string) (p *HAPair, err error) {
	l, err := New(tag)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	p = &HAPair{Lab: l}
	ns := func(name string) string {
		if err != nil {
			return ""
		}
		var full string
		full, err = l.NS(name)
		return full
	}
	p.SW, p.In, p.Out = ns("sw"), ns("in"), ns("out")
	p.R[0] = &HANode{NS: ns("r1"), Name: "r1", Config: HARouterConfig("r1", "10.1.1.2", "203.0.113.2", "10.1.1.3")}
	p.R[1] = &HANode{NS: ns("r2"), Name: "r2", Config: HARouterConfig("r2", "10.1.1.3", "203.0.113.3", "10.1.1.2")}
	if err != nil {
		return nil, err
	}
	do := func(ns string, args ...string) {
		if err == nil {
			_, err = l.Exec(ns, args...)
		}
	}
	for _, br := range []string{"brin", "brout"} {
		do(p.SW, "ip", "link", "add", br, "type", "bridge", "mcast_snooping", "0")
		do(p.SW, "ip", "link", "set", br, "up")
	}
	link := func(ns, dev, swDev, br string) {
		if err == nil {
			err = l.Veth(ns, dev, p.SW, swDev)
		}
		do(p.SW, "ip", "link", "set", swDev, "master", br)
	}
	for _, n := range p.R {
		link(n.NS, "eth-in", n.Name+"in", "brin")
		link(n.NS, "eth-out", n.Name+"out", "brout")
	}
	link(p.In, "eth0", "hin", "brin")
	link(p.Out, "eth0", "hout", "brout")
	do(p.In, "ip", "addr", "add", "10.1.1.5/24", "dev", "eth0")
	do(p.In, "ip", "addr", "add", "10.1.1.6/24", "dev", "eth0")
	do(p.In, "ip", "route", "add", "default", "via", "10.1.1.1")
	do(p.Out, "ip", "addr", "add", "203.0.113.100/24", "dev", "eth0")
	if err != nil {
		return nil, err
	}
	p.Stream = filepath.Join(l.Dir, "stream.py")
	if err = os.WriteFile(p.Stream, []byte(HAStream), 0o644); err != nil {
		return nil, err
	}
	return p, nil
}

// StartRouter starts router i (again, after Kill).
func (p *HAPair) StartRouter(i int) error {
	n := p.R[i]
	r, err := p.Lab.StartRouter(n.NS, n.Name, n.Config)
	if err != nil {
		return err
	}
	n.Router = r
	return nil
}

// StartKeepalived starts router i's keepalived with priority prio: VRRPv3,
// 0.1 s adverts, both BACKUP with preempt_delay 5 (a returning router
// resyncs before it takes over). Its transitions reach the router in order
// through keepalived's notify FIFO (HANotifyScript), not through notify
// scripts: those run concurrently, and of a quick MASTER then BACKUP the
// BACKUP may reach the router first, leaving it master.
func (p *HAPair) StartKeepalived(i, prio int) error {
	n := p.R[i]
	bin, err := Binary()
	if err != nil {
		return err
	}
	n.KADir = filepath.Join(p.Dir, n.Name+"-ka")
	if err := os.MkdirAll(n.KADir, 0o755); err != nil {
		return err
	}
	notify := filepath.Join(n.KADir, "notify.sh")
	script := strings.NewReplacer("VROUTER", bin, "SOCKET", n.Router.Socket).Replace(HANotifyScript)
	if err := os.WriteFile(notify, []byte(script), 0o755); err != nil {
		return err
	}
	conf := filepath.Join(n.KADir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`global_defs {
	router_id %s
	vrrp_version 3
	script_user root
	vrrp_notify_fifo %s
	vrrp_notify_fifo_script %s
}
vrrp_instance inside {
	state BACKUP
	interface ha-in
	virtual_router_id 61
	priority %d
	advert_int 0.1
	preempt_delay 5
	virtual_ipaddress {
		10.1.1.1/32 dev ha-in
	}
}
`, n.Name, filepath.Join(n.KADir, "notify.fifo"), notify, prio)), 0o644); err != nil {
		return err
	}
	ka, err := p.Start(n.NS, n.Name+"-keepalived.log", "keepalived", "-n", "-l", "-D", "-f", conf,
		"-p", filepath.Join(n.KADir, "keepalived.pid"), "-r", filepath.Join(n.KADir, "vrrp.pid"))
	if err != nil {
		return err
	}
	n.KA = ka
	return nil
}

// Kill SIGKILLs router i's vrouter and keepalived (its parent and VRRP
// child) and waits for them.
func (p *HAPair) Kill(i int) {
	n := p.R[i]
	n.Router.Cmd.Process.Signal(syscall.SIGKILL)
	for _, f := range []string{"vrrp.pid", "keepalived.pid"} {
		if b, err := os.ReadFile(filepath.Join(n.KADir, f)); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	n.KA.Process.Signal(syscall.SIGKILL)
	n.Router.Cmd.Wait()
	n.KA.Wait()
}

// HAView is the part of `show ha -j` the pair's users read.
type HAView struct {
	State    string `json:"state"`
	Sessions int    `json:"sessions"`
	Sync     *struct {
		PeerUp           bool   `json:"peer_up"`
		SessionsSent     uint64 `json:"sessions_sent"`
		SessionsReceived uint64 `json:"sessions_received"`
		SessionsAcked    uint64 `json:"sessions_acked"`
		SessionsLost     uint64 `json:"sessions_lost"`
		Retransmits      uint64 `json:"retransmits"`
		ResyncsRequested uint64 `json:"resyncs_requested"`
		ResyncsServed    uint64 `json:"resyncs_served"`
	} `json:"sync"`
}

// ShowHA reads router i's `show ha -j`.
func (p *HAPair) ShowHA(i int) (HAView, error) {
	var v HAView
	out, err := p.R[i].Router.Console("-j", "show", "ha")
	if err != nil {
		return v, fmt.Errorf("%s show ha: %v: %s", p.R[i].Name, err, out)
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		return v, fmt.Errorf("%s show ha: %v\n%s", p.R[i].Name, err, out)
	}
	if v.Sync == nil {
		return v, fmt.Errorf("%s show ha: sync not running\n%s", p.R[i].Name, out)
	}
	return v, nil
}

// WaitState waits until router i is in state, and says how long it took.
func (p *HAPair) WaitState(i int, state string, d time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		v, err := p.ShowHA(i)
		if err == nil && v.State == state {
			return time.Since(start), nil
		}
		if time.Since(start) > d {
			b, _ := os.ReadFile(filepath.Join(p.Dir, p.R[i].Name+"-keepalived.log"))
			return 0, fmt.Errorf("%s not %s after %v (%v)\nkeepalived:\n%s\nrouter:\n%s", p.R[i].Name, state, d, err, b, p.R[i].Router.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Streams are the pair's two long TCP streams.
type Streams struct {
	p                 *HAPair
	SNATLog, FloatLog string // the servers' logs of client addresses
	snatOut, floatOut string
	snatCli, floatCli *exec.Cmd
}

// StartStreams starts the servers and the clients: out's server read by
// the SNAT host 10.1.1.6, and the floating IP's VM's server read by out.
func (p *HAPair) StartStreams() (*Streams, error) {
	py := "/usr/bin/python3"
	s := &Streams{p: p, SNATLog: filepath.Join(p.Dir, "snat-server.txt"), FloatLog: filepath.Join(p.Dir, "float-server.txt"),
		snatOut: filepath.Join(p.Dir, "snat-client.json"), floatOut: filepath.Join(p.Dir, "float-client.json")}
	for _, sv := range [][]string{{p.Out, "203.0.113.100", "5001", s.SNATLog}, {p.In, "10.1.1.5", "5002", s.FloatLog}} {
		if _, err := p.Start(sv[0], "server-"+sv[2]+".log", py, p.Stream, "server", sv[1], sv[2], sv[3]); err != nil {
			return nil, err
		}
	}
	// The servers listen before the clients connect (under load python
	// may take longer than any fixed pause to start).
	for _, sv := range [][]string{{p.Out, "5001"}, {p.In, "5002"}} {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if out, _ := p.Exec(sv[0], "ss", "-Hltn", "sport = :"+sv[1]); strings.TrimSpace(out) != "" {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("stream server on port %s not listening after 10s", sv[1])
			}
		}
	}
	var err error
	if s.snatCli, err = p.Start(p.In, "snat-client.log", py, p.Stream, "client", "10.1.1.6", "203.0.113.100", "5001", s.snatOut); err != nil {
		return nil, err
	}
	if s.floatCli, err = p.Start(p.Out, "float-client.log", py, p.Stream, "client", "203.0.113.100", "203.0.113.50", "5002", s.floatOut); err != nil {
		return nil, err
	}
	return s, nil
}

// Once opens a new connection to the SNAT server (from 10.1.1.6) or the
// floating IP's server (from out) and reads a byte.
func (p *HAPair) Once(floating bool) error {
	c := []string{p.In, "10.1.1.6", "203.0.113.100", "5001"}
	if floating {
		c = []string{p.Out, "203.0.113.100", "203.0.113.50", "5002"}
	}
	out, err := p.ExecTimeout(c[0], 10*time.Second, "/usr/bin/python3", p.Stream, "once", c[1], c[2], c[3])
	if err != nil || !strings.Contains(out, "ok") {
		return fmt.Errorf("new connection %s -> %s:%s: %v %s", c[1], c[2], c[3], err, out)
	}
	return nil
}

// Stop stops the clients and returns their reports (SNAT, floating).
func (s *Streams) Stop() (snat, floating StreamResult, err error) {
	for _, c := range []*exec.Cmd{s.snatCli, s.floatCli} {
		c.Process.Signal(syscall.SIGTERM)
		c.Wait()
	}
	for i, f := range []string{s.snatOut, s.floatOut} {
		b, rerr := os.ReadFile(f)
		if rerr == nil {
			r := &snat
			if i == 1 {
				r = &floating
			}
			rerr = json.Unmarshal(b, r)
		}
		if rerr != nil && err == nil {
			err = fmt.Errorf("stream client %s: %v", f, rerr)
		}
	}
	return snat, floating, err
}

// Capture records the headers of everything crossing the bridges' ports
// (r1in, r2in, r1out, r2out, hin, hout) in pcap files in the lab's
// directory, until Close (keep them with VRLAB_KEEP=1).
func (p *HAPair) Capture() error {
	for _, dev := range []string{"r1in", "r2in", "r1out", "r2out", "hin", "hout"} {
		if _, err := p.Start(p.SW, "tcpdump-"+dev+".log", "tcpdump", "-i", dev, "-s", "128", "-U", "-n",
			"-w", filepath.Join(p.Dir, dev+".pcap")); err != nil {
			return err
		}
	}
	return nil
}

// Diagnose gathers what tells where a stream's packets went: each running
// router's non-zero counters, sessions and show ha, the hosts' neighbour
// tables, and the keepalived and router logs.
func (p *HAPair) Diagnose() string {
	var b strings.Builder
	for _, n := range p.R {
		if n.Router == nil {
			continue
		}
		fmt.Fprintf(&b, "==== %s show stats (non-zero)\n", n.Name)
		out, err := n.Router.Console("show", "stats")
		if err != nil {
			fmt.Fprintf(&b, "%v\n", err)
		}
		for _, l := range strings.Split(out, "\n") {
			if v, ok := firstNumber(l); !ok || v != "0" {
				b.WriteString(l + "\n") // headers, and the counters that are not zero
			}
		}
		for _, c := range [][]string{{"show", "conntrack"}, {"show", "ha"}, {"show", "arp"}} {
			out, _ := n.Router.Console(c...)
			fmt.Fprintf(&b, "==== %s %s\n%s", n.Name, strings.Join(c, " "), out)
		}
	}
	for _, ns := range []string{p.In, p.Out} {
		out, _ := p.Exec(ns, "ip", "neigh")
		fmt.Fprintf(&b, "==== %s ip neigh\n%s", ns, out)
	}
	for _, n := range p.R {
		log, _ := os.ReadFile(filepath.Join(p.Dir, n.Name+"-keepalived.log"))
		fmt.Fprintf(&b, "==== %s keepalived log\n%s", n.Name, log)
		if n.Router != nil {
			fmt.Fprintf(&b, "==== %s log\n%s", n.Name, n.Router.Log())
		}
	}
	fmt.Fprintf(&b, "==== captures in %s\n", p.Dir)
	return b.String()
}

// firstNumber is the first all-digits field of a show stats line (its
// value: the tables put it in different columns).
func firstNumber(l string) (string, bool) {
	for _, f := range strings.Fields(l) {
		if strings.Trim(f, "0123456789") == "" {
			return f, true
		}
	}
	return "", false
}

// MAC is the MAC address of router i's device dev (eth-in or eth-out).
func (p *HAPair) MAC(i int, dev string) (string, error) {
	out, err := p.Exec(p.R[i].NS, "cat", "/sys/class/net/"+dev+"/address")
	return strings.TrimSpace(out), err
}

// NeighMAC is the MAC address host namespace ns has for ip ("" when it
// has no entry with one).
func (p *HAPair) NeighMAC(ns, ip string) (string, error) {
	out, err := p.Exec(ns, "ip", "neigh", "show", ip)
	if err != nil {
		return "", err
	}
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "lladdr" {
			return f[i+1], nil
		}
	}
	return "", nil
}
