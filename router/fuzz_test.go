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

// FuzzFilterPipeline is FuzzPipeline on the filter lab (a floating IP, a
// stateful filter on each side, rejects answered): the same invariants, and
// the conntrack table never holds more sessions than frames were fed.
func FuzzFilterPipeline(f *testing.F) {
	edge := filterFloat + `
[[filter]]
name = "edge"
default = "accept"
[[filter.rule]]
action = "reject"
proto = "udp"
dport = "9"
`
	l := filterLab(f, edge)
	cfg := filterCfg(f, edge)
	cfg.Networks[0].FilterIn = "edge"
	if _, err := l.r.Reconfigure(cfg); err != nil {
		f.Fatal(err)
	}
	f.Add(seg{src: ipHostA, dst: ipFloat, sport: 1, dport: 22, flags: "S"}.frame(f, hostA, macA), false)
	f.Add(seg{src: ipHostA, dst: ipFloat, sport: 1, dport: 443, flags: "S"}.frame(f, hostA, macA), false)
	f.Add(seg{src: ipHostA, dst: ipFloat, sport: 1, dport: 9, udp: true}.frame(f, hostA, macA), false)
	f.Add(seg{src: ipHostB, dst: ipHostA, sport: 22, dport: 1, flags: "SA"}.frame(f, hostB, macB), true)
	f.Add(icmpErrFrame(f, ipHostA, ipFloat, 3, 4, 1300, seg{src: ipFloat, dst: ipHostA, sport: 5, dport: 6, udp: true}.frame(f, hostB, macB)[14:]), false)
	f.Add(icmpEcho(f, hostA, macA, ipHostA, ipFloat, 64, false, 3000), false)
	fed := 0
	f.Fuzz(func(t *testing.T, frame []byte, portB bool) {
		if len(frame) > 9000 {
			frame = frame[:9000]
		}
		if portB {
			l.pb.Inject(frame)
		} else {
			l.pa.Inject(frame)
		}
		fed++
		l.run()
		for pi, out := range [][][]byte{l.pa.Take(), l.pb.Take()} {
			mtu := []int{1500, 1400}[pi]
			for _, o := range out {
				l2, ok := packet.ParseL2(o)
				if !ok {
					t.Fatalf("short frame sent: %x", o)
				}
				if l2.Type != packet.EtherTypeIPv4 {
					continue
				}
				ip := packet.IPv4(o[l2.HdrLen:])
				if len(ip) < 20 || !ip.HeaderChecksumOK() || ip.TotalLen() > mtu {
					t.Fatalf("bad IPv4 sent: %x", o)
				}
			}
		}
		if n := l.r.NAT.Len(); n > fed {
			t.Fatalf("%d sessions after %d frames", n, fed)
		}
	})
}
