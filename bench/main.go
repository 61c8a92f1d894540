// Command bench is the system benchmark: the comparison of vrouter with the
// Linux kernel doing the same job on the same machine, in one run.
//
// One network-namespace topology is built once per router under test:
//
//	client ns (10.10.1.10, 2001:db8:10:1::10) --veth-- router ns --veth-- server ns (203.0.113.10, 2001:db8:20::10)
//	VM ns     (10.10.2.10) --TAP (vrouter) or veth (kernel)-- router ns
//
// The router SNATs 10.10.0.0/16 to 203.0.113.1 on the server side: the
// kernel with ip_forward and an nftables masquerade rule, vrouter with the
// same [[nat.snat]] for each port driver asked for (-drivers; a driver whose
// ports do not open is skipped with a line saying why). The server has no
// route back to 10.10.0.0/16, so everything it receives went through SNAT.
//
// Tests, each bounded in time (-t seconds of measurement):
//   - 64-byte UDP frames over 10,000 flows (UDP source ports) from trafgen
//     pinned to CPU 0; delivered pps counted (and dropped) by an nftables
//     counter at the server's ingress;
//   - ping p50/p99 client -> server every 10 ms under that load;
//   - TCP iperf3 client -> server, the hosts' offloads on (default), then off;
//   - TCP over IPv6 (tcp6): iperf3 -6 client -> server, offloads on, routed
//     (the kernel with net.ipv6.conf.all.forwarding=1; no NAT66);
//   - new TCP connections per second through SNAT (this binary re-executed
//     as a connect/close loop in the client namespace against a tiny
//     accept/close server in the server namespace);
//   - the VM case: TCP iperf3 and 64-byte UDP from the VM namespace;
//   - the filter case (issue 12): the 64-byte UDP load again with a
//     generated ruleset of -filter rules (default 1,000; 0 leaves the case
//     out) on the client network: vrouter's [[filter]] as filter_in, the
//     kernel the same rules as a set-based nftables ruleset (filter.go);
//     each router's filter counters show that it filtered.
//
// Every router is set up at once (and given one unmeasured UDP load, so
// that no measured test is its first) and each test runs on each router in
// turn (a vrouter not being measured is stopped with SIGSTOP), -reps rounds
// with the order reversed every other round (and the two UDP loads
// swapped); a figure is the best round.
// The machine is shared, so this keeps a ratio from comparing two moments.
//
// It prints the absolute figures and the ratios vrouter/kernel per driver,
// the issue 10 targets, and per driver vrouter's cost per packet and the
// top of a CPU profile (one more 64-byte UDP run, after the rounds); it
// writes DIR/latest.json, DIR/latest.txt, DIR/latest.png and
// DIR/profile-<driver>.pprof (DIR = -results, default bench/results).
//
//	go run ./bench [-t 3] [-reps 2] [-drivers afpacket,afxdp] [-filter 1000] [-results DIR] [-tests tcp6,...] [-nstag fp]
//	go run ./bench -tests conn -profileload conn   # profile the new-connections load instead
//	go run ./bench -tests tcp_on -profileload tcp_on   # or one iperf3 TCP stream (tcp_on, tcp_off)
//	go run ./bench -table [-json FILE]      # the README's Markdown table
//	go run ./bench -soak 10m [-drivers afpacket]
//
// Everything it creates (namespaces, veths, TAPs, processes) is removed on
// exit and on Ctrl-C; only documentation and private addresses are used and
// nothing outside its own namespaces is touched. Needs root.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"vrouter/test/lab"
)

