package router

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/config"
	"vrouter/ha"
	"vrouter/internal/clock"
	"vrouter/nat"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

// haBenchLab is the SNAT lab of a master, with the session sync running
// to a backup router over an in-memory link (sync on) or standalone (off).
func haBenchLab(b *testing.B, sync bool) *lab {
	mk := func(initial string) *lab {
		cfg := haConfig(initial)
		if !sync {
			cfg.HA = config.HA{}
		}
		cfg.Conntrack.Max = 1 << 20
		// Ten SNAT addresses: room for 900,000 new flows.
		cfg.NAT.SNAT[0].To.Last = netip.MustParseAddr("198.51.100.59")
		cfg.ApplyDefaults()
		pa, pb := pipe.New("pa", macA, 1500), pipe.New("pb", macB, 1400)
		clk := clock.NewManual()
		r, err := New(cfg, []port.Port{pa, pb}, Options{Clock: clk})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(r.stopHA)
		l := &lab{t: b, r: r, clk: clk, pa: pa, pb: pb}
		l.resolveA()
		r.Neigh.Update(1, 0xc633640a, [6]byte(hostB), true, clk.Now(), func([]byte) {})
		pb.SetSink(true)
		return l
	}
	m := mk("master")
	if sync {
		// The backup is another machine: here an engine that acknowledges
		// everything and installs nothing, so that only the master's
		// work is measured.
		link := ha.NewMemLink(0, 1)
		if err := m.r.StartHA(link.A); err != nil {
			b.Fatal(err)
		}
		peer := ha.New(nullTable{}, link.B, ha.Options{NetSig: m.r.netSignature()})
		peer.Start()
		b.Cleanup(peer.Stop)
	}
	return m
}

// nullTable is a backup's table that keeps nothing.
type nullTable struct{}

func (nullTable) SyncNewPass()                                    {}
func (nullTable) SyncDrain(int, int64, func(*nat.SyncRecord)) int { return 0 }
func (nullTable) SyncWalk(uint32, int, int64, func(*nat.SyncRecord)) (uint32, bool) {
	return 0, true
}
func (nullTable) Install(*nat.SyncRecord, int64) nat.InstallResult { return nat.Installed }
func (nullTable) Remove(*nat.SyncRecord) bool                      { return true }
func (nullTable) SyncQueueFull() uint64                            { return 0 }

func tcpFrame(b testing.TB, src net.IP, sport uint16, syn, rst bool, seq uint32) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: ipHostB}
	tc := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: 443, SYN: syn, RST: rst, Seq: seq, Window: 1000}
	tc.SetNetworkLayerForChecksum(ip)
	return ser(b, &layers.Ethernet{SrcMAC: hostA, DstMAC: macA[:], EthernetType: layers.EthernetTypeIPv4}, ip, tc,
		gopacket.Payload(make([]byte, 6)))
}

// BenchmarkHASync: the master's forwarding through SNAT with the session
// sync off (standalone) and on (events recorded and sent to a backup,
// whose engine installs them, all in this process):
//
//   - established: one UDP flow (no events: the sync costs nothing per packet);
//   - churn: 512 TCP flows, each packet a SYN reopening or an RST closing its
//     session, so every packet is a state change the sync records (the
//     worst case);
//   - new: every packet opens a new session (run it with -benchtime Nx,
//     N below 900,000, so that every flow is new).
//
// Compare sync=on with sync=off of each: the ratio of cpu-ns/packet (CPU
// time of all threads, the peer's receiving side included, so an upper
// bound) is the sync's cost.
func BenchmarkHASync(b *testing.B) {
	for _, kind := range []string{"established", "churn", "new"} {
		for _, sync := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/sync=%v", kind, sync), func(b *testing.B) {
				l := haBenchLab(b, sync)
				var frames [][]byte
				switch kind {
				case "established":
					frames = [][]byte{udpFrame(b, ipHostA, ipHostB, 1000, 2000)}
				case "churn":
					for i := 0; i < 512; i++ {
						src := net.IPv4(192, 0, 2, byte(2+i%200)).To4()
						frames = append(frames, tcpFrame(b, src, uint16(10000+i), true, false, 100),
							tcpFrame(b, src, uint16(10000+i), false, true, 101))
					}
				case "new":
					// A template patched per flow (source address and
					// port; UDP checksum off, IPv4 header checksum
					// recomputed), so that building the frames costs
					// little next to forwarding them.
					tpl := udpFrame(b, ipHostA, ipHostB, 1024, 53)
					tpl[14+20+6], tpl[14+20+7] = 0, 0
					n := min(b.N, 900000)
					frames = make([][]byte, n)
					for i := range frames {
						f := append([]byte(nil), tpl...)
						f[14+15] = byte(2 + i%250)
						binary.BigEndian.PutUint16(f[14+20:], uint16(1024+i/250))
						f[14+10], f[14+11] = 0, 0
						binary.BigEndian.PutUint16(f[14+10:], ^ipSum(f[14:14+20]))
						frames[i] = f
					}
				}
				for _, f := range frames[:min(len(frames), 1024)] {
					if kind != "new" {
						l.pa.Inject(f)
					}
				}
				l.run()
				gen := pipe.NewGenerator("pa", macA, 1500, frames)
				cpu0 := cpuTime()
				runGen(b, l, gen)
				if sync {
					// Let the engine send what the last packets recorded:
					// its CPU time is part of the cost.
					for i := 0; i < 100 && l.r.HA().Sync.Unacked > 0; i++ {
						time.Sleep(time.Millisecond)
					}
				}
				// CPU time of every thread (workers, sync engine, the
				// acknowledging peer), less sensitive than wall time to
				// other jobs on the machine.
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/packet")
				if l.r.Counters()[CntForwarded] < uint64(b.N) {
					b.Fatalf("forwarded %d of %d (drops %v)", l.r.Counters()[CntForwarded], b.N, nonZeroDrops(l.r))
				}
				if sync {
					b.ReportMetric(float64(l.r.HA().Sync.SessionsSent)/float64(b.N), "records/packet")
				}
			})
		}
	}
}

// cpuTime is the process's user and system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// ipSum is the one's complement sum of an IPv4 header.
func ipSum(h []byte) uint16 {
	var s uint32
	for i := 0; i < len(h); i += 2 {
		s += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

func nonZeroDrops(r *Router) map[string]uint64 {
	m := map[string]uint64{}
	for i, v := range r.Drops() {
		if v != 0 {
			m[DropReason(i).String()] = v
		}
	}
	return m
}

func (nullTable) SyncSleep()                {}
func (nullTable) SyncWake() <-chan struct{} { return nil }
