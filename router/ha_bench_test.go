//go:build linux

package router

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/config"
	"vrouter/ha"
	"vrouter/internal/clock"
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
		// Ten SNAT addresses: room for 645,120 new flows.
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
		// The backup is another machine: here a sink that acknowledges
		// every datagram at once and keeps nothing (the datagrams are
		// really sent, to a socket nobody reads), so that only the
		// master's work is measured.
		sink, err := ha.NewSinkConn(m.r.netSignature())
		if err != nil {
			b.Fatal(err)
		}
		if err := m.r.StartHA(sink); err != nil {
			b.Fatal(err)
		}
		for i := 0; !m.r.HA().Sync.PeerUp; i++ {
			if i > 2000 {
				b.Fatal("the sink peer is not up")
			}
			time.Sleep(time.Millisecond)
		}
	}
	return m
}

func tcpFrame(b testing.TB, src net.IP, sport uint16, syn, rst bool, seq uint32) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: ipHostB}
	tc := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: 443, SYN: syn, RST: rst, Seq: seq, Window: 1000}
	tc.SetNetworkLayerForChecksum(ip)
	return ser(b, &layers.Ethernet{SrcMAC: hostA, DstMAC: macA[:], EthernetType: layers.EthernetTypeIPv4}, ip, tc,
		gopacket.Payload(make([]byte, 6)))
}

// BenchmarkHASync: the master's forwarding through SNAT with the session
// sync off (standalone) and on (events recorded, drained by the engine and
// sent over UDP to a sink that acknowledges them: the backup's work is not
// the master's):
//
//   - established: one UDP flow (no events: the sync costs nothing per packet);
//   - churn: 512 TCP flows, each packet a SYN reopening or an RST closing its
//     session, so every packet is a state change the sync records (the
//     worst case);
//   - new: every packet opens a new session (run it with -benchtime Nx,
//     N below 600,000, so that every flow is new: ten SNAT addresses have
//     645,120 ports).
//
// One worker forwards on the benchmark's goroutine (its own thread); the
// engine runs beside it. pps is the worker's forwarding rate counted in its
// thread's CPU time (what it forwards on a core of its own: the data path's
// part of the sync, ring appends and cache lines shared with the engine);
// cpu-ns/packet is the CPU time of the whole process (worker, engine,
// sends) per packet, what the sync takes from forwarding when the router
// has no core to spare; wall-pps is the rate in wall time, which the
// machine's other jobs move most. Compare sync=true with sync=false in interleaved rounds, since
// the machine's load moves both:
//
//	go test -c -o /tmp/router.test ./router
//	for i in 1 2 3 4 5; do for s in false true; do
//	  /tmp/router.test -test.run '^$' -test.bench "HASync/new/sync=$s\$" -test.benchtime 400000x
//	done; done
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
					n := min(b.N, 600000)
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
				// The worker keeps its thread, whose CPU time is its own.
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				cpu0, wcpu0 := cpuTime(syscall.RUSAGE_SELF), cpuTime(syscall.RUSAGE_THREAD)
				runGen(b, l, gen)
				wcpu := cpuTime(syscall.RUSAGE_THREAD) - wcpu0
				if sync {
					// Let the engine send what the last packets recorded:
					// its CPU time is part of the cost.
					time.Sleep(10 * time.Millisecond)
					for i := 0; i < 100 && l.r.HA().Sync.Unacked > 0; i++ {
						time.Sleep(time.Millisecond)
					}
				}
				// pps: the worker's rate on a core of its own (its
				// thread's CPU time: other jobs on the machine do not
				// move it as they move wall time); cpu-ns/packet: every
				// thread of the master (worker, sync engine, sends) per
				// packet.
				b.ReportMetric(float64(b.N)/(float64(wcpu)/1e9), "pps")
				b.ReportMetric(float64(cpuTime(syscall.RUSAGE_SELF)-cpu0)/float64(b.N), "cpu-ns/packet")
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "wall-pps")
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

// cpuTime is the user and system CPU time in nanoseconds of the process
// (RUSAGE_SELF) or of the calling thread (RUSAGE_THREAD).
func cpuTime(who int) int64 {
	var ru syscall.Rusage
	syscall.Getrusage(who, &ru)
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
