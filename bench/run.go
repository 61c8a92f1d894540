package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// bench is one run: every router under test is set up at once, and each
// test runs on every router in turn (kernel and vrouter measured seconds
// apart, the order reversed in every other round), reps rounds; a figure
// is the best of its rounds. The machine is shared and small, so this is
// what keeps a ratio from being a comparison of two different moments.
type bench struct {
	w          io.Writer
	secs, reps int
	dir        string
	targets    []*state
	rules      *ruleset   // the filter case's ruleset (nil: no filter case)
	nft        *nftPolicy // the same as nftables sets
	benchSet   string     // the set that holds the benchmark's key
}

// state is one router under test and its samples.
type state struct {
	tp      *topo
	tg      *Target
	samples map[string][]float64
	udp     map[string]*udpResult // best UDP run per test
	fcheck  *filterCheck          // the filter's counters in the best filtered run
	fnotes  []string              // filtered runs the router did not prove filtered
}

// The tests in the order of a round; udp64 also gives ping_p50/p99;
// udp64_filter is left out without the filter case (-filter 0).
var roundTests = []string{"udp64", "udp64_filter", "tcp_on", "tcp6", "conn", "vm_tcp", "vm_udp64", "tcp_off"}

// selectTests keeps only the named tests in the rounds (-tests).
func selectTests(list string) error {
	if list == "" {
		return nil
	}
	var keep []string
	for _, id := range strings.Split(list, ",") {
		id = strings.TrimSpace(id)
		found := false
		for _, t := range roundTests {
			found = found || t == id
		}
		if !found {
			return fmt.Errorf("-tests: unknown test %q (want some of %s)", id, strings.Join(roundTests, ","))
		}
		keep = append(keep, id)
	}
	var out []string
	for _, t := range roundTests {
		for _, k := range keep {
			if t == k {
				out = append(out, t)
				break
			}
		}
	}
	roundTests = out
	return nil
}

// skipProfile leaves out the profiled run after the rounds (-noprofile).
var skipProfile bool

// profileLoad is the load of the profiled run (-profileload): "udp64"
// (default), "conn" (new TCP connections through SNAT), "tcp_on" or
// "tcp_off" (one iperf3 stream, the hosts' offloads on or off).
var profileLoad = "udp64"

// testsOfRound is the order of the tests in round r: the filter case and
// the unfiltered UDP load change places every other round, so that neither
// is always the first UDP load after the previous round's tests.
func testsOfRound(r int) []string {
	out := append([]string{}, roundTests...)
	if r%2 == 0 && len(out) > 1 && out[0] == "udp64" && out[1] == "udp64_filter" {
		out[0], out[1] = out[1], out[0]
	}
	return out
}

func targetName(label string) string {
	if label == "" {
		return "kernel"
	}
	return "vrouter " + label
}

