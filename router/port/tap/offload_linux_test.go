package tap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"vrouter/internal/nstest"
	"vrouter/packet"
	"vrouter/router/port"
	"vrouter/router/port/afpacket"
)

// offloadLab opens a TAP port with Options.Offloads in R, moves the device
// into V with 192.0.2.10/24, and tells V the router's MAC for 192.0.2.1.
// It returns the VM side's MAC too.
func offloadLab(t *testing.T) (*lab, *Port, net.HardwareAddr) {
	t.Helper()
	l := newLab(t)
	p := openIn(t, l.r, "vm1", l.tap, Options{Offloads: true})
	l.moveToVM(t, "192.0.2.10/24")
	mac := p.MAC()
	sh(t, "ip", "-n", l.nameV, "neigh", "add", "192.0.2.1", "lladdr", net.HardwareAddr(mac[:]).String(), "dev", l.tap)
	var vmMAC net.HardwareAddr
	inNS(t, l.v, func() {
		if ifc, err := net.InterfaceByName(l.tap); err == nil {
			vmMAC = ifc.HardwareAddr
		}
	})
	if vmMAC == nil {
		t.Fatal("no MAC for the VM side")
	}
	return l, p, vmMAC
}

// completed returns a copy of frame f with the partial checksum m describes
// completed (f itself when there is none), so that gopacket and the
// checksum oracles can judge it.
func completed(t testing.TB, f []byte, m packet.VnetHdr) []byte {
	if m.Flags&packet.VnetNeedsCsum == 0 {
		return f
	}
	c := append([]byte(nil), f...)
	end := len(c)
	if l3, et, ok := packet.L3Offset(c); ok && et == packet.EtherTypeIPv4 {
		end = l3 + packet.IPv4(c[l3:]).TotalLen()
	}
	if !packet.CompleteChecksum(c[:end], int(m.CsumStart), int(m.CsumOffset)) {
		t.Errorf("partial checksum offsets %d+%d outside a %d-byte frame", m.CsumStart, m.CsumOffset, len(f))
	}
	return c
}

func counterValue(p *Port, name string) uint64 {
	for _, v := range p.Counters() {
		if v.Name == name {
			return v.Value
		}
	}
	return 0
}

// TestOffloadFlags: with the option the kernel takes TUN_F_CSUM|TSO4|TSO6 and,
// on this kernel, USO4|USO6; the device shows the offloads on. Reattaching
// to the persistent device without the option clears them again.
func TestOffloadFlags(t *testing.T) {
	l := newLab(t)
	p := openIn(t, l.r, "vm1", l.tap, Options{Offloads: true, Persist: true})
	t.Logf("offload flags accepted: %#x", p.OffloadFlags())
	if !p.Offloads() || (p.OffloadFlags() != offloadsWanted && p.OffloadFlags() != offloadsFallback) {
		t.Fatalf("Offloads %v flags %#x", p.Offloads(), p.OffloadFlags())
	}
	k := sh(t, "ip", "netns", "exec", l.nameR, "ethtool", "-k", l.tap)
	want := []string{"tx-checksumming: on", "tx-tcp-segmentation: on", "tx-tcp6-segmentation: on"}
	if p.OffloadFlags()&TunFUSO4 != 0 {
		want = append(want, "tx-udp-segmentation: on")
	}
	for _, w := range want {
		if !strings.Contains(k, w) {
			t.Errorf("ethtool -k lacks %q:\n%s", w, k)
		}
	}
	p.Close()
	q := openIn(t, l.r, "vm1", l.tap, Options{})
	if q.Offloads() || q.OffloadFlags() != 0 {
		t.Fatalf("without the option: Offloads %v flags %#x", q.Offloads(), q.OffloadFlags())
	}
	k = sh(t, "ip", "netns", "exec", l.nameR, "ethtool", "-k", l.tap)
	for _, w := range []string{"tx-checksumming: off", "tx-tcp-segmentation: off", "tx-udp-segmentation: off"} {
		if !strings.Contains(k, w) {
			t.Errorf("after reattaching without offloads, ethtool -k lacks %q:\n%s", w, k)
		}
	}
}

