package router

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/internal/clock"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

// An IPv6 address a daemon adds to the host interface (a keepalived VIP)
// becomes the network's: announced with an unsolicited neighbour
// advertisement, solicitations for it answered, echo answered; removed, it
// is not answered any more. The kernel's link-local addresses are not
// followed, and one that overlaps another network's prefix is ignored.
func TestHostAddrSync6(t *testing.T) {
	cfg := testConfig6()
	cfg.Networks[0].Host = "vr-a"
	cfg.ApplyDefaults()
	pa, pb := pipe.New("pa", macA, 1500), pipe.New("pb", macB, 1400)
	fh := newFakeHost()
	clk := clock.NewManual()
	r, err := New(cfg, []port.Port{pa, pb}, Options{Clock: clk, Host: fh})
	if err != nil {
		t.Fatal(err)
	}
	r.startHosts()
	l := &hostLab{lab: &lab{t: t, r: r, clk: clk, pa: pa, pb: pb}, fh: fh, host: fh.ports["vr-a"]}
	if fh.watch == nil {
		t.Fatal("not watching")
	}
	vip := netip.MustParseAddr("2001:db8:a::50")
	fh.watch([]AddrEvent{
		{Ifindex: 101, Prefix: netip.MustParsePrefix("2001:db8:a::1/64"), Added: true}, // the file's: nothing
		{Ifindex: 101, Prefix: netip.MustParsePrefix("fe80::1234/64"), Added: true},    // the kernel's link-local
		{Ifindex: 101, Prefix: netip.PrefixFrom(vip, 128), Added: true},                // the VIP
		{Ifindex: 101, Prefix: netip.MustParsePrefix("2001:db8:b::7/64"), Added: true}, // network b's prefix
	})
	out := pa.Take()
	if len(out) != 1 {
		t.Fatalf("want one unsolicited NA, got %d frames", len(out))
	}
	p, ip := decode6(t, out[0])
	na, _ := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if na == nil || !na.TargetAddress.Equal(a16(vip)) || !na.Override() || na.Solicited() || !ip.DstIP.Equal(a16(netip.MustParseAddr("ff02::1"))) || ip.HopLimit != 255 {
		t.Fatalf("not an unsolicited NA for the VIP: %v", p)
	}
	hi := r.HostInterfaces()[0]
	if len(hi.Kernel) != 1 || hi.Kernel[0] != netip.PrefixFrom(vip, 128) || len(hi.Ignored) != 1 || hi.Ignored[0].Prefix.String() != "2001:db8:b::7/64" {
		t.Fatalf("addresses: kernel %v ignored %+v", hi.Kernel, hi.Ignored)
	}
	if hi.Ignored[0].Reason != `overlaps 2001:db8:b::/64 of network "b"` {
		t.Fatalf("reason %q", hi.Ignored[0].Reason)
	}

	pa.Inject(nsFrame(t, hostA, ip6HostA, vip))
	pa.Inject(echo6(t, hostA, macA, ip6HostA, vip, 64, 8))
	l.run()
	out = pa.Take()
	if len(out) != 2 {
		t.Fatalf("VIP: want an NA and an echo reply, got %d frames", len(out))
	}
	p, _ = decode6(t, out[0])
	if na, _ := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement); na == nil || !na.Solicited() || !na.TargetAddress.Equal(a16(vip)) {
		t.Fatalf("NS for the VIP answered with %v", p)
	}
	if _, ic := expectICMP6From(t, out[1:], vip); ic.TypeCode.Type() != layers.ICMPv6TypeEchoReply {
		t.Fatalf("echo to the VIP answered with %v", ic.TypeCode)
	}

	// A VIP in the network's /64 (as keepalived adds one with its prefix)
	// does not add the prefix to the router advertisement a second time.
	fh.watch([]AddrEvent{{Ifindex: 101, Prefix: netip.MustParsePrefix("2001:db8:a::51/64"), Added: true}})
	pa.Take()
	if n := r.snap.Load().nets[0].v6; len(n.addrs) != 3 || !slices.Equal(raPrefixes(t, n.raMsg), []string{"2001:db8:a::"}) {
		t.Fatalf("addresses %d, RA prefixes %v", len(n.addrs), raPrefixes(t, n.raMsg))
	}
	fh.watch([]AddrEvent{{Ifindex: 101, Prefix: netip.MustParsePrefix("2001:db8:a::51/64")}})

	fh.watch([]AddrEvent{{Ifindex: 101, Prefix: netip.PrefixFrom(vip, 128)}})
	pa.Inject(nsFrame(t, hostA, ip6HostA, vip))
	l.run()
	if out := pa.Take(); len(out) != 0 {
		t.Fatalf("removed VIP still answered (%d frames)", len(out))
	}
	if hi := r.HostInterfaces()[0]; len(hi.Kernel) != 0 {
		t.Fatalf("kernel addresses after removal %v", hi.Kernel)
	}
	if _, ok := r.snap.Load().v6.local[vip.As16()]; ok {
		t.Fatal("removed VIP still local")
	}
}

// expectICMP6From decodes the one ICMPv6 frame in frames and checks that it
// comes from src.
func expectICMP6From(t *testing.T, frames [][]byte, src netip.Addr) (*layers.IPv6, *layers.ICMPv6) {
	t.Helper()
	if len(frames) != 1 {
		t.Fatalf("want 1 ICMPv6 frame, got %d", len(frames))
	}
	p, ip := decode6(t, frames[0])
	if !ip.SrcIP.Equal(a16(src)) {
		t.Fatalf("from %v, want %v", ip.SrcIP, src)
	}
	return ip, icmp6Of(t, p)
}

// raPrefixes decodes the prefix options of router advertisement msg with
// gopacket.
func raPrefixes(t *testing.T, msg []byte) []string {
	t.Helper()
	var ra layers.ICMPv6RouterAdvertisement
	if err := ra.DecodeFromBytes(msg[4:], gopacket.NilDecodeFeedback); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range ra.Options {
		if o.Type == layers.ICMPv6OptPrefixInfo {
			out = append(out, netip.AddrFrom16([16]byte(o.Data[14:30])).String())
		}
	}
	return out
}
