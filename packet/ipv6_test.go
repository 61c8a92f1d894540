package packet

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var (
	v6a = netip.MustParseAddr("2001:db8:1::10").As16()
	v6b = netip.MustParseAddr("2001:db8:2::20").As16()
)

func serialize6(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ip6Layer(next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, NextHeader: next, HopLimit: 64, SrcIP: net.IP(v6a[:]), DstIP: net.IP(v6b[:]),
		TrafficClass: 0xb8, FlowLabel: 0x12345}
}

func TestIPv6HeaderMatchesGopacket(t *testing.T) {
	ip := ip6Layer(layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: 1, DstPort: 2}
	udp.SetNetworkLayerForChecksum(ip)
	b := serialize6(t, ip, udp, gopacket.Payload("hello"))
	b = append(b, 0, 0, 0) // link-layer padding
	p, e := CheckIPv6(b)
	if e != IPv6OK {
		t.Fatal(e)
	}
	if len(p) != 40+8+5 || p.PayloadLen() != 13 || p.NextHeader() != ProtoUDP || p.HopLimit() != 64 ||
		p.TrafficClass() != 0xb8 || p.FlowLabel() != 0x12345 || p.Src() != v6a || p.Dst() != v6b {
		t.Fatalf("bad view: len %d pl %d nh %d hl %d tc %x fl %x", len(p), p.PayloadLen(), p.NextHeader(), p.HopLimit(), p.TrafficClass(), p.FlowLabel())
	}
	// Writes back through the setters are what gopacket decodes.
	p.SetHopLimit(7)
	p.SetSrc(v6b)
	p.SetDst(v6a)
	g := gopacket.NewPacket(p, layers.LayerTypeIPv6, gopacket.Default).Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if g.HopLimit != 7 || !g.SrcIP.Equal(net.IP(v6b[:])) || !g.DstIP.Equal(net.IP(v6a[:])) {
		t.Fatalf("gopacket sees %v", g)
	}
}

func TestCheckIPv6Errors(t *testing.T) {
	good := serialize6(t, ip6Layer(layers.IPProtocolNoNextHeader), gopacket.Payload("abcdefgh"))
	if _, e := CheckIPv6(good[:39]); e != IPv6TooShort {
		t.Fatal("short:", e)
	}
	bad := bytes.Clone(good)
	bad[0] = 0x45
	if _, e := CheckIPv6(bad); e != IPv6BadVersion {
		t.Fatal("version:", e)
	}
	bad = bytes.Clone(good)
	binary.BigEndian.PutUint16(bad[4:], 9)
	if _, e := CheckIPv6(bad); e != IPv6BadPayloadLen {
		t.Fatal("payload length:", e)
	}
	bad = bytes.Clone(good)
	binary.BigEndian.PutUint16(bad[4:], 0)
	bad[6] = 0
	if _, e := CheckIPv6(bad); e != IPv6BadPayloadLen {
		t.Fatal("jumbo:", e)
	}
}

func hbh(next layers.IPProtocol, opts ...*layers.IPv6HopByHopOption) *layers.IPv6HopByHop {
	h := &layers.IPv6HopByHop{Options: opts}
	h.NextHeader = next
	return h
}

