package nat

import (
	"net/netip"
	"strings"
	"testing"

	"vrouter/config"
	"vrouter/packet"
)

const (
	tcp  = packet.ProtoTCP
	udp  = packet.ProtoUDP
	icmp = packet.ProtoICMP
	syn  = packet.TCPSyn
	ack  = packet.TCPAck
	fin  = packet.TCPFin
	rst  = packet.TCPRst
)

func TestSNATTCPHandshake(t *testing.T) {
	n, w := newNAT(t, testConfig())
	now := 10 * sec
	d := out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: tcp, sport: 40000, dport: 80, flags: syn, seq: 1000}), now, Translated)
	if d.src != "203.0.113.1" || d.sport != 40000 || d.dst != "198.51.100.7" || d.dport != 80 {
		t.Fatalf("SNAT: %+v", d)
	}
	d = in(t, w, build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: tcp, sport: 80, dport: 40000, flags: syn | ack, seq: 5000, ack: 1001}), now, Translated)
	if d.dst != "10.1.1.10" || d.dport != 40000 || d.src != "198.51.100.7" {
		t.Fatalf("reverse: %+v", d)
	}
	out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: tcp, sport: 40000, dport: 80, flags: ack, seq: 1001, ack: 5001, payload: []byte("GET /")}), now, Translated)
	ss := n.Sessions(netip.Addr{})
	if len(ss) != 1 || ss[0].State != "ESTABLISHED" || ss[0].NAT != "snat" || ss[0].Packets != 3 {
		t.Fatalf("sessions: %+v", ss)
	}
	if ss[0].Orig.String() != "10.1.1.10:40000 -> 198.51.100.7:80" || ss[0].Reply.String() != "198.51.100.7:80 -> 203.0.113.1:40000" {
		t.Fatalf("tuples: %v / %v", ss[0].Orig, ss[0].Reply)
	}
	if got := n.Sessions(netip.MustParseAddr("10.9.9.9")); len(got) != 0 {
		t.Fatalf("filter: %v", got)
	}
	if got := n.Sessions(netip.MustParseAddr("203.0.113.1")); len(got) != 1 {
		t.Fatalf("filter by external: %v", got)
	}
}

func TestNotNATedPass(t *testing.T) {
	n, w := newNAT(t, testConfig())
	// Between two inside networks: no rule applies.
	p := build(t, pk{src: "10.1.1.10", dst: "10.1.2.20", proto: udp, sport: 1, dport: 2})
	orig := append([]byte(nil), p...)
	if v, _ := w.In(p, nInside, sec); v != Pass {
		t.Fatal(v)
	}
	if v, _ := w.Out(p, nInside, nInside2, sec); v != Pass {
		t.Fatal(v)
	}
	if string(p) != string(orig) || n.Len() != 0 {
		t.Fatal("packet changed or session created")
	}
	// Public to public transit.
	p = build(t, pk{src: "198.51.100.1", dst: "192.0.2.1", proto: tcp, sport: 1, dport: 2, flags: ack})
	if v, _ := w.In(p, nPublic, sec); v != Pass {
		t.Fatal(v)
	}
	if v, _ := w.Out(p, nPublic, nPublic, sec); v != Pass || n.Len() != 0 {
		t.Fatal(v)
	}
}

func TestEndpointIndependentMapping(t *testing.T) {
	_, w := newNAT(t, testConfig())
	a := out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53}), sec, Translated)
	// Another host takes the preserved port... no: same host, second server.
	b := out(t, w, build(t, pk{src: "10.1.1.10", dst: "192.0.2.9", proto: udp, sport: 5000, dport: 123}), sec, Translated)
	if a.src != b.src || a.sport != b.sport {
		t.Fatalf("EIM broken: %s:%d vs %s:%d", a.src, a.sport, b.src, b.sport)
	}
	// A second host with the same source port gets another port (no overloading).
	c := out(t, w, build(t, pk{src: "10.1.1.11", dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53}), sec, Translated)
	if c.sport == a.sport || c.sport < 1024 {
		t.Fatalf("second host got port %d (first %d)", c.sport, a.sport)
	}
	// The same for the second host to a second server.
	d := out(t, w, build(t, pk{src: "10.1.1.11", dst: "192.0.2.9", proto: udp, sport: 5000, dport: 123}), sec, Translated)
	if d.sport != c.sport {
		t.Fatalf("EIM for second host: %d vs %d", d.sport, c.sport)
	}
}

func TestPortPreservationAndLowPorts(t *testing.T) {
	_, w := newNAT(t, testConfig())
	d := out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 33333, dport: 53}), sec, Translated)
	if d.sport != 33333 {
		t.Fatalf("not preserved: %d", d.sport)
	}
	d = out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 123, dport: 123}), sec, Translated)
	if d.sport != 123 {
		t.Fatalf("low port not preserved: %d", d.sport)
	}
	d = out(t, w, build(t, pk{src: "10.1.1.11", dst: "198.51.100.7", proto: udp, sport: 123, dport: 123}), sec, Translated)
	if d.sport == 123 || d.sport >= 1024 || d.sport == 0 {
		t.Fatalf("low port mapped to %d", d.sport)
	}
	d = out(t, w, build(t, pk{src: "10.1.1.11", dst: "198.51.100.7", proto: udp, sport: 33333, dport: 53}), sec, Translated)
	if d.sport == 33333 || d.sport < 1024 {
		t.Fatalf("high port mapped to %d", d.sport)
	}
	// TCP has its own port space: 33333/tcp is still free.
	d = out(t, w, build(t, pk{src: "10.1.1.11", dst: "198.51.100.7", proto: tcp, sport: 33333, dport: 80, flags: syn}), sec, Translated)
	if d.sport != 33333 {
		t.Fatalf("tcp port not preserved: %d", d.sport)
	}
}

