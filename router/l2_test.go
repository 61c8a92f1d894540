package router

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"vrouter/config"
	"vrouter/internal/clock"
	"vrouter/packet"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

// tagged returns frame with an 802.1Q tag for vid inserted.
func tagged(frame []byte, vid uint16) []byte {
	out := append([]byte(nil), frame[:12]...)
	out = append(out, 0x81, 0x00, byte(vid>>8), byte(vid))
	return append(out, frame[12:]...)
}

// newSwitchLab: network "lan" switches between trunk.10 (port "trunk") and
// untagged ports "v1" and "v2"; the router has 10.0.0.1/24 on it.
// 100 more VLANs (trunk.101 ... trunk.200) are networks of their own.
func newSwitchLab(t testing.TB) (*Router, map[string]*pipe.Port) {
	cfg := testConfig()
	cfg.Ports = []config.Port{{Name: "trunk", Driver: "pipe"}, {Name: "v1", Driver: "pipe"}, {Name: "v2", Driver: "pipe"}}
	cfg.Networks = []config.Network{{Name: "lan", Links: []config.Link{{Port: "trunk", VID: 10}, {Port: "v1"}, {Port: "v2"}},
		Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}}
	for v := 101; v <= 200; v++ {
		cfg.Networks = append(cfg.Networks, config.Network{Name: fmt.Sprintf("vlan%d", v), Links: []config.Link{{Port: "trunk", VID: uint16(v)}},
			Addresses: []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.1/24", v/256+1, v%256))}})
	}
	cfg.Routes = nil
	ps := map[string]*pipe.Port{
		"trunk": pipe.New("trunk", [6]byte{2, 0, 0, 0, 1, 1}, 1500),
		"v1":    pipe.New("v1", [6]byte{2, 0, 0, 0, 1, 2}, 1500),
		"v2":    pipe.New("v2", [6]byte{2, 0, 0, 0, 1, 3}, 1500),
	}
	r, err := New(cfg, []port.Port{ps["trunk"], ps["v1"], ps["v2"]}, Options{Clock: clock.NewManual()})
	if err != nil {
		t.Fatal(err)
	}
	return r, ps
}

func runAll(r *Router, ps map[string]*pipe.Port) {
	for more := true; more; {
		more = false
		for i, name := range []string{"trunk", "v1", "v2"} {
			w := r.workers[i]
			if ps[name].TryReadBatch(w.rx) > 0 {
				w.processBatch(r.ports[i], w.rx)
				more = true
			}
		}
	}
}

func TestHundredVLANsOnATrunk(t *testing.T) {
	r, ps := newSwitchLab(t)
	h := net.HardwareAddr{2, 0xcc, 0, 0, 0, 9}
	for v := 101; v <= 200; v++ {
		me := net.IPv4(10, byte(v/256+1), byte(v%256), 1).To4()
		peer := net.IPv4(10, byte(v/256+1), byte(v%256), 9).To4()
		ps["trunk"].Inject(tagged(arpReq(t, h, peer, me), uint16(v)))
	}
	// A VID no network uses, and an untagged frame on the trunk (no untagged link): dropped.
	ps["trunk"].Inject(tagged(arpReq(t, h, net.IPv4(10, 0, 0, 9).To4(), net.IPv4(10, 0, 0, 1).To4()), 300))
	ps["trunk"].Inject(arpReq(t, h, net.IPv4(10, 0, 0, 9).To4(), net.IPv4(10, 0, 0, 1).To4()))
	runAll(r, ps)
	out := ps["trunk"].Take()
	if len(out) != 100 {
		t.Fatalf("want 100 tagged replies, got %d", len(out))
	}
	for i, f := range out {
		p := decode(f)
		d, ok := p.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
		a, ok2 := p.Layer(layers.LayerTypeARP).(*layers.ARP)
		want := uint16(101 + i)
		if !ok || !ok2 || d.VLANIdentifier != want || a.Operation != layers.ARPReply ||
			net.IP(a.SourceProtAddress).String() != net.IPv4(10, byte(want/256+1), byte(want%256), 1).String() {
			t.Fatalf("reply %d: %v", i, p)
		}
	}
	if d := r.Drops()[DropUnknownVLAN]; d != 2 {
		t.Fatalf("unknown-vlan drops = %d, want 2", d)
	}
}

func TestSwitchLearnFloodForward(t *testing.T) {
	r, ps := newSwitchLab(t)
	m1 := net.HardwareAddr{2, 0xaa, 0, 0, 0, 1} // on v1
	m2 := net.HardwareAddr{2, 0xaa, 0, 0, 0, 2} // on the trunk, VLAN 10
	ip1, ip2 := net.IPv4(10, 0, 0, 11).To4(), net.IPv4(10, 0, 0, 12).To4()
	// Broadcast ARP from m1 on v1: flooded to trunk.10 (tagged) and v2 (untagged).
	ps["v1"].Inject(arpReq(t, m1, ip1, ip2))
	runAll(r, ps)
	tr, v2 := ps["trunk"].Take(), ps["v2"].Take()
	if len(tr) != 1 || len(v2) != 1 || len(ps["v1"].Take()) != 0 {
		t.Fatalf("flood: trunk %d v2 %d", len(tr), len(v2))
	}
	if d, ok := decode(tr[0]).Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q); !ok || d.VLANIdentifier != 10 {
		t.Fatal("flooded frame on the trunk is not tagged 10")
	}
	if decode(v2[0]).Layer(layers.LayerTypeDot1Q) != nil {
		t.Fatal("flooded frame on v2 is tagged")
	}
	// m2 answers from the trunk (tagged) to m1: learned, switched to v1 only, untagged.
	ps["trunk"].Inject(tagged(arpReply(t, m2, ip2, m1, ip1), 10))
	runAll(r, ps)
	v1 := ps["v1"].Take()
	if len(v1) != 1 || len(ps["v2"].Take()) != 0 || len(ps["trunk"].Take()) != 0 {
		t.Fatalf("unicast not switched to v1 only")
	}
	if decode(v1[0]).Layer(layers.LayerTypeDot1Q) != nil {
		t.Fatal("tag not popped")
	}
	// The router is one more host: its echo reply to m1 first needs ARP
	// (broadcast on every link), then goes to v1 only.
	rmac := [6]byte{2, 0, 0, 0, 1, 1}
	ps["v1"].Inject(icmpEcho(t, m1, rmac, ip1, net.IPv4(10, 0, 0, 1).To4(), 64, false, 8))
	runAll(r, ps)
	if a, b, c := len(ps["trunk"].Take()), len(ps["v1"].Take()), len(ps["v2"].Take()); a != 1 || b != 1 || c != 1 {
		t.Fatalf("ARP request not on every link: %d %d %d", a, b, c)
	}
	ps["v1"].Inject(arpReply(t, m1, ip1, net.HardwareAddr(rmac[:]), net.IPv4(10, 0, 0, 1).To4()))
	runAll(r, ps)
	v1 = ps["v1"].Take()
	if len(v1) != 1 || len(ps["v2"].Take()) != 0 || len(ps["trunk"].Take()) != 0 {
		t.Fatalf("echo reply not switched to v1 only")
	}
	if ic, ok := decode(v1[0]).Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); !ok || ic.TypeCode.Type() != 0 {
		t.Fatalf("want echo reply on v1")
	}
	es, err := r.BridgeEntries("lan")
	if err != nil {
		t.Fatal(err)
	}
	learned := map[string]string{}
	for _, e := range es {
		learned[e.MAC.String()] = e.Link
	}
	if len(learned) != 2 || learned["02:aa:00:00:00:01"] != "v1" || learned["02:aa:00:00:00:02"] != "trunk.10" {
		t.Fatalf("bridge table of lan: %v", es)
	}
}

