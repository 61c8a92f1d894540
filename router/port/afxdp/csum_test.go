package afxdp

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/internal/nstest"
	"vrouter/packet"
)

func l4Frame(t *testing.T, proto layers.IPProtocol, payload string) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{198, 51, 100, 7}}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	if proto == layers.IPProtocolTCP {
		tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 7, ACK: true, Window: 500}
		tcp.SetNetworkLayerForChecksum(ip)
		return nstest.Serialize(t, eth, ip, tcp, gopacket.Payload(payload))
	}
	u := &layers.UDP{SrcPort: 40000, DstPort: 53}
	u.SetNetworkLayerForChecksum(ip)
	return nstest.Serialize(t, eth, ip, u, gopacket.Payload(payload))
}

// makePartial replaces the L4 checksum by the folded pseudo-header sum, as
// Linux leaves it for a device with checksum offload.
func makePartial(f []byte, off int) {
	ip := packet.IPv4(f[14:])
	seg := ip.TotalLen() - ip.IHL()
	binary.BigEndian.PutUint16(f[14+ip.IHL()+off:], packet.Fold(packet.PseudoSum(ip.Src(), ip.Dst(), ip.Proto(), seg)))
}

func TestCompletePartial(t *testing.T) {
	for _, c := range []struct {
		proto layers.IPProtocol
		off   int
	}{{layers.IPProtocolTCP, 16}, {layers.IPProtocolUDP, 6}} {
		good := l4Frame(t, c.proto, "some payload, odd length")
		f := append([]byte(nil), good...)
		if completePartial(f) || !bytes.Equal(f, good) {
			t.Fatalf("%v: a complete checksum was touched", c.proto)
		}
		makePartial(f, c.off)
		if bytes.Equal(f, good) {
			t.Fatalf("%v: test frame not partial", c.proto)
		}
		if !completePartial(f) || !bytes.Equal(f, good) {
			t.Fatalf("%v: partial checksum not completed:\n got %x\nwant %x", c.proto, f, good)
		}
		// Ethernet padding after the IP packet is not summed.
		padded := append(append([]byte(nil), good...), 0, 0, 0, 0)
		makePartial(padded, c.off)
		if !completePartial(padded) || !bytes.Equal(padded[:len(good)], good) {
			t.Fatalf("%v: padded frame", c.proto)
		}
		// A fragment is left alone.
		frag := append([]byte(nil), good...)
		makePartial(frag, c.off)
		packet.IPv4(frag[14:]).SetFlagsFrag(packet.IPv4MF)
		if completePartial(frag) {
			t.Fatalf("%v: fragment completed", c.proto)
		}
	}
	// Not TCP/UDP, truncated, too short: untouched.
	for _, f := range [][]byte{nil, make([]byte, 20), l4Frame(t, layers.IPProtocolUDP, "x")[:40]} {
		if completePartial(f) {
			t.Fatalf("completed %x", f)
		}
	}
}

func TestCompletePartialNoAlloc(t *testing.T) {
	f := l4Frame(t, layers.IPProtocolTCP, "payload")
	if a := testing.AllocsPerRun(100, func() { makePartial(f, 16); completePartial(f) }); a != 0 {
		t.Fatalf("%.1f allocs", a)
	}
}

// TestCompletePartial6: the same for IPv6 TCP and UDP (checked against
// gopacket's checksums); a frame with an extension header is left alone.
func TestCompletePartial6(t *testing.T) {
	src, dst := net.ParseIP("2001:db8:1::10"), net.ParseIP("2001:db8:2::10")
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv6}
	for _, c := range []struct {
		proto layers.IPProtocol
		off   int
	}{{layers.IPProtocolTCP, 16}, {layers.IPProtocolUDP, 6}} {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: c.proto, SrcIP: src, DstIP: dst}
		var l4 gopacket.SerializableLayer
		if c.proto == layers.IPProtocolTCP {
			tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 7, ACK: true, Window: 500}
			tcp.SetNetworkLayerForChecksum(ip)
			l4 = tcp
		} else {
			u := &layers.UDP{SrcPort: 40000, DstPort: 53}
			u.SetNetworkLayerForChecksum(ip)
			l4 = u
		}
		good := nstest.Serialize(t, eth, ip, l4, gopacket.Payload("an IPv6 payload, odd"))
		f := append([]byte(nil), good...)
		if completePartial(f) || !bytes.Equal(f, good) {
			t.Fatalf("%v: a complete checksum was touched", c.proto)
		}
		v6 := packet.IPv6(f[14:])
		binary.BigEndian.PutUint16(f[14+packet.IPv6HdrLen+c.off:], packet.Fold(packet.PseudoSum6(v6.Src(), v6.Dst(), v6.NextHeader(), v6.PayloadLen())))
		if bytes.Equal(f, good) {
			t.Fatalf("%v: test frame not partial", c.proto)
		}
		if !completePartial(f) || !bytes.Equal(f, good) {
			t.Fatalf("%v: partial checksum not completed:\n got %x\nwant %x", c.proto, f, good)
		}
	}
	// Behind a destination options header: untouched.
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6Destination, SrcIP: src, DstIP: dst}
	opts := &layers.IPv6Destination{}
	opts.NextHeader = layers.IPProtocolUDP
	opts.Options = []*layers.IPv6DestinationOption{{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}
	u := &layers.UDP{SrcPort: 40000, DstPort: 53}
	u.SetNetworkLayerForChecksum(ip)
	f := nstest.Serialize(t, eth, ip, opts, u, gopacket.Payload("x"))
	if completePartial(f) {
		t.Fatal("a frame with an extension header was changed")
	}
}