func TestPairedPooling(t *testing.T) {
	c := testConfig()
	c.NAT.SNAT[0].To = config.AddrRange{First: netip.MustParseAddr("203.0.113.10"), Last: netip.MustParseAddr("203.0.113.17")}
	_, w := newNAT(t, c)
	seen := map[string]bool{}
	for h := 2; h < 40; h++ {
		host := "10.1.1." + itoa(h)
		var ext string
		for i, pr := range []uint8{udp, tcp, icmp} {
			p := pk{src: host, dst: "198.51.100." + itoa(i+1), proto: pr, sport: uint16(2000 + i), dport: 80, flags: syn, icmpType: 8, id: 77}
			d := out(t, w, build(t, p), sec, Translated)
			if ext == "" {
				ext = d.src
			} else if d.src != ext {
				t.Fatalf("host %s used %s and %s", host, ext, d.src)
			}
		}
		seen[ext] = true
	}
	if len(seen) < 4 {
		t.Fatalf("hosts spread over only %d of 8 addresses", len(seen))
	}
}

func TestPoolExhaustion(t *testing.T) {
	c := testConfig()
	c.NAT.SNAT[0].Ports = config.PortRange{Lo: 2000, Hi: 2003}
	n, w := newNAT(t, c)
	var ports []uint16
	for h := 10; h < 14; h++ {
		d := out(t, w, build(t, pk{src: "10.1.1." + itoa(h), dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53}), sec, Translated)
		ports = append(ports, d.sport)
	}
	p := build(t, pk{src: "10.1.1.20", dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53})
	w.In(p, nInside, sec)
	if v, r := w.Out(p, nInside, nPublic, sec); v != Drop || r != OutOfPorts {
		t.Fatalf("got %v %v", v, r)
	}
	if counts(n)["nat-out-of-ports"] != 1 {
		t.Fatal("not counted")
	}
	ri := n.Rules()
	var udpPool PoolUse
	for _, pu := range ri.SNAT[0].Pools {
		if pu.Proto == "udp" {
			udpPool = pu
		}
	}
	if udpPool.Used != 4 || udpPool.Exhausted != 1 || udpPool.Size != 4 {
		t.Fatalf("pool: %+v", udpPool)
	}
	// Existing mappings still work, in both directions.
	for i, h := range []int{10, 11, 12, 13} {
		d := out(t, w, build(t, pk{src: "10.1.1." + itoa(h), dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53}), 2*sec, Translated)
		if d.sport != ports[i] {
			t.Fatalf("mapping changed")
		}
		d = in(t, w, build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: udp, sport: 53, dport: ports[i]}), 2*sec, Translated)
		if d.dst != "10.1.1."+itoa(h) {
			t.Fatalf("reply went to %s", d.dst)
		}
	}
	// After the mappings expire, ports come back.
	if got := n.Reap(2*sec+int64(c.Conntrack.UDP)+1, 100); got != 4 {
		t.Fatalf("reaped %d", got)
	}
	out(t, w, build(t, pk{src: "10.1.1.20", dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53}), 400*sec, Translated)
}

func TestForwardPortNeverInPool(t *testing.T) {
	c := testConfig()
	c.NAT.SNAT[0].Ports = config.PortRange{Lo: 8079, Hi: 8081}
	_, w := newNAT(t, c)
	used := map[uint16]bool{}
	for h := 10; h < 12; h++ {
		d := out(t, w, build(t, pk{src: "10.1.1." + itoa(h), dst: "198.51.100.7", proto: tcp, sport: 8080, dport: 80, flags: syn}), sec, Translated)
		if d.sport == 8080 {
			t.Fatal("dynamic mapping took the forwarded port 8080 (port shadowing)")
		}
		used[d.sport] = true
	}
	p := build(t, pk{src: "10.1.1.12", dst: "198.51.100.7", proto: tcp, sport: 8080, dport: 80, flags: syn})
	if v, r := w.Out(p, nInside, nPublic, sec); v != Drop || r != OutOfPorts {
		t.Fatalf("%v %v", v, r)
	}
	// UDP 8080 is not forwarded, so it may be preserved.
	d := out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 8080, dport: 53}), sec, Translated)
	if d.sport != 8080 {
		t.Fatalf("udp 8080: %d", d.sport)
	}
}

func TestFilteringAddressDependent(t *testing.T) {
	n, w := newNAT(t, testConfig())
	// Unsolicited: no mapping at all.
	p := build(t, pk{src: "198.51.100.9", dst: "203.0.113.1", proto: udp, sport: 1, dport: 5000})
	if v, r := w.In(p, nPublic, sec); v != Drop || r != NoSession {
		t.Fatalf("%v %v", v, r)
	}
	p = build(t, pk{src: "198.51.100.9", dst: "203.0.113.1", proto: tcp, sport: 1, dport: 5000, flags: syn})
	if v, r := w.In(p, nPublic, sec); v != Drop || r != NoSession {
		t.Fatalf("%v %v", v, r)
	}
	out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53}), sec, Translated)
	// Another host: filtered.
	p = build(t, pk{src: "198.51.100.9", dst: "203.0.113.1", proto: udp, sport: 53, dport: 5000})
	if v, r := w.In(p, nPublic, sec); v != Drop || r != Filtered {
		t.Fatalf("%v %v", v, r)
	}
	// Same host, other port: allowed (address-dependent), new session.
	d := in(t, w, build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: udp, sport: 9999, dport: 5000}), sec, Translated)
	if d.dst != "10.1.1.10" || d.dport != 5000 {
		t.Fatalf("%+v", d)
	}
	if n.Len() != 2 {
		t.Fatalf("sessions %d", n.Len())
	}
	c := counts(n)
	if c["nat-filtered"] != 1 || c["nat-no-session"] != 2 {
		t.Fatalf("counters %v", c)
	}
}

