package nat

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/config"
	"vrouter/packet"
)

// Network indices of the test configuration.
const (
	nInside  = 0 // 10.1.1.0/24
	nPublic  = 1 // 203.0.113.0/24
	nInside2 = 2 // 10.1.2.0/24
)

const sec = int64(time.Second)

func testConfig() *config.Config {
	c := &config.Config{
		Networks: []config.Network{
			{Name: "inside", Addresses: []netip.Prefix{netip.MustParsePrefix("10.1.1.1/24")}},
			{Name: "public", Addresses: []netip.Prefix{netip.MustParsePrefix("203.0.113.1/24")}},
			{Name: "inside2", Addresses: []netip.Prefix{netip.MustParsePrefix("10.1.2.1/24")}},
		},
		NAT: config.NAT{
			Filtering: "address-dependent",
			SNAT: []config.SNAT{{
				Source: netip.MustParsePrefix("10.1.0.0/16"),
				Out:    "public",
				To:     config.AddrRange{First: netip.MustParseAddr("203.0.113.1"), Last: netip.MustParseAddr("203.0.113.1")},
				Ports:  config.PortRange{Lo: 1024, Hi: 65535},
			}},
			Floating: []config.Floating{{External: netip.MustParseAddr("203.0.113.50"), Internal: netip.MustParseAddr("10.1.1.5")}},
			Forward: []config.Forward{{Proto: "tcp", External: netip.MustParseAddrPort("203.0.113.1:8080"),
				Internal: []netip.AddrPort{netip.MustParseAddrPort("10.1.1.6:80")}}},
		},
		Conntrack: config.Conntrack{
			Max:            1024,
			TCPEstablished: 2*time.Hour + 4*time.Minute,
			TCPTransitory:  4 * time.Minute,
			UDP:            5 * time.Minute,
			ICMP:           60 * time.Second,
		},
	}
	c.ApplyDefaults()
	return c
}

// cfgSlots numbers c's networks in configuration order (the slots of the
// test networks above).
func cfgSlots(c *config.Config) func(string) (uint16, bool) {
	return func(name string) (uint16, bool) {
		i := c.NetworkIndex(name)
		return uint16(i), i >= 0
	}
}

// compileRules compiles c's rules with cfgSlots.
func compileRules(t testing.TB, c *config.Config) *Rules {
	t.Helper()
	r, err := Compile(c, cfgSlots(c))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// commit compiles c, commits it and has the workers use it.
func commit(t testing.TB, n *NAT, c *config.Config, ws ...*Worker) (int, string) {
	t.Helper()
	r := compileRules(t, c)
	for _, w := range ws {
		w.Use(r)
	}
	return n.Commit(r)
}

func newNAT(t testing.TB, c *config.Config) (*NAT, *Worker) {
	t.Helper()
	n, err := New(c, compileRules(t, c))
	if err != nil {
		t.Fatal(err)
	}
	return n, n.NewWorker()
}

// pk describes a test packet.
type pk struct {
	src, dst     string
	proto        uint8
	sport, dport uint16
	flags        uint8 // TCP
	seq, ack     uint32
	win          uint16
	icmpType     uint8
	icmpCode     uint8
	id           uint16 // ICMP id
	payload      []byte
	noUDPCsum    bool
	ipID         uint16
	ttl          uint8
}

// build serializes p with gopacket (the independent oracle).
func build(t testing.TB, p pk) packet.IPv4 {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: net.ParseIP(p.src).To4(), DstIP: net.ParseIP(p.dst).To4(),
		Protocol: layers.IPProtocol(p.proto), Id: p.ipID}
	if p.ttl != 0 {
		ip.TTL = p.ttl
	}
	opts := gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}
	buf := gopacket.NewSerializeBuffer()
	var ls []gopacket.SerializableLayer
	switch p.proto {
	case packet.ProtoTCP:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(p.sport), DstPort: layers.TCPPort(p.dport), Seq: p.seq, Ack: p.ack, Window: p.win,
			SYN: p.flags&packet.TCPSyn != 0, ACK: p.flags&packet.TCPAck != 0, FIN: p.flags&packet.TCPFin != 0,
			RST: p.flags&packet.TCPRst != 0, PSH: p.flags&packet.TCPPsh != 0}
		if tcp.Window == 0 {
			tcp.Window = 65535
		}
		tcp.SetNetworkLayerForChecksum(ip)
		ls = []gopacket.SerializableLayer{ip, tcp, gopacket.Payload(p.payload)}
	case packet.ProtoUDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(p.sport), DstPort: layers.UDPPort(p.dport)}
		udp.SetNetworkLayerForChecksum(ip)
		ls = []gopacket.SerializableLayer{ip, udp, gopacket.Payload(p.payload)}
	case packet.ProtoICMP:
		ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(p.icmpType, p.icmpCode), Id: p.id, Seq: 1}
		ls = []gopacket.SerializableLayer{ip, ic, gopacket.Payload(p.payload)}
	default:
		ls = []gopacket.SerializableLayer{ip, gopacket.Payload(p.payload)}
	}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatal(err)
	}
	b := append([]byte(nil), buf.Bytes()...)
	if p.proto == packet.ProtoUDP && p.noUDPCsum {
		b[20+6], b[20+7] = 0, 0
	}
	return packet.IPv4(b)
}