func main() {
	// Hidden subcommands: this binary re-executed inside a namespace.
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "_") {
		os.Exit(subcommand(os.Args[1], os.Args[2:]))
	}
	secs := flag.Int("t", 3, "seconds of measurement per test run")
	reps := flag.Int("reps", 2, "rounds: every test runs this many times on every router, interleaved; a figure is the best")
	drivers := flag.String("drivers", "afpacket,afpacket:w1,afxdp,afxdp:s", `vrouters to measure, comma separated, each [LABEL=]DRIVER[:wN][:cCPUS][:s][@BIN] (:wN: [router] workers = N; :cCPUS: run on those CPUs (taskset) with pin_workers; :s: [router] shared_poll; @BIN: another vrouter binary, for A/B; "none": the kernel only)`)
	tests := flag.String("tests", "", "comma-separated tests of a round to run (default all: "+strings.Join(roundTests, ",")+")")
	noProfile := flag.Bool("noprofile", false, "skip the profiled run per vrouter after the rounds")
	profLoad := flag.String("profileload", "udp64", "load of the profiled run: udp64, conn (new TCP connections), tcp_on or tcp_off (one iperf3 stream, hosts' offloads on or off); other than udp64 it writes DIR/profile-<driver>-<load>.pprof")
	resultsDir := flag.String("results", defaultResultsDir(), "directory for latest.json, latest.txt, latest.png and the profiles")
	outFile := flag.String("out", "", "also write the text report to this file (besides DIR/latest.txt)")
	table := flag.Bool("table", false, "print the README's Markdown table from -json and exit")
	jsonFile := flag.String("json", "", "results file for -table (default DIR/latest.json)")
	chartOnly := flag.Bool("chart", false, "redraw DIR/latest.png from -json and exit")
	filterRules := flag.Int("filter", filterDefault, "rules of the filter case (64 B UDP through SNAT and a ruleset on the client network; 0: leave it out)")
	tag := flag.String("nstag", nsTag, "start of the names of the benchmark's namespaces (1 to 3 lowercase letters; another one for a second run on the same machine)")
	soak := flag.Duration("soak", 0, "soak mode: run the UDP load through vrouter (first driver of -drivers) this long, sampling RSS and goroutines/threads every 10 s")
	flag.Parse()

	if *jsonFile == "" {
		*jsonFile = filepath.Join(*resultsDir, "latest.json")
	}
	if *table || *chartOnly {
		rep, err := readReport(*jsonFile)
		if err != nil {
			fatal(err)
		}
		if *table {
			fmt.Print(markdownTable(rep))
			return
		}
		if err := drawChart(rep, filepath.Join(*resultsDir, "latest.png")); err != nil {
			fatal(err)
		}
		return
	}
	if !validTag(*tag) {
		fatal(fmt.Errorf("-nstag %q: want 1 to 3 lowercase letters", *tag))
	}
	nsTag = *tag
	if *filterRules != 0 && (*filterRules < 20 || *filterRules > 20000) {
		fatal(fmt.Errorf("-filter %d: want 0 or 20..20000 rules", *filterRules))
	}
	setFilterRules(*filterRules)
	if *secs < 1 || *secs > 30 {
		fatal(fmt.Errorf("-t %d: want 1..30 seconds", *secs))
	}
	if err := preflight(); err != nil {
		fatal(err)
	}
	handleSignals()
	var drv []string
	for _, d := range strings.Split(*drivers, ",") {
		if d = strings.TrimSpace(d); d != "" && d != "none" {
			drv = append(drv, d)
		}
	}
	if len(drv) == 0 && *soak > 0 {
		fatal(fmt.Errorf("-soak needs a driver (-drivers)"))
	}
	if err := os.MkdirAll(*resultsDir, 0o755); err != nil {
		fatal(err)
	}
	if *soak > 0 {
		// Bounded: the soak itself plus a margin for setup and cleanup.
		watchdog(*soak + 3*time.Minute)
		if err := runSoak(drv[0], *soak, *resultsDir); err != nil {
			cleanupAll()
			fatal(err)
		}
		return
	}
	if err := selectTests(*tests); err != nil {
		fatal(err)
	}
	skipProfile = *noProfile
	switch *profLoad {
	case "udp64", "conn", "tcp_on", "tcp_off":
	default:
		fatal(fmt.Errorf("-profileload %q: want udp64, conn, tcp_on or tcp_off", *profLoad))
	}
	profileLoad = *profLoad
	if *reps < 1 || *reps > 5 {
		fatal(fmt.Errorf("-reps %d: want 1..5", *reps))
	}
	// The whole run is bounded: about (7 tests x (t + 5) s) per router and
	// round, plus set-up and the profiles.
	watchdog(time.Duration(len(drv)+1)*time.Duration(*reps*len(roundTests)*(*secs+5)+30)*time.Second + 2*time.Minute)

	txt, err := os.Create(filepath.Join(*resultsDir, "latest.txt"))
	if err != nil {
		fatal(err)
	}
	defer txt.Close()
	writers := []io.Writer{os.Stdout, txt}
	if *outFile != "" {
		f, err := os.Create(*outFile)
		if err != nil {
			fatal(err)
		}
		defer f.Close()
		writers = append(writers, f)
	}
	w := io.MultiWriter(writers...)
	rep, err := run(w, drv, *secs, *reps, *resultsDir, *filterRules)
	if err != nil {
		fatal(err)
	}
	if err := writeReport(rep, filepath.Join(*resultsDir, "latest.json")); err != nil {
		fatal(err)
	}
	if err := drawChart(rep, filepath.Join(*resultsDir, "latest.png")); err != nil {
		fmt.Fprintln(w, "chart:", err)
	}
	fmt.Fprintf(w, "\nwrote %s, %s, %s\n", filepath.Join(*resultsDir, "latest.json"),
		filepath.Join(*resultsDir, "latest.txt"), filepath.Join(*resultsDir, "latest.png"))
}

