package nat

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"vrouter/config"
	"vrouter/packet"
)

// TestHitPathAllocs: translating packets of existing sessions and passing
// packets not subject to NAT allocate nothing.
func TestHitPathAllocs(t *testing.T) {
	_, w := newNAT(t, testConfig())
	o := build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: tcp, sport: 40000, dport: 80, flags: syn, seq: 1})
	out(t, w, append([]byte(nil), o...), sec, Translated)
	o = build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: tcp, sport: 40000, dport: 80, flags: ack, seq: 2, payload: make([]byte, 100)})
	r := build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: tcp, sport: 80, dport: 40000, flags: ack, seq: 1, ack: 2})
	fo := build(t, pk{src: "198.51.100.7", dst: "203.0.113.50", proto: udp, sport: 1, dport: 2})
	pass := build(t, pk{src: "10.1.1.10", dst: "10.1.2.7", proto: udp, sport: 1, dport: 2})
	buf := make([]byte, 2048)
	cases := []struct {
		name string
		p    []byte
		f    func(p packet.IPv4) Verdict
		want Verdict
	}{
		{"out hit", o, func(p packet.IPv4) Verdict { w.In(p, nInside, sec); v, _ := w.Out(p, nInside, nPublic, sec); return v }, Translated},
		{"in hit", r, func(p packet.IPv4) Verdict { v, _ := w.In(p, nPublic, sec); return v }, Translated},
		{"floating", fo, func(p packet.IPv4) Verdict { v, _ := w.In(p, nPublic, sec); return v }, Translated},
		{"pass", pass, func(p packet.IPv4) Verdict {
			w.In(p, nInside, sec)
			v, _ := w.Out(p, nInside, nInside2, sec)
			return v
		}, Pass},
	}
	for _, c := range cases {
		var got Verdict
		allocs := testing.AllocsPerRun(200, func() {
			n := copy(buf, c.p)
			got = c.f(packet.IPv4(buf[:n]))
		})
		if got != c.want {
			t.Fatalf("%s: verdict %v", c.name, got)
		}
		if allocs != 0 {
			t.Fatalf("%s: %v allocations per packet", c.name, allocs)
		}
	}
}

// template is a UDP packet (checksum 0) whose source and port the benchmarks
// patch in place.
func template(b testing.TB) packet.IPv4 {
	return build(b, pk{src: "10.1.0.1", dst: "198.51.100.7", proto: udp, sport: 1024, dport: 53, noUDPCsum: true, payload: make([]byte, 18)})
}

func setFlow(p packet.IPv4, src uint32, sport uint16) {
	p.SetSrc(src)
	binary.BigEndian.PutUint16(p[20:], sport)
	p.ComputeChecksum()
}

func BenchmarkLookupHit(b *testing.B) {
	n, w := newNAT(b, benchConfig(1<<16))
	const flows = 4096
	base := template(b)
	pkts := make([]packet.IPv4, flows)
	for i := range pkts {
		p := append(packet.IPv4(nil), base...)
		setFlow(p, 0x0a010000+uint32(i/16)+1, uint16(2000+i%16))
		pkts[i] = p
		q := append(packet.IPv4(nil), p...)
		w.Out(q, nInside, nPublic, sec)
	}
	if n.Len() != flows {
		b.Fatalf("%d sessions", n.Len())
	}
	buf := make(packet.IPv4, len(base))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		copy(buf, pkts[i&(flows-1)])
		if v, _ := w.Out(buf, nInside, nPublic, sec); v != Translated {
			b.Fatal(v)
		}
	}
}

func BenchmarkPassNotNATed(b *testing.B) {
	_, w := newNAT(b, benchConfig(1<<16))
	p := build(b, pk{src: "10.1.1.10", dst: "10.1.2.7", proto: udp, sport: 1, dport: 2})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		w.In(p, nInside, sec)
		w.Out(p, nInside, nInside2, sec)
	}
}

func benchConfig(max int) *config.Config {
	c := testConfig()
	c.Conntrack.Max = max
	c.NAT.SNAT[0].Source = netip.MustParsePrefix("10.0.0.0/8")
	c.NAT.SNAT[0].To = config.AddrRange{First: netip.MustParseAddr("203.0.113.64"), Last: netip.MustParseAddr("203.0.113.127")}
	return c
}

