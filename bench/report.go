package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"vrouter/test/lab"
)

// testDef is one measured figure.
type testDef struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Unit   string `json:"unit"`
	Higher bool   `json:"higher_is_better"`
}

var testDefs = []testDef{
	{"udp64", "64 B UDP, 10k flows, SNAT", "kpps", true},
	{"ping_p50", "ping p50 under that load", "ms", false},
	{"ping_p99", "ping p99 under that load", "ms", false},
	{"udp64_filter", filterTestName(filterDefault), "kpps", true},
	{"tcp_on", "TCP, offloads on", "Gbit/s", true},
	{"tcp6", "TCP over IPv6, offloads on", "Gbit/s", true},
	{"tcp_off", "TCP, offloads off", "Gbit/s", true},
	{"conn", "new TCP connections, SNAT", "conn/s", true},
	{"vm_tcp", "VM: TCP, offloads on", "Gbit/s", true},
	{"vm_udp64", "VM: 64 B UDP, 10k flows", "kpps", true},
}

func filterTestName(rules int) string {
	return fmt.Sprintf("64 B UDP, 10k flows, SNAT + %s-rule filter", thousands(rules))
}

// setFilterRules names the filter case after its rule count, or leaves it
// out (0).
func setFilterRules(n int) {
	var out []testDef
	for _, t := range testDefs {
		if t.ID == "udp64_filter" {
			if n == 0 {
				continue
			}
			t.Name = filterTestName(n)
		}
		out = append(out, t)
	}
	testDefs = out
}

// thousands is n with commas: 1,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func testByID(id string) testDef {
	for _, t := range testDefs {
		if t.ID == id {
			return t
		}
	}
	return testDef{ID: id, Name: id}
}

// Report is bench/results/latest.json.
type Report struct {
	Date       string                        `json:"date"`
	Host       hostInfo                      `json:"host"`
	Seconds    int                           `json:"seconds_per_test"`
	Reps       int                           `json:"rounds"`
	RunSeconds float64                       `json:"run_seconds"`
	Setup      []string                      `json:"setup"`
	Tests      []testDef                     `json:"tests"`
	Targets    []*Target                     `json:"targets"`
	Skipped    []Skip                        `json:"skipped,omitempty"`
	Ratios     map[string]map[string]float64 `json:"ratios"` // driver -> test -> vrouter/kernel
	Goals      []goal                        `json:"issue10_goals"`
	Filter     *filterSetup                  `json:"filter,omitempty"` // the filter case (issue 12)
}

// tests is the report's tests (what the run measured; the current list for
// a report that does not say).
func (r *Report) tests() []testDef {
	if len(r.Tests) > 0 {
		return r.Tests
	}
	return testDefs
}

type hostInfo struct {
	CPUs    int     `json:"cpus"`
	CPU     string  `json:"cpu"`
	MHz     float64 `json:"mhz"`
	Kernel  string  `json:"kernel"`
	Go      string  `json:"go"`
	Vrouter string  `json:"vrouter"`
}

func (h hostInfo) summary() string {
	return fmt.Sprintf("%d CPUs (%s, %.0f MHz), Linux %s, vrouter %s", h.CPUs, h.CPU, h.MHz, h.Kernel, h.Vrouter)
}

// Target is one router under test.
type Target struct {
	Name       string               `json:"name"`
	Driver     string               `json:"driver,omitempty"`
	Results    map[string]float64   `json:"results"` // test ID -> value in the test's unit
	Samples    map[string][]float64 `json:"samples"` // every round's value, in order
	Errors     map[string]string    `json:"errors,omitempty"`
	UDP        *udpResult           `json:"udp64_detail,omitempty"`
	VMUDP      *udpResult           `json:"vm_udp64_detail,omitempty"`
	FilterUDP  *udpResult           `json:"udp64_filter_detail,omitempty"`
	Filter     *filterCheck         `json:"filter_check,omitempty"` // what the filter counted in the best filtered run
	PingIdle   *pingResult          `json:"ping_idle,omitempty"`
	Conn       *connResult          `json:"conn_detail,omitempty"`
	Cost       *costResult          `json:"vrouter_cost,omitempty"` // under the 64 B UDP load, profiled run
	Profile    string               `json:"profile,omitempty"`
	ProfileTop string               `json:"profile_top,omitempty"`
	// ProfileLoad is the load of the profiled run (-profileload).
	ProfileLoad string  `json:"profile_load,omitempty"`
	Seconds     float64 `json:"seconds"`
}

