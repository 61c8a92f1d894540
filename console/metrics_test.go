package console_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"

	"vrouter/config"
	"vrouter/console"
	"vrouter/internal/clock"
	"vrouter/router"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %v %s\n%s", url, err, resp.Status, b)
	}
	return string(b)
}

func TestServeMetrics(t *testing.T) {
	_, r := gScenario(t, consoleExec)
	ms, err := console.ServeMetrics("127.0.0.1:0", r)
	if err != nil {
		t.Fatal(err)
	}
	out := scrape(t, "http://"+ms.Addr()+"/metrics")
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if fams["vrouter_port_rx_packets_total"] == nil || fams["vrouter_drops_total"] == nil {
		t.Fatalf("metrics missing:\n%s", out)
	}
	if err := ms.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + ms.Addr() + "/metrics"); err == nil {
		t.Fatal("metrics served after Close")
	}
	if _, err := console.ServeMetrics("256.0.0.1:1", r); err == nil {
		t.Fatal("bad address accepted")
	}
}

// Two SNAT rules that share an external address share its port pools: each
// pool is exposed once (a repeated label set would fail the whole scrape).
func TestMetricsSharedPool(t *testing.T) {
	cfg, err := config.Parse("shared.toml", []byte(`
[router]
name = "s"
[[port]]
name = "pa"
driver = "pipe"
[[port]]
name = "pb"
driver = "pipe"
[[network]]
name = "in"
links = ["pa"]
addresses = ["10.0.0.1/24", "10.0.1.1/24"]
[[network]]
name = "out"
links = ["pb"]
addresses = ["198.51.100.1/24"]
[[nat.snat]]
source = "10.0.0.0/24"
out = "out"
[[nat.snat]]
source = "10.0.1.0/24"
out = "out"
`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := router.New(cfg, []port.Port{pipe.New("pa", gMAC(1), 1500), pipe.New("pb", gMAC(2), 1500)}, router.Options{Clock: clock.NewManual()})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := console.ServeMetrics("127.0.0.1:0", r)
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	out := scrape(t, "http://"+ms.Addr()+"/metrics")
	if n := strings.Count(out, `vrouter_nat_pool_ports{address="198.51.100.1",proto="udp"}`); n != 1 {
		t.Fatalf("shared pool listed %d times:\n%s", n, out)
	}
}
