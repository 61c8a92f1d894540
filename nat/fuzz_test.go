package nat

import (
	"testing"
	"time"
)

// FuzzRoundTrip: a packet translated one way and its reply translated back
// give the original endpoints and payload, with valid checksums at every
// step (checked by an independent implementation); an ICMP error about the
// translated packet quotes the original.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(0), uint8(17), uint16(5000), uint16(53), uint8(10), []byte("hello"), false)
	f.Add(uint8(0), uint8(6), uint16(40000), uint16(80), uint8(11), []byte{}, false)
	f.Add(uint8(0), uint8(1), uint16(77), uint16(0), uint8(12), []byte("ping"), false)
	f.Add(uint8(0), uint8(17), uint16(123), uint16(123), uint8(13), []byte{1}, true)
	f.Add(uint8(1), uint8(6), uint16(50000), uint16(22), uint8(14), []byte("ssh"), false)
	f.Add(uint8(1), uint8(47), uint16(0), uint16(0), uint8(15), []byte{0, 0, 8, 0}, false)
	f.Add(uint8(1), uint8(1), uint16(9), uint16(0), uint8(16), []byte{}, false)
	f.Add(uint8(2), uint8(17), uint16(6000), uint16(53), uint8(20), []byte("hairpin"), false)
	f.Add(uint8(2), uint8(6), uint16(6001), uint16(80), uint8(21), []byte{}, false)
	f.Add(uint8(3), uint8(17), uint16(7000), uint16(33434), uint8(22), []byte("trace"), false)
	f.Add(uint8(3), uint8(6), uint16(7001), uint16(443), uint8(23), []byte("x"), false)
	f.Add(uint8(3), uint8(1), uint16(7002), uint16(0), uint8(24), []byte("x"), false)
	f.Add(uint8(4), uint8(6), uint16(7003), uint16(8080), uint8(25), []byte("fwd"), false)
	f.Fuzz(func(t *testing.T, mode, proto uint8, sport, dport uint16, host uint8, payload []byte, zeroUDP bool) {
		if len(payload) > 1200 {
			payload = payload[:1200]
		}
		switch proto {
		case tcp, udp, icmp, 47, 50:
		default:
			proto = udp
		}
		if host < 2 || host > 250 || host == 5 || host == 6 {
			host = 10
		}
		n, w := newNAT(t, testConfig())
		_ = n
		hostIP := "10.1.1." + itoa(int(host))
		mk := func(src, dst string, sp, dp uint16, reply bool) []byte {
			p := pk{src: src, dst: dst, proto: proto, sport: sp, dport: dp, payload: payload, noUDPCsum: zeroUDP}
			switch proto {
			case tcp:
				p.flags = syn
				if reply {
					p.flags = syn | ack
				}
			case icmp:
				p.icmpType, p.id = 8, sp
				if reply {
					p.icmpType, p.id = 0, dp
				}
			}
			return build(t, p)
		}
		type ep struct {
			ip   string
			port uint16
		}
		var a, b ep // original source and destination
		var p []byte
		var fwd, back func([]byte) // the two directions' stages
		switch mode % 5 {
		case 0, 3: // SNAT
			if proto != tcp && proto != udp && proto != icmp {
				return
			}
			a, b = ep{hostIP, sport}, ep{"198.51.100.7", dport}
			fwd = func(p []byte) { w.In(p, nInside, sec); w.Out(p, nInside, nPublic, sec) }
			back = func(p []byte) { w.In(p, nPublic, sec); w.Out(p, nPublic, nInside, sec) }
		case 1: // to the floating IP
			a, b = ep{"198.51.100.7", sport}, ep{"203.0.113.50", dport}
			fwd = func(p []byte) { w.In(p, nPublic, sec); w.Out(p, nPublic, nInside, sec) }
			back = func(p []byte) { w.In(p, nInside, sec); w.Out(p, nInside, nPublic, sec) }
		case 2: // hairpin to the floating IP
			a, b = ep{hostIP, sport}, ep{"203.0.113.50", dport}
			fwd = func(p []byte) { w.In(p, nInside, sec); w.Out(p, nInside, nInside, sec) }
			back = fwd
		case 4: // port forward
			if proto != tcp {
				return
			}
			a, b = ep{"198.51.100.7", sport}, ep{"203.0.113.1", 8080}
			fwd = func(p []byte) { w.In(p, nPublic, sec); w.Out(p, nPublic, nInside, sec) }
			back = func(p []byte) { w.In(p, nInside, sec); w.Out(p, nInside, nPublic, sec) }
		}
		if proto == icmp {
			b.port = 0
		}
		p = mk(a.ip, b.ip, a.port, b.port, false)
		orig := append([]byte(nil), p...)
		fwd(p)
		checkSums(t, p)
		d := decode(t, p)
		if string(d.payload) != string(decode(t, orig).payload) {
			t.Fatal("payload changed")
		}
		if mode%5 == 3 {
			// An ICMP error from a router beyond, about the translated packet.
			e := icmpErr(t, "192.0.2.1", d.src, 11, 0, p, 0)
			back(e)
			checkSums(t, e)
			ed := decode(t, e)
			if ed.dst != a.ip {
				t.Fatalf("error went to %s", ed.dst)
			}
			q := e[28:]
			for i := range orig {
				if i != 8 && i != 10 && i != 11 && q[i] != orig[i] {
					t.Fatalf("quote byte %d differs:\n% x\n% x", i, q[:len(orig)], orig)
				}
			}
			return
		}
		// The reply, as the receiver sends it back.
		sp, dp := d.dport, d.sport
		if proto == icmp {
			sp, dp = 0, d.id
		}
		r := mk(d.dst, d.src, sp, dp, true)
		back(r)
		checkSums(t, r)
		rd := decode(t, r)
		wantDst, wantSrc := a, b
		if rd.src != wantSrc.ip || rd.dst != wantDst.ip {
			t.Fatalf("reply %s -> %s, want %s -> %s (forward %+v)", rd.src, rd.dst, wantSrc.ip, wantDst.ip, d)
		}
		switch proto {
		case tcp, udp:
			if rd.sport != wantSrc.port || rd.dport != wantDst.port {
				t.Fatalf("reply ports %d -> %d, want %d -> %d", rd.sport, rd.dport, wantSrc.port, wantDst.port)
			}
		case icmp:
			if rd.id != a.port {
				t.Fatalf("echo id %d, want %d", rd.id, a.port)
			}
		}
		if string(rd.payload) != string(payload) && proto != 47 && proto != 50 {
			t.Fatal("reply payload changed")
		}
	})
}

