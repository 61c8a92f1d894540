package fib

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"vrouter/internal/nstest"
)

// testNS creates a network namespace with a veth pair d0/d1 inside it
// (this kernel has no dummy driver), d0 holding 10.99.0.1/24, and removes
// it when the test ends.
func testNS(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("vrfib-%d", os.Getpid())
	exec.Command("ip", "netns", "del", name).Run()
	nstest.Sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	nstest.Sh(t, "ip", "-n", name, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	nstest.Sh(t, "ip", "-n", name, "link", "set", "d1", "up")
	nstest.Sh(t, "ip", "-n", name, "link", "set", "d0", "up")
	nstest.Sh(t, "ip", "-n", name, "addr", "add", "10.99.0.1/24", "dev", "d0")
	return name
}

// startWatcher runs WatchKernel from a thread switched into the namespace.
func startWatcher(t *testing.T, ctx context.Context, ns string, tb *Table, opt KernelOptions) *KernelWatcher {
	t.Helper()
	var w *KernelWatcher
	var err error
	nstest.InNamed(t, ns, func() { w, err = WatchKernel(ctx, tb, opt) })
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// resolve10_99 puts 10.99.0.0/24 on network 1.
func resolve10_99(gw uint32) (uint16, bool) {
	if gw&0xffffff00 == ip("10.99.0.0") {
		return 1, true
	}
	return 0, false
}

func TestKernelImport(t *testing.T) {
	nstest.NeedRoot(t)
	ns := testNS(t)
	// routes present before the watcher starts (the dump)
	nstest.IPBatch(t, ns, []string{
		"route add 192.0.2.0/24 via 10.99.0.2 table 100",
		"route add 198.51.100.0/24 via 10.77.0.1 dev d0 onlink table 100", // gateway on no vrouter network
		"route add 192.0.2.128/25 dev d0 table 100",                       // no gateway
		"route add blackhole 203.0.113.0/24 table 100",
		"route add 203.0.113.64/26 via 10.99.0.3 table 101", // other table
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tb := New()
	tb.Add(Route{pfx("203.0.113.0/24"), Static, gw(0, "10.0.0.1")}) // static beats kernel
	var netOf atomic.Uint32
	netOf.Store(1)
	resolve := func(gw uint32) (uint16, bool) {
		if gw&0xffffff00 == ip("10.99.0.0") {
			return uint16(netOf.Load()), true
		}
		return 0, false
	}
	w := startWatcher(t, ctx, ns, tb, KernelOptions{Table: 100, Resolve: resolve})
	st := w.Stats()
	if st.Routes != 2 || st.Unresolved != 1 || st.NoGateway != 1 || st.Skipped != 2 {
		t.Fatalf("after dump: %+v", st)
	}
	checkProbes(t, tb, []probe{
		{"192.0.2.1", true, gw(1, "10.99.0.2")},
		{"192.0.2.200", true, gw(1, "10.99.0.2")}, // the /25 without gateway was skipped
		{"198.51.100.1", false, NextHop{}},
		{"203.0.113.1", true, gw(0, "10.0.0.1")},
	})
	if r, ok := tb.Get(pfx("203.0.113.0/24")); !ok || r.Source != Static {
		t.Fatalf("Get = %+v", r)
	}
	// events: add, blackhole/unreachable/prohibit, replace, delete
	nstest.IPBatch(t, ns, []string{
		"route add 198.51.100.0/25 via 10.99.0.4 table 100",
		"route add unreachable 198.51.100.128/26 table 100",
		"route add prohibit 198.51.100.192/26 table 100",
		"route add 10.200.0.0/16 via 10.99.0.5 table 101",
		"route add default via 10.99.0.6 table 100",
	})
	nstest.WaitFor(t, "events", 30*time.Second, func() bool { return w.Stats().Routes == 6 })
	checkProbes(t, tb, []probe{
		{"198.51.100.1", true, gw(1, "10.99.0.4")},
		{"198.51.100.130", true, NextHop{Kind: KindUnreachable}},
		{"198.51.100.200", true, NextHop{Kind: KindProhibit}},
		{"10.200.0.1", true, gw(1, "10.99.0.6")}, // table 101 ignored, default of table 100
	})
	nstest.IPBatch(t, ns, []string{"route replace 192.0.2.0/24 via 10.99.0.9 table 100"})
	nstest.WaitFor(t, "replace", 30*time.Second, func() bool { nh, _ := tb.Lookup(ip("192.0.2.1")); return nh == gw(1, "10.99.0.9") })
	nstest.IPBatch(t, ns, []string{
		"route del 192.0.2.0/24 table 100",
		"route del default table 100",
		"route del blackhole 203.0.113.0/24 table 100",
	})
	nstest.WaitFor(t, "deletes", 30*time.Second, func() bool { return w.Stats().Routes == 3 })
	checkProbes(t, tb, []probe{
		{"192.0.2.1", false, NextHop{}},
		{"10.200.0.1", false, NextHop{}},
		{"203.0.113.1", true, gw(0, "10.0.0.1")}, // the static route stays
	})
	st = w.Stats()
	if st.Events != 8 || st.Deleted != 3 || st.Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Resync re-resolves every gateway: move 10.99.0.0/24 to network 2
	netOf.Store(2)
	w.Resync()
	nstest.WaitFor(t, "resync", 30*time.Second, func() bool {
		nh, _ := tb.Lookup(ip("198.51.100.1"))
		return nh == gw(2, "10.99.0.4")
	})
	if st := w.Stats(); st.Resyncs != 1 || st.Routes != 3 {
		t.Fatalf("after resync: %+v", st)
	}
	cancel()
	select {
	case <-w.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("watcher did not stop")
	}
	if w.Err() != context.Canceled {
		t.Fatalf("Err = %v", w.Err())
	}
	t.Logf("stats %+v", st)
}

func rssKB(t *testing.T) int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb int
		if n, _ := fmt.Sscanf(sc.Text(), "VmRSS: %d kB", &kb); n == 1 {
			return kb
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestKernelFullTable loads the full table into kernel table 100 with
// ip -batch while the watcher runs, then compares lookups with a reference
// built from the same prefixes.
func TestKernelFullTable(t *testing.T) {
	if testing.Short() {
		t.Skip("full-table test: runs in the main pass of make test, not in the -short -race pass")
	}
	nstest.NeedRoot(t)
	ps := loadFull(t)
	ns := testNS(t)
	lines := make([]string, 0, len(ps))
	for _, p := range ps {
		lines = append(lines, "route add "+p.String()+" via 10.99.0.2 dev d0 onlink table 100")
	}
	f := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lines = nil
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tb := New()
	// a connected route and lookups running during the load
	conn := NextHop{Kind: KindConnected, Network: 1}
	tb.Add(Route{pfx("10.99.0.0/24"), Connected, conn})
	w := startWatcher(t, ctx, ns, tb, KernelOptions{Table: 100, Resolve: resolve10_99})
	debug.FreeOSMemory()
	rss0 := rssKB(t)
	stop := make(chan struct{})
	bad := make(chan int, 1)
	connNet := ip("10.99.0.0")
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				bad <- n
				return
			default:
			}
			for i := range 1000 {
				if nh, ok := tb.Lookup(connNet | uint32(i&255)); !ok || nh != conn {
					n++
				}
			}
		}
	}()
	st := time.Now()
	out, err := exec.Command("ip", "-n", ns, "-batch", f).CombinedOutput()
	if err != nil {
		t.Fatalf("ip -batch: %v\n%s", err, out)
	}
	ipDone := time.Since(st)
	want := len(ps)
	nstest.WaitFor(t, "full table in the FIB", 120*time.Second, func() bool { return tb.Len() == want+1 })
	loaded := time.Since(st)
	close(stop)
	if n := <-bad; n != 0 {
		t.Errorf("%d wrong lookups of the connected network during the load", n)
	}
	debug.FreeOSMemory()
	rss1 := rssKB(t)
	ks := w.Stats()
	sum := tb.Summary()
	t.Logf("ip -batch of %d routes took %v; all in the FIB after %v; watcher %+v", len(ps), ipDone, loaded, ks)
	t.Logf("RSS %d MB before, %d MB with the full table (+%d MB); FIB memory %d MB, RIB %d MB",
		rss0/1024, rss1/1024, (rss1-rss0)/1024, sum.MemoryBytes>>20, sum.RIBBytes>>20)
	if ks.Routes != want || ks.Skipped != 0 || ks.Errors != 0 || sum.BySource["kernel"] != want {
		t.Fatalf("kernel stats %+v, summary %v", ks, sum.BySource)
	}
	// the flood was published in batches, at most one per FlushInterval (5 ms)
	// plus the ones MaxBatch forces
	if maxB := uint64(loaded/(5*time.Millisecond)) + uint64(want/65536) + 2; ks.Batches > maxB {
		t.Errorf("%d publishes during a %v load, want at most %d", ks.Batches, loaded, maxB)
	}
	// reference: the same prefixes, all via 10.99.0.2, plus the connected route
	r := newRef()
	via := gw(1, "10.99.0.2")
	for _, p := range ps {
		r.add(Route{p, Kernel, via})
	}
	r.add(Route{pfx("10.99.0.0/24"), Connected, conn})
	compareAll(t, tb, r, randAddrs(rand.New(rand.NewPCG(11, 12)), ps, 300_000))
	// a restart sees the same table in the dump
	cancel()
	<-w.Done()
	tb2 := New()
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	st = time.Now()
	w2 := startWatcher(t, ctx2, ns, tb2, KernelOptions{Table: 100, Resolve: resolve10_99})
	t.Logf("dump of %d routes installed in %v", tb2.Len(), time.Since(st))
	if tb2.Len() != want || w2.Stats().Routes != want {
		t.Fatalf("dump: %d routes", tb2.Len())
	}
	r.del(pfx("10.99.0.0/24"), Connected)
	compareAll(t, tb2, r, randAddrs(rand.New(rand.NewPCG(13, 14)), ps, 100_000))
	cancel2()
	<-w2.Done()

	// RSS of a process that holds nothing but the imported full table: this
	// test binary re-executed, running TestKernelRSSChild in the namespace
	cmd := exec.Command(os.Args[0], "-test.run=^TestKernelRSSChild$", "-test.v")
	cmd.Env = append(os.Environ(), "VRFIB_RSS_CHILD="+ns)
	out, err = cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "RSS:") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "RSS:") {
			t.Log(strings.TrimSpace(l))
		}
	}
}