// TestOffloadTCPFromVM: a TCP stream from a socket in V (whose kernel does
// TSO onto the TAP) reaches the port as super-frames with their metadata:
// GSO TCPv4, the MSS as gso_size, exact header length, partial checksum at
// the TCP header. The test plays the TCP peer (SYN-ACK, cumulative ACKs,
// written as plain frames through the offload port) and checks every frame
// once its partial checksum is completed, and the byte stream.
func TestOffloadTCPFromVM(t *testing.T) {
	l, p, _ := offloadLab(t)
	mac := p.MAC()
	myMAC := net.HardwareAddr(mac[:])
	const total = 2 << 20
	pattern := make([]byte, total)
	for i := range pattern {
		pattern[i] = byte(i % 251)
	}
	var mu sync.Mutex
	var stream []byte
	var supers, partials, frames int
	var problems []string
	bad := func(format string, a ...any) {
		if len(problems) < 10 {
			problems = append(problems, fmt.Sprintf(format, a...))
		}
	}
	const iss = 5000
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		b := port.NewBatch(port.DefaultBatch)
		var expect uint32
		for {
			n, err := p.ReadBatch(b)
			if err != nil {
				return
			}
			var acks [][]byte
			mu.Lock()
			for i := 0; i < n; i++ {
				f, m := b.Frame(i), b.Meta[i]
				if m.Flags|m.GSOType != 0 && !b.HasMeta {
					t.Errorf("frame %d has metadata but the batch says none (HasMeta)", i)
				}
				c := completed(t, f, m)
				pkt := gopacket.NewPacket(c, layers.LayerTypeEthernet, gopacket.Default)
				eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
				ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				tc, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
				if ip == nil || tc == nil || tc.DstPort != 5001 {
					continue
				}
				frames++
				if m.Flags&^packet.VnetNeedsCsum != 0 {
					bad("flags %#x", m.Flags)
				}
				if m.Flags != 0 {
					partials++
					if m.CsumStart != 34 || m.CsumOffset != 16 {
						bad("partial checksum at %d+%d", m.CsumStart, m.CsumOffset)
					}
				}
				if m.GSOType != packet.GSONone {
					supers++
					if m.GSOType != packet.GSOTCPv4 || m.GSOSize != 1460 || m.HdrLen != 54 || m.Flags != packet.VnetNeedsCsum || len(tc.Payload) <= 1460 {
						bad("super-frame of %d bytes with meta %+v", len(f), m)
					}
					if k := packet.GSOSegmentsV4(f, 14, packet.ProtoTCP, int(m.GSOSize)); k != (len(tc.Payload)+1459)/1460 {
						bad("super-frame of %d payload bytes makes %d segments", len(tc.Payload), k)
					}
				} else if len(f) > 14+1500 {
					bad("%d-byte frame without GSO meta", len(f))
				}
				if !csumOK(nil, ip.Contents) || !l4OK(ip, ip.Payload) || int(ip.Length) != len(c)-14 {
					bad("bad checksum or length: %d-byte frame, meta %+v", len(f), m)
				}
				reply := &layers.TCP{SrcPort: 5001, DstPort: tc.SrcPort, ACK: true, Window: 65535}
				switch {
				case tc.SYN:
					expect = tc.Seq + 1
					reply.SYN, reply.Seq = true, iss
					reply.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}}
				case len(tc.Payload) > 0:
					if tc.Seq == expect {
						stream = append(stream, tc.Payload...)
						expect += uint32(len(tc.Payload))
					}
					reply.Seq = iss + 1
				default:
					continue
				}
				reply.Ack = expect
				rip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: routerIP, DstIP: ip.SrcIP}
				reply.SetNetworkLayerForChecksum(rip)
				acks = append(acks, serialize(t, &layers.Ethernet{SrcMAC: myMAC, DstMAC: eth.SrcMAC, EthernetType: layers.EthernetTypeIPv4}, rip, reply))
			}
			mu.Unlock()
			if len(acks) > 0 {
				p.WriteBatch(acks, nil)
			}
		}
	}()
	go inNS(t, l.v, func() {
		c, err := net.DialTimeout("tcp4", "192.0.2.1:5001", 3*time.Second)
		if err != nil {
			t.Error(err)
			return
		}
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		c.Write(pattern)
		// Keep the socket open: the test does not play the close.
		time.Sleep(200 * time.Millisecond)
		c.Close()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		got := len(stream)
		mu.Unlock()
		if got >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Close()
	<-readDone
	t.Logf("TCP frames %d, super-frames %d, partial checksums %d, stream %d bytes; counters %v", frames, supers, partials, len(stream), p.Counters())
	if len(problems) > 0 {
		t.Fatalf("problems:\n%s", strings.Join(problems, "\n"))
	}
	if !bytes.Equal(stream, pattern) {
		t.Fatalf("stream: %d of %d bytes, or different", len(stream), total)
	}
	if supers == 0 || partials == 0 {
		t.Fatal("no super-frame or no partial checksum arrived")
	}
	if counterValue(p, "gso-intact") < uint64(supers) || counterValue(p, "csum-partial") < uint64(partials) || p.Stats().RxDropped != 0 {
		t.Fatalf("counters %v", p.Counters())
	}
}

// TestOffloadUDPFromVM: from sockets in V, a small UDP datagram arrives
// with its checksum partial, an IPv4 UDP_SEGMENT send as one GSO_UDP_L4
// super-frame, an IPv6 one too (both gso-intact).
func TestOffloadUDPFromVM(t *testing.T) {
	l, p, _ := offloadLab(t)
	if p.OffloadFlags()&TunFUSO4 == 0 {
		t.Skip("the kernel did not take USO")
	}
	mac := p.MAC()
	sh(t, "ip", "netns", "exec", l.nameV, "sysctl", "-qw", "net.ipv6.conf."+l.tap+".disable_ipv6=0")
	sh(t, "ip", "-n", l.nameV, "addr", "add", "2001:db8::10/64", "dev", l.tap, "nodad")
	sh(t, "ip", "-n", l.nameV, "-6", "neigh", "add", "2001:db8::1", "lladdr", net.HardwareAddr(mac[:]).String(), "dev", l.tap)
	data := make([]byte, 5000)
	for i := range data {
		data[i] = byte(i % 249)
	}
	var err error
	inNS(t, l.v, func() {
		send := func(family int, sa unix.Sockaddr, gso int, b []byte) {
			if err != nil {
				return
			}
			var fd int
			if fd, err = unix.Socket(family, unix.SOCK_DGRAM, 0); err != nil {
				return
			}
			defer unix.Close(fd)
			if gso > 0 {
				if err = unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_SEGMENT, gso); err != nil {
					return
				}
			}
			err = unix.Sendto(fd, b, 0, sa)
		}
		send(unix.AF_INET, &unix.SockaddrInet4{Port: 9000, Addr: [4]byte{192, 0, 2, 1}}, 0, []byte("hello"))
		send(unix.AF_INET, &unix.SockaddrInet4{Port: 9001, Addr: [4]byte{192, 0, 2, 1}}, 1000, data)
		dst6 := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
		send(unix.AF_INET6, &unix.SockaddrInet6{Port: 9002, Addr: dst6}, 1000, data)
	})
	if err != nil {
		t.Fatal(err)
	}
	type frame struct {
		f []byte
		m packet.VnetHdr
	}
	byPort := map[uint16][]frame{}
	b := port.NewBatch(port.DefaultBatch)
	deadline := time.Now().Add(3 * time.Second)
	watchdog := time.AfterFunc(5*time.Second, func() { p.Close() }) // ReadBatch must not wait forever
	defer watchdog.Stop()
	for len(byPort[9000]) < 1 || len(byPort[9001]) < 1 || len(byPort[9002]) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("frames by port: %d %d %d", len(byPort[9000]), len(byPort[9001]), len(byPort[9002]))
		}
		n, err := p.ReadBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			f := b.Frame(i)
			pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
			if u, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); ok && u.DstPort >= 9000 && u.DstPort <= 9002 {
				byPort[uint16(u.DstPort)] = append(byPort[uint16(u.DstPort)], frame{append([]byte(nil), f...), b.Meta[i]})
			}
		}
	}
	check4 := func(fr frame, wantMeta packet.VnetHdr, payload []byte) {
		t.Helper()
		if fr.m != wantMeta {
			t.Errorf("meta %+v, want %+v", fr.m, wantMeta)
		}
		c := completed(t, fr.f, fr.m)
		pkt := gopacket.NewPacket(c, layers.LayerTypeEthernet, gopacket.Default)
		ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		u, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if ip == nil || u == nil || !csumOK(nil, ip.Contents) || !l4OK(ip, ip.Payload) || !bytes.Equal(u.Payload, payload) {
			t.Errorf("bad datagram %v", pkt)
		}
	}
	check4(byPort[9000][0], packet.VnetHdr{Flags: packet.VnetNeedsCsum, CsumStart: 34, CsumOffset: 6}, []byte("hello"))
	check4(byPort[9001][0], packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOUDPL4, HdrLen: 42, GSOSize: 1000, CsumStart: 34, CsumOffset: 6}, data)
	fr := byPort[9002][0]
	if want := (packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOUDPL4, HdrLen: 62, GSOSize: 1000, CsumStart: 54, CsumOffset: 6}); fr.m != want {
		t.Errorf("IPv6 meta %+v, want %+v", fr.m, want)
	}
	c := completed(t, fr.f, fr.m)
	pkt := gopacket.NewPacket(c, layers.LayerTypeEthernet, gopacket.Default)
	ip, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	u, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if ip == nil || u == nil || !bytes.Equal(u.Payload, data) {
		t.Fatalf("IPv6 super-frame: %v", pkt)
	}
	ph := make([]byte, 40)
	copy(ph, ip.SrcIP)
	copy(ph[16:], ip.DstIP)
	binary.BigEndian.PutUint32(ph[32:], uint32(len(ip.Payload)))
	ph[39] = packet.ProtoUDP
	if !csumOK(ph, ip.Payload) {
		t.Errorf("IPv6 super-frame with a bad checksum once completed")
	}
	st := p.Stats()
	t.Logf("stats %+v counters %v", st, p.Counters())
	if st.RxGSO != 0 || counterValue(p, "gso-intact") != 2 || st.RxDropped != 0 {
		t.Fatalf("stats %+v counters %v", st, p.Counters())
	}
}

