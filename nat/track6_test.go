package nat

import (
	"math/rand"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/packet"
)

// pk6 describes an IPv6 test packet (built with gopacket).
type pk6 struct {
	src, dst     string
	proto        uint8
	sport, dport uint16
	flags        uint8
	seq, ack     uint32
	icmpType     uint8
	icmpCode     uint8
	id           uint16
	mtu          uint32 // packet too big
	quote        []byte // ICMPv6 errors: the packet quoted
	frag         *layers.IPv6Fragment
	payload      []byte
}

func build6(t testing.TB, p pk6) packet.IPv6 {
	t.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: net.ParseIP(p.src), DstIP: net.ParseIP(p.dst), NextHeader: layers.IPProtocol(p.proto)}
	var ls []gopacket.SerializableLayer
	ls = append(ls, ip)
	if p.frag != nil {
		ip.NextHeader = layers.IPProtocolIPv6Fragment
		f := *p.frag
		f.NextHeader = layers.IPProtocol(p.proto)
		ls = append(ls, &f)
		if f.FragmentOffset != 0 {
			ls = append(ls, gopacket.Payload(p.payload))
			return ser6(t, ls)
		}
	}
	switch p.proto {
	case packet.ProtoTCP:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(p.sport), DstPort: layers.TCPPort(p.dport), Seq: p.seq, Ack: p.ack, Window: 65535,
			SYN: p.flags&packet.TCPSyn != 0, ACK: p.flags&packet.TCPAck != 0, FIN: p.flags&packet.TCPFin != 0, RST: p.flags&packet.TCPRst != 0}
		tcp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, tcp)
	case packet.ProtoUDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(p.sport), DstPort: layers.UDPPort(p.dport)}
		udp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, udp)
	case packet.ProtoICMPv6:
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(p.icmpType, p.icmpCode)}
		ic.SetNetworkLayerForChecksum(ip)
		ls = append(ls, ic)
		switch p.icmpType {
		case packet.ICMPv6EchoRequest, packet.ICMPv6EchoReply:
			ls = append(ls, &layers.ICMPv6Echo{Identifier: p.id, SeqNumber: 1})
		default:
			var hdr [4]byte
			hdr[0], hdr[1], hdr[2], hdr[3] = byte(p.mtu>>24), byte(p.mtu>>16), byte(p.mtu>>8), byte(p.mtu)
			ls = append(ls, gopacket.Payload(append(hdr[:], p.quote...)))
		}
	}
	ls = append(ls, gopacket.Payload(p.payload))
	return ser6(t, ls)
}

func ser6(t testing.TB, ls []gopacket.SerializableLayer) packet.IPv6 {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return packet.IPv6(append([]byte(nil), buf.Bytes()...))
}

func walk(t testing.TB, p packet.IPv6) packet.ExtInfo {
	t.Helper()
	x, e := packet.WalkExt(p)
	if e != packet.ExtOK {
		t.Fatalf("walk: %v", e)
	}
	return x
}

// track6 runs p through Track6 and, for a new flow, Create6 (as the router
// does when the filters accept it).
func track6(t testing.TB, w *Worker, p packet.IPv6, now int64, create bool) (FlowState, Reason) {
	t.Helper()
	x := walk(t, p)
	st, why := w.Track6(p, &x, now)
	if st == FlowNew && create {
		if r := w.Create6(p, &x, 1, now); r != 0 {
			t.Fatalf("create: %v", r)
		}
	}
	return st, why
}

const (
	v6A = "2001:db8:1::10"
	v6B = "2001:db8:2::20"
	v6R = "2001:db8:9::1" // a router on the path
)

