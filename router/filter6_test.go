package router

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/config"
	"vrouter/packet"
	"vrouter/router/port/pipe"
)

// The IPv6 filter lab: the IPv6 lab's networks (a: 2001:db8:a::/64 with
// host A, b: 2001:db8:b::/64 with the VM B, pb's MTU 1400) where b's
// filter_out guards the VM: ssh open, 443/tcp and 53/udp rejected, echo
// requests allowed, the rest dropped.
const filter6Base = `
[router]
name = "f6"
[[port]]
name = "pa"
driver = "pipe"
[[port]]
name = "pb"
driver = "pipe"
mtu = 1400
[[network]]
name = "a"
links = ["pa"]
addresses = ["2001:db8:a::1/64"]
[[network]]
name = "b"
links = ["pb"]
addresses = ["2001:db8:b::1/64"]
filter_out = "vm-in6"
[icmp]
rate_per_sec = 1000
burst = 50
[conntrack]
max = 4096
[[filter]]
name = "vm-in6"
default = "drop"
[[filter.rule]]
action = "accept"
proto = "tcp"
destination = ["2001:db8:b::10"]
dport = "22,80"
[[filter.rule]]
action = "reject"
proto = "tcp"
dport = "443"
[[filter.rule]]
action = "reject"
proto = "udp"
dport = "53"
[[filter.rule]]
action = "accept"
proto = "icmpv6"
icmp_type = "echo-request"
`

func filter6Lab(t testing.TB, old, new string) *lab {
	t.Helper()
	cfg, err := config.Parse("f6.toml", []byte(strings.Replace(filter6Base, old, new, 1)))
	if err != nil {
		t.Fatal(err)
	}
	l := labWith(t, cfg)
	l.resolve6()
	return l
}

// seg6 is a TCP segment or UDP datagram over IPv6.
type seg6 struct {
	src, dst     netip.Addr
	sport, dport uint16
	udp          bool
	flags        string // TCP: S, A, F, R
	seq, ack     uint32
	payload      []byte
}

func (s seg6) frame(t testing.TB, from []byte, to [6]byte) []byte {
	if s.udp {
		return ip6Frame(t, from, to, s.src, s.dst, 64, layers.IPProtocolUDP,
			&layers.UDP{SrcPort: layers.UDPPort(s.sport), DstPort: layers.UDPPort(s.dport)}, gopacket.Payload(s.payload))
	}
	return ip6Frame(t, from, to, s.src, s.dst, 64, layers.IPProtocolTCP,
		&layers.TCP{SrcPort: layers.TCPPort(s.sport), DstPort: layers.TCPPort(s.dport), Seq: s.seq, Ack: s.ack, Window: 1000,
			SYN: strings.Contains(s.flags, "S"), ACK: strings.Contains(s.flags, "A"), FIN: strings.Contains(s.flags, "F"),
			RST: strings.Contains(s.flags, "R")}, gopacket.Payload(s.payload))
}

func (l *lab) send6(fromA bool, f []byte) (onA, onB [][]byte) {
	if fromA {
		l.pa.Inject(f)
	} else {
		l.pb.Inject(f)
	}
	l.run()
	return l.pa.Take(), l.pb.Take()
}

func (l *lab) fromA6(s seg6) (onA, onB [][]byte) { return l.send6(true, s.frame(l.t, hostA, macA)) }
func (l *lab) fromB6(s seg6) (onA, onB [][]byte) { return l.send6(false, s.frame(l.t, hostB, macB)) }

// one6 decodes the only frame of fs with gopacket, checking the L4
// checksum.
func one6(t testing.TB, fs [][]byte, what string) gopacket.Packet {
	t.Helper()
	if len(fs) != 1 {
		t.Fatalf("%s: %d frames, want 1", what, len(fs))
	}
	p, ip := decode6(t, fs[0])
	if tc, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
		tc.SetNetworkLayerForChecksum(ip)
		if err, res := tc.VerifyChecksum(); err != nil || !res.Valid {
			t.Fatalf("%s: bad TCP checksum", what)
		}
	}
	return p
}

