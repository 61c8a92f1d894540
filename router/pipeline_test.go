package router

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"vrouter/config"
	"vrouter/internal/clock"
	"vrouter/internal/nstest"
	"vrouter/packet"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

var (
	macA    = [6]byte{2, 0, 0, 0, 0, 0xa}
	macB    = [6]byte{2, 0, 0, 0, 0, 0xb}
	hostA   = net.HardwareAddr{2, 0xaa, 0, 0, 0, 1}
	hostB   = net.HardwareAddr{2, 0xbb, 0, 0, 0, 1}
	ipHostA = net.IPv4(192, 0, 2, 10).To4()
	ipHostB = net.IPv4(198, 51, 100, 10).To4()
	ipRA    = net.IPv4(192, 0, 2, 1).To4()
	ipRB    = net.IPv4(198, 51, 100, 1).To4()
)

func testConfig() *config.Config {
	c := &config.Config{
		Router: config.Router{Name: "t"},
		Ports:  []config.Port{{Name: "pa", Driver: "pipe"}, {Name: "pb", Driver: "pipe", MTU: 1400}},
		Networks: []config.Network{
			{Name: "a", Links: []config.Link{{Port: "pa"}}, Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}},
			{Name: "b", Links: []config.Link{{Port: "pb"}}, Addresses: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")}},
		},
		Routes: []config.Route{
			{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Via: netip.MustParseAddr("198.51.100.254"), Type: config.RouteUnicast},
			{Prefix: netip.MustParsePrefix("10.66.0.0/16"), Type: config.RouteBlackhole},
		},
		ICMP:      config.ICMP{RatePerSec: 1000, Burst: 50},
		Conntrack: config.Conntrack{Max: 4096},
		Neighbor:  config.Neighbor{Max: 1024, ReachableTime: 30 * time.Second, StaleTime: 60 * time.Second, RetransTime: time.Second, Retries: 3, QueueLen: 3},
	}
	c.ApplyDefaults()
	return c
}

type lab struct {
	t      testing.TB
	r      *Router
	clk    *clock.Manual
	pa, pb *pipe.Port
}

func newLab(t testing.TB) *lab { return labWith(t, testConfig()) }

// labWith is a lab of a router with cfg over the pipe ports pa (MTU 1500)
// and pb (MTU 1400) and a manual clock.
func labWith(t testing.TB, cfg *config.Config) *lab {
	t.Helper()
	pa, pb := pipe.New("pa", macA, 1500), pipe.New("pb", macB, 1400)
	clk := clock.NewManual()
	r, err := New(cfg, []port.Port{pa, pb}, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return &lab{t: t, r: r, clk: clk, pa: pa, pb: pb}
}

// run processes everything injected so far on both ports.
func (l *lab) run() {
	for {
		did := false
		for i, p := range []*pipe.Port{l.pa, l.pb} {
			w := l.r.workers[i]
			if p.TryReadBatch(w.rx) > 0 {
				w.processBatch(l.r.ports[i], w.rx)
				did = true
			}
		}
		if !did {
			return
		}
	}
}

func ser(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func arpReq(t testing.TB, sha net.HardwareAddr, spa, tpa net.IP) []byte {
	return ser(t, &layers.Ethernet{SrcMAC: sha, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: sha, SourceProtAddress: spa, DstHwAddress: make([]byte, 6), DstProtAddress: tpa})
}

func arpReply(t testing.TB, sha net.HardwareAddr, spa net.IP, tha net.HardwareAddr, tpa net.IP) []byte {
	return ser(t, &layers.Ethernet{SrcMAC: sha, DstMAC: tha, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPReply, SourceHwAddress: sha, SourceProtAddress: spa, DstHwAddress: tha, DstProtAddress: tpa})
}

func icmpEcho(t testing.TB, srcMAC net.HardwareAddr, dstMAC [6]byte, src, dst net.IP, ttl uint8, df bool, size int) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Protocol: layers.IPProtocolICMPv4, SrcIP: src, DstIP: dst, Id: 77}
	if df {
		ip.Flags = layers.IPv4DontFragment
	}
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i)
	}
	return ser(t, &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC[:], EthernetType: layers.EthernetTypeIPv4}, ip,
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 9, Seq: 1}, gopacket.Payload(payload))
}

