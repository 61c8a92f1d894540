package nat

import (
	"bytes"
	"math/rand"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"vrouter/packet"
)

// TestSharedLookupMatchesPlain: the per-packet record (Reset, then In and
// Out reusing each other's lookup) changes nothing in what the NAT does.
// Random packets between inside hosts, outside hosts, the floating IP and
// the SNAT/forward address, with ICMP errors about earlier packets, go
// through two NATs: one whose worker is Reset before every packet, one
// whose worker never is (every stage looks up on its own, as before the
// record existed); for half the seeds the first also runs Track before In
// and after Out, as the filter stages do. Verdicts, reasons, the packets and the session tables
// must be the same.
func TestSharedLookupMatchesPlain(t *testing.T) {
	hosts := []string{"10.1.1.10", "10.1.1.5", "10.1.1.6", "10.1.2.9", "198.51.100.7", "198.51.100.8", "203.0.113.1", "203.0.113.50"}
	netOf := func(a string) uint16 {
		switch {
		case strings.HasPrefix(a, "10.1.1."):
			return nInside
		case strings.HasPrefix(a, "10.1.2."):
			return nInside2
		}
		return nPublic
	}
	ports := []uint16{40000, 40001, 80, 8080, 53}
	flagSets := []uint8{syn, syn | ack, ack, ack, fin | ack, rst, rst | ack}
	for seed := int64(1); seed <= 150; seed++ {
		rng := rand.New(rand.NewSource(seed))
		n1, w1 := newNAT(t, testConfig())
		n2, w2 := newNAT(t, testConfig())
		var last []byte
		now := sec
		for i := 0; i < 80; i++ {
			now += int64(rng.Intn(3)) * sec
			var p packet.IPv4
			var src, dst string
			if last != nil && rng.Intn(6) == 0 {
				// An ICMP error about the last packet, from its destination.
				d := decode(t, last)
				src, dst = d.dst, d.src
				p = icmpErr(t, src, dst, []uint8{3, 11}[rng.Intn(2)], uint8(rng.Intn(4)), last, 0)
			} else {
				src, dst = hosts[rng.Intn(len(hosts))], hosts[rng.Intn(len(hosts))]
				pr := []uint8{tcp, udp, icmp}[rng.Intn(3)]
				q := pk{src: src, dst: dst, proto: pr, sport: ports[rng.Intn(len(ports))], dport: ports[rng.Intn(len(ports))],
					flags: flagSets[rng.Intn(len(flagSets))], seq: uint32(rng.Intn(3)), ack: uint32(rng.Intn(3)),
					icmpType: []uint8{8, 0}[rng.Intn(2)], id: ports[rng.Intn(len(ports))], payload: make([]byte, rng.Intn(40))}
				p = build(t, q)
			}
			pkts := []packet.IPv4{p}
			if len(p) >= 20+24 && rng.Intn(4) == 0 {
				// As two fragments, in order or not.
				a, b := split2(p, 16)
				pkts = []packet.IPv4{a, b}
				if rng.Intn(2) == 0 {
					pkts = []packet.IPv4{b, a}
				}
			}
			for _, p := range pkts {
				diffOne(t, seed, i, p, w1, w2, netOf(src), netOf, now, seed%2 == 0, &last)
			}
		}
		s1, s2 := n1.Sessions(noAddr), n2.Sessions(noAddr)
		if !reflect.DeepEqual(s1, s2) {
			t.Fatalf("seed %d: sessions differ:\nshared %v\nplain  %v", seed, s1, s2)
		}
		c1, c2 := counts(n1), counts(n2)
		if !reflect.DeepEqual(c1, c2) {
			t.Fatalf("seed %d: counters differ:\nshared %v\nplain  %v", seed, c1, c2)
		}
	}
}

