package router

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/packet"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

// IPv6 super-frames through the pipeline (offload.go, ipv6.go).

// superFrame6 is a TCP GSO super-frame from host A to dst as a veth with
// TSO hands it over: payload bytes in segments of mss, the TCP checksum
// field holding only the IPv6 pseudo-header sum, and its virtio-net
// metadata (offsets from the frame's first byte).
func superFrame6(t testing.TB, dst netip.Addr, payload, mss int) ([]byte, packet.VnetHdr) {
	return superFrame6Port(t, dst, 5201, payload, mss)
}

// superFrame6Port is superFrame6 to TCP port dport (from port 40000).
func superFrame6Port(t testing.TB, dst netip.Addr, dport uint16, payload, mss int) ([]byte, packet.VnetHdr) {
	data := make([]byte, payload)
	for i := range data {
		data[i] = byte(i * 11)
	}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: layers.TCPPort(dport), Seq: 1000, Ack: 1, ACK: true, PSH: true, Window: 500}
	f := ip6Frame(t, hostA, macA, ip6HostA, dst, 64, layers.IPProtocolTCP, tcp, gopacket.Payload(data))
	// Replace the full checksum by the pseudo-header sum (CHECKSUM_PARTIAL).
	const l4 = 14 + 40
	var ps [40]byte
	copy(ps[:32], f[14+8:14+40])
	binary.BigEndian.PutUint32(ps[32:], uint32(len(f)-l4))
	ps[39] = packet.ProtoTCP
	binary.BigEndian.PutUint16(f[l4+16:], packet.Fold(packet.Sum(ps[:], 0)))
	return f, packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv6, HdrLen: l4 + 20,
		GSOSize: uint16(mss), CsumStart: l4, CsumOffset: 16}
}

// offloadLab6 is the IPv6 lab with offloads on port a (and on b when
// both) and both hosts resolved.
func offloadLab6(t testing.TB, both bool) *lab {
	l := newLab6(t)
	l.resolve6()
	l.pa.SetOffloads(true)
	l.r.ports[0].offloads = true
	if both {
		l.pb.SetOffloads(true)
		l.r.ports[1].offloads = true
	}
	return l
}

// tcp6Of decodes an IPv6 TCP frame and checks its TCP checksum.
func tcp6Of(t testing.TB, f []byte) (*layers.IPv6, *layers.TCP) {
	t.Helper()
	p, ip := decode6(t, f)
	tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if tcp == nil {
		t.Fatalf("no TCP in %v", p)
	}
	tcp.SetNetworkLayerForChecksum(ip)
	if err, res := tcp.VerifyChecksum(); err != nil || !res.Valid {
		t.Fatalf("bad TCP checksum in %v", p)
	}
	return ip, tcp
}

// An IPv6 super-frame between two ports that take offloads is routed as one
// packet (hop limit decremented once) and leaves whole, its metadata
// following the headers; the partial checksum completes to a valid one.
func TestSuperFrame6ThroughIntact(t *testing.T) {
	l := offloadLab6(t, true)
	f, m := superFrame6(t, ip6HostB, 3*testMSS+500, testMSS)
	l.pa.InjectMeta(f, m)
	l.run()
	out, meta := l.pb.TakeMeta()
	if len(out) != 1 {
		t.Fatalf("%d frames out, want the super-frame as one", len(out))
	}
	if meta[0] != m {
		t.Fatalf("metadata %+v, want %+v", meta[0], m)
	}
	g := append([]byte(nil), out[0]...)
	if !packet.CompleteChecksum(g, int(meta[0].CsumStart), int(meta[0].CsumOffset)) {
		t.Fatal("cannot complete the checksum")
	}
	ip, tcp := tcp6Of(t, g)
	if ip.HopLimit != 63 || int(ip.Length) != len(f)-14-40 || len(tcp.Payload) != 3*testMSS+500 {
		t.Fatalf("out: hop limit %d length %d payload %d", ip.HopLimit, ip.Length, len(tcp.Payload))
	}
	if eth := decode(g).Layer(layers.LayerTypeEthernet).(*layers.Ethernet); !bytes.Equal(eth.DstMAC, hostB) || !bytes.Equal(eth.SrcMAC, macB[:]) {
		t.Fatalf("L2 %v -> %v", eth.SrcMAC, eth.DstMAC)
	}
	c := l.r.Counters()
	if c[CntGSOForwarded] != 1 || c[CntForwarded6] != 1 || c[CntGSOSegmented] != 0 {
		t.Fatalf("gso-forwarded %d forwarded6 %d gso-segmented %d", c[CntGSOForwarded], c[CntForwarded6], c[CntGSOSegmented])
	}
}