// TestWalkExtMatchesGopacket builds random extension chains with gopacket
// and checks that the walk ends where gopacket's decoder does, with the
// same fields.
func TestWalkExtMatchesGopacket(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	for n := 0; n < 2000; n++ {
		var ls []gopacket.SerializableLayer
		ip := ip6Layer(0)
		ls = append(ls, ip)
		var nexts []*layers.IPProtocol
		link := func(p layers.IPProtocol) {
			if len(nexts) == 0 {
				ip.NextHeader = p
			} else {
				*nexts[len(nexts)-1] = p
			}
		}
		count := rng.IntN(MaxExtHeaders + 1)
		wantRT, wantSL, wantFrag, wantFO := uint8(0), uint8(0), false, 0
		hasHBH := false
		for i := 0; i < count; i++ {
			switch k := rng.IntN(4); {
			case k == 0 && i == 0:
				h := hbh(0, &layers.IPv6HopByHopOption{OptionType: OptRouterAlert, OptionLength: 2, OptionData: []byte{0, 0}},
					&layers.IPv6HopByHopOption{OptionType: OptPadN, OptionLength: 0})
				link(layers.IPProtocolIPv6HopByHop)
				nexts = append(nexts, &h.NextHeader)
				ls = append(ls, h)
				hasHBH = true
			case k == 1:
				r := &layers.IPv6Routing{RoutingType: uint8(rng.IntN(5)), SegmentsLeft: uint8(rng.IntN(3)), Reserved: []byte{0, 0, 0, 0},
					Data: make([]byte, 8*rng.IntN(3))}
				link(layers.IPProtocolIPv6Routing)
				nexts = append(nexts, &r.NextHeader)
				ls = append(ls, r)
				wantRT, wantSL = r.RoutingType, r.SegmentsLeft
			case k == 2 && !wantFrag && i == count-1:
				// gopacket stops decoding at a fragment header: keep it last.
				f := &layers.IPv6Fragment{Identification: rng.Uint32(), MoreFragments: true}
				link(layers.IPProtocolIPv6Fragment)
				nexts = append(nexts, &f.NextHeader)
				ls = append(ls, f)
				wantFrag, wantFO = true, 0
			default:
				d := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}}
				link(layers.IPProtocolIPv6Destination)
				nexts = append(nexts, &d.NextHeader)
				ls = append(ls, d)
			}
		}
		link(layers.IPProtocolICMPv6)
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(ICMPv6EchoRequest, 0)}
		ic.SetNetworkLayerForChecksum(ip)
		ls = append(ls, ic, &layers.ICMPv6Echo{Identifier: 1, SeqNumber: 2}, gopacket.Payload("x"))
		b := serialize6(t, ls...)
		p, e := CheckIPv6(b)
		if e != IPv6OK {
			t.Fatal(e)
		}
		x, xe := WalkExt(p)
		if xe != ExtOK {
			t.Fatalf("case %d: %v", n, xe)
		}
		pk := gopacket.NewPacket(b, layers.LayerTypeIPv6, gopacket.Default)
		var icl gopacket.Layer = pk.Layer(layers.LayerTypeICMPv6)
		if wantFrag {
			icl = pk.Layer(gopacket.LayerTypeFragment)
		}
		if icl == nil {
			t.Fatalf("case %d: gopacket found no ICMPv6: %v", n, pk)
		}
		gOff := len(b) - len(icl.LayerContents()) - len(icl.LayerPayload())
		if p[x.ProtoPtr] != ProtoICMPv6 {
			t.Fatalf("case %d: ProtoPtr %d does not name ICMPv6", n, x.ProtoPtr)
		}
		if x.Proto != ProtoICMPv6 || x.Off != gOff || x.N != len(ls)-4 {
			t.Fatalf("case %d: walk proto %d off %d n %d; gopacket off %d, %d headers", n, x.Proto, x.Off, x.N, gOff, len(ls)-4)
		}
		if x.HopByHop != hasHBH || x.RouterAlert != hasHBH || x.Fragment != wantFrag || x.FragOff != wantFO {
			t.Fatalf("case %d: %+v", n, x)
		}
		if x.Routing && (x.RoutingType != wantRT || x.SegmentsLeft != wantSL) {
			t.Fatalf("case %d: routing %+v", n, x)
		}
		if !ICMPv6ChecksumOK(p.Src(), p.Dst(), p[x.Off:]) {
			t.Fatalf("case %d: gopacket's ICMPv6 checksum does not verify", n)
		}
	}
}

