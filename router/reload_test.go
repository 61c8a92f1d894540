package router

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/config"
	"vrouter/internal/clock"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

var (
	macC  = [6]byte{2, 0, 0, 0, 0, 0xc}
	gwB   = net.HardwareAddr{2, 0xbb, 0, 0, 0, 0xfe} // 198.51.100.254, static
	hostC = net.HardwareAddr{2, 0xcc, 0, 0, 0, 1}    // 203.0.113.10, static
)

// rotatingConfig is a three-network router whose networks are listed in a
// different order depending on rot, so every reload between two rotations
// renumbers them in the file: SNAT of network a out of b, a static route
// via b, a connected destination on c, static neighbours.
func rotatingConfig(rot int) *config.Config {
	nets := []config.Network{
		{Name: "a", Links: []config.Link{{Port: "pa"}}, Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}},
		{Name: "b", Links: []config.Link{{Port: "pb"}}, Addresses: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")}},
		{Name: "c", Links: []config.Link{{Port: "pc"}}, Addresses: []netip.Prefix{netip.MustParsePrefix("203.0.113.1/24")}},
	}
	var order []config.Network
	for i := range nets {
		order = append(order, nets[(i+rot)%len(nets)])
	}
	cfg := testConfig()
	cfg.Ports = []config.Port{{Name: "pa", Driver: "pipe"}, {Name: "pb", Driver: "pipe"}, {Name: "pc", Driver: "pipe"}}
	cfg.Networks = order
	cfg.Routes = []config.Route{{Prefix: netip.MustParsePrefix("10.9.0.0/16"), Via: netip.MustParseAddr("198.51.100.254"), Type: config.RouteUnicast}}
	cfg.ARP = []config.ARPEntry{
		{Network: "b", IP: netip.MustParseAddr("198.51.100.254"), MAC: gwB},
		{Network: "c", IP: netip.MustParseAddr("203.0.113.10"), MAC: hostC},
		{Network: "a", IP: netip.MustParseAddr("192.0.2.10"), MAC: hostA},
	}
	cfg.NAT.SNAT = []config.SNAT{{Source: netip.MustParsePrefix("192.0.2.0/24"), Out: "b",
		To: config.AddrRange{First: netip.MustParseAddr("198.51.100.1"), Last: netip.MustParseAddr("198.51.100.1")}}}
	cfg.ApplyDefaults()
	return cfg
}

func udpFrom(t testing.TB, dst net.IP, sport uint16) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: ipHostA, DstIP: dst}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: 53}
	udp.SetNetworkLayerForChecksum(ip)
	return ser(t, &layers.Ethernet{SrcMAC: hostA, DstMAC: macA[:], EthernetType: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload("hello"))
}

// A reload publishes the snapshot, the NAT rules and the FIB's routes; a
// worker must never see a mix that sends a packet to the wrong network.
// Reloads that renumber the networks run in a loop while a worker forwards
// traffic; every packet must leave on the right port, translated as the
// rules say, and nothing may be dropped.
func TestReloadUnderTrafficIsAtomic(t *testing.T) {
	pa, pb, pc := pipe.New("pa", macA, 1500), pipe.New("pb", macB, 1500), pipe.New("pc", macC, 1500)
	clk := clock.NewManual()
	r, err := New(rotatingConfig(0), []port.Port{pa, pb, pc}, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	frames := [][]byte{}
	for i := 0; i < 32; i++ {
		frames = append(frames, udpFrom(t, net.IPv4(10, 9, 1, byte(i)).To4(), uint16(2000+i))) // SNAT out of b
		frames = append(frames, udpFrom(t, net.IPv4(203, 0, 113, 10).To4(), uint16(3000+i)))   // routed to c (not NATed)
	}
	w, p0 := r.workers[0], r.ports[0] // read before reloads run (they replace r.ports under r.mu)
	var stop atomic.Bool
	var reloads int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for rot := 1; !stop.Load(); rot++ {
			if _, err := r.Reconfigure(rotatingConfig(rot % 3)); err != nil {
				t.Error(err)
				return
			}
			reloads++
		}
	}()
	sent := 0
	deadline := time.Now().Add(time.Second)
	if testing.Short() {
		deadline = time.Now().Add(300 * time.Millisecond)
	}
	check := func() {
		for _, f := range pb.Take() {
			p := decode(f)
			eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			ip := checkIPChecksum(t, p)
			if eth.DstMAC.String() != gwB.String() || !ip.SrcIP.Equal(ipRB) || ip.DstIP[0] != 10 {
				t.Fatalf("on b: %v -> %v from %v to %v (want SNATed to 198.51.100.1, to the gateway's MAC)", ip.SrcIP, ip.DstIP, eth.SrcMAC, eth.DstMAC)
			}
		}
		for _, f := range pc.Take() {
			p := decode(f)
			eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			ip := checkIPChecksum(t, p)
			if eth.DstMAC.String() != hostC.String() || !ip.SrcIP.Equal(ipHostA) || !ip.DstIP.Equal(net.IPv4(203, 0, 113, 10)) {
				t.Fatalf("on c: %v -> %v to %v (want untouched, to 203.0.113.10's MAC)", ip.SrcIP, ip.DstIP, eth.DstMAC)
			}
		}
		if out := pa.Take(); len(out) > 0 {
			t.Fatalf("%d frames went back out on a: %v", len(out), decode(out[0]))
		}
	}
	for time.Now().Before(deadline) && !t.Failed() {
		for _, f := range frames {
			pa.Inject(f)
		}
		for pa.TryReadBatch(w.rx) > 0 {
			w.processBatch(p0, w.rx)
		}
		sent += len(frames)
		check()
	}
	stop.Store(true)
	wg.Wait()
	check()
	st := r.Ports()
	if got := st[1].TxPackets + st[2].TxPackets; got != uint64(sent) {
		d := r.Drops()
		var why []string
		for i, v := range d {
			if v != 0 {
				why = append(why, DropReason(i).String())
			}
		}
		t.Fatalf("sent %d packets, %d left the router (drops: %s)", sent, got, strings.Join(why, ", "))
	}
	if reloads < 3 {
		t.Fatalf("only %d reloads ran during the traffic", reloads)
	}
	t.Logf("%d packets through %d reloads that renumbered the networks", sent, reloads)
}

