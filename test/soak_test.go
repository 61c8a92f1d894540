package test

// The soak (issue 14): the NAT lab under mixed traffic for a while — a TCP
// stream, short TCP connections, a UDP stream, ICMP, fragmented ICMP, a
// churn of new UDP flows — with runtime routes added and deleted every
// second and a reload every 10 s (alternately with 500 more static
// routes). The router's heap, goroutines, sessions, neighbours and FIB
// memory are sampled every 2 s; at the end (traffic stopped, the base
// configuration reloaded, runtime routes gone) they must be back at their
// baseline, and no packet may have been dropped for a reason other than
// the expected ones. `make test` runs it for 30 s, `make soak` for 10
// minutes (VROUTER_SOAK); VROUTER_SOAK_OUT names the directory of
// soak-mixed.{json,txt,png}.

import (
	"encoding/json"
	"fmt"
	"image/color"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"vrouter/control"
	"vrouter/test/lab"
)

// soakSample is one sample of the soak.
type soakSample struct {
	At         float64 `json:"t_s"`
	HeapBytes  float64 `json:"heap_bytes"`
	RSSKiB     int64   `json:"rss_kib"`
	Goroutines float64 `json:"goroutines"`
	Sessions   float64 `json:"sessions"`
	Neighbours float64 `json:"neighbours"`
	FIBMemory  float64 `json:"fib_memory_bytes"`
	FIBRoutes  float64 `json:"fib_routes"`
}

// soakResult is soak-mixed.json.
type soakResult struct {
	Date       string            `json:"date"`
	Duration   string            `json:"duration"`
	Traffic    string            `json:"traffic"`
	Samples    []soakSample      `json:"samples"`
	Baseline   soakSample        `json:"baseline"`
	End        soakSample        `json:"end"`
	Ping       pingResult        `json:"ping"`
	FragPing   pingResult        `json:"fragmented_ping"`
	Stream     streamResult      `json:"tcp_stream"`
	UDPLoss    float64           `json:"udp_loss_percent"`
	ShortOK    int64             `json:"short_connections_ok"`
	ShortFail  int64             `json:"short_connections_failed"`
	ChurnFlows int               `json:"churn_flows"`
	RouteOps   int64             `json:"runtime_route_ops"`
	Reloads    int64             `json:"reloads"`
	Drops      map[string]uint64 `json:"drops"`
	Verdicts   []string          `json:"verdicts"`
}

var metricLine = regexp.MustCompile(`(?m)^(vrouter_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$`)

// scrape reads the router's /metrics (unlabelled series, and fib_routes
// summed over sources).
func scrape(l *lab.Lab, ns string) (map[string]float64, error) {
	out, err := l.ExecTimeout(ns, 5*time.Second, "curl", "-s", "-m", "3", "http://127.0.0.1:9469/metrics")
	if err != nil {
		return nil, err
	}
	m := map[string]float64{}
	for _, x := range metricLine.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(x[3], 64)
		if x[1] == "vrouter_fib_routes" {
			m[x[1]] += v
		} else if x[2] == "" {
			m[x[1]] = v
		}
	}
	return m, nil
}

func soakDuration(t *testing.T) time.Duration {
	if v := os.Getenv("VROUTER_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("VROUTER_SOAK: %v", err)
		}
		return d
	}
	return 30 * time.Second
}

// soakExpectedDrops are the drops the soak's traffic causes on purpose.
// (arp-queued counts packets held, not lost, while a next hop resolves.)
var soakExpectedDrops = map[string]string{
	"router/arp-queued": "held while the next hop resolves, sent later",
}

