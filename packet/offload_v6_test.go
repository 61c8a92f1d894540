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

// buildUDPv6 serializes an IPv6 UDP frame with gopacket (lengths and
// checksum computed); with destOpts an 8-byte destination options header
// (PadN) is spliced in between IPv6 and UDP. It returns the frame and the
// offset of the UDP header.
func buildUDPv6(t testing.TB, vlan, destOpts bool, payload []byte) ([]byte, int) {
	t.Helper()
	var ls []gopacket.SerializableLayer
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv6}
	l3 := 14
	if vlan {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, eth, &layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeIPv6})
		l3 = 18
	} else {
		ls = append(ls, eth)
	}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
		SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8:1::2"), FlowLabel: 0x12345}
	u := &layers.UDP{SrcPort: 4433, DstPort: 50000}
	u.SetNetworkLayerForChecksum(ip)
	ls = append(ls, ip, u, gopacket.Payload(payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	f := append([]byte(nil), buf.Bytes()...)
	l4 := l3 + 40
	if destOpts {
		ext := []byte{ProtoUDP, 0, 1, 4, 0, 0, 0, 0}
		f = append(f[:l4:l4], append(ext, f[l4:]...)...)
		f[l3+6] = ip6DestOpts
		binary.BigEndian.PutUint16(f[l3+4:], binary.BigEndian.Uint16(f[l3+4:])+8)
		l4 += 8
	}
	return f, l4
}

func TestSegmentUDPv6AgainstGopacket(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	dst := make([]byte, 9216)
	for _, payload := range []int{0, 1, 1232, 1233, 5000, 65000} {
		for _, mss := range []int{1232, 1452, 500} {
			for _, shape := range []struct{ vlan, ext bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
				data := make([]byte, payload)
				rng.Read(data)
				super, l4 := buildUDPv6(t, shape.vlan, shape.ext, data)
				l3 := 14
				if shape.vlan {
					l3 = 18
				}
				// The checksum of a super-frame is partial: garble it.
				binary.BigEndian.PutUint16(super[l4+6:], 0x1234)
				n := GSOSegmentsUDPv6(super, l3, l4, mss)
				want := max(1, (payload+mss-1)/mss)
				if n != want {
					t.Fatalf("payload %d mss %d %+v: %d segments, want %d", payload, mss, shape, n, want)
				}
				for i := 0; i < n; i++ {
					lo := i * mss
					hi := min(lo+mss, payload)
					exp, _ := buildUDPv6(t, shape.vlan, shape.ext, data[lo:hi])
					m := SegmentUDPv6(dst, super, l3, l4, mss, i)
					if !bytes.Equal(dst[:m], exp) {
						t.Fatalf("payload %d mss %d %+v segment %d:\n got %x\nwant %x", payload, mss, shape, i, dst[:m], exp)
					}
				}
				if SegmentUDPv6(dst, super, l3, l4, mss, n) != 0 {
					t.Fatal("segment past the end accepted")
				}
				if SegmentUDPv6(dst[:l4+8], super, l3, l4, mss, 0) != 0 && payload > 0 {
					t.Fatal("short dst accepted")
				}
			}
		}
	}
}

func TestSegmentUDPv6Rejects(t *testing.T) {
	good, l4 := buildUDPv6(t, false, true, make([]byte, 3000))
	mut := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	dst := make([]byte, 9216)
	for name, c := range map[string]struct {
		f      []byte
		l3, l4 int
	}{
		"short":      {good[:60], 14, l4},
		"version":    {mut(func(b []byte) { b[14] = 0x45 }), 14, l4},
		"l4-in-ipv6": {good, 14, 14 + 20},
		"l4-wrong":   {good, 14, 14 + 40},
		"not-udp":    {mut(func(b []byte) { b[14+40] = ProtoTCP }), 14, l4},
		"fragment":   {mut(func(b []byte) { b[14+6] = 44 }), 14, l4},
		"paylen":     {mut(func(b []byte) { binary.BigEndian.PutUint16(b[18:], 60000) }), 14, l4},
		"paylen-hdr": {mut(func(b []byte) { binary.BigEndian.PutUint16(b[18:], 10) }), 14, l4},
	} {
		if n := GSOSegmentsUDPv6(c.f, c.l3, c.l4, 1232); n != 0 {
			t.Errorf("%s: %d segments", name, n)
		}
		if SegmentUDPv6(dst, c.f, c.l3, c.l4, 1232, 0) != 0 {
			t.Errorf("%s: segmented", name)
		}
	}
	if GSOSegmentsUDPv6(good, 14, l4, 0) != 0 {
		t.Error("mss 0 accepted")
	}
	if a := testing.AllocsPerRun(100, func() { SegmentUDPv6(dst, good, 14, l4, 1232, 1) }); a != 0 {
		t.Errorf("%v allocations", a)
	}
}