// ptb is a packet too big from router (on network a's side) to dst about
// quote.
func ptb(t testing.TB, from []byte, to [6]byte, router, dst netip.Addr, quote []byte) []byte {
	return ip6Frame(t, from, to, router, dst, 64, layers.IPProtocolICMPv6,
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypePacketTooBig, 0)},
		gopacket.Payload(append([]byte{0, 0, 5, 0}, quote...)))
}

// The first packet of an IPv6 flow is classified by the egress network's
// filter_out; accepted flows get a session whose later packets and
// replies pass; refused ones are dropped or rejected (TCP RST, ICMPv6
// 1/1); a TCP segment without a session is invalid; flows the VM starts
// are answered; ICMPv6 errors about a session pass, others are classified.
func TestFilter6Stateful(t *testing.T) {
	l := filter6Lab(t, "", "")
	a, b := ip6HostA, ip6HostB
	_, onB := l.fromA6(seg6{src: a, dst: b, sport: 40000, dport: 22, flags: "S", seq: 1000})
	one6(t, onB, "SYN to ssh")
	onA, _ := l.fromB6(seg6{src: b, dst: a, sport: 22, dport: 40000, flags: "SA", seq: 5000, ack: 1001})
	one6(t, onA, "SYN/ACK")
	for i := 0; i < 3; i++ {
		_, onB = l.fromA6(seg6{src: a, dst: b, sport: 40000, dport: 22, flags: "A", seq: 1001, ack: 5001, payload: []byte("data")})
		one6(t, onB, "established data")
	}
	rules, def := filterCounts(t, l.r, "vm-in6")
	if rules[0].Hits != 1 || rules[0].Packets != 1 || rules[0].Bytes != 60 || def.Hits != 0 {
		t.Fatalf("rule 1 %+v, default %+v: want one classification of the 60-byte SYN", rules[0], def)
	}
	ss := l.r.NAT.Sessions(netip.Addr{})
	if len(ss) != 1 || ss[0].State != "ESTABLISHED" || ss[0].NAT != "none" || ss[0].Orig.String() != "[2001:db8:a::10]:40000 -> [2001:db8:b::10]:22" {
		t.Fatalf("sessions %+v", ss)
	}

	// Telnet: dropped by the default, each SYN classified.
	for i := 0; i < 2; i++ {
		if onA, onB = l.fromA6(seg6{src: a, dst: b, sport: 40001, dport: 23, flags: "S"}); len(onA)+len(onB) != 0 {
			t.Fatal("telnet passed or was answered")
		}
	}
	if _, def = filterCounts(t, l.r, "vm-in6"); def.Hits != 2 || l.r.Drops()[DropFilter] != 2 {
		t.Fatalf("default %+v, filter drops %d", def, l.r.Drops()[DropFilter])
	}
	// 443: rejected with an RST from the address A connected to.
	onA, onB = l.fromA6(seg6{src: a, dst: b, sport: 40002, dport: 443, flags: "S", seq: 77})
	if len(onB) != 0 {
		t.Fatal("443 reached the VM")
	}
	p := one6(t, onA, "RST")
	ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	tc := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if !ip.SrcIP.Equal(a16(b)) || !ip.DstIP.Equal(a16(a)) || !tc.RST || !tc.ACK || tc.Ack != 78 || tc.SrcPort != 443 || tc.DstPort != 40002 {
		t.Fatalf("bad RST %v", p)
	}
	// 53/udp: rejected with ICMPv6 1/1 from the router.
	onA, onB = l.fromA6(seg6{src: a, dst: b, sport: 5353, dport: 53, udp: true, payload: []byte("q")})
	if len(onB) != 0 {
		t.Fatal("53 reached the VM")
	}
	expectICMP6(t, onA, packet.ICMPv6DstUnreach, packet.CodeV6AdminProhibited)
	if c := l.r.Counters(); c[CntFilterRejects] != 2 || c[CntFilterResets] != 1 {
		t.Fatalf("rejects %d resets %d", c[CntFilterRejects], c[CntFilterResets])
	}
	// A segment of no session: invalid.
	if _, onB = l.fromA6(seg6{src: a, dst: b, sport: 40003, dport: 22, flags: "A", seq: 1, ack: 1}); len(onB) != 0 {
		t.Fatal("a stray ACK reached the VM")
	}
	if d := l.r.Drops()[DropFilterInvalid]; d != 1 {
		t.Fatalf("filter-invalid %d", d)
	}

	// Ping: the request is accepted, its reply passes on the session (echo
	// tracked by identifier); a reply nobody asked for is classified.
	_, onB = l.send6(true, echo6(t, hostA, macA, a, b, 64, 8))
	one6(t, onB, "echo request")
	reply := func(id uint16) []byte {
		return ip6Frame(t, hostB, macB, b, a, 64, layers.IPProtocolICMPv6,
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoReply, 0)},
			&layers.ICMPv6Echo{Identifier: id, SeqNumber: 1}, gopacket.Payload(make([]byte, 8)))
	}
	onA, _ = l.send6(false, reply(7))
	one6(t, onA, "echo reply")
	if rules, _ = filterCounts(t, l.r, "vm-in6"); rules[3].Hits != 1 {
		t.Fatalf("echo-request rule %+v", rules[3])
	}

	// The VM's own flow out (no filter on that way) gets a session: the
	// answer passes although the ruleset has no rule for it.
	onA, _ = l.fromB6(seg6{src: b, dst: a, sport: 5000, dport: 7000, udp: true, payload: make([]byte, 1200)})
	out := one6(t, onA, "VM's datagram")
	_, onB = l.fromA6(seg6{src: a, dst: b, sport: 7000, dport: 5000, udp: true, payload: []byte("answer")})
	one6(t, onB, "answer to the VM")

	// Packet too big from a router beyond A about the VM's datagram:
	// related, passes. One about a flow the table does not know is a first
	// packet, refused by the default.
	ptbRouter := netip.MustParseAddr("2001:db8:a::99")
	quote := out.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	q := append(append([]byte(nil), quote.Contents...), quote.Payload...)
	_, onB = l.send6(true, ptb(t, hostA, macA, ptbRouter, b, q))
	if p := one6(t, onB, "related packet too big"); icmp6Of(t, p).TypeCode.Type() != layers.ICMPv6TypePacketTooBig {
		t.Fatal("not the packet too big")
	}
	other := seg6{src: b, dst: a, sport: 5001, dport: 7000, udp: true, payload: []byte("x")}.frame(t, hostB, macB)[14:]
	if _, onB = l.send6(true, ptb(t, hostA, macA, ptbRouter, b, other)); len(onB) != 0 {
		t.Fatal("an unrelated packet too big passed")
	}
	// The router's own packet too big (pb's MTU is 1400) for an accepted
	// echo request: path MTU discovery with the filter.
	onA, onB = l.send6(true, echo6(t, hostA, macA, a, b, 64, 1400))
	if len(onB) != 0 {
		t.Fatal("too big forwarded")
	}
	expectICMP6(t, onA, packet.ICMPv6PacketTooBig, 0)

	// show conntrack lists the IPv6 sessions: ssh, the pings (one
	// identifier), the VM's datagram.
	if n := l.r.NAT.Len6(); n != 3 {
		t.Fatalf("%d IPv6 sessions: %+v", n, l.r.NAT.Sessions(netip.Addr{}))
	}
	if c := counterValue(l.r, "nat-tracking-sessions6"); c != 3 {
		t.Fatalf("nat-tracking-sessions6 %d", c)
	}
}

