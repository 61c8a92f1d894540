package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePing(t *testing.T) {
	out := `PING 203.0.113.10 (203.0.113.10) 56(84) bytes of data.
64 bytes from 203.0.113.10: icmp_seq=1 ttl=63 time=0.300 ms
64 bytes from 203.0.113.10: icmp_seq=2 ttl=63 time=0.100 ms
64 bytes from 203.0.113.10: icmp_seq=3 ttl=63 time=12.5 ms
64 bytes from 203.0.113.10: icmp_seq=5 ttl=63 time=0.200 ms

--- 203.0.113.10 ping statistics ---
5 packets transmitted, 4 received, 20% packet loss, time 41ms
rtt min/avg/max/mdev = 0.100/3.275/12.500/5.300 ms
`
	p := parsePing(out)
	if p.Sent != 5 || p.Received != 4 {
		t.Fatalf("sent/received = %d/%d, want 5/4", p.Sent, p.Received)
	}
	if p.P50Ms != 0.2 || p.P99Ms != 12.5 || p.MaxMs != 12.5 {
		t.Fatalf("p50 %v p99 %v max %v, want 0.2 12.5 12.5", p.P50Ms, p.P99Ms, p.MaxMs)
	}
	if p := parsePing("connect: Network is unreachable\n"); p.Received != 0 || p.P50Ms != 0 {
		t.Fatalf("no replies parsed as %+v", p)
	}
}

func TestPercentile(t *testing.T) {
	v := make([]float64, 100)
	for i := range v {
		v[i] = float64(i + 1)
	}
	for _, c := range []struct{ pct, want float64 }{{50, 50}, {99, 99}, {100, 100}, {1, 1}, {0, 1}} {
		if got := percentile(v, c.pct); got != c.want {
			t.Errorf("p%v = %v, want %v", c.pct, got, c.want)
		}
	}
}