func TestWalkExtErrors(t *testing.T) {
	// Too many headers.
	var ls []gopacket.SerializableLayer
	ip := ip6Layer(layers.IPProtocolIPv6Destination)
	ls = append(ls, ip)
	for i := 0; i <= MaxExtHeaders; i++ {
		d := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}}
		d.NextHeader = layers.IPProtocolIPv6Destination
		if i == MaxExtHeaders {
			d.NextHeader = layers.IPProtocolNoNextHeader
		}
		ls = append(ls, d)
	}
	p, _ := CheckIPv6(serialize6(t, ls...))
	if _, e := WalkExt(p); e != ExtTooMany {
		t.Fatal("too many:", e)
	}
	// Hop-by-hop after another header.
	d := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}}
	d.NextHeader = layers.IPProtocolIPv6HopByHop
	p, _ = CheckIPv6(serialize6(t, ip6Layer(layers.IPProtocolIPv6Destination), d,
		hbh(layers.IPProtocolNoNextHeader, &layers.IPv6HopByHopOption{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}})))
	if x, e := WalkExt(p); e != ExtHopByHopNotFirst || x.Ptr != 40 || !x.NextHdrPtr {
		t.Fatal("hbh not first:", e, x.Ptr)
	}
	// Unknown hop-by-hop options by action bits.
	for act, want := range []ExtErr{ExtOK, ExtBadOptionNoICMP, ExtBadOption, ExtBadOptionUnlessMcast} {
		typ := uint8(act<<6 | 0x1e)
		p, _ = CheckIPv6(serialize6(t, ip6Layer(layers.IPProtocolIPv6HopByHop),
			hbh(layers.IPProtocolNoNextHeader, &layers.IPv6HopByHopOption{OptionType: typ, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}})))
		if x, e := WalkExt(p); e != want || (want != ExtOK && x.Ptr != 42) {
			t.Fatalf("action %d: %v ptr %d", act, e, x.Ptr)
		}
	}
	// Truncated: a header longer than the packet.
	p, _ = CheckIPv6(serialize6(t, ip6Layer(layers.IPProtocolIPv6Destination), gopacket.Payload([]byte{59, 3, 0, 0, 0, 0, 0, 0})))
	if _, e := WalkExt(p); e != ExtTruncated {
		t.Fatal("truncated:", e)
	}
	// A non-first fragment ends the walk.
	f := &layers.IPv6Fragment{FragmentOffset: 100, Identification: 1}
	f.NextHeader = layers.IPProtocolUDP
	p, _ = CheckIPv6(serialize6(t, ip6Layer(layers.IPProtocolIPv6Fragment), f, gopacket.Payload("xxxxxxxx")))
	if x, e := WalkExt(p); e != ExtOK || !x.Fragment || x.FragOff != 800 || x.Proto != ProtoUDP || x.Off != 48 || x.ProtoPtr != 40 {
		t.Fatal("fragment:", e, x)
	}
}

func TestAddressHelpers(t *testing.T) {
	a := netip.MustParseAddr("2001:db8::1:2:abcd:ef01").As16()
	if got := netip.AddrFrom16(SolicitedNode(a)); got != netip.MustParseAddr("ff02::1:ffcd:ef01") {
		t.Fatal(got)
	}
	if !IsSolicitedNode(SolicitedNode(a)) || IsSolicitedNode(AllNodes) {
		t.Fatal("IsSolicitedNode")
	}
	m := MAC{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	if got := netip.AddrFrom16(LinkLocalEUI64(m)); got != netip.MustParseAddr("fe80::5054:ff:fe12:3456") {
		t.Fatal(got)
	}
	if MulticastMAC6(SolicitedNode(a)) != (MAC{0x33, 0x33, 0xff, 0xcd, 0xef, 0x01}) {
		t.Fatal("multicast MAC")
	}
	for s, want := range map[string]bool{"::": true, "::1": true, "ff02::1": true, "::ffff:10.0.0.1": true, "2001:db8::1": false, "fe80::1": false} {
		if IsMartianSource6(netip.MustParseAddr(s).As16()) != want {
			t.Error("martian", s)
		}
	}
	if !IsLinkLocal6(netip.MustParseAddr("febf::1").As16()) || IsLinkLocal6(netip.MustParseAddr("fec0::1").As16()) {
		t.Error("link-local")
	}
}

// ndPacket builds an IPv6 ND packet with gopacket.
func ndPacket(t testing.TB, src, dst [16]byte, hop uint8, typ uint8, msg gopacket.SerializableLayer) []byte {
	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: hop, SrcIP: net.IP(src[:]), DstIP: net.IP(dst[:])}
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, 0)}
	ic.SetNetworkLayerForChecksum(ip)
	return serialize6(t, ip, ic, msg)
}