func TestLinkCounters(t *testing.T) {
	r, ps := newSwitchLab(t)
	m1 := net.HardwareAddr{2, 0xaa, 0, 0, 0, 1}
	ps["v1"].Inject(arpReq(t, m1, net.IPv4(10, 0, 0, 11).To4(), net.IPv4(10, 0, 0, 1).To4()))
	runAll(r, ps)
	var nets []Network
	for _, n := range r.Networks() {
		if n.Name == "lan" {
			nets = append(nets, n)
		}
	}
	if len(nets) != 1 {
		t.Fatal("no lan")
	}
	got := map[string][2]uint64{}
	for _, l := range nets[0].Links {
		got[l.Name] = [2]uint64{l.RxPackets, l.TxPackets}
	}
	// The request came in on v1 (and was flooded to trunk.10 and v2); the reply went out on v1.
	if got["v1"] != [2]uint64{1, 1} || got["trunk.10"] != [2]uint64{0, 1} || got["v2"] != [2]uint64{0, 1} {
		t.Fatalf("link counters %v", got)
	}
}

// A MAC flood fills the learning table and is refused (counted by the
// caller); once the flood's MACs age out, their slots take new MACs.
func TestMACTableFloodThenAgedReuse(t *testing.T) {
	tb := newMACTable()
	mac := func(i int) packet.MAC { return packet.MAC{0x02, 0x5e, byte(i >> 16), byte(i >> 8), byte(i), 1} }
	refused := 0
	for i := 0; i < 3*macTableSize; i++ {
		if !tb.learn(mac(i), 1, 0) {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("a flood of 3x the table's MACs was all learned")
	}
	// The flood's MACs age out; new hosts are learned in their slots.
	now := int64(macAgeSeconds + 1)
	for i := 0; i < macTableSize/2; i++ {
		m := mac(1<<20 + i)
		if !tb.learn(m, 2, now) {
			t.Fatalf("MAC %d not learned after the flood aged out", i)
		}
		if l, ok := tb.lookup(m, now); !ok || l != 2 {
			t.Fatalf("MAC %d: lookup %d %v", i, l, ok)
		}
	}
	// A MAC met again after its slot's neighbours aged is updated in place,
	// not entered twice.
	m := mac(1 << 20)
	tb.learn(m, 3, now+1)
	n := 0
	for _, e := range tb.entries(now + 1) {
		if e.MAC == m {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("MAC entered %d times", n)
	}
}