func TestSoak(t *testing.T) {
	d := soakDuration(t)
	if testing.Short() && d > time.Minute {
		t.Skip("soak longer than a minute in -short")
	}
	cfg := strings.Replace(lab.NATConfig, `console = "SOCKET"`, `console = "SOCKET"
metrics = "127.0.0.1:9469"`, 1)
	cfg = strings.Replace(cfg, "max = 65536", "max = 65536\nudp = \"2m\"", 1)
	n := newRLNAT(t, cfg)
	base, err := os.ReadFile(n.Router.Config)
	if err != nil {
		t.Fatal(err)
	}
	pid := n.Router.Cmd.Process.Pid
	rmac, smac := macOf(t, n.Lab, n.R, "r-in2"), macOf(t, n.Lab, n.In2, "eth0")
	secs := strconv.Itoa(int(d / time.Second))
	res := &soakResult{Date: time.Now().UTC().Format(time.RFC3339), Duration: d.String(),
		Traffic: "TCP stream 100 Mbit/s (in2 -> srv, SNAT), UDP stream 2 Mbit/s (in1 -> srv, floating IP), ping every 50 ms (in1), 3000-byte ping every 100 ms (in2, fragments), a short TCP connection every 100 ms (in2), 200 new UDP flows/s from random sources (SNAT churn); 20 runtime routes added and deleted every second; a reload every 10 s alternately with 500 more static routes"}

	sample := func(at time.Duration) (soakSample, bool) {
		m, err := scrape(n.Lab, n.R)
		if err != nil {
			return soakSample{}, false
		}
		rss, _ := procStatusKiB(pid)
		return soakSample{At: at.Round(100 * time.Millisecond).Seconds(), HeapBytes: m["vrouter_heap_bytes"], RSSKiB: rss,
			Goroutines: m["vrouter_goroutines"], Sessions: m["vrouter_conntrack_sessions"], Neighbours: m["vrouter_arp_entries"],
			FIBMemory: m["vrouter_fib_memory_bytes"], FIBRoutes: m["vrouter_fib_routes"]}, true
	}
	// The neighbours are resolved before the counting starts (a stream
	// that starts toward an unresolved next hop overflows its queue).
	ping(t, n.Lab, n.In1, "198.51.100.10")
	ping(t, n.Lab, n.In2, "198.51.100.10")
	// Every TCP RST that reaches the router, both sides, for the record
	// (a RST the NAT drops as outside the window is then shown).
	rsts := filepath.Join(n.Dir, "rst.pcap")
	if _, err := n.Start(n.R, "tcpdump-rst.log", "tcpdump", "-U", "-i", "any", "-n", "-s", "128", "-w", rsts, "tcp[tcpflags] & tcp-rst != 0"); err != nil {
		t.Fatal(err)
	}
	before := mustStats(t, n.Router)
	start := time.Now()
	if s, ok := sample(0); ok {
		res.Samples = append(res.Samples, s)
	}

	// Traffic.
	iperfServer(t, n.Lab, n.Srv, "5401")
	iperfServer(t, n.Lab, n.Srv, "5402")
	time.Sleep(300 * time.Millisecond)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go1 := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	go1(func() {
		out, err := n.ExecTimeout(n.In2, d+30*time.Second, "iperf3", "-c", "198.51.100.10", "-p", "5401", "-b", "100M", "-t", secs, "-i", "0.5", "-J")
		res.Stream = parseIperf(out, err)
	})
	go1(func() {
		out, err := n.ExecTimeout(n.In1, d+30*time.Second, "iperf3", "-u", "-c", "198.51.100.10", "-p", "5402", "-b", "2M", "-t", secs, "-J")
		var j struct {
			End struct {
				Sum struct {
					LostPercent float64 `json:"lost_percent"`
				} `json:"sum"`
			} `json:"end"`
		}
		if json.Unmarshal([]byte(out), &j) != nil {
			t.Errorf("UDP stream: %v %s", err, out)
		}
		res.UDPLoss = j.End.Sum.LostPercent
	})
	go1(func() {
		out, err := n.ExecTimeout(n.In1, d+20*time.Second, "ping", "-D", "-i", "0.05", "-W", "1", "-w", secs, "198.51.100.10")
		res.Ping = parsePing(out, err)
	})
	go1(func() {
		out, err := n.ExecTimeout(n.In2, d+20*time.Second, "ping", "-D", "-s", "3000", "-i", "0.1", "-W", "1", "-w", secs, "198.51.100.10")
		res.FragPing = parsePing(out, err)
	})
	var shortOK, shortFail, routeOps, reloads atomic.Int64
	go1(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if got, err := n.tryGet(n.In2, "198.51.100.10", "80", ""); err == nil && got == "203.0.113.1" {
				shortOK.Add(1)
			} else {
				shortFail.Add(1)
			}
		}
	})
	go1(func() {
		fb := newFrameBuf()
		res.ChurnFlows = flood(t, n.In2, "eth0", 200*int(d/time.Second), 200, d, func(i int, rng *rand.Rand) []byte {
			ip := ipv4(ip4(10, 1, uint16(0x8000|rng.IntN(0x8000))), ip4(198, 51, uint16(100<<8|128+rng.IntN(128))), layers.IPProtocolUDP, 64)
			udp := &layers.UDP{SrcPort: layers.UDPPort(1024 + rng.IntN(60000)), DstPort: 53}
			udp.SetNetworkLayerForChecksum(ip)
			return fb.make(t, &layers.Ethernet{SrcMAC: smac, DstMAC: rmac, EthernetType: layers.EthernetTypeIPv4}, ip, udp)
		})
	})
	// Runtime routes: 20 added, then deleted, every second.
	go1(func() {
		cl, err := control.Dial(n.Router.Socket)
		if err != nil {
			t.Error(err)
			return
		}
		defer cl.Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
			for j := 0; j < 20; j++ {
				p := fmt.Sprintf("172.16.%d.0/24", j)
				if i%2 == 0 {
					cl.Do([]string{"ip", "route", "add", p, "via", "203.0.113.254"}, false)
				} else {
					cl.Do([]string{"ip", "route", "del", p}, false) // a reload may have taken it
				}
				routeOps.Add(1)
			}
		}
	})
	// Reloads every 10 s, alternately with 500 more static routes.
	var extra strings.Builder
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&extra, "\n[[route]]\nprefix = \"100.%d.%d.0/24\"\nvia    = \"203.0.113.254\"\n", 64+i/256, i%256)
	}
	reload := func(big bool) {
		c := string(base)
		if big {
			c += extra.String()
		}
		if err := os.WriteFile(n.Router.Config, []byte(c), 0o644); err != nil {
			t.Error(err)
			return
		}
		if out, err := n.Router.Console("reload"); err != nil || !strings.Contains(out, "reloaded") {
			t.Errorf("reload: %v %s", err, out)
		}
		reloads.Add(1)
	}
	go1(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Second):
			}
			reload(i%2 == 0)
		}
	})

	// Samples every 2 s while the traffic runs.
	for time.Since(start) < d {
		time.Sleep(2 * time.Second)
		if s, ok := sample(time.Since(start)); ok {
			res.Samples = append(res.Samples, s)
		}
	}
	close(stop)
	wg.Wait()
	// Back to the base configuration, runtime routes gone, traffic
	// stopped: the end sample, after a short settle.
	reload(false)
	time.Sleep(3 * time.Second)
	end, ok := sample(time.Since(start))
	if !ok {
		t.Fatal("no end sample")
	}
	res.Samples = append(res.Samples, end)
	res.End = end
	res.ShortOK, res.ShortFail, res.RouteOps, res.Reloads = shortOK.Load(), shortFail.Load(), routeOps.Load(), reloads.Load()

	// The baseline: the first sample after a warm-up (the first sixth, at
	// most 30 s), once every flow runs.
	warm := min(30*time.Second, d/6).Seconds()
	for _, s := range res.Samples {
		if s.At >= warm {
			res.Baseline = s
			break
		}
	}
	after := mustStats(t, n.Router)
	res.Drops = map[string]uint64{}
	for k, v := range after.Drops {
		if v > before.Drops[k] {
			res.Drops["router/"+k] = v - before.Drops[k]
		}
	}
	for stage, st := range after.Stages {
		if stage == "router" {
			continue
		}
		for k, v := range st.Drops {
			if b := before.Stages[stage].Drops[k]; v > b {
				res.Drops[stage+"/"+k] = v - b
			}
		}
	}
	if res.Drops["nat/nat-tcp-bad-rst"] > 0 {
		out, _ := n.Exec(n.R, "tcpdump", "-n", "-r", rsts)
		t.Logf("the TCP RSTs the router saw:\n%s", out)
		for _, a := range []string{"10.1.2.6", "10.1.1.5"} {
			ct, _ := n.Router.Console("show", "conntrack", a)
			t.Logf("conntrack of %s (TCP):\n%s", a, grepLines(ct, "tcp"))
		}
	}
	judgeMixedSoak(t, res, d)
	dir := os.Getenv("VROUTER_SOAK_OUT")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := writeSoak(res, dir); err != nil {
		t.Error(err)
	}
}

