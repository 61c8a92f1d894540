package nat

import (
	"encoding/binary"
	"testing"

	"vrouter/packet"
)

// toPartial turns p's complete TCP/UDP checksum into a CHECKSUM_PARTIAL
// field: the folded pseudo-header sum, as the kernel leaves it for the
// device (or the peer) to complete. It returns the checksum field offset.
func toPartial(p packet.IPv4) int {
	ihl := p.IHL()
	l4 := p[ihl:p.TotalLen()]
	pseudo := sum16(p[12:20]) + uint32(p[9]) + uint32(len(l4))
	o := ihl + packet.TCPChecksumOff
	if p.Proto() == packet.ProtoUDP {
		o = ihl + packet.UDPChecksumOff
	}
	binary.BigEndian.PutUint16(p[o:], fold(pseudo))
	return o
}

// A partial checksum survives translation: after the NAT rewrote
// addresses and ports, completing it (what the kernel does for a GSO
// super-frame or an offloaded checksum) gives the right checksum.
func TestPartialChecksum(t *testing.T) {
	for _, c := range []struct {
		name string
		p    pk
		out  bool
	}{
		{"snat tcp", pk{src: "10.1.1.10", dst: "198.51.100.9", proto: packet.ProtoTCP, sport: 1000, dport: 80, flags: packet.TCPSyn, payload: make([]byte, 3000)}, true},
		{"snat udp", pk{src: "10.1.1.11", dst: "198.51.100.9", proto: packet.ProtoUDP, sport: 999, dport: 53, payload: []byte("hello world")}, true},
		{"forward tcp", pk{src: "198.51.100.9", dst: "203.0.113.1", proto: packet.ProtoTCP, sport: 4444, dport: 8080, flags: packet.TCPSyn, payload: make([]byte, 1400)}, false},
		{"floating tcp", pk{src: "198.51.100.9", dst: "203.0.113.50", proto: packet.ProtoTCP, sport: 4445, dport: 22, flags: packet.TCPSyn}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, w := newNAT(t, testConfig())
			p := build(t, c.p)
			o := toPartial(p)
			w.SetPartial(true)
			var v Verdict
			var why Reason
			if c.out {
				v, why = w.Out(p, 0, 1, 1)
			} else {
				v, why = w.In(p, 1, 1)
			}
			w.SetPartial(false)
			if v != Translated {
				t.Fatalf("verdict %v (%v), want translated", v, why)
			}
			ihl := p.IHL()
			if !packet.CompleteChecksum(p[:p.TotalLen()], ihl, o-ihl) {
				t.Fatal("cannot complete the checksum")
			}
			checkSums(t, p)
		})
	}
}
