package router

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/config"
	"vrouter/internal/clock"
	"vrouter/packet"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

// The IPv6 lab: network a (2001:db8:a::1/64, ra, on pa) and network b
// (2001:db8:b::1/64, pb with MTU 1400), a route 2001:db8:c::/48 via
// host B, and unreachable / prohibit routes.
var (
	ip6HostA = netip.MustParseAddr("2001:db8:a::10")
	ip6HostB = netip.MustParseAddr("2001:db8:b::10")
	ip6RA    = netip.MustParseAddr("2001:db8:a::1")
	ip6RB    = netip.MustParseAddr("2001:db8:b::1")
	llHostA  = netip.MustParseAddr("fe80::aa")
)

func testConfig6() *config.Config {
	c := testConfig()
	c.Networks[0].Addresses6 = []netip.Prefix{netip.MustParsePrefix("2001:db8:a::1/64")}
	c.Networks[0].RA = true
	c.Networks[0].DNS = []netip.Addr{netip.MustParseAddr("2001:db8::53")}
	c.Networks[1].Addresses6 = []netip.Prefix{netip.MustParsePrefix("2001:db8:b::1/64")}
	c.Routes6 = []config.Route{
		{Prefix: netip.MustParsePrefix("2001:db8:c::/48"), Via: ip6HostB, Type: config.RouteUnicast},
		{Prefix: netip.MustParsePrefix("2001:db8:dead::/48"), Type: config.RouteUnreachable},
		{Prefix: netip.MustParsePrefix("2001:db8:beef::/48"), Type: config.RouteProhibit},
	}
	return c
}

func newLab6(t testing.TB) *lab { return labWith(t, testConfig6()) }

func a16(a netip.Addr) net.IP { b := a.As16(); return net.IP(b[:]) }

// ip6Frame builds an Ethernet/IPv6 frame with gopacket; the layers after
// the IPv6 header are given (their next-header chain is the caller's).
func ip6Frame(t testing.TB, srcMAC net.HardwareAddr, dstMAC [6]byte, src, dst netip.Addr, hop uint8, next layers.IPProtocol, ls ...gopacket.SerializableLayer) []byte {
	ip := &layers.IPv6{Version: 6, NextHeader: next, HopLimit: hop, SrcIP: a16(src), DstIP: a16(dst)}
	for _, l := range ls {
		if ic, ok := l.(*layers.ICMPv6); ok {
			ic.SetNetworkLayerForChecksum(ip)
		}
		if u, ok := l.(*layers.UDP); ok {
			u.SetNetworkLayerForChecksum(ip)
		}
		if tc, ok := l.(*layers.TCP); ok {
			tc.SetNetworkLayerForChecksum(ip)
		}
	}
	all := append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC[:], EthernetType: layers.EthernetTypeIPv6}, ip}, ls...)
	return ser(t, all...)
}

func echo6(t testing.TB, srcMAC net.HardwareAddr, dstMAC [6]byte, src, dst netip.Addr, hop uint8, size int) []byte {
	return ip6Frame(t, srcMAC, dstMAC, src, dst, hop, layers.IPProtocolICMPv6,
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)},
		&layers.ICMPv6Echo{Identifier: 7, SeqNumber: 1}, gopacket.Payload(bytes.Repeat([]byte{0x5a}, size)))
}

// nsFrame is host's neighbour solicitation for target.
func nsFrame(t testing.TB, srcMAC net.HardwareAddr, src, target netip.Addr) []byte {
	sn := packet.SolicitedNode(target.As16())
	dmac := packet.MulticastMAC6(sn)
	var opts layers.ICMPv6Options
	if !src.IsUnspecified() {
		opts = layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: srcMAC}}
	}
	return ip6Frame(t, srcMAC, dmac, src, netip.AddrFrom16(sn), 255, layers.IPProtocolICMPv6,
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)},
		&layers.ICMPv6NeighborSolicitation{TargetAddress: a16(target), Options: opts})
}

// naFrame is host's solicited advertisement of its own address to the router.
func naFrame(t testing.TB, srcMAC net.HardwareAddr, dstMAC [6]byte, src, dst netip.Addr) []byte {
	return ip6Frame(t, srcMAC, dstMAC, src, dst, 255, layers.IPProtocolICMPv6,
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0)},
		&layers.ICMPv6NeighborAdvertisement{Flags: 0x60, TargetAddress: a16(src),
			Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptTargetAddress, Data: srcMAC}}})
}

func decode6(t testing.TB, f []byte) (gopacket.Packet, *layers.IPv6) {
	t.Helper()
	p := decode(f)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("gopacket: %v in %v", el.Error(), p)
	}
	ip, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if ip == nil {
		t.Fatalf("no IPv6 layer in %v", p)
	}
	if ic, ok := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok {
		ic.SetNetworkLayerForChecksum(ip)
		if err, res := ic.VerifyChecksum(); err != nil || !res.Valid {
			t.Fatalf("bad ICMPv6 checksum in %v", p)
		}
	}
	return p, ip
}

