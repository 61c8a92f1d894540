package packet

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// naiveSum is an independent RFC 1071 sum, 16 bits at a time.
func naiveSum(b []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return s
}

func pseudo(src, dst []byte, proto byte, n int) []byte {
	p := make([]byte, 12)
	copy(p, src)
	copy(p[4:], dst)
	p[9] = proto
	binary.BigEndian.PutUint16(p[10:], uint16(n))
	return p
}

type superSpec struct {
	vlan    bool
	ipOpts  bool
	tcpOpts bool
	udp     bool
	payload int
	flags   uint8 // TCP flags besides ACK
}

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
	ipA  = net.IP{192, 0, 2, 1}
	ipB  = net.IP{198, 51, 100, 7}
)

// buildFrame serializes a frame with gopacket. With fix it computes lengths
// and checksums; id, seq, flags and payload are parameters so that the same
// function builds the super-frame and the expected segments.
func buildFrame(t testing.TB, s superSpec, id uint16, seq uint32, flags uint8, payload []byte) []byte {
	t.Helper()
	var ls []gopacket.SerializableLayer
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}
	if s.vlan {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, eth, &layers.Dot1Q{VLANIdentifier: 42, Priority: 3, Type: layers.EthernetTypeIPv4})
	} else {
		ls = append(ls, eth)
	}
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: id, Flags: layers.IPv4DontFragment, SrcIP: ipA, DstIP: ipB, TOS: 0x10}
	if s.ipOpts {
		ip.Options = []layers.IPv4Option{{OptionType: 7, OptionLength: 7, OptionData: []byte{4, 0, 0, 0, 0}}, {OptionType: 1}}
	}
	ls = append(ls, ip)
	if s.udp {
		ip.Protocol = layers.IPProtocolUDP
		u := &layers.UDP{SrcPort: 5353, DstPort: 9999}
		u.SetNetworkLayerForChecksum(ip)
		ls = append(ls, u)
	} else {
		ip.Protocol = layers.IPProtocolTCP
		tc := &layers.TCP{SrcPort: 40000, DstPort: 5201, Seq: seq, Ack: 777, ACK: true, Window: 501,
			FIN: flags&TCPFin != 0, PSH: flags&TCPPsh != 0, CWR: flags&0x80 != 0, ECE: flags&0x40 != 0, URG: flags&TCPUrg != 0}
		if s.tcpOpts {
			tc.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
				{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{1, 2, 3, 4, 5, 6, 7, 8}}}
		}
		tc.SetNetworkLayerForChecksum(ip)
		ls = append(ls, tc)
	}
	ls = append(ls, gopacket.Payload(payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	// gopacket pads to the 60-byte Ethernet minimum; the kernel hands
	// unpadded frames to the port, so trim to the IP total length.
	l3 := l3of(s)
	out := buf.Bytes()[:l3+int(binary.BigEndian.Uint16(buf.Bytes()[l3+2:]))]
	return append([]byte(nil), out...)
}

func l3of(s superSpec) int {
	if s.vlan {
		return 18
	}
	return 14
}

func TestSegmentV4AgainstGopacket(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	type tc struct {
		s   superSpec
		mss int
	}
	var cases []tc
	for _, payload := range []int{1, 100, 1448, 1449, 2896, 10000, 65000 - 60} {
		for _, mss := range []int{1448, 536, 1460} {
			cases = append(cases,
				tc{superSpec{payload: payload, flags: TCPPsh | TCPFin | 0x80 | 0x40}, mss},
				tc{superSpec{vlan: true, tcpOpts: true, payload: payload, flags: TCPPsh}, mss},
				tc{superSpec{ipOpts: true, tcpOpts: true, payload: payload, flags: 0x80 | TCPUrg}, mss},
				tc{superSpec{udp: true, payload: payload}, mss},
				tc{superSpec{udp: true, vlan: true, ipOpts: true, payload: payload}, mss},
			)
		}
	}
	dst := make([]byte, 9216)
	for _, c := range cases {
		payload := make([]byte, c.s.payload)
		rng.Read(payload)
		id := uint16(rng.Intn(65536))
		seq := rng.Uint32()
		super := buildFrame(t, c.s, id, seq, c.s.flags, payload)
		// A super-frame carries a partial checksum: garble it to show it is ignored.
		proto := uint8(ProtoTCP)
		if c.s.udp {
			proto = ProtoUDP
		}
		l3 := l3of(c.s)
		n := GSOSegmentsV4(super, l3, proto, c.mss)
		want := (c.s.payload + c.mss - 1) / c.mss
		if n != want {
			t.Fatalf("%+v mss %d: %d segments, want %d", c.s, c.mss, n, want)
		}
		for i := 0; i < n; i++ {
			lo := i * c.mss
			hi := min(lo+c.mss, c.s.payload)
			fl := c.s.flags
			if i != n-1 {
				fl &^= TCPFin | TCPPsh
			}
			if i != 0 {
				fl &^= 0x80
			}
			exp := buildFrame(t, c.s, id+uint16(i), seq+uint32(lo), fl, payload[lo:hi])
			m := SegmentV4(dst, super, l3, proto, c.mss, i)
			if m != SegmentLenV4(super, l3, proto, c.mss, i) {
				t.Fatalf("SegmentLenV4 disagrees")
			}
			if !bytes.Equal(dst[:m], exp) {
				t.Fatalf("%+v mss %d segment %d:\n got %x\nwant %x", c.s, c.mss, i, dst[:m], exp)
			}
		}
		if SegmentV4(dst, super, l3, proto, c.mss, n) != 0 {
			t.Fatalf("segment past the end accepted")
		}
		if SegmentV4(dst[:l3+20], super, l3, proto, c.mss, 0) != 0 {
			t.Fatalf("short dst accepted")
		}
	}
}

func TestSegmentV4Rejects(t *testing.T) {
	good := buildFrame(t, superSpec{payload: 3000}, 1, 1, 0, make([]byte, 3000))
	dst := make([]byte, 9216)
	mut := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	bad := map[string][]byte{
		"short":       good[:30],
		"version":     mut(func(b []byte) { b[14] = 0x65 }),
		"ihl":         mut(func(b []byte) { b[14] = 0x44 }),
		"udp-as-tcp":  mut(func(b []byte) { b[14+9] = ProtoUDP; b[14+9] = 17 }),
		"fragment":    mut(func(b []byte) { b[14+6] |= 0x20 }),
		"totlen-long": mut(func(b []byte) { binary.BigEndian.PutUint16(b[16:], 60000) }),
		"doff-short":  mut(func(b []byte) { b[14+20+12] = 0x40 }),
		"doff-long":   mut(func(b []byte) { b[14+20+12] = 0xf0; binary.BigEndian.PutUint16(b[16:], 50) }),
	}
	for name, f := range bad {
		if n := GSOSegmentsV4(f, 14, ProtoTCP, 1448); n != 0 {
			t.Errorf("%s: %d segments", name, n)
		}
		if SegmentV4(dst, f, 14, ProtoTCP, 1448, 0) != 0 {
			t.Errorf("%s: segmented", name)
		}
	}
	if GSOSegmentsV4(good, 14, ProtoTCP, 0) != 0 {
		t.Error("mss 0 accepted")
	}
}

func TestCompleteChecksum(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for k := 0; k < 500; k++ {
		s := superSpec{udp: k%2 == 1, vlan: k%3 == 0, tcpOpts: k%5 == 0, payload: rng.Intn(1500)}
		payload := make([]byte, s.payload)
		rng.Read(payload)
		f := buildFrame(t, s, uint16(k), rng.Uint32(), TCPPsh, payload)
		l4 := l3of(s) + 20
		off := 16
		proto := byte(ProtoTCP)
		if s.udp {
			off, proto = 6, ProtoUDP
		}
		want := binary.BigEndian.Uint16(f[l4+off:])
		// What the kernel leaves in a CHECKSUM_PARTIAL packet: the folded
		// pseudo-header sum, not complemented.
		ph := naiveSum(pseudo(f[l3of(s)+12:l3of(s)+16], f[l3of(s)+16:l3of(s)+20], proto, len(f)-l4))
		binary.BigEndian.PutUint16(f[l4+off:], uint16(ph))
		if !CompleteChecksum(f, l4, off) {
			t.Fatal("rejected")
		}
		got := binary.BigEndian.Uint16(f[l4+off:])
		if got != want && !(want == 0 && got == 0xffff) && !(want == 0xffff && got == 0) {
			t.Fatalf("case %d: checksum %04x want %04x", k, got, want)
		}
		// Verify independently: the sum over pseudo header + segment is 0xffff.
		if naiveSum(append(pseudo(f[l3of(s)+12:l3of(s)+16], f[l3of(s)+16:l3of(s)+20], proto, len(f)-l4), f[l4:]...)) != 0xffff {
			t.Fatalf("case %d: checksum does not verify", k)
		}
	}
	if CompleteChecksum(make([]byte, 20), 10, 9) {
		t.Fatal("out of range accepted")
	}
}

func TestVnetHdrRoundTrip(t *testing.T) {
	h := VnetHdr{Flags: VnetNeedsCsum, GSOType: GSOTCPv4 | GSOECNBit, HdrLen: 66, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}
	var b [VnetHdrLen]byte
	h.Put(b[:])
	if ParseVnetHdr(b[:]) != h {
		t.Fatal("round trip")
	}
	// The kernel writes host byte order: on little-endian machines GSOSize 1448 is a8 05.
	if binary.NativeEndian.Uint16(b[4:]) != 1448 {
		t.Fatal("byte order")
	}
}

func TestL3Offset(t *testing.T) {
	cases := []struct {
		f    []byte
		off  int
		typ  uint16
		good bool
	}{
		{append(make([]byte, 12), 0x08, 0x00), 14, 0x0800, true},
		{append(make([]byte, 12), 0x81, 0x00, 0, 5, 0x08, 0x06), 18, 0x0806, true},
		{append(make([]byte, 12), 0x88, 0xa8, 0, 5, 0x81, 0x00, 0, 6, 0x08, 0x00), 22, 0x0800, true},
		{append(make([]byte, 12), 0x81, 0x00, 0, 5), 0, 0, false},
		{make([]byte, 13), 0, 0, false},
	}
	for i, c := range cases {
		off, typ, ok := L3Offset(c.f)
		if off != c.off || typ != c.typ || ok != c.good {
			t.Errorf("case %d: %d %04x %v", i, off, typ, ok)
		}
	}
}

func TestOffloadNoAlloc(t *testing.T) {
	super := buildFrame(t, superSpec{payload: 60000, flags: TCPPsh}, 1, 1, TCPPsh, make([]byte, 60000))
	dst := make([]byte, 9216)
	a := testing.AllocsPerRun(50, func() {
		n := GSOSegmentsV4(super, 14, ProtoTCP, 1448)
		for i := 0; i < n; i++ {
			SegmentV4(dst, super, 14, ProtoTCP, 1448, i)
		}
		CompleteChecksum(dst[:1500], 34, 16)
	})
	if a != 0 {
		t.Fatalf("%v allocations", a)
	}
}

// FuzzSegmentV4 checks, for any input accepted as a super-frame, that the
// segments carry valid IPv4 and L4 checksums, that their payloads put back
// together give the original payload, and that nothing panics.
func FuzzSegmentV4(f *testing.F) {
	f.Add(buildFrame(f, superSpec{payload: 3000, flags: TCPFin | TCPPsh}, 9, 9, TCPFin|TCPPsh, bytes.Repeat([]byte{7}, 3000)), uint16(1448), false)
	f.Add(buildFrame(f, superSpec{udp: true, payload: 2000}, 9, 9, 0, bytes.Repeat([]byte{8}, 2000)), uint16(500), true)
	f.Add(buildFrame(f, superSpec{vlan: true, payload: 10}, 9, 9, 0, make([]byte, 10)), uint16(3), false)
	f.Add([]byte{1, 2, 3}, uint16(0), false)
	dst := make([]byte, 70000)
	f.Fuzz(func(t *testing.T, fr []byte, mss uint16, udp bool) {
		if len(fr) > 1<<16+1024 {
			return // larger than any receive buffer of the ports
		}
		proto := uint8(ProtoTCP)
		if udp {
			proto = ProtoUDP
		}
		l3, _, ok := L3Offset(fr)
		if !ok {
			return
		}
		n := GSOSegmentsV4(fr, l3, proto, int(mss))
		if n == 0 {
			return
		}
		ip := IPv4(fr[l3:])
		ihl := ip.IHL()
		l4hl := 8
		if !udp {
			l4hl = TCP(fr[l3+ihl:]).DataOff()
		}
		tl := ip.TotalLen()
		if tl == 0 {
			tl = len(fr) - l3
		}
		orig := fr[l3+ihl+l4hl : l3+tl]
		var got []byte
		for i := 0; i < n; i++ {
			m := SegmentV4(dst, fr, l3, proto, int(mss), i)
			if m == 0 {
				t.Fatalf("segment %d of %d refused", i, n)
			}
			seg := dst[:m]
			sip := seg[l3 : l3+ihl]
			if naiveSum(sip) != 0xffff {
				t.Fatalf("segment %d: bad IP checksum", i)
			}
			l4 := seg[l3+ihl:]
			if naiveSum(append(pseudo(sip[12:16], sip[16:20], proto, len(l4)), l4...)) != 0xffff {
				t.Fatalf("segment %d: bad L4 checksum", i)
			}
			got = append(got, l4[l4hl:]...)
		}
		if !bytes.Equal(got, orig) {
			t.Fatalf("payload differs")
		}
	})
}
