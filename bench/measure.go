package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// trafgenConf is one 64-byte frame (60 bytes + the FCS a wire would add):
// Ethernet, IPv4, UDP to the discard port with 18 bytes of payload; the
// source port runs over 10,000 values from sport, so 10,000 flows (and
// 10,000 SNAT sessions). trafgen fills in the lengths and checksums.
func trafgenConf(dstMAC, srcMAC, srcIP string, sport int) string {
	return fmt.Sprintf(`{
  eth(da=%s, sa=%s),
  ipv4(sa=%s, da=%s, ttl=64),
  udp(sp=dinc(%d, %d), dp=%d),
  fill(0x00, 18)
}
`, dstMAC, srcMAC, srcIP, serverIP, sport, sport+udpFlows-1, udpPort)
}

// The benchmark's UDP flows: udpFlows source ports from udpSport; the
// filter case uses ranges of its own (filterSport), new in every round.
const (
	udpFlows = 10000
	udpSport = 10000
)

// udpResult is one 64-byte UDP load.
type udpResult struct {
	OfferedKpps   float64     `json:"offered_kpps"`       // what trafgen got onto its veth
	Restarts      int         `json:"restarts,omitempty"` // trafgen runs that quit early and were run again
	DeliveredKpps float64     `json:"delivered_kpps"`     // what reached the server, translated
	Ping          *pingResult `json:"ping,omitempty"`
	Cost          *costResult `json:"vrouter_cost,omitempty"`
}