// Skip is a driver that was not measured.
type Skip struct {
	Driver string `json:"driver"`
	Reason string `json:"reason"`
}

// goal is one of issue 10's "Must show" ratios.
type goal struct {
	Text     string  `json:"text"`
	Test     string  `json:"test"`
	Driver   string  `json:"driver"` // the driver it was judged on (the best one unless named)
	Want     string  `json:"want"`   // ">= 1.5" or "<= 1.2"
	Ratio    float64 `json:"ratio,omitempty"`
	Measured bool    `json:"measured"`
	Met      bool    `json:"met"`
}

func newReport(secs, reps int, fs *filterSetup) *Report {
	r := &Report{
		Date:    time.Now().UTC().Format(time.RFC3339),
		Seconds: secs,
		Reps:    reps,
		Tests:   testDefs,
		Filter:  fs,
		Setup: []string{
			"topology: client ns 10.10.1.10 --veth-- router ns --veth-- server ns 203.0.113.10; VM ns 10.10.2.10 --TAP (vrouter) / veth (kernel)-- router ns",
			"SNAT 10.10.0.0/16 -> 203.0.113.1: kernel = ip_forward + nftables masquerade, vrouter = [[nat.snat]] (the server has no route back: all it gets went through SNAT)",
			fmt.Sprintf("UDP: trafgen on CPU 0, 64 B frames over 10k source ports, %d s after 1 s warm-up, delivered = nft counter at the server's ingress; ping -i 0.01 meanwhile", secs),
			fmt.Sprintf("TCP: one iperf3 stream, %d s after 1 s omitted; offloads off = ethtool -K tso gso gro tx rx off on the client's and server's veth", secs),
			fmt.Sprintf("connections: 8 connect/close loops for %d s against an accept/close server", secs),
			fmt.Sprintf("every router set up at once and given one unmeasured UDP load; each test runs on each router in turn (order reversed every other round, the two UDP loads swapped), %d rounds; a figure is the best round", reps),
		},
	}
	if fs != nil {
		r.Setup = append(r.Setup,
			fmt.Sprintf("filter case: the UDP load and ping (new flows each round) with %d rules on the client network (%s); the benchmark's flows accepted by rule %d", fs.Rules, fs.Shapes, fs.BenchRule),
			"  vrouter: [[filter]] default drop, filter_in on the client network, applied by reload; first packets classified, then the flows tracked",
			fmt.Sprintf("  kernel: the same rules as nftables sets (%s): forward chain ct state established,related accept, then for iifname r-c the set lookups, counter drop; the benchmark's key is in @%s; unreplied UDP stays ct state new, so every packet is looked up", fs.NftSets, fs.NftSet),
		)
	}
	r.Host.CPUs = runtime.NumCPU()
	r.Host.Go = runtime.Version()
	r.Host.MHz = cpuMHz()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				r.Host.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		r.Host.Kernel = strings.TrimSpace(string(b))
	}
	if bin, err := lab.Binary(); err == nil {
		if out, err := exec.Command(bin, "version").Output(); err == nil {
			r.Host.Vrouter = strings.TrimPrefix(firstLine(string(out)), "vrouter ")
		}
	}
	return r
}

// compute fills the ratios (vrouter/kernel per driver) and the goals.
func (r *Report) compute() {
	r.Ratios = map[string]map[string]float64{}
	var k *Target
	for _, t := range r.Targets {
		if t.Driver == "" {
			k = t
		}
	}
	if k == nil {
		return
	}
	for _, t := range r.Targets {
		if t.Driver == "" {
			continue
		}
		m := map[string]float64{}
		for id, v := range t.Results {
			if kv, ok := k.Results[id]; ok && kv > 0 {
				m[id] = round(v/kv, 3)
			}
		}
		r.Ratios[t.Driver] = m
	}
	r.Goals = []goal{
		r.goal("64 B UDP through SNAT, best driver", "udp64", "", 1.5),
		r.goal("64 B UDP through SNAT, afpacket alone", "udp64", "afpacket", 1.0),
		r.goal("TCP, hosts' offloads on", "tcp_on", "", 1.0),
		r.goal("TCP, hosts' offloads off", "tcp_off", "", 1.0),
		r.goal("ping p50 under the UDP load", "ping_p50", "", 1.2),
		r.goal("new TCP connections per second", "conn", "", 1.0),
	}
}