func icmp6Of(t testing.TB, p gopacket.Packet) *layers.ICMPv6 {
	t.Helper()
	ic, _ := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if ic == nil {
		t.Fatalf("no ICMPv6 in %v", p)
	}
	return ic
}

// resolve6 makes the router learn host A (its NS for the router) and host B
// (the router's NS, B's NA).
func (l *lab) resolve6() {
	t := l.t
	l.pa.Inject(nsFrame(t, hostA, ip6HostA, ip6RA))
	l.run()
	out := l.pa.Take()
	if len(out) != 1 {
		t.Fatalf("want 1 NA, got %d", len(out))
	}
	p, ip := decode6(t, out[0])
	na, _ := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if na == nil || !na.Solicited() || !na.Router() || !na.Override() || !na.TargetAddress.Equal(a16(ip6RA)) ||
		ip.HopLimit != 255 || !ip.DstIP.Equal(a16(ip6HostA)) || len(na.Options) != 1 || !bytes.Equal(na.Options[0].Data, macA[:]) {
		t.Fatalf("bad NA %v", p)
	}
	if eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet); !bytes.Equal(eth.DstMAC, hostA) {
		t.Fatalf("NA to %v", eth.DstMAC)
	}
	// Host B, from its NS for the router (an unsolicited NA would not
	// create an entry, RFC 4861 7.2.5).
	l.pb.Inject(nsFrame(t, hostB, ip6HostB, ip6RB))
	// Host A's link-local address, from its NS for the router's.
	l.pa.Inject(nsFrame(t, hostA, llHostA, netip.AddrFrom16(packet.LinkLocalEUI64(macA))))
	l.run()
	if out := l.pa.Take(); len(out) != 1 {
		t.Fatalf("link-local NS: %d answers", len(out))
	}
	if out := l.pb.Take(); len(out) != 1 {
		t.Fatalf("B's NS: %d answers", len(out))
	}
	if _, ok := l.r.Neigh.Lookup6(1, ip6HostB.As16()); !ok {
		t.Fatal("B not resolved")
	}
}

func TestIPv6EchoAndNS(t *testing.T) {
	l := newLab6(t)
	l.resolve6()
	l.pa.Inject(echo6(t, hostA, macA, ip6HostA, ip6RA, 64, 56))
	l.run()
	out := l.pa.Take()
	if len(out) != 1 {
		t.Fatalf("want echo reply, got %d", len(out))
	}
	p, ip := decode6(t, out[0])
	ic := icmp6Of(t, p)
	e, _ := p.Layer(layers.LayerTypeICMPv6Echo).(*layers.ICMPv6Echo)
	if ic.TypeCode.Type() != layers.ICMPv6TypeEchoReply || e == nil || e.Identifier != 7 || len(e.Payload) != 56 ||
		!ip.SrcIP.Equal(a16(ip6RA)) || !ip.DstIP.Equal(a16(ip6HostA)) {
		t.Fatalf("bad echo reply %v", p)
	}
	// The router's other address and its link-local one answer too.
	ll := netip.AddrFrom16(packet.LinkLocalEUI64(macA))
	l.pa.Inject(echo6(t, hostA, macA, llHostA, ll, 64, 8))
	l.run()
	if out := l.pa.Take(); len(out) != 1 {
		t.Fatalf("link-local echo: %d frames", len(out))
	}
	l.pa.Inject(echo6(t, hostA, macA, ip6HostA, ip6RB, 64, 8))
	l.run()
	if out := l.pa.Take(); len(out) != 1 {
		t.Fatal("echo to the other network's address not answered")
	}
	if c := l.r.Counters(); c[CntEchoReplies6] != 3 || c[CntNASent] != 3 {
		t.Fatalf("echo6 %d na %d", c[CntEchoReplies6], c[CntNASent])
	}
	// NS for an address that is not the router's: its group is not the
	// router's; sent unicast to the router, it is not answered either.
	other := netip.MustParseAddr("2001:db8:a::99")
	l.pa.Inject(nsFrame(t, hostA, ip6HostA, other))
	l.pa.Inject(ip6Frame(t, hostA, macA, ip6HostA, ip6RA, 255, layers.IPProtocolICMPv6,
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)},
		&layers.ICMPv6NeighborSolicitation{TargetAddress: a16(other)}))
	l.run()
	if out := l.pa.Take(); len(out) != 0 || l.r.Drops()[DropNDNotOurs] != 1 || l.r.Drops()[DropIPv6Multicast] != 1 {
		t.Fatal("NS for another address answered")
	}
}