func TestFilteringEndpointIndependent(t *testing.T) {
	c := testConfig()
	c.NAT.Filtering = "endpoint-independent"
	_, w := newNAT(t, c)
	out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53}), sec, Translated)
	d := in(t, w, build(t, pk{src: "192.0.2.99", dst: "203.0.113.1", proto: udp, sport: 7, dport: 5000}), sec, Translated)
	if d.dst != "10.1.1.10" || d.dport != 5000 {
		t.Fatalf("%+v", d)
	}
	// TCP simultaneous-open style: inbound SYN through an existing TCP mapping.
	out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: tcp, sport: 6000, dport: 443, flags: syn, seq: 1}), sec, Translated)
	d = in(t, w, build(t, pk{src: "192.0.2.99", dst: "203.0.113.1", proto: tcp, sport: 7, dport: 6000, flags: syn, seq: 1}), sec, Translated)
	if d.dst != "10.1.1.10" {
		t.Fatalf("%+v", d)
	}
}

func TestFloatingIP(t *testing.T) {
	n, w := newNAT(t, testConfig())
	// Client to floating IP: dst rewritten, source preserved.
	d := in(t, w, build(t, pk{src: "198.51.100.7", dst: "203.0.113.50", proto: tcp, sport: 50000, dport: 22, flags: syn}), sec, Translated)
	if d.dst != "10.1.1.5" || d.dport != 22 || d.src != "198.51.100.7" || d.sport != 50000 {
		t.Fatalf("%+v", d)
	}
	// VM replies: source becomes the floating IP.
	d = out(t, w, build(t, pk{src: "10.1.1.5", dst: "198.51.100.7", proto: tcp, sport: 22, dport: 50000, flags: syn | ack}), sec, Translated)
	if d.src != "203.0.113.50" || d.sport != 22 {
		t.Fatalf("%+v", d)
	}
	// VM-initiated: leaves with the floating IP, port preserved.
	d = out(t, w, build(t, pk{src: "10.1.1.5", dst: "192.0.2.1", proto: udp, sport: 4444, dport: 53}), sec, Translated)
	if d.src != "203.0.113.50" || d.sport != 4444 {
		t.Fatalf("%+v", d)
	}
	d = in(t, w, build(t, pk{src: "192.0.2.1", dst: "203.0.113.50", proto: udp, sport: 53, dport: 4444}), sec, Translated)
	if d.dst != "10.1.1.5" || d.dport != 4444 {
		t.Fatalf("%+v", d)
	}
	// Unknown protocol (GRE): addresses only, both ways.
	gre := []byte{0, 0, 0x08, 0, 1, 2, 3, 4}
	p := build(t, pk{src: "198.51.100.7", dst: "203.0.113.50", proto: 47, payload: gre})
	d = in(t, w, p, sec, Translated)
	if d.dst != "10.1.1.5" || string(p[20:]) != string(gre) {
		t.Fatalf("gre in: %+v", d)
	}
	p = build(t, pk{src: "10.1.1.5", dst: "198.51.100.7", proto: 47, payload: gre})
	d = out(t, w, p, sec, Translated)
	if d.src != "203.0.113.50" || string(p[20:]) != string(gre) {
		t.Fatalf("gre out: %+v", d)
	}
	// Mid-stream TCP without a session is translated 1:1 without one.
	before := n.Len()
	d = in(t, w, build(t, pk{src: "198.51.100.8", dst: "203.0.113.50", proto: tcp, sport: 1, dport: 22, flags: ack}), sec, Translated)
	if d.dst != "10.1.1.5" || n.Len() != before {
		t.Fatalf("stateless: %+v", d)
	}
	// The floating address is not used for traffic between inside networks.
	p = build(t, pk{src: "10.1.1.5", dst: "10.1.2.9", proto: udp, sport: 1, dport: 2})
	if v, _ := w.Out(p, nInside, nInside2, sec); v != Pass {
		t.Fatal("floating applied to inside traffic")
	}
	var kinds []string
	for _, e := range compileRules(t, testConfig()).ExternalAddrs() {
		kinds = append(kinds, e.Addr.String()+"/"+e.Kind+"/"+itoa(int(e.Net)))
	}
	if strings.Join(kinds, " ") != "203.0.113.1/snat/1 203.0.113.50/floating/1" {
		t.Fatalf("external addrs: %v", kinds)
	}
}

