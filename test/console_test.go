package test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vrouter/test/lab"
)

// tmuxConsole drives `vrouter console` in a private tmux server.
type tmuxConsole struct {
	t    *testing.T
	sock string
}

func (c *tmuxConsole) tmux(args ...string) string {
	c.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", c.sock}, args...)...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("tmux %v: %v: %s", args, err, out)
	}
	return string(out)
}

func (c *tmuxConsole) keys(keys ...string) {
	c.tmux(append([]string{"send-keys", "-t", "con"}, keys...)...)
}

func (c *tmuxConsole) screen() string { return c.tmux("capture-pane", "-p", "-t", "con", "-S", "-200") }

// wait waits until the screen holds want (after at least `after` occurrences).
func (c *tmuxConsole) wait(want string, count int) string {
	c.t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	var s string
	for time.Now().Before(deadline) {
		s = c.screen()
		if strings.Count(s, want) >= count {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("screen never showed %q (x%d):\n%s", want, count, s)
	return ""
}

func TestInteractiveConsole(t *testing.T) {
	l := standard(t, "")
	bin, _ := lab.Binary()
	home := t.TempDir()
	c := &tmuxConsole{t: t, sock: l.Prefix + "-tmux"}
	cmd := exec.Command("tmux", "-L", c.sock, "new-session", "-d", "-s", "con", "-x", "200", "-y", "60",
		"env HOME="+home+" "+bin+" console -s "+l.Router.Socket)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("tmux", "-L", c.sock, "kill-server").Run() })
	c.wait("lab>", 1)

	// help
	c.keys("help", "Enter")
	c.wait("show interfaces", 1)
	// Tab completion of commands: "sh<Tab>int<Tab>" -> "show interfaces "
	c.keys("sh", "Tab", "int", "Tab")
	c.wait("lab> show interfaces", 1)
	c.keys("Enter")
	c.wait("NETWORK", 1)
	// Tab completion of names: capture <Tab><Tab> lists the ports.
	c.keys("capture ", "Tab", "Tab")
	s := c.wait("p2", 1)
	if !strings.Contains(s, "p1") || !strings.Contains(s, "vm") {
		t.Fatalf("port names not listed:\n%s", s)
	}
	c.keys("C-u")
	// ? lists what can follow.
	c.keys("show ip route ", "?")
	c.wait("<[ADDR | PREFIX]>", 1)
	c.keys("C-u")
	// A runtime route, then history recall with Up.
	c.keys("ip route add 10.77.0.0/16 via 198.51.100.10", "Enter")
	c.wait("added 10.77.0.0/16", 1)
	c.keys("show ip route 10.77.1.1", "Enter")
	c.wait("runtime", 1)
	c.keys("Up", "Up", "Enter")
	c.wait("added 10.77.0.0/16", 2)
	// trace a ping.
	c.keys("trace 4", "Enter")
	c.wait("tracing the next 4", 1)
	run(t, l, l.H1, "ping", "-c", "1", "-W", "2", "198.51.100.10")
	c.keys("show trace", "Enter")
	s = c.wait("tx      port p2", 1)
	for _, want := range []string{"rx      port p1", "fib     connected network net2", "arp     198.51.100.10"} {
		if !strings.Contains(s, want) {
			t.Fatalf("trace lacks %q:\n%s", want, s)
		}
	}
	// Ctrl-C cancels a line; quit leaves.
	c.keys("show bogus")
	c.wait("lab> show bogus", 1)
	c.keys("C-c")
	c.wait("^C", 1)
	c.keys("quit", "Enter")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if exec.Command("tmux", "-L", c.sock, "has-session", "-t", "con").Run() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if exec.Command("tmux", "-L", c.sock, "has-session", "-t", "con").Run() == nil {
		t.Fatal("console did not quit")
	}
	hist, err := os.ReadFile(home + "/.vrouter_history")
	if err != nil || !strings.Contains(string(hist), "ip route add 10.77.0.0/16") {
		t.Fatalf("history file: %v %q", err, hist)
	}
}