// TestKernelRSSChild runs only as the child of TestKernelFullTable: it
// imports kernel table 100 of the namespace named in VRFIB_RSS_CHILD and
// reports the process's RSS.
func TestKernelRSSChild(t *testing.T) {
	ns := os.Getenv("VRFIB_RSS_CHILD")
	if ns == "" {
		t.Fatal("runs only as the child process of TestKernelFullTable (TestMain leaves it out otherwise)")
	}
	debug.FreeOSMemory()
	rss0 := rssKB(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tb := New()
	st := time.Now()
	w := startWatcher(t, ctx, ns, tb, KernelOptions{Table: 100, Resolve: resolve10_99})
	el := time.Since(st)
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	rss1 := rssKB(t)
	sum := tb.Summary()
	fmt.Printf("RSS: %d routes imported by dump in %v; process RSS %d MB (%d MB before the import); Go heap in use %d MB; FIB %.1f MB, RIB %.1f MB\n",
		w.Stats().Routes, el.Round(time.Millisecond), rss1/1024, rss0/1024, m.HeapInuse>>20,
		float64(sum.MemoryBytes)/(1<<20), float64(sum.RIBBytes)/(1<<20))
	if w.Stats().Routes != 901899 {
		t.Fatalf("routes %d", w.Stats().Routes)
	}
}

// kernelVia asks the kernel of namespace ns which gateway it uses for addr
// (table 100 is looked up first, see kernelRule); "" for none.
func kernelVia(t *testing.T, ns, addr string) string {
	t.Helper()
	out, _ := exec.Command("ip", "-n", ns, "route", "get", addr).CombinedOutput()
	f := strings.Fields(string(out))
	for i := range f {
		if f[i] == "via" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// kernelRule makes the kernel of ns look table 100 up first, so that
// ip route get shows its choice among the routes of that table.
func kernelRule(t *testing.T, ns string) {
	nstest.Sh(t, "ip", "-n", ns, "rule", "add", "pref", "100", "lookup", "100")
}

// waitVia waits until the FIB sends addr through gateway via of network 1
// ("" for no route) and checks that the kernel made the same choice.
func waitVia(t *testing.T, tb *Table, ns, addr, via, what string, kernelToo bool) {
	t.Helper()
	want, wok := NextHop{}, false
	if via != "" {
		want, wok = gw(1, via), true
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		nh, ok := tb.Lookup(ip(addr))
		if nh == want && ok == wok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: Lookup(%s) = %+v,%v; want via %q", what, addr, nh, ok, via)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if kernelToo {
		if k := kernelVia(t, ns, addr); k != via {
			t.Fatalf("%s: the kernel sends %s via %q, the FIB via %q", what, addr, k, via)
		}
	}
}

// TestKernelMetrics: several routes of a prefix in the imported table (at
// different metrics, and at equal metrics put first or last): the FIB
// follows the kernel's choice; deleting the chosen one falls back to the
// next; a dump and a resync make the same choice.
func TestKernelMetrics(t *testing.T) {
	nstest.NeedRoot(t)
	ns := testNS(t)
	kernelRule(t, ns)
	// before the watcher starts (the dump): both orders
	nstest.IPBatch(t, ns, []string{
		"route add 192.0.2.0/25 via 10.99.0.2 metric 10 table 100",
		"route add 192.0.2.0/25 via 10.99.0.3 metric 20 table 100",
		"route add 192.0.2.128/25 via 10.99.0.3 metric 20 table 100",
		"route add 192.0.2.128/25 via 10.99.0.2 metric 10 table 100",
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tb := New()
	w := startWatcher(t, ctx, ns, tb, KernelOptions{Table: 100, Resolve: resolve10_99,
		OnError: func(err error) { t.Logf("watcher error: %v", err) }})
	waitVia(t, tb, ns, "192.0.2.1", "10.99.0.2", "dump, 10 then 20", true)
	waitVia(t, tb, ns, "192.0.2.129", "10.99.0.2", "dump, 20 then 10", true)
	if st := w.Stats(); st.Routes != 2 || st.Alternates != 2 || st.Imported != 4 {
		t.Fatalf("after the dump: %+v", st)
	}

	// events: metric 10 and 20, in both orders
	const P, A = "198.51.100.0/24", "198.51.100.1"
	steps := []struct {
		cmd, via string
		kernel   bool // the kernel makes the same choice (all gateways resolve)
	}{
		{"route add " + P + " via 10.99.0.2 metric 10 table 100", "10.99.0.2", true},
		{"route add " + P + " via 10.99.0.3 metric 20 table 100", "10.99.0.2", true},
		{"route del " + P + " via 10.99.0.2 metric 10 table 100", "10.99.0.3", true},
		{"route del " + P + " metric 20 table 100", "", true},
		{"route add " + P + " via 10.99.0.3 metric 20 table 100", "10.99.0.3", true},
		{"route add " + P + " via 10.99.0.2 metric 10 table 100", "10.99.0.2", true},
		{"route del " + P + " table 100", "10.99.0.3", true}, // no metric: the kernel deletes the first (10)
		{"route add " + P + " via 10.99.0.2 metric 10 table 100", "10.99.0.2", true},
		{"route del " + P + " metric 20 table 100", "10.99.0.2", true}, // the alternate goes
		{"route add " + P + " via 10.99.0.3 metric 20 table 100", "10.99.0.2", true},
		// replace
		{"route replace " + P + " via 10.99.0.4 metric 20 table 100", "10.99.0.2", true},
		{"route replace " + P + " via 10.99.0.5 metric 10 table 100", "10.99.0.5", true},
		{"route del " + P + " metric 10 table 100", "10.99.0.4", true},
		{"route add " + P + " via 10.99.0.2 metric 10 table 100", "10.99.0.2", true},
		// a route vrouter cannot use (gateway on no network) counts as dead
		{"route replace " + P + " via 10.77.0.1 dev d0 onlink metric 10 table 100", "10.99.0.4", false},
		{"route replace " + P + " via 10.99.0.6 metric 10 table 100", "10.99.0.6", true},
		// equal metrics: prepend and append
		{"route append " + P + " via 10.99.0.7 metric 10 table 100", "10.99.0.6", true},
		{"route prepend " + P + " via 10.99.0.8 metric 10 table 100", "10.99.0.8", true},
		{"route del " + P + " via 10.99.0.8 metric 10 table 100", "10.99.0.6", true},
		{"route del " + P + " via 10.99.0.6 metric 10 table 100", "10.99.0.7", true},
		{"route del " + P + " via 10.99.0.7 metric 10 table 100", "10.99.0.4", true},
	}
	for _, s := range steps {
		nstest.IPBatch(t, ns, []string{s.cmd})
		waitVia(t, tb, ns, A, s.via, s.cmd, s.kernel)
	}
	// a route with a TOS selector applies to some packets only: skipped
	nstest.IPBatch(t, ns, []string{"route add 203.0.113.0/24 tos 0x20 via 10.99.0.2 table 100"})
	nstest.WaitFor(t, "tos route", 30*time.Second, func() bool { return w.Stats().TOS == 1 })
	checkProbes(t, tb, []probe{{"203.0.113.1", false, NextHop{}}})
	// three metrics, several alternates
	nstest.IPBatch(t, ns, []string{
		"route add " + P + " via 10.99.0.2 metric 5 table 100",
		"route add " + P + " via 10.99.0.3 metric 10 table 100",
	})
	waitVia(t, tb, ns, A, "10.99.0.2", "three metrics", true)
	nstest.WaitFor(t, "alternates", 30*time.Second, func() bool { return w.Stats().Alternates == 4 })

	// a resync, and a new watcher's dump, make the same choices
	w.Resync()
	nstest.WaitFor(t, "resync", 30*time.Second, func() bool { return w.Stats().Resyncs == 1 })
	time.Sleep(50 * time.Millisecond)
	for _, tbl := range []*Table{tb, nil} {
		if tbl == nil {
			tbl = New()
			w2 := startWatcher(t, ctx, ns, tbl, KernelOptions{Table: 100, Resolve: resolve10_99})
			if st := w2.Stats(); st.Alternates != 4 || st.Routes != 3 {
				t.Fatalf("new watcher: %+v", st)
			}
		}
		waitVia(t, tbl, ns, A, "10.99.0.2", "after the dump", true)
		waitVia(t, tbl, ns, "192.0.2.1", "10.99.0.2", "after the dump", true)
		waitVia(t, tbl, ns, "192.0.2.129", "10.99.0.2", "after the dump", true)
		nstest.IPBatch(t, ns, []string{"route del " + P + " metric 5 table 100"})
		waitVia(t, tbl, ns, A, "10.99.0.3", "after the dump, metric 5 deleted", true)
		nstest.IPBatch(t, ns, []string{"route add " + P + " via 10.99.0.2 metric 5 table 100"})
		waitVia(t, tbl, ns, A, "10.99.0.2", "after the dump, metric 5 back", true)
	}
	st := w.Stats()
	// (the resync dumped the TOS route again)
	if st.Errors != 0 || st.Unresolved != 1 || st.TOS != 2 || st.Skipped != 3 || st.Routes != 3 || st.Alternates != 4 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("stats %+v", st)
}

// TestKernelMultipath: a multipath route uses its first next hop that
// resolves (no ECMP); the others are counted.
func TestKernelMultipath(t *testing.T) {
	nstest.NeedRoot(t)
	ns := testNS(t)
	nstest.IPBatch(t, ns, []string{
		"route add 203.0.113.0/25 table 100 nexthop via 10.99.0.2 nexthop via 10.99.0.3",
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tb := New()
	w := startWatcher(t, ctx, ns, tb, KernelOptions{Table: 100, Resolve: resolve10_99})
	nstest.IPBatch(t, ns, []string{
		"route add 203.0.113.128/25 table 100 nexthop via 10.77.0.1 dev d0 onlink nexthop via 10.99.0.3 nexthop via 10.99.0.4",
		"route add 198.51.100.0/24 table 100 nexthop via 10.77.0.1 dev d0 onlink nexthop via 10.77.0.2 dev d0 onlink",
	})
	nstest.WaitFor(t, "multipath routes", 30*time.Second, func() bool { return w.Stats().Routes == 2 && w.Stats().Unresolved == 1 })
	checkProbes(t, tb, []probe{
		{"203.0.113.1", true, gw(1, "10.99.0.2")},
		{"203.0.113.129", true, gw(1, "10.99.0.3")},
		{"198.51.100.1", false, NextHop{}},
	})
	st := w.Stats()
	if st.Multipath != 2 || st.MultipathUnused != 3 || st.Unresolved != 1 {
		t.Fatalf("stats %+v", st)
	}
	// a multipath route beside a single one of another metric
	nstest.IPBatch(t, ns, []string{
		"route add 203.0.113.0/25 via 10.99.0.9 metric 10 table 100",
		"route del 203.0.113.0/25 metric 0 table 100",
	})
	nstest.WaitFor(t, "fallback", 30*time.Second, func() bool { nh, _ := tb.Lookup(ip("203.0.113.1")); return nh == gw(1, "10.99.0.9") })
	// a next hop whose link is down is dead: the kernel marks it so
	// (without a notification) and a resync sees it
	nstest.Sh(t, "ip", "-n", ns, "link", "add", "e0", "type", "veth", "peer", "name", "e1")
	nstest.Sh(t, "ip", "-n", ns, "link", "set", "e1", "up")
	nstest.Sh(t, "ip", "-n", ns, "link", "set", "e0", "up")
	nstest.IPBatch(t, ns, []string{"route add 192.0.2.0/24 table 100 nexthop via 10.99.0.5 dev e0 onlink nexthop via 10.99.0.6 dev d0"})
	nstest.WaitFor(t, "route via e0", 30*time.Second, func() bool { nh, _ := tb.Lookup(ip("192.0.2.1")); return nh == gw(1, "10.99.0.5") })
	nstest.Sh(t, "ip", "-n", ns, "link", "set", "e0", "down")
	w.Resync()
	nstest.WaitFor(t, "dead next hop skipped", 30*time.Second, func() bool { nh, _ := tb.Lookup(ip("192.0.2.1")); return nh == gw(1, "10.99.0.6") })
	t.Logf("stats %+v", w.Stats())
}

// TestKernelDevice: routes through a host interface (h0 stands for one)
// resolve to its network through Device, with or without a gateway; routes
// through other interfaces resolve by gateway.
func TestKernelDevice(t *testing.T) {
	nstest.NeedRoot(t)
	ns := testNS(t)
	nstest.Sh(t, "ip", "-n", ns, "link", "add", "h0", "type", "veth", "peer", "name", "h1")
	nstest.Sh(t, "ip", "-n", ns, "link", "set", "h1", "up")
	nstest.Sh(t, "ip", "-n", ns, "link", "set", "h0", "up")
	nstest.Sh(t, "ip", "-n", ns, "addr", "add", "10.98.0.1/24", "dev", "h0")
	out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", "h0").Output()
	if err != nil {
		t.Fatal(err)
	}
	var h0 int
	fmt.Sscanf(string(out), "%d:", &h0)
	nstest.IPBatch(t, ns, []string{
		"route add 192.0.2.0/25 dev h0 table 100",
		"route add 198.51.100.0/25 via 10.98.0.2 dev h0 table 100",
	})
	var bad atomic.Value
	device := func(ifindex int, name string) (uint16, bool) {
		if (name == "h0") != (ifindex == h0) {
			bad.Store(fmt.Sprintf("Device(%d, %q), h0 is %d", ifindex, name, h0))
		}
		if name == "h0" {
			return 7, true
		}
		return 0, false
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tb := New()
	w := startWatcher(t, ctx, ns, tb, KernelOptions{Table: 100, Resolve: resolve10_99, Device: device})
	nstest.IPBatch(t, ns, []string{
		"route add 192.0.2.128/25 dev h0 table 100",
		"route add 198.51.100.128/25 via 10.99.0.9 dev h0 onlink table 100", // Resolve would say network 1
		"route add 203.0.113.0/25 via 10.99.0.2 dev d0 table 100",           // d0: not a host interface
		"route add 203.0.113.128/25 dev d0 table 100",                       // skipped: no gateway
	})
	nstest.WaitFor(t, "routes", 30*time.Second, func() bool { return w.Stats().Routes == 5 && w.Stats().NoGateway == 1 })
	conn7 := NextHop{Kind: KindConnected, Network: 7}
	checkProbes(t, tb, []probe{
		{"192.0.2.1", true, conn7},
		{"192.0.2.129", true, conn7},
		{"198.51.100.1", true, gw(7, "10.98.0.2")},
		{"198.51.100.129", true, gw(7, "10.99.0.9")},
		{"203.0.113.1", true, gw(1, "10.99.0.2")},
		{"203.0.113.129", false, NextHop{}},
	})
	if st := w.Stats(); st.ViaDevice != 4 || st.Skipped != 1 {
		t.Fatalf("stats %+v", st)
	}
	if b := bad.Load(); b != nil {
		t.Fatal(b)
	}
	// a route through the host interface beside one through a gateway
	nstest.IPBatch(t, ns, []string{"route add 203.0.113.0/25 dev h0 metric 5 table 100"})
	time.Sleep(20 * time.Millisecond)
	checkProbes(t, tb, []probe{{"203.0.113.1", true, gw(1, "10.99.0.2")}}) // metric 0 stays
	nstest.IPBatch(t, ns, []string{"route del 203.0.113.0/25 via 10.99.0.2 dev d0 table 100"})
	nstest.WaitFor(t, "metric 5 via h0", 30*time.Second, func() bool { nh, _ := tb.Lookup(ip("203.0.113.1")); return nh == conn7 })
	nstest.IPBatch(t, ns, []string{"route add 203.0.113.0/25 via 10.99.0.2 dev d0 table 100"})
	nstest.WaitFor(t, "back to the gateway", 30*time.Second, func() bool { nh, _ := tb.Lookup(ip("203.0.113.1")); return nh == gw(1, "10.99.0.2") })
	t.Logf("stats %+v", w.Stats())
}
