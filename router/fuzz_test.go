package router

import (
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/packet"
)

// FuzzPipeline feeds arbitrary frames to the whole pipeline (both ports,
// with a resolved neighbour on each side) and checks the invariants: no
// panic, every frame sent is a well-formed Ethernet frame, and every IPv4
// packet sent has a valid header checksum and fits the egress MTU.
func FuzzPipeline(f *testing.F) {
	l := newLab(f)
	l.resolveBoth()
	f.Add(icmpEcho(f, hostA, macA, ipHostA, ipHostB, 64, false, 100), false)
	f.Add(icmpEcho(f, hostA, macA, ipHostA, ipHostB, 1, true, 10), false)
	f.Add(icmpEcho(f, hostA, macA, ipHostA, ipHostB, 64, false, 3000), true)
	f.Add(arpReq(f, hostA, ipHostA, ipRA), false)
	f.Add(tagged(arpReq(f, hostA, ipHostA, ipRA), 7), true)
	f.Add([]byte{1, 2, 3}, false)
	f.Fuzz(func(t *testing.T, frame []byte, portB bool) {
		if len(frame) > 9000 {
			frame = frame[:9000]
		}
		if portB {
			l.pb.Inject(frame)
		} else {
			l.pa.Inject(frame)
		}
		l.run()
		for pi, out := range [][][]byte{l.pa.Take(), l.pb.Take()} {
			mtu := []int{1500, 1400}[pi]
			for _, o := range out {
				p := gopacket.NewPacket(o, layers.LayerTypeEthernet, gopacket.Default)
				if p.Layer(layers.LayerTypeEthernet) == nil {
					t.Fatalf("sent a frame that is not Ethernet: %x", o)
				}
				l2, ok := packet.ParseL2(o)
				if !ok {
					t.Fatalf("short frame sent: %x", o)
				}
				if l2.Type != packet.EtherTypeIPv4 {
					continue
				}
				ip := packet.IPv4(o[l2.HdrLen:])
				if len(ip) < 20 || !ip.HeaderChecksumOK() {
					t.Fatalf("IPv4 with a bad header checksum sent: %x", o)
				}
				if ip.TotalLen() > mtu {
					t.Fatalf("IPv4 of %d bytes sent on a %d MTU port", ip.TotalLen(), mtu)
				}
			}
		}
	})
}
