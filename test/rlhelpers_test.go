package test

// Helpers of the reliability tests (reliability_test.go, faults_test.go):
// a raw-frame generator that runs inside a lab namespace, and a watch of
// the established flows (a ping and a TCP stream) measured while a test
// abuses the router.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"vrouter/internal/nstest"
	"vrouter/test/lab"
)

// flood sends up to n frames made by build on device dev of namespace ns,
// through a raw AF_PACKET socket, paced at pps frames per second and
// stopped after max in any case. It returns the frames sent.
func flood(t *testing.T, ns, dev string, n, pps int, max time.Duration, build func(i int, rng *rand.Rand) []byte) int {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	sent := 0
	var ferr error
	nstest.In(t, h, func() {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			ferr = err
			return
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			ferr = err
			return
		}
		defer unix.Close(fd)
		sa := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 14))
		start := time.Now()
		for sent < n && time.Since(start) < max {
			// Pace by batches of 64: sleep until the schedule catches up.
			if sent%64 == 0 {
				if ahead := time.Duration(float64(sent)/float64(pps)*float64(time.Second)) - time.Since(start); ahead > 0 {
					time.Sleep(ahead)
				}
			}
			f := build(sent, rng)
			if err := unix.Sendto(fd, f, 0, sa); err != nil {
				if err == unix.ENOBUFS || err == unix.EAGAIN {
					time.Sleep(time.Millisecond)
					continue
				}
				ferr = err
				return
			}
			sent++
		}
	})
	if ferr != nil {
		t.Fatalf("flood on %s/%s: %v", ns, dev, ferr)
	}
	return sent
}

// macOf reads the MAC of dev in ns.
func macOf(t *testing.T, l *lab.Lab, ns, dev string) net.HardwareAddr {
	t.Helper()
	out, err := l.Exec(ns, "cat", "/sys/class/net/"+dev+"/address")
	if err != nil {
		t.Fatal(err)
	}
	m, err := net.ParseMAC(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// frameBuf serialises layers for a generator (one buffer per generator;
// the frame is copied by the send).
type frameBuf struct{ b gopacket.SerializeBuffer }

func newFrameBuf() *frameBuf { return &frameBuf{gopacket.NewSerializeBuffer()} }

func (f *frameBuf) make(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	if err := gopacket.SerializeLayers(f.b, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Errorf("serialize: %v", err)
	}
	return f.b.Bytes()
}

// ipv4 is the IPv4 header of a generated packet.
func ipv4(src, dst net.IP, proto layers.IPProtocol, ttl uint8) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Protocol: proto, SrcIP: src, DstIP: dst}
}

// ip4 makes a.b.c.d from a prefix's first two bytes and a 16-bit host part.
func ip4(a, b byte, host uint16) net.IP {
	return net.IPv4(a, b, byte(host>>8), byte(host)).To4()
}

// watch measures the established flows while a test runs: a ping every
// 20 ms and an iperf3 TCP stream, both for d.
type watch struct {
	name    string
	pingc   chan pingResult
	streamc chan streamResult
}

type pingResult struct {
	Sent, Received int
	Loss           float64       // percent
	MaxGap         time.Duration // longest time without a reply (from the first reply)
	err            error
}

type streamResult struct {
	MeanMbps, MinMbps float64 // over the run, and the worst 0.5 s interval
	Retransmits       int
	err               error
}

var pingReply = regexp.MustCompile(`^\[(\d+\.\d+)\] \d+ bytes from`)
var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// startWatch pings pingDst from pingNS and streams TCP from streamNS to an
// iperf3 server started in serverNS on streamDst (port 5201+), for d.
func startWatch(t *testing.T, l *lab.Lab, name, pingNS, pingDst, streamNS, serverNS, streamDst string, d time.Duration) *watch {
	t.Helper()
	w := &watch{name: name, pingc: make(chan pingResult, 1), streamc: make(chan streamResult, 1)}
	secs := strconv.Itoa(int(d / time.Second))
	go func() {
		out, err := l.ExecTimeout(pingNS, d+20*time.Second, "ping", "-D", "-i", "0.02", "-W", "1", "-w", secs, pingDst)
		w.pingc <- parsePing(out, err)
	}()
	if streamNS == "" {
		close(w.streamc)
		return w
	}
	port := strconv.Itoa(5300 + int(seqPort.Add(1)%500))
	iperfServer(t, l, serverNS, port)
	time.Sleep(300 * time.Millisecond)
	go func() {
		out, err := l.ExecTimeout(streamNS, d+30*time.Second, "iperf3", "-c", streamDst, "-p", port, "-t", secs, "-i", "0.5", "-J")
		w.streamc <- parseIperf(out, err)
	}()
	return w
}

func parsePing(out string, err error) pingResult {
	var r pingResult
	m := pingSummary.FindStringSubmatch(out)
	if m == nil {
		r.err = fmt.Errorf("ping: no summary (%v):\n%s", err, out)
		return r
	}
	r.Sent, _ = strconv.Atoi(m[1])
	r.Received, _ = strconv.Atoi(m[2])
	if r.Sent > 0 {
		r.Loss = 100 * float64(r.Sent-r.Received) / float64(r.Sent)
	}
	var last float64
	for _, line := range strings.Split(out, "\n") {
		mm := pingReply.FindStringSubmatch(line)
		if mm == nil {
			continue
		}
		ts, _ := strconv.ParseFloat(mm[1], 64)
		if last != 0 && ts-last > r.MaxGap.Seconds() {
			r.MaxGap = time.Duration((ts - last) * float64(time.Second))
		}
		last = ts
	}
	return r
}

