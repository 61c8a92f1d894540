package router

import (
	"encoding/binary"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/internal/nstest"
	"vrouter/packet"
)

const testMSS = 1000

// superFrame is a TCP GSO super-frame from host A to host B as a veth with
// TSO hands it over: payload bytes in segments of testMSS, the TCP checksum
// field holding only the pseudo-header sum, and its virtio-net metadata.
func superFrame(t testing.TB, payload int) ([]byte, packet.VnetHdr) {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP,
		SrcIP: ipHostA, DstIP: ipHostB, Id: 100}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 1000, Ack: 1, ACK: true, PSH: true, Window: 500}
	tcp.SetNetworkLayerForChecksum(ip)
	data := make([]byte, payload)
	for i := range data {
		data[i] = byte(i * 7)
	}
	f := ser(t, &layers.Ethernet{SrcMAC: hostA, DstMAC: macA[:], EthernetType: layers.EthernetTypeIPv4}, ip, tcp, gopacket.Payload(data))
	// Replace the full checksum by the pseudo-header sum (CHECKSUM_PARTIAL).
	l4 := f[14+20:]
	var ps [12]byte
	copy(ps[0:8], f[14+12:14+20])
	ps[9] = packet.ProtoTCP
	binary.BigEndian.PutUint16(ps[10:], uint16(len(l4)))
	binary.BigEndian.PutUint16(l4[16:], packet.Fold(packet.Sum(ps[:], 0)))
	return f, packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv4, HdrLen: 14 + 20 + 20,
		GSOSize: testMSS, CsumStart: 14 + 20, CsumOffset: 16}
}

// offloadLab is the SNAT pipeline lab with offloads on port a (and on b
// when both), and the TCP session of superFrame's flow opened by a SYN.
func offloadLab(t testing.TB, both bool) *lab {
	l := natLab(t)
	l.pa.SetOffloads(true)
	l.r.ports[0].offloads = true
	if both {
		l.pb.SetOffloads(true)
		l.r.ports[1].offloads = true
	}
	l.pa.Inject(tcpSYN(t, 40000, 80))
	l.run()
	l.pa.Take()
	if out := l.pb.Take(); len(out) != 1 {
		t.Fatalf("SYN: %d frames out", len(out))
	}
	return l
}

// A super-frame between two ports that take offloads is routed and
// SNATed as one packet and leaves whole, its metadata following the headers.
func TestSuperFrameThroughIntact(t *testing.T) {
	l := offloadLab(t, true)
	f, m := superFrame(t, 3*testMSS+500)
	l.pa.InjectMeta(f, m)
	l.run()
	out, meta := l.pb.TakeMeta()
	if len(out) != 1 {
		t.Fatalf("%d frames out, want the super-frame as one", len(out))
	}
	if want := (packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv4, HdrLen: m.HdrLen, GSOSize: testMSS,
		CsumStart: 14 + 20, CsumOffset: 16}); meta[0] != want {
		t.Fatalf("metadata %+v, want %+v", meta[0], want)
	}
	g := append([]byte(nil), out[0]...)
	if !packet.CompleteChecksum(g, int(meta[0].CsumStart), int(meta[0].CsumOffset)) {
		t.Fatal("cannot complete the checksum")
	}
	p := decode(g)
	ip := checkIPChecksum(t, p)
	if ip.SrcIP.String() != "198.51.100.1" || ip.TTL != 63 || int(ip.Length) != len(f)-14 {
		t.Fatalf("out: src %v ttl %d len %d", ip.SrcIP, ip.TTL, ip.Length)
	}
	if !nstest.L4ChecksumOK(ip, ip.Payload) {
		t.Fatal("TCP checksum wrong once completed")
	}
	if n := l.r.Counters()[CntGSOForwarded]; n != 1 {
		t.Fatalf("gso-forwarded = %d, want 1", n)
	}
}

// A port without offloads gets the super-frame as segments of the GSO size,
// each a complete packet with its own checksums and sequence number.
func TestSuperFrameSegmentedForPlainPort(t *testing.T) {
	l := offloadLab(t, false)
	f, m := superFrame(t, 3*testMSS+500)
	l.pa.InjectMeta(f, m)
	l.run()
	out := l.pb.Take()
	if len(out) != 4 {
		t.Fatalf("%d frames out, want 4 segments", len(out))
	}
	seq := uint32(1000)
	for i, fr := range out {
		p := decode(fr)
		ip := checkIPChecksum(t, p)
		tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		want := testMSS
		if i == 3 {
			want = 500
		}
		if ip.SrcIP.String() != "198.51.100.1" || len(tcp.Payload) != want || tcp.Seq != seq || !nstest.L4ChecksumOK(ip, ip.Payload) {
			t.Fatalf("segment %d: src %v payload %d seq %d checksum ok %v", i, ip.SrcIP, len(tcp.Payload), tcp.Seq, nstest.L4ChecksumOK(ip, ip.Payload))
		}
		if tcp.PSH != (i == 3) {
			t.Fatalf("segment %d: PSH %v", i, tcp.PSH)
		}
		seq += uint32(want)
	}
	if n := l.r.Counters()[CntGSOSegmented]; n != 1 {
		t.Fatalf("gso-segmented = %d, want 1", n)
	}
}

// Segments larger than the egress MTU with DF set: fragmentation needed,
// answered with the egress MTU (as the kernel does for forwarded GSO).
func TestSuperFrameSegmentsTooBig(t *testing.T) {
	l := offloadLab(t, false) // network b has MTU 1400
	f, m := superFrame(t, 3000)
	m.GSOSize = 1448 // 1448 + 40 > 1400
	l.pa.InjectMeta(f, m)
	l.run()
	if out := l.pb.Take(); len(out) != 0 {
		t.Fatalf("%d frames left on b", len(out))
	}
	_, ic := expectICMP(t, l.pa.Take(), 3, 4)
	if ic.Seq != 1400 {
		t.Fatalf("next-hop MTU %d, want 1400", ic.Seq)
	}
}

// A partial checksum on a packet to a port without offloads is completed.
func TestPartialChecksumCompleted(t *testing.T) {
	l := offloadLab(t, false)
	f, m := superFrame(t, 300)
	m.GSOType, m.GSOSize = packet.GSONone, 0
	l.pa.InjectMeta(f, m)
	l.run()
	out := l.pb.Take()
	if len(out) != 1 {
		t.Fatalf("%d frames out, want 1", len(out))
	}
	ip := checkIPChecksum(t, decode(out[0]))
	if ip.SrcIP.String() != "198.51.100.1" || !nstest.L4ChecksumOK(ip, ip.Payload) {
		t.Fatalf("src %v, checksum ok %v", ip.SrcIP, nstest.L4ChecksumOK(ip, ip.Payload))
	}
}

// Forwarding super-frames intact does not allocate.
func TestZeroAllocSuperFrames(t *testing.T) {
	l := offloadLab(t, true)
	l.pb.SetSink(true)
	f, m := superFrame(t, 20*testMSS)
	w := l.r.workers[0]
	b := w.rx
	allocs := testing.AllocsPerRun(50, func() {
		for i := 0; i < 8; i++ {
			b.Off[i] = 64
			b.Len[i] = copy(b.Bufs[i][64:], f)
			b.Meta[i] = m
		}
		b.N, b.HasMeta = 8, true
		w.processBatch(l.r.ports[0], b)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch of super-frames", allocs)
	}
	if n := l.r.Counters()[CntGSOForwarded]; n < 8*50 {
		t.Fatalf("gso-forwarded = %d", n)
	}
}
