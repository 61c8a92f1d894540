package router

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/config"
	"vrouter/packet"
	"vrouter/router/port/pipe"
)

// cloudRules makes n rules shaped like a CloudStack zone's firewall (per
// public address in 198.18.0.0/15: ssh from an admin /24, http and https,
// a partner range, a UDP range, ping, some rejected clients), then one
// rule accepting UDP from 192.0.2.0/24, the benchmark's flow.
func cloudRules(n int) config.Filter {
	pr := func(s string) []config.PortRange {
		r, err := config.ParsePortList(s)
		if err != nil {
			panic(err)
		}
		return r
	}
	pf := func(s string) []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix(s)} }
	admins := []string{"198.51.100.0/24", "203.0.113.0/24", "100.64.3.0/24", "100.64.1.0/24", "100.64.2.0/24"}
	f := config.Filter{Name: "cloud", Default: config.FilterDrop}
	for i := 0; len(f.Rules) < n-1; i++ {
		dst := []netip.Prefix{netip.PrefixFrom(packet.Addr(0xc6120000+uint32(i)), 32)}
		rs := []config.FilterRule{
			{Action: config.FilterAccept, Proto: config.ProtoTCP, Source: pf(admins[i%5]), Destination: dst, DPort: pr("22")},
			{Action: config.FilterAccept, Proto: config.ProtoTCP, Destination: dst, DPort: pr("80,443")},
			{Action: config.FilterAccept, Proto: config.ProtoTCP, Source: pf(admins[(i+1)%5]), Destination: dst, DPort: pr("8000-8100")},
			{Action: config.FilterAccept, Proto: config.ProtoUDP, Destination: dst, DPort: pr(fmt.Sprintf("%d-%d", 10000+i%50, 10100+i%50))},
			{Action: config.FilterAccept, Proto: config.ProtoICMP, Destination: dst, ICMPType: 8, HasICMPType: true},
			{Action: config.FilterReject, Proto: config.ProtoTCP, Source: pf(fmt.Sprintf("203.0.113.%d/32", i%250+1)), Destination: dst},
		}
		for _, r := range rs {
			if len(f.Rules) < n-1 {
				f.Rules = append(f.Rules, r)
			}
		}
	}
	f.Rules = append(f.Rules, config.FilterRule{Action: config.FilterAccept, Proto: config.ProtoUDP, Source: pf("192.0.2.0/24")})
	return f
}

// benchLab is the pipeline lab (hosts A on a, B on b resolved) with SNAT
// of a's hosts out of b when nat, and an n-rule ruleset as a's filter_in
// when n > 0.
func benchLab(b *testing.B, nat bool, n int) *lab {
	cfg := testConfig()
	if nat {
		cfg.NAT.SNAT = []config.SNAT{{Source: netip.MustParsePrefix("192.0.2.0/24"), Out: "b",
			To: config.AddrRange{First: netip.MustParseAddr("198.51.100.1"), Last: netip.MustParseAddr("198.51.100.1")}}}
	}
	cfg.Conntrack.Max = 1 << 16
	if n > 0 {
		cfg.Filters = []config.Filter{cloudRules(n)}
		cfg.Networks[0].FilterIn = "cloud"
	}
	cfg.ApplyDefaults()
	l := labWith(b, cfg)
	l.resolveA()
	l.r.Neigh.Update(1, 0xc633640a, [6]byte(hostB), true, l.clk.Now(), func([]byte) {})
	l.pb.SetSink(true)
	return l
}

func udpFrame(b testing.TB, src, dst net.IP, sport, dport uint16) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src, DstIP: dst}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	udp.SetNetworkLayerForChecksum(ip)
	return ser(b, &layers.Ethernet{SrcMAC: hostA, DstMAC: macA[:], EthernetType: layers.EthernetTypeIPv4},
		ip, udp, gopacket.Payload(make([]byte, 18)))
}

