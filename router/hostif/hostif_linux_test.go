package hostif

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"vrouter/internal/nstest"
	"vrouter/packet"
	"vrouter/router"
)

func newSystem(t *testing.T) (*System, string) {
	t.Helper()
	nstest.NeedRoot(t)
	name := nstest.Name("vrhif")
	ns := nstest.NS(t, name)
	s, err := New(Options{Name: "t-1", NS: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, name
}

func TestOpenAddrs(t *testing.T) {
	s, ns := newSystem(t)
	mac := packet.MAC{2, 0, 0, 0xaa, 0, 1}
	p, ifindex, err := s.Open("vr-test", mac, 1400)
	if err != nil {
		t.Fatal(err)
	}
	if ifindex <= 0 || p.Name() != "host:vr-test" {
		t.Fatalf("ifindex %d name %q", ifindex, p.Name())
	}
	out := nstest.Sh(t, "ip", "-n", ns, "-o", "link", "show", "vr-test")
	for _, want := range []string{"mtu 1400", "02:00:00:aa:00:01", "UP"} {
		if !strings.Contains(out, want) {
			t.Fatalf("want %q in %s", want, out)
		}
	}
	if v := nstest.Sh(t, "ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv6/conf/vr-test/disable_ipv6"); strings.TrimSpace(v) != "1" {
		t.Fatalf("IPv6 on: %s", v)
	}
	if _, _, err := s.Open("vr-test", mac, 1400); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("second Open: %v", err)
	}
	a := netip.MustParsePrefix("10.9.0.1/24")
	if err := s.AddAddr("vr-test", a); err != nil {
		t.Fatal(err)
	}
	if err := s.AddAddr("vr-test", a); err != nil {
		t.Fatalf("adding twice: %v", err)
	}
	if out := nstest.Sh(t, "ip", "-n", ns, "-o", "-4", "addr", "show", "vr-test"); !strings.Contains(out, "inet 10.9.0.1/24 brd 10.9.0.255") {
		t.Fatalf("address: %s", out)
	}
	if err := s.SetLink("vr-test", packet.MAC{2, 0, 0, 0xaa, 0, 2}, 1500); err != nil {
		t.Fatal(err)
	}
	out = nstest.Sh(t, "ip", "-n", ns, "-o", "link", "show", "vr-test")
	if !strings.Contains(out, "mtu 1500") || !strings.Contains(out, "02:00:00:aa:00:02") {
		t.Fatalf("after SetLink: %s", out)
	}
	if out := nstest.Sh(t, "ip", "-n", ns, "-o", "-4", "addr", "show", "vr-test"); !strings.Contains(out, "10.9.0.1/24") {
		t.Fatalf("address lost by SetLink: %s", out)
	}
	if err := s.DelAddr("vr-test", a); err != nil {
		t.Fatal(err)
	}
	if err := s.DelAddr("vr-test", a); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
	p.Close()
	if out := nstest.Sh(t, "ip", "-n", ns, "-o", "link"); strings.Contains(out, "vr-test") {
		t.Fatalf("device left after Close: %s", out)
	}
}

func TestWatch(t *testing.T) {
	s, ns := newSystem(t)
	p, ifindex, err := s.Open("vr-w", packet.MAC{2, 0, 0, 0xbb, 0, 1}, 1500)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := s.AddAddr("vr-w", netip.MustParsePrefix("10.8.0.1/24")); err != nil {
		t.Fatal(err)
	}
	evc := make(chan []router.AddrEvent, 16)
	stop, err := s.Watch(func(evs []router.AddrEvent) { evc <- evs })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	next := func() []router.AddrEvent {
		select {
		case evs := <-evc:
			return evs
		case <-time.After(3 * time.Second):
			t.Fatal("no address event")
		}
		return nil
	}
	first := next()
	if !first[0].Reset {
		t.Fatalf("first batch %+v", first)
	}
	found := false
	for _, e := range first[1:] {
		found = found || (e.Ifindex == ifindex && e.Prefix.String() == "10.8.0.1/24" && e.Added)
	}
	if !found {
		t.Fatalf("dump lacks the address: %+v", first)
	}
	start := time.Now()
	nstest.Sh(t, "ip", "-n", ns, "addr", "add", "10.8.0.50/32", "dev", "vr-w")
	evs := next()
	lat := time.Since(start)
	if len(evs) != 1 || evs[0] != (router.AddrEvent{Ifindex: ifindex, Prefix: netip.MustParsePrefix("10.8.0.50/32"), Added: true}) {
		t.Fatalf("add event %+v", evs)
	}
	t.Logf("ip addr add to event: %v (including the ip command)", lat)
	nstest.Sh(t, "ip", "-n", ns, "addr", "del", "10.8.0.50/32", "dev", "vr-w")
	if evs := next(); len(evs) != 1 || evs[0].Added || evs[0].Prefix.String() != "10.8.0.50/32" {
		t.Fatalf("del event %+v", evs)
	}
	// IPv6: the file's address turns IPv6 on; a daemon's VIP is reported
	// when added and when removed (among the kernel's link-local events).
	if err := s.AddAddr("vr-w", netip.MustParsePrefix("2001:db8:8::1/64")); err != nil {
		t.Fatal(err)
	}
	waitFor := func(want router.AddrEvent) {
		t.Helper()
		for {
			for _, e := range next() {
				if e == want {
					return
				}
			}
		}
	}
	waitFor(router.AddrEvent{Ifindex: ifindex, Prefix: netip.MustParsePrefix("2001:db8:8::1/64"), Added: true})
	nstest.Sh(t, "ip", "-n", ns, "-6", "addr", "add", "2001:db8:8::50/128", "dev", "vr-w", "nodad")
	waitFor(router.AddrEvent{Ifindex: ifindex, Prefix: netip.MustParsePrefix("2001:db8:8::50/128"), Added: true})
	nstest.Sh(t, "ip", "-n", ns, "-6", "addr", "del", "2001:db8:8::50/128", "dev", "vr-w")
	waitFor(router.AddrEvent{Ifindex: ifindex, Prefix: netip.MustParsePrefix("2001:db8:8::50/128")})
}

func TestIsolate(t *testing.T) {
	s, ns := newSystem(t)
	nstest.Sh(t, "ip", "-n", ns, "link", "add", "vr-p1", "type", "veth", "peer", "name", "vr-p1b")
	nstest.Sh(t, "ip", "-n", ns, "link", "add", "vr-p2", "type", "veth", "peer", "name", "vr-p2b")
	if s.Table() != "vrouter_t_1" {
		t.Fatalf("table %q", s.Table())
	}
	if err := s.Isolate([]string{"vr-p1", "vr-p2"}); err != nil {
		t.Fatal(err)
	}
	out := nstest.Sh(t, "ip", "netns", "exec", ns, "nft", "list", "table", "netdev", "vrouter_t_1")
	for _, want := range []string{`hook ingress device "vr-p1" priority -500; policy drop;`, `device "vr-p2"`} {
		if !strings.Contains(out, want) {
			t.Fatalf("want %q in\n%s", want, out)
		}
	}
	if err := s.Isolate([]string{"vr-p2"}); err != nil {
		t.Fatal(err)
	}
	if out := nstest.Sh(t, "ip", "netns", "exec", ns, "nft", "list", "table", "netdev", "vrouter_t_1"); strings.Contains(out, "vr-p1") {
		t.Fatalf("vr-p1 still isolated:\n%s", out)
	}
	if err := s.Isolate(nil); err != nil {
		t.Fatal(err)
	}
	if out := nstest.Sh(t, "ip", "netns", "exec", ns, "nft", "list", "tables"); strings.Contains(out, "vrouter_t_1") {
		t.Fatalf("table left:\n%s", out)
	}
	if err := s.Isolate(nil); err != nil {
		t.Fatalf("second undo: %v", err)
	}
}
