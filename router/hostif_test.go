package router

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/config"
	"vrouter/internal/clock"
	"vrouter/packet"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

// fakeHost is a HostSystem whose host interfaces are pipe ports.
type fakeHost struct {
	mu       sync.Mutex
	ports    map[string]*pipe.Port
	index    map[string]int
	opens    int
	addrs    map[string][]netip.Prefix
	links    map[string]string
	isolated []string
	watch    func([]AddrEvent)
}

func newFakeHost() *fakeHost {
	return &fakeHost{ports: map[string]*pipe.Port{}, index: map[string]int{}, addrs: map[string][]netip.Prefix{}, links: map[string]string{}}
}

func (f *fakeHost) Open(dev string, mac packet.MAC, mtu int) (port.Port, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if dev == "vr-fail" {
		return nil, 0, fmt.Errorf("cannot")
	}
	f.opens++
	p := pipe.New("host:"+dev, mac, mtu)
	f.ports[dev] = p
	f.index[dev] = 100 + f.opens
	f.links[dev] = fmt.Sprintf("%s/%d", mac, mtu)
	return p, f.index[dev], nil
}

func (f *fakeHost) SetLink(dev string, mac packet.MAC, mtu int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.links[dev] = fmt.Sprintf("%s/%d", mac, mtu)
	return nil
}

func (f *fakeHost) AddAddr(dev string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.addrs[dev] {
		if a == p {
			return nil
		}
	}
	f.addrs[dev] = append(f.addrs[dev], p)
	return nil
}

func (f *fakeHost) DelAddr(dev string, p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var keep []netip.Prefix
	for _, a := range f.addrs[dev] {
		if a != p {
			keep = append(keep, a)
		}
	}
	f.addrs[dev] = keep
	return nil
}

func (f *fakeHost) Isolate(devs []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.isolated = devs
	return nil
}

func (f *fakeHost) Watch(fn func([]AddrEvent)) (func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.watch = fn
	return func() {}, nil
}

// hostLab is the pipeline lab (networks a on pa, b on pb) with a host
// interface vr-a on network a.
type hostLab struct {
	*lab
	fh   *fakeHost
	host *pipe.Port
}

func hostConfig(rate int) *config.Config {
	c := testConfig()
	c.Networks[0].Host = "vr-a"
	c.Networks[0].HostPuntRate = rate
	c.ApplyDefaults()
	return c
}

func newHostLab(t testing.TB, rate int) *hostLab {
	pa := pipe.New("pa", macA, 1500)
	pb := pipe.New("pb", macB, 1400)
	clk := clock.NewManual()
	fh := newFakeHost()
	r, err := New(hostConfig(rate), []port.Port{pa, pb}, Options{Clock: clk, Host: fh})
	if err != nil {
		t.Fatal(err)
	}
	r.startHosts()
	return &hostLab{lab: &lab{t: t, r: r, clk: clk, pa: pa, pb: pb}, fh: fh, host: fh.ports["vr-a"]}
}

// run processes everything injected on every port, host ports included.
func (l *hostLab) run() {
	for {
		did := false
		for i, ps := range l.r.ports {
			p, ok := ps.p.(*pipe.Port)
			if !ok || ps.closed.Load() {
				continue
			}
			w := l.r.workers[i]
			if p.TryReadBatch(w.rx) > 0 {
				w.processBatch(ps, w.rx)
				did = true
			}
		}
		if !did {
			return
		}
	}
}

func udpTo(t testing.TB, srcMAC net.HardwareAddr, dstMAC net.HardwareAddr, src, dst net.IP, sport, dport uint16) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src, DstIP: dst}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	udp.SetNetworkLayerForChecksum(ip)
	return ser(t, &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload([]byte("query")))
}

func tcpTo(t testing.TB, dst net.IP, dport uint16) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: ipHostA, DstIP: dst}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: layers.TCPPort(dport), SYN: true, Window: 1000}
	tcp.SetNetworkLayerForChecksum(ip)
	return ser(t, &layers.Ethernet{SrcMAC: hostA, DstMAC: macA[:], EthernetType: layers.EthernetTypeIPv4}, ip, tcp)
}

func protoTo(t testing.TB, dstMAC net.HardwareAddr, dst net.IP, proto layers.IPProtocol) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 255, Protocol: proto, SrcIP: ipHostA, DstIP: dst}
	return ser(t, &layers.Ethernet{SrcMAC: hostA, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}, ip, gopacket.Payload(make([]byte, 20)))
}