// goal judges test on driver (or the driver with the best ratio) against
// bound: ratio >= bound where higher is better, <= bound where lower is.
func (r *Report) goal(text, test, driver string, bound float64) goal {
	def := testByID(test)
	g := goal{Text: text, Test: test, Driver: driver}
	if def.Higher {
		g.Want = fmt.Sprintf(">= %.1f", bound)
	} else {
		g.Want = fmt.Sprintf("<= %.1f", bound)
	}
	for d, m := range r.Ratios {
		if driver != "" && d != driver {
			continue
		}
		v, ok := m[test]
		if !ok {
			continue
		}
		better := !g.Measured || (def.Higher && v > g.Ratio) || (!def.Higher && v < g.Ratio)
		if better {
			g.Ratio, g.Driver, g.Measured = v, d, true
		}
	}
	if g.Measured {
		g.Met = (def.Higher && g.Ratio >= bound) || (!def.Higher && g.Ratio <= bound)
	}
	return g
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// format prints a value in its unit's precision.
func format(unit string, v float64) string {
	switch unit {
	case "ms":
		switch {
		case v < 1:
			return fmt.Sprintf("%.3f", v)
		case v < 10:
			return fmt.Sprintf("%.2f", v)
		}
		return fmt.Sprintf("%.1f", v)
	case "Gbit/s":
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// columns is the table's columns after the test: the kernel, then each
// measured driver with its ratio.
func (r *Report) drivers() []*Target {
	var out []*Target
	for _, t := range r.Targets {
		if t.Driver != "" {
			out = append(out, t)
		}
	}
	return out
}

func (r *Report) kernel() *Target {
	for _, t := range r.Targets {
		if t.Driver == "" {
			return t
		}
	}
	return nil
}

func cell(t *Target, def testDef) string {
	if t == nil {
		return "-"
	}
	if v, ok := t.Results[def.ID]; ok {
		if def.ID == "udp64_filter" && t.Filter != nil && !t.Filter.Active {
			return format(def.Unit, v) + " (not filtered)"
		}
		return format(def.Unit, v)
	}
	if _, bad := t.Errors[def.ID]; bad {
		return "error"
	}
	return "-"
}

func (r *Report) ratioCell(driver, id string) string {
	if v, ok := r.Ratios[driver][id]; ok {
		return fmt.Sprintf("%.2f", v)
	}
	return "-"
}

// textTable is the summary printed at the end of a run.
func textTable(r *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-46s %-7s %9s", "test", "unit", "kernel")
	for _, d := range r.drivers() {
		fmt.Fprintf(&b, " %9s %6s", d.Driver, "ratio")
	}
	b.WriteString("\n")
	k := r.kernel()
	for _, def := range r.tests() {
		fmt.Fprintf(&b, "%-46s %-7s %9s", def.Name, def.Unit, cell(k, def))
		for _, d := range r.drivers() {
			fmt.Fprintf(&b, " %9s %6s", cell(d, def), r.ratioCell(d.Driver, def.ID))
		}
		b.WriteString("\n")
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "not measured: %s: %s\n", targetName(s.Driver), s.Reason)
	}
	b.WriteString("ratio = vrouter/kernel (ping: lower is better, so a ratio below 1 is vrouter ahead)\n")
	return b.String()
}

func goalsText(r *Report) string {
	var b strings.Builder
	b.WriteString("issue 10 targets (ratio vrouter/kernel):\n")
	for _, g := range r.Goals {
		status := "not measured"
		if g.Measured {
			status = fmt.Sprintf("%.2f (%s)  ", g.Ratio, g.Driver)
			if g.Met {
				status += "met"
			} else {
				status += "NOT met"
			}
		}
		fmt.Fprintf(&b, "  %-42s want %-6s %s\n", g.Text, g.Want, status)
	}
	return b.String()
}

// markdownTable is the README's performance table.
func markdownTable(r *Report) string {
	var b strings.Builder
	date := r.Date
	if t, err := time.Parse(time.RFC3339, r.Date); err == nil {
		date = t.Format("2006-01-02")
	}
	fmt.Fprintf(&b, "<!-- generated by `go run ./bench -table` from bench/results/latest.json -->\n")
	fmt.Fprintf(&b, "Run of %s on %d CPUs (%s), Linux %s, vrouter %s; %d s per test, best of %d interleaved rounds; ratio = vrouter/kernel.\n\n",
		date, r.Host.CPUs, r.Host.CPU, r.Host.Kernel, r.Host.Vrouter, r.Seconds, r.Reps)
	b.WriteString("| test | Linux kernel |")
	for _, d := range r.drivers() {
		fmt.Fprintf(&b, " vrouter %s | ratio |", d.Driver)
	}
	b.WriteString("\n|---|---:|")
	for range r.drivers() {
		b.WriteString("---:|---:|")
	}
	b.WriteString("\n")
	k := r.kernel()
	for _, def := range r.tests() {
		better := "higher is better"
		if !def.Higher {
			better = "lower is better"
		}
		fmt.Fprintf(&b, "| %s (%s, %s) | %s |", def.Name, def.Unit, better, cell(k, def))
		for _, d := range r.drivers() {
			fmt.Fprintf(&b, " %s | %s |", cell(d, def), r.ratioCell(d.Driver, def.ID))
		}
		b.WriteString("\n")
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(&b, "\n%s was not measured: %s\n", targetName(s.Driver), s.Reason)
	}
	if f := r.Filter; f != nil && r.hasTest("udp64_filter") {
		fmt.Fprintf(&b, "\nFilter row: %s rules of CloudStack egress/ACL shape on the client network, the benchmark's flows accepted by rule %d; vrouter `filter_in`, the kernel the same rules as a set-based nftables ruleset (%s) after `ct state established,related accept`.\n",
			thousands(f.Rules), f.BenchRule, f.NftSets)
		for _, t := range r.Targets {
			if t.Filter != nil && !t.Filter.Active {
				fmt.Fprintf(&b, "%s did not show that it filtered: %s\n", t.Name, t.Filter.Note)
			}
		}
	}
	return b.String()
}

func (r *Report) hasTest(id string) bool {
	for _, t := range r.tests() {
		if t.ID == id {
			return true
		}
	}
	return false
}

// filterText is the filter case's note: each router's figure against its
// own unfiltered one, and the ratio vrouter/kernel.
func filterText(r *Report) string {
	f := r.Filter
	if f == nil || !r.hasTest("udp64_filter") {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "issue 12, 64 B UDP through SNAT with the %s-rule filter (kernel: the same rules as nftables sets):\n", thousands(f.Rules))
	k := r.kernel()
	for _, t := range r.Targets {
		v, ok := t.Results["udp64_filter"]
		if !ok {
			fmt.Fprintf(&b, "  %-17s not measured: %s\n", t.Name, t.Errors["udp64_filter"])
			continue
		}
		fmt.Fprintf(&b, "  %-17s %6.1f kpps", t.Name, v)
		if u, ok := t.Results["udp64"]; ok && u > 0 {
			fmt.Fprintf(&b, " (%.0f%% of its %.1f without the filter)", 100*v/u, u)
		}
		if t.Driver != "" && k != nil {
			if q, ok := r.Ratios[t.Driver]["udp64_filter"]; ok {
				fmt.Fprintf(&b, ", ratio to the kernel %.2f", q)
			}
		}
		if c := t.Filter; c != nil {
			switch {
			case !c.Active:
				fmt.Fprintf(&b, "; NOT FILTERED: %s", c.Note)
			case t.Driver == "":
				fmt.Fprintf(&b, "; @%s counted %d packets, %d dropped", f.NftSet, c.RulePackets, c.Dropped)
			default:
				fmt.Fprintf(&b, "; rule %d classified %d flows, %d dropped by the default", f.BenchRule, c.RuleHits, c.Dropped)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func writeReport(r *Report, path string) error { return writeJSON(r, path) }

// writeJSON writes v indented, with <, > and & as they are.
func writeJSON(v any, path string) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func readReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return &r, nil
}
