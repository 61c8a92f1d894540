package router

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/config"
	"vrouter/filter"
)

// The filter lab: network a (port pa, 192.0.2.0/24) is the outside with
// client host A (192.0.2.10); network b (pb, 198.51.100.0/24) holds the VM
// B (198.51.100.10), reached from outside through its floating IP
// 192.0.2.50 (filterFloat) or directly (routed, no NAT). Network b's
// filter_out, vm-in, guards the VM: ssh and http open, 443/tcp and 53/udp
// rejected, 8080 only from 192.0.2.20, ping allowed, the rest dropped.
const filterBase = `
[router]
name = "f"
[[port]]
name = "pa"
driver = "pipe"
[[port]]
name = "pb"
driver = "pipe"
mtu = 1400
[[network]]
name = "a"
links = ["pa"]
addresses = ["192.0.2.1/24"]
[[network]]
name = "b"
links = ["pb"]
addresses = ["198.51.100.1/24"]
filter_out = "vm-in"
[icmp]
rate_per_sec = 1000
burst = 50
[conntrack]
max = 4096
[[filter]]
name = "vm-in"
default = "drop"
[[filter.rule]]
action = "accept"
proto = "tcp"
destination = ["198.51.100.10"]
dport = "22,80"
[[filter.rule]]
action = "reject"
proto = "tcp"
dport = "443"
[[filter.rule]]
action = "reject"
proto = "udp"
dport = "53"
[[filter.rule]]
action = "accept"
proto = "tcp"
source = ["192.0.2.20"]
dport = "8080"
[[filter.rule]]
action = "accept"
proto = "icmp"
icmp_type = 8
`

const filterFloat = `
[[nat.floating]]
external = "192.0.2.50"
internal = "198.51.100.10"
`

var (
	ipFloat = net.IPv4(192, 0, 2, 50).To4()
	ipHostC = net.IPv4(192, 0, 2, 20).To4()
)

func filterCfg(t testing.TB, extra string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("f.toml", []byte(filterBase+extra))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// filterLab is the filter lab with both hosts resolved.
func filterLab(t testing.TB, extra string) *lab {
	t.Helper()
	l := labWith(t, filterCfg(t, extra))
	l.resolveA()
	now := l.clk.Now()
	l.r.Neigh.Update(1, 0xc633640a, [6]byte(hostB), true, now, func([]byte) {})
	l.r.Neigh.Update(0, 0xc0000214, [6]byte(hostA), true, now, func([]byte) {}) // 192.0.2.20 (host C) shares A's MAC
	return l
}

// seg is a TCP segment or UDP datagram for the filter tests.
type seg struct {
	src, dst     net.IP
	sport, dport uint16
	udp          bool
	flags        string // TCP: S, A, F, R, P in any order
	seq, ack     uint32
	payload      []byte
	ttl          uint8
	df           bool
}

func (s seg) frame(t testing.TB, from net.HardwareAddr, to [6]byte) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: s.src, DstIP: s.dst, Id: 1}
	if s.ttl != 0 {
		ip.TTL = s.ttl
	}
	if s.df {
		ip.Flags = layers.IPv4DontFragment
	}
	eth := &layers.Ethernet{SrcMAC: from, DstMAC: to[:], EthernetType: layers.EthernetTypeIPv4}
	if s.udp {
		ip.Protocol = layers.IPProtocolUDP
		u := &layers.UDP{SrcPort: layers.UDPPort(s.sport), DstPort: layers.UDPPort(s.dport)}
		u.SetNetworkLayerForChecksum(ip)
		return ser(t, eth, ip, u, gopacket.Payload(s.payload))
	}
	tc := &layers.TCP{SrcPort: layers.TCPPort(s.sport), DstPort: layers.TCPPort(s.dport), Seq: s.seq, Ack: s.ack, Window: 1000,
		SYN: strings.Contains(s.flags, "S"), ACK: strings.Contains(s.flags, "A"), FIN: strings.Contains(s.flags, "F"),
		RST: strings.Contains(s.flags, "R"), PSH: strings.Contains(s.flags, "P")}
	tc.SetNetworkLayerForChecksum(ip)
	return ser(t, eth, ip, tc, gopacket.Payload(s.payload))
}

// fromA sends s from host A (network a), fromB from the VM (network b);
// both run the router and return what left on each port.
func (l *lab) fromA(s seg) (onA, onB [][]byte) {
	l.pa.Inject(s.frame(l.t, hostA, macA))
	l.run()
	return l.pa.Take(), l.pb.Take()
}