// diffOne runs p (and a copy) through both workers and compares; released
// fragments too.
func diffOne(t *testing.T, seed int64, i int, p packet.IPv4, w1, w2 *Worker, inNet uint16, netOf func(string) uint16, now int64,
	withTrack bool, last *[]byte) {
	t.Helper()
	p2 := append(packet.IPv4(nil), p...)
	w1.Reset()
	if withTrack { // the filter's stages around the NAT's share the lookups too
		w1.Track(p, AsReceived, now)
	}
	v1, r1 := w1.In(p, inNet, now)
	v2, r2 := w2.In(p2, inNet, now)
	if v1 != v2 || r1 != r2 || !bytes.Equal(p, p2) {
		t.Fatalf("seed %d packet %d: In: shared %v %v % x, plain %v %v % x", seed, i, v1, r1, []byte(p), v2, r2, []byte(p2))
	}
	if v1 != Drop && v1 != Held {
		v1, r1 = w1.Out(p, inNet, netOf(decodeAddr(p.Dst())), now)
		v2, r2 = w2.Out(p2, inNet, netOf(decodeAddr(p2.Dst())), now)
		if v1 != v2 || r1 != r2 || !bytes.Equal(p, p2) {
			t.Fatalf("seed %d packet %d: Out: shared %v %v % x, plain %v %v % x", seed, i, v1, r1, []byte(p), v2, r2, []byte(p2))
		}
		if v1 != Drop {
			if p.FlagsFrag()&packet.IPv4FragOffMask == 0 && !p.MF() {
				*last = append((*last)[:0], p...)
			}
			if withTrack {
				w1.Track(p, AsSent, now)
			}
		}
	}
	for w1.HasReleased() || w2.HasReleased() {
		q1, in1, out1, st1, ok1 := w1.Released()
		q2, in2, out2, st2, ok2 := w2.Released()
		if ok1 != ok2 || !bytes.Equal(q1, q2) || in1 != in2 || out1 != out2 || st1 != st2 {
			t.Fatalf("seed %d packet %d: released fragments differ", seed, i)
		}
	}
}

func decodeAddr(a uint32) string { return packet.Addr(a).String() }

// split2 cuts p (no options) into a first fragment with n bytes of payload
// (a multiple of 8) and the rest.
func split2(p packet.IPv4, n int) (packet.IPv4, packet.IPv4) {
	a := append(packet.IPv4(nil), p[:20+n]...)
	a.SetTotalLen(20 + n)
	a.SetFlagsFrag(packet.IPv4MF)
	a.ComputeChecksum()
	b := append(packet.IPv4(nil), p[:20]...)
	b = append(b, p[20+n:]...)
	b.SetTotalLen(len(b))
	b.SetFlagsFrag(uint16(n / 8))
	b.ComputeChecksum()
	return a, b
}

// trackCase runs Track on p after a Reset.
func track(w *Worker, p packet.IPv4, s Side, now int64) (FlowState, Reason) {
	w.Reset()
	return w.Track(p, s, now)
}

