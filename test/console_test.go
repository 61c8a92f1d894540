package test

import (
	"os"
	"os/exec"
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
	for _, want := range []string{"rx      port p1", "fib     connected network net2", "neigh   198.51.100.10"} {
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