// BenchmarkNewSessions creates one SNAT session (mapping + port allocation +
// five index entries) per op.
func BenchmarkNewSessions(b *testing.B) {
	const max = 1 << 18
	n, w := newNAT(b, benchConfig(max))
	base := template(b)
	p := append(packet.IPv4(nil), base...)
	b.ReportAllocs()
	b.ResetTimer()
	k := 0
	for i := 0; i < b.N; i++ {
		if n.Len() >= max-1 {
			b.StopTimer()
			n.Clear(netip.Addr{})
			b.StartTimer()
		}
		k++
		copy(p, base)
		setFlow(p, 0x0a010000+uint32(k>>4&0xffff)+1, uint16(2000+k&15+(k>>20)*16))
		if v, r := w.Out(p, nInside, nPublic, sec); v != Translated {
			b.Fatal(v, r)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
}

// BenchmarkMillionSessions fills a table of 1M sessions (SNAT, mapped) and
// reports the memory per session and the GC pause with the table live.
func BenchmarkMillionSessions(b *testing.B) {
	const max = 1 << 20
	gcPause := func(rounds int) time.Duration {
		var pause time.Duration
		for i := 0; i < rounds; i++ {
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			pause += time.Duration(ms.PauseNs[(ms.NumGC+255)%256])
		}
		return pause / time.Duration(rounds)
	}
	base := gcPause(5) // the same GC without the table, for comparison
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	n, w := newNAT(b, benchConfig(max))
	tmpl := template(b)
	p := append(packet.IPv4(nil), tmpl...)
	for k := 0; k < max; k++ {
		copy(p, tmpl)
		setFlow(p, 0x0a010000+uint32(k>>4)+1, uint16(2000+k&15))
		if v, r := w.Out(p, nInside, nPublic, sec); v != Translated {
			b.Fatal(k, v, r)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	perSession := float64(m1.HeapAlloc-m0.HeapAlloc) / float64(n.Len())
	b.ResetTimer()
	pause := gcPause(b.N)
	b.ReportMetric(perSession, "B/session")
	b.ReportMetric(float64(pause.Nanoseconds()), "gc-pause-ns")
	b.ReportMetric(float64(base.Nanoseconds()), "gc-pause-empty-ns")
	b.ReportMetric(float64(n.Len()), "sessions")
	runtime.KeepAlive(n)
}

// Baseline for comparison: the naive design (a Go map from tuple to a
// pointer to a session struct), as many Go NATs do it.
type naiveKey struct {
	src, dst     uint32
	sport, dport uint16
	proto        uint8
}

type naiveSession struct {
	orig, reply naiveKey
	state       uint8
	expires     int64
	pkts, bytes uint64
	peer        *naiveSession
}

func naiveFill(max int) map[naiveKey]*naiveSession {
	m := make(map[naiveKey]*naiveSession)
	for k := 0; k < max; k++ {
		s := &naiveSession{orig: naiveKey{0x0a010000 + uint32(k>>4) + 1, 0xc6336407, uint16(2000 + k&15), 53, 17}}
		s.reply = naiveKey{0xc6336407, 0xcb007140 + uint32(k&63), 53, uint16(k >> 6), 17}
		m[s.orig] = s
		m[s.reply] = s
	}
	return m
}

func BenchmarkBaselineMapLookupHit(b *testing.B) {
	m := naiveFill(4096)
	keys := make([]naiveKey, 0, 4096)
	for k := range m {
		keys = append(keys, k)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var sink uint64
	for i := 0; i < b.N; i++ {
		s := m[keys[i&4095]]
		s.pkts++
		sink += s.pkts
	}
	_ = sink
}

func BenchmarkBaselineMapMillion(b *testing.B) {
	const max = 1 << 20
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	m := naiveFill(max)
	runtime.GC()
	runtime.ReadMemStats(&m1)
	b.ResetTimer()
	var pause time.Duration
	for i := 0; i < b.N; i++ {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		pause += time.Duration(ms.PauseNs[(ms.NumGC+255)%256])
	}
	b.StopTimer()
	b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/float64(max), "B/session")
	b.ReportMetric(float64(pause.Nanoseconds())/float64(b.N), "gc-pause-ns")
	runtime.KeepAlive(m)
}

// BenchmarkTableLookup is the index lookup alone (hash, probe, consistent
// read of the session), for comparison with BenchmarkBaselineMapLookupHit.
func BenchmarkTableLookup(b *testing.B) {
	n, w := newNAT(b, benchConfig(1<<16))
	base := template(b)
	const flows = 4096
	keys := make([][2]uint64, flows)
	for i := range keys {
		p := append(packet.IPv4(nil), base...)
		setFlow(p, 0x0a010000+uint32(i/16)+1, uint16(2000+i%16))
		var f flow
		parseFlow(p, &f)
		keys[i][0], keys[i][1] = f.key()
		w.Out(p, nInside, nPublic, sec)
	}
	var h hit
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := &keys[i&(flows-1)]
		if !n.t.lookup(k[0], k[1], 1<<kOrig, &h) {
			b.Fatal("miss")
		}
	}
}
