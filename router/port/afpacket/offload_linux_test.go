package afpacket

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/packet"
	"vrouter/router/port"
)

// Root tests of Options.Offloads (super-frames and partial checksums
// through intact), fanout queues and the ring paths' large frames. Frames
// are built and checked with gopacket and nstest, not with package packet.

var (
	macA = net.HardwareAddr{2, 0, 0, 0, 0, 0xa}
	macB = net.HardwareAddr{2, 0, 0, 0, 0, 0xb}
)

// pseudoSum stores the folded IPv4 pseudo-header sum (the partial checksum
// a CHECKSUM_PARTIAL frame carries) in the L4 checksum field of f.
func pseudoSum(f []byte, l3 int, proto layers.IPProtocol, csumOff int) {
	ip := f[l3:]
	ihl := int(ip[0]&0xf) * 4
	l4len := int(binary.BigEndian.Uint16(ip[2:4])) - ihl
	var s uint32
	for i := 12; i < 20; i += 2 {
		s += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	s += uint32(proto) + uint32(l4len)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	binary.BigEndian.PutUint16(ip[ihl+csumOff:], uint16(s))
}

// superTCP builds an IPv4 TCP frame (tagged with vid when vid > 0) carrying
// payload, with a partial checksum.
func superTCP(t testing.TB, vid uint16, payload []byte, seq uint32) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: 500, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP,
		SrcIP: net.IP{10, 1, 0, 1}, DstIP: net.IP{10, 1, 0, 2}}
	tc := &layers.TCP{SrcPort: 40000, DstPort: 5201, Seq: seq, Ack: 7, ACK: true, PSH: true, Window: 1000}
	tc.SetNetworkLayerForChecksum(ip)
	ls := []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}}
	l3 := 14
	if vid > 0 {
		ls = []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: vid, Type: layers.EthernetTypeIPv4}}
		l3 = 18
	}
	f := serialize(t, append(ls, ip, tc, gopacket.Payload(payload))...)
	pseudoSum(f, l3, layers.IPProtocolTCP, 16)
	return f
}

// superUDP builds an IPv4 UDP frame carrying payload with a partial checksum.
func superUDP(t testing.TB, dstMAC net.HardwareAddr, src, dst net.IP, dport uint16, payload []byte) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src, DstIP: dst}
	u := &layers.UDP{SrcPort: 4000, DstPort: layers.UDPPort(dport)}
	u.SetNetworkLayerForChecksum(ip)
	f := serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}, ip, u, gopacket.Payload(payload))
	f = f[:14+20+8+len(payload)] // no Ethernet padding
	pseudoSum(f, 14, layers.IPProtocolUDP, 6)
	return f
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i/997)
	}
	return b
}

// TestRxSuperFramesIntact: a TCP stream from the peer namespace with TSO on
// reaches a port with Options.Offloads as super-frames, one frame each,
// with metadata that completes to a valid checksum. (Tagged super-frames:
// TestOffloadsRoundTrip; this kernel has no 8021q module for a VLAN
// device in the peer namespace.)
func TestRxSuperFramesIntact(t *testing.T) {
	forModes(t, func(t *testing.T, m RxMode) {
		p := testRxIntact(t, Options{Rx: m, Offloads: true})
		if m == RxRing && len(p.ring.big) == 0 {
			t.Fatal("2 KB slots: no super-frame came through the socket queue")
		}
	})
	// Slots that hold a super-frame: they arrive in the ring, none through
	// the socket queue.
	t.Run("ring-super", func(t *testing.T) {
		p := testRxIntact(t, Options{Rx: RxRing, Offloads: true, RingFrameSize: SuperFrameSize})
		if len(p.ring.big) != 0 {
			t.Fatal("super-frames were copied out of the socket queue, not read from the ring")
		}
	})
}

type seenFrame struct {
	f []byte
	m packet.VnetHdr
}