// A port without offloads gets the IPv6 super-frame as segments of the GSO
// size, each complete with its own checksum and sequence number.
func TestSuperFrame6SegmentedForPlainPort(t *testing.T) {
	l := offloadLab6(t, false)
	f, m := superFrame6(t, ip6HostB, 3*testMSS+500, testMSS)
	l.pa.InjectMeta(f, m)
	l.run()
	out := l.pb.Take()
	if len(out) != 4 {
		t.Fatalf("%d frames out, want 4 segments", len(out))
	}
	seq := uint32(1000)
	for i, fr := range out {
		ip, tcp := tcp6Of(t, fr)
		want := testMSS
		if i == 3 {
			want = 500
		}
		if ip.HopLimit != 63 || len(tcp.Payload) != want || tcp.Seq != seq || tcp.PSH != (i == 3) {
			t.Fatalf("segment %d: hop limit %d payload %d seq %d psh %v", i, ip.HopLimit, len(tcp.Payload), tcp.Seq, tcp.PSH)
		}
		seq += uint32(want)
	}
	if n := l.r.Counters()[CntGSOSegmented]; n != 1 {
		t.Fatalf("gso-segmented = %d, want 1", n)
	}
}

// Packet too big is decided per segment: a super-frame far larger than the
// egress MTU (1400 on b) goes through when its segments fit, and is
// answered with the MTU when they do not.
func TestSuperFrame6SegmentsTooBig(t *testing.T) {
	l := offloadLab6(t, true)
	f, m := superFrame6(t, ip6HostB, 3000, 1340) // 40 + 20 + 1340 = 1400: fits
	l.pa.InjectMeta(f, m)
	l.run()
	if out := l.pb.Take(); len(out) != 1 {
		t.Fatalf("fitting segments: %d frames out", len(out))
	}
	f, m = superFrame6(t, ip6HostB, 3000, 1341)
	l.pa.InjectMeta(f, m)
	l.run()
	if out := l.pb.Take(); len(out) != 0 {
		t.Fatalf("%d frames left on b", len(out))
	}
	ip, ic := expectICMP6(t, l.pa.Take(), layers.ICMPv6TypePacketTooBig, 0)
	if mtu := binary.BigEndian.Uint32(ic.Payload[:4]); mtu != 1400 || !ip.DstIP.Equal(a16(ip6HostA)) {
		t.Fatalf("packet too big: MTU %d to %v", mtu, ip.DstIP)
	}
	if d := l.r.Drops()[DropIPv6TooBig]; d != 1 {
		t.Fatalf("ipv6-too-big = %d", d)
	}
}