// run measures the kernel and vrouter with each driver, printing as it
// goes, and returns the report.
func run(w io.Writer, drivers []string, secs, reps int, dir string, filterRules int) (*Report, error) {
	start := time.Now()
	b := &bench{w: w, secs: secs, reps: reps, dir: dir}
	var fs *filterSetup
	if filterRules > 0 {
		var err error
		if fs, err = b.filterCase(filterRules); err != nil {
			return nil, err
		}
	}
	rep := newReport(secs, reps, fs)
	fmt.Fprintf(w, "system benchmark %s, %s\n", rep.Date, rep.Host.summary())
	for _, s := range rep.Setup {
		fmt.Fprintln(w, s)
	}
	defer b.close()

	fmt.Fprintln(w, "\nsetting up:")
	for _, d := range append([]string{""}, drivers...) {
		s, err := b.setup(d)
		if err != nil {
			fmt.Fprintf(w, "  skip %s: %v\n", targetName(d), err)
			rep.Skipped = append(rep.Skipped, Skip{Driver: d, Reason: err.Error()})
			continue
		}
		fmt.Fprintf(w, "  %s: ready\n", s.tg.Name)
		b.targets = append(b.targets, s)
	}
	for r := 1; r <= reps; r++ {
		fmt.Fprintf(w, "\nround %d of %d:\n", r, reps)
		order := append([]*state{}, b.targets...)
		if r%2 == 0 {
			for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
				order[i], order[j] = order[j], order[i]
			}
		}
		for _, test := range testsOfRound(r) {
			if test == "udp64_filter" && b.rules == nil {
				continue
			}
			for _, s := range order {
				b.measure(s, test, r)
			}
		}
	}
	for _, s := range b.targets {
		if s.tp.driver != "" && !skipProfile {
			b.profile(s)
		}
	}
	for _, s := range b.targets {
		s.finish()
		rep.Targets = append(rep.Targets, s.tg)
	}
	rep.RunSeconds = time.Since(start).Seconds()
	rep.compute()
	fmt.Fprintln(w)
	fmt.Fprint(w, textTable(rep))
	fmt.Fprintln(w)
	fmt.Fprint(w, goalsText(rep))
	if t := filterText(rep); t != "" {
		fmt.Fprintln(w)
		fmt.Fprint(w, t)
	}
	fmt.Fprintf(w, "\ntotal time %s\n", time.Duration(rep.RunSeconds*float64(time.Second)).Round(time.Second))
	return rep, nil
}

// filterCase generates the filter case's ruleset and its nftables form
// and checks that the two agree on the benchmark's flows.
func (b *bench) filterCase(n int) (*filterSetup, error) {
	rs := genRuleset(n)
	pol, err := rs.nft()
	if err != nil {
		return nil, err
	}
	p := benchPacket()
	if i := rs.firstMatch(p); i != rs.Bench || !pol.accepts(p) {
		return nil, fmt.Errorf("filter case: the benchmark's flows are taken by rule %d, want %d (nft accepts: %v)", i+1, rs.Bench+1, pol.accepts(p))
	}
	b.rules, b.nft, b.benchSet = rs, pol, pol.setOf(p)
	return &filterSetup{Rules: n, BenchRule: rs.Bench + 1, Shapes: rs.shapes(), NftSets: pol.summary(), NftSet: b.benchSet}, nil
}

func (b *bench) close() {
	for _, s := range b.targets {
		s.tp.close()
	}
}

// setup builds one router's topology, starts it (vrouter: ports, then the
// VM's TAP moved into the VM namespace) and checks both paths; vrouter is
// then paused until its turn.
func (b *bench) setup(spec string) (*state, error) {
	var v variant
	if spec != "" {
		var err error
		if v, err = parseVariant(spec); err != nil {
			return nil, err
		}
	}
	tp, err := newTopo(v.driver)
	if err != nil {
		return nil, err
	}
	tp.v = v
	if b.rules != nil {
		tp.rules, tp.nftRules, tp.benchSet = b.rules, b.nft.render("r-c"), b.benchSet
	}
	ok := false
	defer func() {
		if !ok {
			tp.close()
		}
	}()
	if err := tp.startRouter(""); err != nil {
		return nil, err
	}
	if err := tp.attachVM(); err != nil {
		return nil, err
	}
	if err := tp.warm(false); err != nil {
		return nil, err
	}
	if err := tp.warm(true); err != nil {
		return nil, err
	}
	// One UDP load before the measured ones, so that no measured test is
	// the router's first (sessions, rings and heap grown; the first load
	// after setup measured lower than the later ones).
	if _, err := tp.udpLoad(tp.C, "eth0", clientIP, clientGW, udpSport, 1, false, false); err != nil {
		return nil, fmt.Errorf("warm-up UDP load: %v", err)
	}
	tp.pause()
	ok = true
	return &state{tp: tp, samples: map[string][]float64{}, udp: map[string]*udpResult{},
		tg: &Target{Name: targetName(v.label), Driver: v.label, Results: map[string]float64{}, Errors: map[string]string{}}}, nil
}