func decode(b []byte) gopacket.Packet {
	return gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
}

// validIPv4 checks the header checksum of a decoded packet with an independent computation.
func checkIPChecksum(t testing.TB, p gopacket.Packet) *layers.IPv4 {
	t.Helper()
	ipl := p.Layer(layers.LayerTypeIPv4)
	if ipl == nil {
		t.Fatalf("no IPv4 layer in %v", p)
	}
	ip := ipl.(*layers.IPv4)
	if !nstest.ChecksumOK(nil, ip.Contents) {
		t.Fatalf("bad IPv4 header checksum in %v", p)
	}
	return ip
}

func (l *lab) resolveA() {
	l.pa.Inject(arpReq(l.t, hostA, ipHostA, ipRA))
	l.run()
	out := l.pa.Take()
	if len(out) != 1 {
		l.t.Fatalf("want 1 ARP reply, got %d", len(out))
	}
	a := decode(out[0]).Layer(layers.LayerTypeARP).(*layers.ARP)
	if a.Operation != layers.ARPReply || net.IP(a.SourceProtAddress).String() != "192.0.2.1" ||
		net.HardwareAddr(a.SourceHwAddress).String() != net.HardwareAddr(macA[:]).String() {
		l.t.Fatalf("bad ARP reply %+v", a)
	}
}

// resolveBoth resolves host A (it asks for the router) and host B (the
// router asks for it when A's first packet arrives, B answers); the frames
// this produced are taken.
func (l *lab) resolveBoth() {
	l.resolveA()
	l.pa.Inject(icmpEcho(l.t, hostA, macA, ipHostA, ipHostB, 64, false, 10))
	l.run()
	l.pb.Take()
	l.resolveB()
	l.pa.Take()
	l.pb.Take()
}

func (l *lab) resolveB() {
	// A packet towards B triggers a request; B answers.
	l.pb.Inject(arpReply(l.t, hostB, ipHostB, net.HardwareAddr(macB[:]), ipRB))
	l.run()
}

func TestARPAndEcho(t *testing.T) {
	l := newLab(t)
	l.resolveA()
	l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, ipRA, 64, false, 56))
	l.run()
	out := l.pa.Take()
	if len(out) != 1 {
		t.Fatalf("want echo reply, got %d frames", len(out))
	}
	p := decode(out[0])
	ip := checkIPChecksum(t, p)
	ic := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if ic.TypeCode.Type() != 0 || ip.SrcIP.String() != "192.0.2.1" || ip.DstIP.String() != "192.0.2.10" || len(ic.Payload) != 56 {
		t.Fatalf("bad echo reply: %v", p)
	}
	if err := p.ErrorLayer(); err != nil {
		t.Fatal(err)
	}
	if l.r.Counters()[CntEchoReplies] != 1 {
		t.Fatal("echo reply not counted")
	}
}

func TestARPNoReplyCases(t *testing.T) {
	l := newLab(t)
	// Not ours, outside subnet sender, same-segment target: none answered.
	l.pa.Inject(arpReq(t, hostA, ipHostA, net.IPv4(192, 0, 2, 99).To4()))
	l.pa.Inject(arpReq(t, hostA, net.IPv4(10, 9, 9, 9).To4(), ipRA))
	l.run()
	if out := l.pa.Take(); len(out) != 0 {
		t.Fatalf("unexpected replies: %d", len(out))
	}
	d := l.r.Drops()
	if d[DropARPNotOurs] != 1 || d[DropARPBadSender] != 1 {
		t.Fatalf("drops: not-ours=%d bad-sender=%d", d[DropARPNotOurs], d[DropARPBadSender])
	}
	// A probe (sender 0.0.0.0) for our address is answered.
	l.pa.Inject(arpReq(t, hostA, net.IPv4(0, 0, 0, 0).To4(), ipRA))
	l.run()
	if out := l.pa.Take(); len(out) != 1 {
		t.Fatalf("probe not answered")
	}
	// A broadcast sender MAC is ignored.
	l.pa.Inject(arpReq(t, net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ipHostA, ipRA))
	l.run()
	if out := l.pa.Take(); len(out) != 0 {
		t.Fatal("answered a broadcast sender")
	}
}