// rtrTCP is the router side of a TCP connection the test plays through the
// port: it writes frames, and reads the peer's segments from in.
type rtrTCP struct {
	t          *testing.T
	p          *Port
	smac, dmac net.HardwareAddr
	src, dst   net.IP
	sport      uint16
	dport      uint16
	seq, ack   uint32
	in         chan *layers.TCP
}

func (c *rtrTCP) frame(flags func(*layers.TCP), payload []byte) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Id: uint16(c.seq), Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP, SrcIP: c.src, DstIP: c.dst}
	tc := &layers.TCP{SrcPort: layers.TCPPort(c.sport), DstPort: layers.TCPPort(c.dport), Seq: c.seq, Ack: c.ack, ACK: true, Window: 65535}
	flags(tc)
	tc.SetNetworkLayerForChecksum(ip)
	return serialize(c.t, &layers.Ethernet{SrcMAC: c.smac, DstMAC: c.dmac, EthernetType: layers.EthernetTypeIPv4}, ip, tc, gopacket.Payload(payload))
}

func (c *rtrTCP) write(f []byte, m packet.VnetHdr) {
	if n, err := c.p.WriteBatch([][]byte{f}, []packet.VnetHdr{m}); n != 1 || err != nil {
		c.t.Errorf("WriteBatch %d %v (meta %+v)", n, err, m)
	}
}