func testRxIntact(t *testing.T, opts Options) *Port {
	l := newLab(t)
	p := openIn(t, l.b, "lan", "vb", opts)
	if !p.Offloads() {
		t.Fatal("Offloads() false with Options.Offloads")
	}
	sh(t, "ip", "-n", l.nameA, "addr", "add", "192.0.2.1/24", "dev", "va")
	sh(t, "ip", "-n", l.nameB, "addr", "add", "192.0.2.2/24", "dev", "vb")
	l.waitUp(t)
	const total = 2 << 20

	var mu sync.Mutex
	var seen []seenFrame
	payload := 0
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		b := port.NewBatch(port.DefaultBatch)
		for {
			n, err := p.ReadBatch(b)
			if err != nil {
				return
			}
			mu.Lock()
			for i := 0; i < n; i++ {
				pkt := gopacket.NewPacket(b.Frame(i), layers.LayerTypeEthernet, gopacket.Default)
				ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				tc, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
				if ip == nil || tc == nil || !ip.SrcIP.Equal(net.IP{192, 0, 2, 1}) {
					continue
				}
				payload += len(tc.Payload)
				seen = append(seen, seenFrame{append([]byte(nil), b.Frame(i)...), b.Meta[i]})
			}
			mu.Unlock()
		}
	}()
	tcpTransfer(t, l, total)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		s := payload
		mu.Unlock()
		if s >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := p.Stats()
	p.Close()
	<-readDone

	const l4off = 34
	supers, partial := 0, 0
	for i, s := range seen {
		pkt := gopacket.NewPacket(s.f, layers.LayerTypeEthernet, gopacket.Default)
		ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tc := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !csumOK(nil, ip.Contents) || int(ip.Length) != len(ip.Contents)+len(ip.Payload) {
			t.Fatalf("frame %d: IP header", i)
		}
		mt := s.m
		if g := mt.GSOType &^ packet.GSOECNBit; g != packet.GSONone {
			supers++
			if g != packet.GSOTCPv4 || int(mt.CsumStart) != l4off || mt.CsumOffset != 16 || mt.Flags != packet.VnetNeedsCsum ||
				int(mt.HdrLen) != l4off+len(tc.Contents) || mt.GSOSize < 500 || mt.GSOSize > 1460 || len(tc.Payload) <= int(mt.GSOSize) {
				t.Fatalf("super-frame %d (%d bytes, payload %d): metadata %+v", i, len(s.f), len(tc.Payload), mt)
			}
		} else if mt != (packet.VnetHdr{}) {
			partial++
			if mt.Flags != packet.VnetNeedsCsum || int(mt.CsumStart) != l4off || mt.CsumOffset != 16 || mt.GSOSize != 0 {
				t.Fatalf("frame %d: metadata %+v", i, mt)
			}
		}
		if len(s.f) > l4off-20+1500 && mt.GSOType == packet.GSONone {
			t.Fatalf("frame %d: %d bytes without GSO metadata", i, len(s.f))
		}
		// Finish the partial checksum as the kernel or a NIC would; the
		// result must be the segment's (or super-frame's) valid checksum.
		c := append([]byte(nil), s.f...)
		if mt.Flags&packet.VnetNeedsCsum != 0 {
			end := l4off - 20 + int(ip.Length)
			if !packet.CompleteChecksum(c[:end], int(mt.CsumStart), int(mt.CsumOffset)) {
				t.Fatalf("frame %d: offsets", i)
			}
		}
		cp := gopacket.NewPacket(c, layers.LayerTypeEthernet, gopacket.Default)
		cip := cp.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !l4OK(cip, cip.Payload) {
			t.Fatalf("frame %d (%d bytes, meta %+v): TCP checksum not valid once completed", i, len(s.f), mt)
		}
	}
	t.Logf("%d frames, %d super-frames, %d partial; stats %+v", len(seen), supers, partial, st)
	if supers == 0 {
		t.Fatal("no super-frame came through intact")
	}
	if st.RxGSO != 0 || st.RxCsum != 0 {
		t.Fatalf("the port segmented or completed in software: %+v", st)
	}
	if d := p.Drops(); d.Truncated+d.BadVnetHdr+d.GSOUnsupported+d.TooBig+d.BadCsumOffsets+d.RingBadFrame != 0 {
		t.Fatalf("drops %+v", d)
	}
	if payload < total && p.Drops().Kernel == 0 {
		t.Fatalf("saw %d of %d payload bytes without a counted drop", payload, total)
	}
	var intact uint64
	for _, v := range p.Counters() {
		if v.Name == "gso-intact" {
			intact = v.Value
		}
	}
	if intact < uint64(supers) {
		t.Fatalf("gso-intact %d, %d super-frames seen", intact, supers)
	}
	return p
}