func TestForwardBalancing(t *testing.T) {
	c := testConfig()
	c.NAT.Forward[0].Internal = []netip.AddrPort{netip.MustParseAddrPort("10.1.1.6:80"), netip.MustParseAddrPort("10.1.1.7:8000")}
	n, w := newNAT(t, c)
	got := map[string]int{}
	for i := 0; i < 64; i++ {
		sp := uint16(30000 + i)
		d := in(t, w, build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: tcp, sport: sp, dport: 8080, flags: syn}), sec, Translated)
		got[d.dst+":"+itoa(int(d.dport))]++
		// Same flow again goes to the same backend.
		d2 := in(t, w, build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: tcp, sport: sp, dport: 8080, flags: ack}), sec, Translated)
		if d2.dst != d.dst || d2.dport != d.dport {
			t.Fatal("flow moved between backends")
		}
		// Backend reply leaves from the forward's address and port.
		r := out(t, w, build(t, pk{src: d.dst, dst: "198.51.100.7", proto: tcp, sport: d.dport, dport: sp, flags: syn | ack}), sec, Translated)
		if r.src != "203.0.113.1" || r.sport != 8080 {
			t.Fatalf("reply %+v", r)
		}
	}
	if got["10.1.1.6:80"] < 10 || got["10.1.1.7:8000"] < 10 {
		t.Fatalf("balance: %v", got)
	}
	ri := n.Rules()
	if ri.Forward[0].Sessions != 64 || ri.Forward[0].Backends[0]+ri.Forward[0].Backends[1] != 64 {
		t.Fatalf("rules info: %+v", ri.Forward[0])
	}
	// A non-SYN to the forward without a session is dropped.
	p := build(t, pk{src: "198.51.100.9", dst: "203.0.113.1", proto: tcp, sport: 1, dport: 8080, flags: ack})
	if v, r := w.In(p, nPublic, sec); v != Drop || r != TCPNoSession {
		t.Fatalf("%v %v", v, r)
	}
}

func TestHairpinFloating(t *testing.T) {
	n, w := newNAT(t, testConfig())
	// 10.1.1.20 (SNAT) reaches the floating IP of 10.1.1.5.
	p := build(t, pk{src: "10.1.1.20", dst: "203.0.113.50", proto: tcp, sport: 41000, dport: 80, flags: syn})
	mustVerdict(t, first(w.In(p, nInside, sec)), 0, Translated)
	mustVerdict(t, first(w.Out(p, nInside, nInside, sec)), 0, Translated)
	checkSums(t, p)
	d := decode(t, p)
	if d.dst != "10.1.1.5" || d.dport != 80 || d.src != "203.0.113.1" {
		t.Fatalf("hairpin: %+v (receiver must see the sender's external address)", d)
	}
	xport := d.sport
	// The VM's reply goes back through both stages.
	p = build(t, pk{src: "10.1.1.5", dst: "203.0.113.1", proto: tcp, sport: 80, dport: xport, flags: syn | ack})
	mustVerdict(t, first(w.In(p, nInside, sec)), 0, Translated)
	mustVerdict(t, first(w.Out(p, nInside, nInside, sec)), 0, Translated)
	checkSums(t, p)
	d = decode(t, p)
	if d.src != "203.0.113.50" || d.sport != 80 || d.dst != "10.1.1.20" || d.dport != 41000 {
		t.Fatalf("hairpin reply: %+v", d)
	}
	ss := n.Sessions(netip.MustParseAddr("10.1.1.20"))
	if len(ss) != 1 || ss[0].NAT != "snat+dnat" {
		t.Fatalf("%+v", ss)
	}
	if counts(n)["nat-hairpin-sessions"] != 1 {
		t.Fatal("hairpin not counted")
	}
	// The sender's mapping is the one it uses outside too (EIM).
	e := out(t, w, build(t, pk{src: "10.1.1.20", dst: "198.51.100.7", proto: tcp, sport: 41000, dport: 80, flags: syn}), sec, Translated)
	if e.sport != xport {
		t.Fatalf("outside mapping %d, hairpin %d", e.sport, xport)
	}
}

func TestHairpinForwardFromFloatingHost(t *testing.T) {
	_, w := newNAT(t, testConfig())
	// The floating VM itself reaches the port forward on the SNAT address.
	p := build(t, pk{src: "10.1.1.5", dst: "203.0.113.1", proto: tcp, sport: 42000, dport: 8080, flags: syn})
	w.In(p, nInside, sec)
	w.Out(p, nInside, nInside, sec)
	checkSums(t, p)
	d := decode(t, p)
	if d.dst != "10.1.1.6" || d.dport != 80 || d.src != "203.0.113.50" || d.sport != 42000 {
		t.Fatalf("%+v", d)
	}
	p = build(t, pk{src: "10.1.1.6", dst: "203.0.113.50", proto: tcp, sport: 80, dport: 42000, flags: syn | ack})
	w.In(p, nInside, sec)
	w.Out(p, nInside, nInside, sec)
	checkSums(t, p)
	d = decode(t, p)
	if d.src != "203.0.113.1" || d.sport != 8080 || d.dst != "10.1.1.5" || d.dport != 42000 {
		t.Fatalf("%+v", d)
	}
}

func first(v Verdict, _ Reason) Verdict { return v }