func TestIPv6ForwardQueuedUntilResolved(t *testing.T) {
	l := newLab6(t)
	l.pa.Inject(nsFrame(t, hostA, ip6HostA, ip6RA))
	l.run()
	l.pa.Take()
	l.pa.Inject(echo6(t, hostA, macA, ip6HostA, ip6HostB, 64, 100))
	l.run()
	out := l.pb.Take()
	if len(out) != 1 {
		t.Fatalf("want one NS on b, got %d", len(out))
	}
	p, ip := decode6(t, out[0])
	ns, _ := p.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(*layers.ICMPv6NeighborSolicitation)
	sn := packet.SolicitedNode(ip6HostB.As16())
	eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if ns == nil || !ns.TargetAddress.Equal(a16(ip6HostB)) || !ip.DstIP.Equal(net.IP(sn[:])) || !ip.SrcIP.Equal(a16(ip6RB)) ||
		ip.HopLimit != 255 || !bytes.Equal(eth.DstMAC, []byte{0x33, 0x33, 0xff, 0, 0, 0x10}) {
		t.Fatalf("bad NS %v", p)
	}
	if l.r.Drops()[DropNDQueued] != 1 {
		t.Fatal("not queued")
	}
	l.pb.Inject(naFrame(t, hostB, macB, ip6HostB, ip6RB))
	l.run()
	out = l.pb.Take()
	if len(out) != 1 {
		t.Fatalf("queued packet not sent: %d", len(out))
	}
	p, ip = decode6(t, out[0])
	eth = p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if ip.HopLimit != 63 || !bytes.Equal(eth.DstMAC, hostB) || !bytes.Equal(eth.SrcMAC, macB[:]) || !ip.DstIP.Equal(a16(ip6HostB)) {
		t.Fatalf("bad forwarded frame %v", p)
	}
	// Via a gateway: 2001:db8:c::/48 via host B.
	l.pa.Inject(echo6(t, hostA, macA, ip6HostA, netip.MustParseAddr("2001:db8:c::5"), 64, 10))
	l.run()
	if out := l.pb.Take(); len(out) != 1 || !bytes.Equal(decode(out[0]).Layer(layers.LayerTypeEthernet).(*layers.Ethernet).DstMAC, hostB) {
		t.Fatal("not forwarded via the gateway")
	}
	if l.r.Counters()[CntForwarded6] != 2 {
		t.Fatal("forwarded6 not counted")
	}
	// The neighbour cache shows both families' entries.
	var v6 int
	for _, e := range l.r.Neigh.Entries(0) {
		if e.V6 {
			v6++
		}
	}
	if v6 != 2 {
		t.Fatalf("%d IPv6 neighbours", v6)
	}
}

// expectICMP6 checks that frames hold exactly one ICMPv6 error of typ/code
// to host A from the router and returns its body.
func expectICMP6(t *testing.T, frames [][]byte, typ, code uint8) (*layers.IPv6, *layers.ICMPv6) {
	t.Helper()
	if len(frames) != 1 {
		t.Fatalf("want 1 ICMPv6 frame, got %d", len(frames))
	}
	p, ip := decode6(t, frames[0])
	ic := icmp6Of(t, p)
	if ic.TypeCode.Type() != typ || ic.TypeCode.Code() != code {
		t.Fatalf("got %v, want %d/%d", ic.TypeCode, typ, code)
	}
	if !ip.DstIP.Equal(a16(ip6HostA)) || !ip.SrcIP.Equal(a16(ip6RA)) {
		t.Fatalf("error %v -> %v", ip.SrcIP, ip.DstIP)
	}
	return ip, ic
}

