package nat

import (
	"math/rand"
	"net"
	"net/netip"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/config"
	"vrouter/packet"
)

// split builds a UDP datagram with gopacket and cuts it into IPv4 fragments
// of chunk bytes of IP payload (chunk a multiple of 8), serialized by
// gopacket too.
func split(t testing.TB, src, dst string, sport, dport, id uint16, size, chunk int) []packet.IPv4 {
	t.Helper()
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i*13 + int(id))
	}
	whole := build(t, pk{src: src, dst: dst, proto: udp, sport: sport, dport: dport, payload: payload, ipID: id})
	dgram := whole[20:]
	var fs []packet.IPv4
	for off := 0; off < len(dgram); off += chunk {
		end := min(off+chunk, len(dgram))
		ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4(),
			Protocol: layers.IPProtocolUDP, Id: id, FragOffset: uint16(off / 8)}
		if end < len(dgram) {
			ip.Flags = layers.IPv4MoreFragments
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ip, gopacket.Payload(dgram[off:end])); err != nil {
			t.Fatal(err)
		}
		fs = append(fs, append(packet.IPv4(nil), buf.Bytes()...))
	}
	return fs
}

// reassemble checks every fragment's header checksum and that they agree on
// the addresses, puts the datagram together (by offset) and checks all its
// checksums with the independent verifier; it returns the oracle's view.
func reassemble(t testing.TB, fs []packet.IPv4) decoded {
	t.Helper()
	fs = append([]packet.IPv4(nil), fs...)
	sort.Slice(fs, func(i, j int) bool { return fs[i].FlagsFrag()&0x1fff < fs[j].FlagsFrag()&0x1fff })
	var whole []byte
	for i, f := range fs {
		checkSums(t, f)
		if f.Src() != fs[0].Src() || f.Dst() != fs[0].Dst() {
			t.Fatalf("fragment %d: %v->%v, first %v->%v", i, packet.Addr(f.Src()), packet.Addr(f.Dst()), packet.Addr(fs[0].Src()), packet.Addr(fs[0].Dst()))
		}
		if i == 0 {
			whole = append(whole, f[:20]...)
		}
		if off := int(f.FlagsFrag()&0x1fff) * 8; off != len(whole)-20 {
			t.Fatalf("fragment %d at offset %d, have %d bytes", i, off, len(whole)-20)
		}
		whole = append(whole, f[20:]...)
	}
	if fs[len(fs)-1].FlagsFrag()&0x2000 != 0 {
		t.Fatal("last fragment has MF")
	}
	whole[6], whole[7] = 0, 0
	packet.IPv4(whole).SetTotalLen(len(whole))
	packet.IPv4(whole).ComputeChecksum()
	checkSums(t, whole)
	return decode(t, whole)
}

// drain takes every released fragment of w (copies).
func drain(t testing.TB, w *Worker, wantStage Stage, wantIn uint16) []packet.IPv4 {
	t.Helper()
	var r []packet.IPv4
	for w.HasReleased() {
		p, inNet, outNet, st, ok := w.Released()
		if !ok {
			t.Fatal("HasReleased but nothing released")
		}
		if st != wantStage || inNet != wantIn {
			t.Fatalf("released stage %v from %d (out %d), want %v from %d", st, inNet, outNet, wantStage, wantIn)
		}
		r = append(r, append(packet.IPv4(nil), p...))
	}
	if _, _, _, _, ok := w.Released(); ok {
		t.Fatal("Released after HasReleased false")
	}
	return r
}