func TestForwardQueuedUntilResolved(t *testing.T) {
	l := newLab(t)
	l.resolveA()
	l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, ipHostB, 64, false, 100))
	l.run()
	req := l.pb.Take()
	if len(req) != 1 {
		t.Fatalf("want one ARP request on b, got %d", len(req))
	}
	a := decode(req[0]).Layer(layers.LayerTypeARP).(*layers.ARP)
	if a.Operation != layers.ARPRequest || net.IP(a.DstProtAddress).String() != "198.51.100.10" || net.IP(a.SourceProtAddress).String() != "198.51.100.1" {
		t.Fatalf("bad request %+v", a)
	}
	l.resolveB()
	out := l.pb.Take()
	if len(out) != 1 {
		t.Fatalf("queued packet not sent after resolution: %d", len(out))
	}
	p := decode(out[0])
	ip := checkIPChecksum(t, p)
	eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if ip.TTL != 63 || eth.DstMAC.String() != hostB.String() || eth.SrcMAC.String() != net.HardwareAddr(macB[:]).String() {
		t.Fatalf("bad forwarded frame %v", p)
	}
	// Next packet goes straight through.
	l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, ipHostB, 64, false, 100))
	l.run()
	if out := l.pb.Take(); len(out) != 1 {
		t.Fatal("not forwarded")
	}
}

func expectICMP(t *testing.T, frames [][]byte, typ, code uint8) (*layers.IPv4, *layers.ICMPv4) {
	t.Helper()
	if len(frames) != 1 {
		t.Fatalf("want 1 ICMP frame, got %d", len(frames))
	}
	p := decode(frames[0])
	ip := checkIPChecksum(t, p)
	ic, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if !ok || ic.TypeCode.Type() != typ || ic.TypeCode.Code() != code {
		t.Fatalf("want ICMP %d/%d, got %v", typ, code, p)
	}
	if packet.Checksum(ip.Payload) != 0 {
		t.Fatalf("bad ICMP checksum")
	}
	return ip, ic
}

func TestICMPErrors(t *testing.T) {
	l := newLab(t)
	l.resolveBoth()

	// TTL 1 -> time exceeded from the router's address on a.
	l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, ipHostB, 1, false, 10))
	l.run()
	ip, _ := expectICMP(t, l.pa.Take(), 11, 0)
	if ip.SrcIP.String() != "192.0.2.1" {
		t.Fatalf("time exceeded from %v", ip.SrcIP)
	}
	// No route -> 3/0.
	l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, net.IPv4(8, 8, 8, 8).To4(), 64, false, 10))
	l.run()
	expectICMP(t, l.pa.Take(), 3, 0)
	// DF and too big for b (mtu 1400) -> 3/4 with mtu 1400.
	l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, ipHostB, 64, true, 1450))
	l.run()
	_, ic := expectICMP(t, l.pa.Take(), 3, 4)
	if mtu := uint16(ic.Seq); mtu != 1400 {
		t.Fatalf("frag needed mtu = %d", mtu)
	}
	// Blackhole: dropped, no ICMP.
	l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, net.IPv4(10, 66, 1, 1).To4(), 64, false, 10))
	l.run()
	if len(l.pa.Take()) != 0 {
		t.Fatal("blackhole answered")
	}
	d := l.r.Drops()
	for _, r := range []DropReason{DropTTLExceeded, DropNoRoute, DropFragNeeded, DropBlackhole} {
		if d[r] != 1 {
			t.Errorf("drop %s = %d, want 1", r, d[r])
		}
	}
}