func (l *lab) fromB(s seg) (onA, onB [][]byte) {
	l.pb.Inject(s.frame(l.t, hostB, macB))
	l.run()
	return l.pa.Take(), l.pb.Take()
}

// one decodes the only frame of fs, checking its checksums.
func one(t testing.TB, fs [][]byte, what string) gopacket.Packet {
	t.Helper()
	if len(fs) != 1 {
		t.Fatalf("%s: %d frames, want 1", what, len(fs))
	}
	p := decode(fs[0])
	checkIPChecksum(t, p)
	if err := p.ErrorLayer(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return p
}

func tcpOf(p gopacket.Packet) *layers.TCP {
	tc, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	return tc
}

// filterCounts is the counters of ruleset name: per rule, then the default.
func filterCounts(t testing.TB, r *Router, name string) ([]filter.Count, filter.Count) {
	t.Helper()
	for _, f := range r.Filters() {
		if f.Name == name {
			return f.Counts, f.Other
		}
	}
	t.Fatalf("no ruleset %s", name)
	return nil, filter.Count{}
}

// The first packet of a flow is classified; the accepted flow's later
// packets and replies pass without classification; a refused flow leaves
// no session behind (the floating IP's DNAT session is aborted), so its
// next packet is classified again.
func TestFilterStatefulFloating(t *testing.T) {
	l := filterLab(t, filterFloat)
	_, onB := l.fromA(seg{src: ipHostA, dst: ipFloat, sport: 40000, dport: 22, flags: "S", seq: 1000})
	p := one(t, onB, "SYN to ssh")
	if ip := checkIPChecksum(t, p); !ip.DstIP.Equal(ipHostB) {
		t.Fatalf("not translated to the VM: %v", ip.DstIP)
	}
	onA, _ := l.fromB(seg{src: ipHostB, dst: ipHostA, sport: 22, dport: 40000, flags: "SA", seq: 5000, ack: 1001})
	if ip := checkIPChecksum(t, one(t, onA, "SYN/ACK")); !ip.SrcIP.Equal(ipFloat) {
		t.Fatalf("reply not from the floating IP: %v", ip.SrcIP)
	}
	for i := 0; i < 3; i++ {
		_, onB = l.fromA(seg{src: ipHostA, dst: ipFloat, sport: 40000, dport: 22, flags: "A", seq: 1001, ack: 5001, payload: []byte("data")})
		one(t, onB, "established data")
	}
	rules, def := filterCounts(t, l.r, "vm-in")
	if rules[0].Hits != 1 || rules[0].Packets != 1 || rules[0].Bytes != 40 || def.Hits != 0 {
		t.Fatalf("rule 1 %+v, default %+v: want one classification of the 40-byte SYN", rules[0], def)
	}
	// Telnet: refused by the default; nothing reaches the VM, no session stays.
	for i := 0; i < 2; i++ {
		_, onB = l.fromA(seg{src: ipHostA, dst: ipFloat, sport: 40001, dport: 23, flags: "S", seq: 1})
		if len(onB) != 0 {
			t.Fatal("telnet reached the VM")
		}
	}
	if _, def = filterCounts(t, l.r, "vm-in"); def.Hits != 2 {
		t.Fatalf("default %+v: each SYN classified", def)
	}
	if d := l.r.Drops(); d[DropFilter] != 2 {
		t.Fatalf("filter drops %d", d[DropFilter])
	}
	if n := l.r.NAT.Len(); n != 1 {
		t.Fatalf("%d sessions, want the ssh one only", n)
	}
	if c := counterValue(l.r, "nat-sessions-aborted"); c != 2 {
		t.Fatalf("aborted %d", c)
	}
	// Ping through the floating IP (its DNAT session is the flow's).
	l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, ipFloat, 64, false, 8))
	l.run()
	if p := one(t, l.pb.Take(), "echo request"); checkIPChecksum(t, p).DstIP.String() != "198.51.100.10" {
		t.Fatal("echo request not translated")
	}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: ipHostB, DstIP: ipHostA}
	l.pb.Inject(ser(t, &layers.Ethernet{SrcMAC: hostB, DstMAC: macB[:], EthernetType: layers.EthernetTypeIPv4}, ip,
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(0, 0), Id: 9, Seq: 1}, gopacket.Payload(make([]byte, 8))))
	l.run()
	if p := one(t, l.pa.Take(), "echo reply"); !checkIPChecksum(t, p).SrcIP.Equal(ipFloat) {
		t.Fatal("echo reply not from the floating IP")
	}
	// A source restriction: 8080 only from 192.0.2.20.
	_, onB = l.fromA(seg{src: ipHostA, dst: ipFloat, sport: 40002, dport: 8080, flags: "S"})
	if len(onB) != 0 {
		t.Fatal("8080 from 192.0.2.10 reached the VM")
	}
	_, onB = l.fromA(seg{src: ipHostC, dst: ipFloat, sport: 40002, dport: 8080, flags: "S"})
	one(t, onB, "8080 from 192.0.2.20")
}