// TestHoldSNATAmbiguous: several inside hosts talk to one server through one
// SNAT address; a reply's fragments arrive last, middle, first: the first two
// are held and released translated once the first arrives.
func TestHoldSNATAmbiguous(t *testing.T) {
	n, w := newNAT(t, testConfig())
	ports := map[string]uint16{}
	for i, h := range []string{"10.1.1.10", "10.1.1.11", "10.1.2.12"} {
		d := out(t, w, build(t, pk{src: h, dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53}), sec, Translated)
		if d.src != "203.0.113.1" {
			t.Fatalf("host %d mapped to %s", i, d.src)
		}
		ports[h] = d.sport
	}
	for h, port := range ports {
		fs := split(t, "198.51.100.7", "203.0.113.1", 53, port, port, 150, 64) // 3 fragments
		if len(fs) != 3 {
			t.Fatal(len(fs))
		}
		for _, i := range []int{2, 1} {
			if v, r := w.In(fs[i], nPublic, sec); v != Held {
				t.Fatalf("fragment %d: %v %v, want held", i, v, r)
			}
		}
		if w.HasReleased() {
			t.Fatal("released before the first fragment")
		}
		in(t, w, fs[0], sec, Translated)
		got := append([]packet.IPv4{fs[0]}, drain(t, w, StageIn, nPublic)...)
		if len(got) != 3 {
			t.Fatalf("%d fragments released", len(got)-1)
		}
		if d := reassemble(t, got); d.dst != h || d.dport != 5000 || d.src != "198.51.100.7" || len(d.payload) != 150 {
			t.Fatalf("host %s: %+v", h, d)
		}
	}
	c := counts(n)
	if c["nat-frag-held"] != 6 || c["nat-frag-released"] != 6 || c["nat-frag-holding"] != 0 || c["nat-frag-out-of-order"] != 0 {
		t.Fatal(c)
	}
}

func fwdConfig() *config.Config {
	c := testConfig()
	c.NAT.Forward = append(c.NAT.Forward, config.Forward{Proto: "udp", External: netip.MustParseAddrPort("203.0.113.1:5353"),
		Internal: []netip.AddrPort{netip.MustParseAddrPort("10.1.1.7:53"), netip.MustParseAddrPort("10.1.1.8:53")}})
	return c
}

// TestHoldPortForward: a new flow to a UDP port forward whose first fragment
// comes last; the reply from the backend, fragmented, goes back out.
func TestHoldPortForward(t *testing.T) {
	n, w := newNAT(t, fwdConfig())
	seen := map[string]bool{}
	for c := 0; c < 8; c++ {
		sport := uint16(4000 + c)
		fs := split(t, "198.51.100.9", "203.0.113.1", sport, 5353, 100+sport, 200, 48) // 5 fragments
		for i := len(fs) - 1; i > 0; i-- {
			if v, r := w.In(fs[i], nPublic, sec); v != Held {
				t.Fatalf("fragment %d: %v %v", i, v, r)
			}
		}
		in(t, w, fs[0], sec, Translated)
		got := append([]packet.IPv4{fs[0]}, drain(t, w, StageIn, nPublic)...)
		if len(got) != len(fs) {
			t.Fatalf("%d of %d", len(got), len(fs))
		}
		// The router runs released StageIn fragments through Out too.
		for _, p := range got[1:] {
			if v, r := w.Out(p, nPublic, nInside, sec); v == Drop || v == Held {
				t.Fatalf("Out: %v %v", v, r)
			}
		}
		d := reassemble(t, got)
		if d.dst != "10.1.1.7" && d.dst != "10.1.1.8" || d.dport != 53 || d.sport != sport || d.src != "198.51.100.9" {
			t.Fatalf("%+v", d)
		}
		seen[d.dst] = true
		// The backend's fragmented reply, in order, leaves from the forward.
		rs := split(t, d.dst, "198.51.100.9", 53, sport, 7, 120, 64)
		for _, p := range rs {
			out(t, w, p, sec, Translated)
		}
		if r := reassemble(t, rs); r.src != "203.0.113.1" || r.sport != 5353 || r.dport != sport {
			t.Fatalf("reply %+v", r)
		}
	}
	if len(seen) != 2 {
		t.Fatalf("not balanced: %v", seen)
	}
	if c := counts(n); c["nat-frag-released"] != c["nat-frag-held"] || c["nat-frag-held"] != 8*4 {
		t.Fatal(c)
	}
}

