package afpacket

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"vrouter/packet"
	"vrouter/router/port"
)

// These tests drive deliver (the step after recvmmsg) with messages written
// into the receive arrays as the kernel would: virtio_net_hdr, frame bytes,
// PACKET_AUXDATA control message. No socket or privilege needed.

type fakeMsg struct {
	vh     packet.VnetHdr
	frame  []byte
	tci    uint16
	tpid   uint16
	tagged bool
	trunc  bool
}

func fakePort(ring int) *Port {
	p := &Port{vnet: true, rxMode: RxMmsg, c: &shared{}}
	p.c.queues = []*Port{p}
	p.initBuffers(ring, 1)
	return p
}

func (p *Port) inject(msgs ...fakeMsg) {
	for i, m := range msgs {
		buf := p.rxBufs[i]
		m.vh.Put(buf)
		n := copy(buf[packet.VnetHdrLen:], m.frame)
		p.rxMsgs[i].Len = uint32(packet.VnetHdrLen + n)
		p.rxMsgs[i].Hdr.Flags = 0
		if m.trunc {
			p.rxMsgs[i].Hdr.Flags = unix.MSG_TRUNC
		}
		ctl := p.rxCtl[i*ctlSize : (i+1)*ctlSize]
		binary.NativeEndian.PutUint64(ctl[0:], uint64(unix.SizeofCmsghdr+sizeofAuxdata))
		binary.NativeEndian.PutUint32(ctl[8:], unix.SOL_PACKET)
		binary.NativeEndian.PutUint32(ctl[12:], unix.PACKET_AUXDATA)
		d := ctl[unix.SizeofCmsghdr:]
		var st uint32 = unix.TP_STATUS_USER
		if m.tagged {
			st |= unix.TP_STATUS_VLAN_VALID | unix.TP_STATUS_VLAN_TPID_VALID
		}
		binary.NativeEndian.PutUint32(d[0:], st)
		binary.NativeEndian.PutUint16(d[16:], m.tci)
		binary.NativeEndian.PutUint16(d[18:], m.tpid)
		p.rxMsgs[i].Hdr.SetControllen(unix.CmsgSpace(sizeofAuxdata))
	}
	p.rxCount, p.rxNext = len(msgs), 0
}

func tcpSuper(t testing.TB, payload []byte, seq uint32) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: 100, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP,
		SrcIP: net.IP{192, 0, 2, 1}, DstIP: net.IP{192, 0, 2, 2}}
	tc := &layers.TCP{SrcPort: 33000, DstPort: 5201, Seq: seq, Ack: 1, ACK: true, PSH: true, Window: 500}
	tc.SetNetworkLayerForChecksum(ip)
	f := serialize(t, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		ip, tc, gopacket.Payload(payload))
	binary.BigEndian.PutUint16(f[14+20+16:], 0x1234) // partial checksum: garbage to the port
	return f
}