func TestFragmentation(t *testing.T) {
	l := newLab(t)
	l.resolveBoth()
	orig := icmpEcho(t, hostA, macA, ipHostA, ipHostB, 64, false, 3000)
	l.pa.Inject(orig)
	l.run()
	out := l.pb.Take()
	if len(out) != 3 {
		t.Fatalf("want 3 fragments, got %d", len(out))
	}
	var data []byte
	for i, f := range out {
		p := decode(f)
		ip := checkIPChecksum(t, p)
		if int(ip.Length) > 1400 {
			t.Fatalf("fragment %d too big: %d", i, ip.Length)
		}
		if int(ip.FragOffset)*8 != len(data) {
			t.Fatalf("fragment %d offset %d, want %d", i, int(ip.FragOffset)*8, len(data))
		}
		mf := ip.Flags&layers.IPv4MoreFragments != 0
		if mf != (i < 2) || ip.Id != 77 || ip.TTL != 63 {
			t.Fatalf("fragment %d: mf=%v id=%d ttl=%d", i, mf, ip.Id, ip.TTL)
		}
		data = append(data, ip.Payload...)
	}
	if want := orig[14+20:]; string(data) != string(want) {
		t.Fatalf("reassembled payload differs (%d vs %d bytes)", len(data), len(want))
	}
}

func TestInputChecks(t *testing.T) {
	l := newLab(t)
	l.resolveA()
	good := icmpEcho(t, hostA, macA, ipHostA, ipHostB, 64, false, 10)
	mut := func(f func(b []byte)) []byte { b := append([]byte(nil), good...); f(b); return b }
	cases := []struct {
		name   string
		frame  []byte
		reason DropReason
	}{
		{"checksum", mut(func(b []byte) { b[14+10] ^= 0xff }), DropIPChecksum},
		{"version", mut(func(b []byte) { b[14] = 0x65 }), DropIPVersion},
		{"ihl", mut(func(b []byte) { b[14] = 0x44 }), DropIPBadIHL},
		{"short", good[:14+12], DropIPTooShort},
		{"truncated", func() []byte { b := icmpEcho(t, hostA, macA, ipHostA, ipHostB, 64, false, 100); return b[:len(b)-4] }(), DropIPTruncated},
		{"martian", icmpEcho(t, hostA, macA, net.IPv4(127, 0, 0, 1).To4(), ipHostB, 64, false, 10), DropMartianSource},
		{"l2-bcast", mut(func(b []byte) { copy(b[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) }), DropL2BcastUnicastIP},
		{"other-mac", mut(func(b []byte) { b[5] = 0x77 }), DropNotForUs},
		{"directed-bcast", icmpEcho(t, hostA, macA, ipHostA, net.IPv4(198, 51, 100, 255).To4(), 64, false, 10), DropDirectedBroadcast},
		{"ipv6 on an IPv4-only network", mut(func(b []byte) { b[12], b[13] = 0x86, 0xdd }), DropIPv6Off},
	}
	for _, c := range cases {
		before := l.r.Drops()[c.reason]
		l.pa.Inject(c.frame)
		l.run()
		if got := l.r.Drops()[c.reason] - before; got != 1 {
			t.Errorf("%s: drop %s counted %d times", c.name, c.reason, got)
		}
		if out := l.pb.Take(); len(out) != 0 {
			t.Errorf("%s: forwarded", c.name)
		}
		l.pa.Take()
	}
}

func TestUnresolvableNextHop(t *testing.T) {
	l := newLab(t)
	l.resolveA()
	for i := 0; i < 5; i++ {
		l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, ipHostB, 64, false, 10))
	}
	l.run()
	if n := len(l.pb.Take()); n != 1 {
		t.Fatalf("want 1 ARP request at first, got %d", n)
	}
	var reqs int
	var unreach [][]byte
	for i := 0; i < 5; i++ {
		l.clk.Advance(time.Second)
		l.r.Tick()
		reqs += len(l.pb.Take())
		unreach = append(unreach, l.pa.Take()...)
	}
	if reqs != 2 {
		t.Fatalf("want 2 retransmitted requests, got %d", reqs)
	}
	expectICMP(t, unreach, 3, 1)
}