// TestHoldBounded: 1000 fragments whose first fragment never comes: at most
// HoldSlots are held, the rest evict the oldest, and Reap frees them after
// DefaultFragTimeout.
func TestHoldBounded(t *testing.T) {
	n, w := newNAT(t, fwdConfig())
	for i := 0; i < 1000; i++ {
		fs := split(t, "198.51.100.9", "203.0.113.1", 4000, 5353, uint16(i), 100, 64)
		if v, r := w.In(fs[1], nPublic, sec+int64(i)); v != Held {
			t.Fatalf("%d: %v %v", i, v, r)
		}
		if h := counts(n)["nat-frag-holding"]; h > HoldSlots {
			t.Fatalf("%d held", h)
		}
	}
	c := counts(n)
	if c["nat-frag-holding"] != HoldSlots || c["nat-frag-hold-evicted"] != 1000-HoldSlots || c["nat-frag-held"] != 1000 {
		t.Fatal(c)
	}
	// The newest survive: the first fragment of the last datagram releases
	// its held fragment; an evicted one's does not.
	last := split(t, "198.51.100.9", "203.0.113.1", 4000, 5353, 999, 100, 64)
	in(t, w, last[0], sec+1000, Translated)
	if got := drain(t, w, StageIn, nPublic); len(got) != 1 || packet.IPv4(got[0]).Dst() == last[1].Dst() {
		t.Fatalf("%d released", len(got))
	}
	old := split(t, "198.51.100.9", "203.0.113.1", 4000, 5353, 0, 100, 64)
	in(t, w, old[0], sec+1000, Translated)
	if w.HasReleased() {
		t.Fatal("evicted fragment released")
	}
	// Not expired yet, then expired.
	n.Reap(sec+int64(DefaultFragTimeout)-1, 10)
	if c := counts(n); c["nat-frag-hold-expired"] != 0 || c["nat-frag-holding"] != HoldSlots-1 {
		t.Fatal(c)
	}
	n.Reap(sec+1000+int64(DefaultFragTimeout), 10)
	if c := counts(n); c["nat-frag-hold-expired"] != HoldSlots-1 || c["nat-frag-holding"] != 0 {
		t.Fatal(c)
	}
	// Too big to hold: dropped as before.
	big := split(t, "198.51.100.9", "203.0.113.1", 4000, 5353, 5000, 2*HoldBytes, HoldBytes-16)
	if v, r := w.In(big[1], nPublic, sec); v != Drop || r != FragOutOfOrder {
		t.Fatalf("%v %v", v, r)
	}
}

// TestHoldAllocs: holding and releasing allocate nothing in steady state.
func TestHoldAllocs(t *testing.T) {
	_, w := newNAT(t, fwdConfig())
	// Each round is a new datagram (IP ID) of the same flow.
	var sets [][]packet.IPv4
	for id := 0; id < 300; id++ {
		sets = append(sets, split(t, "198.51.100.9", "203.0.113.1", 4000, 5353, uint16(id), 100, 64))
	}
	fs := sets[0]
	buf := [2]packet.IPv4{make(packet.IPv4, len(fs[0])), make(packet.IPv4, len(fs[1]))}
	round := 0
	run := func() {
		fs := sets[round]
		round++
		copy(buf[1], fs[1])
		if v, _ := w.In(buf[1], nPublic, sec); v != Held {
			t.Fatal(v)
		}
		copy(buf[0], fs[0])
		if v, _ := w.In(buf[0], nPublic, sec); v != Translated {
			t.Fatal(v)
		}
		for w.HasReleased() {
			if _, _, _, _, ok := w.Released(); !ok {
				t.Fatal("not released")
			}
		}
	}
	run()
	if a := testing.AllocsPerRun(200, run); a != 0 {
		t.Fatalf("%v allocs per hold+release", a)
	}
}

