package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// soakSample is one 10-second sample of the soak.
type soakSample struct {
	At            float64 `json:"t_s"`
	RSSKiB        int64   `json:"rss_kib"`
	Threads       int64   `json:"threads"`
	Goroutines    int64   `json:"goroutines,omitempty"` // -1: not exposed
	DeliveredKpps float64 `json:"delivered_kpps"`
	Delivered     uint64  `json:"delivered"`          // packets since the start
	AllocKiB      int64   `json:"heap_allocated_kib"` // vrouter_heap_allocated_bytes_total / 1024; -1: not exposed
}

// soakReport is bench/results/soak.json.
type soakReport struct {
	Date            string       `json:"date"`
	Driver          string       `json:"driver"`
	Duration        string       `json:"duration"`
	GoroutineSource string       `json:"goroutine_source"`
	Samples         []soakSample `json:"samples"`
	WarmupSeconds   float64      `json:"warmup_s"`
	RSSFirstKiB     int64        `json:"rss_after_warmup_kib"`
	RSSLastKiB      int64        `json:"rss_last_kib"`
	RSSMaxKiB       int64        `json:"rss_max_kib"`
	RSSSlopeKiBMin  float64      `json:"rss_slope_kib_per_min"`
	ThreadsFirst    int64        `json:"threads_after_warmup"`
	ThreadsLast     int64        `json:"threads_last"`
	GoroutinesFirst int64        `json:"goroutines_after_warmup,omitempty"`
	GoroutinesLast  int64        `json:"goroutines_last,omitempty"`
	RSSFlat         bool         `json:"rss_flat"`
	ThreadsFlat     bool         `json:"threads_flat"`
	GoroutinesFlat  *bool        `json:"goroutines_flat,omitempty"`
	MeanKpps        float64      `json:"mean_delivered_kpps"`
	// What vrouter allocated on its heap after the warm-up, in all and
	// per delivered packet (the data path allocates nothing per packet).
	AllocAfterWarmupKiB int64   `json:"heap_allocated_after_warmup_kib"`
	AllocPerPacket      float64 `json:"heap_allocated_bytes_per_packet"`
}

var (
	goroutinesRe = regexp.MustCompile(`(?m)^(?:vrouter|go)_goroutines (\d+)`)
	allocatedRe  = regexp.MustCompile(`(?m)^vrouter_heap_allocated_bytes_total ([0-9.e+]+)`)
)

// runSoak runs the 64-byte UDP load through vrouter (driver) for d,
// sampling vrouter's RSS and thread count (/proc/PID/status) and its
// goroutines (go_goroutines on /metrics, where vrouter exposes it) every
// 10 s, and says whether they stay flat.
func runSoak(driver string, d time.Duration, dir string) error {
	const every = 10 * time.Second
	v, err := parseVariant(driver)
	if err != nil {
		return err
	}
	tp, err := newTopo(v.driver)
	if err != nil {
		return err
	}
	defer tp.close()
	tp.v = v
	tp.metrics = true
	if err := tp.startRouter(""); err != nil {
		return fmt.Errorf("vrouter %s: %v", driver, err)
	}
	if err := tp.warm(false); err != nil {
		return err
	}
	rep := &soakReport{Date: time.Now().UTC().Format(time.RFC3339), Driver: driver, Duration: d.String()}
	// fromMetrics reads vrouter's goroutines and heap allocated bytes
	// (KiB) from its /metrics, -1 for what it does not show.
	fromMetrics := func() (gr, alloc int64) {
		gr, alloc = -1, -1
		out, err := tp.l.ExecTimeout(tp.R, 5*time.Second, "curl", "-s", "-m", "3", "http://127.0.0.1:9469/metrics")
		if err != nil {
			return
		}
		if m := goroutinesRe.FindStringSubmatch(out); m != nil {
			gr, _ = strconv.ParseInt(m[1], 10, 64)
		}
		if m := allocatedRe.FindStringSubmatch(out); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			alloc = int64(v / 1024)
		}
		return
	}
	if gr, _ := fromMetrics(); gr >= 0 {
		rep.GoroutineSource = "vrouter_goroutines on vrouter's /metrics"
	} else {
		rep.GoroutineSource = "not exposed: vrouter's /metrics has no go_goroutines and no console command shows goroutines; Threads from /proc/PID/status stands in"
	}
	fmt.Printf("soak: 64 B UDP over 10k flows through vrouter %s for %v, a sample every %v\n", driver, d, every)
	fmt.Printf("goroutines: %s\n", rep.GoroutineSource)

	gwMAC, err := tp.gatewayMAC(tp.C, clientGW)
	if err != nil {
		return err
	}
	myMAC, err := tp.l.Exec(tp.C, "cat", "/sys/class/net/eth0/address")
	if err != nil {
		return err
	}
	conf := filepath.Join(tp.l.Dir, "soak.trafgen")
	if err := os.WriteFile(conf, []byte(trafgenConf(gwMAC, strings.TrimSpace(myMAC), clientIP, udpSport)), 0o644); err != nil {
		return err
	}
	life := int(d/time.Second) + 15
	gen, err := tp.l.Start(tp.C, "soak-trafgen.log", "taskset", "-c", "0", "timeout", "-s", "INT", strconv.Itoa(life),
		"trafgen", "--dev", "eth0", "--conf", conf, "--cpus", "1", "--no-sock-mem", "--no-cpu-stats", "--ring-size", trafgenRing)
	if err != nil {
		return err
	}
	genDone := make(chan struct{})
	go func() { gen.Wait(); close(genDone) }()
	defer func() {
		gen.Process.Signal(os.Interrupt)
		<-genDone
	}()

	start := time.Now()
	firstN, err := tp.delivered()
	if err != nil {
		return err
	}
	lastN, lastT := firstN, start
	fmt.Printf("%7s %10s %8s %11s %14s %15s\n", "t (s)", "RSS (MiB)", "threads", "goroutines", "delivered kpps", "allocated KiB")
	for tick := 1; time.Since(start) < d; tick++ {
		time.Sleep(time.Until(start.Add(time.Duration(tick) * every)))
		select {
		case <-genDone:
			return fmt.Errorf("trafgen stopped early")
		default:
		}
		if tp.vr == nil {
			return fmt.Errorf("vrouter is gone")
		}
		select {
		case <-tp.vr.exited:
			return fmt.Errorf("vrouter exited during the soak: %s", firstError(tp.vr.Log()))
		default:
		}
		rss, thr := procStatus(tp.vr.pid)
		n, err := tp.delivered()
		if err != nil {
			return err
		}
		now := time.Now()
		gr, alloc := fromMetrics()
		s := soakSample{At: round(now.Sub(start).Seconds(), 1), RSSKiB: rss, Threads: thr, Goroutines: gr,
			DeliveredKpps: round(float64(n-lastN)/now.Sub(lastT).Seconds()/1000, 1), Delivered: uint64(n - firstN), AllocKiB: alloc}
		lastN, lastT = n, now
		rep.Samples = append(rep.Samples, s)
		g := "-"
		if s.Goroutines >= 0 {
			g = strconv.FormatInt(s.Goroutines, 10)
		}
		fmt.Printf("%7.0f %10.1f %8d %11s %14.1f %15d\n", s.At, float64(rss)/1024, thr, g, s.DeliveredKpps, alloc)
	}
	judgeSoak(rep)
	fmt.Print(soakText(rep))
	path := filepath.Join(dir, "soak.json")
	if err := writeJSON(rep, path); err != nil {
		return err
	}
	fmt.Println("wrote", path)
	return nil
}

