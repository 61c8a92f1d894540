package console_test

import (
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"vrouter/config"
	"vrouter/console"
	"vrouter/internal/clock"
	"vrouter/packet"
	"vrouter/router"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

// consoleHost is a router.HostSystem over pipe ports.
type consoleHost struct{ watch func([]router.AddrEvent) }

func (h *consoleHost) Open(dev string, mac packet.MAC, mtu int) (port.Port, int, error) {
	return pipe.New("host:"+dev, mac, mtu), 7, nil
}
func (h *consoleHost) SetLink(string, packet.MAC, int) error { return nil }
func (h *consoleHost) AddAddr(string, netip.Prefix) error    { return nil }
func (h *consoleHost) DelAddr(string, netip.Prefix) error    { return nil }
func (h *consoleHost) Isolate([]string) error                { return nil }
func (h *consoleHost) Watch(f func([]router.AddrEvent)) (func(), error) {
	h.watch = f
	return func() {}, nil
}

func TestShowHostInterfaces(t *testing.T) {
	src := "[router]\nname = \"h\"\n[[port]]\nname = \"pa\"\ndriver = \"pipe\"\n[[port]]\nname = \"pb\"\ndriver = \"pipe\"\n" +
		"[[network]]\nname = \"guest\"\nlinks = [\"pa\"]\naddresses = [\"10.1.1.1/24\"]\nhost = \"vr-guest\"\nhost_punt_rate = 500\n" +
		"[[network]]\nname = \"public\"\nlinks = [\"pb\"]\naddresses = [\"203.0.113.1/24\"]\n"
	cfg, err := config.Parse("h.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	hs := &consoleHost{}
	r, err := router.New(cfg, []port.Port{pipe.New("pa", gMAC(1), 1500), pipe.New("pb", gMAC(2), 1500)},
		router.Options{Clock: clock.NewManual(), Host: hs})
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	t.Cleanup(r.Stop)
	hs.watch([]router.AddrEvent{{Ifindex: 7, Prefix: netip.MustParsePrefix("10.1.1.100/32"), Added: true},
		{Ifindex: 7, Prefix: netip.MustParsePrefix("203.0.113.9/24"), Added: true}})
	c := console.New(r, console.Options{})
	out, err := c.Exec([]string{"show", "host-interfaces"}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NETWORK", "guest", "vr-guest", "02:00:00:00:ee:01", "10.1.1.1/24, 10.1.1.100/32 (kernel)", "500/s",
		`vr-guest: kernel address 203.0.113.9/24 not used: overlaps 203.0.113.0/24 of network "public"`} {
		if !strings.Contains(out, want) {
			t.Fatalf("want %q in\n%s", want, out)
		}
	}
	out, err = c.Exec([]string{"show", "host-interfaces"}, true)
	if err != nil {
		t.Fatal(err)
	}
	var js []struct {
		Network   string `json:"network"`
		Device    string `json:"device"`
		Ifindex   int    `json:"ifindex"`
		PuntRate  int    `json:"punt_rate"`
		Addresses []struct {
			Address, Origin string
		} `json:"addresses"`
		Ignored []struct {
			Address, Origin, Reason string
		} `json:"ignored"`
		PuntedPackets *uint64 `json:"punted_packets"`
		PuntDrops     *uint64 `json:"punt_drops"`
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatal(err, out)
	}
	if len(js) != 1 || js[0].Device != "vr-guest" || js[0].Ifindex != 7 || js[0].PuntRate != 500 || len(js[0].Addresses) != 2 ||
		js[0].Addresses[1].Origin != "kernel" || len(js[0].Ignored) != 1 || js[0].PuntedPackets == nil || js[0].PuntDrops == nil {
		t.Fatalf("show host-interfaces -j:\n%s", out)
	}
	// The metrics.
	rec := httptest.NewRecorder()
	console.MetricsHandler(r).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`vrouter_host_punted_packets_total{device="vr-guest",network="guest"} 0`,
		`vrouter_host_addresses{device="vr-guest",network="guest",origin="kernel"} 1`,
		`vrouter_host_punt_drops_total{device="vr-guest",network="guest"} 0`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Fatalf("want %q in metrics", want)
		}
	}
	// Host ports are not ports of show interfaces.
	if out, _ := c.Exec([]string{"show", "interfaces"}, false); strings.Contains(out, "host:") {
		t.Fatalf("host port in show interfaces:\n%s", out)
	}
	// Without host interfaces: an empty list.
	r2, err := router.New(testCfg(t), []port.Port{pipe.New("pa", gMAC(1), 1500)}, router.Options{Clock: clock.NewManual()})
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := console.New(r2, console.Options{}).Exec([]string{"show", "host-interfaces"}, true); strings.TrimSpace(out) != "[]" {
		t.Fatalf("no host interfaces: %q", out)
	}
}

func testCfg(t *testing.T) *config.Config {
	cfg, err := config.Parse("x.toml", []byte("[router]\nname = \"x\"\n[[port]]\nname = \"pa\"\ndriver = \"pipe\"\n[[network]]\nname = \"a\"\nlinks = [\"pa\"]\naddresses = [\"192.0.2.1/24\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