func TestZeroAllocForward(t *testing.T) {
	l := newLab(t)
	l.resolveBoth()
	l.pb.SetSink(true)
	frame := icmpEcho(t, hostA, macA, ipHostA, ipHostB, 64, false, 64)
	allocs := l.allocsPerBatch(200, 32, same(frame))
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch, want 0", allocs)
	}
	if l.r.Counters()[CntForwarded] < 200*32 {
		t.Fatal("not forwarded")
	}
}

// allocsPerBatch is testing.AllocsPerRun over runs batches of n frames
// (frame(i) in slot i) received on port a and processed by its worker.
func (l *lab) allocsPerBatch(runs, n int, frame func(i int) []byte) float64 {
	w := l.r.workers[0]
	b := w.rx
	return testing.AllocsPerRun(runs, func() {
		for i := 0; i < n; i++ {
			b.Off[i] = port.Headroom
			b.Len[i] = copy(b.Bufs[i][port.Headroom:], frame(i))
		}
		b.N = n
		w.processBatch(l.r.ports[0], b)
	})
}

// same is a frame function for allocsPerBatch that gives f in every slot.
func same(f []byte) func(int) []byte { return func(int) []byte { return f } }

// runGen forwards b.N frames of gen, in batches, as received on port a.
func runGen(b *testing.B, l *lab, gen *pipe.Port) { runGenOn(b, l, 0, gen) }

// runGenOn forwards b.N frames of gen, in batches, as received on port in
// (by its worker), and reports ns/packet.
func runGenOn(b *testing.B, l *lab, in int, gen *pipe.Port) {
	w := l.r.workers[in]
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		gen.ReadBatch(w.rx)
		w.processBatch(l.r.ports[in], w.rx)
		done += w.rx.N
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/packet")
}

func BenchmarkPipelineForward(b *testing.B) {
	l := newLab(b)
	l.resolveBoth()
	l.pb.SetSink(true)
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: ipHostA, DstIP: ipHostB}
	udp := &layers.UDP{SrcPort: 1000, DstPort: 2000}
	udp.SetNetworkLayerForChecksum(ip)
	frame := ser(b, &layers.Ethernet{SrcMAC: hostA, DstMAC: macA[:], EthernetType: layers.EthernetTypeIPv4},
		ip, udp, gopacket.Payload(make([]byte, 18)))
	runGen(b, l, pipe.NewGenerator("pa", macA, 1500, [][]byte{frame}))
}

func TestTrace(t *testing.T) {
	l := newLab(t)
	l.resolveA()
	if err := l.r.Trace(2); err != nil {
		t.Fatal(err)
	}
	l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, ipRA, 64, false, 8))
	l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, net.IPv4(8, 8, 8, 8).To4(), 64, false, 8))
	l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, ipRA, 64, false, 8))
	l.run()
	out := strings.Join(l.r.TraceLines(), "\n")
	for _, want := range []string{"packet 1", "rx      port pa", "ipv4    icmp 192.0.2.10 -> 192.0.2.1 echo request id 9 seq 1 ttl 64",
		"local   for the router (echo request answered)", "tx      port pa",
		"packet 2", "drop    no-route (no route to the destination", "icmp    sent dest-unreachable/net-unreachable to 192.0.2.10"} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "packet 3") {
		t.Errorf("traced more than 2 packets:\n%s", out)
	}
}

// natLab is the pipeline lab with SNAT of network a out of b (to
// 198.51.100.1) and host B resolved.
func natLab(t testing.TB) *lab {
	l := labWith(t, natConfig(4096))
	l.resolveA()
	l.r.Neigh.Update(1, 0xc633640a, [6]byte(hostB), true, l.clk.Now(), func([]byte) {})
	return l
}