// tcpTransfer sends total bytes over TCP from 192.0.2.1 in ns A to a
// listener on 192.0.2.2 in ns B.
func tcpTransfer(t *testing.T, l *lab, total int) {
	t.Helper()
	var ln net.Listener
	var err error
	inNS(t, l.b, func() { ln, err = net.Listen("tcp4", "192.0.2.2:5001") })
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	recvd := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			recvd <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		recvd <- n
	}()
	var c net.Conn
	inNS(t, l.a, func() { c, err = net.Dial("tcp4", "192.0.2.2:5001") })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, total)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if n := <-recvd; n != int64(total) {
		t.Fatalf("listener got %d bytes", n)
	}
}

// TestTxOffloads: super-frames (TCP, TCP over a VLAN, UDP) and a partial
// checksum written with their metadata to a veth whose segmentation and
// checksum offloads are off: the kernel cuts and finishes them in software,
// and the port on the other end reads wire-sized frames with valid
// checksums (nothing left for it to complete).
func TestTxOffloads(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep-qdisc=%v", keep), func(t *testing.T) { testTxOffloads(t, keep) })
	}
}

func testTxOffloads(t *testing.T, keepQdisc bool) {
	l := newLab(t)
	pa := openIn(t, l.a, "a", "va", Options{Offloads: true, KeepQdisc: keepQdisc})
	sh(t, "ip", "netns", "exec", l.nameA, "ethtool", "-K", "va", "tso", "off", "gso", "off", "tx", "off")
	pb := openIn(t, l.b, "b", "vb", Options{})
	l.waitUp(t)

	tcpPay := pattern(10000, 'T')
	vlanPay := pattern(7000, 'V')
	udpPay := pattern(3500, 'U')
	frames := [][]byte{
		superTCP(t, 0, tcpPay, 1000),
		superTCP(t, 7, vlanPay, 90000),
		superUDP(t, macB, net.IP{10, 1, 0, 1}, net.IP{10, 1, 0, 2}, 7001, udpPay),
		superUDP(t, macB, net.IP{10, 1, 0, 1}, net.IP{10, 1, 0, 2}, 7002, []byte("partial checksum")),
		udpFrame(t, nil, layers.EthernetTypeIPv4, "plain"),
	}
	meta := []packet.VnetHdr{
		{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv4, HdrLen: 54, GSOSize: 1448, CsumStart: 34, CsumOffset: 16},
		{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv4, HdrLen: 58, GSOSize: 1000, CsumStart: 38, CsumOffset: 16},
		{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOUDPL4, HdrLen: 42, GSOSize: 1200, CsumStart: 34, CsumOffset: 6},
		{Flags: packet.VnetNeedsCsum, CsumStart: 34, CsumOffset: 6},
		{},
	}
	if n, err := pa.WriteBatch(frames, meta); n != len(frames) || err != nil {
		t.Fatalf("WriteBatch: %d %v (stats %+v)", n, err, pa.Stats())
	}
	const want = 7 + 7 + 3 + 1 + 1
	got := readN(t, pb, want, 3*time.Second)
	var tcpRe, vlanRe, udpRe []byte
	var tcpSegs, vlanSegs, udpSegs, partial, plain int
	for i, f := range got {
		pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if ip == nil || !csumOK(nil, ip.Contents) || !l4OK(ip, ip.Payload) || int(ip.Length) != len(ip.Contents)+len(ip.Payload) {
			t.Fatalf("frame %d: bad IPv4 or checksum: %v", i, pkt)
		}
		q, _ := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
		switch {
		case pkt.Layer(layers.LayerTypeTCP) != nil && q != nil:
			tc := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if q.VLANIdentifier != 7 || tc.Seq != 90000+uint32(len(vlanRe)) || (len(tc.Payload) != 1000 && vlanSegs != 6) {
				t.Fatalf("VLAN TCP segment %d: vid %d seq %d len %d", vlanSegs, q.VLANIdentifier, tc.Seq, len(tc.Payload))
			}
			vlanRe = append(vlanRe, tc.Payload...)
			vlanSegs++
		case pkt.Layer(layers.LayerTypeTCP) != nil:
			tc := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if tc.Seq != 1000+uint32(len(tcpRe)) || (len(tc.Payload) != 1448 && tcpSegs != 6) || len(f) > 14+1500 {
				t.Fatalf("TCP segment %d: seq %d len %d", tcpSegs, tc.Seq, len(tc.Payload))
			}
			tcpRe = append(tcpRe, tc.Payload...)
			tcpSegs++
		case pkt.Layer(layers.LayerTypeUDP) != nil:
			u := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
			switch u.DstPort {
			case 7001:
				if len(u.Payload) != 1200 && udpSegs != 2 {
					t.Fatalf("UDP datagram %d: %d bytes", udpSegs, len(u.Payload))
				}
				udpRe = append(udpRe, u.Payload...)
				udpSegs++
			case 7002:
				partial++
			default:
				plain++
			}
		}
	}
	if !bytes.Equal(tcpRe, tcpPay) || !bytes.Equal(vlanRe, vlanPay) || !bytes.Equal(udpRe, udpPay) || partial != 1 || plain != 1 {
		t.Fatalf("reassembled: tcp %v vlan %v udp %v, partial %d plain %d", bytes.Equal(tcpRe, tcpPay), bytes.Equal(vlanRe, vlanPay), bytes.Equal(udpRe, udpPay), partial, plain)
	}
	if st := pb.Stats(); st.RxGSO != 0 || st.RxCsum != 0 {
		t.Fatalf("the receiver had to finish frames: %+v", st)
	}
	c := map[string]uint64{}
	for _, v := range pa.Counters() {
		c[v.Name] = v.Value
	}
	// With the qdisc bypassed the kernel cannot segment in software: the
	// port sends the super-frames through the qdisc instead.
	viaQdisc := uint64(3)
	if keepQdisc {
		viaQdisc = 0
	}
	if c["tx-gso"] != 3 || c["tx-csum-partial"] != 1 || c["tx-no-vnet"] != 0 || c["tx-gso-via-qdisc"] != viaQdisc {
		t.Fatalf("tx counters %v", c)
	}
	if st := pa.Stats(); st.TxPackets != 5 || st.TxErrors != 0 {
		t.Fatalf("tx stats %+v", st)
	}
	// Steady state, the resend through the qdisc included.
	if a := testing.AllocsPerRun(50, func() {
		if n, err := pa.WriteBatch(frames[:1], meta[:1]); n != 1 || err != nil {
			t.Fatalf("WriteBatch %d %v", n, err)
		}
	}); a != 0 {
		t.Fatalf("%v allocations per WriteBatch", a)
	}
}