// ipOf returns the IPv4 packet of frame (its total length; no padding).
func ipOf(t testing.TB, f []byte) []byte {
	p := decode(f)
	ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if !ok {
		t.Fatalf("no IPv4 in %v", p)
	}
	return append(ip.Contents, ip.Payload...)
}

// What the router does not answer itself reaches the host interface as it
// was received; echo and ARP requests stay the router's; forwarded traffic
// never goes there.
func TestHostPunt(t *testing.T) {
	l := newHostLab(t, 0)
	l.resolveBoth()
	bcastMAC := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	vrrpMAC := net.HardwareAddr{1, 0, 0x5e, 0, 0, 18}
	dhcp := udpTo(t, hostA, bcastMAC, net.IPv4zero.To4(), net.IPv4bcast.To4(), 68, 67)
	punted := [][]byte{
		tcpTo(t, ipRA, 179),
		udpTo(t, hostA, macA[:], ipHostA, ipRA, 5353, 53),
		dhcp,
		udpTo(t, hostA, bcastMAC, ipHostA, net.IPv4(192, 0, 2, 255).To4(), 68, 67),
		protoTo(t, vrrpMAC, net.IPv4(224, 0, 0, 18).To4(), 112),
		protoTo(t, macA[:], ipRA, 89), // OSPF unicast
		tcpTo(t, ipRB, 22),            // the router's address on b, received on a
		arpReply(t, hostA, ipHostA, net.HardwareAddr(macA[:]), ipRA),
	}
	for _, f := range punted {
		l.pa.Inject(f)
	}
	l.run()
	got := l.host.Take()
	if len(got) != len(punted) {
		t.Fatalf("punted %d frames, want %d", len(got), len(punted))
	}
	for i, f := range got {
		if i == len(got)-1 { // the ARP reply: a copy, padded
			if !bytes.Equal(f[:42], punted[i][:42]) {
				t.Fatalf("ARP reply punted as\n%x\nwant\n%x", f, punted[i])
			}
			continue
		}
		if !bytes.Equal(f, punted[i][:len(f)]) || len(f) < len(punted[i])-18 {
			t.Fatalf("frame %d punted as\n%x\nwant\n%x", i, f, punted[i])
		}
	}
	if out := l.pa.Take(); len(out) != 0 {
		t.Fatalf("router answered punted packets itself: %v", decode(out[0]))
	}
	// The router's own: echo and ARP requests; forwarded: to b.
	l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, ipRA, 64, false, 8))
	l.pa.Inject(arpReq(t, hostA, ipHostA, ipRA))
	l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, ipHostB, 64, false, 8))
	l.pa.Inject(udpTo(t, hostA, macA[:], ipHostA, ipHostB, 1000, 53))
	l.pa.Inject(protoTo(t, net.HardwareAddr{1, 0, 0x5e, 1, 1, 1}, net.IPv4(239, 1, 1, 1).To4(), 17)) // not link-local: dropped
	l.run()
	if h := l.host.Take(); len(h) != 0 {
		t.Fatalf("host interface got %d frames of the router's own or forwarded traffic: %v", len(h), decode(h[0]))
	}
	if out := l.pa.Take(); len(out) != 2 {
		t.Fatalf("want an echo reply and an ARP reply on a, got %d", len(out))
	}
	if out := l.pb.Take(); len(out) != 2 {
		t.Fatalf("want 2 forwarded packets on b, got %d", len(out))
	}
	c, d := l.r.Counters(), l.r.Drops()
	if c[CntHostPunted] != uint64(len(punted)) || d[DropLocalProto] != 0 || c[CntICMPErrors] != 0 || d[DropMulticast] != 1 {
		t.Fatalf("punted %d, local-protocol %d, icmp errors %d, multicast %d", c[CntHostPunted], d[DropLocalProto], c[CntICMPErrors], d[DropMulticast])
	}
	his := l.r.HostInterfaces()
	if len(his) != 1 || his[0].Device != "vr-a" || his[0].Network != "a" || his[0].PuntedPackets != uint64(len(punted)) || his[0].Ifindex != 101 {
		t.Fatalf("HostInterfaces = %+v", his)
	}
	// Without a host interface a UDP packet to the router gets 3/3, as before.
	l2 := newLab(t)
	l2.resolveA()
	l2.pa.Inject(udpTo(t, hostA, macA[:], ipHostA, ipRA, 5353, 53))
	l2.run()
	out := l2.pa.Take()
	if len(out) != 1 {
		t.Fatalf("want ICMP 3/3 without host, got %d frames", len(out))
	}
	if ic, ok := decode(out[0]).Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); !ok || ic.TypeCode != layers.CreateICMPv4TypeCode(3, 3) {
		t.Fatalf("want 3/3, got %v", decode(out[0]))
	}
}