func TestTrack6TCP(t *testing.T) {
	n, w := newNAT(t, testConfig())
	now := sec
	synP := build6(t, pk6{src: v6A, dst: v6B, proto: tcp, sport: 40000, dport: 22, flags: syn, seq: 100})
	if st, _ := track6(t, w, synP, now, false); st != FlowNew {
		t.Fatalf("syn: %v", st)
	}
	// A segment other than a SYN without a session is invalid.
	stray := build6(t, pk6{src: v6A, dst: v6B, proto: tcp, sport: 40000, dport: 22, flags: ack, seq: 101, ack: 1})
	if st, why := track6(t, w, stray, now, true); st != FlowInvalid || why != TCPNoSession {
		t.Fatalf("stray ack: %v %v", st, why)
	}
	track6(t, w, synP, now, true)
	if n.Len6() != 1 || n.Len() != 0 {
		t.Fatalf("sessions: v6 %d v4 %d", n.Len6(), n.Len())
	}
	steps := []pk6{
		{src: v6B, dst: v6A, proto: tcp, sport: 22, dport: 40000, flags: syn | ack, seq: 500, ack: 101},
		{src: v6A, dst: v6B, proto: tcp, sport: 40000, dport: 22, flags: ack, seq: 101, ack: 501},
	}
	for i, s := range steps {
		if st, why := track6(t, w, build6(t, s), now, false); st != FlowEstablished {
			t.Fatalf("step %d: %v %v", i, st, why)
		}
	}
	ss := n.Sessions(netip.Addr{})
	if len(ss) != 1 || ss[0].State != "ESTABLISHED" || ss[0].NAT != "none" || ss[0].Packets != 3 ||
		ss[0].Orig.String() != "["+v6A+"]:40000 -> ["+v6B+"]:22" || ss[0].Reply.String() != "["+v6B+"]:22 -> ["+v6A+"]:40000" {
		t.Fatalf("sessions: %+v", ss)
	}
	// An RST far outside the window is refused; one inside closes.
	bad := build6(t, pk6{src: v6B, dst: v6A, proto: tcp, sport: 22, dport: 40000, flags: rst, seq: 500 + 1<<30})
	if st, why := track6(t, w, bad, now, false); st != FlowInvalid || why != TCPBadRST {
		t.Fatalf("bad rst: %v %v", st, why)
	}
	good := build6(t, pk6{src: v6B, dst: v6A, proto: tcp, sport: 22, dport: 40000, flags: rst, seq: 501})
	if st, _ := track6(t, w, good, now, false); st != FlowEstablished {
		t.Fatalf("rst: %v", st)
	}
	if ss := n.Sessions(netip.MustParseAddr(v6B)); len(ss) != 1 || ss[0].State != "CLOSE" {
		t.Fatalf("after rst: %+v", ss)
	}
	if ss := n.Sessions(netip.MustParseAddr("10.1.1.1")); len(ss) != 0 {
		t.Fatalf("an IPv4 address selects no IPv6 session: %+v", ss)
	}
	if c := cnt(n, "nat-tracking-sessions6"); c != 1 {
		t.Fatalf("nat-tracking-sessions6 %d", c)
	}
}

func cnt(n *NAT, name string) uint64 {
	for _, v := range n.Counters() {
		if v.Desc.Name == name {
			return v.Value
		}
	}
	return 1 << 63
}

func TestTrack6EchoAndErrors(t *testing.T) {
	n, w := newNAT(t, testConfig())
	now := sec
	req := build6(t, pk6{src: v6A, dst: v6B, proto: packet.ProtoICMPv6, icmpType: packet.ICMPv6EchoRequest, id: 77})
	track6(t, w, req, now, true)
	rep := build6(t, pk6{src: v6B, dst: v6A, proto: packet.ProtoICMPv6, icmpType: packet.ICMPv6EchoReply, id: 77})
	if st, _ := track6(t, w, rep, now, false); st != FlowEstablished {
		t.Fatalf("reply: %v", st)
	}
	other := build6(t, pk6{src: v6B, dst: v6A, proto: packet.ProtoICMPv6, icmpType: packet.ICMPv6EchoReply, id: 78})
	if st, _ := track6(t, w, other, now, false); st != FlowNew {
		t.Fatalf("reply with another id: %v", st)
	}
	if ss := n.Sessions(netip.Addr{}); len(ss) != 1 || ss[0].State != "REPLIED" {
		t.Fatalf("%+v", ss)
	}

	// Errors about a packet of a TCP session, from a router on the path.
	big := build6(t, pk6{src: v6A, dst: v6B, proto: udp, sport: 5000, dport: 53, payload: make([]byte, 1400)})
	track6(t, w, big, now, true)
	cases := []struct {
		name       string
		typ, code  uint8
		src, dst   string
		quote      []byte
		want       FlowState
		wantCreate bool
	}{
		{"packet too big", packet.ICMPv6PacketTooBig, 0, v6R, v6A, big[:1232], FlowRelated, false},
		{"time exceeded", packet.ICMPv6TimeExceeded, 0, v6R, v6A, big[:200], FlowRelated, false},
		{"unreachable from the destination", packet.ICMPv6DstUnreach, 4, v6B, v6A, big[:48], FlowRelated, false},
		{"parameter problem", packet.ICMPv6ParamProblem, 0, v6R, v6A, big, FlowRelated, false},
		{"about the echo request", packet.ICMPv6DstUnreach, 1, v6R, v6A, req, FlowRelated, false},
		{"to another host", packet.ICMPv6PacketTooBig, 0, v6R, "2001:db8:1::99", big[:1232], FlowNew, false},
		{"quote too short", packet.ICMPv6PacketTooBig, 0, v6R, v6A, big[:42], FlowNew, false},
		{"unknown flow", packet.ICMPv6PacketTooBig, 0, v6R, v6A, build6(t, pk6{src: v6A, dst: v6B, proto: udp, sport: 5001, dport: 53}), FlowNew, false},
	}
	for _, c := range cases {
		e := build6(t, pk6{src: c.src, dst: c.dst, proto: packet.ProtoICMPv6, icmpType: c.typ, icmpCode: c.code, mtu: 1280, quote: c.quote})
		if st, _ := track6(t, w, e, now, false); st != c.want {
			t.Errorf("%s: %v, want %v", c.name, st, c.want)
		}
	}
	if n.Len6() != 2 {
		t.Fatalf("errors made sessions: %d", n.Len6())
	}
}

