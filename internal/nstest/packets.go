package nstest

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Serialize builds a packet with gopacket (lengths and checksums computed):
// the independent oracle the data-path tests build their input with.
func Serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// ChecksumOK verifies an Internet checksum over prefix and b, computed
// independently of package packet (16 bits at a time, RFC 1071).
func ChecksumOK(prefix, b []byte) bool {
	var s uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			s += uint32(b[len(b)-1]) << 8
		}
	}
	add(prefix)
	add(b)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return s == 0xffff
}

// L4ChecksumOK verifies the TCP/UDP checksum of l4 under ip's pseudo header.
func L4ChecksumOK(ip *layers.IPv4, l4 []byte) bool {
	ph := make([]byte, 12)
	copy(ph, ip.SrcIP.To4())
	copy(ph[4:], ip.DstIP.To4())
	ph[9] = byte(ip.Protocol)
	binary.BigEndian.PutUint16(ph[10:], uint16(len(l4)))
	return ChecksumOK(ph, l4)
}

// What Answer made of a frame.
const (
	AnswerNone = iota // not for the responder (no reply)
	AnswerARP         // an ARP request for its address: reply is the ARP reply
	AnswerEcho        // a well-formed 56-byte echo request to it: reply is the echo reply
	AnswerBad         // not Ethernet, or a damaged echo request (no reply)
)

// Answer is the peer the port drivers' tests ping through a port: it
// answers an ARP request for myIP and an ICMP echo request (as ping sends
// it, 56 data bytes, checksums verified independently) with myMAC/myIP.
func Answer(t testing.TB, frame []byte, myMAC net.HardwareAddr, myIP net.IP) (reply []byte, what int) {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if eth == nil {
		return nil, AnswerBad
	}
	if a, ok := pkt.Layer(layers.LayerTypeARP).(*layers.ARP); ok && a.Operation == layers.ARPRequest && net.IP(a.DstProtAddress).Equal(myIP) {
		return Serialize(t, &layers.Ethernet{SrcMAC: myMAC, DstMAC: eth.SrcMAC, EthernetType: layers.EthernetTypeARP},
			&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
				Operation: layers.ARPReply, SourceHwAddress: myMAC, SourceProtAddress: myIP,
				DstHwAddress: a.SourceHwAddress, DstProtAddress: a.SourceProtAddress}), AnswerARP
	}
	ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	ic, _ := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if ip == nil || ic == nil || ic.TypeCode.Type() != layers.ICMPv4TypeEchoRequest || !ip.DstIP.Equal(myIP) {
		return nil, AnswerNone
	}
	if pkt.ErrorLayer() != nil || len(frame) != 14+84 || !ChecksumOK(nil, ip.Contents) || !ChecksumOK(nil, append(ic.Contents, ic.Payload...)) {
		return nil, AnswerBad
	}
	return Serialize(t, &layers.Ethernet{SrcMAC: myMAC, DstMAC: eth.SrcMAC, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: myIP, DstIP: ip.SrcIP},
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoReply, 0), Id: ic.Id, Seq: ic.Seq},
		gopacket.Payload(ic.Payload)), AnswerEcho
}
