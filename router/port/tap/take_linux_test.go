package tap

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/packet"
	"vrouter/router/port"
)

// These tests drive take (the step after read(2) on a device with
// IFF_VNET_HDR) with frames and virtio headers as the kernel writes them. No
// device or privilege needed.

var (
	macVM  = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	macRtr = net.HardwareAddr{2, 0, 0, 0, 0, 2}
)

// tcpFrame is an IPv4 TCP frame carrying payload (valid checksums), tagged
// with VLAN vid when vid != 0.
func tcpFrame(t testing.TB, vid uint16, payload []byte) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: 7, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP,
		SrcIP: net.IP{192, 0, 2, 10}, DstIP: routerIP}
	tc := &layers.TCP{SrcPort: 40000, DstPort: 5001, Seq: 1000, Ack: 1, ACK: true, PSH: true, Window: 500,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)}}}
	tc.SetNetworkLayerForChecksum(ip)
	eth := &layers.Ethernet{SrcMAC: macVM, DstMAC: macRtr, EthernetType: layers.EthernetTypeIPv4}
	if vid != 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		return serialize(t, eth, &layers.Dot1Q{VLANIdentifier: vid, Type: layers.EthernetTypeIPv4}, ip, tc, gopacket.Payload(payload))
	}
	return serialize(t, eth, ip, tc, gopacket.Payload(payload))
}

func udp4Frame(t testing.TB, payload []byte) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{192, 0, 2, 10}, DstIP: routerIP}
	u := &layers.UDP{SrcPort: 5000, DstPort: 9000}
	u.SetNetworkLayerForChecksum(ip)
	return serialize(t, &layers.Ethernet{SrcMAC: macVM, DstMAC: macRtr, EthernetType: layers.EthernetTypeIPv4}, ip, u, gopacket.Payload(payload))
}

// tcp6Frame is an IPv6 TCP frame carrying payload (valid checksums).
func tcp6Frame(t testing.TB, payload []byte) []byte {
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
		SrcIP: net.ParseIP("2001:db8::10"), DstIP: net.ParseIP("2001:db8:2::10")}
	tc := &layers.TCP{SrcPort: 40000, DstPort: 5001, Seq: 1000, Ack: 1, ACK: true, PSH: true, Window: 500}
	tc.SetNetworkLayerForChecksum(ip)
	return serialize(t, &layers.Ethernet{SrcMAC: macVM, DstMAC: macRtr, EthernetType: layers.EthernetTypeIPv6}, ip, tc, gopacket.Payload(payload))
}

func udp6Frame(t testing.TB, payload []byte) []byte {
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
		SrcIP: net.ParseIP("2001:db8::10"), DstIP: net.ParseIP("2001:db8::1")}
	u := &layers.UDP{SrcPort: 5000, DstPort: 9000}
	u.SetNetworkLayerForChecksum(ip)
	return serialize(t, &layers.Ethernet{SrcMAC: macVM, DstMAC: macRtr, EthernetType: layers.EthernetTypeIPv6}, ip, u, gopacket.Payload(payload))
}

// partial turns the L4 checksum at start+off into the folded pseudo-header
// sum, as a sender that leaves the checksum to the device stores it.
func partial(f []byte, l3, start, off int, v6 bool) {
	var s uint64
	n := len(f) - start
	if v6 {
		s = packet.Sum(f[l3+8:l3+40], uint64(n)+uint64(f[l3+6]))
	} else {
		s = packet.PseudoSum(binary.BigEndian.Uint32(f[l3+12:]), binary.BigEndian.Uint32(f[l3+16:]), f[l3+9], n)
	}
	binary.BigEndian.PutUint16(f[start+off:], packet.Fold(s))
}

func unitPort() *Port { return &Port{vnet: true} }

// feed puts frame into slot p.rn at port.Headroom, as doReadVnet reads it,
// and hands it to take.
func feed(p *Port, b *port.Batch, vh packet.VnetHdr, frame []byte) {
	s := b.Bufs[p.rn][port.Headroom:]
	copy(s, frame)
	p.take(b, vh, s[:len(frame)])
}