func TestTrack6Fragments(t *testing.T) {
	_, w := newNAT(t, testConfig())
	now := sec
	first := build6(t, pk6{src: v6A, dst: v6B, proto: udp, sport: 5000, dport: 53, payload: make([]byte, 64),
		frag: &layers.IPv6Fragment{MoreFragments: true, Identification: 0xabcdef}})
	later := build6(t, pk6{src: v6A, dst: v6B, proto: udp, payload: make([]byte, 64),
		frag: &layers.IPv6Fragment{FragmentOffset: 9, Identification: 0xabcdef}})
	other := build6(t, pk6{src: v6A, dst: v6B, proto: udp, payload: make([]byte, 64),
		frag: &layers.IPv6Fragment{FragmentOffset: 9, Identification: 0xabcdee}})
	if st, _ := track6(t, w, later, now, false); st != FlowNew {
		t.Fatalf("early later fragment: %v", st)
	}
	if st, _ := track6(t, w, first, now, true); st != FlowNew {
		t.Fatalf("first: %v", st)
	}
	x := walk(t, first)
	w.PassFragments6(first, &x, now)
	if st, _ := track6(t, w, later, now, false); st != FlowFragment {
		t.Fatalf("later fragment: %v", st)
	}
	if st, _ := track6(t, w, other, now, false); st != FlowNew {
		t.Fatalf("fragment of another datagram: %v", st)
	}
	if st, _ := track6(t, w, later, now+int64(DefaultFragTimeout), false); st != FlowNew {
		t.Fatalf("later fragment after the timeout: %v", st)
	}
}

func TestTrack6TimeoutsEvictionFlush(t *testing.T) {
	c := testConfig()
	c.Conntrack.Max = 4
	n, w := newNAT(t, c)
	now := sec
	for i := 0; i < 4; i++ {
		p := build6(t, pk6{src: v6A, dst: v6B, proto: udp, sport: uint16(1000 + i), dport: 53})
		track6(t, w, p, now, true)
	}
	// Full: a new flow evicts an unanswered one idle for EvictIdle.
	p := build6(t, pk6{src: v6A, dst: v6B, proto: udp, sport: 2000, dport: 53})
	x := walk(t, p)
	if w.Track6(p, &x, now); w.Create6(p, &x, 1, now) != TableFull {
		t.Fatal("full table took a flow")
	}
	now += int64(EvictIdle)
	if w.Track6(p, &x, now); w.Create6(p, &x, 1, now) != 0 {
		t.Fatal("no eviction")
	}
	if cnt(n, "nat-sessions-evicted") != 1 || cnt(n, "nat-table-full") != 1 || cnt(n, "nat-sessions6") != 4 {
		t.Fatalf("counters: evicted %d full %d sessions6 %d", cnt(n, "nat-sessions-evicted"), cnt(n, "nat-table-full"), cnt(n, "nat-sessions6"))
	}
	// UDP timeout.
	if got := n.Reap(now+int64(c.Conntrack.UDP)-2*sec, 100); got != 0 {
		t.Fatalf("reaped %d early", got)
	}
	if got := n.Reap(now+int64(c.Conntrack.UDP)+sec, 100); got != 4 || n.Len6() != 0 {
		t.Fatalf("reaped %d, %d left", got, n.Len6())
	}
	// Flush by a predicate, and clear by address.
	for i := 0; i < 3; i++ {
		p := build6(t, pk6{src: v6A, dst: v6B, proto: udp, sport: uint16(3000 + i), dport: uint16(53 + i)})
		track6(t, w, p, now, true)
	}
	fl, msg := n.FlushIfBoth(nil, func(f *Flow6) string {
		if f.DPort == 53 && f.Proto == udp && f.OutNet == 1 && netip.AddrFrom16(f.Src).String() == v6A {
			return "because"
		}
		return ""
	})
	if fl != 1 || msg != "1 session flushed: because" || n.Len6() != 2 {
		t.Fatalf("flush: %d %q %d", fl, msg, n.Len6())
	}
	if c := n.Clear(netip.MustParseAddr(v6B)); c != 2 || n.Len6() != 0 {
		t.Fatalf("clear: %d, %d left", c, n.Len6())
	}
}