func TestICMPEcho(t *testing.T) {
	_, w := newNAT(t, testConfig())
	a := out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: icmp, icmpType: 8, id: 4242, payload: []byte("ping")}), sec, Translated)
	b := out(t, w, build(t, pk{src: "10.1.1.11", dst: "198.51.100.7", proto: icmp, icmpType: 8, id: 4242, payload: []byte("ping")}), sec, Translated)
	if a.src != "203.0.113.1" || a.id != 4242 || b.id == 4242 {
		t.Fatalf("ids %d %d", a.id, b.id)
	}
	d := in(t, w, build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: icmp, icmpType: 0, id: b.id, payload: []byte("ping")}), sec, Translated)
	if d.dst != "10.1.1.11" || d.id != 4242 {
		t.Fatalf("%+v", d)
	}
	d = in(t, w, build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: icmp, icmpType: 0, id: 4242}), sec, Translated)
	if d.dst != "10.1.1.10" || d.id != 4242 {
		t.Fatalf("%+v", d)
	}
	// Echo request to the router's own (SNAT) address: not NAT's business.
	p := build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: icmp, icmpType: 8, id: 1})
	if v, _ := w.In(p, nPublic, sec); v != Pass {
		t.Fatal(v)
	}
	// Ping to a floating IP reaches the VM.
	d = in(t, w, build(t, pk{src: "198.51.100.7", dst: "203.0.113.50", proto: icmp, icmpType: 8, id: 9}), sec, Translated)
	if d.dst != "10.1.1.5" || d.id != 9 {
		t.Fatalf("%+v", d)
	}
	d = out(t, w, build(t, pk{src: "10.1.1.5", dst: "198.51.100.7", proto: icmp, icmpType: 0, id: 9}), sec, Translated)
	if d.src != "203.0.113.50" || d.id != 9 {
		t.Fatalf("%+v", d)
	}
}

// TestICMPErrorInbound: an error from a router beyond the NAT quoting the
// translated packet goes to the inside host with the quote as the host sent it.
func TestICMPErrorInbound(t *testing.T) {
	c := testConfig()
	c.NAT.SNAT[0].To.Last = netip.MustParseAddr("203.0.113.2")
	n, w := newNAT(t, c)
	host := "10.1.1.10"
	for h := 10; h < 40; h++ { // find a host paired with 203.0.113.1
		p := build(t, pk{src: "10.1.1." + itoa(h), dst: "198.51.100.7", proto: udp, sport: 5000, dport: 33434, payload: []byte("trace")})
		orig := append([]byte(nil), p...)
		d := out(t, w, p, sec, Translated)
		if d.src != "203.0.113.1" {
			continue
		}
		host = "10.1.1." + itoa(h)
		// Whole quote: every checksum including the quoted UDP one is checked.
		e := icmpErr(t, "192.0.2.1", "203.0.113.1", 11, 0, p, 0)
		dd := in(t, w, e, sec, Translated)
		if dd.dst != host || dd.src != "192.0.2.1" {
			t.Fatalf("outer %+v", dd)
		}
		q := e[28:]
		// Compare the quote with the original, ignoring TTL and header checksum.
		for i := range orig {
			if i == 8 || i == 10 || i == 11 {
				continue
			}
			if q[i] != orig[i] {
				t.Fatalf("quote differs at %d:\n% x\n% x", i, q[:len(orig)], orig)
			}
		}
		// Truncated quote (IP header + 8 bytes).
		e = icmpErr(t, "192.0.2.1", "203.0.113.1", 3, 4, p, 28)
		if dd = in(t, w, e, sec, Translated); dd.dst != host {
			t.Fatalf("truncated %+v", dd)
		}
		// Outer destination other than the quoted source: dropped.
		e = icmpErr(t, "192.0.2.1", "203.0.113.2", 3, 3, p, 0)
		if v, r := w.In(e, nPublic, sec); v != Drop || r != ICMPErrMismatch {
			t.Fatalf("%v %v", v, r)
		}
		break
	}
	if host == "" {
		t.Fatal("no host paired with .1")
	}
	// Quote matching no session: dropped.
	p := build(t, pk{src: "203.0.113.2", dst: "198.51.100.7", proto: udp, sport: 1111, dport: 53})
	e := icmpErr(t, "192.0.2.1", "203.0.113.2", 3, 3, p, 0)
	if v, r := w.In(e, nPublic, sec); v != Drop || r != ICMPErrNoSession {
		t.Fatalf("%v %v", v, r)
	}
	// ICMP errors do not refresh sessions.
	ss := n.Sessions(netip.MustParseAddr(host))
	if len(ss) != 1 || ss[0].Packets != 1 {
		t.Fatalf("%+v", ss)
	}
}

// TestICMPErrorLocal: the router itself sends time exceeded about an inbound
// packet it already reverse-translated; the client sees its own packet quoted.
func TestICMPErrorLocal(t *testing.T) {
	_, w := newNAT(t, testConfig())
	out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: tcp, sport: 40000, dport: 80, flags: syn}), sec, Translated)
	reply := build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: tcp, sport: 80, dport: 40000, flags: syn | ack, ttl: 1})
	sent := append([]byte(nil), reply...)
	if v, _ := w.In(reply, nPublic, sec); v != Translated {
		t.Fatal(v)
	}
	// TTL expired: the router quotes the packet as it is now.
	e := icmpErr(t, "203.0.113.1", "198.51.100.7", 11, 0, reply, 0)
	mustVerdict(t, first(w.Out(e, Local, nPublic, sec)), 0, Translated)
	checkSums(t, e)
	q := decode(t, e[28:])
	if q.src != "198.51.100.7" || q.dst != "203.0.113.1" || q.dport != 40000 {
		t.Fatalf("quote %+v", q)
	}
	if string(e[28+20:]) != string(sent[20:]) {
		t.Fatal("quoted TCP differs from what the client sent")
	}
	// Error about an outbound packet before SNAT: quote already original.
	ob := build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: tcp, sport: 40000, dport: 80, flags: ack, ttl: 1})
	e = icmpErr(t, "10.1.1.1", "10.1.1.10", 11, 0, ob, 0)
	if v, _ := w.Out(e, Local, nInside, sec); v != Pass {
		t.Fatal(v)
	}
}