// counterValue reads one counter of any stage by name.
func counterValue(r *Router, name string) uint64 {
	for _, v := range r.AllCounters() {
		if v.Name == name {
			return v.Value
		}
	}
	return 0
}

// Without NAT the accepted flow gets a tracking-only session; the VM's own
// flows out (network b has only a filter_out) are tracked too, so their
// replies pass without a rule for them.
func TestFilterTrackingSessions(t *testing.T) {
	l := filterLab(t, "")
	_, onB := l.fromA(seg{src: ipHostA, dst: ipHostB, sport: 40000, dport: 80, flags: "S", seq: 1})
	one(t, onB, "SYN to http")
	onA, _ := l.fromB(seg{src: ipHostB, dst: ipHostA, sport: 80, dport: 40000, flags: "SA", seq: 9, ack: 2})
	one(t, onA, "SYN/ACK")
	_, onB = l.fromA(seg{src: ipHostA, dst: ipHostB, sport: 40000, dport: 80, flags: "A", seq: 2, ack: 10})
	one(t, onB, "ACK")
	ss := l.r.NAT.Sessions(netip.Addr{})
	if len(ss) != 1 || ss[0].NAT != "none" || ss[0].State != "ESTABLISHED" || ss[0].Packets != 3 {
		t.Fatalf("sessions %v", ss)
	}
	// The VM opens a UDP flow and a TCP connection out; the replies pass
	// although vm-in has no rule for them.
	onA, _ = l.fromB(seg{src: ipHostB, dst: ipHostA, sport: 5000, dport: 9999, udp: true, payload: []byte("q")})
	one(t, onA, "VM's datagram out")
	_, onB = l.fromA(seg{src: ipHostA, dst: ipHostB, sport: 9999, dport: 5000, udp: true, payload: []byte("a")})
	one(t, onB, "reply to the VM")
	onA, _ = l.fromB(seg{src: ipHostB, dst: ipHostA, sport: 33000, dport: 5555, flags: "S", seq: 70})
	one(t, onA, "VM's SYN out")
	_, onB = l.fromA(seg{src: ipHostA, dst: ipHostB, sport: 5555, dport: 33000, flags: "SA", seq: 90, ack: 71})
	one(t, onB, "SYN/ACK to the VM")
	// A datagram from A to the same VM port but another source port is new: dropped.
	_, onB = l.fromA(seg{src: ipHostA, dst: ipHostB, sport: 9998, dport: 5000, udp: true})
	if len(onB) != 0 {
		t.Fatal("unsolicited datagram reached the VM")
	}
	if c := counterValue(l.r, "nat-tracking-sessions"); c != 3 {
		t.Fatalf("%d tracking sessions, want 3", c)
	}
	rules, def := filterCounts(t, l.r, "vm-in")
	if rules[0].Hits != 1 || def.Hits != 1 {
		t.Fatalf("rules %+v default %+v: only the SYN to http and the unsolicited datagram are classified", rules, def)
	}
}