func TestTake(t *testing.T) {
	data := make([]byte, 5000)
	for i := range data {
		data[i] = byte(i % 251)
	}
	super := tcpFrame(t, 0, data)
	partial(super, 14, 34, 16, false)
	superTagged := tcpFrame(t, 33, data)
	partial(superTagged, 18, 38, 16, false)
	small := udp4Frame(t, []byte("hello"))
	smallPartial := append([]byte(nil), small...)
	partial(smallPartial, 14, 34, 6, false)
	usoV4 := udp4Frame(t, data[:3000])
	partial(usoV4, 14, 34, 6, false)
	usoV6 := udp6Frame(t, data)
	partial(usoV6, 14, 54, 6, true)
	tsoV6 := tcp6Frame(t, data)
	partial(tsoV6, 14, 54, 16, true)

	tso := packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv4, HdrLen: 200, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}
	tsoTagged := tso
	tsoTagged.CsumStart = 38
	uso4 := packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOUDPL4, HdrLen: 42, GSOSize: 1000, CsumStart: 34, CsumOffset: 6}
	uso6 := packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOUDPL4, HdrLen: 62, GSOSize: 1232, CsumStart: 54, CsumOffset: 6}
	tso6 := packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv6, HdrLen: 200, GSOSize: 1428, CsumStart: 54, CsumOffset: 16}
	csum := packet.VnetHdr{Flags: packet.VnetNeedsCsum, CsumStart: 34, CsumOffset: 6}

	type in struct {
		vh packet.VnetHdr
		f  []byte
	}
	type out struct {
		meta packet.VnetHdr
		f    []byte // nil: do not compare the bytes
	}
	bad := func(mod func(*packet.VnetHdr)) packet.VnetHdr { h := tso; mod(&h); return h }
	cases := []struct {
		name  string
		in    in
		want  []out
		count [numCounters]uint64
	}{
		{"plain", in{packet.VnetHdr{}, small}, []out{{packet.VnetHdr{}, small}}, [numCounters]uint64{}},
		{"data-valid", in{packet.VnetHdr{Flags: packet.VnetDataValid}, small}, []out{{packet.VnetHdr{}, small}}, [numCounters]uint64{}},
		{"partial", in{csum, smallPartial}, []out{{csum, smallPartial}}, [numCounters]uint64{cCsumPartial: 1}},
		{"tso", in{tso, super}, []out{{packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv4, HdrLen: 14 + 20 + 32, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}, super}},
			[numCounters]uint64{cGSOIntact: 1, cCsumPartial: 1}},
		{"tso-ecn", in{bad(func(h *packet.VnetHdr) { h.GSOType |= packet.GSOECNBit }), super},
			[]out{{packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv4 | packet.GSOECNBit, HdrLen: 66, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}, super}},
			[numCounters]uint64{cGSOIntact: 1, cCsumPartial: 1}},
		{"tso-tagged", in{tsoTagged, superTagged}, []out{{packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv4, HdrLen: 18 + 20 + 32, GSOSize: 1448, CsumStart: 38, CsumOffset: 16}, superTagged}},
			[numCounters]uint64{cGSOIntact: 1, cCsumPartial: 1}},
		{"uso4", in{uso4, usoV4}, []out{{packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOUDPL4, HdrLen: 42, GSOSize: 1000, CsumStart: 34, CsumOffset: 6}, usoV4}},
			[numCounters]uint64{cGSOIntact: 1, cCsumPartial: 1}},
		{"uso6", in{uso6, usoV6}, []out{{packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOUDPL4, HdrLen: 62, GSOSize: 1232, CsumStart: 54, CsumOffset: 6}, usoV6}},
			[numCounters]uint64{cGSOIntact: 1, cCsumPartial: 1}},
		{"tso6", in{tso6, tsoV6}, []out{{packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv6, HdrLen: 74, GSOSize: 1428, CsumStart: 54, CsumOffset: 16}, tsoV6}},
			[numCounters]uint64{cGSOIntact: 1, cCsumPartial: 1}},
		{"tcp6-on-v4", in{bad(func(h *packet.VnetHdr) { h.GSOType = packet.GSOTCPv6 }), super}, nil, [numCounters]uint64{dropGSOUnsupported: 1}},
		{"tcp4-on-v6", in{func() packet.VnetHdr { h := tso6; h.GSOType = packet.GSOTCPv4; return h }(), tsoV6}, nil, [numCounters]uint64{dropGSOUnsupported: 1}},
		{"ufo", in{bad(func(h *packet.VnetHdr) { h.GSOType = packet.GSOUDP; h.CsumOffset = 6 }), usoV4}, nil, [numCounters]uint64{dropGSOUnsupported: 1}},
		{"tso-no-csum", in{bad(func(h *packet.VnetHdr) { h.Flags = 0 }), super}, nil, [numCounters]uint64{dropGSOUnsupported: 1}},
		{"tso-csum-start", in{bad(func(h *packet.VnetHdr) { h.CsumStart = 30 }), super}, nil, [numCounters]uint64{dropGSOUnsupported: 1}},
		{"tso-csum-offset", in{bad(func(h *packet.VnetHdr) { h.CsumOffset = 6 }), super}, nil, [numCounters]uint64{dropGSOUnsupported: 1}},
		{"tso-mss-0", in{bad(func(h *packet.VnetHdr) { h.GSOSize = 0 }), super}, nil, [numCounters]uint64{dropGSOUnsupported: 1}},
		{"tso-on-udp", in{tso, usoV4}, nil, [numCounters]uint64{dropGSOUnsupported: 1}},
		{"tso-on-v6", in{bad(func(h *packet.VnetHdr) { h.CsumStart = 54 }), usoV6}, nil, [numCounters]uint64{dropGSOUnsupported: 1}},
		{"tso-short", in{tso, super[:40]}, nil, [numCounters]uint64{dropBadCsumOffsets: 1}},
		{"csum-outside", in{packet.VnetHdr{Flags: packet.VnetNeedsCsum, CsumStart: uint16(len(small) - 7), CsumOffset: 6}, small}, nil, [numCounters]uint64{dropBadCsumOffsets: 1}},
	}
	for _, c := range cases {
		p := unitPort()
		b := port.NewBatch(8)
		feed(p, b, c.in.vh, c.in.f)
		if p.acc != c.count {
			t.Errorf("%s: counters %v, want %v", c.name, p.acc, c.count)
		}
		if p.rn != len(c.want) {
			t.Errorf("%s: %d frames, want %d", c.name, p.rn, len(c.want))
			continue
		}
		for i, w := range c.want {
			if b.Off[i] != port.Headroom || b.Meta[i] != w.meta {
				t.Errorf("%s: frame %d off %d meta %+v, want %+v", c.name, i, b.Off[i], b.Meta[i], w.meta)
			}
			if w.f != nil && !bytes.Equal(b.Frame(i), w.f) {
				t.Errorf("%s: frame %d bytes differ", c.name, i)
			}
		}
	}
}

// TestTakeNoAlloc: taking super-frames of both IP versions allocates nothing.
func TestTakeNoAlloc(t *testing.T) {
	data := make([]byte, 10*1232-5)
	super4 := tcpFrame(t, 0, data)
	partial(super4, 14, 34, 16, false)
	super6 := tcp6Frame(t, data)
	partial(super6, 14, 54, 16, true)
	vh4 := packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv4, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}
	vh6 := packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv6, GSOSize: 1428, CsumStart: 54, CsumOffset: 16}
	p := unitPort()
	b := port.NewBatch(2)
	if a := testing.AllocsPerRun(50, func() { p.rn = 0; feed(p, b, vh4, super4); feed(p, b, vh6, super6) }); a != 0 {
		t.Fatalf("%v allocations", a)
	}
	if p.rn != 2 || p.acc[cGSOIntact] == 0 || p.acc[dropGSOUnsupported] != 0 {
		t.Fatalf("%d frames, counters %v", p.rn, p.acc)
	}
}