// TestHoldTwoWorkers races the first fragment on one worker against the
// others on a second (meant for -race): every non-first fragment comes out
// exactly once, translated, either at once or released by the worker that
// translated the first fragment.
func TestHoldTwoWorkers(t *testing.T) {
	n, _ := newNAT(t, testConfig())
	w1, w2 := n.NewWorker(), n.NewWorker()
	var hosts [4]uint16
	for i := range hosts {
		d := out(t, w1, build(t, pk{src: packet.Addr(0x0a01010a + uint32(i)).String(), dst: "198.51.100.7", proto: udp, sport: 6000, dport: 53}), sec, Translated)
		hosts[i] = d.sport
	}
	for it := 0; it < 400; it++ {
		h := it % len(hosts)
		fs := split(t, "198.51.100.7", "203.0.113.1", 53, hosts[h], uint16(it), 150, 64)
		var got [2][]packet.IPv4
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Add(2)
		go func() { // first fragment
			defer wg.Done()
			<-start
			if v, r := w1.In(fs[0], nPublic, sec); v != Translated {
				t.Errorf("first: %v %v", v, r)
			}
			for w1.HasReleased() {
				p, _, _, _, _ := w1.Released()
				got[0] = append(got[0], append(packet.IPv4(nil), p...))
			}
		}()
		go func() { // the rest
			defer wg.Done()
			<-start
			for _, p := range fs[1:] {
				switch v, r := w2.In(p, nPublic, sec); v {
				case Translated:
					got[1] = append(got[1], p)
				case Held:
				default:
					t.Errorf("rest: %v %v", v, r)
				}
			}
			for w2.HasReleased() {
				t.Error("w2 released without translating a first fragment")
				w2.Released()
			}
		}()
		close(start)
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		all := append(append([]packet.IPv4{fs[0]}, got[0]...), got[1]...)
		if len(all) != len(fs) {
			t.Fatalf("it %d: %d fragments out of %d", it, len(all), len(fs))
		}
		want := packet.Addr(0x0a01010a + uint32(h)).String()
		if d := reassemble(t, all); d.dst != want || d.dport != 6000 {
			t.Fatalf("it %d: %+v want %s", it, d, want)
		}
	}
	if c := counts(n); c["nat-frag-holding"] != 0 || c["nat-frag-released"] != c["nat-frag-held"] {
		t.Fatal(c)
	}
}

func fwd60Config() *config.Config {
	c := testConfig()
	c.NAT.Forward = append(c.NAT.Forward, config.Forward{Proto: "udp", External: netip.MustParseAddrPort("203.0.113.60:5353"),
		Internal: []netip.AddrPort{netip.MustParseAddrPort("10.1.1.7:53")}})
	return c
}

// TestHoldOutBackendReply: a forward backend's reply leaves from the
// forward's address (not the backend's SNAT address); its non-first
// fragments seen before the first are held by Out and released translated.
func TestHoldOutBackendReply(t *testing.T) {
	n, w := newNAT(t, fwd60Config())
	q := build(t, pk{src: "198.51.100.9", dst: "203.0.113.60", proto: udp, sport: 4000, dport: 5353})
	if d := in(t, w, q, sec, Translated); d.dst != "10.1.1.7" || d.dport != 53 {
		t.Fatalf("%+v", d)
	}
	fs := split(t, "10.1.1.7", "198.51.100.9", 53, 4000, 99, 150, 64)
	for _, i := range []int{2, 1} {
		if v, r := w.In(fs[i], nInside, sec); v != Pass {
			t.Fatalf("In %d: %v %v", i, v, r)
		}
		if v, r := w.Out(fs[i], nInside, nPublic, sec); v != Held {
			t.Fatalf("Out %d: %v %v", i, v, r)
		}
	}
	out(t, w, fs[0], sec, Translated)
	var got []packet.IPv4
	for w.HasReleased() {
		p, inNet, outNet, st, _ := w.Released()
		if st != StageOut || inNet != nInside || outNet != nPublic {
			t.Fatalf("released %v %d %d", st, inNet, outNet)
		}
		got = append(got, append(packet.IPv4(nil), p...))
	}
	if len(got) != 2 {
		t.Fatalf("%d released", len(got))
	}
	if d := reassemble(t, append(got, fs[0])); d.src != "203.0.113.60" || d.sport != 5353 || d.dst != "198.51.100.9" || d.dport != 4000 {
		t.Fatalf("%+v", d)
	}
	// The backend's own traffic not NATed (routed to another inside
	// network): in order, every fragment passes; out of order, the held ones
	// come back untouched when the first passes.
	fs = split(t, "10.1.1.7", "10.1.2.9", 53, 4000, 100, 150, 64)
	orig := split(t, "10.1.1.7", "10.1.2.9", 53, 4000, 100, 150, 64)
	for i, p := range fs {
		if v, r := w.Out(p, nInside, nInside2, sec); v != Pass {
			t.Fatalf("in order %d: %v %v", i, v, r)
		}
	}
	fs = split(t, "10.1.1.7", "10.1.2.9", 53, 4000, 101, 150, 64)
	if v, r := w.Out(fs[1], nInside, nInside2, sec); v != Held {
		t.Fatalf("%v %v", v, r)
	}
	if v, r := w.Out(fs[0], nInside, nInside2, sec); v != Pass {
		t.Fatalf("%v %v", v, r)
	}
	p, _, outNet, st, ok := w.Released()
	if !ok || st != StageOut || outNet != nInside2 || string(p[20:]) != string(fs[1][20:]) || packet.IPv4(p).Src() != orig[1].Src() {
		t.Fatalf("released %v %v %d", ok, st, outNet)
	}
	checkSums(t, p)
	if c := counts(n); c["nat-frag-held"] != 3 || c["nat-frag-released"] != 3 {
		t.Fatal(c)
	}
}