// A flow no NAT rule touches: its first packet is new, a tracking-only
// session follows the TCP handshake both ways, later packets and replies
// are established; an RST outside the window and a non-SYN without a
// session are invalid.
func TestTrackTCP(t *testing.T) {
	n, w := newNAT(t, testConfig())
	a, b := "10.1.1.10", "10.1.2.9" // inside to inside: no NAT
	synP := build(t, pk{src: a, dst: b, proto: tcp, sport: 40000, dport: 22, flags: syn, seq: 100})
	if st, _ := track(w, synP, AsReceived, sec); st != FlowNew {
		t.Fatalf("SYN: %v", st)
	}
	if v, _ := w.In(synP, nInside, sec); v != Pass {
		t.Fatal("In touched an untranslated flow")
	}
	if v, _ := w.Out(synP, nInside, nInside2, sec); v != Pass {
		t.Fatal("Out touched an untranslated flow")
	}
	if st, _ := w.Track(synP, AsSent, sec); st != FlowNew {
		t.Fatalf("SYN as sent: %v", st)
	}
	if why := w.Create(synP, nInside2, sec); why != 0 {
		t.Fatal(why)
	}
	if !w.Tracked() || n.Len() != 1 || counts(n)["nat-tracking-sessions"] != 1 {
		t.Fatalf("no tracking session: %d sessions", n.Len())
	}
	ss := n.Sessions(noAddr)
	if ss[0].NAT != "none" || ss[0].State != "SYN_SENT" || ss[0].Reply.String() != "10.1.2.9:22 -> 10.1.1.10:40000" {
		t.Fatalf("session %v", ss[0])
	}
	synAck := build(t, pk{src: b, dst: a, proto: tcp, sport: 22, dport: 40000, flags: syn | ack, seq: 500, ack: 101})
	if st, _ := track(w, synAck, AsReceived, sec); st != FlowEstablished {
		t.Fatalf("SYN/ACK: %v", st)
	}
	// The egress stage reuses what the ingress stage learnt, and does not
	// account the packet twice.
	if st, _ := w.Track(synAck, AsSent, sec); st != FlowEstablished {
		t.Fatalf("SYN/ACK as sent: %v", st)
	}
	ackP := build(t, pk{src: a, dst: b, proto: tcp, sport: 40000, dport: 22, flags: ack, seq: 101, ack: 501})
	if st, _ := track(w, ackP, AsReceived, 2*sec); st != FlowEstablished {
		t.Fatalf("ACK: %v", st)
	}
	ss = n.Sessions(noAddr)
	if ss[0].State != "ESTABLISHED" || ss[0].Packets != 3 || ss[0].Timeout < 2*3600*1e9 {
		t.Fatalf("after the handshake: %v", ss[0])
	}
	badRST := build(t, pk{src: b, dst: a, proto: tcp, sport: 22, dport: 40000, flags: rst, seq: 500 + 1<<30})
	if st, why := track(w, badRST, AsReceived, 3*sec); st != FlowInvalid || why != TCPBadRST {
		t.Fatalf("RST out of window: %v %v", st, why)
	}
	stray := build(t, pk{src: a, dst: b, proto: tcp, sport: 40001, dport: 22, flags: ack, seq: 7})
	if st, why := track(w, stray, AsReceived, 3*sec); st != FlowInvalid || why != TCPNoSession {
		t.Fatalf("ACK without session: %v %v", st, why)
	}
	if c := counts(n); c["nat-tcp-bad-rst"] != 0 || c["nat-tcp-not-syn"] != 0 {
		t.Fatalf("Track counted in the NAT's drops: %v", c)
	}
	fin1 := build(t, pk{src: a, dst: b, proto: tcp, sport: 40000, dport: 22, flags: fin | ack, seq: 101, ack: 501})
	fin2 := build(t, pk{src: b, dst: a, proto: tcp, sport: 22, dport: 40000, flags: fin | ack, seq: 501, ack: 102})
	track(w, fin1, AsReceived, 4*sec)
	track(w, fin2, AsReceived, 4*sec)
	if s := n.Sessions(noAddr)[0]; s.State != "TIME_WAIT" {
		t.Fatalf("after FIN both ways: %v", s)
	}
	n.Reap(4*sec+int64(4*60+1)*1e9, 100)
	if n.Len() != 0 {
		t.Fatal("closed session not reaped after tcp_transitory")
	}
}