// measure runs one test on one router in round (from 1) and records the
// sample.
func (b *bench) measure(s *state, test string, round int) {
	first := round == 1
	tp := s.tp
	tp.resume()
	defer tp.pause()
	label := fmt.Sprintf("  %-17s %-46s", tp.name(), testByID(test).Name)
	fail := func(err error) {
		if _, seen := s.tg.Errors[test]; !seen {
			s.tg.Errors[test] = err.Error()
		}
		fmt.Fprintf(b.w, "%s error: %v\n", label, err)
	}
	switch test {
	case "udp64", "vm_udp64":
		ns, dev, src, gw := tp.C, "eth0", clientIP, clientGW
		if test == "vm_udp64" {
			ns, dev, src, gw = tp.VM, tp.vmDev, vmIP, vmGW
		}
		if err := tp.warm(test == "vm_udp64"); err != nil {
			fail(err)
			return
		}
		if first && test == "udp64" {
			idle := parsePingOut(tp.l.ExecTimeout(tp.C, 10*time.Second, "ping", "-n", "-i", "0.01", "-c", "100", "-W", "1", serverIP))
			s.tg.PingIdle = &idle
		}
		r, err := tp.udpLoad(ns, dev, src, gw, udpSport, b.secs, test == "udp64", false)
		if err != nil {
			fail(err)
			return
		}
		s.add(test, r.DeliveredKpps)
		if best := s.udp[test]; best == nil || r.DeliveredKpps > best.DeliveredKpps {
			s.udp[test] = r
		}
		printUDP(b.w, label, r)
		if p := r.Ping; p != nil {
			if p.Received > 0 {
				s.add("ping_p50", p.P50Ms)
				s.add("ping_p99", p.P99Ms)
			}
			fmt.Fprintf(b.w, "; ping p50 %.3f ms, p99 %.3f ms, %d/%d replies", p.P50Ms, p.P99Ms, p.Received, p.Sent)
		}
		fmt.Fprintln(b.w)
	case "udp64_filter":
		if err := tp.warm(false); err != nil {
			fail(err)
			return
		}
		if err := tp.setFilter(true); err != nil {
			fail(err)
			return
		}
		defer func() {
			if err := tp.setFilter(false); err != nil {
				fmt.Fprintf(b.w, "%s %v\n", label, err)
			}
		}()
		h0, p0, d0, cerr := tp.filterCounters()
		// With the ping of the unfiltered case, so that the two differ
		// by the filter only (its times are printed, not kept).
		r, err := tp.udpLoad(tp.C, "eth0", clientIP, clientGW, filterSport(round), b.secs, true, false)
		if err != nil {
			fail(err)
			return
		}
		h1, p1, d1, cerr2 := tp.filterCounters()
		if cerr == nil {
			cerr = cerr2
		}
		c := &filterCheck{RuleHits: h1 - h0, RulePackets: p1 - p0, Dropped: d1 - d0}
		switch {
		case cerr != nil:
			c.Note = cerr.Error()
		case c.RuleHits == 0 && (tp.driver == "" || round <= filterSportSlots):
			c.Note = "the rule of the benchmark's flows counted nothing"
		default:
			c.Active = true
		}
		s.add(test, r.DeliveredKpps)
		if best := s.udp[test]; best == nil || r.DeliveredKpps > best.DeliveredKpps {
			s.udp[test] = r
			s.fcheck = c
		}
		printUDP(b.w, label, r)
		if p := r.Ping; p != nil {
			fmt.Fprintf(b.w, "; ping p50 %.3f ms, %d/%d replies", p.P50Ms, p.Received, p.Sent)
		}
		if c.Active {
			if tp.driver == "" {
				fmt.Fprintf(b.w, "; @%s counted %d packets, %d dropped at the end of the chain\n", tp.benchSet, c.RulePackets, c.Dropped)
			} else {
				fmt.Fprintf(b.w, "; rule %d classified %d flows, %d dropped by the default\n", tp.rules.Bench+1, c.RuleHits, c.Dropped)
			}
		} else {
			s.fnotes = append(s.fnotes, fmt.Sprintf("round %d: %s", round, c.Note))
			fmt.Fprintf(b.w, "; NOT FILTERED: %s\n", c.Note)
		}
	case "tcp_on", "tcp_off", "vm_tcp":
		ns := tp.C
		if test == "vm_tcp" {
			ns = tp.VM
			if err := tp.warm(true); err != nil {
				fail(err)
				return
			}
		}
		if test == "tcp_off" {
			if err := tp.offloads(false); err != nil {
				fail(err)
				return
			}
			defer tp.offloads(true)
		}
		v, err := tp.iperfTCP(ns, serverIP, b.secs)
		if err != nil {
			fail(err)
			return
		}
		s.add(test, v)
		fmt.Fprintf(b.w, "%s %.2f Gbit/s\n", label, v)
	case "tcp6":
		if err := tp.warm6(); err != nil {
			fail(err)
			return
		}
		v, err := tp.iperfTCP(tp.C, server6, b.secs)
		if err != nil {
			fail(err)
			return
		}
		s.add(test, v)
		fmt.Fprintf(b.w, "%s %.2f Gbit/s", label, v)
		if tp.tcpCPUPerGB > 0 {
			fmt.Fprintf(b.w, " (vrouter %.3f CPU s per GB)", tp.tcpCPUPerGB)
		}
		fmt.Fprintln(b.w)
	case "conn":
		c, err := tp.connRate(b.secs)
		if err != nil {
			fail(err)
			return
		}
		s.add(test, c.PerSecond)
		if s.tg.Conn == nil || c.PerSecond > s.tg.Conn.PerSecond {
			s.tg.Conn = c
		}
		e := ""
		if c.Errors > 0 {
			e = ", first: " + c.FirstError
		}
		fmt.Fprintf(b.w, "%s %.0f /s (%d errors%s)\n", label, c.PerSecond, c.Errors, e)
	}
}