// validTag reports whether tag is 1 to 3 lowercase letters (namespace and
// interface names must stay short and plain).
func validTag(tag string) bool {
	if len(tag) < 1 || len(tag) > 3 {
		return false
	}
	for _, c := range tag {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// defaultResultsDir is bench/results of the source tree this was built
// from (go run), else bench/results under the working directory.
func defaultResultsDir() string {
	_, file, _, ok := runtime.Caller(0)
	if ok {
		d := filepath.Join(filepath.Dir(file), "results")
		if st, err := os.Stat(filepath.Dir(d)); err == nil && st.IsDir() {
			return d
		}
	}
	return filepath.Join("bench", "results")
}

// preflight checks root, the vrouter binary and the tools the tests run.
func preflight() error {
	if os.Getuid() != 0 {
		return fmt.Errorf("needs root (network namespaces)")
	}
	if _, err := lab.Binary(); err != nil {
		return err
	}
	var missing []string
	for _, t := range []string{"ip", "nft", "trafgen", "iperf3", "ethtool", "ping", "taskset", "timeout", "ss"} {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing tools: %s (make deps installs them)", strings.Join(missing, " "))
	}
	return nil
}

// Every lab in use, so that Ctrl-C and the watchdog can remove them.
var active = struct {
	sync.Mutex
	labs   map[*lab.Lab]bool
	paused map[int]bool // vrouter PIDs stopped with SIGSTOP
}{labs: map[*lab.Lab]bool{}, paused: map[int]bool{}}

func setPaused(pid int, p bool) {
	active.Lock()
	if p {
		active.paused[pid] = true
	} else {
		delete(active.paused, pid)
	}
	active.Unlock()
}

func track(l *lab.Lab) {
	active.Lock()
	active.labs[l] = true
	active.Unlock()
}

func closeLab(l *lab.Lab) {
	active.Lock()
	delete(active.labs, l)
	active.Unlock()
	l.Close()
}

func cleanupAll() {
	active.Lock()
	ls := make([]*lab.Lab, 0, len(active.labs))
	for l := range active.labs {
		ls = append(ls, l)
	}
	active.labs = map[*lab.Lab]bool{}
	for pid := range active.paused {
		syscall.Kill(pid, syscall.SIGCONT) // so that it can stop cleanly
	}
	active.paused = map[int]bool{}
	active.Unlock()
	for _, l := range ls {
		l.Close()
	}
}

func handleSignals() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-ch
		fmt.Fprintf(os.Stderr, "\nbench: %v: removing the namespaces and processes it made\n", s)
		cleanupAll()
		os.Exit(130)
	}()
}

// watchdog ends a run that overstays d (something hung), cleaning up first.
func watchdog(d time.Duration) {
	time.AfterFunc(d, func() {
		fmt.Fprintf(os.Stderr, "bench: still running after %v: giving up, removing the namespaces\n", d)
		cleanupAll()
		os.Exit(1)
	})
}
