package lineedit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain runs a tiny console (the test binary itself) when asked to by
// the tmux test; otherwise it runs the tests.
func TestMain(m *testing.M) {
	if os.Getenv("LINEEDIT_DEMO") == "1" {
		os.Exit(demo())
	}
	os.Exit(m.Run())
}

var demoTree = map[string][]string{
	"":        {"show", "shutdown", "quit", "clear"},
	"show":    {"interfaces", "ip", "arp", "nat", "stats", "conntrack"},
	"show ip": {"route"},
}

func demo() int {
	e, err := New(os.Stdin, os.Stdout, Config{
		Prompt:      "demo> ",
		HistoryFile: os.Getenv("LINEEDIT_HIST"),
		Complete: func(line string) []string {
			f := strings.Fields(line)
			if !strings.HasSuffix(line, " ") && len(f) > 0 {
				f = f[:len(f)-1]
			}
			return demoTree[strings.Join(f, " ")]
		},
		Help: func(line string) string {
			next := demoTree[strings.Join(strings.Fields(line), " ")]
			if len(next) == 0 {
				return "<cr>"
			}
			return "possible: " + strings.Join(next, " | ")
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer e.Close()
	for {
		line, err := e.ReadLine()
		switch {
		case errors.Is(err, ErrInterrupt):
			continue
		case err == io.EOF:
			fmt.Println("bye")
			return 0
		case err != nil:
			fmt.Println("error:", err)
			return 1
		}
		if strings.TrimSpace(line) == "quit" {
			fmt.Println("bye")
			return 0
		}
		// plain \n: the terminal is back in cooked mode here
		fmt.Printf("you said %q\nsecond line\n", line)
	}
}

// TestTmux drives the demo console in a real terminal (tmux).
func TestTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux not installed")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	hist := filepath.Join(t.TempDir(), "history")
	sock := filepath.Join(t.TempDir(), "tmux.sock") // own server, removed with the directory
	tmux := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("tmux", append([]string{"-S", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %q: %v: %s", args, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { exec.Command("tmux", "-S", sock, "kill-server").Run() })
	tmux("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "60", "-y", "20",
		"env", "LINEEDIT_DEMO=1", "LINEEDIT_HIST="+hist, self)
	tmux("set-option", "-t", "t", "remain-on-exit", "on")

	screen := func() []string {
		out := tmux("capture-pane", "-p", "-t", "t")
		return strings.Split(strings.TrimRight(out, "\n"), "\n")
	}
	// waitScreen waits until the last non-empty screen rows are want
	// (capture-pane drops trailing blanks; the cursor is not checked).
	waitScreen := func(want ...string) []string {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			s := screen()
			ok := len(s) >= len(want)
			for i := 0; ok && i < len(want); i++ {
				ok = s[len(s)-len(want)+i] == strings.TrimRight(want[i], " ")
			}
			if ok {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for last rows %q; screen:\n%s", want, strings.Join(s, "\n"))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitLast := func(want string) []string { t.Helper(); return waitScreen(want) }
	keys := func(k ...string) { tmux(append([]string{"send-keys", "-t", "t"}, k...)...) }

	waitLast("demo> ")
	keys("sho", "Tab")
	waitLast("demo> show ")
	keys("a", "Tab", "Enter")
	// the program's "\n" after ReadLine returned is translated by the
	// (restored) terminal: each line starts at column 0
	waitScreen(`you said "show arp "`, "second line", "demo> ")

	keys("Up")
	waitLast("demo> show arp ")
	keys("C-u", "show ip ?")
	waitScreen("demo> show ip ?", "possible: route", "demo> show ip ")

	keys("C-u", "show ", "Tab")
	waitLast("demo> show ")
	keys("Tab")
	waitScreen(
		"demo> show",
		"arp         interfaces  nat",
		"conntrack   ip          stats",
		"demo> show ")

	keys("abc", "Left")
	waitLast("demo> show abc")
	cursor := func() string {
		return strings.TrimSpace(tmux("display-message", "-p", "-t", "t", "#{cursor_x}"))
	}
	if got := cursor(); got != strconv.Itoa(len("demo> show ab")) {
		t.Fatalf("cursor at column %s after Left", got)
	}
	keys("Home", "X")
	waitLast("demo> Xshow abc")
	if got := cursor(); got != strconv.Itoa(len("demo> X")) {
		t.Fatalf("cursor at column %s after Home X", got)
	}
	keys("End", "C-c")
	waitScreen("demo> Xshow abc^C", "demo> ")

	keys("quit", "Enter")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(tmux("display-message", "-p", "-t", "t", "#{pane_dead}"), "1") {
		if time.Now().After(deadline) {
			t.Fatalf("demo did not exit:\n%s", strings.Join(screen(), "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile(hist)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "show arp \nquit\n"; got != want {
		t.Fatalf("history file %q, want %q", got, want)
	}
}
