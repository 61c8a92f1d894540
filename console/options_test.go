package console_test

import (
	"errors"
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