func TestIPv6Errors(t *testing.T) {
	l := newLab6(t)
	l.resolve6()
	cases := []struct {
		name  string
		frame []byte
		drop  DropReason
		typ   uint8 // 0: no ICMPv6 error
		code  uint8
		param uint32
	}{
		{"hop limit 1", echo6(t, hostA, macA, ip6HostA, ip6HostB, 1, 8), DropIPv6HopLimit, packet.ICMPv6TimeExceeded, 0, 0},
		{"hop limit 0", echo6(t, hostA, macA, ip6HostA, ip6HostB, 0, 8), DropIPv6HopLimit, packet.ICMPv6TimeExceeded, 0, 0},
		{"no route", echo6(t, hostA, macA, ip6HostA, netip.MustParseAddr("2001:db9::1"), 64, 8), DropNoRoute, packet.ICMPv6DstUnreach, 0, 0},
		{"unreachable route", echo6(t, hostA, macA, ip6HostA, netip.MustParseAddr("2001:db8:dead::1"), 64, 8), DropUnreachableRoute, packet.ICMPv6DstUnreach, 0, 0},
		{"prohibit route", echo6(t, hostA, macA, ip6HostA, netip.MustParseAddr("2001:db8:beef::1"), 64, 8), DropProhibitedRoute, packet.ICMPv6DstUnreach, 1, 0},
		{"too big", echo6(t, hostA, macA, ip6HostA, ip6HostB, 64, 1400), DropIPv6TooBig, packet.ICMPv6PacketTooBig, 0, 1400},
		{"link-local source", echo6(t, hostA, macA, llHostA, ip6HostB, 64, 8), DropIPv6LinkLocal, 0, 0, 0},
		{"link-local destination", echo6(t, hostA, macA, ip6HostA, netip.MustParseAddr("fe80::bb"), 64, 8), DropIPv6LinkLocal, 0, 0, 0},
		{"multicast", echo6(t, hostA, macA, ip6HostA, netip.MustParseAddr("ff0e::1"), 64, 8), DropIPv6Multicast, 0, 0, 0},
		{"udp to the router", ip6Frame(t, hostA, macA, ip6HostA, ip6RA, 64, layers.IPProtocolUDP,
			&layers.UDP{SrcPort: 1000, DstPort: 33434}, gopacket.Payload("x")), DropLocalProto, packet.ICMPv6DstUnreach, 4, 0},
		{"unknown next header", ip6Frame(t, hostA, macA, ip6HostA, ip6RA, 64, 253, gopacket.Payload("xxxxxxxx")),
			DropIPv6UnknownNext, packet.ICMPv6ParamProblem, 1, 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := l.dropFromA(t, tc.frame, tc.drop)
			if tc.typ == 0 {
				if len(out) != 0 {
					if tc.drop == DropIPv6LinkLocal && len(out) == 1 {
						// link-local source: 1/2 back to it, from the router's link-local address
						p, ip := decode6(t, out[0])
						if ic := icmp6Of(t, p); ic.TypeCode.Type() != 1 || ic.TypeCode.Code() != 2 || !ip.DstIP.Equal(a16(llHostA)) ||
							!ip.SrcIP.Equal(net.IP(func() []byte { a := packet.LinkLocalEUI64(macA); return a[:] }())) {
							t.Fatalf("bad beyond-scope error %v", p)
						}
						return
					}
					t.Fatalf("unexpected frames %d", len(out))
				}
				return
			}
			_, ic := expectICMP6(t, out, tc.typ, tc.code)
			if got := binary.BigEndian.Uint32(ic.Payload[0:4]); got != tc.param {
				t.Fatalf("param %d, want %d", got, tc.param)
			}
			// The quote starts with the offending packet's IPv6 header.
			if q := ic.Payload[4:]; len(q) < 40 || q[0]>>4 != 6 || !bytes.Equal(q[8:24], a16(ip6HostA)) {
				t.Fatalf("bad quote % x", q[:min(len(q), 40)])
			}
		})
	}
}

// dropFromA injects frame on port a and checks that the router drops it
// for reason drop (counted once, nothing forwarded); it returns the frames
// sent back on a.
func (l *lab) dropFromA(t *testing.T, frame []byte, drop DropReason) [][]byte {
	t.Helper()
	before := l.r.Drops()[drop]
	l.pa.Inject(frame)
	l.run()
	if got := l.r.Drops()[drop] - before; got != 1 {
		t.Fatalf("%s counted %d times", drop, got)
	}
	if l.pb.Take() != nil {
		t.Fatal("forwarded")
	}
	return l.pa.Take()
}

func TestIPv6Malformed(t *testing.T) {
	l := newLab6(t)
	l.resolve6()
	good := echo6(t, hostA, macA, ip6HostA, ip6HostB, 64, 8)
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	rh0 := &layers.IPv6Routing{RoutingType: 0, SegmentsLeft: 1, Reserved: []byte{0, 0, 0, 0}, SourceRoutingIPs: []net.IP{a16(ip6HostB)}}
	rh0.NextHeader = layers.IPProtocolICMPv6
	hbhBad := &layers.IPv6HopByHop{Options: []*layers.IPv6HopByHopOption{{OptionType: 0x9e, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}}
	hbhBad.NextHeader = layers.IPProtocolNoNextHeader
	cases := []struct {
		name  string
		frame []byte
		drop  DropReason
		typ   uint8
	}{
		{"truncated header", good[:14+30], DropIPv6TooShort, 0},
		{"bad version", mut(func(b []byte) []byte { b[14] = 0x40; return b }), DropIPv6Version, 0},
		{"payload length too large", mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[18:], 500); return b }), DropIPv6BadLength, 0},
		{"type 0 routing header", ip6Frame(t, hostA, macA, ip6HostA, ip6HostB, 64, layers.IPProtocolIPv6Routing, rh0,
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, &layers.ICMPv6Echo{}), DropIPv6RH0, 0},
		{"truncated extension", ip6Frame(t, hostA, macA, ip6HostA, ip6HostB, 64, layers.IPProtocolIPv6Destination,
			gopacket.Payload([]byte{59, 4, 1, 2, 0, 0, 0, 0})), DropIPv6BadExt, 0},
		{"unknown hop-by-hop option (10)", ip6Frame(t, hostA, macA, ip6HostA, ip6HostB, 64, layers.IPProtocolIPv6HopByHop, hbhBad),
			DropIPv6BadOption, packet.ICMPv6ParamProblem},
		{"source ::1", echo6(t, hostA, macA, netip.MustParseAddr("::1"), ip6HostB, 64, 8), DropIPv6MartianSource, 0},
		{"IPv6 on an IPv4 frame type", mut(func(b []byte) []byte { b[12], b[13] = 0x08, 0x00; return b }), DropIPVersion, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := l.dropFromA(t, tc.frame, tc.drop)
			if tc.typ == 0 {
				if len(out) != 0 {
					t.Fatalf("%d frames sent", len(out))
				}
				return
			}
			expectICMP6(t, out, tc.typ, 2)
		})
	}
}