// judgeMixedSoak checks the soak's results and records each verdict.
func judgeMixedSoak(t *testing.T, r *soakResult, d time.Duration) {
	check := func(ok bool, format string, args ...any) {
		v := fmt.Sprintf(format, args...)
		if ok {
			r.Verdicts = append(r.Verdicts, "ok: "+v)
		} else {
			r.Verdicts = append(r.Verdicts, "FAIL: "+v)
			t.Error(v)
		}
	}
	b, e := r.Baseline, r.End
	check(e.Goroutines <= b.Goroutines+2, "goroutines %0.f at the baseline, %0.f at the end", b.Goroutines, e.Goroutines)
	heapMax := 0.0
	for _, s := range r.Samples {
		heapMax = max(heapMax, s.HeapBytes)
	}
	check(e.HeapBytes <= max(1.5*b.HeapBytes, b.HeapBytes+16<<20), "heap %.1f MiB at the baseline, %.1f MiB at the end (max %.1f)", b.HeapBytes/(1<<20), e.HeapBytes/(1<<20), heapMax/(1<<20))
	check(e.FIBMemory == r.Samples[0].FIBMemory && e.FIBRoutes == r.Samples[0].FIBRoutes, "FIB %0.f routes, %0.f bytes at the start, %0.f routes, %0.f bytes at the end", r.Samples[0].FIBRoutes, r.Samples[0].FIBMemory, e.FIBRoutes, e.FIBMemory)
	check(e.Neighbours <= b.Neighbours, "neighbours %0.f at the baseline, %0.f at the end", b.Neighbours, e.Neighbours)
	// Sessions: the churn's 200 flows/s live the 2 min UDP timeout; with
	// the short connections' transitory ones they stay under that bound.
	maxS := 0.0
	for _, s := range r.Samples {
		maxS = max(maxS, s.Sessions)
	}
	bound := 200*min(d.Seconds(), 120)*1.1 + 3000
	check(maxS <= bound, "sessions at most %.0f (bound %.0f: churn rate x UDP timeout + the short connections'), %0.f at the end", maxS, bound, e.Sessions)
	check(r.Ping.err == nil && r.Ping.Loss <= 1 && r.Ping.MaxGap <= time.Second, "ping %d/%d, loss %.2f%%, max gap %v", r.Ping.Received, r.Ping.Sent, r.Ping.Loss, r.Ping.MaxGap.Round(time.Millisecond))
	check(r.FragPing.err == nil && r.FragPing.Loss <= 2, "fragmented ping %d/%d, loss %.2f%%, max gap %v", r.FragPing.Received, r.FragPing.Sent, r.FragPing.Loss, r.FragPing.MaxGap.Round(time.Millisecond))
	check(r.Stream.err == nil && r.Stream.MinMbps >= 1, "TCP stream mean %.0f Mbit/s, worst 0.5 s %.0f Mbit/s, %d retransmits", r.Stream.MeanMbps, r.Stream.MinMbps, r.Stream.Retransmits)
	check(r.UDPLoss <= 1, "UDP stream loss %.2f%%", r.UDPLoss)
	check(r.ShortFail*100 <= r.ShortOK, "short connections %d ok, %d failed", r.ShortOK, r.ShortFail)
	var unexpected []string
	for k, v := range r.Drops {
		if _, ok := soakExpectedDrops[k]; !ok {
			unexpected = append(unexpected, fmt.Sprintf("%s %d", k, v))
		}
	}
	sort.Strings(unexpected)
	check(len(unexpected) == 0, "drops other than the expected ones: %v", unexpected)
	t.Logf("RESULT soak %v: %d churn flows, %d runtime route operations, %d reloads", d, r.ChurnFlows, r.RouteOps, r.Reloads)
	for _, v := range r.Verdicts {
		t.Logf("RESULT soak: %s", v)
	}
}