// wait reads the peer's segments until ok accepts one; nil (an error
// reported) after 5 s.
func (c *rtrTCP) wait(what string, ok func(*layers.TCP) bool) *layers.TCP {
	timeout := time.After(5 * time.Second)
	for {
		select {
		case tc := <-c.in:
			if ok(tc) {
				return tc
			}
		case <-timeout:
			c.t.Errorf("port %d: no %s", c.dport, what)
			return nil
		}
	}
}

// send connects and sends data as TCP super-frames of up to perSuper
// segments of mss bytes, GSO metadata and partial checksum, each once the
// previous one is acknowledged.
func (c *rtrTCP) send(data []byte, mss, perSuper int) {
	c.seq = 100000
	c.write(c.frame(func(tc *layers.TCP) {
		tc.SYN, tc.ACK = true, false
		tc.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}}
	}, nil), packet.VnetHdr{})
	synack := c.wait("SYN-ACK", func(tc *layers.TCP) bool { return tc.SYN && tc.ACK })
	if synack == nil {
		return
	}
	c.seq, c.ack = c.seq+1, synack.Seq+1
	c.write(c.frame(func(*layers.TCP) {}, nil), packet.VnetHdr{})
	base := c.seq
	for off := 0; off < len(data); {
		n := min(mss*perSuper, len(data)-off)
		c.seq = base + uint32(off)
		f := c.frame(func(tc *layers.TCP) { tc.PSH = true }, data[off:off+n])
		// The checksum field of a partial checksum holds the folded
		// pseudo-header sum; the kernel adds the data.
		binary.BigEndian.PutUint16(f[34+16:], packet.Fold(packet.PseudoSum(
			binary.BigEndian.Uint32(f[26:]), binary.BigEndian.Uint32(f[30:]), packet.ProtoTCP, len(f)-34)))
		m := packet.VnetHdr{Flags: packet.VnetNeedsCsum, CsumStart: 34, CsumOffset: 16}
		if n > mss {
			m.GSOType, m.GSOSize, m.HdrLen = packet.GSOTCPv4, uint16(mss), 54
		}
		c.write(f, m)
		end := base + uint32(off+n)
		if c.wait(fmt.Sprintf("ACK of %d", off+n), func(tc *layers.TCP) bool { return tc.ACK && int32(tc.Ack-end) >= 0 }) == nil {
			return
		}
		off += n
	}
	c.seq = base + uint32(len(data))
}