func TestIPv6Off(t *testing.T) {
	l := newLab(t) // IPv4 only
	l.pa.Inject(echo6(t, hostA, macA, ip6HostA, ip6RA, 64, 8))
	l.run()
	if l.r.Drops()[DropIPv6Off] != 1 || len(l.pa.Take()) != 0 {
		t.Fatal("IPv6 on an IPv4-only network not dropped as ipv6-off")
	}
}

func TestRouterAdvertisements(t *testing.T) {
	l := newLab6(t)
	l.clk.Advance(1000 * time.Second)
	l.r.announce()
	// DAD probes for the link-local and global addresses of each network.
	for _, p := range []*pipe.Port{l.pa, l.pb} {
		dad := 0
		for _, f := range p.Take() {
			pk := decode(f)
			if ns, ok := pk.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(*layers.ICMPv6NeighborSolicitation); ok {
				ip := pk.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
				if !ip.SrcIP.IsUnspecified() || len(ns.Options) != 0 {
					t.Fatalf("bad DAD probe %v", pk)
				}
				dad++
			}
		}
		if dad != 2 {
			t.Fatalf("%d DAD probes on %s", dad, p.Name())
		}
	}
	l.r.Tick()
	out := l.pa.Take()
	if len(out) != 1 || l.pb.Take() != nil {
		t.Fatalf("want one RA on a only, got %d", len(out))
	}
	p, ip := decode6(t, out[0])
	ra, _ := p.Layer(layers.LayerTypeICMPv6RouterAdvertisement).(*layers.ICMPv6RouterAdvertisement)
	ll := packet.LinkLocalEUI64(macA)
	if ra == nil || ra.RouterLifetime != 1800 || !ip.SrcIP.Equal(net.IP(ll[:])) || !ip.DstIP.Equal(net.IP(packet.AllNodes[:])) || ip.HopLimit != 255 {
		t.Fatalf("bad RA %v", p)
	}
	var pfx, mtu, dns bool
	for _, o := range ra.Options {
		switch o.Type {
		case layers.ICMPv6OptPrefixInfo:
			pfx = o.Data[0] == 64 && o.Data[1]&0x40 != 0 && bytes.Equal(o.Data[14:30], a16(netip.MustParseAddr("2001:db8:a::")))
		case layers.ICMPv6OptMTU:
			mtu = binary.BigEndian.Uint32(o.Data[2:]) == 1500
		case 25:
			dns = bytes.Equal(o.Data[6:22], a16(netip.MustParseAddr("2001:db8::53")))
		}
	}
	if !pfx || !mtu || !dns {
		t.Fatalf("RA options: prefix %v mtu %v rdnss %v", pfx, mtu, dns)
	}
	// Nothing more until the next interval; the first ones come within 16 s.
	l.clk.Advance(time.Second)
	l.r.Tick()
	if len(l.pa.Take()) != 0 {
		t.Fatal("RA again after 1 s")
	}
	l.clk.Advance(16 * time.Second)
	l.r.Tick()
	if len(l.pa.Take()) != 1 {
		t.Fatal("no second initial RA within 16 s")
	}
	// A solicitation from a host gets a unicast answer.
	rs := ip6Frame(t, hostA, [6]byte(packet.MulticastMAC6(packet.AllRouters)), llHostA, netip.AddrFrom16(packet.AllRouters), 255, layers.IPProtocolICMPv6,
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeRouterSolicitation, 0)},
		&layers.ICMPv6RouterSolicitation{Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: hostA}}})
	l.pa.Inject(rs)
	l.run()
	out = l.pa.Take()
	if len(out) != 1 {
		t.Fatalf("RS not answered: %d", len(out))
	}
	p, ip = decode6(t, out[0])
	if p.Layer(layers.LayerTypeICMPv6RouterAdvertisement) == nil || !ip.DstIP.Equal(a16(llHostA)) ||
		!bytes.Equal(p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet).DstMAC, hostA) {
		t.Fatalf("bad solicited RA %v", p)
	}
	// An RS on a network without ra is ignored; other routers' RAs too.
	rsB := ip6Frame(t, hostB, [6]byte(packet.MulticastMAC6(packet.AllRouters)), llHostA, netip.AddrFrom16(packet.AllRouters), 255, layers.IPProtocolICMPv6,
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeRouterSolicitation, 0)},
		&layers.ICMPv6RouterSolicitation{})
	l.pb.Inject(rsB)
	l.run()
	if len(l.pb.Take()) != 0 || l.r.Drops()[DropNDIgnored] != 1 {
		t.Fatal("RS on a network without ra answered")
	}
	// A DAD probe from another host for the router's address: conflict, defended.
	l.pa.Inject(nsFrame(t, hostA, netip.IPv6Unspecified(), ip6RA))
	l.run()
	out = l.pa.Take()
	if l.r.Drops()[DropNDConflict] != 1 || len(out) != 1 {
		t.Fatalf("DAD conflict: drops %d frames %d", l.r.Drops()[DropNDConflict], len(out))
	}
	if p, ip := decode6(t, out[0]); !ip.DstIP.Equal(net.IP(packet.AllNodes[:])) || p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement) == nil {
		t.Fatalf("bad defence %v", p)
	}
}