// grepLines keeps the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// procStatusKiB is VmRSS of pid.
func procStatusKiB(pid int) (int64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n, true
			}
		}
	}
	return 0, false
}

// writeSoak writes soak-mixed.json, .txt (the verdicts) and .png (the
// series) into dir.
func writeSoak(r *soakResult, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "soak-mixed.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	txt := fmt.Sprintf("soak %s, %s\n%s\n\n%s\n", r.Duration, r.Date, r.Traffic, strings.Join(r.Verdicts, "\n"))
	if err := os.WriteFile(filepath.Join(dir, "soak-mixed.txt"), []byte(txt), 0o644); err != nil {
		return err
	}
	return soakChart(r, filepath.Join(dir, "soak-mixed.png"))
}

// soakChart draws one panel per series over time.
func soakChart(r *soakResult, path string) error {
	series := []struct {
		title string
		get   func(s soakSample) float64
	}{
		{"live heap (MiB)", func(s soakSample) float64 { return s.HeapBytes / (1 << 20) }},
		{"RSS (MiB)", func(s soakSample) float64 { return float64(s.RSSKiB) / 1024 }},
		{"goroutines", func(s soakSample) float64 { return s.Goroutines }},
		{"conntrack sessions", func(s soakSample) float64 { return s.Sessions }},
		{"neighbours", func(s soakSample) float64 { return s.Neighbours }},
		{"FIB memory (KiB)", func(s soakSample) float64 { return s.FIBMemory / 1024 }},
		{"FIB routes", func(s soakSample) float64 { return s.FIBRoutes }},
	}
	const rows, cols = 4, 2
	grid := make([][]*plot.Plot, rows)
	for i, sr := range series {
		p := plot.New()
		p.Title.Text = sr.title
		p.X.Label.Text = "t (s)"
		pts := make(plotter.XYs, len(r.Samples))
		for j, s := range r.Samples {
			pts[j].X, pts[j].Y = s.At, sr.get(s)
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = color.RGBA{0x1f, 0x77, 0xb4, 0xff}
		p.Add(l)
		p.Y.Min = 0
		if grid[i/cols] == nil {
			grid[i/cols] = make([]*plot.Plot, cols)
		}
		grid[i/cols][i%cols] = p
	}
	img := vgimg.NewWith(vgimg.UseWH(10*vg.Inch, 13*vg.Inch), vgimg.UseDPI(96))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	t := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 4, PadBottom: vg.Millimeter * 4, PadLeft: vg.Millimeter * 4, PadRight: vg.Millimeter * 4}
	canvases := plot.Align(grid, t, dc)
	for y := range grid {
		for x := range grid[y] {
			if grid[y][x] != nil {
				grid[y][x].Draw(canvases[y][x])
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(f)
	return err
}
