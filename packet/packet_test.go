package packet

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// naiveChecksum is RFC 1071 written the slow, obvious way.
func naiveChecksum(b []byte) uint16 {
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
	return ^uint16(s)
}

func TestChecksumMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for n := 0; n < 200; n++ {
		b := make([]byte, rng.IntN(1600))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if got, want := Checksum(b), naiveChecksum(b); got != want {
			t.Fatalf("len %d: %04x want %04x", len(b), got, want)
		}
	}
}

// RFC 1624: the incremental update equals a full recomputation, including
// the case where the old formula of RFC 1141 produced 0xFFFF (-0).
func TestUpdate16MatchesRecompute(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	hdr := make([]byte, 20)
	for n := 0; n < 100000; n++ {
		for i := range hdr {
			hdr[i] = byte(rng.Uint32())
		}
		if n%7 == 0 { // force sums near 0xffff
			for i := range hdr {
				hdr[i] = 0xff
			}
			hdr[rng.IntN(20)] = byte(rng.Uint32())
		}
		hdr[10], hdr[11] = 0, 0
		binary.BigEndian.PutUint16(hdr[10:], naiveChecksum(hdr))
		off := 2 * rng.IntN(10)
		if off == 10 {
			off = 8
		}
		old := binary.BigEndian.Uint16(hdr[off:])
		nv := uint16(rng.Uint32())
		if n%5 == 0 {
			nv = old - 1
		}
		binary.BigEndian.PutUint16(hdr[off:], nv)
		got := Update16(binary.BigEndian.Uint16(hdr[10:]), old, nv)
		hdr[10], hdr[11] = 0, 0
		want := naiveChecksum(hdr)
		// 0x0000 and 0xffff are both one's-complement zero; RFC 1624 never
		// produces 0xffff when the true result is 0x0000 for a header
		// that is not all zeros, so require equality.
		if got != want {
			t.Fatalf("update at %d %04x->%04x: %04x want %04x", off, old, nv, got, want)
		}
		binary.BigEndian.PutUint16(hdr[10:], got)
	}
}

func TestDecTTL(t *testing.T) {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4(192, 0, 2, 1), DstIP: net.IPv4(198, 51, 100, 1)}
	buf := gopacket.NewSerializeBuffer()
	gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, gopacket.Payload([]byte{1, 2, 3, 4}))
	b := buf.Bytes()
	for ttl := 64; ttl > 1; ttl-- {
		IPv4(b).DecTTL()
		p := gopacket.NewPacket(b, layers.LayerTypeIPv4, gopacket.Default)
		got := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if int(got.TTL) != ttl-1 || naiveChecksum(b[:20]) != 0 {
			t.Fatalf("ttl %d: checksum invalid after DecTTL", got.TTL)
		}
	}
}

func TestViewsAgainstGopacket(t *testing.T) {
	ip := &layers.IPv4{Version: 4, IHL: 6, TTL: 9, Id: 4242, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP,
		SrcIP: net.IPv4(10, 1, 2, 3), DstIP: net.IPv4(203, 0, 113, 9), Options: []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}}
	tcp := &layers.TCP{SrcPort: 1234, DstPort: 80, Seq: 99, Ack: 7, SYN: true, ACK: true, Window: 500, DataOffset: 5}
	tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 1234, Type: layers.EthernetTypeIPv4}, ip, tcp, gopacket.Payload([]byte("hello")))
	if err != nil {
		t.Fatal(err)
	}
	f := buf.Bytes()
	l2, ok := ParseL2(f)
	if !ok || !l2.Tagged || l2.VID != 1234 || l2.Type != EtherTypeIPv4 || l2.HdrLen != 18 {
		t.Fatalf("L2 %+v", l2)
	}
	p, e := CheckIPv4(f[18:])
	if e != IPv4OK {
		t.Fatalf("CheckIPv4: %d", e)
	}
	if p.IHL() != 24 || p.TTL() != 9 || p.ID() != 4242 || !p.DF() || p.Proto() != ProtoTCP ||
		p.Src() != 0x0a010203 || p.Dst() != 0xcb007109 || p.HasSourceRoute() {
		t.Fatalf("IPv4 view disagrees with gopacket")
	}
	seg := TCP(p.Payload())
	if seg.SrcPort() != 1234 || seg.DstPort() != 80 || seg.Seq() != 99 || seg.Flags() != TCPSyn|TCPAck || seg.DataOff() != 20 {
		t.Fatalf("TCP view disagrees")
	}
	// Our L4 checksum of the segment equals gopacket's.
	want := seg.Checksum()
	c := append([]byte(nil), p.Payload()...)
	c[16], c[17] = 0, 0
	if got := L4Checksum(p.Src(), p.Dst(), ProtoTCP, c); got != want {
		t.Fatalf("TCP checksum %04x want %04x", got, want)
	}
	// Source-route option detection.
	lsrr := append([]byte(nil), f[18:]...)
	lsrr[20], lsrr[21], lsrr[22], lsrr[23] = 131, 3, 4, 0
	if !IPv4(lsrr).HasSourceRoute() {
		t.Fatal("LSRR not detected")
	}
}

func TestMartians(t *testing.T) {
	for a, want := range map[uint32]bool{0x00000000: true, 0x7f000001: true, 0xe0000001: true, 0xffffffff: true, 0xf0000001: true,
		0xc0000201: false, 0x0a000001: false} {
		if IsMartianSource(a) != want {
			t.Errorf("%08x: martian=%v", a, !want)
		}
	}
}

// FuzzParsers: the header parsers never panic and agree with gopacket on
// what is a valid IPv4 header.
func FuzzParsers(f *testing.F) {
	f.Add([]byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2})
	f.Add([]byte{0x46, 0, 0, 24, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 131, 3, 4, 0})
	f.Add([]byte{0x4f, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseL2(b)
		if ValidARP(b) {
			a := ARP(b)
			_, _, _ = a.Op(), a.SenderIP(), a.TargetMAC()
		}
		p, e := CheckIPv4(b)
		if e != IPv4OK {
			return
		}
		p.HasSourceRoute()
		_ = p.Payload()
		g := gopacket.NewPacket(b, layers.LayerTypeIPv4, gopacket.NoCopy)
		gl, ok := g.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !ok {
			t.Fatalf("we accept a header gopacket rejects: %x", b)
		}
		if int(gl.IHL)*4 != p.IHL() || int(gl.Length) != p.TotalLen() || naiveChecksum(b[:p.IHL()]) != 0 {
			t.Fatalf("disagreement with gopacket on %x", b)
		}
	})
}
