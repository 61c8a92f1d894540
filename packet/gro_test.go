package packet

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// segmentsOf cuts a gopacket-built super-frame into its wire segments
// (valid checksums, IDs and sequence numbers counting up), the shape a
// Linux sender gives its segments.
func segmentsOf(t *testing.T, s superSpec, id uint16, seq uint32, flags uint8, payload []byte, mss int) [][]byte {
	t.Helper()
	super := buildFrame(t, s, id, seq, flags, payload)
	l3 := l3of(s)
	n := GSOSegmentsV4(super, l3, ProtoTCP, mss)
	var segs [][]byte
	for i := 0; i < n; i++ {
		dst := make([]byte, 9216)
		m := SegmentV4(dst, super, l3, ProtoTCP, mss, i)
		if m == 0 {
			t.Fatalf("segment %d refused", i)
		}
		segs = append(segs, dst[:m])
	}
	return segs
}

// coalesce runs segs through one TCPCoalescer and returns how many joined
// and the result.
func coalesce(t *testing.T, segs [][]byte, l3 int) (int, []byte, VnetHdr, bool) {
	t.Helper()
	var c TCPCoalescer
	if !c.Start(make([]byte, MaxCoalesced), segs[0], l3) {
		return 0, nil, VnetHdr{}, false
	}
	n := 1
	for _, s := range segs[1:] {
		if !c.Append(s) {
			break
		}
		n++
	}
	if c.Segments() != n {
		t.Fatalf("Segments %d, joined %d", c.Segments(), n)
	}
	f, m, ok := c.Finish()
	return n, f, m, ok
}

// TestCoalesceRoundTrip: segments coalesced into a super-frame and cut again
// (SegmentV4, as the kernel's segmenter would) are the original segments
// byte for byte, and the partial checksum completes to a valid one.
func TestCoalesceRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for _, c := range []struct {
		s     superSpec
		flags uint8
		size  int
		mss   int
	}{
		{superSpec{}, 0, 1448 * 10, 1448},
		{superSpec{}, TCPPsh, 1448*10 + 100, 1448},
		{superSpec{vlan: true, tcpOpts: true}, TCPPsh, 1436 * 7, 1436},
		{superSpec{tcpOpts: true}, 0x40, 500*30 + 1, 500}, // ECE on every segment
		{superSpec{}, 0, 1448 * 45, 1448},                 // 65160 bytes: all in one
	} {
		payload := make([]byte, c.size)
		rng.Read(payload)
		segs := segmentsOf(t, c.s, 4000, 0xfffff000, c.flags, payload, c.mss)
		l3 := l3of(c.s)
		n, f, m, ok := coalesce(t, segs, l3)
		if !ok || n != len(segs) {
			t.Fatalf("%+v: %d of %d joined (ok %v)", c, n, len(segs), ok)
		}
		if m.GSOType != GSOTCPv4 || int(m.GSOSize) != c.mss || m.Flags != VnetNeedsCsum ||
			int(m.CsumStart) != l3+IPv4MinLen || m.CsumOffset != TCPChecksumOff {
			t.Fatalf("%+v: header %+v", c, m)
		}
		if ip := f[l3 : l3+IPv4MinLen]; naiveSum(ip) != 0xffff {
			t.Fatalf("%+v: IP header checksum", c)
		}
		if n := GSOSegmentsV4(f, l3, ProtoTCP, int(m.GSOSize)); n != len(segs) {
			t.Fatalf("%+v: %d segments back, want %d", c, n, len(segs))
		}
		dst := make([]byte, 9216)
		for i, want := range segs {
			k := SegmentV4(dst, f, l3, ProtoTCP, int(m.GSOSize), i)
			if !bytes.Equal(dst[:k], want) {
				t.Fatalf("%+v: segment %d differs\n got %x\nwant %x", c, i, dst[:min(k, 80)], want[:min(len(want), 80)])
			}
		}
		full := append([]byte(nil), f...)
		if !CompleteChecksum(full, int(m.CsumStart), int(m.CsumOffset)) {
			t.Fatal("CompleteChecksum refused")
		}
		l4 := full[m.CsumStart:]
		if s := naiveSum(append(pseudo(ipA.To4(), ipB.To4(), ProtoTCP, len(l4)), l4...)); s != 0xffff {
			t.Fatalf("%+v: completed checksum sums to %04x", c, s)
		}
	}
}