func TestDeliverSegmentsAcrossBatches(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	payload := make([]byte, 10000)
	rng.Read(payload)
	super := tcpSuper(t, payload, 5000)

	// A UDP frame with a partial checksum: the field holds the pseudo-header sum.
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
	u := &layers.UDP{SrcPort: 53, DstPort: 5353}
	u.SetNetworkLayerForChecksum(ip)
	udp := serialize(t, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		ip, u, gopacket.Payload("partial checksum"))
	udp = udp[:14+20+8+16] // no Ethernet padding
	wantUDP := append([]byte(nil), udp...)
	ph := []byte{10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, 24}
	var s uint32
	for i := 0; i < 12; i += 2 {
		s += uint32(ph[i])<<8 | uint32(ph[i+1])
	}
	s = s&0xffff + s>>16
	binary.BigEndian.PutUint16(udp[14+20+6:], uint16(s))

	p := fakePort(8)
	p.inject(
		fakeMsg{vh: packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv4, HdrLen: 54, GSOSize: 1448, CsumStart: 34, CsumOffset: 16},
			frame: super, tagged: true, tci: 0x2005, tpid: packet.EtherTypeVLAN},
		fakeMsg{vh: packet.VnetHdr{GSOType: packet.GSOTCPv6, GSOSize: 1440}, frame: super},                 // not segmentable: dropped
		fakeMsg{frame: udp[:40], trunc: true},                                                              // truncated: dropped
		fakeMsg{frame: make([]byte, port.MaxFrame+1)},                                                      // too large: dropped
		fakeMsg{vh: packet.VnetHdr{Flags: packet.VnetNeedsCsum, CsumStart: 34, CsumOffset: 6}, frame: udp}, // completed
	)
	b := port.NewBatch(3)
	var got [][]byte
	var offs []int
	calls := 0
	for p.rxNext < p.rxCount {
		n := p.deliver(b)
		calls++
		for i := 0; i < n; i++ {
			got = append(got, append([]byte(nil), b.Frame(i)...))
			offs = append(offs, b.Off[i])
		}
	}
	if len(got) != 8 || calls != 3 {
		t.Fatalf("%d frames in %d calls, want 8 in 3", len(got), calls)
	}
	var re []byte
	for i, f := range got[:7] {
		if offs[i] != port.Headroom-4 {
			t.Errorf("segment %d at offset %d", i, offs[i])
		}
		pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		q, _ := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
		ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tc, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if q == nil || q.VLANIdentifier != 5 || q.Priority != 1 || ip == nil || tc == nil {
			t.Fatalf("segment %d: %v", i, pkt)
		}
		if tc.Seq != 5000+uint32(i*1448) || ip.Id != 100+uint16(i) || tc.PSH != (i == 6) || len(f) > 18+1500 {
			t.Errorf("segment %d: seq %d id %d psh %v len %d", i, tc.Seq, ip.Id, tc.PSH, len(f))
		}
		if !csumOK(nil, ip.Contents) || !l4OK(ip, ip.Payload) {
			t.Errorf("segment %d: bad checksum", i)
		}
		re = append(re, tc.Payload...)
	}
	if !bytes.Equal(re, payload) {
		t.Error("segment payloads do not add up to the super-frame's")
	}
	if offs[7] != port.Headroom || !bytes.Equal(got[7], wantUDP) {
		t.Errorf("UDP frame:\n got %x\nwant %x", got[7], wantUDP)
	}
	st := port.Stats{RxPackets: p.c.rxPackets.Load(), RxGSO: p.c.c[cGSO].Load(), RxCsum: p.c.c[cCsum].Load()}
	if st.RxPackets != 8 || st.RxGSO != 1 || st.RxCsum != 1 {
		t.Errorf("stats %+v", st)
	}
	if d := p.Drops(); d != (Drops{Truncated: 1, GSOUnsupported: 1, TooBig: 1}) {
		t.Errorf("drops %+v", d)
	}
	p.closed.Store(true) // no socket to poll for the kernel's drops
	want := map[string]uint64{"truncated": 1, "gso-unsupported": 1, "too-big": 1, "gso-segmented": 1, "csum-completed": 1}
	for _, v := range p.Counters() {
		if v.Value != want[v.Name] {
			t.Errorf("counter %s = %d, want %d", v.Name, v.Value, want[v.Name])
		}
	}
}

func TestDeliverUDPGSO(t *testing.T) {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
	u := &layers.UDP{SrcPort: 4433, DstPort: 443}
	u.SetNetworkLayerForChecksum(ip)
	payload := bytes.Repeat([]byte("0123456789"), 350)
	f := serialize(t, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		ip, u, gopacket.Payload(payload))
	p := fakePort(2)
	p.inject(fakeMsg{vh: packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOUDPL4, GSOSize: 1200, CsumStart: 34, CsumOffset: 6}, frame: f})
	b := port.NewBatch(8)
	if n := p.deliver(b); n != 3 {
		t.Fatalf("%d datagrams", n)
	}
	var re []byte
	for i := 0; i < 3; i++ {
		pkt := gopacket.NewPacket(b.Frame(i), layers.LayerTypeEthernet, gopacket.Default)
		ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		uu, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if ip == nil || uu == nil || int(uu.Length) != 8+len(uu.Payload) || !l4OK(ip, ip.Payload) || !csumOK(nil, ip.Contents) {
			t.Fatalf("datagram %d: %v", i, pkt)
		}
		re = append(re, uu.Payload...)
	}
	if !bytes.Equal(re, payload) {
		t.Fatal("payload")
	}
}

func TestDeliverNoAlloc(t *testing.T) {
	super := tcpSuper(t, make([]byte, 60000), 1)
	p := fakePort(4)
	msgs := []fakeMsg{
		{vh: packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv4, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}, frame: super, tagged: true, tci: 9, tpid: 0x8100},
		{frame: super[:1000]},
	}
	b := port.NewBatch(port.DefaultBatch)
	p.inject(msgs...)
	a := testing.AllocsPerRun(20, func() {
		p.rxCount, p.rxNext = len(msgs), 0
		for p.rxNext < p.rxCount {
			p.deliver(b)
		}
	})
	if a != 0 {
		t.Fatalf("%v allocations", a)
	}
}