func parseIperf(out string, err error) streamResult {
	var r streamResult
	var j struct {
		Intervals []struct {
			Sum struct {
				BPS float64 `json:"bits_per_second"`
			} `json:"sum"`
		} `json:"intervals"`
		End struct {
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
			SumReceived struct {
				BPS float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if e := json.Unmarshal([]byte(out), &j); e != nil || j.Error != "" || len(j.Intervals) == 0 {
		r.err = fmt.Errorf("iperf3: %v %v %s", err, e, j.Error)
		return r
	}
	r.MeanMbps = j.End.SumReceived.BPS / 1e6
	r.MinMbps = -1
	// The last interval may be a fraction; leave it out when there are more.
	iv := j.Intervals
	if len(iv) > 2 {
		iv = iv[:len(iv)-1]
	}
	for _, x := range iv {
		if v := x.Sum.BPS / 1e6; r.MinMbps < 0 || v < r.MinMbps {
			r.MinMbps = v
		}
	}
	r.Retransmits = j.End.SumSent.Retransmits
	return r
}

// flowBounds are what the established flows must have seen.
type flowBounds struct {
	MaxLoss    float64       // ping loss, percent
	MaxGap     time.Duration // ping
	MinStreamM float64       // worst 0.5 s interval of the TCP stream, Mbit/s
}

// (generous: the machine that runs them is shared and busy.)
var defaultBounds = flowBounds{MaxLoss: 5, MaxGap: 2 * time.Second, MinStreamM: 1}

// wait collects the measurements, prints them and checks them against b.
func (w *watch) wait(t *testing.T, b flowBounds) (pingResult, streamResult) {
	t.Helper()
	p := <-w.pingc
	s, streamed := <-w.streamc
	line := fmt.Sprintf("RESULT %s: ping %d/%d received, loss %.1f%%, max gap %v", w.name, p.Received, p.Sent, p.Loss, p.MaxGap.Round(time.Millisecond))
	if streamed {
		line += fmt.Sprintf("; TCP stream mean %.0f Mbit/s, worst 0.5 s %.0f Mbit/s, %d retransmits", s.MeanMbps, s.MinMbps, s.Retransmits)
	}
	t.Log(line)
	if p.err != nil {
		t.Error(p.err)
	} else if p.Loss > b.MaxLoss || p.MaxGap > b.MaxGap {
		t.Errorf("%s: ping loss %.1f%% (max %.1f), gap %v (max %v)", w.name, p.Loss, b.MaxLoss, p.MaxGap, b.MaxGap)
	}
	if streamed {
		if s.err != nil {
			t.Error(s.err)
		} else if s.MinMbps < b.MinStreamM {
			t.Errorf("%s: the TCP stream stalled: worst 0.5 s interval %.1f Mbit/s (min %.1f)", w.name, s.MinMbps, b.MinStreamM)
		}
	}
	return p, s
}

// sampler reads a value from the router every 200 ms until stopped and
// keeps the largest seen (a bound that must hold throughout a flood).
type sampler struct {
	stop chan struct{}
	done chan uint64
}

func sampleMax(get func() (uint64, bool)) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan uint64, 1)}
	go func() {
		var max uint64
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			if v, ok := get(); ok && v > max {
				max = v
			}
			select {
			case <-s.stop:
				s.done <- max
				return
			case <-tk.C:
			}
		}
	}()
	return s
}

func (s *sampler) max() uint64 { close(s.stop); return <-s.done }

// statsAll is show stats -j with every stage.
type statsAll struct {
	Counters map[string]uint64 `json:"counters"`
	Drops    map[string]uint64 `json:"drops"`
	Stages   map[string]struct {
		Drops  map[string]uint64 `json:"drops"`
		Events map[string]uint64 `json:"events"`
		Gauges map[string]uint64 `json:"gauges"`
	} `json:"stages"`
}

func statsOf(r *lab.Router) (statsAll, error) {
	var s statsAll
	out, err := r.Console("-j", "show", "stats")
	if err != nil {
		return s, fmt.Errorf("%v: %s", err, out)
	}
	return s, json.Unmarshal([]byte(out), &s)
}

func mustStats(t *testing.T, r *lab.Router) statsAll {
	t.Helper()
	s, err := statsOf(r)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stage returns counter name of stage (any kind).
func (s statsAll) stage(stage, name string) uint64 {
	st := s.Stages[stage]
	if v, ok := st.Drops[name]; ok {
		return v
	}
	if v, ok := st.Events[name]; ok {
		return v
	}
	return st.Gauges[name]
}

// gauge reads one stage counter from a fresh show stats (false on error).
func gauge(r *lab.Router, stage, name string) func() (uint64, bool) {
	return func() (uint64, bool) {
		s, err := statsOf(r)
		if err != nil {
			return 0, false
		}
		return s.stage(stage, name), true
	}
}

// sortedKeys is for stable logs.
func sortedKeys(m map[string]uint64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// seqPort numbers the iperf3 servers of the watches.
var seqPort atomic.Uint32