// TestTable6Random: creations and deletions against a map.
func TestTable6Random(t *testing.T) {
	const max = 500
	tb := newTable6(max)
	rng := rand.New(rand.NewSource(1))
	ref := map[key6]uint32{}
	keyOf := func() key6 {
		return key6{uint64(rng.Intn(4)), uint64(rng.Intn(30)), 7, uint64(rng.Intn(30)), ports6(uint16(rng.Intn(3)), uint16(rng.Intn(3)), 17)}
	}
	var h hit6
	for i := 0; i < 200000; i++ {
		k := keyOf()
		_, in := ref[k]
		_, inM := ref[k.mirror()]
		found := tb.lookup(&k, &h)
		if found != (in || inM) {
			t.Fatalf("step %d: lookup %v, ref %v/%v", i, found, in, inM)
		}
		if found {
			if want := uint8(0); inM && !in {
				want = 1
				if h.dir != want {
					t.Fatalf("step %d: dir %d", i, h.dir)
				}
			}
			if rng.Intn(2) == 0 {
				tb.destroy(h.idx)
				delete(ref, k)
				delete(ref, k.mirror())
			}
			continue
		}
		if len(ref) < max {
			if !tb.create(&k, 0, 1, &h) {
				t.Fatalf("step %d: create failed at %d", i, len(ref))
			}
			ref[k] = h.idx
		}
	}
	if int(tb.live.Load()) != len(ref) || tb.keys != 2*len(ref) {
		t.Fatalf("live %d keys %d ref %d", tb.live.Load(), tb.keys, len(ref))
	}
}

func TestTrack6NoAllocs(t *testing.T) {
	_, w := newNAT(t, testConfig())
	synP := build6(t, pk6{src: v6A, dst: v6B, proto: tcp, sport: 40000, dport: 22, flags: syn, seq: 100})
	track6(t, w, synP, sec, true)
	pkts := []packet.IPv6{
		build6(t, pk6{src: v6B, dst: v6A, proto: tcp, sport: 22, dport: 40000, flags: syn | ack, seq: 500, ack: 101}),
		build6(t, pk6{src: v6A, dst: v6B, proto: tcp, sport: 40000, dport: 22, flags: ack, seq: 101, ack: 501}),
		build6(t, pk6{src: v6R, dst: v6A, proto: packet.ProtoICMPv6, icmpType: packet.ICMPv6PacketTooBig, mtu: 1280, quote: synP}),
	}
	xs := make([]packet.ExtInfo, len(pkts))
	for i, p := range pkts {
		xs[i] = walk(t, p)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		for i, p := range pkts {
			if st, _ := w.Track6(p, &xs[i], sec); st != FlowEstablished && st != FlowRelated {
				t.Fatal(st)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs", allocs)
	}
}

func TestTrack6CountersDescribed(t *testing.T) {
	names := map[string]bool{}
	for _, d := range Descs() {
		names[d.Name] = true
	}
	for _, want := range []string{"nat-sessions6", "nat-tracking-sessions6"} {
		if !names[want] {
			t.Errorf("%s not in Descs", want)
		}
	}
}
