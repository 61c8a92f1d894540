package console_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"vrouter/config"
	"vrouter/console"
	"vrouter/ha"
	"vrouter/internal/clock"
	"vrouter/router"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

// show ha and ha state on a router with [ha] (its peer silent).
func TestShowHA(t *testing.T) {
	src := "[router]\nname = \"h\"\n[[port]]\nname = \"pa\"\ndriver = \"pipe\"\n" +
		"[[network]]\nname = \"sync\"\nlinks = [\"pa\"]\naddresses = [\"10.255.0.1/24\"]\nhost = \"ha-sync\"\n" +
		"[ha]\nlocal = \"10.255.0.1\"\npeer = \"10.255.0.2\"\nkey = \"" + strings.Repeat("5a", 32) + "\"\n"
	cfg, err := config.Parse("h.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	r, err := router.New(cfg, []port.Port{pipe.New("pa", gMAC(1), 1500)}, router.Options{Clock: clock.NewManual(), Host: &consoleHost{}})
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	t.Cleanup(r.Stop)
	if err := r.StartHA(ha.NewMemLink(0, 1).A); err != nil {
		t.Fatal(err)
	}
	c := console.New(r, console.Options{})
	out, err := c.Exec([]string{"show", "ha"}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"state              backup", "initial state ([ha] initial)", "10.255.0.1 -> 10.255.0.2 udp/3780, authentication HMAC-SHA256",
		"peer               down", "sessions sent      0", "resyncs            requested 0, served 0"} {
		if !strings.Contains(out, want) {
			t.Fatalf("want %q in\n%s", want, out)
		}
	}
	if _, err := c.Exec([]string{"ha", "state", "master"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec([]string{"ha", "state", "primary"}, false); err == nil || !strings.Contains(err.Error(), "master, backup or fault") {
		t.Fatalf("bad state: %v", err)
	}
	out, err = c.Exec([]string{"show", "ha"}, true)
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		State, Previous, Cause, Peer string
		Transitions                  int
		Authenticated                bool
		Sync                         *struct {
			PeerUp bool `json:"peer_up"`
		}
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatal(err)
	}
	if j.State != "master" || j.Previous != "backup" || j.Cause != "console: ha state master" || j.Transitions != 1 ||
		!j.Authenticated || j.Peer != "10.255.0.2" || j.Sync == nil || j.Sync.PeerUp {
		t.Fatalf("show ha -j: %s", out)
	}
	srv := httptest.NewServer(console.MetricsHandler(r))
	defer srv.Close()
	body := scrape(t, srv.URL)
	for _, want := range []string{`vrouter_ha_state{state="master"} 1`, `vrouter_ha_state{state="backup"} 0`, "vrouter_ha_peer_up 0",
		`vrouter_ha_events_total{event="ha-sessions-sent"} 0`, `vrouter_ha_drops_total{reason="ha-bad-auth"} 0`, "vrouter_ha_master 1"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics: no %q", want)
		}
	}
}