// BenchmarkFilterEstablished forwards the 64-byte frames of one
// established UDP flow, with and without SNAT, through a network with no
// filter and through one whose filter_in has 10,000 rules. With SNAT the
// filter reuses the NAT's session lookup; without, the filter adds the
// lookup of the flow's tracking session. For stable figures count
// instructions (the README's recipe):
//
//	go test -c -o /tmp/router.test ./router
//	GOGC=off valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
//	  /tmp/router.test -test.run '^$' -test.bench 'FilterEstablished/nat=true/rules=0$' -test.benchtime 200000x -test.cpu 1
//
// at two benchtimes; the difference of the totals over the difference of
// the packet counts is the cost per packet.
func BenchmarkFilterEstablished(b *testing.B) {
	for _, nat := range []bool{true, false} {
		for _, n := range []int{0, 10000} {
			b.Run(fmt.Sprintf("nat=%v/rules=%d", nat, n), func(b *testing.B) {
				l := benchLab(b, nat, n)
				frame := udpFrame(b, ipHostA, ipHostB, 1000, 2000)
				l.pa.Inject(frame)
				l.run()
				gen := pipe.NewGenerator("pa", macA, 1500, [][]byte{frame})
				runGen(b, l, gen)
				if l.r.Counters()[CntForwarded] < uint64(b.N) {
					b.Fatal("not forwarded")
				}
				if d := l.r.Drops(); d[DropFilter]+d[DropFilterInvalid] != 0 {
					b.Fatal("filtered")
				}
			})
		}
	}
	// The replies of the flow, from B back to A (with SNAT to the
	// router's address): NAT In translates them.
	for _, n := range []int{0, 10000} {
		b.Run(fmt.Sprintf("reply/nat=true/rules=%d", n), func(b *testing.B) {
			l := benchLab(b, true, n)
			l.pa.Inject(udpFrame(b, ipHostA, ipHostB, 1000, 2000))
			l.run()
			l.pa.SetSink(true)
			ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: ipHostB, DstIP: ipRB}
			udp := &layers.UDP{SrcPort: 2000, DstPort: 1000}
			udp.SetNetworkLayerForChecksum(ip)
			frame := ser(b, &layers.Ethernet{SrcMAC: hostB, DstMAC: macB[:], EthernetType: layers.EthernetTypeIPv4},
				ip, udp, gopacket.Payload(make([]byte, 18)))
			runGenOn(b, l, 1, pipe.NewGenerator("pb", macB, 1400, [][]byte{frame}))
			if l.r.Counters()[CntForwarded] < uint64(b.N) {
				b.Fatal("not forwarded")
			}
		})
	}
}

// BenchmarkFilterFirstPacket: first packets of flows (TCP from random
// inside sources and ports) classified against 10, 1,000 and 10,000 rules
// and refused by the default: the conntrack miss, the classification, the
// counting and the drop.
func BenchmarkFilterFirstPacket(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			l := benchLab(b, true, n)
			rng := rand.New(rand.NewPCG(1, 2))
			frames := make([][]byte, 1024)
			for i := range frames {
				src := net.IPv4(192, 0, 2, byte(2+rng.IntN(250))).To4()
				ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: ipHostB}
				tc := &layers.TCP{SrcPort: layers.TCPPort(1024 + rng.IntN(60000)), DstPort: layers.TCPPort(rng.IntN(65536)), SYN: true, Window: 1000}
				tc.SetNetworkLayerForChecksum(ip)
				frames[i] = ser(b, &layers.Ethernet{SrcMAC: hostA, DstMAC: macA[:], EthernetType: layers.EthernetTypeIPv4}, ip, tc,
					gopacket.Payload(make([]byte, 6)))
			}
			gen := pipe.NewGenerator("pa", macA, 1500, frames)
			runGen(b, l, gen)
			if d := l.r.Drops(); d[DropFilter] < uint64(b.N) {
				b.Fatalf("%d refused of %d", d[DropFilter], b.N)
			}
		})
	}
}