// A TCP segment other than a SYN without a session, and an RST outside its
// session's window, are invalid: dropped and counted, not classified.
func TestFilterInvalid(t *testing.T) {
	for _, extra := range []string{"", filterFloat} {
		l := filterLab(t, extra)
		dst := ipHostB
		if extra != "" {
			dst = ipFloat
		}
		_, onB := l.fromA(seg{src: ipHostA, dst: dst, sport: 40000, dport: 22, flags: "A", seq: 5, ack: 5})
		if len(onB) != 0 {
			t.Fatal("ACK without a session reached the VM")
		}
		if d := l.r.Drops(); d[DropFilterInvalid] != 1 || d[DropFilter] != 0 {
			t.Fatalf("drops: invalid %d filter %d", d[DropFilterInvalid], d[DropFilter])
		}
		l.fromA(seg{src: ipHostA, dst: dst, sport: 40000, dport: 22, flags: "S", seq: 100})
		l.fromB(seg{src: ipHostB, dst: ipHostA, sport: 22, dport: 40000, flags: "SA", seq: 500, ack: 101})
		_, onB = l.fromA(seg{src: ipHostA, dst: dst, sport: 40000, dport: 22, flags: "R", seq: 100 + 1<<30})
		if len(onB) != 0 {
			t.Fatal("out-of-window RST reached the VM")
		}
		_, onB = l.fromA(seg{src: ipHostA, dst: dst, sport: 40000, dport: 22, flags: "R", seq: 101})
		one(t, onB, "in-window RST")
		// Without NAT the filter's conntrack check drops the RST; with the
		// floating IP, NAT In (which tracks the flow) does, as without filter.
		if d := l.r.Drops(); d[DropFilterInvalid]+d[DropNAT] != 2 {
			t.Fatalf("invalid drops %d + nat %d, want 2", d[DropFilterInvalid], d[DropNAT])
		}
	}
}

// reject: TCP gets an RST that the sender accepts (from the address and
// port it sent to, acknowledging the SYN), anything else ICMP 3/13 quoting
// the packet as it was sent; both use the ICMP tokens.
func TestFilterReject(t *testing.T) {
	l := filterLab(t, filterFloat)
	onA, onB := l.fromA(seg{src: ipHostA, dst: ipFloat, sport: 40000, dport: 443, flags: "S", seq: 1000, payload: []byte("xy")})
	if len(onB) != 0 {
		t.Fatal("rejected SYN reached the VM")
	}
	p := one(t, onA, "RST")
	ip := checkIPChecksum(t, p)
	tc := tcpOf(p)
	if !ip.SrcIP.Equal(ipFloat) || !ip.DstIP.Equal(ipHostA) || tc == nil || !tc.RST || !tc.ACK || tc.SYN ||
		tc.SrcPort != 443 || tc.DstPort != 40000 || tc.Seq != 0 || tc.Ack != 1003 {
		t.Fatalf("bad RST: %v", p)
	}
	if err := checkTCPSum(p); err != "" {
		t.Fatal(err)
	}
	onA, onB = l.fromA(seg{src: ipHostA, dst: ipFloat, sport: 5353, dport: 53, udp: true, payload: []byte("query")})
	if len(onB) != 0 {
		t.Fatal("rejected datagram reached the VM")
	}
	ipe, ic := expectICMP(t, onA, 3, 13)
	if !ipe.DstIP.Equal(ipHostA) || !ipe.SrcIP.Equal(ipRA) {
		t.Fatalf("3/13 %v -> %v", ipe.SrcIP, ipe.DstIP)
	}
	q := gopacket.NewPacket(ic.Payload, layers.LayerTypeIPv4, gopacket.Default)
	if qip, _ := q.Layer(layers.LayerTypeIPv4).(*layers.IPv4); qip == nil || !qip.DstIP.Equal(ipFloat) || !qip.SrcIP.Equal(ipHostA) {
		t.Fatalf("quote is not the datagram as sent: %v", q)
	}
	if c := l.r.Counters(); c[CntFilterRejects] != 2 || c[CntFilterResets] != 1 || c[CntICMPErrors] != 1 {
		t.Fatalf("rejects %d resets %d icmp %d", c[CntFilterRejects], c[CntFilterResets], c[CntICMPErrors])
	}
	if n := l.r.NAT.Len(); n != 0 {
		t.Fatalf("%d sessions after two rejects", n)
	}
	// Rate limit: the burst (50 tokens over 3 workers) runs out.
	for i := 0; i < 60; i++ {
		l.pa.Inject(seg{src: ipHostA, dst: ipFloat, sport: uint16(20000 + i), dport: 443, flags: "S"}.frame(t, hostA, macA))
	}
	l.run()
	sent := len(l.pa.Take())
	if sent == 0 || sent >= 60 || l.r.Counters()[CntICMPRateLimited] == 0 {
		t.Fatalf("%d RSTs for 60 rejected SYNs at once, rate limited %d", sent, l.r.Counters()[CntICMPRateLimited])
	}
}