func TestNDParseGopacket(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 9}
	ll := LinkLocalEUI64(MAC(mac))
	ns := &layers.ICMPv6NeighborSolicitation{TargetAddress: net.IP(v6b[:]),
		Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: mac}}}
	b := ndPacket(t, ll, SolicitedNode(v6b), 255, ICMPv6NeighSolicit, ns)
	ip, _ := CheckIPv6(b)
	m := ip[IPv6HdrLen:]
	if e := CheckND(ip, m); e != NDOK {
		t.Fatal("NS:", e)
	}
	if NDMsg(m).Target() != v6b {
		t.Fatal("target")
	}
	if got, ok := NDLinkLayer(NDMsg(m).Options(), NDOptSourceLL); !ok || got != MAC(mac) {
		t.Fatal("SLLA", got)
	}
	// Hop limit other than 255, bad checksum, DAD NS with SLLA.
	if e := CheckND(IPv6(ndPacket(t, ll, SolicitedNode(v6b), 254, ICMPv6NeighSolicit, ns)), b[40:]); e != NDBadHopLimit {
		t.Fatal("hop limit:", e)
	}
	bad := bytes.Clone(b)
	bad[len(bad)-1] ^= 1
	if e := CheckND(IPv6(bad), bad[40:]); e != NDBadChecksum {
		t.Fatal("checksum:", e)
	}
	dad := ndPacket(t, [16]byte{}, SolicitedNode(v6b), 255, ICMPv6NeighSolicit, ns)
	if e := CheckND(IPv6(dad), dad[40:]); e != NDBadSource {
		t.Fatal("DAD with SLLA:", e)
	}
	// Zero-length option.
	zl := bytes.Clone(b)
	zl[40+NSLen+1] = 0
	FinishICMPv6(ll, SolicitedNode(v6b), zl[40:])
	if e := CheckND(IPv6(zl), zl[40:]); e != NDBadOption {
		t.Fatal("zero-length option:", e)
	}
	// NA to all-nodes with S set.
	na := &layers.ICMPv6NeighborAdvertisement{Flags: 0x40, TargetAddress: net.IP(v6b[:])}
	nb := ndPacket(t, ll, AllNodes, 255, ICMPv6NeighAdvert, na)
	if e := CheckND(IPv6(nb), nb[40:]); e != NDSolicitedMcast {
		t.Fatal("NA S to multicast:", e)
	}
	rs := &layers.ICMPv6RouterSolicitation{Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: mac}}}
	rb := ndPacket(t, ll, AllRouters, 255, ICMPv6RouterSolicit, rs)
	if e := CheckND(IPv6(rb), rb[40:]); e != NDOK {
		t.Fatal("RS:", e)
	}
}

