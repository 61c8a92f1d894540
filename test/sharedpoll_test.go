package test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"vrouter/test/lab"
)

// TestSharedPoll runs the standard lab with [router] shared_poll on, for
// each driver: both veth ports are served by the one shared worker (the
// TAP keeps a worker of its own), pings pass both ways and to the router,
// a TCP transfer passes, and a reload that reopens a port (its MTU
// changed) hands the new port to the shared worker, which goes on.
func TestSharedPoll(t *testing.T) {
	forDrivers(t, func(t *testing.T, driver string) {
		needRoot(t)
		l, err := lab.StandardEdit("sp", driver, func(cfg, _ string) string {
			return strings.Replace(cfg, "[router]\n", "[router]\nshared_poll = true\n", 1)
		})
		if err != nil {
			t.Fatal(err)
		}
		cleanupLab(t, l.Router, l.Close)
		log := l.Router.Log()
		for _, p := range []string{"p1", "p2"} {
			if servedShared(log, p) != 1 {
				t.Fatalf("%s not on the shared worker:\n%s", p, log)
			}
		}
		if servedShared(log, "vm") != 0 {
			t.Fatalf("the TAP port went to the shared worker:\n%s", log)
		}
		contains(t, run(t, l, l.H1, "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.51.100.10"), " 0% packet loss")
		contains(t, run(t, l, l.H2, "ping", "-c", "3", "-i", "0.2", "-W", "2", "192.0.2.10"), " 0% packet loss")
		contains(t, run(t, l, l.H1, "ping", "-c", "2", "-i", "0.2", "-W", "2", "192.0.2.1"), " 0% packet loss")
		contains(t, run(t, l, l.VM, "ping", "-c", "2", "-i", "0.2", "-W", "2", "198.51.100.10"), " 0% packet loss")
		rate := iperf(t, l)
		t.Logf("iperf3 TCP h1->h2 through vrouter (%s ports, shared poll): %.0f Mbit/s", driver, rate)
		if rate < 50 {
			t.Fatalf("TCP at %.1f Mbit/s", rate)
		}

		cfg, err := os.ReadFile(l.Router.Config)
		if err != nil {
			t.Fatal(err)
		}
		writeCfg(t, l.Router.Config, strings.Replace(string(cfg), "mtu    = 1400", "mtu    = 1380", 1))
		if out, err := l.Router.Console("reload"); err != nil {
			t.Fatalf("reload: %v %s", err, out)
		}
		if n := servedShared(l.Router.Log(), "p2"); n != 2 {
			t.Fatalf("p2 handed to the shared worker %d times, want 2 (start, reopen):\n%s", n, l.Router.Log())
		}
		contains(t, run(t, l, l.H1, "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.51.100.10"), " 0% packet loss")
		contains(t, run(t, l, l.H2, "ping", "-c", "2", "-i", "0.2", "-W", "2", "198.51.100.1"), " 0% packet loss")

		// p1's device goes away: the shared worker does not spin on the
		// dead socket, serves the other ports meanwhile, and takes the
		// port the supervisor reopens when the device is back.
		run(t, l, l.R, "ip", "link", "del", "r-h1")
		waitLog(t, l.Router, "port device is gone", 3*time.Second)
		time.Sleep(300 * time.Millisecond)
		pid := l.Router.Cmd.Process.Pid
		c0 := procCPUTicks(t, pid)
		time.Sleep(time.Second)
		used := procCPUTicks(t, pid) - c0 // clock ticks of 10 ms
		t.Logf("vrouter used %d0 ms of CPU in 1 s with p1's device gone", used)
		if used > 30 {
			t.Errorf("vrouter used %d0 ms of CPU in 1 s with p1's device gone, want little", used)
		}
		contains(t, run(t, l, l.VM, "ping", "-c", "2", "-i", "0.2", "-W", "2", "198.51.100.10"), " 0% packet loss")
		if err := l.Veth(l.H1, "eth0", l.R, "r-h1"); err != nil {
			t.Fatal(err)
		}
		run(t, l, l.H1, "ip", "addr", "add", "192.0.2.10/24", "dev", "eth0")
		run(t, l, l.H1, "ip", "route", "add", "default", "via", "192.0.2.1")
		waitPing(t, l.Lab, l.H1, "198.51.100.10", 10*time.Second)
		if n := servedShared(l.Router.Log(), "p1"); n != 2 {
			t.Errorf("p1 handed to the shared worker %d times, want 2 (start, reopen)", n)
		}
	})
}

// procCPUTicks is the CPU time process pid has used (user + system), in
// clock ticks (/proc/PID/stat).
func procCPUTicks(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return u + s
}

// servedShared counts the log's lines saying port went to the shared worker.
func servedShared(log, port string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `msg="port served by the shared worker"`) && strings.Contains(line, " port="+port+" ") {
			n++
		}
	}
	return n
}