// TestHoldHairpin: an inside host reaches the forward by its external
// address with fragments out of order; the router hands released fragments
// to Out before the first fragment reached Out (held again there) and the
// receiver sees the sender's external address on every fragment.
func TestHoldHairpin(t *testing.T) {
	_, w := newNAT(t, fwd60Config())
	fs := split(t, "10.1.1.10", "203.0.113.60", 7000, 5353, 5, 150, 64)
	for _, i := range []int{2, 1} {
		if v, r := w.In(fs[i], nInside, sec); v != Held {
			t.Fatalf("In %d: %v %v", i, v, r)
		}
	}
	if v, r := w.In(fs[0], nInside, sec); v != Translated {
		t.Fatalf("%v %v", v, r)
	}
	// Released after In, before the first fragment's Out.
	for _, p := range drain(t, w, StageIn, nInside) {
		if v, r := w.Out(p, nInside, nInside, sec); v != Held {
			t.Fatalf("Out of released: %v %v", v, r)
		}
	}
	if v, r := w.Out(fs[0], nInside, nInside, sec); v != Translated {
		t.Fatalf("%v %v", v, r)
	}
	got := append([]packet.IPv4{fs[0]}, drain(t, w, StageOut, nInside)...)
	if len(got) != 3 {
		t.Fatalf("%d fragments", len(got))
	}
	if d := reassemble(t, got); d.src != "203.0.113.1" || d.dst != "10.1.1.7" || d.dport != 53 {
		t.Fatalf("%+v", d)
	}
}

// BenchmarkHoldRelease: one datagram of two fragments arriving last first to
// a port forward: hold, translate the first, release (per op).
func BenchmarkHoldRelease(b *testing.B) {
	_, w := newNAT(b, fwdConfig())
	var sets [][]packet.IPv4
	for id := 0; id < 1024; id++ {
		sets = append(sets, split(b, "198.51.100.9", "203.0.113.1", 4000, 5353, uint16(id), 100, 64))
	}
	buf := [2]packet.IPv4{make(packet.IPv4, len(sets[0][0])), make(packet.IPv4, len(sets[0][1]))}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fs := sets[i&1023]
		now := sec + int64(i)*sec // an IP ID comes back after 1024 s
		copy(buf[1], fs[1])
		if v, _ := w.In(buf[1], nPublic, now); v != Held {
			b.Fatal(v)
		}
		copy(buf[0], fs[0])
		if v, r := w.In(buf[0], nPublic, now); v != Translated {
			b.Fatal(i, v, r)
		}
		if _, _, _, _, ok := w.Released(); !ok {
			b.Fatal("not released")
		}
	}
}