// TestNDBuildGopacket: what the builders write, gopacket decodes with a
// valid checksum and the same fields.
func TestNDBuildGopacket(t *testing.T) {
	mac := MAC{2, 0, 0, 0, 0, 1}
	ll := LinkLocalEUI64(mac)
	b := make([]byte, 200)
	decode := func(n int, src, dst [16]byte) gopacket.Packet {
		t.Helper()
		PutIPv6Header(b, n, ProtoICMPv6, 255, src, dst)
		FinishICMPv6(src, dst, b[40:40+n])
		pk := gopacket.NewPacket(b[:40+n], layers.LayerTypeIPv6, gopacket.Default)
		if el := pk.ErrorLayer(); el != nil {
			t.Fatal(el.Error())
		}
		ic := pk.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
		ip := pk.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		ic.SetNetworkLayerForChecksum(ip)
		if err, res := ic.VerifyChecksum(); err != nil || !res.Valid {
			t.Fatal(err)
		}
		if e := CheckND(IPv6(b[:40+n]), b[40:40+n]); e != NDOK {
			t.Fatal("own check:", e)
		}
		return pk
	}
	n := PutNS(b[40:], v6b, mac)
	pk := decode(n, ll, SolicitedNode(v6b))
	ns := pk.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(*layers.ICMPv6NeighborSolicitation)
	if !ns.TargetAddress.Equal(net.IP(v6b[:])) || len(ns.Options) != 1 || !bytes.Equal(ns.Options[0].Data, mac[:]) {
		t.Fatal("NS", ns)
	}
	n = PutNS(b[40:], v6b, MAC{}) // DAD
	pk = decode(n, [16]byte{}, SolicitedNode(v6b))
	if ns := pk.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(*layers.ICMPv6NeighborSolicitation); len(ns.Options) != 0 {
		t.Fatal("DAD NS has options")
	}
	n = PutNA(b[40:], v6a, NARouter|NASolicited|NAOverride, mac)
	pk = decode(n, v6a, v6b)
	na := pk.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if !na.Router() || !na.Solicited() || !na.Override() || !na.TargetAddress.Equal(net.IP(v6a[:])) ||
		na.Options[0].Type != layers.ICMPv6OptTargetAddress || !bytes.Equal(na.Options[0].Data, mac[:]) {
		t.Fatal("NA", na)
	}
	pfx := netip.MustParseAddr("2001:db8:5::").As16()
	dns := netip.MustParseAddr("2001:db8::53").As16()
	ra := &RA{HopLimit: 64, Lifetime: 1800, SourceLL: mac, MTU: 1400, Prefixes: [][16]byte{pfx}, PrefixLens: []uint8{64},
		ValidLife: 86400, PreferredLife: 14400, DNS: [][16]byte{dns}, DNSLifetime: 600}
	n = PutRA(b[40:], ra)
	if n != RALenOf(ra) {
		t.Fatal("RALenOf", n, RALenOf(ra))
	}
	pk = decode(n, ll, AllNodes)
	g := pk.Layer(layers.LayerTypeICMPv6RouterAdvertisement).(*layers.ICMPv6RouterAdvertisement)
	if g.HopLimit != 64 || g.RouterLifetime != 1800 || len(g.Options) != 4 {
		t.Fatal("RA", g)
	}
	for _, o := range g.Options {
		switch o.Type {
		case layers.ICMPv6OptSourceAddress:
			if !bytes.Equal(o.Data, mac[:]) {
				t.Fatal("RA SLLA")
			}
		case layers.ICMPv6OptMTU:
			if binary.BigEndian.Uint32(o.Data[2:]) != 1400 {
				t.Fatal("RA MTU")
			}
		case layers.ICMPv6OptPrefixInfo:
			if o.Data[0] != 64 || o.Data[1] != 0xc0 || binary.BigEndian.Uint32(o.Data[2:]) != 86400 ||
				binary.BigEndian.Uint32(o.Data[6:]) != 14400 || !bytes.Equal(o.Data[14:30], pfx[:]) {
				t.Fatalf("RA prefix %x", o.Data)
			}
		case 25:
			if binary.BigEndian.Uint32(o.Data[2:]) != 600 || !bytes.Equal(o.Data[6:22], dns[:]) {
				t.Fatalf("RA RDNSS %x", o.Data)
			}
		default:
			t.Fatal("RA option", o.Type)
		}
	}
}

func FuzzIPv6(f *testing.F) {
	f.Add(serialize6(f, ip6Layer(layers.IPProtocolIPv6HopByHop),
		hbh(layers.IPProtocolICMPv6, &layers.IPv6HopByHopOption{OptionType: OptRouterAlert, OptionLength: 2, OptionData: []byte{0, 0}},
			&layers.IPv6HopByHopOption{OptionType: OptPadN, OptionLength: 0}),
		gopacket.Payload([]byte{135, 0, 0, 0, 0, 0, 0, 0, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 0, 0, 0, 0, 1})))
	f.Add(ndPacket(f, LinkLocalEUI64(MAC{2, 0, 0, 0, 0, 1}), AllRouters, 255, ICMPv6RouterSolicit, &layers.ICMPv6RouterSolicitation{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, e := CheckIPv6(b)
		if e != IPv6OK {
			return
		}
		x, xe := WalkExt(p)
		if xe != ExtOK {
			return
		}
		if x.Off > len(p) || x.N > MaxExtHeaders {
			t.Fatalf("walk out of bounds: %+v", x)
		}
		if x.Proto == ProtoICMPv6 && x.FragOff == 0 {
			m := p[x.Off:]
			if CheckND(p, m) == NDOK {
				msg := NDMsg(m)
				NDLinkLayer(msg.Options(), NDOptSourceLL)
				if msg.Type() == ICMPv6NeighSolicit || msg.Type() == ICMPv6NeighAdvert {
					_ = msg.Target()
				}
			}
		}
	})
}