// TestOffloadToVM: frames the port writes with offload metadata reach
// sockets in V intact: TCP super-frames (GSO TCPv4, partial checksum), a
// UDP datagram with a partial checksum and a UDP super-frame (GSO_UDP_L4).
// The same frames addressed to W, one hop behind V over a veth with
// segmentation and checksum offloads off, show the kernel's work on the
// wire: a raw socket in W sees only MTU-sized frames with valid checksums.
func TestOffloadToVM(t *testing.T) {
	l, p, vmMAC := offloadLab(t)
	mac := p.MAC()
	myMAC := net.HardwareAddr(mac[:])
	nameW := nstest.Name("vrtapw")
	w := nstest.NS(t, nameW)
	sh(t, "ip", "-n", l.nameV, "link", "add", "vw0", "type", "veth", "peer", "name", "vw1", "netns", nameW)
	sh(t, "ip", "-n", l.nameV, "addr", "add", "198.51.100.1/24", "dev", "vw0")
	sh(t, "ip", "-n", l.nameV, "link", "set", "vw0", "up")
	sh(t, "ip", "-n", nameW, "addr", "add", "198.51.100.2/24", "dev", "vw1")
	sh(t, "ip", "-n", nameW, "link", "set", "vw1", "up")
	sh(t, "ip", "-n", nameW, "route", "add", "default", "via", "198.51.100.1")
	sh(t, "ip", "netns", "exec", l.nameV, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	sh(t, "ip", "netns", "exec", l.nameV, "ethtool", "-K", "vw0", "tso", "off", "gso", "off", "tx", "off")
	wIP, vIP := net.IP{198, 51, 100, 2}, net.IP{192, 0, 2, 10}

	// The wire in W.
	var cap *afpacket.Port
	var err error
	inNS(t, w, func() { cap, err = afpacket.Open("w", "vw1", afpacket.Options{NoVnetHdr: true}) })
	if err != nil {
		t.Fatal(err)
	}
	defer cap.Close()
	var cmu sync.Mutex
	var wireTCP, wireUDP, wireBad int
	capDone := make(chan struct{})
	go func() {
		defer close(capDone)
		b := port.NewBatch(port.DefaultBatch)
		for {
			n, err := cap.ReadBatch(b)
			if err != nil {
				return
			}
			cmu.Lock()
			for i := 0; i < n; i++ {
				f := b.Frame(i)
				pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
				ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				if ip == nil || !ip.SrcIP.Equal(routerIP) {
					continue
				}
				if len(f) > 14+1500 || !csumOK(nil, ip.Contents) || !l4OK(ip, ip.Payload) {
					wireBad++
				}
				if tc, ok := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
					wireTCP += len(tc.Payload)
				}
				if _, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
					wireUDP++
				}
			}
			cmu.Unlock()
		}
	}()

	// The router side: TCP segments from V go to the connection by port.
	conns := map[uint16]chan *layers.TCP{41001: make(chan *layers.TCP, 256), 41002: make(chan *layers.TCP, 256)}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		b := port.NewBatch(port.DefaultBatch)
		for {
			n, err := p.ReadBatch(b)
			if err != nil {
				return
			}
			for i := 0; i < n; i++ {
				pkt := gopacket.NewPacket(append([]byte(nil), b.Frame(i)...), layers.LayerTypeEthernet, gopacket.Default)
				if tc, ok := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
					if ch := conns[uint16(tc.DstPort)]; ch != nil {
						ch <- tc
					}
				}
			}
		}
	}()
	defer func() { p.Close(); <-readDone }()

	data := make([]byte, 12*16*1448+777)
	for i := range data {
		data[i] = byte(i % 241)
	}
	type result struct {
		who string
		err error
	}
	results := make(chan result, 4)
	listen := func(ns netns.NsHandle, who, addr string) {
		var ln net.Listener
		inNS(t, ns, func() { ln, err = net.Listen("tcp4", addr) })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			c, err := ln.Accept()
			if err != nil {
				results <- result{who, err}
				return
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			got := make([]byte, len(data))
			if _, err := io.ReadFull(c, got); err != nil {
				results <- result{who, err}
				return
			}
			if !bytes.Equal(got, data) {
				err = errors.New("data differs")
			}
			results <- result{who, err}
		}()
	}
	listen(l.v, "TCP in V", "192.0.2.10:5002")
	listen(w, "TCP in W", "198.51.100.2:5003")
	udpSock := func(ns netns.NsHandle, addr string) *net.UDPConn {
		var c *net.UDPConn
		inNS(t, ns, func() {
			a, _ := net.ResolveUDPAddr("udp4", addr)
			c, err = net.ListenUDP("udp4", a)
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	uV, uW := udpSock(l.v, "192.0.2.10:9002"), udpSock(w, "198.51.100.2:9003")

	var wg sync.WaitGroup
	for _, c := range []*rtrTCP{
		{t: t, p: p, smac: myMAC, dmac: vmMAC, src: routerIP, dst: vIP, sport: 41001, dport: 5002, in: conns[41001]},
		{t: t, p: p, smac: myMAC, dmac: vmMAC, src: routerIP, dst: wIP, sport: 41002, dport: 5003, in: conns[41002]},
	} {
		wg.Add(1)
		go func() { defer wg.Done(); c.send(data, 1448, 16) }()
	}
	wg.Wait()
	for range 2 {
		select {
		case r := <-results:
			if r.err != nil {
				t.Errorf("%s: %v", r.who, r.err)
			}
		case <-time.After(25 * time.Second):
			t.Fatal("a TCP listener got nothing")
		}
	}

	// UDP: a datagram with a partial checksum, then a 3000-byte super-frame
	// of 1000-byte datagrams.
	udpFrame := func(dst net.IP, dport uint16, payload []byte) []byte {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: routerIP, DstIP: dst}
		u := &layers.UDP{SrcPort: 7000, DstPort: layers.UDPPort(dport)}
		u.SetNetworkLayerForChecksum(ip)
		f := serialize(t, &layers.Ethernet{SrcMAC: myMAC, DstMAC: vmMAC, EthernetType: layers.EthernetTypeIPv4}, ip, u, gopacket.Payload(payload))
		binary.BigEndian.PutUint16(f[34+6:], packet.Fold(packet.PseudoSum(
			binary.BigEndian.Uint32(f[26:]), binary.BigEndian.Uint32(f[30:]), packet.ProtoUDP, len(f)-34)))
		return f
	}
	small := []byte(strings.Repeat("partial ", 40))
	csum := packet.VnetHdr{Flags: packet.VnetNeedsCsum, CsumStart: 34, CsumOffset: 6}
	uso := packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOUDPL4, HdrLen: 42, GSOSize: 1000, CsumStart: 34, CsumOffset: 6}
	frames := [][]byte{udpFrame(vIP, 9002, small), udpFrame(vIP, 9002, data[:3000]), udpFrame(wIP, 9003, small), udpFrame(wIP, 9003, data[:3000])}
	if n, err := p.WriteBatch(frames, []packet.VnetHdr{csum, uso, csum, uso}); n != 4 || err != nil {
		t.Fatalf("UDP WriteBatch %d %v", n, err)
	}
	for _, u := range []*net.UDPConn{uV, uW} {
		u.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 4000)
		for i, want := range [][]byte{small, data[:1000], data[1000:2000], data[2000:3000]} {
			n, err := u.Read(buf)
			if err != nil || !bytes.Equal(buf[:n], want) {
				t.Fatalf("%s datagram %d: %d bytes, %v", u.LocalAddr(), i, n, err)
			}
		}
	}

	time.Sleep(100 * time.Millisecond)
	cap.Close()
	<-capDone
	st := p.Stats()
	t.Logf("port stats %+v; on the wire in W: %d TCP payload bytes, %d UDP datagrams, %d bad", st, wireTCP, wireUDP, wireBad)
	if wireBad != 0 || wireTCP != len(data) || wireUDP != 4 || st.TxErrors != 0 {
		t.Fatalf("on the wire in W: %d bad frames, %d of %d TCP bytes, %d of 4 datagrams; tx errors %d", wireBad, wireTCP, len(data), wireUDP, st.TxErrors)
	}
}