// UDP and ICMP echo get tracking sessions keyed like the NAT's; an ICMP
// error about a tracked packet is related on both sides, one about nothing
// (or to another address) is new.
func TestTrackUDPICMPRelated(t *testing.T) {
	n, w := newNAT(t, testConfig())
	a, b := "10.1.1.10", "10.1.2.9"
	u := build(t, pk{src: a, dst: b, proto: udp, sport: 5000, dport: 53})
	if st, _ := track(w, u, AsReceived, sec); st != FlowNew {
		t.Fatal(st)
	}
	if why := w.Create(u, nInside2, sec); why != 0 {
		t.Fatal(why)
	}
	reply := build(t, pk{src: b, dst: a, proto: udp, sport: 53, dport: 5000})
	if st, _ := track(w, reply, AsReceived, sec); st != FlowEstablished {
		t.Fatal("UDP reply", st)
	}
	if s := n.Sessions(noAddr)[0]; s.State != "REPLIED" {
		t.Fatal(s)
	}
	e := icmpErr(t, b, a, 3, 3, u, 0)
	if st, _ := track(w, e, AsReceived, sec); st != FlowRelated {
		t.Fatal("port unreachable about the datagram", st)
	}
	if st, _ := track(w, e, AsSent, sec); st != FlowRelated {
		t.Fatal("as sent", st)
	}
	if e2 := icmpErr(t, b, "10.1.1.11", 3, 3, u, 0); func() bool { st, _ := track(w, e2, AsReceived, sec); return st != FlowNew }() {
		t.Fatal("an error to another address than the quoted source is not related")
	}
	other := build(t, pk{src: a, dst: b, proto: udp, sport: 5001, dport: 53})
	if st, _ := track(w, icmpErr(t, b, a, 3, 3, other, 0), AsReceived, sec); st != FlowNew {
		t.Fatal("error about an unknown flow", st)
	}
	echo := build(t, pk{src: a, dst: b, proto: icmp, icmpType: 8, id: 9})
	track(w, echo, AsReceived, sec)
	if why := w.Create(echo, nInside2, sec); why != 0 {
		t.Fatal(why)
	}
	if st, _ := track(w, build(t, pk{src: b, dst: a, proto: icmp, icmpType: 0, id: 9}), AsReceived, sec); st != FlowEstablished {
		t.Fatal("echo reply", st)
	}
	if st, _ := track(w, build(t, pk{src: b, dst: a, proto: icmp, icmpType: 0, id: 10}), AsReceived, sec); st != FlowNew {
		t.Fatal("echo reply of another id", st)
	}
	if n.Len() != 2 {
		t.Fatal(n.Len())
	}
	// Errors never create, refresh or delete.
	if c := counts(n)["nat-tracking-sessions"]; c != 2 {
		t.Fatal(c)
	}
}

// A NAT session tracks its flow: the filter sees its packets and replies as
// established and errors about them as related, as received and as sent;
// Out translates with the session Track found (one lookup).
func TestTrackNATSession(t *testing.T) {
	n, w := newNAT(t, testConfig())
	o := build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53})
	if st, _ := track(w, o, AsReceived, sec); st != FlowNew {
		t.Fatal(st)
	}
	w.In(o, nInside, sec)
	if v, _ := w.Out(o, nInside, nPublic, sec); v != Translated {
		t.Fatal(v)
	}
	if !w.Tracked() || !w.Unconfirmed() {
		t.Fatal("Out's new session not recorded for the packet")
	}
	if st, _ := w.Track(o, AsSent, sec); st != FlowNew {
		t.Fatal("the packet Out made a session for is the first of its flow:", st)
	}
	w.Confirm()
	if st, _ := w.Track(o, AsSent, sec); st != FlowEstablished {
		t.Fatal("as sent", st)
	}
	if why := w.Create(o, nPublic, sec); why != 0 || n.Len() != 1 {
		t.Fatal("a tracking session besides the NAT session")
	}
	o2 := build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53, payload: []byte("again")})
	if st, _ := track(w, o2, AsReceived, 2*sec); st != FlowEstablished {
		t.Fatal(st)
	}
	w.In(o2, nInside, 2*sec)
	if v, _ := w.Out(o2, nInside, nPublic, 2*sec); v != Translated || decode(t, o2).src != "203.0.113.1" {
		t.Fatal("not translated with the session Track found")
	}
	r := build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: udp, sport: 53, dport: 5000})
	if st, _ := track(w, r, AsReceived, 2*sec); st != FlowEstablished {
		t.Fatal("reply", st)
	}
	if v, _ := w.In(r, nPublic, 2*sec); v != Translated {
		t.Fatal(v)
	}
	w.Out(r, nPublic, nInside, 2*sec)
	if d := decode(t, r); d.dst != "10.1.1.10" || d.dport != 5000 {
		t.Fatal(d)
	}
	// An error from outside about the translated datagram: related as
	// received (quoting 203.0.113.1) and, after In restored the quote, as sent.
	e := icmpErr(t, "198.51.100.7", "203.0.113.1", 3, 3, o, 0)
	if st, _ := track(w, e, AsReceived, 3*sec); st != FlowRelated {
		t.Fatal("error as received", st)
	}
	if v, _ := w.In(e, nPublic, 3*sec); v != Translated {
		t.Fatal(v)
	}
	if st, _ := w.Track(e, AsSent, 3*sec); st != FlowRelated {
		t.Fatal("error as sent", st)
	}
	if s := n.Sessions(noAddr)[0]; s.Packets != 3 {
		t.Fatalf("packets accounted %d, want 3 (once each)", s.Packets)
	}
}

