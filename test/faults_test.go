package test

// Reliability under faults of the system around the router (issue 14): a
// port's device deleted and recreated, a TAP whose VM side goes away, a
// SIGKILL and restart, a reload during a flood, a full disk for capture,
// a flood of control connections. Each measures the flows that must not
// notice and prints RESULT lines for the README's table.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"vrouter/test/lab"
)

// waitPing pings dst from ns until a reply comes or d passes; it returns
// how long that took.
func waitPing(t *testing.T, l *lab.Lab, ns, dst string, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		if _, err := l.ExecTimeout(ns, 3*time.Second, "ping", "-c", "1", "-W", "0.2", dst); err == nil {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no ping reply from %s in %s within %v", dst, ns, d)
	return 0
}

// waitLog waits until the router's log has want.
func waitLog(t *testing.T, r *lab.Router, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(r.Log(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("router log has no %q:\n%s", want, r.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// portView is one port of show interfaces -j, as the tests read it.
type portView struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	RxPackets uint64 `json:"rx_packets"`
}

// showPort is port name in show interfaces -j.
func showPort(t *testing.T, r *lab.Router, name string) portView {
	t.Helper()
	out, err := r.Console("-j", "show", "interfaces")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Ports []portView `json:"ports"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	for _, p := range info.Ports {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no port %s in show interfaces:\n%s", name, out)
	return portView{}
}

// portStateOf is port name's state in show interfaces -j.
func portStateOf(t *testing.T, r *lab.Router, name string) string { return showPort(t, r, name).State }

// waitPortState waits until show interfaces says port name is in one of
// states (the kernel updates a device's operational state shortly after
// its carrier changes).
func waitPortState(t *testing.T, r *lab.Router, name string, d time.Duration, states ...string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st := portStateOf(t, r, name)
		if slices.Contains(states, st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %s: state %q, want one of %v", name, st, states)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A port's device is deleted while the router runs, then created again:
// the router logs it, the other ports forward on, and the port comes back
// by itself (port-reopened) without a reload. show interfaces says the
// port is lost meanwhile, and up again after.
func TestFaultPortDeviceRecreated(t *testing.T) {
	l := standard(t, "")
	w := startWatch(t, l.Lab, "device-recreated", l.VM, "198.51.100.10", "", "", "", 6*time.Second)
	time.Sleep(500 * time.Millisecond)
	if st := portStateOf(t, l.Router, "p1"); st != "up" {
		t.Errorf("p1 before: state %q, want up", st)
	}
	run(t, l, l.R, "ip", "link", "del", "r-h1") // its peer, h1's eth0, goes too
	waitLog(t, l.Router, "port device is gone", 3*time.Second)
	if st := portStateOf(t, l.Router, "p1"); st != "lost" {
		t.Errorf("p1 with its device gone: state %q, want lost", st)
	}
	if st := portStateOf(t, l.Router, "p2"); st != "up" {
		t.Errorf("p2 meanwhile: state %q, want up", st)
	}
	time.Sleep(time.Second)
	if err := l.Veth(l.H1, "eth0", l.R, "r-h1"); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	run(t, l, l.H1, "ip", "addr", "add", "192.0.2.10/24", "dev", "eth0")
	run(t, l, l.H1, "ip", "route", "add", "default", "via", "192.0.2.1")
	waitPing(t, l.Lab, l.H1, "198.51.100.10", 10*time.Second)
	took := time.Since(back)
	waitPortState(t, l.Router, "p1", 2*time.Second, "up")
	w.wait(t, defaultBounds)
	st := mustStats(t, l.Router)
	t.Logf("RESULT device-recreated: r-h1 deleted for 1 s and created again: forwarding through it again %v after the device came back; port-device-lost %d, port-reopened %d",
		took.Round(time.Millisecond), st.Counters["port-device-lost"], st.Counters["port-reopened"])
	if st.Counters["port-device-lost"] != 1 || st.Counters["port-reopened"] != 1 {
		t.Errorf("port-device-lost %d, port-reopened %d, want 1 and 1", st.Counters["port-device-lost"], st.Counters["port-reopened"])
	}
	contains(t, l.Router.Log(), "port reopened")
	// The reopened port carries traffic both ways at full speed.
	if v := iperf(t, l); v < 100 {
		t.Errorf("iperf through the reopened port: %.0f Mbit/s", v)
	}
}

// The TAP's VM side goes away (the link is set down, as when the VM's NIC
// is) and comes back: the router counts what it could not deliver, forwards
// between the other ports throughout and delivers to the VM again.
func TestFaultTAPReaderGone(t *testing.T) {
	l := standard(t, "")
	w := startWatch(t, l.Lab, "tap-reader-gone", l.H1, "198.51.100.10", l.H1, l.H2, "198.51.100.10", 6*time.Second)
	ping(t, l.Lab, l.VM, "198.51.100.10")
	time.Sleep(500 * time.Millisecond)
	run(t, l, l.VM, "ip", "link", "set", l.TapDev, "down")
	// Traffic for the VM meanwhile: refused by the TAP, counted.
	l.Exec(l.H2, "ping", "-c", "5", "-i", "0.1", "-W", "0.3", "10.10.0.10")
	// The router looks the TAP's device up in the VM's namespace.
	if st := portStateOf(t, l.Router, "vm"); st != "admin-down" {
		t.Errorf("vm with the TAP down in the VM: state %q, want admin-down", st)
	}
	time.Sleep(1500 * time.Millisecond)
	run(t, l, l.VM, "ip", "link", "set", l.TapDev, "up")
	back := time.Now()
	run(t, l, l.VM, "ip", "route", "replace", "default", "via", "10.10.0.1")
	waitPing(t, l.Lab, l.VM, "198.51.100.10", 5*time.Second)
	took := time.Since(back)
	// The kernel calls a TAP that always had carrier "unknown".
	waitPortState(t, l.Router, "vm", 2*time.Second, "up", "unknown")
	w.wait(t, defaultBounds)
	var txErr uint64
	out, err := l.Router.Console("-j", "show", "interfaces")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`"name":\s*"vm"[^}]*"tx_errors":\s*(\d+)`).FindStringSubmatch(out); m != nil {
		txErr, _ = strconv.ParseUint(m[1], 10, 64)
	}
	t.Logf("RESULT tap-reader-gone: the VM's TAP down 2 s: VM reachable again %v after it came back; frames the TAP refused meanwhile (tx errors) %d",
		took.Round(time.Millisecond), txErr)
}

// SIGKILL, then a restart on the same configuration: the stale socket file
// does not stop it, the TAP that died with the process is made again, and
// it forwards within 1 s of its start (measured from the exec to the
// first reply of a ping that runs every 10 ms throughout).
func TestFaultSIGKILLRestart(t *testing.T) {
	l := standard(t, "")
	cfg, err := os.ReadFile(l.Router.Config)
	if err != nil {
		t.Fatal(err)
	}
	ping(t, l.Lab, l.H1, "198.51.100.10")
	pingc := make(chan string, 1)
	go func() {
		out, _ := l.ExecTimeout(l.H1, 30*time.Second, "ping", "-D", "-i", "0.01", "-W", "0.1", "-w", "6", "198.51.100.10")
		pingc <- out
	}()
	time.Sleep(500 * time.Millisecond)
	if err := l.Router.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	time.Sleep(time.Second)
	if _, err := os.Stat(l.Router.Socket); err != nil {
		t.Fatalf("expected the killed router's socket file to be left: %v", err)
	}
	if out, _ := l.Exec(l.VM, "ip", "link", "show", l.TapDev); strings.Contains(out, l.TapDev+":") {
		t.Errorf("the TAP outlived the killed router:\n%s", out)
	}
	start := time.Now()
	r2, err := l.StartRouter(l.R, "lab", string(cfg))
	if err != nil {
		t.Fatal(err)
	}
	consoleUp := time.Since(start)
	out := <-pingc
	// The first reply after the start.
	var first time.Duration = -1
	for _, line := range strings.Split(out, "\n") {
		m := pingReply.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ts, _ := strconv.ParseFloat(m[1], 64)
		at := time.Unix(0, int64(ts*1e9))
		if at.After(start) {
			first = at.Sub(start)
			break
		}
	}
	t.Logf("RESULT sigkill-restart: killed, restarted %v later: console up %v after the exec, first forwarded ping reply %v after the exec (outage %v)",
		start.Sub(killed).Round(time.Millisecond), consoleUp.Round(time.Millisecond), first.Round(time.Millisecond), (start.Sub(killed) + first).Round(time.Millisecond))
	if first < 0 || first > time.Second {
		t.Errorf("forwarding again %v after the start, want within 1 s", first)
	}
	// The TAP is made again (in the router's namespace: the VM side moves it).
	run(t, l, l.R, "ip", "link", "set", l.TapDev, "netns", l.VM)
	for _, c := range []string{"ip link set " + l.TapDev + " up", "ip addr add 10.10.0.10/24 dev " + l.TapDev, "ip route add default via 10.10.0.1"} {
		run(t, l, l.VM, strings.Fields(c)...)
	}
	ping(t, l.Lab, l.VM, "198.51.100.10")
	if _, err := r2.Console("show", "interfaces"); err != nil {
		t.Fatal(err)
	}
}

// Reloads while a flood of new UDP flows runs through SNAT: each reload
// (alternately adding and removing a route) succeeds, the established
// stream and ping go on.
func TestFaultReloadDuringFlood(t *testing.T) {
	n := newRLNAT(t, lab.NATConfig)
	base, err := os.ReadFile(n.Router.Config)
	if err != nil {
		t.Fatal(err)
	}
	rmac, smac := macOf(t, n.Lab, n.R, "r-in2"), macOf(t, n.Lab, n.In2, "eth0")
	w := startWatch(t, n.Lab, "reload-during-flood", n.In1, "198.51.100.10", n.In2, n.Srv, "198.51.100.10", 8*time.Second)
	time.Sleep(time.Second)
	// A router built with -race (make race-e2e) is ten times slower: the
	// flood is too, and only the reloads' success is asserted.
	pps, bounds := 10000, defaultBounds
	if os.Getenv("VROUTER_RACE") != "" {
		pps, bounds = 1000, flowBounds{MaxLoss: 20, MaxGap: 5 * time.Second, MinStreamM: 0}
	}
	fb := newFrameBuf()
	var wg sync.WaitGroup
	wg.Add(1)
	var sent int
	go func() {
		defer wg.Done()
		sent = flood(t, n.In2, "eth0", pps*6, pps, 6*time.Second, func(i int, rng *rand.Rand) []byte {
			ip := ipv4(ip4(10, 1, uint16(0x8000|rng.IntN(0x8000))), ip4(198, 51, uint16(100<<8|128+rng.IntN(128))), layers.IPProtocolUDP, 64)
			udp := &layers.UDP{SrcPort: layers.UDPPort(1024 + rng.IntN(60000)), DstPort: 53}
			udp.SetNetworkLayerForChecksum(ip)
			return fb.make(t, &layers.Ethernet{SrcMAC: smac, DstMAC: rmac, EthernetType: layers.EthernetTypeIPv4}, ip, udp)
		})
	}()
	reloads, longest := 0, time.Duration(0)
	for i := 0; i < 10; i++ {
		cfg := string(base)
		if i%2 == 0 {
			cfg += fmt.Sprintf("\n[[route]]\nprefix = \"192.168.%d.0/24\"\nvia    = \"203.0.113.254\"\n", i)
		}
		if err := os.WriteFile(n.Router.Config, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		out, err := n.Router.Console("reload")
		if err != nil || !strings.Contains(out, "reloaded") {
			t.Errorf("reload %d during the flood: %v %s", i, err, out)
		}
		longest = max(longest, time.Since(t0))
		reloads++
		time.Sleep(400 * time.Millisecond)
	}
	wg.Wait()
	w.wait(t, bounds)
	st := mustStats(t, n.Router)
	t.Logf("RESULT reload-during-flood: %d reloads (longest %v, console included) during %d new UDP flows at %d pps; sessions created %d, table now %d",
		reloads, longest.Round(time.Millisecond), sent, pps, st.stage("nat", "nat-sessions-created"), st.stage("nat", "nat-sessions"))
}

// A capture to a full disk: on a disk already full the command fails with
// the reason; on a small tmpfs (mounted in the router's own mount
// namespace, nowhere else) that fills during the capture, the capture ends
// with an error in the log; forwarding never notices.
func TestFaultCaptureDiskFull(t *testing.T) {
	l := standard(t, "")
	out, err := l.Router.Console("capture", "p1", "/dev/full", "100")
	if err == nil || !strings.Contains(out+err.Error(), "no space left") {
		t.Errorf("capture to /dev/full: %v\n%s", err, out)
	}
	dir := filepath.Join(l.Dir, "small")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(l.Router.Cmd.Process.Pid)
	if o, err := l.ExecTimeout(l.R, 5*time.Second, "nsenter", "-t", pid, "-m", "mount", "-t", "tmpfs", "-o", "size=64k", "rlcap", dir); err != nil {
		t.Fatalf("tmpfs in the router's mount namespace: %v %s", err, o)
	}
	w := startWatch(t, l.Lab, "capture-disk-full", l.H1, "198.51.100.10", l.H1, l.H2, "198.51.100.10", 5*time.Second)
	time.Sleep(500 * time.Millisecond)
	if out, err := l.Router.Console("capture", "p1", filepath.Join(dir, "p1.pcap"), "1000000"); err != nil {
		t.Fatalf("capture: %v %s", err, out)
	}
	waitLog(t, l.Router, "capture stopped", 4*time.Second)
	w.wait(t, defaultBounds)
	line := ""
	for _, s := range strings.Split(l.Router.Log(), "\n") {
		if strings.Contains(s, "capture stopped") {
			line = s
		}
	}
	contains(t, line, "no space left on device")
	t.Logf("RESULT capture-disk-full: /dev/full refused at the command; 64 KiB tmpfs filled during the capture: %s", strings.TrimSpace(line[strings.Index(line, "msg="):]))
	if _, err := l.Router.Console("capture", "p1", "stop"); err == nil {
		t.Error("the failed capture still runs")
	}
}

// A flood of connections to the control socket: at most 64 are served,
// the rest are told the socket is busy; the data path does not notice and
// the console answers again once the flood ends.
func TestFaultControlFlood(t *testing.T) {
	l := standard(t, "")
	w := startWatch(t, l.Lab, "control-flood", l.H1, "198.51.100.10", l.H1, l.H2, "198.51.100.10", 6*time.Second)
	time.Sleep(500 * time.Millisecond)
	g0 := goroutines(t, l)
	var conns []net.Conn
	busy, tried := 0, 0
	start := time.Now()
	for time.Since(start) < 3*time.Second && tried < 2000 {
		c, err := net.Dial("unix", l.Router.Socket)
		tried++
		if err != nil {
			continue
		}
		// Every connection asks for show stats once and then stays open.
		fmt.Fprintln(c, `{"args":["show","stats"],"json":true}`)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 256)
		if n, _ := c.Read(buf); strings.Contains(string(buf[:n]), "busy") {
			busy++
			c.Close()
			continue
		}
		conns = append(conns, c)
	}
	g1 := goroutines(t, l)
	w.wait(t, defaultBounds)
	for _, c := range conns {
		c.Close()
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := l.Router.Console("show", "stats"); err != nil {
		t.Errorf("console after the flood: %v", err)
	}
	t.Logf("RESULT control-flood: %d connections in %v: %d served and held open, %d told busy; router goroutines %d before, %d during",
		tried, time.Since(start).Round(time.Millisecond), len(conns), busy, g0, g1)
	if len(conns) > 64 || busy == 0 {
		t.Errorf("served %d (max 64), busy %d", len(conns), busy)
	}
	if g1 > g0+64+8 {
		t.Errorf("goroutines %d -> %d: not bounded by the connection limit", g0, g1)
	}
}

// goroutines reads vrouter_goroutines from the standard lab's /metrics.
func goroutines(t *testing.T, l *lab.Topo) int { return metric(t, l, "vrouter_goroutines") }

// metric reads an unlabelled integer metric from the standard lab's /metrics.
func metric(t *testing.T, l *lab.Topo, name string) int {
	t.Helper()
	out, err := l.ExecTimeout(l.R, 5*time.Second, "curl", "-s", "-m", "3", "http://127.0.0.1:9469/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %s in /metrics", name)
	}
	v, _ := strconv.Atoi(m[1])
	return v
}