// procStatus is VmRSS (KiB) and Threads of pid.
func procStatus(pid int) (rss, threads int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1, -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			rss, _ = strconv.ParseInt(f[0], 10, 64)
		case "Threads":
			threads, _ = strconv.ParseInt(f[0], 10, 64)
		}
	}
	return rss, threads
}

// judgeSoak compares the samples after a warm-up (the first minute, or the
// first sixth of a shorter soak) with the first sample after it: RSS is
// flat if it ends within 5% (or 2 MiB) of that sample; threads and
// goroutines if they end within 2.
func judgeSoak(r *soakReport) {
	if len(r.Samples) == 0 {
		return
	}
	last := r.Samples[len(r.Samples)-1]
	warm := math.Min(60, last.At/6)
	r.WarmupSeconds = warm
	i0 := 0
	for i, s := range r.Samples {
		if s.At >= warm {
			i0 = i
			break
		}
	}
	base := r.Samples[i0]
	r.RSSFirstKiB, r.RSSLastKiB = base.RSSKiB, last.RSSKiB
	r.ThreadsFirst, r.ThreadsLast = base.Threads, last.Threads
	var sumK float64
	var xs, ys []float64
	for _, s := range r.Samples[i0:] {
		if s.RSSKiB > r.RSSMaxKiB {
			r.RSSMaxKiB = s.RSSKiB
		}
		xs = append(xs, s.At/60)
		ys = append(ys, float64(s.RSSKiB))
	}
	for _, s := range r.Samples {
		sumK += s.DeliveredKpps
	}
	r.MeanKpps = round(sumK/float64(len(r.Samples)), 1)
	r.RSSSlopeKiBMin = round(slope(xs, ys), 1)
	allow := math.Max(0.05*float64(base.RSSKiB), 2048)
	r.RSSFlat = float64(last.RSSKiB-base.RSSKiB) <= allow
	r.ThreadsFlat = last.Threads-base.Threads <= 2
	if base.AllocKiB >= 0 && last.AllocKiB >= 0 {
		r.AllocAfterWarmupKiB = last.AllocKiB - base.AllocKiB
		if p := last.Delivered - base.Delivered; p > 0 {
			r.AllocPerPacket = round(float64(r.AllocAfterWarmupKiB)*1024/float64(p), 4)
		}
	}
	if base.Goroutines > 0 && last.Goroutines > 0 {
		r.GoroutinesFirst, r.GoroutinesLast = base.Goroutines, last.Goroutines
		flat := last.Goroutines-base.Goroutines <= 2
		r.GoroutinesFlat = &flat
	}
}

// slope is the least-squares slope of ys over xs.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

func soakText(r *soakReport) string {
	var b strings.Builder
	yes := map[bool]string{true: "flat", false: "NOT flat"}
	fmt.Fprintf(&b, "after a %.0f s warm-up: RSS %.1f -> %.1f MiB (max %.1f, slope %.0f KiB/min): %s; threads %d -> %d: %s",
		r.WarmupSeconds, float64(r.RSSFirstKiB)/1024, float64(r.RSSLastKiB)/1024, float64(r.RSSMaxKiB)/1024, r.RSSSlopeKiBMin,
		yes[r.RSSFlat], r.ThreadsFirst, r.ThreadsLast, yes[r.ThreadsFlat])
	if r.GoroutinesFlat != nil {
		fmt.Fprintf(&b, "; goroutines %d -> %d: %s", r.GoroutinesFirst, r.GoroutinesLast, yes[*r.GoroutinesFlat])
	} else {
		b.WriteString("; goroutines not exposed")
	}
	fmt.Fprintf(&b, "; heap allocated after the warm-up %d KiB (%.4f bytes per delivered packet)", r.AllocAfterWarmupKiB, r.AllocPerPacket)
	fmt.Fprintf(&b, "; mean %.1f kpps delivered\n", r.MeanKpps)
	return b.String()
}