// A super-frame the router cannot send whole is settled first: to the
// router itself (local delivery sees plain packets only), and to a next hop
// not yet resolved (the queue keeps plain packets).
func TestSuperFrame6Settled(t *testing.T) {
	l := offloadLab6(t, true)
	f, m := superFrame6(t, ip6RA, 2*testMSS, testMSS)
	l.pa.InjectMeta(f, m)
	l.run()
	if d := l.r.Drops()[DropLocalProto]; d != 2 {
		t.Fatalf("local-proto drops %d, want one per segment", d)
	}
	if n := l.r.Counters()[CntGSOSegmented]; n != 1 {
		t.Fatalf("gso-segmented = %d", n)
	}

	l = newLab6(t)
	l.pa.SetOffloads(true)
	l.r.ports[0].offloads = true
	l.pb.SetOffloads(true)
	l.r.ports[1].offloads = true
	l.pa.Inject(nsFrame(t, hostA, ip6HostA, ip6RA)) // host A resolved, B not
	l.run()
	l.pa.Take()
	f, m = superFrame6(t, ip6HostB, 2*testMSS, testMSS)
	l.pa.InjectMeta(f, m)
	l.run()
	if out := l.pb.Take(); len(out) != 1 {
		t.Fatalf("%d frames on b, want one NS", len(out))
	}
	l.pb.Inject(naFrame(t, hostB, macB, ip6HostB, ip6RB))
	l.run()
	out, meta := l.pb.TakeMeta()
	if len(out) != 2 {
		t.Fatalf("%d frames flushed, want the 2 segments", len(out))
	}
	for i, fr := range out {
		if meta[i] != (packet.VnetHdr{}) {
			t.Fatalf("queued segment %d with metadata %+v", i, meta[i])
		}
		tcp6Of(t, fr)
	}
}

// Forwarding IPv6 super-frames intact does not allocate.
func TestZeroAllocSuperFrames6(t *testing.T) {
	l := offloadLab6(t, true)
	l.pb.SetSink(true)
	f, m := superFrame6(t, ip6HostB, 20*testMSS, testMSS)
	w := l.r.workers[0]
	b := w.rx
	allocs := testing.AllocsPerRun(50, func() {
		for i := 0; i < 8; i++ {
			b.Off[i] = port.Headroom
			b.Len[i] = copy(b.Bufs[i][port.Headroom:], f)
			b.Meta[i] = m
		}
		b.N, b.HasMeta = 8, true
		w.processBatch(l.r.ports[0], b)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch of IPv6 super-frames", allocs)
	}
	if n := l.r.Counters()[CntGSOForwarded]; n < 8*50 {
		t.Fatalf("gso-forwarded = %d", n)
	}
}

// An IPv6 super-frame of a flow the filter accepted goes through whole
// (conntrack sees its headers once); one without a session is dropped as
// it is.
func TestSuperFrame6Filtered(t *testing.T) {
	l := filter6Lab(t, "", "")
	for _, ps := range []*pipe.Port{l.pa, l.pb} {
		ps.SetOffloads(true)
	}
	l.r.ports[0].offloads, l.r.ports[1].offloads = true, true
	if _, onB := l.fromA6(seg6{src: ip6HostA, dst: ip6HostB, sport: 40000, dport: 22, flags: "S", seq: 999}); len(onB) != 1 {
		t.Fatalf("SYN: %d frames on b", len(onB))
	}
	if onA, _ := l.fromB6(seg6{src: ip6HostB, dst: ip6HostA, sport: 22, dport: 40000, flags: "SA", seq: 5000, ack: 1000}); len(onA) != 1 {
		t.Fatalf("SYN-ACK: %d frames on a", len(onA))
	}
	f, m := superFrame6Port(t, ip6HostB, 22, 3*testMSS, testMSS)
	l.pa.InjectMeta(f, m)
	l.run()
	out, meta := l.pb.TakeMeta()
	if len(out) != 1 || meta[0] != m {
		t.Fatalf("accepted flow: %d frames out (meta %+v), want the super-frame whole", len(out), meta)
	}
	// Without a session (no SYN seen) a super-frame is invalid: dropped
	// whole, nothing of it passes.
	f, m = superFrame6Port(t, ip6HostB, 80, 3*testMSS, testMSS)
	l.pa.InjectMeta(f, m)
	l.run()
	if out := l.pb.Take(); len(out) != 0 {
		t.Fatalf("flow without a session: %d frames passed", len(out))
	}
	if n := l.r.Counters()[CntGSOSegmented]; n != 0 {
		t.Fatalf("gso-segmented = %d: the dropped super-frame was cut", n)
	}
}