// checkTCPSum verifies the TCP checksum with gopacket's own computation.
func checkTCPSum(p gopacket.Packet) string {
	ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tc := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	got := tc.Checksum
	cp := *tc
	cp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := cp.SerializeTo(buf, gopacket.SerializeOptions{ComputeChecksums: true}); err != nil {
		return err.Error()
	}
	b := buf.Bytes()
	if want := uint16(b[16])<<8 | uint16(b[17]); want != got {
		return "bad TCP checksum"
	}
	return ""
}

// ICMP errors about a tracked flow's packets reach the VM (frag-needed for
// PMTU discovery, time-exceeded for traceroute), through the floating IP's
// translation; an error about no flow is classified like any packet.
func TestFilterRelatedICMP(t *testing.T) {
	l := filterLab(t, filterFloat)
	// The VM opens a connection; a router beyond says the path MTU is 1300.
	onA, _ := l.fromB(seg{src: ipHostB, dst: ipHostA, sport: 33000, dport: 443, flags: "S", seq: 1, df: true})
	synOut := onA[0][14:]
	l.pa.Inject(icmpErrFrame(t, ipHostA, ipFloat, 3, 4, 1300, synOut))
	l.run()
	_, ic := expectICMP(t, l.pb.Take(), 3, 4)
	q := gopacket.NewPacket(ic.Payload, layers.LayerTypeIPv4, gopacket.Default)
	if qip, _ := q.Layer(layers.LayerTypeIPv4).(*layers.IPv4); qip == nil || !qip.SrcIP.Equal(ipHostB) {
		t.Fatalf("frag-needed not translated back for the VM: %v", q)
	}
	// Traceroute from the VM: its UDP probes get time-exceeded from beyond.
	onA, _ = l.fromB(seg{src: ipHostB, dst: ipHostA, sport: 44000, dport: 33434, udp: true, ttl: 2})
	l.pa.Inject(icmpErrFrame(t, ipHostA, ipFloat, 11, 0, 0, onA[0][14:]))
	l.run()
	expectICMP(t, l.pb.Take(), 11, 0)
	// The router's own time-exceeded for a probe with TTL 1 reaches the VM.
	_, onB := l.fromB(seg{src: ipHostB, dst: ipHostA, sport: 44001, dport: 33435, udp: true, ttl: 1})
	expectICMP(t, onB, 11, 0)
	// An error about a flow nobody opened, to the VM's own address (to the
	// floating IP the NAT drops it): classified, dropped by the default.
	fake := seg{src: ipHostB, dst: ipHostA, sport: 1, dport: 2, udp: true}.frame(t, hostB, macB)[14:]
	l.pa.Inject(icmpErrFrame(t, ipHostA, ipHostB, 3, 3, 0, fake))
	l.run()
	if len(l.pb.Take()) != 0 {
		t.Fatal("unrelated ICMP error reached the VM")
	}
	if _, def := filterCounts(t, l.r, "vm-in"); def.Hits != 1 {
		t.Fatalf("default %+v: only the unrelated error classified", def)
	}
}

// icmpErrFrame is an ICMP error from src to dst quoting q, on network a.
func icmpErrFrame(t testing.TB, src, dst net.IP, typ, code uint8, mtu uint16, q []byte) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: src, DstIP: dst}
	ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code), Seq: mtu}
	return ser(t, &layers.Ethernet{SrcMAC: hostA, DstMAC: macA[:], EthernetType: layers.EthernetTypeIPv4}, ip, ic, gopacket.Payload(q))
}

// filter_in guards the router itself too (packets to its addresses are
// classified each), and sees the packet as received, before NAT.
func TestFilterIn(t *testing.T) {
	l := filterLab(t, filterFloat)
	reload(t, l.r, filterFloat+`
[[filter]]
name = "edge"
default = "drop"
[[filter.rule]]
action = "accept"
proto = "icmp"
icmp_type = 8
destination = ["192.0.2.1"]
[[filter.rule]]
action = "accept"
proto = "tcp"
destination = ["192.0.2.50"]
dport = "22"
`, `addresses = ["192.0.2.1/24"]`, `addresses = ["192.0.2.1/24"]
filter_in = "edge"`)
	l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, ipRA, 64, false, 8))
	l.run()
	if out := l.pa.Take(); len(out) != 1 {
		t.Fatal("echo to the router not answered")
	}
	l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, ipRB, 64, false, 8))
	l.run()
	if out := l.pa.Take(); len(out) != 0 {
		t.Fatal("echo to the router's other address answered")
	}
	_, onB := l.fromA(seg{src: ipHostA, dst: ipFloat, sport: 40000, dport: 22, flags: "S"})
	one(t, onB, "ssh through both filters (edge sees 192.0.2.50, vm-in 198.51.100.10)")
	_, onB = l.fromA(seg{src: ipHostA, dst: ipFloat, sport: 40000, dport: 80, flags: "S"})
	if len(onB) != 0 {
		t.Fatal("http passed edge")
	}
	rules, def := filterCounts(t, l.r, "edge")
	if rules[0].Hits != 1 || rules[1].Hits != 1 || def.Hits != 2 {
		t.Fatalf("edge: rules %+v default %+v", rules, def)
	}
}