// pingResult is ping every 10 ms under the load.
type pingResult struct {
	Sent     int     `json:"sent"`
	Received int     `json:"received"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
}

// costResult is what vrouter spent per forwarded packet under the load.
type costResult struct {
	CPUNsPerPacket        float64 `json:"cpu_ns_per_packet"`
	CyclesPerPacket       float64 `json:"cycles_per_packet"`
	CyclesSource          string  `json:"cycles_source"` // "perf cycles" or "CPU time x nominal MHz"
	SyscallsPerPacket     float64 `json:"syscalls_per_packet,omitempty"`
	CtxSwitchesPerKPacket float64 `json:"context_switches_per_1k_packets,omitempty"`
	CPUUtilization        float64 `json:"cpu_utilization"` // CPUs busy (1.0 = one CPU)
	Note                  string  `json:"note,omitempty"`
}

// udpLoad runs trafgen pinned to CPU 0 in ns on dev for warmup + secs (+
// the cost window), counting delivered packets at the server over the
// measured window. withPing pings the server from ns meanwhile; withCost
// measures vrouter's CPU, syscalls and context switches per packet in a
// window of its own after the measured one (so the tracing does not touch
// the figure).
func (t *topo) udpLoad(ns, dev, srcIP, gw string, sport, secs int, withPing, withCost bool) (*udpResult, error) {
	// trafgen exits when a send of its TX_RING finds the socket's send
	// buffer full ("Flushing TX_RING failed: Resource temporarily
	// unavailable"). With an XDP program on the veth's peer the kernel
	// holds the frames longer (the peer's NAPI copies them), so it happens
	// there, in the warm-up or in the middle of the window. That says
	// nothing of the router: such a run is done again, twice at most.
	for try := 1; ; try++ {
		r, err := t.udpLoadOnce(ns, dev, srcIP, gw, sport, secs, withPing, withCost)
		if err == nil || !errors.Is(err, errTrafgenStopped) || try == 3 {
			if r != nil {
				r.Restarts = try - 1
			}
			return r, err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// trafgenRing is trafgen's TX_RING: 128 frames of 2 KiB. Its default (256)
// is about as many 64-byte frames as the socket's default send buffer holds
// (212,992 bytes at ~830 bytes of truesize each); with an XDP program on the
// veth's peer the frames stay charged to the socket until the peer's NAPI has
// copied them, the buffer fills and trafgen exits on EAGAIN. With 128 frames
// in flight at most it cannot fill (the buffer is global, net.core.wmem_*,
// so the benchmark does not raise it).
const trafgenRing = "256KiB"

// errTrafgenStopped: trafgen exited before the end of the measured window.
var errTrafgenStopped = errors.New("trafgen stopped")

func (t *topo) udpLoadOnce(ns, dev, srcIP, gw string, sport, secs int, withPing, withCost bool) (*udpResult, error) {
	gwMAC, err := t.gatewayMAC(ns, gw)
	if err != nil {
		return nil, err
	}
	myMAC, err := t.l.Exec(ns, "cat", "/sys/class/net/"+dev+"/address")
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(t.l.Dir, "udp64-"+filepath.Base(ns)+".trafgen")
	if err := os.WriteFile(conf, []byte(trafgenConf(gwMAC, strings.TrimSpace(myMAC), srcIP, sport)), 0o644); err != nil {
		return nil, err
	}
	const warmup = time.Second
	costWin := 0
	if withCost && t.vr != nil {
		costWin = 2
	}
	life := int(warmup/time.Second) + secs + costWin + 3
	gen, err := t.l.Start(ns, "trafgen-"+filepath.Base(ns)+".log", "taskset", "-c", "0",
		"timeout", "-s", "INT", strconv.Itoa(life), "trafgen", "--dev", dev, "--conf", conf,
		"--cpus", "1", "--no-sock-mem", "--no-cpu-stats", "--ring-size", trafgenRing)
	if err != nil {
		return nil, err
	}
	genDone := make(chan struct{})
	go func() { gen.Wait(); close(genDone) }()
	defer func() {
		gen.Process.Signal(os.Interrupt)
		select {
		case <-genDone:
		case <-time.After(5 * time.Second):
			gen.Process.Kill()
			<-genDone
		}
	}()
	time.Sleep(warmup)
	select {
	case <-genDone:
		b, _ := os.ReadFile(filepath.Join(t.l.Dir, "trafgen-"+filepath.Base(ns)+".log"))
		return nil, fmt.Errorf("%w: %s", errTrafgenStopped, strings.TrimSpace(string(b)))
	default:
	}

	var pingOut chan string
	if withPing {
		pingOut = make(chan string, 1)
		n := secs * 100
		go func() {
			out, _ := t.l.ExecTimeout(ns, time.Duration(2*secs+5)*time.Second, "ping", "-n", "-i", "0.01", "-c", strconv.Itoa(n), "-W", "1", serverIP)
			pingOut <- out
		}()
	}
	d0, o0, cpu0, at0, err := t.udpSample(ns, dev)
	if err != nil {
		return nil, err
	}
	time.Sleep(time.Duration(secs) * time.Second)
	d1, o1, cpu1, at1, err := t.udpSample(ns, dev)
	if err != nil {
		return nil, err
	}
	select {
	case <-genDone:
		// trafgen quit inside the window (the same EAGAIN as above): the
		// figure would measure its exit, not the router.
		b, _ := os.ReadFile(filepath.Join(t.l.Dir, "trafgen-"+filepath.Base(ns)+".log"))
		return nil, fmt.Errorf("%w in the measured window: %s", errTrafgenStopped, strings.TrimSpace(string(b)))
	default:
	}
	el := at1.Sub(at0).Seconds()
	res := &udpResult{DeliveredKpps: float64(d1-d0) / el / 1000, OfferedKpps: float64(o1-o0) / el / 1000}
	if withPing {
		p := parsePing(<-pingOut)
		res.Ping = &p
	}
	if costWin > 0 {
		c, err := t.cost(ns, dev, costWin)
		if err != nil {
			c = &costResult{Note: err.Error()}
		}
		if cpu0 >= 0 && cpu1 >= 0 && d1 > d0 {
			cpuNs := float64(cpu1-cpu0) * 1e9 / float64(clockTicks)
			if c.CPUNsPerPacket == 0 {
				c.CPUNsPerPacket = cpuNs / float64(d1-d0)
				c.CPUUtilization = cpuNs / 1e9 / el
				c.CyclesPerPacket = c.CPUNsPerPacket * cpuMHz() / 1000
				c.CyclesSource = "CPU time x nominal MHz"
			}
		}
		res.Cost = c
	}
	return res, nil
}

// udpSample reads the server's delivered counter, ns's transmitted frames
// on dev (sent + dropped by the veth) and vrouter's CPU ticks (-1 without
// vrouter), and when (the middle of the reads).
func (t *topo) udpSample(ns, dev string) (delivered, offered, cpu int64, at time.Time, err error) {
	start := time.Now()
	if delivered, err = t.delivered(); err != nil {
		return
	}
	if offered, err = t.txFrames(ns, dev); err != nil {
		return
	}
	cpu = -1
	if t.vr != nil {
		cpu = procCPUTicks(t.vr.pid)
	}
	end := time.Now()
	at = start.Add(end.Sub(start) / 2)
	return
}

var counterRe = regexp.MustCompile(`packets (\d+)`)

// delivered is the server's count of translated benchmark UDP packets.
func (t *topo) delivered() (int64, error) {
	out, err := t.l.Exec(t.S, "nft", "list", "counter", "netdev", "bench_count", "delivered")
	if err != nil {
		return 0, err
	}
	m := counterRe.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("nft counter: %q", out)
	}
	return strconv.ParseInt(m[1], 10, 64)
}

// txFrames is dev's transmitted plus transmit-dropped frames in ns, from
// /proc/net/dev.
func (t *topo) txFrames(ns, dev string) (int64, error) {
	out, err := t.l.Exec(ns, "cat", "/proc/net/dev")
	if err != nil {
		return 0, err
	}
	return parseProcNetDevTx(out, dev)
}

func parseProcNetDevTx(out, dev string) (int64, error) {
	for _, line := range strings.Split(out, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != dev {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 12 {
			break
		}
		pk, err1 := strconv.ParseInt(f[9], 10, 64)
		dr, err2 := strconv.ParseInt(f[11], 10, 64)
		if err1 != nil || err2 != nil {
			break
		}
		return pk + dr, nil
	}
	return 0, fmt.Errorf("no %s in /proc/net/dev", dev)
}

const clockTicks = 100 // USER_HZ on Linux

// procCPUTicks is utime+stime of pid in clock ticks (-1 if unreadable).
func procCPUTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name may hold spaces; fields count from after ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return -1
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

var mhzRe = regexp.MustCompile(`(?m)^cpu MHz\s*:\s*([\d.]+)`)

// cpuMHz is the first CPU's clock from /proc/cpuinfo (0 if unknown).
func cpuMHz() float64 {
	b, _ := os.ReadFile("/proc/cpuinfo")
	if m := mhzRe.FindSubmatch(b); m != nil {
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	return 0
}

// cost counts, with perf stat over secs seconds, vrouter's CPU time,
// cycles (where the machine exposes them), syscalls and context switches,
// and divides by the packets delivered meanwhile.
func (t *topo) cost(ns, dev string, secs int) (*costResult, error) {
	if _, err := exec.LookPath("perf"); err != nil {
		return nil, fmt.Errorf("perf not found: syscalls per packet not measured")
	}
	d0, err := t.delivered()
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+10)*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "perf", "stat", "-x", ",", "-e", "task-clock,cycles,context-switches,raw_syscalls:sys_enter",
		"-p", strconv.Itoa(t.vr.pid), "--", "sleep", strconv.Itoa(secs)).CombinedOutput()
	el := time.Since(t0).Seconds()
	d1, err2 := t.delivered()
	if err != nil {
		return nil, fmt.Errorf("perf stat: %v: %s", err, out)
	}
	if err2 != nil {
		return nil, err2
	}
	pk := float64(d1 - d0)
	if pk <= 0 {
		return nil, fmt.Errorf("no packet delivered in the cost window")
	}
	ev := parsePerfCSV(string(out))
	c := &costResult{}
	if ms, ok := ev["task-clock"]; ok {
		c.CPUNsPerPacket = ms * 1e6 / pk
		c.CPUUtilization = ms / 1000 / el
	}
	if cy, ok := ev["cycles"]; ok && cy > 0 {
		c.CyclesPerPacket = cy / pk
		c.CyclesSource = "perf cycles"
	} else {
		c.CyclesPerPacket = c.CPUNsPerPacket * cpuMHz() / 1000
		c.CyclesSource = fmt.Sprintf("CPU time x nominal %.0f MHz (no cycle counter)", cpuMHz())
	}
	if v, ok := ev["raw_syscalls:sys_enter"]; ok {
		c.SyscallsPerPacket = v / pk
	}
	if v, ok := ev["context-switches"]; ok {
		c.CtxSwitchesPerKPacket = v / pk * 1000
	}
	return c, nil
}

// parsePerfCSV maps event name to value from `perf stat -x ,` output;
// events perf could not count are left out.
func parsePerfCSV(out string) map[string]float64 {
	ev := map[string]float64{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue // <not supported>, <not counted>
		}
		ev[f[2]] = v
	}
	return ev
}

var pingTimeRe = regexp.MustCompile(`time=([\d.]+) ms`)
var pingSumRe = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// parsePing reads ping's per-reply times and summary.
func parsePing(out string) pingResult {
	var ms []float64
	for _, m := range pingTimeRe.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		ms = append(ms, v)
	}
	var p pingResult
	if m := pingSumRe.FindStringSubmatch(out); m != nil {
		p.Sent, _ = strconv.Atoi(m[1])
		p.Received, _ = strconv.Atoi(m[2])
	} else {
		p.Received = len(ms)
	}
	if len(ms) == 0 {
		return p
	}
	sort.Float64s(ms)
	p.P50Ms = percentile(ms, 50)
	p.P99Ms = percentile(ms, 99)
	p.MaxMs = ms[len(ms)-1]
	return p
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []float64, pct float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	r := int(math.Ceil(pct / 100 * float64(len(sorted))))
	if r < 1 {
		r = 1
	}
	return sorted[r-1]
}

// waitListen waits until something listens on TCP port in ns.
func (t *topo) waitListen(ns string, port int) error {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := t.l.Exec(ns, "ss", "-Hltn", fmt.Sprintf("sport = :%d", port))
		if strings.TrimSpace(out) != "" {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on port %d in %s", port, ns)
}

// iperfTCP runs one iperf3 TCP stream from ns to the server for secs
// seconds (after one omitted second of slow start) and returns Gbit/s
// received.
func (t *topo) iperfTCP(ns, server string, secs int) (float64, error) {
	srv, err := t.l.Start(t.S, fmt.Sprintf("iperf3-%d.log", time.Now().UnixNano()), "timeout", strconv.Itoa(secs+20),
		"iperf3", "-s", "-1", "-B", server)
	if err != nil {
		return 0, err
	}
	srvDone := make(chan struct{})
	go func() { srv.Wait(); close(srvDone) }()
	defer func() {
		select {
		case <-srvDone:
		case <-time.After(3 * time.Second):
			srv.Process.Signal(os.Interrupt)
			<-srvDone
		}
	}()
	if err := t.waitListen(t.S, 5201); err != nil {
		return 0, err
	}
	t.tcpCPUPerGB = 0
	cpu0 := int64(-1)
	if t.vr != nil {
		cpu0 = procCPUTicks(t.vr.pid)
	}
	out, err := t.l.ExecTimeout(ns, time.Duration(secs+15)*time.Second, "iperf3", "-c", server, "-t", strconv.Itoa(secs), "-O", "1", "-J")
	if err != nil {
		if _, perr := parseIperf(out); perr != nil {
			return 0, perr
		}
		return 0, fmt.Errorf("iperf3: %v", firstLine(err.Error()))
	}
	gbps, err := parseIperf(out)
	if cpu0 >= 0 && err == nil && gbps > 0 {
		if cpu1 := procCPUTicks(t.vr.pid); cpu1 >= cpu0 {
			// The omitted second's CPU is in, its bytes are not: the
			// same bias for every router.
			gb := gbps / 8 * float64(secs+1)
			t.tcpCPUPerGB = float64(cpu1-cpu0) / clockTicks / gb
		}
	}
	return gbps, err
}

func parseIperf(out string) (float64, error) {
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return 0, fmt.Errorf("iperf3 output: %v", err)
	}
	if r.Error != "" {
		return 0, fmt.Errorf("iperf3: %s", r.Error)
	}
	return r.End.SumReceived.BitsPerSecond / 1e9, nil
}

// connRate runs the connect/close loop from the client for secs seconds
// against the accept/close server and returns connections per second.
func (t *topo) connRate(secs int) (*connResult, error) {
	bin, err := self()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("%s:%d", serverIP, connPort)
	srv, err := t.l.Start(t.S, fmt.Sprintf("connserver-%d.log", time.Now().UnixNano()), bin, "_connserver", "-addr", addr, "-d", strconv.Itoa(secs+20)+"s")
	if err != nil {
		return nil, err
	}
	srvDone := make(chan struct{})
	go func() { srv.Wait(); close(srvDone) }()
	defer func() {
		srv.Process.Signal(os.Interrupt)
		select {
		case <-srvDone:
		case <-time.After(3 * time.Second):
			srv.Process.Kill()
			<-srvDone
		}
	}()
	if err := t.waitListen(t.S, connPort); err != nil {
		return nil, err
	}
	out, err := t.l.ExecTimeout(t.C, time.Duration(secs+10)*time.Second, bin, "_connclient", "-addr", addr, "-d", strconv.Itoa(secs)+"s", "-c", "8")
	if err != nil {
		return nil, fmt.Errorf("connection client: %v", firstLine(err.Error()))
	}
	var r connResult
	if err := json.Unmarshal([]byte(lastLine(out)), &r); err != nil {
		return nil, fmt.Errorf("connection client output %q: %v", out, err)
	}
	return &r, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}