// icmpErr builds an ICMP error from src to dst quoting q (whole packet, or
// the first n bytes when n > 0).
func icmpErr(t testing.TB, src, dst string, typ, code uint8, q []byte, n int) packet.IPv4 {
	t.Helper()
	if n > 0 && n < len(q) {
		q = q[:n]
	}
	return build(t, pk{src: src, dst: dst, proto: packet.ProtoICMP, icmpType: typ, icmpCode: code, payload: q})
}

// --- independent checksum verification (RFC 1071 written out plainly) ---

func sum16(b []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// checkSums verifies every checksum of p (header; TCP/UDP with pseudo header
// unless fragmented; ICMP; and for ICMP errors the quoted IP header).
func checkSums(t testing.TB, p []byte) {
	t.Helper()
	ihl := int(p[0]&0xf) * 4
	if fold(sum16(p[:ihl])) != 0xffff {
		t.Fatalf("bad IP header checksum: % x", p[:ihl])
	}
	tl := int(binary.BigEndian.Uint16(p[2:]))
	l4 := p[ihl:tl]
	frag := binary.BigEndian.Uint16(p[6:])&0x3fff != 0
	if frag {
		return
	}
	pseudo := sum16(p[12:20]) + uint32(p[9]) + uint32(len(l4))
	switch p[9] {
	case packet.ProtoTCP:
		if fold(sum16(l4)+pseudo) != 0xffff {
			t.Fatalf("bad TCP checksum")
		}
	case packet.ProtoUDP:
		if binary.BigEndian.Uint16(l4[6:]) != 0 && fold(sum16(l4)+pseudo) != 0xffff {
			t.Fatalf("bad UDP checksum")
		}
	case packet.ProtoICMP:
		if fold(sum16(l4)) != 0xffff {
			t.Fatalf("bad ICMP checksum")
		}
		if packet.IsICMPError(l4[0]) && len(l4) >= 28 {
			in := l4[8:]
			iihl := int(in[0]&0xf) * 4
			if len(in) >= iihl && fold(sum16(in[:iihl])) != 0xffff {
				t.Fatalf("bad quoted IP header checksum")
			}
			// When the whole quoted datagram is there, its transport checksum too.
			if len(in) >= int(binary.BigEndian.Uint16(in[2:])) {
				checkSums(t, in[:binary.BigEndian.Uint16(in[2:])])
			}
		}
	}
}

// decoded is what the oracle reads back from a packet.
type decoded struct {
	src, dst     string
	sport, dport uint16
	id           uint16
	proto        uint8
	payload      []byte
}

func decode(t testing.TB, p []byte) decoded {
	t.Helper()
	g := gopacket.NewPacket(p, layers.LayerTypeIPv4, gopacket.Default)
	ip, _ := g.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip == nil {
		t.Fatalf("not IPv4: %v", g)
	}
	d := decoded{src: ip.SrcIP.String(), dst: ip.DstIP.String(), proto: uint8(ip.Protocol)}
	if l, ok := g.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
		d.sport, d.dport, d.payload = uint16(l.SrcPort), uint16(l.DstPort), l.Payload
	} else if l, ok := g.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
		d.sport, d.dport, d.payload = uint16(l.SrcPort), uint16(l.DstPort), l.Payload
	} else if l, ok := g.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
		d.id, d.payload = l.Id, l.Payload
	}
	return d
}

func mustVerdict(t testing.TB, gotV Verdict, gotR Reason, want Verdict) {
	t.Helper()
	if gotV != want {
		t.Fatalf("verdict %v (%v), want %v", gotV, gotR, want)
	}
}

// out runs p through Out (from inside to public) and checks the verdict.
func out(t testing.TB, w *Worker, p packet.IPv4, now int64, want Verdict) decoded {
	t.Helper()
	v, r := w.In(p, nInside, now)
	if v == Drop {
		t.Fatalf("In dropped outbound packet: %v", r)
	}
	v2, r2 := w.Out(p, nInside, nPublic, now)
	if v2 != Pass || v != Translated {
		v, r = v2, r2
	}
	mustVerdict(t, v, r, want)
	checkSums(t, p)
	return decode(t, p)
}

// in runs p arriving on public through In (and Out towards inside).
func in(t testing.TB, w *Worker, p packet.IPv4, now int64, want Verdict) decoded {
	t.Helper()
	v, r := w.In(p, nPublic, now)
	if v != Drop {
		v2, r2 := w.Out(p, nPublic, nInside, now)
		if v2 == Drop {
			t.Fatalf("Out dropped inbound packet: %v", r2)
		}
		if v2 == Translated {
			v = v2
		}
	}
	mustVerdict(t, v, r, want)
	checkSums(t, p)
	return decode(t, p)
}

// counts is n.Counters() by name.
func counts(n *NAT) map[string]uint64 {
	m := map[string]uint64{}
	for _, v := range n.Counters() {
		m[v.Name] = v.Value
	}
	return m
}