// TestTxGSOToSocket: a UDP super-frame written with GSO metadata crosses
// the veth in one piece and the peer's stack hands its datagrams to a
// socket.
func TestTxGSOToSocket(t *testing.T) {
	l := newLab(t)
	pa := openIn(t, l.a, "a", "va", Options{Offloads: true})
	sh(t, "ip", "-n", l.nameB, "addr", "add", "192.0.2.2/24", "dev", "vb")
	sh(t, "ip", "-n", l.nameB, "link", "set", "vb", "up")
	l.waitUp(t)
	var conn *net.UDPConn
	var vbMAC net.HardwareAddr
	var err error
	inNS(t, l.b, func() {
		var ifi *net.Interface
		if ifi, err = net.InterfaceByName("vb"); err != nil {
			return
		}
		vbMAC = ifi.HardwareAddr
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IP{192, 0, 2, 2}, Port: 9000})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	payload := pattern(5000, 'a')
	for i := range payload {
		payload[i] = byte('a' + i/1000)
	}
	f := superUDP(t, vbMAC, net.IP{192, 0, 2, 1}, net.IP{192, 0, 2, 2}, 9000, payload)
	m := packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOUDPL4, HdrLen: 42, GSOSize: 1000, CsumStart: 34, CsumOffset: 6}
	if n, err := pa.WriteBatch([][]byte{f}, []packet.VnetHdr{m}); n != 1 || err != nil {
		t.Fatalf("WriteBatch %d %v", n, err)
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 65536)
	for i := 0; i < 5; i++ {
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if n != 1000 || buf[0] != byte('a'+i) || buf[999] != byte('a'+i) || from.Port != 4000 {
			t.Fatalf("datagram %d: %d bytes %q... from %v", i, n, buf[:4], from)
		}
	}
}