// The kernel's frames go out on the network's links: the only link, or
// switched (learned link, flood) and tagged per link.
func TestHostInject(t *testing.T) {
	l := newHostLab(t, 0)
	req := arpReq(t, net.HardwareAddr(macA[:]), ipRA, ipHostA)
	l.host.Inject(req)
	l.run()
	out := l.pa.Take()
	if len(out) != 1 || !bytes.Equal(out[0], req) {
		t.Fatalf("injected ARP request went out as %d frames", len(out))
	}
	if c := l.r.Counters(); c[CntHostInjected] != 1 {
		t.Fatalf("injected %d", c[CntHostInjected])
	}
	// A tagged frame from the kernel is refused.
	l.host.Inject(tagged(req, 5))
	l.run()
	if out := l.pa.Take(); len(out) != 0 || l.r.Drops()[DropHostTagged] != 1 {
		t.Fatalf("tagged frame: %d out, %d dropped", len(out), l.r.Drops()[DropHostTagged])
	}

	// A switched network on a trunk VLAN and two ports.
	cfg := testConfig()
	cfg.Ports = []config.Port{{Name: "trunk", Driver: "pipe"}, {Name: "v1", Driver: "pipe"}, {Name: "v2", Driver: "pipe"}}
	cfg.Networks = []config.Network{{Name: "lan", Links: []config.Link{{Port: "trunk", VID: 10}, {Port: "v1"}, {Port: "v2"}},
		Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}, Host: "vr-lan"}}
	cfg.Routes = nil
	cfg.ApplyDefaults()
	ps := []*pipe.Port{pipe.New("trunk", [6]byte{2, 0, 0, 0, 1, 1}, 1500), pipe.New("v1", [6]byte{2, 0, 0, 0, 1, 2}, 1500),
		pipe.New("v2", [6]byte{2, 0, 0, 0, 1, 3}, 1500)}
	fh := newFakeHost()
	r, err := New(cfg, []port.Port{ps[0], ps[1], ps[2]}, Options{Clock: clock.NewManual(), Host: fh})
	if err != nil {
		t.Fatal(err)
	}
	sl := &hostLab{lab: &lab{t: t, r: r}, fh: fh, host: fh.ports["vr-lan"]}
	routerMAC := net.HardwareAddr{2, 0, 0, 0, 1, 1}
	me, vm := net.IPv4(10, 0, 0, 1).To4(), net.IPv4(10, 0, 0, 9).To4()
	vmMAC := net.HardwareAddr{2, 0xcc, 0, 0, 0, 9}
	// Flooded: broadcast to every link, tagged on the trunk.
	kreq := arpReq(t, routerMAC, me, vm)
	sl.host.Inject(kreq)
	sl.run()
	if o := ps[0].Take(); len(o) != 1 || !bytes.Equal(o[0], tagged(kreq, 10)) {
		t.Fatalf("trunk got %d frames, want the request tagged 10", len(o))
	}
	for _, p := range ps[1:] {
		if o := p.Take(); len(o) != 1 || !bytes.Equal(o[0], kreq) {
			t.Fatalf("%s got %d frames, want the request", p.Name(), len(o))
		}
	}
	// The VM on v2 answers: the reply reaches the kernel; then the kernel's
	// unicast goes to v2 only.
	ps[2].Inject(arpReply(t, vmMAC, vm, routerMAC, me))
	sl.run()
	if h := sl.host.Take(); len(h) != 1 {
		t.Fatalf("ARP reply to the kernel: %d punted", len(h))
	}
	sl.host.Inject(udpTo(t, routerMAC, vmMAC, me, vm, 67, 68))
	sl.run()
	if a, b, c := ps[0].Take(), ps[1].Take(), ps[2].Take(); len(a) != 0 || len(b) != 0 || len(c) != 1 {
		t.Fatalf("unicast from the kernel: trunk %d, v1 %d, v2 %d frames", len(a), len(b), len(c))
	}
	// A DHCP discover on the trunk reaches the kernel untagged.
	disc := udpTo(t, vmMAC, net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, net.IPv4zero.To4(), net.IPv4bcast.To4(), 68, 67)
	ps[0].Inject(tagged(disc, 10))
	sl.run()
	h := sl.host.Take()
	if len(h) != 1 || !bytes.Equal(h[0], disc[:len(h[0])]) {
		t.Fatalf("DHCP discover punted as %d frames", len(h))
	}
	if ipl := ipOf(t, h[0]); !bytes.Equal(ipl, ipOf(t, disc)) {
		t.Fatal("IPv4 packet changed")
	}
}

