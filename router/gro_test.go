package router

import (
	"bytes"
	"testing"

	"vrouter/packet"
	"vrouter/router/port"
)

// wireSegments cuts superFrame(payload) into the plain segments a sender
// without TSO puts on the wire.
func wireSegments(t testing.TB, payload int) [][]byte {
	f, m := superFrame(t, payload)
	n := packet.GSOSegmentsV4(f, 14, packet.ProtoTCP, int(m.GSOSize))
	var segs [][]byte
	for i := 0; i < n; i++ {
		b := make([]byte, 2048)
		k := packet.SegmentV4(b, f, 14, packet.ProtoTCP, int(m.GSOSize), i)
		segs = append(segs, b[:k])
	}
	return segs
}

// groLab is offloadLab with both ports taking offloads and port b's gro
// set as given.
func groLab(t testing.TB, gro bool) *lab {
	l := offloadLab(t, true)
	l.r.snap.Load().gro[1] = gro
	return l
}

// Consecutive segments of a flow received in one batch leave port b (gro)
// as one super-frame, which cuts back into exactly the frames the router
// sends without gro (routed and SNATed, one by one).
func TestGROCoalescesSegments(t *testing.T) {
	segs := wireSegments(t, 5*testMSS+300)
	var want [][]byte
	{
		l := groLab(t, false)
		for _, s := range segs {
			l.pa.Inject(s)
		}
		l.run()
		want = l.pb.Take()
		if len(want) != len(segs) {
			t.Fatalf("without gro: %d frames out, want %d", len(want), len(segs))
		}
	}
	l := groLab(t, true)
	for _, s := range segs {
		l.pa.Inject(s)
	}
	l.run()
	out, meta := l.pb.TakeMeta()
	if len(out) != 1 {
		t.Fatalf("with gro: %d frames out, want one super-frame", len(out))
	}
	m := meta[0]
	if m.GSOType != packet.GSOTCPv4 || m.GSOSize != testMSS || m.CsumStart != 14+20 {
		t.Fatalf("metadata %+v", m)
	}
	for i, w := range want {
		b := make([]byte, 2048)
		k := packet.SegmentV4(b, out[0], 14, packet.ProtoTCP, int(m.GSOSize), i)
		if !bytes.Equal(b[:k], w) {
			t.Fatalf("segment %d differs from the frame sent without gro", i)
		}
	}
	c := l.r.Counters()
	if c[CntGROFrames] != 1 || c[CntGROSegments] != uint64(len(segs)) {
		t.Fatalf("gro-superframes %d gro-segments %d", c[CntGROFrames], c[CntGROSegments])
	}
}

// A port without gro, or without offloads, sends the segments as they are.
func TestGROOnlyWhereConfigured(t *testing.T) {
	for _, c := range []struct {
		name     string
		gro, off bool
	}{{"gro false", false, true}, {"offloads false", true, false}} {
		l := offloadLab(t, c.off)
		if c.off {
			l.r.snap.Load().gro[1] = c.gro
		}
		segs := wireSegments(t, 4*testMSS)
		for _, s := range segs {
			l.pa.Inject(s)
		}
		l.run()
		if out := l.pb.Take(); len(out) != len(segs) {
			t.Fatalf("%s: %d frames out, want %d", c.name, len(out), len(segs))
		}
	}
}

// The snapshot turns gro on for configured ports that take offloads
// unless the port says gro = false.
func TestGROFromConfig(t *testing.T) {
	cfg := testConfig()
	cfg.Ports[1].NoGRO = true
	cfg.ApplyDefaults()
	l := labWith(t, cfg)
	l.r.ports[0].offloads, l.r.ports[1].offloads = true, true
	if _, err := l.r.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if g := l.r.snap.Load().gro; !g[0] || g[1] {
		t.Fatalf("gro per port %v, want [true false]", g)
	}
}