// TestCoalesceRefuses: what may not join a super-frame does not, and what
// ends one ends it.
func TestCoalesceRefuses(t *testing.T) {
	base := func() [][]byte {
		return segmentsOf(t, superSpec{tcpOpts: true}, 100, 5000, 0, make([]byte, 1000*4), 1000)
	}
	const l3 = 14
	fix := func(f []byte) { // checksums after a test's change (they are not compared, but keep frames honest)
		ip := IPv4(f[l3:])
		ip.ComputeChecksum()
		tc := TCP(f[l3+IPv4MinLen : l3+ip.TotalLen()])
		tc.SetChecksum(0)
		tc.SetChecksum(L4Checksum(ip.Src(), ip.Dst(), ProtoTCP, tc))
	}
	cases := []struct {
		name   string
		change func(s [][]byte) [][]byte
		joined int // segments in the super-frame (0: Start refuses the first)
	}{
		{"all four", func(s [][]byte) [][]byte { return s }, 4},
		{"sequence gap", func(s [][]byte) [][]byte { TCP(s[2][l3+20:]).SetSeq(TCP(s[2][l3+20:]).Seq() + 1); return s }, 2},
		{"IP ID not next", func(s [][]byte) [][]byte { IPv4(s[1][l3:]).SetID(7); return s }, 1},
		{"TTL differs", func(s [][]byte) [][]byte { s[1][l3+IPv4TTLOff]--; return s }, 1},
		{"TOS differs", func(s [][]byte) [][]byte { s[1][l3+IPv4TOSOff] = 0; return s }, 1},
		{"DF differs", func(s [][]byte) [][]byte { s[3][l3+IPv4FlagsFragOff] = 0; return s }, 3},
		{"MAC differs", func(s [][]byte) [][]byte { s[1][0] ^= 1; return s }, 1},
		{"port differs", func(s [][]byte) [][]byte { TCP(s[1][l3+20:]).SetDstPort(1); return s }, 1},
		{"ack differs", func(s [][]byte) [][]byte { binary.BigEndian.PutUint32(s[1][l3+20+TCPAckOff:], 1); return s }, 1},
		{"window differs", func(s [][]byte) [][]byte { s[2][l3+20+TCPWindowOff]++; return s }, 2},
		{"timestamp differs", func(s [][]byte) [][]byte { s[1][l3+20+TCPMinLen+5]++; return s }, 1},
		{"FIN", func(s [][]byte) [][]byte { s[1][l3+20+TCPFlagsOff] |= TCPFin; return s }, 1},
		{"CWR", func(s [][]byte) [][]byte { s[1][l3+20+TCPFlagsOff] |= 0x80; return s }, 1},
		{"URG", func(s [][]byte) [][]byte { s[2][l3+20+TCPFlagsOff] |= TCPUrg; return s }, 2},
		{"RST first", func(s [][]byte) [][]byte { s[0][l3+20+TCPFlagsOff] |= TCPRst; return s }, 0},
		{"PSH first", func(s [][]byte) [][]byte { s[0][l3+20+TCPFlagsOff] |= TCPPsh; return s }, 0},
		{"PSH closes", func(s [][]byte) [][]byte { s[1][l3+20+TCPFlagsOff] |= TCPPsh; return s }, 2},
		{"fragment first", func(s [][]byte) [][]byte { s[0][l3+IPv4FlagsFragOff] |= 0x20; return s }, 0},
		{"short closes", func(s [][]byte) [][]byte {
			short := s[1][:len(s[1])-10]
			IPv4(short[l3:]).SetTotalLen(len(short) - l3)
			s[1] = short
			return s
		}, 2},
		{"longer than the first", func(s [][]byte) [][]byte {
			long := append(append([]byte(nil), s[1]...), 1, 2, 3)
			IPv4(long[l3:]).SetTotalLen(len(long) - l3)
			s[1] = long
			return s
		}, 1},
		{"no payload", func(s [][]byte) [][]byte { s[0] = s[0][:l3+20+32]; IPv4(s[0][l3:]).SetTotalLen(52); return s }, 0},
		{"frame shorter than its IP length", func(s [][]byte) [][]byte { s[1] = s[1][:len(s[1])-1]; return s }, 1},
	}
	for _, c := range cases {
		segs := c.change(base())
		for _, s := range segs {
			if len(s) >= l3+IPv4MinLen && IPv4(s[l3:]).TotalLen() <= len(s)-l3 {
				fix(s)
			}
		}
		n, _, _, _ := coalesce(t, segs, l3)
		if n != c.joined {
			t.Errorf("%s: %d joined, want %d", c.name, n, c.joined)
		}
	}
}