// FuzzArbitrary feeds arbitrary transport bytes, protocols and fragment
// fields (behind a valid IPv4 header, as the router delivers them) through
// In and Out in every direction: no panic, a Drop always has a reason, the
// length never changes and the IP header checksum stays valid.
func FuzzArbitrary(f *testing.F) {
	f.Add(uint8(6), uint16(0), uint8(0), []byte{0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x00, 0x02, 0xff, 0xff, 0, 0, 0, 0})
	f.Add(uint8(6), uint16(0), uint8(1), []byte{0, 80, 0x1f, 0x90, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0})
	f.Add(uint8(17), uint16(0x2000), uint8(2), []byte{0x13, 0x88, 0, 53, 0, 8, 0, 0})
	f.Add(uint8(1), uint16(0), uint8(3), []byte{11, 0, 0, 0, 0, 0, 0, 0, 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 203, 0, 113, 1, 198, 51, 100, 7, 0x13, 0x88, 0, 53, 0, 8, 0, 0})
	f.Add(uint8(1), uint16(0), uint8(4), []byte{8, 0, 0, 0, 0, 1, 0, 1})
	f.Add(uint8(17), uint16(4), uint8(5), []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(uint8(47), uint16(0), uint8(6), []byte{0, 0, 8, 0})
	f.Fuzz(func(t *testing.T, proto uint8, frag uint16, dir uint8, l4 []byte) {
		n, w := newNAT(t, testConfig())
		srcs := []string{"10.1.1.10", "10.1.1.5", "10.1.1.6", "198.51.100.7", "203.0.113.1"}
		dsts := []string{"198.51.100.7", "203.0.113.1", "203.0.113.50", "10.1.1.5", "10.1.2.9"}
		for round := 0; round < 2; round++ {
			for i, src := range srcs {
				dst := dsts[(i+int(dir))%len(dsts)]
				p := build(t, pk{src: src, dst: dst, proto: 200, payload: l4})
				p.SetProto(proto)
				p.SetFlagsFrag(frag & 0xbfff)
				p.ComputeChecksum()
				l := len(p)
				inNet := []uint16{nInside, nPublic, nInside2}[(i+round)%3]
				outNet := []uint16{nPublic, nInside, nInside2}[(int(dir)+i)%3]
				if v, r := w.In(p, inNet, sec); v == Drop && r == ReasonNone {
					t.Fatal("drop without reason")
				} else if v == Drop || v == Held {
					continue
				}
				if round == 1 {
					inNet = Local
				}
				if v, r := w.Out(p, inNet, outNet, sec); v == Drop && r == ReasonNone {
					t.Fatal("drop without reason")
				}
				if len(p) != l {
					t.Fatal("length changed")
				}
				if fold(sum16(p[:20])) != 0xffff {
					t.Fatal("header checksum broken")
				}
				for w.HasReleased() {
					q, _, _, _, ok := w.Released()
					if !ok || fold(sum16(q[:20])) != 0xffff {
						t.Fatal("released fragment: header checksum broken")
					}
				}
			}
		}
		n.Reap(sec+int64(3*time.Hour), 1000)
		if n.Len() != 0 {
			t.Fatalf("%d sessions left after every timeout", n.Len())
		}
		if h := counts(n)["nat-frag-holding"]; h != 0 {
			t.Fatalf("%d fragments held after DefaultFragTimeout", h)
		}
	})
}