// Abort deletes the session a NAT stage created for a packet the filter
// refused (and frees its port); a confirmed one stays.
func TestTrackAbort(t *testing.T) {
	n, w := newNAT(t, testConfig())
	p := build(t, pk{src: "198.51.100.7", dst: "203.0.113.50", proto: tcp, sport: 1234, dport: 23, flags: syn})
	w.Reset()
	if v, _ := w.In(p, nPublic, sec); v != Translated || !w.Unconfirmed() {
		t.Fatal("no DNAT session")
	}
	w.Abort()
	if n.Len() != 0 || w.Unconfirmed() || w.Tracked() || counts(n)["nat-sessions-aborted"] != 1 {
		t.Fatalf("abort left %d sessions", n.Len())
	}
	q := build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 6000, dport: 53})
	w.Reset()
	w.In(q, nInside, sec)
	w.Out(q, nInside, nPublic, sec)
	w.Abort()
	if n.Len() != 0 {
		t.Fatal("SNAT session not aborted")
	}
	w.Reset()
	q = build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 6000, dport: 53})
	w.In(q, nInside, sec)
	w.Out(q, nInside, nPublic, sec)
	if d := decode(t, q); d.sport != 6000 {
		t.Fatalf("port of the aborted mapping not free again: %d", d.sport)
	}
	w.Confirm()
	w.Abort()
	if n.Len() != 1 {
		t.Fatal("confirmed session aborted")
	}
}

// The later fragments of a datagram whose first fragment a stage let
// through pass that stage (and only that one).
func TestTrackFragments(t *testing.T) {
	_, w := newNAT(t, testConfig())
	first := build(t, pk{src: "10.1.1.10", dst: "10.1.2.9", proto: udp, sport: 1, dport: 2, ipID: 77, payload: make([]byte, 64)})
	first.SetFlagsFrag(packet.IPv4MF)
	first.ComputeChecksum()
	next := build(t, pk{src: "10.1.1.10", dst: "10.1.2.9", proto: 200, ipID: 77, payload: make([]byte, 32)})
	next.SetProto(udp)
	next.SetFlagsFrag(9)
	next.ComputeChecksum()
	if st, _ := track(w, next, AsReceived, sec); st != FlowNew {
		t.Fatal("fragment before its first:", st)
	}
	w.PassFragments(first, AsReceived, sec)
	if st, _ := track(w, next, AsReceived, sec); st != FlowFragment {
		t.Fatal(st)
	}
	if st, _ := track(w, next, AsSent, sec); st != FlowNew {
		t.Fatal("other side:", st)
	}
}

// FlushIf deletes the sessions the predicate names, with a summary.
func TestFlushIf(t *testing.T) {
	n, w := newNAT(t, testConfig())
	for _, port := range []uint16{1, 2, 3} {
		p := build(t, pk{src: "10.1.1.10", dst: "10.1.2.9", proto: udp, sport: port, dport: 53})
		track(w, p, AsReceived, sec)
		w.Create(p, nInside2, sec)
	}
	out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 9, dport: 53}), sec, Translated)
	k, msg := n.FlushIf(func(f *Flow) string {
		if f.Tracking && f.SPort != 3 {
			if f.SentSrc != f.Src || f.SentDPort != f.DPort || f.OutNet != nInside2 {
				t.Errorf("flow %+v", f)
			}
			return "no longer accepted by filter x"
		}
		if !f.Tracking && (f.SentSrc != packet.U32(mustAddr("203.0.113.1")) || f.OutNet != nPublic) {
			t.Errorf("NAT flow %+v", f)
		}
		return ""
	})
	if k != 2 || msg != "2 sessions flushed: no longer accepted by filter x" || n.Len() != 2 {
		t.Fatalf("%d %q, %d left", k, msg, n.Len())
	}
}

var noAddr netip.Addr

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
