package nat

import (
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/packet"
)

// fragments builds a UDP datagram with gopacket and splits it into two IPv4
// fragments (the first carrying the UDP header and 24 data bytes).
func fragments(t *testing.T, src, dst string, sport, dport uint16, id uint16) (f1, f2 packet.IPv4) {
	t.Helper()
	payload := make([]byte, 64)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	whole := build(t, pk{src: src, dst: dst, proto: udp, sport: sport, dport: dport, payload: payload, ipID: id})
	dgram := whole[20:]
	mk := func(off int, data []byte, mf bool) packet.IPv4 {
		ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4(),
			Protocol: layers.IPProtocolUDP, Id: id, FragOffset: uint16(off / 8)}
		if mf {
			ip.Flags = layers.IPv4MoreFragments
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ip, gopacket.Payload(data)); err != nil {
			t.Fatal(err)
		}
		return append(packet.IPv4(nil), buf.Bytes()...)
	}
	return mk(0, dgram[:32], true), mk(32, dgram[32:], false)
}

// reassembled checks the two fragments carry the same addresses and that the
// datagram they form has a valid UDP checksum.
func reassembled(t *testing.T, f1, f2 packet.IPv4) decoded {
	t.Helper()
	checkSums(t, f1)
	checkSums(t, f2)
	if f1.Src() != f2.Src() || f1.Dst() != f2.Dst() {
		t.Fatalf("fragments disagree: %v->%v vs %v->%v", packet.Addr(f1.Src()), packet.Addr(f1.Dst()), packet.Addr(f2.Src()), packet.Addr(f2.Dst()))
	}
	whole := append(append([]byte(nil), f1[:20]...), f1[20:]...)
	whole = append(whole, f2[20:]...)
	whole[6], whole[7] = 0, 0
	packet.IPv4(whole).SetTotalLen(len(whole))
	packet.IPv4(whole).ComputeChecksum()
	checkSums(t, whole)
	return decode(t, whole)
}

func TestFragmentsInOrder(t *testing.T) {
	n, w := newNAT(t, testConfig())
	f1, f2 := fragments(t, "10.1.1.10", "198.51.100.7", 5000, 53, 0x1234)
	out(t, w, f1, sec, Translated)
	out(t, w, f2, sec, Translated)
	d := reassembled(t, f1, f2)
	if d.src != "203.0.113.1" || d.sport != 5000 {
		t.Fatalf("%+v", d)
	}
	r1, r2 := fragments(t, "198.51.100.7", "203.0.113.1", 53, 5000, 0x4321)
	in(t, w, r1, sec, Translated)
	in(t, w, r2, sec, Translated)
	d = reassembled(t, r1, r2)
	if d.dst != "10.1.1.10" || d.dport != 5000 {
		t.Fatalf("%+v", d)
	}
	if counts(n)["nat-fragments-translated"] != 2 {
		t.Fatal(counts(n))
	}
}

func TestFragmentsOutOfOrder(t *testing.T) {
	n, w := newNAT(t, testConfig())
	// Outbound: the non-first fragment first is still translated (the source
	// address of a host is fixed by paired pooling).
	f1, f2 := fragments(t, "10.1.1.10", "198.51.100.7", 5000, 53, 7)
	out(t, w, f2, sec, Translated)
	out(t, w, f1, sec, Translated)
	if d := reassembled(t, f1, f2); d.src != "203.0.113.1" {
		t.Fatalf("%+v", d)
	}
	// Inbound to an SNAT address: one inside host talks to that server
	// through it, so the fragment can only be for that host.
	r1, r2 := fragments(t, "198.51.100.7", "203.0.113.1", 53, 5000, 8)
	in(t, w, r2, sec, Translated)
	in(t, w, r1, sec, Translated)
	if d := reassembled(t, r1, r2); d.dst != "10.1.1.10" || d.dport != 5000 {
		t.Fatalf("%+v", d)
	}
	// Once a second host talks to the same server through the same address,
	// the port is needed: the fragment is held until its first fragment.
	out(t, w, build(t, pk{src: "10.1.1.11", dst: "198.51.100.7", proto: udp, sport: 5001, dport: 53}), sec, Translated)
	r1, r2 = fragments(t, "198.51.100.7", "203.0.113.1", 53, 5000, 10)
	if v, r := w.In(r2, nPublic, sec); v != Held {
		t.Fatalf("%v %v", v, r)
	}
	in(t, w, r1, sec, Translated)
	p, inNet, outNet, st, ok := w.Released()
	if !ok || st != StageIn || inNet != nPublic || outNet != Local {
		t.Fatalf("released %v %v %v %v", ok, st, inNet, outNet)
	}
	if d := reassembled(t, r1, p); d.dst != "10.1.1.10" || d.dport != 5000 {
		t.Fatalf("%+v", d)
	}
	if c := counts(n); c["nat-frag-out-of-order"] != 0 || c["nat-frag-held"] != 1 || c["nat-frag-released"] != 1 {
		t.Fatal(c)
	}
	// Inbound to a floating IP: 1:1, translated in any order.
	g1, g2 := fragments(t, "198.51.100.7", "203.0.113.50", 53, 5000, 9)
	in(t, w, g2, sec, Translated)
	in(t, w, g1, sec, Translated)
	if d := reassembled(t, g1, g2); d.dst != "10.1.1.5" {
		t.Fatalf("%+v", d)
	}
}

func TestFragmentTableBounded(t *testing.T) {
	n, w := newNAT(t, testConfig())
	full := false
	for i := 0; i < 20000 && !full; i++ {
		f1, _ := fragments(t, "10.1.1.10", "198.51.100.7", 5000, 53, uint16(i))
		w.In(f1, nInside, sec)
		if v, r := w.Out(f1, nInside, nPublic, sec); v == Drop {
			if r != FragTableFull {
				t.Fatal(r)
			}
			full = true
		}
	}
	if !full || counts(n)["nat-frag-entries"] > 4096 {
		t.Fatalf("table never full or too big: %v", counts(n)["nat-frag-entries"])
	}
	// Entries expire.
	n.Reap(sec+int64(DefaultFragTimeout), 10)
	if counts(n)["nat-frag-entries"] != 0 {
		t.Fatal("fragment entries not expired")
	}
	f1, f2 := fragments(t, "10.1.1.10", "198.51.100.7", 5000, 53, 1)
	out(t, w, f1, sec+int64(DefaultFragTimeout), Translated)
	out(t, w, f2, sec+int64(DefaultFragTimeout), Translated)
}