// TestOffloadSteadyStateNoAlloc: with offloads, frames written on the VM
// side are read without allocation, and WriteBatch with metadata (plain,
// partial checksum tagged and untagged, a UDP super-frame) allocates
// nothing either; the VM side receives them correctly.
func TestOffloadSteadyStateNoAlloc(t *testing.T) {
	l := newLab(t)
	p := openIn(t, l.r, "vm1", l.tap, Options{Offloads: true})
	l.moveToVM(t, "")
	var vm *afpacket.Port
	var err error
	inNS(t, l.v, func() { vm, err = afpacket.Open("vm", l.tap, afpacket.Options{}) })
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	mk := func(tag bool, payload []byte, partial bool) []byte {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 1, 1, 1, 1, 1}, DstMAC: net.HardwareAddr{2, 2, 2, 2, 2, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
		u := &layers.UDP{SrcPort: 1, DstPort: 2}
		u.SetNetworkLayerForChecksum(ip)
		var f []byte
		l3 := 14
		if tag {
			eth.EthernetType = layers.EthernetTypeDot1Q
			f = serialize(t, eth, &layers.Dot1Q{VLANIdentifier: 33, Type: layers.EthernetTypeIPv4}, ip, u, gopacket.Payload(payload))
			l3 = 18
		} else {
			f = serialize(t, eth, ip, u, gopacket.Payload(payload))
		}
		if partial {
			binary.BigEndian.PutUint16(f[l3+20+6:], packet.Fold(packet.PseudoSum(
				binary.BigEndian.Uint32(f[l3+12:]), binary.BigEndian.Uint32(f[l3+16:]), packet.ProtoUDP, int(binary.BigEndian.Uint16(f[l3+24:])))))
		}
		return f
	}
	big := make([]byte, 3000)
	for i := range big {
		big[i] = byte(i)
	}
	in := [][]byte{mk(false, []byte("one"), false), mk(true, []byte("two"), false), mk(false, big[:1400], false), mk(true, []byte("four"), false)}
	out := [][]byte{mk(false, []byte("plain"), false), mk(false, []byte("partial"), true), mk(true, []byte("tagged partial"), true), mk(false, big, true)}
	meta := []packet.VnetHdr{{},
		{Flags: packet.VnetNeedsCsum, CsumStart: 34, CsumOffset: 6},
		{Flags: packet.VnetNeedsCsum, CsumStart: 38, CsumOffset: 6},
		{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOUDPL4, HdrLen: 42, GSOSize: 1000, CsumStart: 34, CsumOffset: 6}}
	// The super-frame arrives as 3 datagrams (the VM side's port segments it).
	const outFrames = 3 + 3
	// Reads must not wait forever.
	watchdog := time.AfterFunc(20*time.Second, func() { vm.Close(); p.Close() })
	defer watchdog.Stop()
	b := port.NewBatch(port.DefaultBatch)
	vb := port.NewBatch(port.DefaultBatch) // one batch per port: an afpacket ring port points its batch into its ring
	var got [][]byte
	round := func(keep bool) {
		if n, err := vm.WriteBatch(in, nil); n != len(in) || err != nil {
			t.Fatalf("VM write %d %v", n, err)
		}
		for k := 0; k < len(in); {
			n, err := p.ReadBatch(b)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				if keep && (!bytes.Equal(b.Frame(i), in[k+i]) || b.Meta[i] != (packet.VnetHdr{})) {
					t.Errorf("VM->router frame %d: meta %+v\n got %x\nwant %x", k+i, b.Meta[i], b.Frame(i), in[k+i])
				}
			}
			k += n
		}
		if n, err := p.WriteBatch(out, meta); n != len(out) || err != nil {
			t.Fatalf("router write %d %v", n, err)
		}
		for k := 0; k < outFrames; {
			n, err := vm.ReadBatch(vb)
			if err != nil {
				t.Fatal(err)
			}
			if keep {
				for i := 0; i < n; i++ {
					got = append(got, append([]byte(nil), vb.Frame(i)...))
				}
			}
			k += n
		}
	}
	round(true)
	var payloads []string
	for _, f := range got {
		pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		u, _ := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if ip == nil || u == nil || !l4OK(ip, ip.Payload) {
			t.Fatalf("router->VM frame with a bad checksum: %v", pkt)
		}
		payloads = append(payloads, string(u.Payload))
	}
	want := []string{"plain", "partial", "tagged partial", string(big[:1000]), string(big[1000:2000]), string(big[2000:])}
	if fmt.Sprint(payloads) != fmt.Sprint(want) {
		t.Fatalf("router->VM payloads differ: got %d datagrams", len(payloads))
	}
	if a := testing.AllocsPerRun(100, func() { round(false) }); a != 0 {
		t.Fatalf("%v allocations per round", a)
	}
	if st := p.Stats(); st.TxErrors != 0 || st.RxDropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}