// Punts above host_punt_rate are dropped and counted per network.
func TestHostPuntLimit(t *testing.T) {
	l := newHostLab(t, 100) // one reader: 100/s, burst 16
	l.resolveA()
	for i := 0; i < 50; i++ {
		l.pa.Inject(udpTo(t, hostA, macA[:], ipHostA, ipRA, uint16(1000+i), 53))
	}
	l.run()
	if h := l.host.Take(); len(h) != 16 {
		t.Fatalf("punted %d, want the burst of 16", len(h))
	}
	hi := l.r.HostInterfaces()[0]
	if d := l.r.Drops()[DropHostPuntLimit]; d != 34 || hi.PuntDrops != 34 || hi.PuntRate != 100 {
		t.Fatalf("host-punt-limit %d, interface drops %d, rate %d", d, hi.PuntDrops, hi.PuntRate)
	}
	l.clk.Advance(100e6) // 0.1 s: 10 more tokens
	for i := 0; i < 20; i++ {
		l.pa.Inject(udpTo(t, hostA, macA[:], ipHostA, ipRA, uint16(2000+i), 53))
	}
	l.run()
	if h := l.host.Take(); len(h) != 10 {
		t.Fatalf("after 0.1 s punted %d, want 10", len(h))
	}
}

// An address the kernel adds to the host interface is answered by ARP and
// announced; removed, it is not answered any more. One that conflicts with
// another network is ignored.
func TestHostAddrSync(t *testing.T) {
	l := newHostLab(t, 0)
	l.resolveA()
	vip := net.IPv4(192, 0, 2, 50).To4()
	if l.fh.watch == nil {
		t.Fatal("not watching")
	}
	l.fh.watch([]AddrEvent{{Ifindex: 101, Prefix: netip.MustParsePrefix("192.0.2.1/24"), Added: true}}) // its own: nothing
	l.fh.watch([]AddrEvent{
		{Ifindex: 101, Prefix: netip.MustParsePrefix("192.0.2.50/32"), Added: true},
		{Ifindex: 101, Prefix: netip.MustParsePrefix("198.51.100.7/24"), Added: true}, // network b's subnet
		{Ifindex: 999, Prefix: netip.MustParsePrefix("192.0.2.60/32"), Added: true},   // not a host interface
	})
	out := l.pa.Take()
	if len(out) != 1 {
		t.Fatalf("want one gratuitous ARP, got %d frames", len(out))
	}
	if a, ok := decode(out[0]).Layer(layers.LayerTypeARP).(*layers.ARP); !ok || !net.IP(a.SourceProtAddress).Equal(vip) || !net.IP(a.DstProtAddress).Equal(vip) {
		t.Fatalf("not a gratuitous ARP for the VIP: %v", decode(out[0]))
	}
	l.pa.Inject(arpReq(t, hostA, ipHostA, vip))
	l.pa.Inject(icmpEcho(t, hostA, macA, ipHostA, vip, 64, false, 8))
	l.run()
	if out := l.pa.Take(); len(out) != 2 {
		t.Fatalf("VIP: want an ARP and an echo reply, got %d", len(out))
	}
	hi := l.r.HostInterfaces()[0]
	if len(hi.Kernel) != 1 || hi.Kernel[0].String() != "192.0.2.50/32" || len(hi.Ignored) != 1 || hi.Ignored[0].Prefix.String() != "198.51.100.7/24" {
		t.Fatalf("addresses: kernel %v ignored %+v", hi.Kernel, hi.Ignored)
	}
	if hi.Ignored[0].Reason != `overlaps 198.51.100.0/24 of network "b"` {
		t.Fatalf("reason %q", hi.Ignored[0].Reason)
	}
	// A runtime route survives an address change.
	if _, err := l.r.AddRoute(netip.MustParsePrefix("10.9.0.0/16"), netip.MustParseAddr("192.0.2.10")); err != nil {
		t.Fatal(err)
	}
	l.fh.watch([]AddrEvent{{Ifindex: 101, Prefix: netip.MustParsePrefix("192.0.2.50/32")}})
	l.pa.Inject(arpReq(t, hostA, ipHostA, vip))
	l.run()
	if out := l.pa.Take(); len(out) != 0 {
		t.Fatalf("removed VIP still answered")
	}
	if _, ok := l.r.FIB.Get(netip.MustParsePrefix("10.9.0.0/16")); !ok {
		t.Fatal("runtime route lost")
	}
	// A resync lists what is there: the VIP again, the conflict gone.
	l.fh.watch([]AddrEvent{{Reset: true}, {Ifindex: 101, Prefix: netip.MustParsePrefix("192.0.2.50/32"), Added: true}})
	if hi := l.r.HostInterfaces()[0]; len(hi.Kernel) != 1 || len(hi.Ignored) != 0 {
		t.Fatalf("after reset: %+v", hi)
	}
}