// TestICMPErrorFromInside: an inside host's port unreachable about a reply
// leaves with the external address and the quote the server sent.
func TestICMPErrorFromInside(t *testing.T) {
	_, w := newNAT(t, testConfig())
	out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53}), sec, Translated)
	r := build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: udp, sport: 53, dport: 5000, payload: []byte("answer")})
	sent := append([]byte(nil), r...)
	in(t, w, r, sec, Translated)
	e := icmpErr(t, "10.1.1.10", "198.51.100.7", 3, 3, r, 0)
	d := out(t, w, e, sec, Translated)
	if d.src != "203.0.113.1" || d.dst != "198.51.100.7" {
		t.Fatalf("%+v", d)
	}
	if string(e[28+8:]) != string(sent[8:]) || e[28+12] != sent[12] {
		t.Fatal("quote not restored")
	}
	// Unmatched error from an SNAT source: dropped rather than leaking.
	q := build(t, pk{src: "198.51.100.7", dst: "10.1.1.10", proto: udp, sport: 1, dport: 2})
	e = icmpErr(t, "10.1.1.10", "198.51.100.7", 3, 3, q, 0)
	w.In(e, nInside, sec)
	if v, r := w.Out(e, nInside, nPublic, sec); v != Drop || r != ICMPErrNoSession {
		t.Fatalf("%v %v", v, r)
	}
}

func TestUDPZeroChecksum(t *testing.T) {
	_, w := newNAT(t, testConfig())
	p := build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53, noUDPCsum: true, payload: []byte("x")})
	out(t, w, p, sec, Translated)
	if p[26] != 0 || p[27] != 0 {
		t.Fatal("zero UDP checksum changed")
	}
	p = build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: udp, sport: 53, dport: 5000, noUDPCsum: true})
	in(t, w, p, sec, Translated)
	if p[26] != 0 || p[27] != 0 {
		t.Fatal("zero UDP checksum changed")
	}
}

func TestTableFull(t *testing.T) {
	c := testConfig()
	c.Conntrack.Max = 4
	n, w := newNAT(t, c)
	for i := 0; i < 4; i++ {
		sp := uint16(1000 + i*1000)
		out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: tcp, sport: sp, dport: 80, flags: syn, seq: 1}), sec, Translated)
		in(t, w, build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: tcp, sport: 80, dport: sp, flags: syn | ack, seq: 1, ack: 2}), sec, Translated)
		out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: tcp, sport: sp, dport: 80, flags: ack, seq: 2, ack: 2}), sec, Translated)
	}
	p := build(t, pk{src: "10.1.1.11", dst: "198.51.100.7", proto: tcp, sport: 7777, dport: 80, flags: syn})
	if v, r := w.Out(p, nInside, nPublic, sec); v != Drop || r != TableFull {
		t.Fatalf("%v %v", v, r)
	}
	p = build(t, pk{src: "198.51.100.7", dst: "203.0.113.50", proto: udp, sport: 1, dport: 2})
	if v, r := w.In(p, nPublic, sec); v != Drop || r != TableFull {
		t.Fatalf("%v %v", v, r)
	}
	// Existing flows keep working.
	out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: tcp, sport: 1000, dport: 80, flags: ack, seq: 2, ack: 2}), sec, Translated)
	if counts(n)["nat-table-full"] != 2 || n.Len() != 4 {
		t.Fatal(counts(n))
	}
	// No port leaked by the refused flow.
	for _, pu := range n.Rules().SNAT[0].Pools {
		if pu.Proto == "tcp" && pu.Used != 4 {
			t.Fatalf("tcp ports used %d", pu.Used)
		}
	}
}

// TestEvictUnreplied: a flood of half-open/unanswered flows fills the table;
// new flows replace them, established flows stay.
func TestEvictUnreplied(t *testing.T) {
	c := testConfig()
	c.Conntrack.Max = 8
	n, w := newNAT(t, c)
	cn := &conn{t, n, w}
	cn.o(syn, 1, 0, sec)
	cn.r(syn|ack, 1, 2, sec)
	cn.o(ack, 2, 2, sec)
	for i := 0; i < 50; i++ { // SYN flood to the floating IP from random sources
		p := build(t, pk{src: "192.0.2." + itoa(i+1), dst: "203.0.113.50", proto: tcp, sport: uint16(3000 + i), dport: 22, flags: syn})
		ts := sec + int64(i/7)*int64(EvictIdle) // some time passes
		mustVerdict(t, first(w.In(p, nPublic, ts)), 0, Translated)
	}
	// Sessions younger than EvictIdle are not evicted.
	for i := 0; i < 7; i++ {
		p := build(t, pk{src: "192.0.2.100", dst: "203.0.113.50", proto: tcp, sport: uint16(i), dport: 22, flags: syn})
		mustVerdict(t, first(w.In(p, nPublic, 20*sec)), 0, Translated)
	}
	p := build(t, pk{src: "192.0.2.200", dst: "203.0.113.50", proto: tcp, sport: 1, dport: 22, flags: syn})
	if v, r := w.In(p, nPublic, 20*sec+int64(EvictIdle)/2); v != Drop || r != TableFull {
		t.Fatalf("%v %v", v, r)
	}
	if n.Len() != 8 || counts(n)["nat-sessions-evicted"] == 0 || counts(n)["nat-table-full"] != 1 {
		t.Fatal(counts(n))
	}
	if cn.state() != "ESTABLISHED" {
		t.Fatal("established flow evicted")
	}
	if v, _ := cn.r(ack, 2, 2, 2*sec); v != Translated {
		t.Fatal("established flow broken")
	}
}