// Later fragments pass where their first fragment passed.
func TestFilter6Fragments(t *testing.T) {
	l := filter6Lab(t, "", "")
	frag := func(off uint16, mf bool, n int) []byte {
		f := &layers.IPv6Fragment{NextHeader: layers.IPProtocolTCP, FragmentOffset: off, MoreFragments: mf, Identification: 4242}
		if off != 0 {
			return ip6Frame(t, hostA, macA, ip6HostA, ip6HostB, 64, layers.IPProtocolIPv6Fragment, f, gopacket.Payload(make([]byte, n)))
		}
		return ip6Frame(t, hostA, macA, ip6HostA, ip6HostB, 64, layers.IPProtocolIPv6Fragment, f,
			&layers.TCP{SrcPort: 40000, DstPort: 22, SYN: true, Window: 1000}, gopacket.Payload(make([]byte, n)))
	}
	// Alone, a later fragment has no ports: refused by the default.
	if _, onB := l.send6(true, frag(100, false, 16)); len(onB) != 0 {
		t.Fatal("a lone later fragment passed")
	}
	_, onB := l.send6(true, frag(0, true, 44))
	if len(onB) != 1 {
		t.Fatal("first fragment refused")
	}
	if _, onB = l.send6(true, frag(8, false, 16)); len(onB) != 1 {
		t.Fatal("later fragment refused")
	}
}

