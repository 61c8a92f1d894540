package fib6

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"vrouter/fib"
	"vrouter/internal/nstest"
)

// The kernel import of IPv6 routes (fib.WatchKernel with Table6), in a
// network namespace of its own, as package fib tests the IPv4 import.

// testNS creates a namespace with a veth pair d0/d1, d0 holding
// 2001:db8:99::1/64 and 10.99.0.1/24, removed when the test ends.
func testNS(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("f6k-%d", os.Getpid())
	exec.Command("ip", "netns", "del", name).Run()
	nstest.Sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	nstest.Sh(t, "ip", "-n", name, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	nstest.Sh(t, "ip", "-n", name, "link", "set", "d1", "up")
	nstest.Sh(t, "ip", "-n", name, "link", "set", "d0", "up")
	nstest.Sh(t, "ip", "-n", name, "addr", "add", "2001:db8:99::1/64", "dev", "d0", "nodad")
	nstest.Sh(t, "ip", "-n", name, "addr", "add", "10.99.0.1/24", "dev", "d0")
	return name
}

// startWatcher runs fib.WatchKernel from a thread switched into the
// namespace.
func startWatcher(t *testing.T, ctx context.Context, ns string, tb4 *fib.Table, opt fib.KernelOptions) *fib.KernelWatcher {
	t.Helper()
	var w *fib.KernelWatcher
	var err error
	nstest.InNamed(t, ns, func() { w, err = fib.WatchKernel(ctx, tb4, opt) })
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func gw6(n uint16, g string) NextHop {
	return NextHop{Kind: fib.KindGateway, Network: n, Gateway: a16(g)}
}

type probe6 struct {
	addr string
	ok   bool
	nh   NextHop
}

func checkProbes6(t *testing.T, tb *Table, ps []probe6) {
	t.Helper()
	for _, p := range ps {
		nh, ok := tb.Lookup(a16(p.addr))
		if ok != p.ok || nh != p.nh {
			t.Errorf("Lookup(%s) = %+v %v, want %+v %v", p.addr, nh, ok, p.nh, p.ok)
		}
	}
}

// TestKernelImport6: IPv6 routes of the table are imported with the IPv4
// ones by one watcher: gateways (global on a network's prefix, link-local
// on a network's interface), blackhole/unreachable/prohibit, routes vrouter
// cannot use counted, other tables ignored, the static source winning,
// events, and the kernel's choice among routes of several metrics.
func TestKernelImport6(t *testing.T) {
	nstest.NeedRoot(t)
	ns := testNS(t)
	d0, err := linkIndex(ns, "d0")
	if err != nil {
		t.Fatal(err)
	}
	nstest.IPBatch(t, ns, []string{
		"route add 2001:db8:1::/48 via 2001:db8:99::2 table 100",
		"route add 2001:db8:2::/48 via 2001:db8:77::1 dev d0 onlink table 100", // gateway on no vrouter network
		"route add 2001:db8:3::/48 dev d0 table 100",                           // no gateway
		"route add blackhole 2001:db8:4::/48 table 100",
		"route add 2001:db8:5::/48 via 2001:db8:99::5 metric 20 table 100",
		"route add 2001:db8:5::/48 via 2001:db8:99::4 metric 10 table 100",
		"route add 2001:db8:6::/48 via 2001:db8:99::6 table 101", // other table
		"route add 192.0.2.0/24 via 10.99.0.2 table 100",
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tb4, tb := fib.New(), New()
	tb.Add(Route{Prefix: pfx("2001:db8:4::/48"), Source: fib.Static, NH: gw6(0, "2001:db8:99::10")}) // static beats kernel
	net99 := netip.MustParsePrefix("2001:db8:99::/64")
	resolve6 := func(g [16]byte, ifindex int) (uint16, bool) {
		a := netip.AddrFrom16(g)
		if net99.Contains(a) || a.IsLinkLocalUnicast() && ifindex == d0 {
			return 1, true
		}
		return 0, false
	}
	resolve4 := func(g uint32) (uint16, bool) { return 1, g>>8 == 0x0a6300 }
	w := startWatcher(t, ctx, ns, tb4, fib.KernelOptions{Table: 100, Resolve: resolve4, Table6: tb, Resolve6: resolve6})
	st := w.Stats()
	if st.Routes6 != 3 || st.Routes != 1 || st.Unresolved != 1 || st.NoGateway != 1 || st.Alternates6 != 1 || st.Imported != 5 {
		t.Fatalf("after dump: %+v", st)
	}
	checkProbes6(t, tb, []probe6{
		{"2001:db8:1::1", true, gw6(1, "2001:db8:99::2")},
		{"2001:db8:2::1", false, NextHop{}},
		{"2001:db8:3::1", false, NextHop{}},
		{"2001:db8:4::1", true, gw6(0, "2001:db8:99::10")},
		{"2001:db8:5::1", true, gw6(1, "2001:db8:99::4")}, // metric 10 first
		{"2001:db8:6::1", false, NextHop{}},
	})
	if nh, ok := tb4.Lookup(0xc0000201); !ok || nh.Gateway != 0x0a630002 {
		t.Fatalf("IPv4 route: %+v %v", nh, ok)
	}
	if r, ok := tb.Get(pfx("2001:db8:4::/48")); !ok || r.Source != fib.Static {
		t.Fatalf("Get = %+v", r)
	}
	// events
	nstest.IPBatch(t, ns, []string{
		"route add 2001:db8:7::/48 via 2001:db8:99::7 table 100",
		"route add unreachable 2001:db8:8::/48 table 100",
		"route add prohibit 2001:db8:9::/48 table 100",
		"route add 2001:db8:a::/48 via 2001:db8:99::8 table 101",
		"route add ::/0 via fe80::1 dev d0 table 100",
		"route del 2001:db8:5::/48 via 2001:db8:99::4 metric 10 table 100", // falls back to metric 20
	})
	nstest.WaitFor(t, "events", 30*time.Second, func() bool { return w.Stats().Routes6 == 7 })
	nstest.WaitFor(t, "fallback", 30*time.Second, func() bool { nh, _ := tb.Lookup(a16("2001:db8:5::1")); return nh == gw6(1, "2001:db8:99::5") })
	checkProbes6(t, tb, []probe6{
		{"2001:db8:7::1", true, gw6(1, "2001:db8:99::7")},
		{"2001:db8:8::1", true, NextHop{Kind: fib.KindUnreachable}},
		{"2001:db8:9::1", true, NextHop{Kind: fib.KindProhibit}},
		{"2001:db8:a::1", true, gw6(1, "fe80::1")}, // table 101 ignored: the default
	})
	nstest.IPBatch(t, ns, []string{"route replace 2001:db8:1::/48 via 2001:db8:99::9 table 100"})
	nstest.WaitFor(t, "replace", 30*time.Second, func() bool { nh, _ := tb.Lookup(a16("2001:db8:1::1")); return nh == gw6(1, "2001:db8:99::9") })
	nstest.IPBatch(t, ns, []string{
		"route del 2001:db8:1::/48 table 100",
		"route del ::/0 table 100",
		"route del blackhole 2001:db8:4::/48 table 100",
	})
	nstest.WaitFor(t, "deletes", 30*time.Second, func() bool { return w.Stats().Routes6 == 4 })
	checkProbes6(t, tb, []probe6{
		{"2001:db8:1::1", false, NextHop{}},
		{"2001:db8:a::1", false, NextHop{}},
		{"2001:db8:4::1", true, gw6(0, "2001:db8:99::10")}, // the static route stays
	})
	// a resync and a new watcher's dump make the same choices
	w.Resync()
	nstest.WaitFor(t, "resync", 30*time.Second, func() bool { return w.Stats().Resyncs == 1 })
	tb2 := New()
	w2 := startWatcher(t, ctx, ns, fib.New(), fib.KernelOptions{Table: 100, Resolve: resolve4, Table6: tb2, Resolve6: resolve6})
	for _, x := range []*Table{tb, tb2} {
		nstest.WaitFor(t, "after the dump", 30*time.Second, func() bool {
			nh, _ := x.Lookup(a16("2001:db8:5::1"))
			return nh == gw6(1, "2001:db8:99::5") && x.Summary().BySource["kernel"] == 4
		})
	}
	if st := w2.Stats(); st.Routes6 != 4 || st.Alternates6 != 0 {
		t.Fatalf("new watcher: %+v", st)
	}
	st = w.Stats()
	if st.Errors != 0 || st.Deleted != 4 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("stats %+v", st)
}

// TestKernelDevice6: a route through a host interface (Device) goes to its
// network, as a connected route without a gateway, through the gateway
// with one.
func TestKernelDevice6(t *testing.T) {
	nstest.NeedRoot(t)
	ns := testNS(t)
	nstest.IPBatch(t, ns, []string{
		"route add 2001:db8:1::/48 dev d1 table 100",
		"route add 2001:db8:2::/48 via fe80::2 dev d1 table 100",
		"route add 2001:db8:3::/48 dev d0 table 100", // no Device mapping: no gateway, skipped
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tb := New()
	dev := func(ifindex int, name string) (uint16, bool) { return 5, name == "d1" }
	w := startWatcher(t, ctx, ns, fib.New(), fib.KernelOptions{Table: 100, Resolve: func(uint32) (uint16, bool) { return 0, false },
		Device: dev, Table6: tb})
	checkProbes6(t, tb, []probe6{
		{"2001:db8:1::1", true, NextHop{Kind: fib.KindConnected, Network: 5}},
		{"2001:db8:2::1", true, gw6(5, "fe80::2")},
		{"2001:db8:3::1", false, NextHop{}},
	})
	if st := w.Stats(); st.ViaDevice != 2 || st.NoGateway != 1 || st.Routes6 != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// linkIndex returns the index of interface name in namespace ns.
func linkIndex(ns, name string) (int, error) {
	out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", name).Output()
	if err != nil {
		return 0, err
	}
	var idx int
	_, err = fmt.Sscanf(string(out), "%d:", &idx)
	return idx, err
}

// TestKernelFullTable6 loads the full IPv6 table into kernel table 100
// with ip -batch while a watcher runs (events), then starts a second
// watcher (a dump), and compares both FIBs with the reference.
func TestKernelFullTable6(t *testing.T) {
	nstest.NeedRoot(t)
	if testing.Short() {
		t.Skip("-short: loads 160,147 routes into the kernel")
	}
	ps := loadFull(t)
	ns := testNS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resolve6 := func(g [16]byte, _ int) (uint16, bool) { return 1, true }
	noV4 := func(uint32) (uint16, bool) { return 0, false }
	tb := New()
	w := startWatcher(t, ctx, ns, fib.New(), fib.KernelOptions{Table: 100, Resolve: noV4, Table6: tb, Resolve6: resolve6})
	lines := make([]string, len(ps))
	r := newRef()
	for i, p := range ps {
		g := fmt.Sprintf("2001:db8:99::%x", 2+i%7)
		lines[i] = fmt.Sprintf("route add %s via %s table 100", p, g)
		r.add(Route{Prefix: p, Source: fib.Kernel, NH: gw6(1, g)})
	}
	st := time.Now()
	nstest.IPBatch(t, ns, lines)
	ipDone := time.Since(st)
	nstest.WaitFor(t, "all routes", 300*time.Second, func() bool { return w.Stats().Routes6 == len(ps) })
	t.Logf("ip -batch of %d routes: %v; in the FIB %v after the start", len(ps), ipDone, time.Since(st))
	rng := newRng()
	addrs := randAddrs(rng, ps, 100000)
	compareAll(t, tb, r, addrs)

	st = time.Now()
	tb2 := New()
	w2 := startWatcher(t, ctx, ns, fib.New(), fib.KernelOptions{Table: 100, Resolve: noV4, Table6: tb2, Resolve6: resolve6})
	t.Logf("dump of %d routes installed in %v; stats %+v", len(ps), time.Since(st), w2.Stats())
	compareAll(t, tb2, r, addrs)
	// a flood may overflow the event socket (more so under -race): the
	// watcher then dumps again, which the comparison above checked
	if s := w.Stats(); s.Errors > s.Resyncs || s.Skipped != 0 {
		t.Fatalf("stats %+v", s)
	} else {
		t.Logf("events watcher: %+v", s)
	}
}
