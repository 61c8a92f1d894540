package router

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"vrouter/arp"
	"vrouter/config"
	"vrouter/internal/clock"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

// [[arp]] with IPv6 addresses: a static neighbour is used without a
// solicitation (and never replaced by what an advertisement says), and a
// published address is answered by proxy NDP (Override clear) on its
// network only.
func TestStaticNeighbour6AndProxyNDP(t *testing.T) {
	pub := netip.MustParseAddr("2001:db8:a::99")
	cfg := testConfig6()
	cfg.ARP6 = []config.ARPEntry{
		{Network: "b", IP: ip6HostB, MAC: hostB},
		{Network: "a", IP: pub, Publish: true},
	}
	pa, pb := pipe.New("pa", macA, 1500), pipe.New("pb", macB, 1400)
	clk := clock.NewManual()
	r, err := New(cfg, []port.Port{pa, pb}, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{t: t, r: r, clk: clk, pa: pa, pb: pb}
	if e, ok := neighbour6(r, 1, ip6HostB); !ok || e.State != arp.Static || !bytes.Equal(e.MAC[:], hostB) {
		t.Fatalf("static neighbour %+v (found %v)", e, ok)
	}

	pa.Inject(echo6(t, hostA, macA, ip6HostA, ip6HostB, 64, 8))
	l.run()
	out := pb.Take()
	if len(out) != 1 {
		t.Fatalf("%d frames on b, want the echo without a solicitation", len(out))
	}
	if eth := decode(out[0]).Layer(layers.LayerTypeEthernet).(*layers.Ethernet); !bytes.Equal(eth.DstMAC, hostB) || eth.EthernetType != layers.EthernetTypeIPv6 {
		t.Fatalf("forwarded to %v (%v)", eth.DstMAC, eth.EthernetType)
	}
	// An advertisement with another MAC does not replace a static entry.
	pb.Inject(naFrame(t, hostA, macB, ip6HostB, ip6RB))
	l.run()
	if e, _ := neighbour6(r, 1, ip6HostB); e.State != arp.Static || !bytes.Equal(e.MAC[:], hostB) {
		t.Fatalf("static neighbour changed: %+v", e)
	}

	pa.Inject(nsFrame(t, hostA, ip6HostA, pub))
	l.run()
	out = pa.Take()
	if len(out) != 1 {
		t.Fatalf("proxy NDP: %d answers", len(out))
	}
	p, _ := decode6(t, out[0])
	na, _ := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if na == nil || !na.TargetAddress.Equal(a16(pub)) || !na.Solicited() || na.Override() ||
		len(na.Options) != 1 || !bytes.Equal(na.Options[0].Data, macA[:]) {
		t.Fatalf("proxy NA %v", p)
	}
	// Not published on b, and not another address on a.
	pb.Inject(nsFrame(t, hostB, ip6HostB, pub))
	pa.Inject(nsFrame(t, hostA, ip6HostA, netip.MustParseAddr("2001:db8:a::98")))
	l.run()
	if a, b := pa.Take(), pb.Take(); len(a)+len(b) != 0 {
		t.Fatalf("answered %d+%d solicitations for unpublished targets", len(a), len(b))
	}

	// A reload without the entries drops the static neighbour and the proxy.
	cfg2 := testConfig6()
	if _, err := r.Reconfigure(cfg2); err != nil {
		t.Fatal(err)
	}
	if e, ok := neighbour6(r, 1, ip6HostB); ok && e.State == arp.Static {
		t.Fatalf("static neighbour left after reload: %+v", e)
	}
	pa.Inject(nsFrame(t, hostA, ip6HostA, pub))
	l.run()
	if out := pa.Take(); len(out) != 0 {
		t.Fatal("proxy NDP left after reload")
	}
}

// neighbour6 finds a in network ni's neighbours.
func neighbour6(r *Router, ni uint16, a netip.Addr) (arp.Entry, bool) {
	for _, e := range r.Neigh.Entries(0) {
		if e.Network == ni && e.V6 && e.IP6 == a.As16() {
			return e, true
		}
	}
	return arp.Entry{}, false
}