// TestOffloadsRoundTrip: super-frames (one tagged), partial checksums and a
// tagged plain frame with metadata, written and read on ports with offloads
// across a veth with its offloads on: every frame arrives as it was sent,
// the tag the kernel strips put back and the tagged super-frame's CsumStart
// and HdrLen counted with it; no allocation in steady state.
func TestOffloadsRoundTrip(t *testing.T) {
	forModes(t, func(t *testing.T, m RxMode) {
		l := newLab(t)
		pa := openIn(t, l.a, "a", "va", Options{Offloads: true})
		pb := openIn(t, l.b, "b", "vb", Options{Rx: m, Offloads: true})
		l.waitUp(t)
		frames := [][]byte{
			superTCP(t, 0, pattern(20000, 'x'), 1),
			superTCP(t, 100, pattern(30000, 'y'), 5),
			superUDP(t, macB, net.IP{10, 1, 0, 1}, net.IP{10, 1, 0, 2}, 7002, []byte("partial checksum")),
			udpFrame(t, []layers.Dot1Q{{VLANIdentifier: 7, Type: layers.EthernetTypeIPv4}}, layers.EthernetTypeDot1Q, "steady state"),
		}
		meta := []packet.VnetHdr{
			{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv4, HdrLen: 54, GSOSize: 1448, CsumStart: 34, CsumOffset: 16},
			{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv4, HdrLen: 58, GSOSize: 1400, CsumStart: 38, CsumOffset: 16},
			{Flags: packet.VnetNeedsCsum, CsumStart: 34, CsumOffset: 6},
			{},
		}
		b := port.NewBatch(port.DefaultBatch)
		var got []packet.VnetHdr
		var same []bool
		round := func() {
			if n, err := pa.WriteBatch(frames, meta); n != len(frames) || err != nil {
				t.Fatalf("WriteBatch %d %v", n, err)
			}
			got, same = got[:0], same[:0]
			for len(got) < len(frames) {
				n, err := pb.ReadBatch(b)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < n; i++ {
					got = append(got, b.Meta[i])
					same = append(same, len(got) <= len(frames) && bytes.Equal(b.Frame(i), frames[len(got)-1]))
				}
			}
		}
		round()
		for i := range frames {
			if got[i] != meta[i] || !same[i] {
				t.Fatalf("frame %d: same bytes %v, meta %+v, want %+v", i, same[i], got[i], meta[i])
			}
		}
		if a := testing.AllocsPerRun(100, round); a != 0 {
			t.Fatalf("%v allocations per round", a)
		}
	})
}

// TestJumboFrames: frames larger than a TPACKET_V2 slot (a 9000-byte MTU)
// arrive whole (through the socket queue) in every receive path.
func TestJumboFrames(t *testing.T) {
	forModes(t, func(t *testing.T, m RxMode) {
		l := newLab(t)
		sh(t, "ip", "-n", l.nameA, "link", "set", "va", "mtu", "9000")
		sh(t, "ip", "-n", l.nameB, "link", "set", "vb", "mtu", "9000")
		pa := openIn(t, l.a, "a", "va", Options{})
		pb := openIn(t, l.b, "b", "vb", Options{Rx: m})
		l.waitUp(t)
		frames := [][]byte{
			udpFrame(t, nil, layers.EthernetTypeIPv4, strings.Repeat("j", 8972)),
			udpFrame(t, nil, layers.EthernetTypeIPv4, "small"),
			udpFrame(t, []layers.Dot1Q{{VLANIdentifier: 9, Type: layers.EthernetTypeIPv4}}, layers.EthernetTypeDot1Q, strings.Repeat("k", 8972)),
		}
		if n, err := pa.WriteBatch(frames, nil); n != len(frames) || err != nil {
			t.Fatalf("WriteBatch %d %v", n, err)
		}
		got := readN(t, pb, len(frames), 3*time.Second)
		for i := range frames {
			if !bytes.Equal(got[i], frames[i]) {
				t.Fatalf("frame %d: %d bytes, want %d", i, len(got[i]), len(frames[i]))
			}
		}
	})
}

// flowFrame is a UDP frame of flow sport -> 2000.
func flowFrame(t testing.TB, sport uint16) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 1, 0, 1}, DstIP: net.IP{10, 1, 0, 2}}
	u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: 2000}
	u.SetNetworkLayerForChecksum(ip)
	return serialize(t, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv4}, ip, u, gopacket.Payload("flow"))
}

// TestFanoutQueues: a port opened as two queues gets each flow on one
// queue only, and the flows spread over both.
func TestFanoutQueues(t *testing.T) {
	for _, tc := range []struct {
		m     RxMode
		group uint16
	}{{RxRing, 0}, {RxRingV3, 0x4242}, {RxMmsg, 0}} {
		t.Run(fmt.Sprintf("%v/group=%d", tc.m, tc.group), func(t *testing.T) { testFanout(t, tc.m, tc.group) })
	}
}