func TestParseProcNetDevTx(t *testing.T) {
	out := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0: 1234567    8901    0    0    0     0          0         0 987654321 1000000    0   25    0     0       0          0
`
	n, err := parseProcNetDevTx(out, "eth0")
	if err != nil || n != 1000025 {
		t.Fatalf("eth0 tx = %d, %v; want 1000025", n, err)
	}
	if _, err := parseProcNetDevTx(out, "tap-vm"); err == nil {
		t.Fatal("missing device: no error")
	}
}

func TestParsePerfCSV(t *testing.T) {
	out := `2003.45,msec,task-clock,2003450000,100.00,0.998,CPUs utilized
<not supported>,,cycles,0,100.00,,
3456,,context-switches,2003450000,100.00,1.725,K/sec
123456,,raw_syscalls:sys_enter,2003450000,100.00,,
`
	ev := parsePerfCSV(out)
	if ev["task-clock"] != 2003.45 || ev["context-switches"] != 3456 || ev["raw_syscalls:sys_enter"] != 123456 {
		t.Fatalf("events %v", ev)
	}
	if _, ok := ev["cycles"]; ok {
		t.Fatal("an unsupported event was parsed")
	}
}

func TestParseIperf(t *testing.T) {
	v, err := parseIperf(`{"start":{},"end":{"sum_sent":{"bits_per_second":2e10},"sum_received":{"bits_per_second":1.5e10}}}`)
	if err != nil || v != 15 {
		t.Fatalf("got %v, %v; want 15 Gbit/s", v, err)
	}
	if _, err := parseIperf(`{"error":"unable to connect to server: Connection refused"}`); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("iperf3 error not reported: %v", err)
	}
}

func TestTrafgenConf(t *testing.T) {
	c := trafgenConf("02:00:00:00:00:01", "02:00:00:00:00:02", clientIP, udpSport)
	for _, want := range []string{"da=02:00:00:00:00:01", "sa=10.10.1.10", "da=203.0.113.10", "sp=dinc(10000, 19999)", "dp=9", "fill(0x00, 18)"} {
		if !strings.Contains(c, want) {
			t.Errorf("trafgen config lacks %q:\n%s", want, c)
		}
	}
}

// sampleReport is a run with the kernel, two drivers and a skipped one.
func sampleReport() *Report {
	r := &Report{Date: "2026-01-02T03:04:05Z", Seconds: 3, Reps: 2, Tests: testDefs,
		Host:   hostInfo{CPUs: 2, CPU: "Test CPU", Kernel: "6.1.0", Vrouter: "abc123"},
		Filter: &filterSetup{Rules: 1000, BenchRule: 900, NftSets: "src_svc 437 (interval)", NftSet: "src_svc"}}
	r.Targets = []*Target{
		{Name: "kernel", Results: map[string]float64{"udp64": 300, "ping_p50": 0.05, "ping_p99": 0.1, "udp64_filter": 250, "tcp_on": 14, "tcp_off": 4, "conn": 20000, "vm_tcp": 20, "vm_udp64": 300},
			Filter: &filterCheck{Active: true, RuleHits: 900000, RulePackets: 900000}},
		{Name: "vrouter afpacket", Driver: "afpacket", Results: map[string]float64{"udp64": 330, "ping_p50": 0.06, "ping_p99": 0.3, "udp64_filter": 325, "tcp_on": 7, "tcp_off": 4.4, "conn": 15000, "vm_tcp": 2, "vm_udp64": 150},
			Errors: map[string]string{}, Filter: &filterCheck{Active: true, RuleHits: 10000, RulePackets: 10000}},
		{Name: "vrouter afxdp", Driver: "afxdp", Results: map[string]float64{"udp64": 600, "ping_p50": 0.05, "udp64_filter": 590, "tcp_on": 15, "conn": 21000},
			Errors: map[string]string{"tcp_off": "iperf3: boom"}, Filter: &filterCheck{Note: "round 1: vrouter show filter: unknown command"}},
	}
	r.Skipped = []Skip{{Driver: "dpdk", Reason: "port.driver \"dpdk\" is not one of afpacket, tap, pipe"}}
	r.compute()
	return r
}

func TestRatiosAndGoals(t *testing.T) {
	r := sampleReport()
	if got := r.Ratios["afpacket"]["udp64"]; got != 1.1 {
		t.Errorf("afpacket udp64 ratio %v, want 1.1", got)
	}
	if _, ok := r.Ratios["afxdp"]["tcp_off"]; ok {
		t.Error("ratio for a test that failed")
	}
	want := map[string]struct {
		driver string
		ratio  float64
		met    bool
	}{
		"64 B UDP through SNAT, best driver":    {"afxdp", 2, true},
		"64 B UDP through SNAT, afpacket alone": {"afpacket", 1.1, true},
		"TCP, hosts' offloads on":               {"afxdp", 1.071, true},
		"TCP, hosts' offloads off":              {"afpacket", 1.1, true},
		"ping p50 under the UDP load":           {"afxdp", 1, true},
		"new TCP connections per second":        {"afxdp", 1.05, true},
	}
	for _, g := range r.Goals {
		w, ok := want[g.Text]
		if !ok {
			t.Errorf("unexpected goal %q", g.Text)
			continue
		}
		if !g.Measured || g.Driver != w.driver || g.Ratio != w.ratio || g.Met != w.met {
			t.Errorf("%s: %+v, want driver %s ratio %v met %v", g.Text, g, w.driver, w.ratio, w.met)
		}
	}
	if !strings.Contains(goalsText(r), "met") {
		t.Error("goals text")
	}
}

func TestMarkdownTable(t *testing.T) {
	md := markdownTable(sampleReport())
	for _, want := range []string{
		"| test | Linux kernel | vrouter afpacket | ratio | vrouter afxdp | ratio |",
		"|---|---:|---:|---:|---:|---:|",
		"| 64 B UDP, 10k flows, SNAT (kpps, higher is better) | 300 | 330 | 1.10 | 600 | 2.00 |",
		"| ping p50 under that load (ms, lower is better) | 0.050 | 0.060 | 1.20 | 0.050 | 1.00 |",
		"| TCP, offloads off (Gbit/s, higher is better) | 4.00 | 4.40 | 1.10 | error | - |",
		"| 64 B UDP, 10k flows, SNAT + 1,000-rule filter (kpps, higher is better) | 250 | 325 | 1.30 | 590 (not filtered) | 2.36 |",
		"Filter row: 1,000 rules",
		"vrouter afxdp did not show that it filtered: round 1: vrouter show filter: unknown command",
		"vrouter dpdk was not measured",
		"2026-01-02",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
	// Every row has as many cells as the header.
	var cols int
	for _, l := range strings.Split(md, "\n") {
		if !strings.HasPrefix(l, "|") {
			continue
		}
		n := strings.Count(l, "|")
		if cols == 0 {
			cols = n
		} else if n != cols {
			t.Errorf("row with %d bars, header %d: %s", n, cols, l)
		}
	}
}

func TestFilterText(t *testing.T) {
	txt := filterText(sampleReport())
	for _, want := range []string{
		"1,000-rule filter",
		"kernel             250.0 kpps (83% of its 300.0 without the filter); @src_svc counted 900000 packets, 0 dropped",
		"vrouter afpacket   325.0 kpps (98% of its 330.0 without the filter), ratio to the kernel 1.30; rule 900 classified 10000 flows, 0 dropped by the default",
		"vrouter afxdp      590.0 kpps (98% of its 600.0 without the filter), ratio to the kernel 2.36; NOT FILTERED: round 1",
	} {
		if !strings.Contains(txt, want) {
			t.Errorf("filter note lacks %q:\n%s", want, txt)
		}
	}
	// Without the filter case (an older report, or -filter 0): no row, no note.
	r := sampleReport()
	r.Filter = nil
	var tests []testDef
	for _, d := range r.Tests {
		if d.ID != "udp64_filter" {
			tests = append(tests, d)
		}
	}
	r.Tests = tests
	if filterText(r) != "" || strings.Contains(markdownTable(r), "filter") || strings.Contains(textTable(r), "filter") {
		t.Error("a report without the filter case shows it")
	}
}

func TestSetFilterRules(t *testing.T) {
	saved := testDefs
	defer func() { testDefs = saved }()
	setFilterRules(10000)
	if d := testByID("udp64_filter"); d.Name != "64 B UDP, 10k flows, SNAT + 10,000-rule filter" {
		t.Errorf("name %q", d.Name)
	}
	setFilterRules(0)
	for _, d := range testDefs {
		if d.ID == "udp64_filter" {
			t.Error("-filter 0 keeps the test")
		}
	}
	if thousands(999) != "999" || thousands(1000) != "1,000" || thousands(1234567) != "1,234,567" {
		t.Error("thousands")
	}
}

func TestReportRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "latest.json")
	r := sampleReport()
	if err := writeReport(r, path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), `\u003e`) {
		t.Error("JSON escapes >")
	}
	back, err := readReport(path)
	if err != nil {
		t.Fatal(err)
	}
	if markdownTable(back) != markdownTable(r) {
		t.Error("table differs after a JSON round trip")
	}
}

func TestChart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latest.png")
	if err := drawChart(sampleReport(), path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 1000 || b.Dy() < 500 {
		t.Fatalf("chart is %v", b)
	}
}

func TestJudgeSoak(t *testing.T) {
	r := &soakReport{}
	for i := 1; i <= 60; i++ { // 10 minutes
		rss := int64(40000)
		if i <= 3 {
			rss = int64(30000 + 3000*i) // filling the session table
		}
		r.Samples = append(r.Samples, soakSample{At: float64(10 * i), RSSKiB: rss + int64(i%3), Threads: 9, Goroutines: -1, DeliveredKpps: 200})
	}
	judgeSoak(r)
	if !r.RSSFlat || !r.ThreadsFlat || r.GoroutinesFlat != nil || r.WarmupSeconds != 60 {
		t.Fatalf("flat soak judged %+v", r)
	}
	// A leak of 100 KiB per sample is not flat.
	for i := range r.Samples {
		r.Samples[i].RSSKiB += int64(100 * i)
	}
	judgeSoak(r)
	if r.RSSFlat || r.RSSSlopeKiBMin < 500 {
		t.Fatalf("leaking soak judged flat: %+v", r)
	}
}

func TestParseOffloads(t *testing.T) {
	out := `Features for eth0:
rx-checksumming: on
tx-checksumming: on
	tx-checksum-ipv4: off [fixed]
tcp-segmentation-offload: on
	tx-tcp-segmentation: on
generic-segmentation-offload: on
generic-receive-offload: off
large-receive-offload: off [fixed]
rx-gro-hw: off [fixed]
`
	got := strings.Join(parseOffloads(out), " ")
	if got != "rx on tx on tso on gso on gro off" {
		t.Fatalf("got %q", got)
	}
}

func TestTestsOfRound(t *testing.T) {
	if r1, r2 := testsOfRound(1), testsOfRound(2); r1[0] != "udp64" || r1[1] != "udp64_filter" || r2[0] != "udp64_filter" || r2[1] != "udp64" || len(r2) != len(roundTests) {
		t.Fatalf("round 1 %v, round 2 %v", r1, r2)
	}
	if roundTests[0] != "udp64" {
		t.Fatal("testsOfRound changed roundTests")
	}
}

func TestParseVariant(t *testing.T) {
	for _, c := range []struct {
		spec, label, driver, cpus string
		workers                   int
		bad                       bool
	}{
		{spec: "afpacket", label: "afpacket", driver: "afpacket"},
		{spec: "afxdp:w2", label: "afxdp:w2", driver: "afxdp", workers: 2},
		{spec: "pinned=afxdp:c1", label: "pinned", driver: "afxdp", cpus: "1"},
		{spec: "afpacket:w2:c0-1", label: "afpacket:w2:c0-1", driver: "afpacket", workers: 2, cpus: "0-1"},
		{spec: "afxdp:s", label: "afxdp:s", driver: "afxdp"},
		{spec: "afpacket:c", bad: true},
		{spec: "afpacket:cx", bad: true},
		{spec: "afpacket:w0", bad: true},
		{spec: "tap", bad: true},
	} {
		v, err := parseVariant(c.spec)
		if c.bad {
			if err == nil {
				t.Errorf("%q: no error", c.spec)
			}
			continue
		}
		if err != nil || v.label != c.label || v.driver != c.driver || v.cpus != c.cpus || v.workers != c.workers {
			t.Errorf("%q: got %+v, %v", c.spec, v, err)
		}
	}
}
