package test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"vrouter/test/lab"
)

// The redundant pair: two routers on a shared inside segment (hosts
// 10.1.1.5, a floating IP's VM, and 10.1.1.6, behind SNAT) and a shared
// outside segment (a server and client at 203.0.113.100). keepalived runs
// VRRPv3 with 0.1 s adverts on each router's inside host interface, holds
// the inside gateway VIP 10.1.1.1, and tells its router its state through
// the console. The routers sync sessions over the inside segment.
//
//	in (10.1.1.5, .6) ── br-in ──┬── r1 (10.1.1.2 | 203.0.113.2) ──┬── br-out ── out (203.0.113.100)
//	                             └── r2 (10.1.1.3 | 203.0.113.3) ──┘
//	SNAT 10.1.1.0/24 -> 203.0.113.10; floating 203.0.113.50 -> 10.1.1.5
const haKey = "4e6f74206120736563726574206b6579206275742061207465737420666978"

func haRouterConfig(name, inAddr, outAddr, peer string) string {
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
`, name, inAddr, outAddr, inAddr, peer, haKey)
}

// haStream is the stream helper: a server that sends 1 KiB every 5 ms to
// every client (and logs each client's address), a client that reads until
// SIGTERM and reports the longest gap between two reads, and a one-shot
// client for new connections.
const haStream = `
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

type haNode struct {
	ns     string
	name   string
	cfg    string
	router *lab.Router
	ka     *exec.Cmd
	kaDir  string
}

type haJSONView struct {
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

func showHA(t *testing.T, n *haNode) haJSONView {
	t.Helper()
	out, err := n.router.Console("-j", "show", "ha")
	if err != nil {
		t.Fatalf("%s show ha: %v: %s", n.name, err, out)
	}
	var v haJSONView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%s show ha: %v\n%s", n.name, err, out)
	}
	return v
}

// TestHAFailover is the failover the HA issue asks for: exactly one master;
// a TCP stream through SNAT and one to a floating IP; SIGKILL of the
// master's vrouter and keepalived; the backup is master in under a second,
// neither stream is reset nor stalls for a second, the SNAT mapping is the
// same, new connections work and the new master reports the sessions it
// received. Then the old master comes back as backup, resyncs, and takes
// over again after keepalived's preempt_delay (a planned switch-back) with
// the streams still alive.
func TestHAFailover(t *testing.T) {
	needRoot(t)
	for _, tool := range []string{"keepalived", "/usr/bin/python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s missing (make deps)", tool)
		}
	}
	l, err := lab.New("ha")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	bin, _ := lab.Binary()
	mk := func(name string) string {
		ns, err := l.NS(name)
		if err != nil {
			t.Fatal(err)
		}
		return ns
	}
	sw, hin, hout := mk("sw"), mk("in"), mk("out")
	r1 := &haNode{ns: mk("r1"), name: "r1"}
	r2 := &haNode{ns: mk("r2"), name: "r2"}
	must := func(ns string, args ...string) {
		t.Helper()
		if out, err := l.Exec(ns, args...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	for _, br := range []string{"brin", "brout"} {
		must(sw, "ip", "link", "add", br, "type", "bridge", "mcast_snooping", "0")
		must(sw, "ip", "link", "set", br, "up")
	}
	link := func(ns, dev, swDev, br string) {
		if err := l.Veth(ns, dev, sw, swDev); err != nil {
			t.Fatal(err)
		}
		must(sw, "ip", "link", "set", swDev, "master", br)
	}
	link(r1.ns, "eth-in", "r1in", "brin")
	link(r1.ns, "eth-out", "r1out", "brout")
	link(r2.ns, "eth-in", "r2in", "brin")
	link(r2.ns, "eth-out", "r2out", "brout")
	link(hin, "eth0", "hin", "brin")
	link(hout, "eth0", "hout", "brout")
	must(hin, "ip", "addr", "add", "10.1.1.5/24", "dev", "eth0")
	must(hin, "ip", "addr", "add", "10.1.1.6/24", "dev", "eth0")
	must(hin, "ip", "route", "add", "default", "via", "10.1.1.1")
	must(hout, "ip", "addr", "add", "203.0.113.100/24", "dev", "eth0")

	r1.cfg = haRouterConfig("r1", "10.1.1.2", "203.0.113.2", "10.1.1.3")
	r2.cfg = haRouterConfig("r2", "10.1.1.3", "203.0.113.3", "10.1.1.2")
	startRouter := func(n *haNode) {
		t.Helper()
		r, err := l.StartRouter(n.ns, n.name, n.cfg)
		if err != nil {
			t.Fatal(err)
		}
		n.router = r
	}
	startKeepalived := func(n *haNode, prio int) {
		t.Helper()
		n.kaDir = filepath.Join(l.Dir, n.name+"-ka")
		os.MkdirAll(n.kaDir, 0o755)
		notify := filepath.Join(n.kaDir, "notify.sh")
		os.WriteFile(notify, []byte(fmt.Sprintf(`#!/bin/sh
# keepalived: notify TYPE NAME STATE PRIORITY
case "$3" in
MASTER) s=master ;;
BACKUP) s=backup ;;
*) s=fault ;;
esac
exec %s console -s %s ha state $s
`, bin, n.router.Socket)), 0o755)
		conf := filepath.Join(n.kaDir, "keepalived.conf")
		os.WriteFile(conf, []byte(fmt.Sprintf(`global_defs {
	router_id %s
	vrrp_version 3
	script_user root
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
	notify %s
}
`, n.name, prio, notify)), 0o644)
		ka, err := l.Start(n.ns, n.name+"-keepalived.log", "keepalived", "-n", "-l", "-D", "-f", conf,
			"-p", filepath.Join(n.kaDir, "keepalived.pid"), "-r", filepath.Join(n.kaDir, "vrrp.pid"))
		if err != nil {
			t.Fatal(err)
		}
		n.ka = ka
	}
	waitState := func(n *haNode, want string, d time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			if showHA(t, n).State == want {
				return time.Since(start)
			}
			if time.Since(start) > d {
				b, _ := os.ReadFile(filepath.Join(l.Dir, n.name+"-keepalived.log"))
				t.Fatalf("%s not %s after %v\nkeepalived:\n%s\nrouter:\n%s", n.name, want, d, b, n.router.Log())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	startRouter(r1)
	startRouter(r2)
	startKeepalived(r1, 150)
	waitState(r1, "master", 10*time.Second)
	startKeepalived(r2, 100)
	time.Sleep(1 * time.Second)
	if s1, s2 := showHA(t, r1), showHA(t, r2); s1.State != "master" || s2.State != "backup" || !s1.Sync.PeerUp || !s2.Sync.PeerUp {
		t.Fatalf("want exactly one master with its peer up: r1 %+v, r2 %+v", s1, s2)
	}

	// The streams: out's server through SNAT, and out's client to the VM's floating IP.
	script := filepath.Join(l.Dir, "stream.py")
	os.WriteFile(script, []byte(haStream), 0o644)
	py := "/usr/bin/python3"
	snatLog, floatLog := filepath.Join(l.Dir, "snat-server.txt"), filepath.Join(l.Dir, "float-server.txt")
	for _, s := range [][]string{{hout, "203.0.113.100", "5001", snatLog}, {hin, "10.1.1.5", "5002", floatLog}} {
		if _, err := l.Start(s[0], "server-"+s[2]+".log", py, script, "server", s[1], s[2], s[3]); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	snatOut, floatOut := filepath.Join(l.Dir, "snat-client.json"), filepath.Join(l.Dir, "float-client.json")
	snatCli, err := l.Start(hin, "snat-client.log", py, script, "client", "10.1.1.6", "203.0.113.100", "5001", snatOut)
	if err != nil {
		t.Fatal(err)
	}
	floatCli, err := l.Start(hout, "float-client.log", py, script, "client", "203.0.113.100", "203.0.113.50", "5002", floatOut)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	// The SNAT mapping the server sees, and the backup has the session.
	peerBefore := strings.TrimSpace(readFile(t, snatLog))
	if !strings.HasPrefix(peerBefore, "203.0.113.10:") {
		t.Fatalf("server sees %q, want the SNAT address", peerBefore)
	}
	if out, _ := r2.router.Console("show", "conntrack"); !strings.Contains(out, peerBefore) {
		t.Fatalf("backup has no synced session for %s:\n%s", peerBefore, out)
	}

	// SIGKILL the master's vrouter and keepalived (parent and VRRP child).
	killed := time.Now()
	r1.router.Cmd.Process.Signal(syscall.SIGKILL)
	for _, f := range []string{"vrrp.pid", "keepalived.pid"} {
		if b, err := os.ReadFile(filepath.Join(r1.kaDir, f)); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	r1.ka.Process.Signal(syscall.SIGKILL)
	r1.router.Cmd.Wait()
	r1.ka.Wait()
	waitState(r2, "master", 5*time.Second)
	takeover := time.Since(killed)
	t.Logf("takeover: r2 is master %v after SIGKILL of r1", takeover.Round(time.Millisecond))
	if takeover > time.Second {
		t.Errorf("takeover took %v, want < 1s", takeover)
	}
	time.Sleep(2 * time.Second)

	// New connections through the new master.
	for _, c := range [][]string{{hin, "10.1.1.6", "203.0.113.100", "5001"}, {hout, "203.0.113.100", "203.0.113.50", "5002"}} {
		if out, err := l.ExecTimeout(c[0], 10*time.Second, py, script, "once", c[1], c[2], c[3]); err != nil || !strings.Contains(out, "ok") {
			t.Fatalf("new connection %s -> %s:%s after failover: %v %s", c[1], c[2], c[3], err, out)
		}
	}
	if out, _ := r2.router.Console("show", "conntrack"); !strings.Contains(out, peerBefore) {
		t.Fatalf("new master has no session with the mapping %s:\n%s", peerBefore, out)
	}
	s2 := showHA(t, r2)
	if s2.Sync == nil || s2.Sync.SessionsReceived == 0 {
		t.Fatalf("new master received no sessions: %+v", s2)
	}
	t.Logf("new master: %d sessions, received %d session records", s2.Sessions, s2.Sync.SessionsReceived)

	// The old master comes back as backup and resyncs; keepalived's
	// preempt_delay (5 s) then hands mastership back to it.
	back := time.Now()
	startRouter(r1)
	startKeepalived(r1, 150)
	var s1 haJSONView
	converged := false
	for time.Since(back) < 4*time.Second {
		s1, s2 = showHA(t, r1), showHA(t, r2)
		if s1.State == "backup" && s1.Sessions > 0 && s1.Sessions == s2.Sessions {
			converged = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !converged {
		t.Fatalf("returning r1 did not converge: r1 %+v, r2 %+v", s1, s2)
	}
	t.Logf("r1 back as backup: %d sessions (r2 %d) %v after its restart; resyncs requested %d",
		s1.Sessions, s2.Sessions, time.Since(back).Round(time.Millisecond), s1.Sync.ResyncsRequested)
	if s1.Sync.ResyncsRequested == 0 {
		t.Error("r1 asked for no resync")
	}
	waitState(r1, "master", 10*time.Second)
	waitState(r2, "backup", 2*time.Second)
	if out, _ := r1.router.Console("show", "conntrack"); !strings.Contains(out, peerBefore) {
		t.Fatalf("r1 has no session with the mapping %s after the switch-back:\n%s", peerBefore, out)
	}
	t.Logf("planned switch-back: r1 master again %v after its restart", (time.Since(back)).Round(time.Millisecond))
	time.Sleep(2 * time.Second)

	for _, c := range []*exec.Cmd{snatCli, floatCli} {
		c.Process.Signal(syscall.SIGTERM)
		c.Wait()
	}
	for _, s := range []struct{ name, file string }{{"SNAT", snatOut}, {"floating IP", floatOut}} {
		var res struct {
			Local  string
			Bytes  int64
			MaxGap float64
			At     float64
			Error  string
			Gaps   [][2]float64
		}
		if err := json.Unmarshal([]byte(readFile(t, s.file)), &res); err != nil {
			t.Fatalf("%s client: %v", s.name, err)
		}
		t.Logf("%s stream: %d bytes, longest gap %.3f s (at %.1f s), error %q; gaps over 0.1 s [at, gap]: %v",
			s.name, res.Bytes, res.MaxGap, res.At, res.Error, res.Gaps)
		if res.Error != "" {
			t.Errorf("%s stream broken: %s", s.name, res.Error)
		}
		if res.MaxGap >= 1 {
			t.Errorf("%s stream stalled %.3f s", s.name, res.MaxGap)
		}
	}
	if peers := lab.Lines(readFile(t, snatLog)); peers[0] != peerBefore {
		t.Errorf("server saw %v", peers)
	}
	if s := showHA(t, r2); s.Sync.SessionsLost != 0 {
		t.Logf("r2 counted %d session records lost (sent to the dead r1)", s.Sync.SessionsLost)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