func TestZeroAllocGRO(t *testing.T) {
	l := groLab(t, true)
	l.pb.SetSink(true)
	segs := wireSegments(t, 30*testMSS)
	w := l.r.workers[0]
	b := w.rx
	allocs := testing.AllocsPerRun(50, func() {
		for i, s := range segs {
			b.Off[i] = port.Headroom
			b.Len[i] = copy(b.Bufs[i][port.Headroom:], s)
		}
		b.N, b.HasMeta = len(segs), false
		w.processBatch(l.r.ports[0], b)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch of segments", allocs)
	}
	if n := l.r.Counters()[CntGROFrames]; n < 50 {
		t.Fatalf("gro-superframes = %d", n)
	}
}

// IPv6 segments coalesce too (GSO TCPv6), and cut back into the frames the
// router sends without gro.
func TestGROCoalescesSegments6(t *testing.T) {
	f, m := superFrame6(t, ip6HostB, 4*testMSS+10, testMSS)
	var segs [][]byte
	for i := 0; i < packet.GSOSegments(f, 14, packet.ProtoTCP, int(m.GSOSize)); i++ {
		b := make([]byte, 2048)
		segs = append(segs, b[:packet.Segment(b, f, 14, packet.ProtoTCP, int(m.GSOSize), i)])
	}
	send := func(gro bool) ([][]byte, []packet.VnetHdr) {
		l := offloadLab6(t, true)
		l.r.snap.Load().gro[1] = gro
		for _, s := range segs {
			l.pa.Inject(s)
		}
		l.run()
		return l.pb.TakeMeta()
	}
	want, _ := send(false)
	out, meta := send(true)
	if len(want) != len(segs) || len(out) != 1 || meta[0].GSOType != packet.GSOTCPv6 {
		t.Fatalf("without gro %d frames, with gro %d (metadata %+v)", len(want), len(out), meta)
	}
	for i, w := range want {
		b := make([]byte, 2048)
		k := packet.Segment(b, out[0], 14, packet.ProtoTCP, int(meta[0].GSOSize), i)
		if !bytes.Equal(b[:k], w) {
			t.Fatalf("segment %d differs from the frame sent without gro", i)
		}
	}
}

// Segments whose TCP checksum is partial (a host with checksum offload and
// TSO off) coalesce too; a lone one keeps its metadata.
func TestGROPartialChecksums(t *testing.T) {
	segs := wireSegments(t, 3*testMSS+1)
	partial := packet.VnetHdr{Flags: packet.VnetNeedsCsum, CsumStart: 14 + 20, CsumOffset: packet.TCPChecksumOff}
	l := groLab(t, true)
	for _, s := range segs {
		// The checksum field holds the pseudo-header sum, as the sender leaves it.
		ip := packet.IPv4(s[14:])
		packet.TCP(s[34:]).SetChecksum(packet.Fold(packet.PseudoSum(ip.Src(), ip.Dst(), packet.ProtoTCP, len(s)-34)))
		l.pa.InjectMeta(s, partial)
	}
	l.run()
	out, meta := l.pb.TakeMeta()
	if len(out) != 1 || meta[0].GSOType != packet.GSOTCPv4 || int(meta[0].GSOSize) != testMSS {
		t.Fatalf("%d frames out (metadata %+v), want one super-frame", len(out), meta)
	}
	g := append([]byte(nil), out[0]...)
	packet.CompleteChecksum(g, int(meta[0].CsumStart), int(meta[0].CsumOffset))
	ip := packet.IPv4(g[14:])
	if packet.Fold(packet.Sum(g[34:], packet.PseudoSum(ip.Src(), ip.Dst(), packet.ProtoTCP, len(g)-34))) != 0xffff {
		t.Fatal("super-frame checksum wrong once completed")
	}
	l.pa.InjectMeta(segs[0], partial)
	l.run()
	if out, meta := l.pb.TakeMeta(); len(out) != 1 || meta[0] != (packet.VnetHdr{Flags: packet.VnetNeedsCsum, CsumStart: 14 + 20, CsumOffset: packet.TCPChecksumOff}) {
		t.Fatalf("a lone partial segment: %d frames, metadata %+v", len(out), meta)
	}
}