// natConfig is the lab's configuration with SNAT of network a out of b (to
// 198.51.100.1) and a conntrack table of max sessions.
func natConfig(max int) *config.Config {
	cfg := testConfig()
	cfg.NAT.SNAT = []config.SNAT{{Source: netip.MustParsePrefix("192.0.2.0/24"), Out: "b",
		To: config.AddrRange{First: netip.MustParseAddr("198.51.100.1"), Last: netip.MustParseAddr("198.51.100.1")}}}
	cfg.Conntrack = config.Conntrack{Max: max, TCPEstablished: 7440e9, TCPTransitory: 240e9, UDP: 300e9, ICMP: 60e9, FragmentTimeout: 30e9}
	cfg.ApplyDefaults()
	return cfg
}

func tcpSYN(t testing.TB, sport, dport uint16) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: ipHostA, DstIP: ipHostB}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), SYN: true, Window: 1000}
	tcp.SetNetworkLayerForChecksum(ip)
	return ser(t, &layers.Ethernet{SrcMAC: hostA, DstMAC: macA[:], EthernetType: layers.EthernetTypeIPv4}, ip, tcp)
}

// The trace names protocols, shows a translation before and after, and
// names the NAT's reason for a drop.
func TestTraceNAT(t *testing.T) {
	l := natLab(t)
	if err := l.r.Trace(4); err != nil {
		t.Fatal(err)
	}
	l.pa.Inject(tcpSYN(t, 40000, 80))
	l.pa.Inject(udpFrom(t, ipHostB, 5000))
	l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, ipHostB, 64, false, 8))
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: ipHostB, DstIP: ipRB}
	udp := &layers.UDP{SrcPort: 999, DstPort: 7777}
	udp.SetNetworkLayerForChecksum(ip)
	l.pb.Inject(ser(t, &layers.Ethernet{SrcMAC: hostB, DstMAC: macB[:], EthernetType: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload("x")))
	l.run()
	out := strings.Join(l.r.TraceLines(), "\n") + "\n"
	for _, want := range []string{
		"  ipv4    tcp 192.0.2.10:40000 -> 198.51.100.10:80 [S] ttl 64\n",
		"  fib     connected network b\n",
		"  nat     out: tcp 192.0.2.10:40000 -> 198.51.100.10:80 => 198.51.100.1:40000 -> 198.51.100.10:80\n",
		"  arp     198.51.100.10 on b is 02:bb:00:00:00:01\n",
		"  ipv4    udp 192.0.2.10:5000 -> 198.51.100.10:53 ttl 64\n",
		"  nat     out: udp 192.0.2.10:5000 -> 198.51.100.10:53 => 198.51.100.1:5000 -> 198.51.100.10:53\n",
		"  ipv4    icmp 192.0.2.10 -> 198.51.100.10 echo request id 9 seq 1 ttl 64\n",
		"  nat     out: icmp 192.0.2.10 -> 198.51.100.10 id 9 => 198.51.100.1 -> 198.51.100.10 id 9\n",
		"  ipv4    udp 198.51.100.10:999 -> 198.51.100.1:7777 ttl 64\n",
		"  drop    nat: nat-no-session (inbound packet to a NAT address with no session",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}
}

// Tracing records without allocating: a traced batch through SNAT.
func TestZeroAllocTraced(t *testing.T) {
	l := natLab(t)
	l.pb.SetSink(true)
	frame := tcpSYN(t, 40000, 80)
	const batch = 4
	l.r.trace.arm(traceKeep)
	allocs := l.allocsPerBatch(50, batch, same(frame))
	if allocs != 0 {
		t.Fatalf("%.1f allocations per traced batch, want 0", allocs)
	}
	if n := len(l.r.trace.packets()); n != 51*batch {
		t.Fatalf("%d packets traced, want %d", n, 51*batch)
	}
}

