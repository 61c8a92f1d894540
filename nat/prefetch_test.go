package nat

import (
	"math/rand"
	"testing"

	"vrouter/packet"
)

// TestPrefetch: Prefetch reads the index slot where the lookup of the
// packet's flow starts (occupied once the flow has a session, in either
// direction), reads nothing for what it does not cover, and never panics.
func TestPrefetch(t *testing.T) {
	_, w := newNAT(t, testConfig())
	o := build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 40000, dport: 53})
	if got := w.Prefetch(o); got != 0 {
		t.Fatalf("empty table: slot %#x", got)
	}
	out(t, w, append([]byte(nil), o...), sec, Translated)
	if w.Prefetch(o) == 0 {
		t.Fatal("the first slot of an existing session's key is empty")
	}
	r := build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: udp, sport: 53, dport: 40000})
	var h hit
	a, b := keyWords(r.Src(), r.Dst(), 53, 40000, udp)
	if !w.n.t.lookup(a, b, 1<<kReply, &h) {
		t.Fatal("no reply key for the session")
	}
	if w.Prefetch(r) == 0 {
		t.Fatal("the first slot of the reply's key is empty")
	}

	frag := append(packet.IPv4(nil), o...)
	frag[6], frag[7] = 0, 8 // fragment offset 64: no ports
	icmp := build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: packet.ProtoICMP, icmpType: packet.ICMPEchoRequest, id: 7})
	for name, p := range map[string][]byte{"empty": nil, "short": o[:19], "no ports": o[:21], "fragment": frag, "icmp": icmp, "ipv6": {0x60, 0, 0, 0}} {
		if got := w.Prefetch(p); got != 0 {
			t.Errorf("%s: slot %#x", name, got)
		}
	}
	rng := rand.New(rand.NewSource(1))
	junk := make([]byte, 64)
	for i := 0; i < 10000; i++ {
		rng.Read(junk)
		junk[0] = 0x40 | junk[0]&0x0f
		w.Prefetch(junk[:rng.Intn(len(junk))])
	}
	if n := testing.AllocsPerRun(100, func() { w.Prefetch(o) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