// reload replaces old by new in the lab's configuration with extra added
// and applies it.
func reload(t testing.TB, r *Router, extra, old, new string) string {
	t.Helper()
	src := strings.Replace(filterBase, old, new, 1) + extra
	cfg, err := config.Parse("f.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := r.Reconfigure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// Later fragments of a datagram pass a stage its first fragment passed;
// alone, they are classified without ports (and dropped here).
func TestFilterFragments(t *testing.T) {
	l := filterLab(t, "")
	mk := func(off uint16, mf bool, n int) []byte {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: ipHostA, DstIP: ipHostB, Id: 99,
			FragOffset: off}
		if mf {
			ip.Flags = layers.IPv4MoreFragments
		}
		pl := make([]byte, n)
		if off == 0 {
			copy(pl, []byte{0x13, 0x88, 0, 22, 0, byte(n >> 8), byte(n), 0}) // sport 5000, dport 22: not accepted for udp
			pl[3] = 80
		}
		return ser(t, &layers.Ethernet{SrcMAC: hostA, DstMAC: macA[:], EthernetType: layers.EthernetTypeIPv4}, ip, gopacket.Payload(pl))
	}
	l.pa.Inject(mk(2, false, 16))
	l.run()
	if len(l.pb.Take()) != 0 {
		t.Fatal("a lone later fragment passed")
	}
	reload(t, l.r, `
[[filter.rule]]
action = "accept"
proto = "udp"
dport = "80"
`, "", "")
	l.pa.Inject(mk(0, true, 64))
	l.pa.Inject(mk(8, false, 16))
	l.run()
	if n := len(l.pb.Take()); n != 2 {
		t.Fatalf("%d fragments passed, want both", n)
	}
}

// A reload that removes the rule an established flow was accepted by cuts
// the flow (its session is flushed and its next segment is invalid) and
// says so; the counters of a ruleset the reload did not change carry over;
// a ruleset that does not compile changes nothing.
func TestFilterReload(t *testing.T) {
	l := filterLab(t, filterFloat+`
[[filter]]
name = "other"
default = "accept"
`)
	l.fromA(seg{src: ipHostA, dst: ipFloat, sport: 40000, dport: 80, flags: "S", seq: 1})
	l.fromB(seg{src: ipHostB, dst: ipHostA, sport: 80, dport: 40000, flags: "SA", seq: 9, ack: 2})
	l.fromA(seg{src: ipHostA, dst: ipFloat, sport: 40000, dport: 22, flags: "S", seq: 1})
	l.fromB(seg{src: ipHostB, dst: ipHostA, sport: 22, dport: 40000, flags: "SA", seq: 9, ack: 2})
	if l.r.NAT.Len() != 2 {
		t.Fatalf("%d sessions", l.r.NAT.Len())
	}
	// Unchanged: counters stay.
	sum := reload(t, l.r, filterFloat+`
[[filter]]
name = "other"
default = "accept"
`, "", "")
	if strings.Contains(sum, "flushed") {
		t.Fatalf("unchanged reload flushed: %s", sum)
	}
	if rules, _ := filterCounts(t, l.r, "vm-in"); rules[0].Hits != 2 {
		t.Fatalf("counters not carried over: %+v", rules[0])
	}
	// http removed from vm-in: the http connection is cut, ssh stays.
	sum = reload(t, l.r, filterFloat, `dport = "22,80"`, `dport = "22"`)
	if !strings.Contains(sum, "1 session flushed: no longer accepted by filter vm-in") {
		t.Fatalf("reload summary %q", sum)
	}
	if rules, _ := filterCounts(t, l.r, "vm-in"); rules[0].Hits != 0 {
		t.Fatalf("counters of a changed ruleset carried over: %+v", rules[0])
	}
	_, onB := l.fromA(seg{src: ipHostA, dst: ipFloat, sport: 40000, dport: 80, flags: "A", seq: 2, ack: 10})
	if len(onB) != 0 {
		t.Fatal("the cut http connection still reaches the VM")
	}
	_, onB = l.fromA(seg{src: ipHostA, dst: ipFloat, sport: 40000, dport: 22, flags: "A", seq: 2, ack: 10})
	one(t, onB, "ssh after the reload")
	// A bad ruleset (port range of a protocol without ports is refused by
	// config; here: a network naming a missing ruleset) changes nothing.
	cfg := filterCfg(t, filterFloat)
	cfg.Networks[1].FilterOut = "missing"
	if _, err := l.r.Reconfigure(cfg); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("reload with a missing ruleset: %v", err)
	}
	if _, onB = l.fromA(seg{src: ipHostA, dst: ipFloat, sport: 40000, dport: 22, flags: "A", seq: 2, ack: 10}); len(onB) != 1 {
		t.Fatal("failed reload changed the filter")
	}
}

