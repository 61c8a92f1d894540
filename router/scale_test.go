package router

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/config"
	"vrouter/internal/clock"
	"vrouter/packet"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

// newScaleLab: network a (pa) is the uplink with proxy ARP published for n
// guest /32s 203.0.113.x routed to network b (pb), like host-routed guests
// published on the uplink.
func newScaleLab(tb testing.TB, n int) (*Router, *pipe.Port, *pipe.Port) {
	cfg := testConfig()
	cfg.Networks[0].Addresses = []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("100.64.0.1/10")}
	cfg.Routes = nil
	for i := 0; i < n; i++ {
		ip := netip.AddrFrom4([4]byte{100, 65 + byte(i>>16), byte(i >> 8), byte(i)}).Next()
		cfg.Routes = append(cfg.Routes, config.Route{Prefix: netip.PrefixFrom(ip, 32), Network: "b", Type: config.RouteUnicast})
		cfg.ARP = append(cfg.ARP, config.ARPEntry{Network: "a", IP: ip, Publish: true})
	}
	pa := pipe.New("pa", macA, 1500)
	pb := pipe.New("pb", macB, 1500)
	r, err := New(cfg, []port.Port{pa, pb}, Options{Clock: clock.NewManual()})
	if err != nil {
		tb.Fatal(err)
	}
	return r, pa, pb
}

func guestIP(i int) net.IP {
	a := netip.AddrFrom4([4]byte{100, 65 + byte(i>>16), byte(i >> 8), byte(i)}).Next().As4()
	return net.IP(a[:])
}

func TestPublishedScale(t *testing.T) {
	r, pa, _ := newScaleLab(t, 4000)
	w := r.workers[0]
	for _, i := range []int{0, 1234, 3999} {
		pa.Inject(arpReq(t, hostA, ipHostA, guestIP(i)))
		pa.TryReadBatch(w.rx)
		w.processBatch(r.ports[0], w.rx)
		out := pa.Take()
		if len(out) != 1 {
			t.Fatalf("guest %d: %d replies", i, len(out))
		}
		a := decode(out[0]).Layer(layers.LayerTypeARP).(*layers.ARP)
		if net.IP(a.SourceProtAddress).String() != guestIP(i).String() || net.HardwareAddr(a.SourceHwAddress).String() != net.HardwareAddr(macA[:]).String() {
			t.Fatalf("bad proxy reply %+v", a)
		}
	}
}

// BenchmarkProxyARP measures answering ARP for a published address with 1
// and 4,000 published addresses (O(1): the figures should match).
func BenchmarkProxyARP(b *testing.B) {
	for _, n := range []int{1, 4000} {
		b.Run(fmt.Sprintf("published=%d", n), func(b *testing.B) {
			r, _, pb := newScaleLab(b, n)
			_ = pb
			frame := arpReq(b, hostA, ipHostA, guestIP(n-1))
			gen := pipe.NewGenerator("pa", macA, 1500, [][]byte{frame})
			r.ports[0].p = gen
			w := r.workers[0]
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				gen.ReadBatch(w.rx)
				w.processBatch(r.ports[0], w.rx)
				done += w.rx.N
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/packet")
		})
	}
}

// BenchmarkForwardGuests forwards to one guest with 1 and 4,000 guest /32
// routes in the FIB.
func BenchmarkForwardGuests(b *testing.B) {
	for _, n := range []int{1, 4000} {
		b.Run(fmt.Sprintf("guests=%d", n), func(b *testing.B) {
			r, pa, pb := newScaleLab(b, n)
			w := r.workers[0]
			dst := guestIP(n - 1)
			// Resolve A (the sender) and the guest on b.
			pa.Inject(arpReq(b, hostA, ipHostA, ipRA))
			pa.TryReadBatch(w.rx)
			w.processBatch(r.ports[0], w.rx)
			pa.Take()
			pb.Inject(arpReply(b, hostB, dst, net.HardwareAddr(macB[:]), ipRB))
			pb.TryReadBatch(r.workers[1].rx)
			r.workers[1].processBatch(r.ports[1], r.workers[1].rx)
			r.Neigh.Update(1, packet.U32(netip.AddrFrom4([4]byte(dst.To4()))), [6]byte(hostB), true, 1, func([]byte) {})
			pb.SetSink(true)
			ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: ipHostA, DstIP: dst}
			udp := &layers.UDP{SrcPort: 1000, DstPort: 2000}
			udp.SetNetworkLayerForChecksum(ip)
			frame := ser(b, &layers.Ethernet{SrcMAC: hostA, DstMAC: macA[:], EthernetType: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload(make([]byte, 18)))
			gen := pipe.NewGenerator("pa", macA, 1500, [][]byte{frame})
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				gen.ReadBatch(w.rx)
				w.processBatch(r.ports[0], w.rx)
				done += w.rx.N
			}
			b.StopTimer()
			if r.Counters()[CntForwarded] == 0 {
				b.Fatal("nothing forwarded")
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/packet")
		})
	}
}