// TestCoalesceLimit: a super-frame stops below 64 KB of IP packet, and
// the segment that would not fit starts the next one.
func TestCoalesceLimit(t *testing.T) {
	segs := segmentsOf(t, superSpec{}, 1, 1, 0, make([]byte, 1448*40), 1448)
	segs = append(segs, segmentsOf(t, superSpec{}, 41, 1+1448*40, 0, make([]byte, 1448*20), 1448)...)
	n, f, _, ok := coalesce(t, segs, 14)
	if !ok || len(f)-14 > 0xffff || n != (0xffff-40)/1448 {
		t.Fatalf("%d joined, IP length %d", n, len(f)-14)
	}
	var c TCPCoalescer
	if !c.Start(make([]byte, MaxCoalesced), segs[n], 14) || !c.Append(segs[n+1]) {
		t.Fatal("the next super-frame does not start with the segment left out")
	}
	if c.Start(make([]byte, 100), segs[0], 14) {
		t.Fatal("Start took a segment larger than the buffer")
	}
}

func TestCoalesceNoAlloc(t *testing.T) {
	segs := segmentsOf(t, superSpec{}, 1, 1, 0, make([]byte, 1448*40), 1448)
	buf := make([]byte, MaxCoalesced)
	var c TCPCoalescer
	a := testing.AllocsPerRun(50, func() {
		c.Start(buf, segs[0], 14)
		for _, s := range segs[1:] {
			c.Append(s)
		}
		c.Finish()
	})
	if a != 0 {
		t.Fatalf("%v allocations", a)
	}
}

func BenchmarkCoalesce(b *testing.B) {
	t := &testing.T{}
	segs := segmentsOf(t, superSpec{tcpOpts: true}, 1, 1, 0, make([]byte, 1448*40), 1448)
	buf := make([]byte, MaxCoalesced)
	var c TCPCoalescer
	b.SetBytes(1448 * 40)
	for b.Loop() {
		c.Start(buf, segs[0], 14)
		for _, s := range segs[1:] {
			c.Append(s)
		}
		c.Finish()
	}
}

// TestCoalesceTCPv6: IPv6 segments coalesce into a TCPv6 super-frame that
// cuts back into them byte for byte; an extension header, another flow
// label or hop limit keeps a segment out.
func TestCoalesceTCPv6(t *testing.T) {
	payload := make([]byte, 1400*6+77)
	rand.New(rand.NewSource(3)).Read(payload)
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolTCP, HopLimit: 64, FlowLabel: 0x12345, TrafficClass: 0x10,
		SrcIP: net.IP(v6a[:]), DstIP: net.IP(v6b[:])}
	tcp := &layers.TCP{SrcPort: 1000, DstPort: 2000, Seq: 7, Ack: 5, ACK: true, PSH: true, Window: 100,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{1, 2, 3, 4, 5, 6, 7, 8}}}}
	tcp.SetNetworkLayerForChecksum(ip)
	super := serialize6(t, eth, ip, tcp, gopacket.Payload(payload))
	const mss = 1400
	n := GSOSegments(super, 14, ProtoTCP, mss)
	var segs [][]byte
	for i := 0; i < n; i++ {
		dst := make([]byte, 2000)
		segs = append(segs, dst[:Segment(dst, super, 14, ProtoTCP, mss, i)])
	}
	k, f, m, ok := coalesce(t, segs, 14)
	if !ok || k != n || m.GSOType != GSOTCPv6 || m.GSOSize != mss || m.CsumStart != 14+40 || m.HdrLen != 14+40+32 {
		t.Fatalf("%d of %d joined, header %+v", k, n, m)
	}
	dst := make([]byte, 2000)
	for i, want := range segs {
		l := Segment(dst, f, 14, ProtoTCP, mss, i)
		if !bytes.Equal(dst[:l], want) {
			t.Fatalf("segment %d differs", i)
		}
	}
	full := append([]byte(nil), f...)
	CompleteChecksum(full, int(m.CsumStart), int(m.CsumOffset))
	p := gopacket.NewPacket(full, layers.LayerTypeEthernet, gopacket.Default)
	g, gip := p.Layer(layers.LayerTypeTCP).(*layers.TCP), p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	g.SetNetworkLayerForChecksum(gip)
	if err, res := g.VerifyChecksum(); err != nil || !res.Valid || !bytes.Equal(g.Payload, payload) || int(gip.Length) != len(full)-14-40 {
		t.Fatal("completed super-frame: bad checksum, payload or length")
	}
	for name, change := range map[string]func(b []byte){
		"flow label": func(b []byte) { b[14+3] ^= 1 },
		"hop limit":  func(b []byte) { b[14+7]-- },
		"ext header": func(b []byte) { b[14+6] = 60 },
	} {
		s := make([][]byte, len(segs))
		for i := range segs {
			s[i] = append([]byte(nil), segs[i]...)
		}
		change(s[1])
		if k, _, _, _ := coalesce(t, s, 14); k != 1 {
			t.Errorf("%s: %d joined, want 1", name, k)
		}
	}
}