// Packets to the router pass filter_in, classified each; neighbour
// discovery is never filtered.
func TestFilter6Local(t *testing.T) {
	l := filter6Lab(t, `filter_out = "vm-in6"`, `filter_out = "vm-in6"
filter_in = "vm-in6"`)
	// Echo to the router's address on b, from the VM: accepted by the
	// echo-request rule, answered.
	onA, onB := l.send6(false, echo6(t, hostB, macB, ip6HostB, ip6RB, 64, 8))
	if len(onA) != 0 {
		t.Fatal("echo to the router forwarded")
	}
	if ic := icmp6Of(t, one6(t, onB, "echo reply from the router")); ic.TypeCode.Type() != layers.ICMPv6TypeEchoReply {
		t.Fatalf("got %v", ic.TypeCode)
	}
	// UDP to the router: refused by the default (no port unreachable).
	if _, onB = l.fromB6(seg6{src: ip6HostB, dst: ip6RB, sport: 1000, dport: 33434, udp: true}); len(onB) != 0 {
		t.Fatal("udp to the router answered")
	}
	// Neighbour solicitation: answered although the ruleset has no rule for it.
	l.pb.Inject(nsFrame(t, hostB, ip6HostB, ip6RB))
	l.run()
	if len(l.pb.Take()) != 1 {
		t.Fatal("NS not answered")
	}
	rules, def := filterCounts(t, l.r, "vm-in6")
	if rules[3].Hits != 1 || def.Hits != 1 {
		t.Fatalf("echo rule %+v default %+v", rules[3], def)
	}
}