func TestIPv6ForwardNoAlloc(t *testing.T) {
	l := newLab6(t)
	l.resolve6()
	frame := echo6(t, hostA, macA, ip6HostA, ip6HostB, 64, 64)
	l.pb.SetSink(true) // the pipe's own copies of sent frames would count
	allocs := l.allocsPerBatch(200, 32, same(frame))
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch, want 0", allocs)
	}
	if l.r.Counters()[CntForwarded6] < 200*32 {
		t.Fatal("not forwarded")
	}
	// The local path (echo to the router, NS) does not allocate either.
	for _, f := range [][]byte{echo6(t, hostA, macA, ip6HostA, ip6RA, 64, 64), nsFrame(t, hostA, ip6HostA, ip6RA),
		echo6(t, hostA, macA, ip6HostA, ip6HostB, 1, 64)} {
		l.pa.SetSink(true) // the pipe's own copies of sent frames would count
		allocs = l.allocsPerBatch(100, 8, same(f))
		if allocs != 0 {
			t.Fatalf("%.1f allocations per local batch", allocs)
		}
	}
}

// FuzzPipeline6 feeds arbitrary frames to an IPv6 router (neighbours on
// both sides resolved): no panic, and every IPv6 packet sent has a valid
// length, fits the egress MTU and, when ICMPv6, a valid checksum.
func FuzzPipeline6(f *testing.F) {
	l := newLab6(f)
	l.resolve6()
	f.Add(echo6(f, hostA, macA, ip6HostA, ip6HostB, 64, 100), false)
	f.Add(echo6(f, hostA, macA, ip6HostA, ip6HostB, 1, 10), false)
	f.Add(echo6(f, hostA, macA, ip6HostA, ip6RA, 64, 10), false)
	f.Add(nsFrame(f, hostA, ip6HostA, ip6RA), false)
	f.Add(naFrame(f, hostB, macB, ip6HostB, ip6RB), true)
	f.Add(ip6Frame(f, hostA, macA, ip6HostA, ip6RA, 64, 253, gopacket.Payload("xxxxxxxx")), false)
	f.Fuzz(func(t *testing.T, frame []byte, portB bool) {
		if len(frame) > 9000 {
			frame = frame[:9000]
		}
		if portB {
			l.pb.Inject(frame)
		} else {
			l.pa.Inject(frame)
		}
		l.run()
		l.r.Tick()
		for pi, out := range [][][]byte{l.pa.Take(), l.pb.Take()} {
			mtu := []int{1500, 1400}[pi]
			for _, o := range out {
				l2, ok := packet.ParseL2(o)
				if !ok {
					t.Fatalf("short frame sent: %x", o)
				}
				if l2.Type != packet.EtherTypeIPv6 {
					continue
				}
				ip, e := packet.CheckIPv6(o[l2.HdrLen:])
				if e != packet.IPv6OK {
					t.Fatalf("bad IPv6 sent (%d): %x", e, o)
				}
				if len(ip) > mtu {
					t.Fatalf("IPv6 of %d bytes sent on a %d MTU port", len(ip), mtu)
				}
				if x, xe := packet.WalkExt(ip); xe == packet.ExtOK && x.Proto == packet.ProtoICMPv6 && x.FragOff == 0 &&
					len(ip) > x.Off && !packet.ICMPv6ChecksumOK(ip.Src(), ip.Dst(), ip[x.Off:]) && ip.NextHeader() == packet.ProtoICMPv6 {
					// Forwarded packets keep whatever checksum they came with;
					// only the router's own messages must be right.
					if ip.Src() == ip6RA.As16() || ip.Src() == ip6RB.As16() || packet.IsLinkLocal6(ip.Src()) && ip.Src() == packet.LinkLocalEUI64(macA) {
						t.Fatalf("router sent ICMPv6 with a bad checksum: %x", o)
					}
				}
			}
		}
	})
}

func TestIPv6Trace(t *testing.T) {
	l := newLab6(t)
	l.resolve6()
	l.r.trace.arm(2)
	l.pa.Inject(echo6(t, hostA, macA, ip6HostA, ip6HostB, 64, 8))
	l.pa.Inject(echo6(t, hostA, macA, ip6HostA, ip6HostB, 1, 8))
	l.run()
	text := strings.Join(l.r.TraceLines(), "\n")
	for _, want := range []string{
		"ipv6    2001:db8:a::10 > 2001:db8:b::10 next-header 58 hop-limit 64 payload 16",
		"ipv6    fib6 connected network b",
		"ipv6    neighbour 2001:db8:b::10 on b is 02:bb:00:00:00:01",
		"tx      port pb vlan 0, 70 bytes",
		"ipv6    sent icmpv6 time exceeded (hop limit) to 2001:db8:a::10",
		"drop    ipv6-hop-limit",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("trace lacks %q:\n%s", want, text)
		}
	}
}