func TestClear(t *testing.T) {
	n, w := newNAT(t, testConfig())
	out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 1, dport: 2}), sec, Translated)
	out(t, w, build(t, pk{src: "10.1.1.11", dst: "198.51.100.7", proto: udp, sport: 1, dport: 2}), sec, Translated)
	if got := n.Clear(netip.MustParseAddr("10.1.1.10")); got != 1 || n.Len() != 1 {
		t.Fatal(got)
	}
	p := build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: udp, sport: 2, dport: 1})
	if v, _ := w.In(p, nPublic, sec); v != Drop {
		t.Fatal("cleared session still answers")
	}
	if got := n.Clear(netip.Addr{}); got != 1 || n.Len() != 0 {
		t.Fatal(got)
	}
	for _, pu := range n.Rules().SNAT[0].Pools {
		if pu.Used != 0 {
			t.Fatalf("ports still held: %+v", pu)
		}
	}
}

func TestCommit(t *testing.T) {
	c := testConfig()
	n, w := newNAT(t, c)
	for i := 0; i < 3; i++ {
		in(t, w, build(t, pk{src: "198.51.100.7", dst: "203.0.113.50", proto: udp, sport: uint16(100 + i), dport: 53}), sec, Translated)
	}
	out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53}), sec, Translated)
	c2 := testConfig()
	c2.NAT.Floating = nil
	got, why := commit(t, n, c2, w)
	if got != 3 || why != "3 sessions flushed: floating IP 203.0.113.50 removed" {
		t.Fatalf("%d %q", got, why)
	}
	if n.Len() != 1 {
		t.Fatal(n.Len())
	}
	// A new forward on a port a dynamic mapping holds flushes it.
	c3 := testConfig()
	c3.NAT.Floating = nil
	c3.NAT.Forward = append(c3.NAT.Forward, config.Forward{Proto: "udp", External: netip.MustParseAddrPort("203.0.113.1:5000"),
		Internal: []netip.AddrPort{netip.MustParseAddrPort("10.1.1.9:53")}})
	got, why = commit(t, n, c3, w)
	if got != 1 || !strings.Contains(why, "forward 203.0.113.1:5000/udp shadows") {
		t.Fatalf("%d %q", got, why)
	}
	got, why = commit(t, n, c3, w)
	if got != 0 || why != "" {
		t.Fatalf("%d %q", got, why)
	}
	if counts(n)["nat-sessions-flushed"] != 4 {
		t.Fatal(counts(n))
	}
	c4 := testConfig()
	c4.Conntrack.Max = 99
	if got, why = commit(t, n, c4, w); why != "conntrack max stays 1024 until restart" {
		t.Fatalf("%d %q", got, why)
	}
}

// A configuration that does not compile changes nothing: Compile only
// returns an error, the committed rules and the sessions stay.
func TestCompileErrorChangesNothing(t *testing.T) {
	c := testConfig()
	n, w := newNAT(t, c)
	in(t, w, build(t, pk{src: "198.51.100.7", dst: "203.0.113.50", proto: udp, sport: 100, dport: 53}), sec, Translated)
	out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53}), sec, Translated)
	before := n.Rules().String()
	bad := []func(c *config.Config){
		func(c *config.Config) { c.NAT.SNAT[0].Out = "nowhere" },
		func(c *config.Config) { c.NAT.Forward[0].Proto = "sctp" },
		func(c *config.Config) { c.Conntrack.UDP = 0 }, // defaults not applied
		func(c *config.Config) { c.Conntrack.FragmentTimeout = 0 },
		func(c *config.Config) { c.NAT.SNAT[0].Ports = config.PortRange{} },
		func(c *config.Config) { c.NAT.Floating = append(c.NAT.Floating, c.NAT.Floating[0]) },
		func(c *config.Config) {
			c.NAT.SNAT[0].To = config.AddrRange{First: netip.MustParseAddr("203.0.113.9"), Last: netip.MustParseAddr("203.0.113.2")}
		},
	}
	for i, f := range bad {
		c2 := testConfig()
		f(c2)
		if r, err := Compile(c2, cfgSlots(c2)); err == nil || r != nil {
			t.Fatalf("%d: compiled: %v", i, err)
		}
	}
	// A network the slot function does not know is refused too.
	if _, err := Compile(c, func(string) (uint16, bool) { return 0, false }); err == nil {
		t.Fatal("compiled without slots")
	}
	if n.Len() != 2 || n.Rules().String() != before || counts(n)["nat-sessions-flushed"] != 0 {
		t.Fatalf("NAT changed: %d sessions\n%s", n.Len(), n.Rules())
	}
	// The sessions still translate.
	d := in(t, w, build(t, pk{src: "198.51.100.7", dst: "203.0.113.50", proto: udp, sport: 100, dport: 53}), sec, Translated)
	if d.dst != "10.1.1.5" {
		t.Fatalf("%+v", d)
	}
}

