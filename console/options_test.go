package console_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"vrouter/console"
)

func TestOptions(t *testing.T) {
	_, r := gScenario(t, consoleExec)
	calls := 0
	c := console.New(r, console.Options{
		Reload: func() (string, error) {
			calls++
			if calls == 2 {
				return "", errors.New("reload rejected: bad file")
			}
			return "reloaded x.toml: ports: 5 unchanged", nil
		},
		KernelStats: func() any { return map[string]int{"routes": 7} },
	})
	if out, err := c.Exec([]string{"reload"}, false); err != nil || out != "reloaded x.toml: ports: 5 unchanged\n" {
		t.Fatalf("reload: %q %v", out, err)
	}
	if _, err := c.Exec([]string{"reload"}, false); err == nil || err.Error() != "reload rejected: bad file" {
		t.Fatalf("failed reload: %v", err)
	}
	out, err := c.Exec([]string{"show", "ip", "route", "summary"}, false)
	if err != nil || !strings.Contains(out, "kernel import  {\"routes\":7}") {
		t.Fatalf("summary lacks the kernel import counters: %v\n%s", err, out)
	}
	out, err = c.Exec([]string{"show", "ip", "route", "summary"}, true)
	if err != nil || !strings.Contains(out, "\"kernel\": {\n    \"routes\": 7\n  }") {
		t.Fatalf("summary -j lacks the kernel import counters: %v\n%s", err, out)
	}
}

// TestJSONEverywhere: with -j every command that succeeds prints JSON,
// the commands that act (clear, ip route, trace, capture, reload) too.
func TestJSONEverywhere(t *testing.T) {
	_, r := gScenario(t, consoleExec)
	c := console.New(r, console.Options{Reload: func() (string, error) { return "reloaded x.toml: ports: 5 unchanged", nil }})
	pcap := filepath.Join(t.TempDir(), "pa.pcap")
	cmds := append([][]string{
		{"trace", "3"},
		{"capture", "pa", pcap, "5"},
		{"capture", "pa", "stop"},
		{"reload"},
		{"clear", "conntrack"},
	}, goldenCommands...)
	ran := 0
	for _, cmd := range cmds {
		out, err := c.Exec(cmd, true)
		if err != nil {
			continue
		}
		ran++
		if !json.Valid([]byte(out)) {
			t.Errorf("%s -j is not JSON:\n%s", strings.Join(cmd, " "), out)
		}
	}
	if ran < 40 {
		t.Errorf("only %d commands succeeded", ran)
	}
	out, err := c.Exec([]string{"clear", "conntrack", "-j"}, false)
	var res struct {
		Cleared *int   `json:"cleared"`
		Message string `json:"message"`
	}
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || res.Cleared == nil || res.Message != "0 sessions cleared" {
		t.Errorf("clear conntrack -j: %v %q", err, out)
	}
}
