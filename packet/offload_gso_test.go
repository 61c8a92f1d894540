package packet

import (
	"bytes"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestSegmentTCPv6 cuts a TCPv6 super-frame (built with gopacket, with a
// destination options header) and checks each segment with gopacket:
// payload lengths, sequence numbers, flags, checksums, and that the
// payloads put together are the original.
func TestSegmentTCPv6(t *testing.T) {
	payload := make([]byte, 5000)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolIPv6Destination, HopLimit: 64, SrcIP: net.IP(v6a[:]), DstIP: net.IP(v6b[:])}
	do := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}}
	do.NextHeader = layers.IPProtocolTCP
	tcp := &layers.TCP{SrcPort: 1000, DstPort: 2000, Seq: 0xfffff000, Ack: 5, ACK: true, PSH: true, FIN: true, CWR: true, Window: 100}
	tcp.SetNetworkLayerForChecksum(ip)
	f := serialize6(t, eth, ip, do, tcp, gopacket.Payload(payload))
	const mss = 1400
	n := GSOSegments(f, 14, ProtoTCP, mss)
	if n != 4 {
		t.Fatalf("%d segments, want 4", n)
	}
	var got []byte
	dst := make([]byte, 2000)
	for i := 0; i < n; i++ {
		l := Segment(dst, f, 14, ProtoTCP, mss, i)
		if l == 0 {
			t.Fatalf("segment %d: 0", i)
		}
		p := gopacket.NewPacket(append([]byte(nil), dst[:l]...), layers.LayerTypeEthernet, gopacket.Default)
		g, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		gip, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		if g == nil || gip == nil {
			t.Fatalf("segment %d: %v", i, p)
		}
		g.SetNetworkLayerForChecksum(gip)
		if err, res := g.VerifyChecksum(); err != nil || !res.Valid {
			t.Fatalf("segment %d: bad TCP checksum", i)
		}
		last := i == n-1
		if g.Seq != 0xfffff000+uint32(i*mss) || g.FIN != last || g.PSH != last || g.CWR != (i == 0) || !g.ACK {
			t.Fatalf("segment %d: seq %x fin %v psh %v cwr %v", i, g.Seq, g.FIN, g.PSH, g.CWR)
		}
		if int(gip.Length) != l-14-40 {
			t.Fatalf("segment %d: payload length %d, frame %d", i, gip.Length, l)
		}
		got = append(got, g.Payload...)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("payloads differ")
	}
	// IPv4 goes to SegmentV4; a non-TCP next header is refused.
	if GSOSegments(f, 14, ProtoUDP, mss) != 0 {
		t.Fatal("TCP super-frame taken as UDP")
	}
}