// A NAT rule that does not compile fails the whole reload: nothing of the
// new configuration is published, the old one keeps working.
func TestReloadNATErrorChangesNothing(t *testing.T) {
	pa, pb, pc := pipe.New("pa", macA, 1500), pipe.New("pb", macB, 1500), pipe.New("pc", macC, 1500)
	r, err := New(rotatingConfig(0), []port.Port{pa, pb, pc}, Options{Clock: clock.NewManual()})
	if err != nil {
		t.Fatal(err)
	}
	before := r.snap.Load()
	routesBefore := len(r.FIB.Routes())
	bad := rotatingConfig(1)
	bad.Routes = nil // would remove the static route
	bad.NAT.Floating = []config.Floating{
		{External: netip.MustParseAddr("198.51.100.50"), Internal: netip.MustParseAddr("192.0.2.5")},
		{External: netip.MustParseAddr("198.51.100.50"), Internal: netip.MustParseAddr("192.0.2.6")},
	}
	if _, err := r.Reconfigure(bad); err == nil || !strings.Contains(err.Error(), "198.51.100.50") {
		t.Fatalf("reload with a duplicate floating IP: err = %v, want an error naming it", err)
	}
	if r.snap.Load() != before {
		t.Fatal("the snapshot was replaced by a failed reload")
	}
	if n := len(r.FIB.Routes()); n != routesBefore {
		t.Fatalf("FIB has %d routes after a failed reload, had %d", n, routesBefore)
	}
	if len(r.NAT.Rules().Floating) != 0 {
		t.Fatal("the failed reload's floating IPs were committed")
	}
	// The old configuration still forwards.
	pa.Inject(udpFrom(t, net.IPv4(10, 9, 0, 1).To4(), 4000))
	w := r.workers[0]
	for pa.TryReadBatch(w.rx) > 0 {
		w.processBatch(r.ports[0], w.rx)
	}
	if out := pb.Take(); len(out) != 1 {
		t.Fatalf("after the failed reload: %d frames out of b, want 1", len(out))
	}
}

// A reload that changes a port and carries a bad rule fails before the
// port is touched: the running port stays open.
func TestReloadErrorKeepsChangedPort(t *testing.T) {
	pa, pb, pc := pipe.New("pa", macA, 1500), pipe.New("pb", macB, 1500), pipe.New("pc", macC, 1500)
	opened := 0
	open := func(pc config.Port) (port.Port, error) {
		opened++
		return pipe.New(pc.Name, macB, pc.MTU), nil
	}
	r, err := New(rotatingConfig(0), []port.Port{pa, pb, pc}, Options{Clock: clock.NewManual(), Open: open})
	if err != nil {
		t.Fatal(err)
	}
	bad := rotatingConfig(0)
	bad.Ports[1].MTU = 1400 // port pb changes
	bad.NAT.Floating = []config.Floating{
		{External: netip.MustParseAddr("198.51.100.50"), Internal: netip.MustParseAddr("192.0.2.5")},
		{External: netip.MustParseAddr("198.51.100.50"), Internal: netip.MustParseAddr("192.0.2.6")},
	}
	if _, err := r.Reconfigure(bad); err == nil {
		t.Fatal("reload with a duplicate floating IP succeeded")
	}
	if opened != 0 || r.ports[1].closed.Load() {
		t.Fatalf("failed reload touched port pb (opened %d, closed %v)", opened, r.ports[1].closed.Load())
	}
	good := rotatingConfig(0)
	good.Ports[1].MTU = 1400
	if _, err := r.Reconfigure(good); err != nil || opened != 1 {
		t.Fatalf("valid reload: err %v, ports opened %d (want 1)", err, opened)
	}
}