// A reload keeps an unchanged host interface open (its kernel addresses
// too), follows address changes, and retires a removed one.
func TestHostReload(t *testing.T) {
	l := newHostLab(t, 0)
	if got := l.fh.addrs["vr-a"]; len(got) != 1 || got[0].String() != "192.0.2.1/24" {
		t.Fatalf("kernel addresses %v", got)
	}
	if len(l.fh.isolated) != 0 {
		t.Fatalf("pipe ports isolated: %v", l.fh.isolated) // only real devices are
	}
	l.fh.watch([]AddrEvent{{Ifindex: 101, Prefix: netip.MustParsePrefix("192.0.2.50/32"), Added: true}})
	cfg := hostConfig(0)
	cfg.Networks[0].Addresses = append(cfg.Networks[0].Addresses, netip.MustParsePrefix("192.0.2.2/24"))
	if _, err := l.r.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if l.fh.opens != 1 || l.r.ports[2].closed.Load() {
		t.Fatalf("host interface reopened (%d opens)", l.fh.opens)
	}
	if got := l.fh.addrs["vr-a"]; len(got) != 2 {
		t.Fatalf("kernel addresses after reload %v", got)
	}
	if hi := l.r.HostInterfaces()[0]; len(hi.Kernel) != 1 || len(hi.Static) != 2 {
		t.Fatalf("after reload: %+v", hi)
	}
	l.pa.Take() // the gratuitous ARP for the VIP
	l.resolveA()
	l.pa.Inject(udpTo(t, hostA, macA[:], ipHostA, net.IPv4(192, 0, 2, 50).To4(), 1, 2))
	l.run()
	if h := l.host.Take(); len(h) != 1 {
		t.Fatalf("VIP traffic after reload: %d punted", len(h))
	}
	// The address leaves the file: gone from the kernel.
	if _, err := l.r.Reconfigure(hostConfig(0)); err != nil {
		t.Fatal(err)
	}
	if got := l.fh.addrs["vr-a"]; len(got) != 1 {
		t.Fatalf("kernel addresses after second reload %v", got)
	}
	// Renamed: the old one is closed, a new one opened.
	cfg = hostConfig(0)
	cfg.Networks[0].Host = "vr-a2"
	sum, err := l.r.Reconfigure(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !l.r.ports[2].closed.Load() || l.fh.opens != 2 || sum != "ports: 2 unchanged, -host:vr-a +host:vr-a2" {
		t.Fatalf("rename: closed %v, opens %d, summary %q", l.r.ports[2].closed.Load(), l.fh.opens, sum)
	}
	if slot, ok := l.r.ResolveDevice(102, ""); !ok || l.r.NetworkName(slot) != "a" {
		t.Fatalf("ResolveDevice(102) = %d %v", slot, ok)
	}
	if slot, ok := l.r.ResolveDevice(0, "vr-a2"); !ok || l.r.NetworkName(slot) != "a" {
		t.Fatalf("ResolveDevice(vr-a2) = %d %v", slot, ok)
	}
	if _, ok := l.r.ResolveDevice(101, ""); ok {
		t.Fatal("retired host interface still resolves")
	}
	// One that cannot be opened: nothing changes.
	cfg = hostConfig(0)
	cfg.Networks[1].Host = "vr-fail"
	if _, err := l.r.Reconfigure(cfg); err == nil || err.Error() != `network "b": host interface "vr-fail": cannot` {
		t.Fatalf("err = %v", err)
	}
	if his := l.r.HostInterfaces(); len(his) != 1 || his[0].Device != "vr-a2" {
		t.Fatalf("after failed reload: %+v", his)
	}
	// Removed from the file: retired.
	if _, err := l.r.Reconfigure(testConfig()); err != nil {
		t.Fatal(err)
	}
	if his := l.r.HostInterfaces(); len(his) != 0 {
		t.Fatalf("after removal: %+v", his)
	}
	// A router without a HostSystem refuses host interfaces.
	if _, err := New(hostConfig(0), []port.Port{pipe.New("pa", macA, 1500), pipe.New("pb", macB, 1400)}, Options{}); err == nil {
		t.Fatal("host interface without HostSystem accepted")
	}
}

// Forwarding and punting allocate nothing with host interfaces configured.
func TestHostZeroAlloc(t *testing.T) {
	l := newHostLab(t, config.MaxHostPuntRate) // the manual clock stands still: the burst must do
	l.resolveBoth()
	l.pb.SetSink(true)
	l.host.SetSink(true)
	for _, tc := range []struct {
		name  string
		frame []byte
		cnt   Counter
	}{
		{"forward", icmpEcho(t, hostA, macA, ipHostA, ipHostB, 64, false, 64), CntForwarded},
		{"punt", udpTo(t, hostA, macA[:], ipHostA, ipRA, 5353, 53), CntHostPunted},
	} {
		before := l.r.Counters()[tc.cnt]
		allocs := l.allocsPerBatch(200, 32, same(tc.frame))
		if allocs != 0 {
			t.Fatalf("%s: %.1f allocations per batch, want 0", tc.name, allocs)
		}
		if l.r.Counters()[tc.cnt]-before < 200*32 {
			t.Fatalf("%s: not done", tc.name)
		}
	}
}

// With SNAT to the router's own address, a packet to that address that no
// mapping takes (BGP to the router) is the host interface's; without a host
// interface the NAT keeps dropping it as unsolicited.
func TestHostSNATAddress(t *testing.T) {
	snat := func(c *config.Config) *config.Config {
		c.NAT.SNAT = []config.SNAT{{Source: netip.MustParsePrefix("198.51.100.0/24"), Out: "a",
			To: config.AddrRange{First: netip.MustParseAddr("192.0.2.1"), Last: netip.MustParseAddr("192.0.2.1")}}}
		c.ApplyDefaults()
		return c
	}
	l := newHostLab(t, 0)
	if _, err := l.r.Reconfigure(snat(hostConfig(0))); err != nil {
		t.Fatal(err)
	}
	l.resolveA()
	l.pa.Inject(tcpTo(t, ipRA, 179))
	l.run()
	if h := l.host.Take(); len(h) != 1 {
		t.Fatalf("BGP SYN to the SNAT address: %d punted, nat drops %d", len(h), l.r.Drops()[DropNAT])
	}
	// A kernel-added address (a VIP) that SNAT uses is the router's own for
	// the NAT too.
	cfg := snat(hostConfig(0))
	cfg.NAT.SNAT[0].To = config.AddrRange{First: netip.MustParseAddr("192.0.2.50"), Last: netip.MustParseAddr("192.0.2.50")}
	if _, err := l.r.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	vipSYN := tcpTo(t, net.IPv4(192, 0, 2, 50).To4(), 179)
	l.pa.Inject(vipSYN)
	l.run()
	if h := l.host.Take(); len(h) != 0 {
		t.Fatal("SYN to a NAT address that is not the router's punted")
	}
	l.fh.watch([]AddrEvent{{Ifindex: 101, Prefix: netip.MustParsePrefix("192.0.2.50/32"), Added: true}})
	l.pa.Take()
	l.pa.Inject(vipSYN)
	l.run()
	if h := l.host.Take(); len(h) != 1 {
		t.Fatalf("SYN to the VIP SNAT uses: %d punted", len(h))
	}

	l2 := newLab(t)
	if _, err := l2.r.Reconfigure(snat(testConfig())); err != nil {
		t.Fatal(err)
	}
	l2.resolveA()
	l2.pa.Inject(tcpTo(t, ipRA, 179))
	l2.run()
	if d := l2.r.Drops()[DropNAT]; d != 1 {
		t.Fatalf("without host: nat drops %d, want 1", d)
	}
}
