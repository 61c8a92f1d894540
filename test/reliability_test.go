package test

// Reliability under exhaustion (issue 14): each test abuses one of the
// router's bounded resources with a generator of raw frames (bounded in
// count and time) while an established TCP stream and a ping are measured
// throughout; it prints their loss and gap (RESULT lines, the README's
// reliability table) and checks the bound held and the counters say so.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/test/lab"
)

// newRLNAT is the NAT lab (lab.NATTopo) running cfg, with an HTTP-ish
// server on srv:80 for new connections.
func newRLNAT(t *testing.T, cfg string) *natTopo {
	t.Helper()
	needRoot(t)
	nt, err := lab.NATConfigured("rl", cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := &natTopo{NATTopo: nt}
	cleanupLab(t, n.Router, n.Close)
	n.server(t, n.Srv, "198.51.100.10", "80", "PEER")
	// 198.51.100.128/25 is a black hole beyond the upstream router: what
	// the generators send there is never answered.
	if _, err := n.Exec(n.Up, "ip", "route", "add", "blackhole", "198.51.100.128/25"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	return n
}

func okOr(err error) string {
	if err == nil {
		return "connected"
	}
	return "refused (" + strings.SplitN(err.Error(), "\n", 2)[0] + ")"
}

// tryGet is get that returns the error instead of failing.
func (n *natTopo) tryGet(ns, addr, port, bind string) (string, error) {
	target := "TCP:" + addr + ":" + port + ",connect-timeout=2"
	if bind != "" {
		target += ",bind=" + bind
	}
	out, err := n.ExecTimeout(ns, 8*time.Second, "socat", "-T", "2", "-", target)
	return strings.TrimSpace(out), err
}

// A SYN flood from random inside sources and ports through SNAT, fifteen
// times [conntrack] max: the table stays at max, unanswered sessions are
// evicted to make room (so new legitimate flows still get in), the rest is
// refused and counted; the established stream and ping go on.
func TestReliabilitySYNFlood(t *testing.T) {
	const max, n0, pps = 2000, 30000, 10000
	n := newRLNAT(t, strings.Replace(lab.NATConfig, "max = 65536", fmt.Sprintf("max = %d", max), 1))
	rmac, smac := macOf(t, n.Lab, n.R, "r-in2"), macOf(t, n.Lab, n.In2, "eth0")
	w := startWatch(t, n.Lab, "syn-flood", n.In1, "198.51.100.10", n.In2, n.Srv, "198.51.100.10", 8*time.Second)
	time.Sleep(time.Second)
	peak := sampleMax(gauge(n.Router, "nat", "nat-sessions"))
	fb := newFrameBuf()
	during := make(chan error, 1)
	go func() {
		// A new flow in the middle of the flood competes with the SYNs for
		// the sessions old enough to evict: reported, not required.
		time.Sleep(1500 * time.Millisecond)
		_, err := n.tryGet(n.In2, "198.51.100.10", "80", "")
		during <- err
	}()
	start := time.Now()
	sent := flood(t, n.In2, "eth0", n0, pps, 10*time.Second, func(i int, rng *rand.Rand) []byte {
		ip := ipv4(ip4(10, 1, uint16(0x8000|rng.IntN(0x8000))), ip4(198, 51, uint16(100<<8|128+rng.IntN(128))), layers.IPProtocolTCP, 64)
		tcp := &layers.TCP{SrcPort: layers.TCPPort(1024 + rng.IntN(60000)), DstPort: 80, SYN: true, Seq: rng.Uint32(), Window: 1024}
		tcp.SetNetworkLayerForChecksum(ip)
		return fb.make(t, &layers.Ethernet{SrcMAC: smac, DstMAC: rmac, EthernetType: layers.EthernetTypeIPv4}, ip, tcp)
	})
	dur := time.Since(start)
	// Right after the flood the unanswered sessions are evicted for new
	// flows: one gets in at once, without waiting for their timeouts.
	t0 := time.Now()
	if got, err := n.tryGet(n.In2, "198.51.100.10", "80", ""); err != nil || got != "203.0.113.1" {
		t.Errorf("a new flow right after the flood: %q %v", got, err)
	}
	after := time.Since(t0)
	duringErr := <-during
	top := peak.max()
	w.wait(t, defaultBounds)
	st := mustStats(t, n.Router)
	created, evicted, full := st.stage("nat", "nat-sessions-created"), st.stage("nat", "nat-sessions-evicted"), st.stage("nat", "nat-table-full")
	t.Logf("RESULT syn-flood: %d SYNs in %v (random sources and ports, max %d): sessions peak %d, created %d, evicted %d, table-full %d; a new flow during the flood: %v; right after it: connected in %v",
		sent, dur.Round(time.Millisecond), max, top, created, evicted, full, okOr(duringErr), after.Round(time.Millisecond))
	if top > max {
		t.Errorf("sessions reached %d, over max %d", top, max)
	}
	if evicted == 0 || full == 0 {
		t.Errorf("want evictions and table-full drops: evicted %d, table-full %d", evicted, full)
	}
	if created+full < uint64(sent)*9/10 {
		t.Errorf("created %d + refused %d do not account for the %d SYNs", created, full, sent)
	}
	out, err := n.Router.Console("show", "nat")
	if err != nil {
		t.Fatal(err)
	}
	contains(t, out, fmt.Sprintf("of %d", max))
	contains(t, out, "nat-sessions-evicted")
	contains(t, out, "nat-table-full")
}

// One inside host opens far more flows than its SNAT address has ports:
// its new flows are refused and counted on that address (show nat's
// EXHAUSTED), its established flow and the other hosts' flows go on. No
// ICMP is sent for a refused flow (the README says why).
func TestReliabilitySNATPortExhaustion(t *testing.T) {
	const ports, flows = 100, 5000
	cfg := strings.Replace(lab.NATConfig, "[[nat.snat]]", `[[nat.snat]]
source = "10.1.2.7/32"
out    = "public"
to     = "203.0.113.3"
ports  = "30000-30099"

[[nat.snat]]`, 1)
	n := newRLNAT(t, cfg)
	rmac, smac := macOf(t, n.Lab, n.R, "r-in2"), macOf(t, n.Lab, n.In2, "eth0")
	// The established stream is the greedy host's own (bound to .7); the
	// ping is the floating IP's host.
	w := startWatch(t, n.Lab, "snat-port-exhaustion", n.In1, "198.51.100.10", "", "", "", 6*time.Second)
	port := "5399"
	iperfServer(t, n.Lab, n.Srv, port)
	time.Sleep(300 * time.Millisecond)
	streamc := make(chan streamResult, 1)
	go func() {
		out, err := n.ExecTimeout(n.In2, 40*time.Second, "iperf3", "-c", "198.51.100.10", "-B", "10.1.2.7", "-p", port, "-t", "6", "-i", "0.5", "-J")
		streamc <- parseIperf(out, err)
	}()
	time.Sleep(time.Second)
	fb := newFrameBuf()
	sent := flood(t, n.In2, "eth0", flows, 5000, 5*time.Second, func(i int, rng *rand.Rand) []byte {
		ip := ipv4(net.IPv4(10, 1, 2, 7).To4(), ip4(198, 51, uint16(100<<8|128+rng.IntN(128))), layers.IPProtocolUDP, 64)
		udp := &layers.UDP{SrcPort: layers.UDPPort(10000 + i), DstPort: 53}
		udp.SetNetworkLayerForChecksum(ip)
		return fb.make(t, &layers.Ethernet{SrcMAC: smac, DstMAC: rmac, EthernetType: layers.EthernetTypeIPv4}, ip, udp, &layers.DNS{})
	})
	// The pools are per protocol: the greedy host's UDP pool is full (its
	// refused flows are counted below); other hosts get new flows.
	if got, err := n.tryGet(n.In2, "198.51.100.10", "80", "10.1.2.6"); err != nil || got != "203.0.113.1" {
		t.Errorf("another host's new flow during the exhaustion: %q %v", got, err)
	}
	if got, err := n.tryGet(n.In1, "198.51.100.10", "80", ""); err != nil || got != "203.0.113.50" {
		t.Errorf("the floating IP's new flow during the exhaustion: %q %v", got, err)
	}
	w.wait(t, defaultBounds)
	s := <-streamc
	t.Logf("RESULT snat-port-exhaustion stream of the greedy host: mean %.0f Mbit/s, worst 0.5 s %.0f Mbit/s, %d retransmits", s.MeanMbps, s.MinMbps, s.Retransmits)
	if s.err != nil || s.MinMbps < 1 {
		t.Errorf("the greedy host's established stream: %+v", s)
	}
	st := mustStats(t, n.Router)
	oop := st.stage("nat", "nat-out-of-ports")
	out, err := n.Router.Console("-j", "show", "nat")
	if err != nil {
		t.Fatal(err)
	}
	var nj struct {
		SNAT []struct {
			Pools []struct {
				Addr      string `json:"address"`
				Proto     string `json:"proto"`
				Used      int    `json:"ports_used"`
				Size      int    `json:"ports_total"`
				Exhausted uint64 `json:"exhausted"`
			} `json:"pools"`
		} `json:"snat"`
	}
	if err := json.Unmarshal([]byte(out), &nj); err != nil {
		t.Fatalf("show nat -j: %v\n%s", err, out)
	}
	var greedy, other string
	var exhausted, otherExhausted uint64
	for _, r := range nj.SNAT {
		for _, p := range r.Pools {
			line := fmt.Sprintf("%s/%s %d of %d used, exhausted %d", p.Addr, p.Proto, p.Used, p.Size, p.Exhausted)
			if p.Addr == "203.0.113.3" && p.Proto == "udp" {
				greedy, exhausted = line, p.Exhausted
				if p.Used != ports {
					t.Errorf("greedy pool: %s, want all %d used", line, ports)
				}
			}
			if p.Addr == "203.0.113.1" {
				other += line + "; "
				otherExhausted += p.Exhausted
			}
		}
	}
	t.Logf("RESULT snat-port-exhaustion: %d UDP flows from 10.1.2.7 (pool %d ports): nat-out-of-ports %d; pool %s; other pool %s", sent, ports, oop, greedy, other)
	if exhausted < uint64(sent-ports)*9/10 || oop < exhausted {
		t.Errorf("refused flows not counted on the address: exhausted %d, out-of-ports %d, sent %d", exhausted, oop, sent)
	}
	if otherExhausted != 0 {
		t.Errorf("the other address's pool counted exhaustion: %s", other)
	}
}

// A scan of every address of a connected /16 from an inside host: the
// router resolves each (one request per target per second, three tries,
// at most [neighbor] request_rate requests per second in all), the
// neighbour table stays at [neighbor] max with the live next hops in it,
// the refused entries and the requests are counted.
func TestReliabilityARPScan(t *testing.T) {
	const nmax, rate = 1024, 200
	cfg := strings.Replace(lab.NATConfig, `addresses = ["10.1.2.1/24"]`, `addresses = ["10.1.2.1/24", "10.2.0.1/16"]`, 1) +
		fmt.Sprintf("\n[neighbor]\nmax = %d\nrequest_rate = %d\n", nmax, rate)
	n := newRLNAT(t, cfg)
	rmac, smac := macOf(t, n.Lab, n.R, "r-in1"), macOf(t, n.Lab, n.In1, "eth0")
	w := startWatch(t, n.Lab, "arp-scan", n.In1, "198.51.100.10", n.In2, n.Srv, "198.51.100.10", 10*time.Second)
	time.Sleep(time.Second)
	peak := sampleMax(gauge(n.Router, "arp", "entries"))
	before := mustStats(t, n.Router)
	fb := newFrameBuf()
	perm := rand.Perm(1 << 16)
	start := time.Now()
	sent := flood(t, n.In1, "eth0", 1<<16, 10000, 8*time.Second, func(i int, rng *rand.Rand) []byte {
		ip := ipv4(net.IPv4(10, 1, 1, 5).To4(), ip4(10, 2, uint16(perm[i])), layers.IPProtocolUDP, 64)
		udp := &layers.UDP{SrcPort: 40000, DstPort: 9}
		udp.SetNetworkLayerForChecksum(ip)
		return fb.make(t, &layers.Ethernet{SrcMAC: smac, DstMAC: rmac, EthernetType: layers.EthernetTypeIPv4}, ip, udp)
	})
	dur := time.Since(start)
	top := peak.max()
	w.wait(t, defaultBounds)
	st := mustStats(t, n.Router)
	reqs := st.Counters["arp-requests-sent"] - before.Counters["arp-requests-sent"]
	limited := st.Counters["arp-requests-limited"] - before.Counters["arp-requests-limited"]
	full := st.stage("arp", "table-full") - before.stage("arp", "table-full")
	t.Logf("RESULT arp-scan: %d packets to %d addresses of 10.2.0.0/16 in %v: neighbour entries peak %d (max %d), ARP requests sent %d (%.0f/s, request_rate %d), not sent over the rate %d, table-full %d, icmp-errors-sent %d, icmp-rate-limited %d",
		sent, sent, dur.Round(time.Millisecond), top, nmax, reqs, float64(reqs)/dur.Seconds(), rate, limited, full, st.Counters["icmp-errors-sent"], st.Counters["icmp-rate-limited"])
	if top > nmax {
		t.Errorf("neighbour entries reached %d, max %d", top, nmax)
	}
	if full == 0 {
		t.Error("no table-full counted")
	}
	// The requests are bounded by the rate (a bucket of one second's
	// worth, then request_rate per second), not by the scan.
	if limit := uint64(rate + rate*(dur.Seconds()+1)); reqs > limit || limited == 0 {
		t.Errorf("%d ARP requests in %v at %d/s (limit %d), %d limited", reqs, dur, rate, limit, limited)
	}
	// The live next hops are still resolved and used.
	out, err := n.Router.Console("show", "arp")
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"203.0.113.254", "10.1.2.6", "10.1.1.5"} {
		if !strings.Contains(out, ip) {
			t.Errorf("live neighbour %s gone from show arp", ip)
		}
	}
}

// A flood of TTL=1 packets to be forwarded: each would need an ICMP time
// exceeded; the rate limit holds ([icmp] rate_per_sec 1000, burst 50) and
// forwarding goes on.
func TestReliabilityTTLFlood(t *testing.T) {
	const n0, pps = 30000, 10000
	n := newRLNAT(t, lab.NATConfig)
	rmac, smac := macOf(t, n.Lab, n.R, "r-in2"), macOf(t, n.Lab, n.In2, "eth0")
	w := startWatch(t, n.Lab, "ttl-flood", n.In1, "198.51.100.10", n.In2, n.Srv, "198.51.100.10", 6*time.Second)
	time.Sleep(time.Second)
	before := mustStats(t, n.Router)
	fb := newFrameBuf()
	start := time.Now()
	sent := flood(t, n.In2, "eth0", n0, pps, 5*time.Second, func(i int, rng *rand.Rand) []byte {
		ip := ipv4(net.IPv4(10, 1, 2, 6).To4(), net.IPv4(198, 51, 100, 10).To4(), layers.IPProtocolUDP, 1)
		udp := &layers.UDP{SrcPort: layers.UDPPort(20000 + i%1000), DstPort: 9}
		udp.SetNetworkLayerForChecksum(ip)
		return fb.make(t, &layers.Ethernet{SrcMAC: smac, DstMAC: rmac, EthernetType: layers.EthernetTypeIPv4}, ip, udp)
	})
	dur := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	st := mustStats(t, n.Router)
	w.wait(t, defaultBounds)
	ttl := st.Drops["ttl-exceeded"] - before.Drops["ttl-exceeded"]
	errs := st.Counters["icmp-errors-sent"] - before.Counters["icmp-errors-sent"]
	limited := st.Counters["icmp-rate-limited"] - before.Counters["icmp-rate-limited"]
	t.Logf("RESULT ttl-flood: %d TTL=1 packets in %v: ttl-exceeded %d, ICMP errors sent %d (%.0f/s), rate-limited %d",
		sent, dur.Round(time.Millisecond), ttl, errs, float64(errs)/dur.Seconds(), limited)
	if ttl < uint64(sent)*99/100 {
		t.Errorf("ttl-exceeded %d of %d sent", ttl, sent)
	}
	if bound := uint64(50 + 1000*(dur.Seconds()+1)); errs > bound {
		t.Errorf("%d ICMP errors in %v: over the limit (%d)", errs, dur, bound)
	}
	if limited == 0 || errs+limited < ttl*99/100 {
		t.Errorf("rate-limited %d + sent %d do not account for %d", limited, errs, ttl)
	}
}

// Fragments whose datagram never completes, through SNAT: non-first
// fragments wait in the NAT's hold buffer (256 slots) for a first fragment
// that never comes and expire or are evicted, counted; first fragments
// without the rest fill the fragment table, bounded. The router runs with
// [conntrack] fragment_timeout = "3s" (default 30 s) and the test waits it
// out to see the last ones expire.
func TestReliabilityFragmentFlood(t *testing.T) {
	const n0, pps = 20000, 5000
	const fragTimeout = 3 * time.Second
	n := newRLNAT(t, strings.Replace(lab.NATConfig, "[conntrack]\n", fmt.Sprintf("[conntrack]\nfragment_timeout = %q\n", fragTimeout), 1))
	rmac, smac := macOf(t, n.Lab, n.R, "r-in2"), macOf(t, n.Lab, n.In2, "eth0")
	w := startWatch(t, n.Lab, "fragment-flood", n.In1, "198.51.100.10", n.In2, n.Srv, "198.51.100.10", 8*time.Second)
	time.Sleep(time.Second)
	holding := sampleMax(gauge(n.Router, "nat", "nat-frag-holding"))
	entries := sampleMax(gauge(n.Router, "nat", "nat-frag-entries"))
	fb := newFrameBuf()
	start := time.Now()
	payload := gopacket.Payload(make([]byte, 64))
	sent := flood(t, n.In2, "eth0", n0, pps, 6*time.Second, func(i int, rng *rand.Rand) []byte {
		ip := ipv4(net.IPv4(10, 1, 2, 6).To4(), ip4(198, 51, uint16(100<<8|128+rng.IntN(128))), layers.IPProtocolUDP, 64)
		ip.Id = uint16(rng.Uint32())
		if i%10 == 0 {
			// A first fragment (UDP header, more fragments) alone.
			ip.Flags = layers.IPv4MoreFragments
			udp := &layers.UDP{SrcPort: layers.UDPPort(1024 + rng.IntN(60000)), DstPort: 9}
			udp.SetNetworkLayerForChecksum(ip)
			return fb.make(t, &layers.Ethernet{SrcMAC: smac, DstMAC: rmac, EthernetType: layers.EthernetTypeIPv4}, ip, udp, payload)
		}
		ip.FragOffset = uint16(1 + rng.IntN(100))
		return fb.make(t, &layers.Ethernet{SrcMAC: smac, DstMAC: rmac, EthernetType: layers.EthernetTypeIPv4}, ip, payload)
	})
	dur := time.Since(start)
	hmax, emax := holding.max(), entries.max()
	w.wait(t, defaultBounds)
	// The last held fragments expire after fragment_timeout (3 s here; the
	// default nat.DefaultFragTimeout is 30 s, as Linux's ipfrag_time).
	var st statsAll
	deadline := time.Now().Add(fragTimeout + 5*time.Second)
	for {
		st = mustStats(t, n.Router)
		if st.stage("nat", "nat-frag-holding") == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	held, expired, evicted := st.stage("nat", "nat-frag-held"), st.stage("nat", "nat-frag-hold-expired"), st.stage("nat", "nat-frag-hold-evicted")
	t.Logf("RESULT fragment-flood: %d fragments in %v (1 in 10 a lone first fragment): held %d, hold peak %d (256 slots), expired %d, evicted %d, out-of-order %d; fragment table peak %d, frag-table-full %d; holding now %d",
		sent, dur.Round(time.Millisecond), held, hmax, expired, evicted, st.stage("nat", "nat-frag-out-of-order"), emax, st.stage("nat", "nat-frag-table-full"), st.stage("nat", "nat-frag-holding"))
	if hmax > 256 {
		t.Errorf("hold buffer peak %d over its 256 slots", hmax)
	}
	if held == 0 || expired == 0 || evicted == 0 {
		t.Errorf("held %d, expired %d, evicted %d: want fragments held and dropped", held, expired, evicted)
	}
	if now := st.stage("nat", "nat-frag-holding"); now != 0 {
		t.Errorf("%d fragments still held after the timeout", now)
	}
}

// MAC flooding on a switched network: a host sends frames from 30,000
// random source MACs; the learning table (8192 slots per network) is
// bounded and counts what it refused, the hosts already learned are still
// switched (not flooded) and a host that comes after the flood is learned
// once the flood's MACs age out.
func TestReliabilityMACFlood(t *testing.T) {
	l := newLab(t, "rl")
	ns := mustNS(t, l, "r", "a", "b", "c")
	r, a, b, c := ns[0], ns[1], ns[2], ns[3]
	for i, h := range []string{a, b, c} {
		must(t, l.Veth(h, "eth0", r, fmt.Sprintf("r-s%d", i+1)))
	}
	execAll(t, l, [][2]string{
		{a, "ip addr add 10.30.0.10/24 dev eth0"}, {b, "ip addr add 10.30.0.20/24 dev eth0"}, {c, "ip addr add 10.30.0.30/24 dev eth0"},
	})
	rt := startRouter(t, l, r, "sw", `
[router]
name    = "sw"
console = "SOCKET"
[[port]]
name = "s1"
driver = "afpacket"
device = "r-s1"
[[port]]
name = "s2"
driver = "afpacket"
device = "r-s2"
[[port]]
name = "s3"
driver = "afpacket"
device = "r-s3"
[[network]]
name      = "lan"
links     = ["s1", "s2", "s3"]
addresses = ["10.30.0.1/24"]
`)
	ping(t, l, a, "10.30.0.20")
	w := startWatch(t, l, "mac-flood", a, "10.30.0.20", a, b, "10.30.0.20", 8*time.Second)
	time.Sleep(time.Second)
	before := mustStats(t, rt)
	fb := newFrameBuf()
	start := time.Now()
	sent := flood(t, c, "eth0", 30000, 10000, 6*time.Second, func(i int, rng *rand.Rand) []byte {
		src := net.HardwareAddr{0x02, 0x5e, byte(i >> 16), byte(i >> 8), byte(i), byte(rng.IntN(256))}
		// To a MAC nobody has: flooded to the other links, and learned.
		dst := net.HardwareAddr{0x02, 0x5f, 0, 0, 0, 1}
		ip := ipv4(net.IPv4(10, 30, 0, 30).To4(), net.IPv4(10, 30, 0, 99).To4(), layers.IPProtocolUDP, 64)
		udp := &layers.UDP{SrcPort: 9, DstPort: 9}
		udp.SetNetworkLayerForChecksum(ip)
		return fb.make(t, &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv4}, ip, udp)
	})
	dur := time.Since(start)
	w.wait(t, defaultBounds)
	st := mustStats(t, rt)
	full := st.Counters["l2-mac-table-full"] - before.Counters["l2-mac-table-full"]
	switched := st.Counters["l2-switched"] - before.Counters["l2-switched"]
	out, err := rt.Console("-j", "show", "bridge", "lan")
	if err != nil {
		t.Fatal(err)
	}
	var entries []json.RawMessage
	json.Unmarshal([]byte(out), &entries)
	t.Logf("RESULT mac-flood: %d frames from %d random MACs in %v: MAC entries %d (8192 slots), l2-mac-table-full %d, l2-switched during the flood %d",
		sent, sent, dur.Round(time.Millisecond), len(entries), full, switched)
	if len(entries) > 8192 {
		t.Errorf("%d MAC entries, over the 8192 slots", len(entries))
	}
	if full == 0 {
		t.Error("no refused learning counted")
	}
	if switched == 0 {
		t.Error("the known hosts' frames were not switched during the flood")
	}
}