// TestCLIContract runs the command-line forms of CONFIG.md against a
// running router: check (exit 0 and 1), version, and console one-shot
// commands with -j before or after the command, with their exit status.
func TestCLIContract(t *testing.T) {
	l := standard(t, `
[[nat.snat]]
source = "10.10.0.0/24"
out    = "net2"
`)
	bin, _ := lab.Binary()
	cli := func(args ...string) (stdout string, code int) {
		t.Helper()
		var out, errb strings.Builder
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String() + errb.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return out.String(), 0
	}
	con := func(args ...string) (string, int) {
		t.Helper()
		return cli(append([]string{"console", "-s", l.Router.Socket}, args...)...)
	}
	jsonOf := func(v any, args ...string) {
		t.Helper()
		out, code := con(args...)
		if code != 0 {
			t.Fatalf("console %v: exit %d: %s", args, code, out)
		}
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("console %v: not JSON: %v\n%s", args, err, out)
		}
	}

	if out, code := cli("check", "-c", l.Router.Config); code != 0 {
		t.Fatalf("check of the running file: exit %d: %s", code, out)
	}
	if out, code := cli("version"); code != 0 || !strings.Contains(out, "go1") {
		t.Fatalf("version: exit %d: %s", code, out)
	}

	run(t, l, l.VM, "ping", "-c", "1", "-W", "2", "198.51.100.10")

	var sum struct {
		Routes   *int           `json:"routes"`
		BySource map[string]int `json:"by_source"`
	}
	jsonOf(&sum, "-j", "show", "ip", "route", "summary")
	if sum.Routes == nil || *sum.Routes != 4 || sum.BySource["static"] != 1 || sum.BySource["connected"] != 3 {
		t.Fatalf("show ip route summary -j: %+v", sum)
	}
	var neigh []struct{ IP, MAC, Network, State, Age string }
	jsonOf(&neigh, "show", "arp", "-j") // -j after the command
	found := false
	for _, n := range neigh {
		if n.IP == "198.51.100.10" && n.Network == "net2" && n.MAC != "" && n.State == "reachable" && n.Age != "" {
			found = true
		}
	}
	if !found {
		t.Fatalf("show arp -j lacks 198.51.100.10 reachable on net2: %+v", neigh)
	}
	var sess []struct {
		Proto, Original, Reply, State, NAT, Timeout string
		Packets, Bytes                              uint64
	}
	jsonOf(&sess, "-j", "show", "conntrack", "10.10.0.10")
	if len(sess) != 1 || sess[0].Proto != "icmp" || sess[0].NAT != "snat" || !strings.Contains(sess[0].Reply, "198.51.100.1") ||
		sess[0].Timeout == "" || sess[0].Packets == 0 || sess[0].Bytes == 0 {
		t.Fatalf("show conntrack 10.10.0.10 -j: %+v", sess)
	}
	var cleared struct {
		Cleared *int `json:"cleared"`
	}
	jsonOf(&cleared, "-j", "clear", "conntrack", "10.10.0.10")
	if cleared.Cleared == nil || *cleared.Cleared != 1 {
		t.Fatalf("clear conntrack -j: %+v", cleared)
	}
	// Errors: non-zero exit, the reason on stderr.
	for _, args := range [][]string{{"show", "bogus"}, {"show", "arp", "extra"}, {"show", "conntrack", "bad"}, {"ip", "route", "del", "10.99.0.0/16"}} {
		if out, code := con(args...); code == 0 || !strings.Contains(out, "error:") {
			t.Errorf("console %v: exit %d: %s", args, code, out)
		}
	}
	if out, code := cli("console", "-s", filepath.Join(t.TempDir(), "none.sock"), "show", "arp"); code == 0 {
		t.Errorf("console on a missing socket: exit 0: %s", out)
	}
}