// Network slots come from netIndex, not from the order of cfg.Networks.
func TestCompileSlots(t *testing.T) {
	c := testConfig()
	slots := map[string]uint16{"inside": 5, "public": 9, "inside2": 2}
	r, err := Compile(c, func(name string) (uint16, bool) { s, ok := slots[name]; return s, ok })
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range r.ExternalAddrs() {
		kinds = append(kinds, e.Addr.String()+"/"+e.Kind+"/"+itoa(int(e.Net)))
	}
	if strings.Join(kinds, " ") != "203.0.113.1/snat/9 203.0.113.50/floating/9" || !r.Active() {
		t.Fatalf("external addrs: %v", kinds)
	}
	n, err := New(c, r)
	if err != nil {
		t.Fatal(err)
	}
	w := n.NewWorker()
	p := build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53})
	if v, _ := w.Out(p, 5, 2, sec); v != Pass {
		t.Fatal("SNAT towards slot 2")
	}
	if v, why := w.Out(p, 5, 9, sec); v != Translated {
		t.Fatalf("SNAT towards slot 9: %v %v", v, why)
	}
	c.NAT = config.NAT{}
	if r := compileRules(t, c); r.Active() || len(r.ExternalAddrs()) != 0 {
		t.Fatal("empty rules active")
	}
}

func TestReasonsDescribed(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Reasons() {
		if r.String() == "" || r.Description() == "" || seen[r.String()] {
			t.Fatalf("reason %d: %q %q", r, r, r.Description())
		}
		seen[r.String()] = true
	}
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	s := ""
	for v > 0 {
		s = string(rune('0'+v%10)) + s
		v /= 10
	}
	return s
}

// TestHairpinMapping: an inside host reaching another inside host's SNAT
// mapping (RFC 4787 REQ-9) gets there, and is seen with its own mapping.
func TestHairpinMapping(t *testing.T) {
	c := testConfig()
	c.NAT.Filtering = "endpoint-independent"
	n, w := newNAT(t, c)
	out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 5000, dport: 3478}), sec, Translated)
	p := build(t, pk{src: "10.1.1.11", dst: "203.0.113.1", proto: udp, sport: 6000, dport: 5000, payload: []byte("p2p")})
	mustVerdict(t, first(w.In(p, nInside, sec)), 0, Translated)
	mustVerdict(t, first(w.Out(p, nInside, nInside, sec)), 0, Translated)
	checkSums(t, p)
	d := decode(t, p)
	if d.dst != "10.1.1.10" || d.dport != 5000 || d.src != "203.0.113.1" || d.sport != 6000 {
		t.Fatalf("%+v", d)
	}
	p = build(t, pk{src: "10.1.1.10", dst: "203.0.113.1", proto: udp, sport: 5000, dport: 6000})
	mustVerdict(t, first(w.In(p, nInside, sec)), 0, Translated)
	mustVerdict(t, first(w.Out(p, nInside, nInside, sec)), 0, Translated)
	checkSums(t, p)
	d = decode(t, p)
	if d.src != "203.0.113.1" || d.sport != 5000 || d.dst != "10.1.1.11" || d.dport != 6000 {
		t.Fatalf("%+v", d)
	}
	// The second host's own mapping is the same one it uses outside.
	e := out(t, w, build(t, pk{src: "10.1.1.11", dst: "198.51.100.7", proto: udp, sport: 6000, dport: 3478}), sec, Translated)
	if e.sport != 6000 || counts(n)["nat-hairpin-sessions"] != 1 {
		t.Fatalf("%+v %v", e, counts(n))
	}
}

func TestShowText(t *testing.T) {
	n, w := newNAT(t, testConfig())
	out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53}), sec, Translated)
	in(t, w, build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: tcp, sport: 1234, dport: 8080, flags: syn}), sec, Translated)
	got := n.Rules().String()
	for _, want := range []string{
		"sessions 2 of 1024, filtering address-dependent",
		"snat 10.1.0.0/16 -> public to 203.0.113.1-203.0.113.1 ports 1024-65535: 1 sessions",
		"  203.0.113.1/udp: 1 of 64512 ports used, 0 refused (out of ports)",
		"floating 203.0.113.50 <-> 10.1.1.5: 0 sessions",
		"forward tcp 203.0.113.1:8080 -> 10.1.1.6:80 (1): 1 sessions",
	} {
		if !strings.Contains(got, want+"\n") {
			t.Fatalf("show nat lacks %q:\n%s", want, got)
		}
	}
	ss := n.Sessions(netip.Addr{})
	if len(ss) != 2 || !strings.HasPrefix(ss[0].String(), "udp  10.1.1.10:5000 -> 198.51.100.7:53  reply 198.51.100.7:53 -> 203.0.113.1:5000  UNREPLIED snat timeout 5m0s") {
		t.Fatalf("%v", ss)
	}
}

// TestICMPErrorFromInsideRouter: a router between the NAT and a floating-IP
// VM reports an error about the client's packet; it leaves with the floating
// address as source and quotes the packet as the client sent it.
func TestICMPErrorFromInsideRouter(t *testing.T) {
	_, w := newNAT(t, testConfig())
	p := build(t, pk{src: "198.51.100.7", dst: "203.0.113.50", proto: udp, sport: 4000, dport: 33435})
	sent := append([]byte(nil), p...)
	in(t, w, p, sec, Translated)
	e := icmpErr(t, "10.1.1.254", "198.51.100.7", 11, 0, p, 0)
	d := out(t, w, e, sec, Translated)
	if d.src != "203.0.113.50" || d.dst != "198.51.100.7" {
		t.Fatalf("%+v", d)
	}
	if string(e[28+12:28+20]) != string(sent[12:20]) || string(e[28+20:]) != string(sent[20:]) {
		t.Fatal("quote not restored")
	}
}