// BenchmarkPipelineForward6 is BenchmarkPipelineForward for IPv6 (UDP,
// 64-byte frames' worth of payload).
func BenchmarkPipelineForward6(b *testing.B) {
	l := newLab6(b)
	l.resolve6()
	l.pb.SetSink(true)
	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolUDP, HopLimit: 64, SrcIP: a16(ip6HostA), DstIP: a16(ip6HostB)}
	udp := &layers.UDP{SrcPort: 1000, DstPort: 2000}
	udp.SetNetworkLayerForChecksum(ip)
	frame := ser(b, &layers.Ethernet{SrcMAC: hostA, DstMAC: macA[:], EthernetType: layers.EthernetTypeIPv6},
		ip, udp, gopacket.Payload(make([]byte, 18)))
	runGen(b, l, pipe.NewGenerator("pa", macA, 1500, [][]byte{frame}))
}

// TestIPv6Reload: a reload that adds IPv6 to networks routes it (routes
// published, DAD probes sent); one that removes it drops IPv6 again and
// forgets the routes and the IPv6 neighbours.
func TestIPv6Reload(t *testing.T) {
	l := newLab(t)           // IPv4 only
	l.r.started = time.Now() // as after Start: a reload announces
	if _, err := l.r.Reconfigure(testConfig6()); err != nil {
		t.Fatal(err)
	}
	if l.r.FIB6.Len() != 5 {
		t.Fatalf("FIB6 has %d routes after the reload", l.r.FIB6.Len())
	}
	if l.r.Counters()[CntDADSent] != 4 {
		t.Fatalf("%d DAD probes", l.r.Counters()[CntDADSent])
	}
	l.pa.Take()
	l.pb.Take()
	l.resolve6()
	l.pa.Inject(echo6(t, hostA, macA, ip6HostA, ip6HostB, 64, 8))
	l.run()
	if len(l.pb.Take()) != 1 {
		t.Fatal("not forwarded after the reload")
	}
	if _, err := l.r.Reconfigure(testConfig()); err != nil {
		t.Fatal(err)
	}
	if l.r.FIB6.Len() != 0 || len(l.r.Neighbours6()) != 0 {
		t.Fatalf("after removing IPv6: %d routes, %d neighbours", l.r.FIB6.Len(), len(l.r.Neighbours6()))
	}
	l.pa.Take()
	l.pb.Take() // the reload's gratuitous ARP
	l.pa.Inject(echo6(t, hostA, macA, ip6HostA, ip6HostB, 64, 8))
	l.run()
	if out := l.pb.Take(); out != nil || l.r.Drops()[DropIPv6Off] != 1 {
		t.Fatalf("IPv6 still routed after the reload removed it: %d frames, ipv6-off %d", len(out), l.r.Drops()[DropIPv6Off])
	}
}