// A reload that removes the rule an IPv6 flow was accepted by flushes its
// session and says so.
func TestFilter6Reload(t *testing.T) {
	l := filter6Lab(t, "", "")
	for _, dport := range []uint16{22, 80} {
		l.fromA6(seg6{src: ip6HostA, dst: ip6HostB, sport: 40000, dport: dport, flags: "S", seq: 1})
		l.fromB6(seg6{src: ip6HostB, dst: ip6HostA, sport: dport, dport: 40000, flags: "SA", seq: 9, ack: 2})
	}
	if l.r.NAT.Len6() != 2 {
		t.Fatalf("%d sessions", l.r.NAT.Len6())
	}
	cfg, err := config.Parse("f6.toml", []byte(strings.Replace(filter6Base, `dport = "22,80"`, `dport = "22"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := l.r.Reconfigure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sum, "1 session flushed: no longer accepted by filter vm-in6") {
		t.Fatalf("reload summary %q", sum)
	}
	if _, onB := l.fromA6(seg6{src: ip6HostA, dst: ip6HostB, sport: 40000, dport: 80, flags: "A", seq: 2, ack: 10}); len(onB) != 0 {
		t.Fatal("the cut http connection still reaches the VM")
	}
	if _, onB := l.fromA6(seg6{src: ip6HostA, dst: ip6HostB, sport: 40000, dport: 22, flags: "A", seq: 2, ack: 10}); len(onB) != 1 {
		t.Fatal("ssh cut by the reload")
	}
}

func TestFilter6Trace(t *testing.T) {
	l := filter6Lab(t, "", "")
	if err := l.r.Trace(4); err != nil {
		t.Fatal(err)
	}
	l.fromA6(seg6{src: ip6HostA, dst: ip6HostB, sport: 40000, dport: 22, flags: "S"})
	l.fromB6(seg6{src: ip6HostB, dst: ip6HostA, sport: 22, dport: 40000, flags: "SA", ack: 1})
	l.fromA6(seg6{src: ip6HostA, dst: ip6HostB, sport: 40000, dport: 25, flags: "S"})
	l.fromA6(seg6{src: ip6HostA, dst: ip6HostB, sport: 40000, dport: 443, flags: "S"})
	out := strings.Join(l.r.TraceLines(), "\n") + "\n"
	rules := l.r.Config().Filters[0].Rules
	for _, want := range []string{
		fmt.Sprintf("  filter  out vm-in6 rule 1 (line %d): accept\n", rules[0].Pos.Line),
		"  filter  in established\n",
		"  filter  out vm-in6 default: drop\n",
		fmt.Sprintf("  filter  out vm-in6 rule 2 (line %d): reject\n", rules[1].Pos.Line),
		"  filter  reject: sent tcp reset to [2001:db8:a::10]:40000\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}
}

// An established filtered IPv6 flow, first packets (classified, given a
// session) and refused ones allocate nothing.
func TestFilter6ZeroAlloc(t *testing.T) {
	l := filter6Lab(t, "", "")
	l.pb.SetSink(true)
	l.fromA6(seg6{src: ip6HostA, dst: ip6HostB, sport: 40000, dport: 80, flags: "S", seq: 1})
	l.fromB6(seg6{src: ip6HostB, dst: ip6HostA, sport: 80, dport: 40000, flags: "SA", seq: 9, ack: 2})
	est := seg6{src: ip6HostA, dst: ip6HostB, sport: 40000, dport: 80, flags: "A", seq: 2, ack: 10, payload: make([]byte, 64)}.frame(t, hostA, macA)
	if a := l.allocsPerBatch(200, 32, same(est)); a != 0 {
		t.Fatalf("%.1f allocations per batch of an established flow", a)
	}
	firsts := make([][]byte, 32*101)
	for i := range firsts {
		firsts[i] = seg6{src: ip6HostA, dst: ip6HostB, sport: 1000 + uint16(i), dport: 22, flags: "S"}.frame(t, hostA, macA)
	}
	k := 0
	before := l.r.Counters()[CntForwarded6]
	if a := l.allocsPerBatch(100, 32, func(int) []byte { k++; return firsts[k-1] }); a != 0 {
		t.Fatalf("%.1f allocations per batch of first packets", a)
	}
	if got := l.r.Counters()[CntForwarded6] - before; got != 101*32 {
		t.Fatalf("%d first packets forwarded", got)
	}
	refused := seg6{src: ip6HostA, dst: ip6HostB, sport: 1, dport: 25, flags: "S"}.frame(t, hostA, macA)
	if a := l.allocsPerBatch(200, 32, same(refused)); a != 0 {
		t.Fatalf("%.1f allocations per batch of refused first packets", a)
	}
}

// BenchmarkFilter6Established forwards the segments of one established
// IPv6 TCP flow through b's filter_out (the conntrack lookup and
// accounting per packet); compare with BenchmarkPipelineForward6 (no
// filter) by instruction counts as BenchmarkFilterEstablished says.
func BenchmarkFilter6Established(b *testing.B) {
	l := filter6Lab(b, "", "")
	l.fromA6(seg6{src: ip6HostA, dst: ip6HostB, sport: 40000, dport: 80, flags: "S", seq: 1})
	l.fromB6(seg6{src: ip6HostB, dst: ip6HostA, sport: 80, dport: 40000, flags: "SA", seq: 9, ack: 2})
	l.pb.SetSink(true)
	frame := seg6{src: ip6HostA, dst: ip6HostB, sport: 40000, dport: 80, flags: "A", seq: 2, ack: 10, payload: make([]byte, 6)}.frame(b, hostA, macA)
	runGen(b, l, pipe.NewGenerator("pa", macA, 1500, [][]byte{frame}))
	if l.r.Counters()[CntForwarded6] < uint64(b.N) {
		b.Fatal("not forwarded")
	}
}
