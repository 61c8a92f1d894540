package nstest

import (
	"encoding/binary"
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