func testFanout(t *testing.T, m RxMode, group uint16) {
	l := newLab(t)
	pa := openIn(t, l.a, "a", "va", Options{})
	var qs []*Port
	var err error
	inNS(t, l.b, func() { qs, err = OpenQueues("b", "vb", 2, Options{Rx: m, FanoutGroup: group}) })
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		t.Cleanup(func() { q.Close() })
	}
	l.waitUp(t)
	g0, ok0 := qs[0].FanoutGroup()
	g1, ok1 := qs[1].FanoutGroup()
	if len(qs) != 2 || qs[0].Queue() != 0 || qs[1].Queue() != 1 || !ok0 || !ok1 || g0 != g1 || (group != 0 && g0 != group) {
		t.Fatalf("queues %d, groups %d %v %d %v", len(qs), g0, ok0, g1, ok1)
	}
	const flows, per = 64, 8
	var batch [][]byte
	for k := 0; k < per; k++ {
		for f := 0; f < flows; f++ {
			batch = append(batch, flowFrame(t, uint16(1000+f)))
		}
	}
	var mu sync.Mutex
	seen := map[uint16][2]int{}
	total := 0
	done := make(chan struct{})
	var wg sync.WaitGroup
	for qi, q := range qs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := port.NewBatch(port.DefaultBatch)
			for {
				n, err := q.ReadBatch(b)
				if err != nil {
					return
				}
				mu.Lock()
				for i := 0; i < n; i++ {
					pkt := gopacket.NewPacket(b.Frame(i), layers.LayerTypeEthernet, gopacket.Default)
					if u, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); ok && u.DstPort == 2000 {
						c := seen[uint16(u.SrcPort)]
						c[qi]++
						seen[uint16(u.SrcPort)] = c
						total++
						if total == flows*per {
							close(done)
						}
					}
				}
				mu.Unlock()
			}
		}()
	}
	if n, err := pa.WriteBatch(batch, nil); n != len(batch) || err != nil {
		t.Fatalf("WriteBatch %d %v", n, err)
	}
	select {
	case <-done:
	case <-time.After(3 * time.Second):
	}
	for _, q := range qs {
		q.Close()
	}
	wg.Wait()
	if total != flows*per {
		t.Fatalf("%d of %d frames", total, flows*per)
	}
	var on [2]int
	for sp, c := range seen {
		if c[0] != 0 && c[1] != 0 {
			t.Fatalf("flow %d on both queues: %v", sp, c)
		}
		if c[0] != 0 {
			on[0]++
		} else {
			on[1]++
		}
	}
	if on[0] == 0 || on[1] == 0 {
		t.Fatalf("flows per queue %v", on)
	}
	t.Logf("flows per queue %v", on)
	if st0, st1 := qs[0].Stats(), qs[1].Stats(); st0.RxPackets < flows*per || st0.RxPackets != st1.RxPackets {
		t.Fatalf("shared stats %d %d", st0.RxPackets, st1.RxPackets)
	}
}

// TestTxNoVnet: a socket without the virtio_net_hdr refuses frames with
// offload metadata (counted) and sends the others.
func TestTxNoVnet(t *testing.T) {
	l := newLab(t)
	pa := openIn(t, l.a, "a", "va", Options{NoVnetHdr: true, Offloads: true})
	pb := openIn(t, l.b, "b", "vb", Options{})
	l.waitUp(t)
	if pa.Offloads() {
		t.Fatal("Offloads() true without the virtio_net_hdr")
	}
	plain := udpFrame(t, nil, layers.EthernetTypeIPv4, "plain")
	partial := superUDP(t, macB, net.IP{10, 1, 0, 1}, net.IP{10, 1, 0, 2}, 7002, []byte("partial"))
	n, err := pa.WriteBatch([][]byte{partial, plain}, []packet.VnetHdr{{Flags: packet.VnetNeedsCsum, CsumStart: 34, CsumOffset: 6}, {}})
	if n != 1 || err != nil {
		t.Fatalf("WriteBatch %d %v", n, err)
	}
	if got := readN(t, pb, 1, 3*time.Second); !bytes.Equal(got[0], plain) {
		t.Fatal("wrong frame")
	}
	if d, st := pa.Drops(), pa.Stats(); d.TxNoVnet != 1 || st.TxErrors != 1 {
		t.Fatalf("drops %+v stats %+v", d, st)
	}
}
