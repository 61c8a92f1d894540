package router

import (
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/config"
	"vrouter/internal/clock"
	"vrouter/internal/nstest"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

// Fragments of a datagram to a port forward with two backends, the last
// one first: which backend gets it depends on the ports in the first
// fragment, so the router holds the early one and sends it translated when
// the first fragment arrives.
func TestNATOutOfOrderFragments(t *testing.T) {
	cfg := testConfig()
	cfg.NAT.Forward = []config.Forward{{Proto: "udp", External: netip.MustParseAddrPort("198.51.100.1:5353"),
		Internal: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.10:53"), netip.MustParseAddrPort("192.0.2.11:53")}}}
	cfg.NAT.Filtering = "address-dependent"
	cfg.Conntrack = config.Conntrack{Max: 4096, TCPEstablished: 7440e9, TCPTransitory: 240e9, UDP: 300e9, ICMP: 60e9, FragmentTimeout: 30e9}
	pa := pipe.New("pa", macA, 1500)
	pb := pipe.New("pb", macB, 1400)
	clk := clock.NewManual()
	r, err := New(cfg, []port.Port{pa, pb}, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{t: t, r: r, clk: clk, pa: pa, pb: pb}
	for _, ip := range []uint32{0xc000020a, 0xc000020b} { // both backends resolved
		r.Neigh.Update(0, ip, [6]byte(hostA), true, clk.Now(), func([]byte) {})
	}
	r.Neigh.Update(1, 0xc633640a, [6]byte(hostB), true, clk.Now(), func([]byte) {})

	// A UDP datagram of 2000 bytes from the outside host, in two fragments.
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 999, Protocol: layers.IPProtocolUDP, SrcIP: ipHostB, DstIP: ipRB}
	udp := &layers.UDP{SrcPort: 5555, DstPort: 5353}
	udp.SetNetworkLayerForChecksum(ip)
	whole := ser(t, ip, udp, gopacket.Payload(make([]byte, 1992)))
	l4 := whole[20:]
	frag := func(off int, data []byte, mf bool) []byte {
		f := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 999, Protocol: layers.IPProtocolUDP, SrcIP: ipHostB, DstIP: ipRB,
			FragOffset: uint16(off / 8)}
		if mf {
			f.Flags = layers.IPv4MoreFragments
		}
		return ser(t, &layers.Ethernet{SrcMAC: hostB, DstMAC: macB[:], EthernetType: layers.EthernetTypeIPv4}, f, gopacket.Payload(data))
	}
	first := frag(0, l4[:1200], true)
	last := frag(1200, l4[1200:], false)
	l.pb.Inject(last)
	l.run()
	if n := len(l.pa.Take()); n != 0 {
		t.Fatalf("the early fragment was sent before its first (%d frames)", n)
	}
	if r.Counters()[CntNATHeld] != 1 {
		t.Fatalf("held = %d", r.Counters()[CntNATHeld])
	}
	l.pb.Inject(first)
	l.run()
	out := l.pa.Take()
	if len(out) != 2 {
		t.Fatalf("want both fragments after the first came, got %d", len(out))
	}
	offs := map[uint16][]byte{}
	var backend string
	for _, o := range out {
		p := decode(o)
		ipl := checkIPChecksum(t, p)
		if backend == "" {
			backend = ipl.DstIP.String()
		}
		if ipl.DstIP.String() != backend || (backend != "192.0.2.10" && backend != "192.0.2.11") || ipl.TTL != 63 {
			t.Fatalf("fragment to %v ttl %d, want one backend", ipl.DstIP, ipl.TTL)
		}
		offs[ipl.FragOffset] = ipl.Payload
	}
	payload := append(append([]byte(nil), offs[0]...), offs[150]...)
	if len(payload) != len(l4) {
		t.Fatalf("reassembled %d bytes, want %d", len(payload), len(l4))
	}
	// The translated UDP checksum is valid for the new destination and port.
	ok := nstest.L4ChecksumOK(&layers.IPv4{SrcIP: ipHostB, DstIP: net.ParseIP(backend), Protocol: layers.IPProtocolUDP}, payload)
	if !ok || payload[2] != 0 || payload[3] != 53 {
		t.Fatalf("UDP header after translation: checksum ok=%v dport=%d", ok, int(payload[2])<<8|int(payload[3]))
	}
	if r.Counters()[CntNATReleased] != 1 {
		t.Fatalf("released = %d", r.Counters()[CntNATReleased])
	}
}

// A 9000-byte datagram crosses SNAT unfragmented when both ports have a
// jumbo MTU, translated with a valid UDP checksum.
func TestJumboThroughSNAT(t *testing.T) {
	cfg := testConfig()
	cfg.NAT.SNAT = []config.SNAT{{Source: netip.MustParsePrefix("192.0.2.0/24"), Out: "b",
		To:    config.AddrRange{First: netip.MustParseAddr("198.51.100.1"), Last: netip.MustParseAddr("198.51.100.1")},
		Ports: config.PortRange{Lo: 1024, Hi: 65535}}}
	cfg.NAT.Filtering = "address-dependent"
	cfg.Conntrack = config.Conntrack{Max: 4096, TCPEstablished: 7440e9, TCPTransitory: 240e9, UDP: 300e9, ICMP: 60e9, FragmentTimeout: 30e9}
	pa := pipe.New("pa", macA, 9000)
	pb := pipe.New("pb", macB, 9000)
	clk := clock.NewManual()
	r, err := New(cfg, []port.Port{pa, pb}, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	r.Neigh.Update(0, 0xc000020a, [6]byte(hostA), true, clk.Now(), func([]byte) {})
	r.Neigh.Update(1, 0xc633640a, [6]byte(hostB), true, clk.Now(), func([]byte) {})
	l := &lab{t: t, r: r, clk: clk, pa: pa, pb: pb}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolUDP, SrcIP: ipHostA, DstIP: ipHostB}
	udp := &layers.UDP{SrcPort: 4000, DstPort: 9}
	udp.SetNetworkLayerForChecksum(ip)
	l.pa.Inject(ser(t, &layers.Ethernet{SrcMAC: hostA, DstMAC: macA[:], EthernetType: layers.EthernetTypeIPv4}, ip, udp,
		gopacket.Payload(make([]byte, 9000-28))))
	l.run()
	out := l.pb.Take()
	if len(out) != 1 {
		t.Fatalf("want the jumbo datagram in one frame, got %d frames (drops %v)", len(out), r.Drops())
	}
	p := decode(out[0])
	got := checkIPChecksum(t, p)
	if got.Length != 9000 || got.SrcIP.String() != "198.51.100.1" {
		t.Fatalf("jumbo: length %d src %v", got.Length, got.SrcIP)
	}
	if !nstest.L4ChecksumOK(got, got.Payload) {
		t.Fatal("UDP checksum invalid after SNAT")
	}
}

// A DF packet that is SNATed and then too big for the egress MTU: the
// frag-needed error goes back to the inside host on its own network
// (quoting the packet as the host sent it), not out of the SNAT side.
func TestFragNeededAfterSNAT(t *testing.T) {
	l := natLab(t) // network b (port pb) has MTU 1400
	l.pa.Take()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolUDP, SrcIP: ipHostA, DstIP: ipHostB}
	udp := &layers.UDP{SrcPort: 4000, DstPort: 9}
	udp.SetNetworkLayerForChecksum(ip)
	l.pa.Inject(ser(t, &layers.Ethernet{SrcMAC: hostA, DstMAC: macA[:], EthernetType: layers.EthernetTypeIPv4}, ip, udp,
		gopacket.Payload(make([]byte, 1450))))
	l.run()
	if out := l.pb.Take(); len(out) != 0 {
		t.Fatalf("%d frames left on b (want none: DF and too big)", len(out))
	}
	errIP, m := expectICMP(t, l.pa.Take(), 3, 4)
	if !errIP.DstIP.Equal(ipHostA) || !errIP.SrcIP.Equal(ipRA) {
		t.Fatalf("frag-needed %v -> %v, want 192.0.2.1 -> 192.0.2.10", errIP.SrcIP, errIP.DstIP)
	}
	quoted := m.Payload
	if len(quoted) < 20 || net.IP(quoted[12:16]).String() != "192.0.2.10" {
		t.Fatalf("quoted source %v, want the inside host 192.0.2.10", net.IP(quoted[12:16]))
	}
	if mtu := int(m.Seq); mtu != 1400 {
		t.Fatalf("next-hop MTU %d, want 1400", mtu)
	}
}