// TestDeliverIntact: with Options.Offloads super-frames and partial
// checksums are handed on with their metadata (CsumStart and HdrLen counted
// with a re-inserted tag); GSO types the router cannot take and metadata
// that does not fit the frame are dropped with their reasons.
func TestDeliverIntact(t *testing.T) {
	super := tcpSuper(t, make([]byte, 5000), 1)
	gso := packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv4, HdrLen: 54, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}
	badStart := gso
	badStart.CsumStart = 30
	v6 := gso
	v6.GSOType = packet.GSOTCPv6
	udp := make([]byte, 60)
	copy(udp, super[:34])
	udp[14+9] = 17
	p := fakePort(8)
	p.offloads = true
	p.inject(
		fakeMsg{vh: gso, frame: super, tagged: true, tci: 0x0064, tpid: packet.EtherTypeVLAN},
		fakeMsg{vh: packet.VnetHdr{Flags: packet.VnetNeedsCsum | packet.VnetDataValid, CsumStart: 34, CsumOffset: 6}, frame: udp},
		fakeMsg{vh: v6, frame: super},
		fakeMsg{vh: badStart, frame: super},
		fakeMsg{vh: packet.VnetHdr{Flags: packet.VnetNeedsCsum, CsumStart: 58, CsumOffset: 6}, frame: udp},
		fakeMsg{vh: packet.VnetHdr{Flags: packet.VnetDataValid}, frame: udp},
	)
	b := port.NewBatch(8)
	n := p.deliver(b)
	if n != 3 {
		t.Fatalf("%d frames", n)
	}
	want := gso
	want.CsumStart, want.HdrLen = 38, 58
	if b.Meta[0] != want || b.Len[0] != len(super)+4 || b.Off[0] != port.Headroom-4 {
		t.Fatalf("super-frame: len %d meta %+v", b.Len[0], b.Meta[0])
	}
	if b.Meta[1] != (packet.VnetHdr{Flags: packet.VnetNeedsCsum, CsumStart: 34, CsumOffset: 6}) || !bytes.Equal(b.Frame(1), udp) {
		t.Fatalf("partial checksum: meta %+v", b.Meta[1])
	}
	if b.Meta[2] != (packet.VnetHdr{}) {
		t.Fatalf("a frame with only DATA_VALID: meta %+v", b.Meta[2])
	}
	p.closed.Store(true)
	want2 := map[string]uint64{"gso-unsupported": 1, "bad-csum-offsets": 2, "gso-intact": 1, "csum-partial": 1}
	for _, v := range p.Counters() {
		if v.Value != want2[v.Name] {
			t.Errorf("counter %s = %d, want %d", v.Name, v.Value, want2[v.Name])
		}
	}
}

// tcp6Super is an IPv6 TCP super-frame with a hop-by-hop header in front
// of TCP (so the headers every segment repeats are 14+40+8+20 bytes).
func tcp6Super(t testing.TB, payload []byte) []byte {
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6HopByHop,
		SrcIP: net.ParseIP("2001:db8:1::10"), DstIP: net.ParseIP("2001:db8:2::10")}
	hbh := &layers.IPv6HopByHop{}
	hbh.NextHeader = layers.IPProtocolTCP
	hbh.Options = []*layers.IPv6HopByHopOption{{OptionType: 1, OptionLength: 4, OptionData: []byte{0, 0, 0, 0}}}
	tc := &layers.TCP{SrcPort: 33000, DstPort: 5201, Seq: 7, Ack: 1, ACK: true, Window: 500}
	tc.SetNetworkLayerForChecksum(ip)
	return serialize(t, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv6},
		ip, hbh, tc, gopacket.Payload(payload))
}

// TestDeliverIntactIPv6: with Options.Offloads an IPv6 TCP super-frame is
// handed on whole (HdrLen over the extension header); without, it is cut
// into segments; a TCPv4 GSO type on it is refused.
func TestDeliverIntactIPv6(t *testing.T) {
	super := tcp6Super(t, make([]byte, 5000))
	l4 := uint16(14 + 40 + 8)
	vh := packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv6, HdrLen: l4 + 20, GSOSize: 1420, CsumStart: l4, CsumOffset: 16}
	v4 := vh
	v4.GSOType = packet.GSOTCPv4
	p := fakePort(8)
	p.offloads = true
	p.inject(fakeMsg{vh: vh, frame: super}, fakeMsg{vh: v4, frame: super})
	b := port.NewBatch(8)
	if n := p.deliver(b); n != 1 {
		t.Fatalf("%d frames, want the super-frame", n)
	}
	if b.Meta[0] != vh || !bytes.Equal(b.Frame(0), super) {
		t.Fatalf("meta %+v, want %+v", b.Meta[0], vh)
	}
	q := fakePort(8)
	q.inject(fakeMsg{vh: vh, frame: super})
	if n := q.deliver(b); n != 4 {
		t.Fatalf("without offloads: %d segments, want 4", n)
	}
	for i := 0; i < 4; i++ {
		pkt := gopacket.NewPacket(b.Frame(i), layers.LayerTypeEthernet, gopacket.Default)
		tc, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tc == nil || b.Meta[i] != (packet.VnetHdr{}) || tc.Seq != 7+uint32(i*1420) {
			t.Fatalf("segment %d: %v", i, pkt)
		}
	}
	p.closed.Store(true)
	want := map[string]uint64{"gso-unsupported": 1, "gso-intact": 1, "csum-partial": 0}
	for _, v := range p.Counters() {
		if w, ok := want[v.Name]; ok && v.Value != w {
			t.Errorf("counter %s = %d, want %d", v.Name, v.Value, w)
		}
	}
	a := testing.AllocsPerRun(20, func() {
		p.inject(fakeMsg{vh: vh, frame: super})
		p.deliver(b)
	})
	if a != 0 {
		t.Fatalf("%v allocations", a)
	}
}