// TestHoldDiscard: held fragments of a datagram whose first fragment is
// dropped (unsolicited, no session) are freed at once.
func TestHoldDiscard(t *testing.T) {
	n, w := newNAT(t, testConfig())
	out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53}), sec, Translated)
	out(t, w, build(t, pk{src: "10.1.1.11", dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53}), sec, Translated)
	fs := split(t, "198.51.100.7", "203.0.113.1", 53, 999, 3, 150, 64) // no mapping on port 999
	for _, i := range []int{2, 1} {
		if v, r := w.In(fs[i], nPublic, sec); v != Held {
			t.Fatalf("%v %v", v, r)
		}
	}
	if v, r := w.In(fs[0], nPublic, sec); v != Drop || r != NoSession {
		t.Fatalf("%v %v", v, r)
	}
	if c := counts(n); c["nat-frag-holding"] != 0 || c["nat-frag-hold-discarded"] != 2 || w.HasReleased() {
		t.Fatal(c)
	}
}

// TestHoldRandomOrder compares, byte for byte, fragments delivered in random
// order (interleaved across datagrams, through ambiguous SNAT mappings and a
// port forward) with the same datagrams delivered in order to a second NAT
// with the same state (the reference).
func TestHoldRandomOrder(t *testing.T) {
	rnd := rand.New(rand.NewSource(7))
	_, wr := newNAT(t, fwdConfig())
	nat2, wt := newNAT(t, fwdConfig())
	hosts := []string{"10.1.1.10", "10.1.1.11", "10.1.1.12", "10.1.2.13", "10.1.2.14"}
	var ports []uint16
	for _, h := range hosts {
		p := build(t, pk{src: h, dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53})
		q := append(packet.IPv4(nil), p...)
		d := out(t, wr, p, sec, Translated)
		if d2 := out(t, wt, q, sec, Translated); d2.sport != d.sport {
			t.Fatal("reference and test NAT differ")
		}
		ports = append(ports, d.sport)
	}
	type key struct{ id, off uint16 }
	id := uint16(0)
	for batch := 0; batch < 20; batch++ {
		want := map[key]string{}
		var all []packet.IPv4
		for d := 0; d < 20; d++ {
			id++
			var fs []packet.IPv4
			size := 100 + rnd.Intn(500)
			if rnd.Intn(3) == 0 { // to the forward, from a random client port
				fs = split(t, "198.51.100.9", "203.0.113.1", uint16(4000+rnd.Intn(50)), 5353, id, size, 64)
			} else {
				fs = split(t, "198.51.100.7", "203.0.113.1", 53, ports[rnd.Intn(len(ports))], id, size, 64)
			}
			for _, f := range fs {
				r := append(packet.IPv4(nil), f...)
				if v, why := wr.In(r, nPublic, sec); v != Translated {
					t.Fatalf("reference: %v %v", v, why)
				}
				want[key{r.ID(), r.FlagsFrag() & 0x1fff}] = string(r)
				all = append(all, f)
			}
		}
		rnd.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		got := map[key]string{}
		put := func(p packet.IPv4) {
			k := key{p.ID(), p.FlagsFrag() & 0x1fff}
			if _, dup := got[k]; dup {
				t.Fatalf("fragment %v twice", k)
			}
			got[k] = string(p)
		}
		for _, f := range all {
			switch v, why := wt.In(f, nPublic, sec); v {
			case Translated:
				put(f)
			case Held:
			default:
				t.Fatalf("%v %v", v, why)
			}
			for wt.HasReleased() {
				p, _, _, st, _ := wt.Released()
				if st != StageIn {
					t.Fatal(st)
				}
				put(p)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("batch %d: %d fragments out of %d", batch, len(got), len(want))
		}
		for k, p := range want {
			if got[k] != p {
				t.Fatalf("batch %d fragment %v differs:\n% x\n% x", batch, k, got[k], p)
			}
		}
	}
	if c := counts(nat2); c["nat-frag-holding"] != 0 || c["nat-frag-held"] == 0 || c["nat-frag-released"] != c["nat-frag-held"] || c["nat-frag-hold-evicted"] != 0 {
		t.Fatal(c)
	}
}

// TestHoldUndrained: a worker that never drains its released fragments does
// not keep the buffer: Reap frees them after DefaultFragTimeout, the stale entries
// are skipped, and holding works again.
func TestHoldUndrained(t *testing.T) {
	n, w := newNAT(t, fwdConfig())
	feed := func(id uint16, now int64) []packet.IPv4 {
		fs := split(t, "198.51.100.9", "203.0.113.1", 4000, 5353, id, 100, 64)
		if v, r := w.In(fs[1], nPublic, now); v != Held {
			t.Fatalf("%d: %v %v", id, v, r)
		}
		if v, r := w.In(fs[0], nPublic, now); v != Translated {
			t.Fatalf("%d: %v %v", id, v, r)
		}
		return fs
	}
	for i := 0; i < HoldSlots; i++ {
		feed(uint16(i), sec)
	}
	// Every slot waits in w's ready list: nothing can be held.
	fs := split(t, "198.51.100.9", "203.0.113.1", 4000, 5353, 1000, 100, 64)
	if v, r := w.In(fs[1], nPublic, sec); v != Drop || r != FragOutOfOrder {
		t.Fatalf("%v %v", v, r)
	}
	now := sec + int64(DefaultFragTimeout)
	n.Reap(now, 10)
	if c := counts(n); c["nat-frag-hold-expired"] != HoldSlots {
		t.Fatal(c)
	}
	// Stale entries are skipped; fragments released after reuse come out.
	for i := 0; i < HoldSlots; i++ {
		feed(uint16(2000+i), now)
	}
	got := 0
	for w.HasReleased() {
		p, _, _, _, ok := w.Released()
		if !ok {
			break
		}
		if id := packet.IPv4(p).ID(); id < 2000 {
			t.Fatalf("stale fragment %d released", id)
		}
		got++
	}
	if got != HoldSlots {
		t.Fatalf("%d released", got)
	}
	if c := counts(n); c["nat-frag-holding"] != 0 || c["nat-frag-released"] != HoldSlots {
		t.Fatal(c)
	}
}

// TestFragTimeoutConfigured: with [conntrack] fragment_timeout = 3s a held
// fragment and a fragment-table entry live 3 s, not DefaultFragTimeout; a
// Commit with another timeout applies it to the fragments held meanwhile.
func TestFragTimeoutConfigured(t *testing.T) {
	c := fwdConfig()
	c.Conntrack.FragmentTimeout = 3 * time.Second
	n, w := newNAT(t, c)
	// Held: a non-first fragment to a port forward without its first.
	fs := split(t, "198.51.100.9", "203.0.113.1", 4000, 5353, 7, 100, 64)
	if v, r := w.In(fs[1], nPublic, sec); v != Held {
		t.Fatalf("%v %v", v, r)
	}
	// Remembered: the first fragment of a datagram through SNAT.
	f1, _ := fragments(t, "10.1.1.10", "198.51.100.7", 5000, 53, 1)
	w.In(f1, nInside, sec)
	out(t, w, f1, sec, Translated)
	if c := counts(n); c["nat-frag-holding"] != 1 || c["nat-frag-entries"] == 0 {
		t.Fatal(c)
	}
	n.Reap(sec+3*sec-1, 10)
	if c := counts(n); c["nat-frag-holding"] != 1 || c["nat-frag-entries"] == 0 || c["nat-frag-hold-expired"] != 0 {
		t.Fatal(c)
	}
	n.Reap(sec+3*sec, 10)
	if c := counts(n); c["nat-frag-holding"] != 0 || c["nat-frag-entries"] != 0 || c["nat-frag-hold-expired"] != 1 {
		t.Fatal(c)
	}
	// A reload to 10s: the fragment held at 10 s expires at 20 s.
	c2 := fwdConfig()
	c2.Conntrack.FragmentTimeout = 10 * time.Second
	n.Commit(compileRules(t, c2))
	if v, r := w.In(fs[1], nPublic, 10*sec); v != Held {
		t.Fatalf("%v %v", v, r)
	}
	n.Reap(20*sec-1, 10)
	if c := counts(n); c["nat-frag-holding"] != 1 {
		t.Fatal(c)
	}
	n.Reap(20*sec, 10)
	if c := counts(n); c["nat-frag-holding"] != 0 || c["nat-frag-hold-expired"] != 2 {
		t.Fatal(c)
	}
}