// The trace names the ruleset, the rule and its line, and what the
// conntrack table said of packets that were not classified.
func TestFilterTrace(t *testing.T) {
	l := filterLab(t, filterFloat)
	if err := l.r.Trace(4); err != nil {
		t.Fatal(err)
	}
	l.fromA(seg{src: ipHostA, dst: ipFloat, sport: 40000, dport: 22, flags: "S"})
	l.fromB(seg{src: ipHostB, dst: ipHostA, sport: 22, dport: 40000, flags: "SA", ack: 1})
	l.fromA(seg{src: ipHostA, dst: ipFloat, sport: 40000, dport: 25, flags: "S"})
	l.fromA(seg{src: ipHostA, dst: ipFloat, sport: 40000, dport: 443, flags: "S"})
	out := strings.Join(l.r.TraceLines(), "\n") + "\n"
	rules := l.r.Config().Filters[0].Rules
	for _, want := range []string{
		fmt.Sprintf("  filter  out vm-in rule 1 (line %d): accept\n", rules[0].Pos.Line),
		"  filter  in established\n",
		"  filter  out vm-in default: drop\n",
		"  drop    filter (first packet of a flow refused",
		fmt.Sprintf("  filter  out vm-in rule 2 (line %d): reject\n", rules[1].Pos.Line),
		"  filter  reject: sent tcp reset to 192.0.2.10:40000\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}
}

// An established filtered flow and a first packet (classified against the
// ruleset, given a tracking session) allocate nothing.
func TestFilterZeroAlloc(t *testing.T) {
	l := filterLab(t, "")
	l.pb.SetSink(true)
	l.fromA(seg{src: ipHostA, dst: ipHostB, sport: 40000, dport: 80, flags: "S", seq: 1})
	l.fromB(seg{src: ipHostB, dst: ipHostA, sport: 80, dport: 40000, flags: "SA", seq: 9, ack: 2})
	est := seg{src: ipHostA, dst: ipHostB, sport: 40000, dport: 80, flags: "A", seq: 2, ack: 10, payload: make([]byte, 64)}.frame(t, hostA, macA)
	allocs := l.allocsPerBatch(200, 32, same(est))
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch of an established flow, want 0", allocs)
	}
	firsts := make([][]byte, 32*101)
	for i := range firsts {
		firsts[i] = seg{src: ipHostA, dst: ipHostB, sport: 1000 + uint16(i), dport: 80, flags: "S"}.frame(t, hostA, macA)
	}
	k := 0
	before := l.r.Counters()[CntForwarded]
	allocs = l.allocsPerBatch(100, 32, func(int) []byte { k++; return firsts[k-1] })
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch of first packets, want 0", allocs)
	}
	if got := l.r.Counters()[CntForwarded] - before; got != 101*32 {
		t.Fatalf("%d first packets forwarded, want %d", got, 101*32)
	}
	dropped := seg{src: ipHostA, dst: ipHostB, sport: 1, dport: 25, flags: "S"}.frame(t, hostA, macA)
	allocs = l.allocsPerBatch(200, 32, same(dropped))
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch of refused first packets, want 0", allocs)
	}
}