func (s *state) add(test string, v float64) { s.samples[test] = append(s.samples[test], v) }

// finish turns the samples into results: the best of the rounds (the
// highest, or the lowest where lower is better).
func (s *state) finish() {
	s.tg.Samples = map[string][]float64{}
	for id, vs := range s.samples {
		if len(vs) == 0 {
			continue
		}
		def := testByID(id)
		best := vs[0]
		for _, v := range vs[1:] {
			if (def.Higher && v > best) || (!def.Higher && v < best) {
				best = v
			}
		}
		s.tg.Results[id] = round(best, 4)
		rv := make([]float64, len(vs))
		for i, v := range vs {
			rv[i] = round(v, 4)
		}
		s.tg.Samples[id] = rv
		delete(s.tg.Errors, id) // an error in one round only
	}
	s.tg.UDP = s.udp["udp64"]
	s.tg.VMUDP = s.udp["vm_udp64"]
	s.tg.FilterUDP = s.udp["udp64_filter"]
	if c := s.fcheck; c != nil {
		s.tg.Filter = c
		if len(s.fnotes) > 0 {
			// Any round the router did not prove filtered makes the
			// figure suspect.
			c.Active = false
			c.Note = strings.Join(s.fnotes, "; ")
		}
	}
}

// profile restarts vrouter with -cpuprofile, runs the 64-byte UDP load
// once more measuring vrouter's cost per packet (perf stat), stops it and
// prints the top functions of the profile.
func (b *bench) profile(s *state) {
	tp := s.tp
	name := strings.ReplaceAll(tp.v.label, ":", "-") // afxdp:s -> profile-afxdp-s.pprof
	prof := filepath.Join(b.dir, "profile-"+name+".pprof")
	os.Remove(prof)
	what := "the 64 B UDP load"
	switch profileLoad {
	case "conn":
		what = "new TCP connections"
	case "tcp_on", "tcp_off":
		what = "iperf3 TCP (" + testByID(profileLoad).Name + ")"
	}
	if profileLoad != "udp64" {
		prof = filepath.Join(b.dir, "profile-"+name+"-"+profileLoad+".pprof")
		os.Remove(prof)
	}
	fmt.Fprintf(b.w, "\n%s under %s, profiled:\n", tp.name(), what)
	tp.resume()
	if err := tp.stopRouter(); err != nil {
		fmt.Fprintln(b.w, "  stop:", err)
	}
	if err := tp.startRouter(prof); err != nil {
		fmt.Fprintln(b.w, "  restart with -cpuprofile:", err)
		return
	}
	if err := tp.warm(false); err != nil {
		fmt.Fprintln(b.w, " ", err)
		tp.stopRouter()
		return
	}
	var r *udpResult
	var err error
	switch profileLoad {
	case "conn":
		var c *connResult
		if c, err = tp.connRate(b.secs); err != nil {
			fmt.Fprintln(b.w, "  connections:", err)
		} else {
			fmt.Fprintf(b.w, "  %.0f connections/s while profiled\n", c.PerSecond)
		}
	case "tcp_on", "tcp_off":
		b.profileTCP(tp, profileLoad == "tcp_off")
	default:
		if r, err = tp.udpLoad(tp.C, "eth0", clientIP, clientGW, udpSport, b.secs, false, true); err != nil {
			fmt.Fprintln(b.w, "  UDP load:", err)
		}
	}
	if err := tp.stopRouter(); err != nil {
		fmt.Fprintln(b.w, "  stop:", err)
	}
	if r != nil && r.Cost != nil {
		c := r.Cost
		s.tg.Cost = c
		if c.Note != "" && c.CPUNsPerPacket == 0 {
			fmt.Fprintf(b.w, "  cost per packet: %s\n", c.Note)
		} else {
			fmt.Fprintf(b.w, "  cost per forwarded packet (%.1f kpps delivered): %.0f ns CPU (%.2f CPUs busy), %.0f cycles (%s), %.3f syscalls, %.2f context switches per 1k packets\n",
				r.DeliveredKpps, c.CPUNsPerPacket, c.CPUUtilization, c.CyclesPerPacket, c.CyclesSource, c.SyscallsPerPacket, c.CtxSwitchesPerKPacket)
		}
	}
	s.tg.Profile, s.tg.ProfileLoad = prof, profileLoad
	s.tg.ProfileTop = profileTop(prof)
	if s.tg.ProfileTop != "" {
		fmt.Fprintf(b.w, "  CPU profile %s (go tool pprof -top), top 15:\n", prof)
		for _, l := range strings.Split(strings.TrimRight(s.tg.ProfileTop, "\n"), "\n") {
			fmt.Fprintln(b.w, "    "+l)
		}
	}
}