// TestHostRoute6: a host-routed guest with an IPv6 address: its /128 is
// routed to its link, proxy NDP answers for it on the publish network,
// the router answers the guest's solicitation for fe80::1, and sources
// the guest does not own are dropped.
func TestHostRoute6(t *testing.T) {
	cfg := testConfig6()
	cfg.Ports = append(cfg.Ports, config.Port{Name: "ct", Driver: "pipe"})
	guestIP := netip.MustParseAddr("2001:db8:a::77")
	cfg.HostRoutes = []config.HostRoute{{Link: config.Link{Port: "ct"}, Gateway: netip.MustParseAddr("169.254.0.1"),
		Addresses6: []netip.Addr{guestIP}, Publish: []string{"a"}}}
	macCT := [6]byte{2, 0, 0, 0, 0, 0xc}
	pa, pb, ct := pipe.New("pa", macA, 1500), pipe.New("pb", macB, 1400), pipe.New("ct", macCT, 1500)
	r, err := New(cfg, []port.Port{pa, pb, ct}, Options{Clock: clock.NewManual()})
	if err != nil {
		t.Fatal(err)
	}
	ports := []*pipe.Port{pa, pb, ct}
	run := func() {
		for did := true; did; {
			did = false
			for i, p := range ports {
				w := r.workers[i]
				if p.TryReadBatch(w.rx) > 0 {
					w.processBatch(r.ports[i], w.rx)
					did = true
				}
			}
		}
	}
	guestMAC := net.HardwareAddr{2, 0xcc, 0, 0, 0, 7}
	gw := netip.MustParseAddr("fe80::1")
	guestLL := netip.MustParseAddr("fe80::77")

	// Proxy NDP on the publish network.
	pa.Inject(nsFrame(t, hostA, ip6HostA, guestIP))
	run()
	out := pa.Take()
	if len(out) != 1 {
		t.Fatalf("proxy NS: %d answers", len(out))
	}
	p, ip := decode6(t, out[0])
	na, _ := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if na == nil || !na.TargetAddress.Equal(a16(guestIP)) || na.Override() || !na.Solicited() ||
		!bytes.Equal(na.Options[0].Data, macA[:]) || !ip.SrcIP.Equal(a16(ip6RA)) {
		t.Fatalf("bad proxy NA %v", p)
	}
	// The guest resolves its gateway fe80::1.
	ct.Inject(nsFrame(t, guestMAC, guestLL, gw))
	run()
	if out := ct.Take(); len(out) != 1 || decode(out[0]).Layer(layers.LayerTypeICMPv6NeighborAdvertisement) == nil {
		t.Fatalf("gateway NS on the guest link: %d answers", len(out))
	}
	// h1 -> guest: routed to its /128 on its link (the router solicits it).
	pa.Inject(echo6(t, hostA, macA, ip6HostA, guestIP, 64, 8))
	run()
	out = ct.Take()
	if len(out) != 1 || decode(out[0]).Layer(layers.LayerTypeICMPv6NeighborSolicitation) == nil {
		t.Fatalf("want the router's NS on the guest link, got %d frames", len(out))
	}
	ct.Inject(naFrame(t, guestMAC, macCT, guestIP, gw))
	run()
	out = ct.Take()
	if len(out) != 1 {
		t.Fatalf("queued echo not delivered to the guest: %d", len(out))
	}
	if _, ip := decode6(t, out[0]); !ip.DstIP.Equal(a16(guestIP)) || ip.HopLimit != 63 {
		t.Fatalf("bad delivery %v", ip)
	}
	// Guest -> h1 goes out; a spoofed source does not.
	ct.Inject(echo6(t, guestMAC, macCT, guestIP, ip6HostA, 64, 8))
	ct.Inject(echo6(t, guestMAC, macCT, netip.MustParseAddr("2001:db8:a::78"), ip6HostA, 64, 8))
	run()
	if out := pa.Take(); len(out) != 1 {
		t.Fatalf("guest -> h1: %d frames", len(out))
	}
	if r.Drops()[DropSpoofed] != 1 {
		t.Fatal("spoofed IPv6 source not dropped")
	}
}

// TestHostPunt6: on a network with a host interface and IPv6, the kernel
// gets the network's IPv6 addresses, TCP/UDP for them, link-scope
// multicast other than the router's own groups, and copies of neighbour
// advertisements; the router keeps answering echo and solicitations.
func TestHostPunt6(t *testing.T) {
	cfg := testConfig6()
	cfg.Networks[0].Host = "vr-a"
	cfg.Networks[0].HostPuntRate = 1000
	pa, pb := pipe.New("pa", macA, 1500), pipe.New("pb", macB, 1400)
	fh := newFakeHost()
	r, err := New(cfg, []port.Port{pa, pb}, Options{Clock: clock.NewManual(), Host: fh})
	if err != nil {
		t.Fatal(err)
	}
	r.startHosts()
	l := &hostLab{lab: &lab{t: t, r: r, clk: clock.NewManual(), pa: pa, pb: pb}, fh: fh, host: fh.ports["vr-a"]}
	if !slices.Contains(fh.addrs["vr-a"], netip.MustParsePrefix("2001:db8:a::1/64")) {
		t.Fatalf("host interface addresses %v", fh.addrs["vr-a"])
	}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 179, SYN: true, Window: 1000}
	frames := [][]byte{
		ip6Frame(t, hostA, macA, ip6HostA, ip6RA, 64, layers.IPProtocolTCP, tcp), // BGP
		ip6Frame(t, hostA, [6]byte{0x33, 0x33, 0, 1, 0, 2}, llHostA, netip.MustParseAddr("ff02::1:2"), // DHCPv6
			1, layers.IPProtocolUDP, &layers.UDP{SrcPort: 546, DstPort: 547}, gopacket.Payload("x")),
		naFrame(t, hostA, macA, ip6HostA, ip6RA), // an answer to the kernel's solicitation
	}
	for _, f := range frames {
		pa.Inject(f)
	}
	l.run()
	if got := l.host.Take(); len(got) != 3 {
		t.Fatalf("%d frames punted, want 3", len(got))
	}
	if out := pa.Take(); len(out) != 0 {
		t.Fatalf("the router answered %d of the kernel's packets", len(out))
	}
	// Echo and NS stay with the router.
	pa.Inject(nsFrame(t, hostA, ip6HostA, ip6RA))
	pa.Inject(echo6(t, hostA, macA, ip6HostA, ip6RA, 64, 8))
	l.run()
	if got := l.host.Take(); len(got) != 0 {
		t.Fatalf("%d router packets punted", len(got))
	}
	if out := pa.Take(); len(out) != 2 {
		t.Fatalf("echo + NS: %d answers", len(out))
	}
}