func TestCapture(t *testing.T) {
	l := newLab(t)
	path := filepath.Join(t.TempDir(), "pa.pcap")
	if err := l.r.StartCapture("pa", path, 2); err != nil {
		t.Fatal(err)
	}
	l.resolveA() // request in, reply out: 2 frames, then the capture ends
	l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, ipRA, 64, false, 8))
	l.run()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var ops []uint16
	for {
		data, _, err := rd.ReadPacketData()
		if err != nil {
			break
		}
		a, ok := decode(data).Layer(layers.LayerTypeARP).(*layers.ARP)
		if !ok {
			t.Fatalf("captured a non-ARP frame")
		}
		ops = append(ops, a.Operation)
	}
	if len(ops) != 2 || ops[0] != layers.ARPRequest || ops[1] != layers.ARPReply {
		t.Fatalf("captured %v", ops)
	}
	if l.r.ports[0].capture.Load() != nil {
		t.Fatal("capture still running after N frames")
	}
}

func TestICMPRateLimit(t *testing.T) {
	l := newLab(t)
	l.resolveA()
	// 200 packets with TTL 1 in one go: the bucket limits the errors. The
	// rate and burst are shared out between the workers (2 ports + the
	// control worker here), so one worker may send 50/3 at once.
	for i := 0; i < 200; i++ {
		l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, ipHostB, 1, false, 8))
	}
	l.run()
	sent := len(l.pa.Take())
	if sent != 50/3 {
		t.Fatalf("%d ICMP errors for 200 expired packets, want this worker's share of the burst (16)", sent)
	}
	if l.r.Counters()[CntICMPRateLimited] == 0 || l.r.Drops()[DropTTLExceeded] != 200 {
		t.Fatalf("rate limited %d, ttl drops %d", l.r.Counters()[CntICMPRateLimited], l.r.Drops()[DropTTLExceeded])
	}
	// Tokens come back with time.
	l.clk.Advance(time.Second)
	l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, ipHostB, 1, false, 8))
	l.run()
	if len(l.pa.Take()) != 1 {
		t.Fatal("no ICMP error after the bucket refilled")
	}
}

// A batch through SNAT first reads the index slots of its flows
// (prefetchBatch), without allocating, and every frame is still translated.
func TestZeroAllocNATBatch(t *testing.T) {
	l := natLab(t)
	l.pb.SetSink(true)
	frames := make([][]byte, 32)
	for i := range frames {
		frames[i] = udpFrom(t, ipHostB, uint16(6000+i))
	}
	allocs := l.allocsPerBatch(100, len(frames), func(i int) []byte { return frames[i] })
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch through SNAT, want 0", allocs)
	}
	if n := l.r.NAT.Len(); n != len(frames) {
		t.Fatalf("%d sessions, want %d", n, len(frames))
	}
	if l.r.workers[0].touched == 0 {
		t.Fatal("prefetchBatch read no occupied slot for a batch of existing sessions")
	}
	if got, want := l.r.Counters()[CntForwarded], uint64(101*len(frames)); got != want {
		t.Fatalf("%d forwarded, want %d", got, want)
	}
}

// BenchmarkPipelineSNAT: 64-byte UDP frames of 10,000 flows (the system
// benchmark's load) through SNAT in batches of 64, in a conntrack table of
// the benchmark's size, with and without prefetchBatch.
func BenchmarkPipelineSNAT(b *testing.B) {
	for _, pf := range []bool{true, false} {
		name := "prefetch"
		if !pf {
			name = "no-prefetch"
		}
		b.Run(name, func(b *testing.B) {
			l := labWith(b, natConfig(262144))
			l.resolveBoth()
			l.pb.SetSink(true)
			frames := make([][]byte, 10000)
			for i := range frames {
				frames[i] = udpFrom(b, ipHostB, uint16(10000+i))
			}
			w := l.r.workers[0]
			w.noPrefetch = !pf
			gen := pipe.NewGenerator("pa", macA, 1500, frames)
			for done := 0; done < len(frames); done += w.rx.N { // every flow's session first
				gen.ReadBatch(w.rx)
				w.processBatch(l.r.ports[0], w.rx)
			}
			if n := l.r.NAT.Len(); n < len(frames) {
				b.Fatalf("%d sessions", n)
			}
			runGen(b, l, gen)
		})
	}
}