// profileTCP runs the iperf3 stream of the profiled run, the hosts'
// offloads off for the time of it when off is set.
func (b *bench) profileTCP(tp *topo, off bool) {
	if off {
		if err := tp.offloads(false); err != nil {
			fmt.Fprintln(b.w, "  offloads off:", err)
			return
		}
		defer tp.offloads(true)
	}
	v, err := tp.iperfTCP(tp.C, serverIP, b.secs)
	if err != nil {
		fmt.Fprintln(b.w, "  iperf3:", err)
		return
	}
	fmt.Fprintf(b.w, "  %.2f Gbit/s while profiled\n", v)
}

func parsePingOut(out string, _ error) pingResult { return parsePing(out) }

// profileTop is `go tool pprof -top` of a profile, 15 functions.
func profileTop(path string) string {
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		return ""
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goBin, "tool", "pprof", "-top", "-nodecount=15", path).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("go tool pprof: %v\n%s", err, out)
	}
	// Drop pprof's header lines about the file and the binary.
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// printUDP starts a UDP load's report line: delivered and offered rate, and
// how many times trafgen had to be run (see udpLoad).
func printUDP(w io.Writer, label string, r *udpResult) {
	fmt.Fprintf(w, "%s %.1f kpps delivered of %.1f offered", label, r.DeliveredKpps, r.OfferedKpps)
	if r.Restarts > 0 {
		fmt.Fprintf(w, " (trafgen run %d times)", r.Restarts+1)
	}
}
