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

	"github.com/vishvananda/netns"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 && os.Getenv("CI") == "" {
		t.Skip("needs root (network namespaces); runs as root or in CI")
	}
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// testNS creates a network namespace with a veth pair d0/d1 inside it
// (this kernel has no dummy driver), d0 holding 10.99.0.1/24, and removes
// it when the test ends.
func testNS(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("vrfib-%d", os.Getpid())
	exec.Command("ip", "netns", "del", name).Run()
	ipCmd(t, "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ipCmd(t, "-n", name, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	ipCmd(t, "-n", name, "link", "set", "d1", "up")
	ipCmd(t, "-n", name, "link", "set", "d0", "up")
	ipCmd(t, "-n", name, "addr", "add", "10.99.0.1/24", "dev", "d0")
	return name
}

// ipBatch runs ip -n ns -batch with the given lines.
func ipBatch(t *testing.T, ns string, lines []string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ipCmd(t, "-n", ns, "-batch", f)
}

// startWatcher runs WatchKernel from a thread switched into the namespace.
func startWatcher(t *testing.T, ctx context.Context, ns string, tb *Table, opt KernelOptions) *KernelWatcher {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		t.Fatal(err)
	}
	w, werr := WatchKernel(ctx, tb, opt)
	if err := netns.Set(orig); err != nil {
		panic(err) // the thread is in the wrong namespace: do not let it run anything else
	}
	if werr != nil {
		t.Fatal(werr)
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

func waitFor(t *testing.T, what string, d time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timeout waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestKernelImport(t *testing.T) {
	needRoot(t)
	ns := testNS(t)
	// routes present before the watcher starts (the dump)
	ipBatch(t, ns, []string{
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
	ipBatch(t, ns, []string{
		"route add 198.51.100.0/25 via 10.99.0.4 table 100",
		"route add unreachable 198.51.100.128/26 table 100",
		"route add prohibit 198.51.100.192/26 table 100",
		"route add 10.200.0.0/16 via 10.99.0.5 table 101",
		"route add default via 10.99.0.6 table 100",
	})
	waitFor(t, "events", 30*time.Second, func() bool { return w.Stats().Routes == 6 })
	checkProbes(t, tb, []probe{
		{"198.51.100.1", true, gw(1, "10.99.0.4")},
		{"198.51.100.130", true, NextHop{Kind: KindUnreachable}},
		{"198.51.100.200", true, NextHop{Kind: KindProhibit}},
		{"10.200.0.1", true, gw(1, "10.99.0.6")}, // table 101 ignored, default of table 100
	})
	ipBatch(t, ns, []string{"route replace 192.0.2.0/24 via 10.99.0.9 table 100"})
	waitFor(t, "replace", 30*time.Second, func() bool { nh, _ := tb.Lookup(ip("192.0.2.1")); return nh == gw(1, "10.99.0.9") })
	ipBatch(t, ns, []string{
		"route del 192.0.2.0/24 table 100",
		"route del default table 100",
		"route del blackhole 203.0.113.0/24 table 100",
	})
	waitFor(t, "deletes", 30*time.Second, func() bool { return w.Stats().Routes == 3 })
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
	waitFor(t, "resync", 30*time.Second, func() bool {
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
	needRoot(t)
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
	waitFor(t, "full table in the FIB", 120*time.Second, func() bool { return tb.Len() == want+1 })
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
