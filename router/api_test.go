package router

import (
	"errors"
	"net/netip"
	"path/filepath"
	"testing"

	"vrouter/arp"
)

func TestAPINetworksAndNames(t *testing.T) {
	l := newLab(t)
	l.resolveA()
	nets := l.r.Networks()
	if len(nets) != 2 || nets[0].Name != "a" || nets[1].Name != "b" || nets[1].MTU != 1400 {
		t.Fatalf("networks %+v", nets)
	}
	if a := nets[0]; len(a.Links) != 1 || a.Links[0].Name != "pa" || a.Links[0].RxPackets != 1 || a.Links[0].TxPackets != 1 ||
		len(a.Addresses) != 1 || a.Addresses[0] != netip.MustParsePrefix("192.0.2.1/24") {
		t.Fatalf("network a %+v", a)
	}
	if l.r.NetworkName(1) != "b" || l.r.NetworkName(7) != "" {
		t.Fatal("NetworkName")
	}
	nb := l.r.Neighbours()
	if len(nb) != 1 || nb[0].IP != netip.AddrFrom4([4]byte(ipHostA)) || nb[0].Network != "a" || nb[0].State != arp.Reachable {
		t.Fatalf("neighbours %+v", nb)
	}
	n := l.r.Names()
	if n.Router != "t" || len(n.Ports) != 2 || len(n.Networks) != 2 || len(n.Addresses) != 3 || n.RuntimeRoutes != nil {
		t.Fatalf("names %+v", n)
	}
	l.r.ClearARP()
	if len(l.r.Neighbours()) != 0 {
		t.Fatal("ClearARP left neighbours")
	}
}

func TestAPIRuntimeRoutes(t *testing.T) {
	l := newLab(t)
	p := netip.MustParsePrefix("10.77.0.0/16")
	if nw, err := l.r.AddRoute(p, netip.MustParseAddr("198.51.100.9")); err != nil || nw != "b" {
		t.Fatalf("AddRoute: %q %v", nw, err)
	}
	if _, err := l.r.AddRoute(p, netip.MustParseAddr("172.16.0.1")); err == nil {
		t.Fatal("AddRoute via a gateway on no network succeeded")
	}
	if got := l.r.Names().RuntimeRoutes; len(got) != 1 || got[0] != "10.77.0.0/16" {
		t.Fatalf("runtime routes %v", got)
	}
	if !l.r.DeleteRoute(p) || l.r.DeleteRoute(p) {
		t.Fatal("DeleteRoute")
	}
}

func TestAPIErrors(t *testing.T) {
	l := newLab(t)
	if _, err := l.r.BridgeEntries("nope"); !errors.Is(err, ErrNoNetwork) {
		t.Fatalf("BridgeEntries(nope): %v", err)
	}
	if es, err := l.r.BridgeEntries(""); err != nil || len(es) != 0 {
		t.Fatalf("BridgeEntries: %v %v", es, err)
	}
	if err := l.r.StartCapture("nope", filepath.Join(t.TempDir(), "x.pcap"), 1); !errors.Is(err, ErrNoPort) {
		t.Fatalf("StartCapture(nope): %v", err)
	}
	if _, err := l.r.StopCapture("pa"); !errors.Is(err, ErrNoCapture) {
		t.Fatalf("StopCapture without a capture: %v", err)
	}
	for _, n := range []int{0, -1, TraceMax + 1} {
		if l.r.Trace(n) == nil {
			t.Fatalf("Trace(%d) accepted", n)
		}
	}
	if n, ok := l.r.Reloads(); n != 0 || !ok {
		t.Fatalf("Reloads %d %v", n, ok)
	}
	l.r.ReloadFailed(errors.New("bad file"))
	if n, ok := l.r.Reloads(); n != 1 || ok {
		t.Fatalf("Reloads after a failure %d %v", n, ok)
	}
}
