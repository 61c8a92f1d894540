package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"vrouter/test/lab"
)

// Addresses: the inside (client and VM) is private space, the outside
// (server, SNAT address) a documentation prefix.
const (
	clientIP  = "10.10.1.10"
	clientGW  = "10.10.1.1"
	vmIP      = "10.10.2.10"
	vmGW      = "10.10.2.1"
	serverIP  = "203.0.113.10"
	snatIP    = "203.0.113.1"
	udpPort   = 9    // discard; counted and dropped at the server's ingress
	connPort  = 8080 // the connection-rate server
	tapDevice = "tap-vm"

	// IPv6 (the tcp6 case): routed, no NAT66; the server routes the
	// client's prefix back through the router.
	client6    = "2001:db8:10:1::10"
	clientGW6  = "2001:db8:10:1::1"
	server6    = "2001:db8:20::10"
	router6    = "2001:db8:20::1"
	inside6Net = "2001:db8:10::/48"
)

// The kernel router's NAT: one masquerade rule, as an operator would write it.
const kernelNAT = `table ip bench_nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "r-s" ip saddr 10.10.0.0/16 masquerade
	}
}
`

// The server counts (and drops) the benchmark's UDP at its ingress: only
// packets with the SNAT source, so a packet that was not translated does
// not count.
const serverCounter = `table netdev bench_count {
	counter delivered {
	}
	chain ingress {
		type filter hook ingress device "eth0" priority 0; policy accept;
		ip saddr 203.0.113.1 udp dport 9 counter name "delivered" drop
	}
}
`

// The same job for vrouter; DRIVER is the driver of the client and server
// ports, the VM is on a TAP that vrouter creates.
const vrouterCfg = `[router]
name    = "bench"
console = "SOCKET"
METRICS

[[port]]
name   = "pc"
driver = "DRIVER"
device = "r-c"

[[port]]
name   = "ps"
driver = "DRIVER"
device = "r-s"

[[port]]
name   = "vm"
driver = "tap"
device = "` + tapDevice + `"

[[network]]
name      = "inside"
links     = ["pc"]
addresses = ["10.10.1.1/24", "2001:db8:10:1::1/64"]
FILTER_IN

[[network]]
name      = "vms"
links     = ["vm"]
addresses = ["10.10.2.1/24"]

[[network]]
name      = "public"
links     = ["ps"]
addresses = ["203.0.113.1/24", "2001:db8:20::1/64"]

[[nat.snat]]
source = "10.10.0.0/16"
out    = "public"
to     = "203.0.113.1"

[conntrack]
max = 262144
FILTERS`

// nsTag starts the names of the benchmark's namespaces and files (the lab
// adds the process id and a sequence number): by default "fp", the
// fast-path benchmark's own prefix, which no test of the e2e suite uses;
// -nstag sets another, so that two runs on one machine cannot meet.
var nsTag = "fp"

// topo is the benchmark topology for one router under test.
type topo struct {
	l           *lab.Lab
	C, R, S, VM string  // namespaces
	driver      string  // "" = the Linux kernel
	v           variant // vrouter: label, binary, workers
	vmDev       string  // the VM's interface (in VM)
	vr          *vrouter
	metrics     bool
	profile     string
	// tcpCPUPerGB is vrouter's CPU seconds per GB received in the last
	// iperfTCP (0: not measured, or the kernel).
	tcpCPUPerGB   float64
	vmAttached    bool
	paused        bool
	serverStarted bool
	metricsLine   string
	savedOffloads map[string][]string // per namespace, while a test has them off
	rules         *ruleset            // the filter case's ruleset; nil: no filter case
	nftRules      string              // the same as an nft -f file (the kernel)
	benchSet      string              // its set that holds the benchmark's key
	filtered      bool                // the ruleset is applied now
}

func (t *topo) name() string {
	if t.driver == "" {
		return "kernel"
	}
	return "vrouter " + t.v.label
}

// newTopo builds the namespaces and links; for the kernel it also
// configures the forwarding and NAT. vrouter is started by startRouter.
func newTopo(driver string) (t *topo, err error) {
	l, err := lab.New(nsTag)
	if err != nil {
		return nil, err
	}
	track(l)
	t = &topo{l: l, driver: driver}
	defer func() {
		if err != nil {
			closeLab(l)
			t = nil
		}
	}()
	for _, p := range []struct {
		dst  *string
		name string
	}{{&t.C, "c"}, {&t.R, "r"}, {&t.S, "s"}, {&t.VM, "vm"}} {
		if *p.dst, err = l.NS(p.name); err != nil {
			return
		}
	}
	if err = l.Veth(t.C, "eth0", t.R, "r-c"); err != nil {
		return
	}
	if err = l.Veth(t.S, "eth0", t.R, "r-s"); err != nil {
		return
	}
	// IPv6 on the hosts (the lab turns it off everywhere), without
	// duplicate address detection so that addresses work at once; the
	// router namespace keeps it off for vrouter, which answers there itself.
	for _, ns := range []string{t.C, t.S} {
		if err = l.EnableIPv6(ns, "eth0"); err != nil {
			return
		}
	}
	cmds := [][2]string{
		{t.C, "ip addr add " + clientIP + "/24 dev eth0"},
		{t.C, "ip route add default via " + clientGW},
		{t.S, "ip addr add " + serverIP + "/24 dev eth0"},
		{t.C, "ip -6 addr add " + client6 + "/64 dev eth0 nodad"},
		{t.C, "ip -6 route add default via " + clientGW6},
		{t.S, "ip -6 addr add " + server6 + "/64 dev eth0 nodad"},
		{t.S, "ip -6 route add " + inside6Net + " via " + router6},
	}
	if driver == "" {
		// The kernel has no userspace side to serve a TAP: its VM is on a veth.
		if err = l.Veth(t.VM, "eth0", t.R, "r-vm"); err != nil {
			return
		}
		t.vmDev = "eth0"
		t.vmAttached = true
		cmds = append(cmds,
			[2]string{t.R, "ip addr add " + clientGW + "/24 dev r-c"},
			[2]string{t.R, "ip addr add " + vmGW + "/24 dev r-vm"},
			[2]string{t.R, "ip addr add " + snatIP + "/24 dev r-s"},
			[2]string{t.R, "sysctl -qw net.ipv4.ip_forward=1"},
			[2]string{t.R, "sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.r-c.disable_ipv6=0 net.ipv6.conf.r-s.disable_ipv6=0 net.ipv6.conf.all.forwarding=1"},
			[2]string{t.R, "ip -6 addr add " + clientGW6 + "/64 dev r-c nodad"},
			[2]string{t.R, "ip -6 addr add " + router6 + "/64 dev r-s nodad"},
			[2]string{t.VM, "ip addr add " + vmIP + "/24 dev eth0"},
			[2]string{t.VM, "ip route add default via " + vmGW},
		)
	} else {
		t.vmDev = tapDevice
	}
	for _, c := range cmds {
		if _, err = l.Exec(c[0], strings.Fields(c[1])...); err != nil {
			return
		}
	}
	// A wide ephemeral port range for the connection-rate test.
	if _, err = l.Exec(t.C, "sysctl", "-qw", "net.ipv4.ip_local_port_range=10240 65000"); err != nil {
		return
	}
	if err = t.nftFile(t.S, "server.nft", serverCounter); err != nil {
		return
	}
	if driver == "" {
		err = t.nftFile(t.R, "nat.nft", kernelNAT)
	}
	return
}

func (t *topo) nftFile(ns, name, rules string) error {
	path := filepath.Join(t.l.Dir, name)
	if err := os.WriteFile(path, []byte(rules), 0o644); err != nil {
		return err
	}
	_, err := t.l.Exec(ns, "nft", "-f", path)
	return err
}

func (t *topo) close() { closeLab(t.l) }

// vrouter is a running vrouter process.
type vrouter struct {
	*lab.Router
	pid    int
	exited chan struct{}
}

// startRouter starts vrouter (no-op for the kernel); profile, when set, is
// where it writes a CPU profile until it stops.
func (t *topo) startRouter(profile string) error {
	if t.driver == "" {
		return nil
	}
	bin := t.v.bin
	if bin == "" {
		var err error
		if bin, err = lab.Binary(); err != nil {
			return err
		}
	}
	name := fmt.Sprintf("vrouter-%d", time.Now().UnixNano())
	sock := filepath.Join(t.l.Dir, name+".sock")
	cfgPath := filepath.Join(t.l.Dir, name+".toml")
	metrics := ""
	if t.metrics {
		metrics = `metrics = "127.0.0.1:9469"`
	}
	t.metricsLine = metrics
	if err := os.WriteFile(cfgPath, []byte(t.config(sock, false)), 0o644); err != nil {
		return err
	}
	args := []string{bin, "run", "-c", cfgPath}
	if t.v.cpus != "" {
		// Go sizes GOMAXPROCS from the affinity mask; keep two Ps so
		// the pinned worker does not share its P with everything else.
		args = append([]string{"env", "GOMAXPROCS=2", "taskset", "-c", t.v.cpus}, args...)
	}
	if profile != "" {
		args = append(args, "-cpuprofile", profile)
	}
	cmd, err := t.l.Start(t.R, name+".log", args...)
	if err != nil {
		return err
	}
	r := &vrouter{Router: &lab.Router{NS: t.R, Config: cfgPath, Socket: sock, Cmd: cmd, LogFile: filepath.Join(t.l.Dir, name+".log")},
		pid: cmd.Process.Pid, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(r.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-r.exited:
			return fmt.Errorf("vrouter exited at start: %s", strings.ReplaceAll(firstError(r.Log()), cfgPath, "bench config"))
		default:
		}
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			t.vr = r
			t.vmAttached = false
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	return fmt.Errorf("vrouter did not open its console in 10 s: %s", firstError(r.Log()))
}

// config is vrouter's configuration, with the filter ruleset applied on
// the client network or not.
func (t *topo) config(sock string, filter bool) string {
	in, rules := "", ""
	if filter && t.rules != nil {
		in = fmt.Sprintf("filter_in = %q", filterName)
		rules = t.rules.toml()
	}
	metrics := t.metricsLine
	if t.v.workers > 0 {
		metrics += fmt.Sprintf("\nworkers = %d", t.v.workers)
	}
	if t.v.cpus != "" {
		metrics += "\npin_workers = true"
	}
	if t.v.sharedPoll {
		metrics += "\nshared_poll = true"
	}
	return strings.NewReplacer("SOCKET", sock, "DRIVER", t.driver, "METRICS", metrics,
		"FILTER_IN\n", in+"\n", "FILTERS", rules).Replace(vrouterCfg)
}

// setFilter applies the filter case's ruleset on the router's client
// network, or removes it: the kernel loads or deletes table ip
// bench_filter; vrouter reloads its file with or without filter_in and the
// [[filter]] (the reload compiles it off the data path).
func (t *topo) setFilter(on bool) error {
	if t.rules == nil || on == t.filtered {
		return nil
	}
	if t.driver == "" {
		if on {
			if err := t.nftFile(t.R, "filter.nft", t.nftRules); err != nil {
				return fmt.Errorf("loading the nftables filter: %v", err)
			}
		} else if _, err := t.l.Exec(t.R, "nft", "delete", "table", "ip", filterTable); err != nil {
			return fmt.Errorf("removing the nftables filter: %v", err)
		}
		t.filtered = on
		return nil
	}
	if t.vr == nil {
		return fmt.Errorf("vrouter is not running")
	}
	if err := os.WriteFile(t.vr.Config, []byte(t.config(t.vr.Socket, on)), 0o644); err != nil {
		return err
	}
	out, err := t.vr.Console("reload")
	if err != nil || !strings.Contains(out, "reloaded") {
		return fmt.Errorf("vrouter reload (filter %v): %v: %s", on, err, firstLine(out))
	}
	t.filtered = on
	return nil
}

// filterCounters reads what the router's filter counted: vrouter the rule
// of the benchmark's flows (hits = first packets classified) and the
// default, the kernel the set rule that holds the benchmark's key and the
// final drop.
func (t *topo) filterCounters() (hits, packets, dropped uint64, err error) {
	if t.driver == "" {
		out, err := t.l.Exec(t.R, "nft", "list", "chain", "ip", filterTable, filterChain)
		if err != nil {
			return 0, 0, 0, err
		}
		p, d, err := nftFilterCounters(out, t.benchSet)
		return p, p, d, err
	}
	out, err := t.vr.Console("-j", "show", "filter", filterName)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("vrouter show filter: %v: %s", err, firstLine(out))
	}
	return vrouterFilterCounters(out, t.rules.Bench+1)
}

// firstError is the line of a vrouter log that says what went wrong.
func firstError(log string) string {
	lines := lab.Lines(log)
	for _, l := range lines {
		if strings.HasPrefix(l, "vrouter:") || strings.Contains(l, "level=ERROR") || strings.Contains(l, ":") && strings.Contains(l, "error") {
			return l
		}
	}
	if len(lines) > 0 {
		return lines[len(lines)-1]
	}
	return "(no output)"
}

// stopRouter stops vrouter (SIGTERM; the CPU profile, if any, is written
// on the way out) and waits for it.
func (t *topo) stopRouter() error {
	if t.vr == nil {
		return nil
	}
	t.resume()
	r := t.vr
	t.vr = nil
	t.vmAttached = false
	r.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
		return nil
	case <-time.After(10 * time.Second):
		r.Cmd.Process.Kill()
		<-r.exited
		return fmt.Errorf("vrouter did not stop in 10 s after SIGTERM")
	}
}

// pause stops vrouter (SIGSTOP) while the other routers are measured, so
// that nothing it might do while idle counts against them; resume wakes it.
func (t *topo) pause() {
	if t.vr != nil && !t.paused {
		setPaused(t.vr.pid, true)
		syscall.Kill(t.vr.pid, syscall.SIGSTOP)
		t.paused = true
	}
}

func (t *topo) resume() {
	if t.vr != nil && t.paused {
		syscall.Kill(t.vr.pid, syscall.SIGCONT)
		setPaused(t.vr.pid, false)
		t.paused = false
	}
}

// attachVM moves vrouter's TAP into the VM namespace (the VM's NIC) and
// configures it; the kernel's VM is attached by newTopo.
func (t *topo) attachVM() error {
	if t.vmAttached {
		return nil
	}
	if err := t.l.MoveTAP(t.R, tapDevice, t.VM, vmIP+"/24", vmGW); err != nil {
		return err
	}
	t.vmAttached = true
	return nil
}

// warm resolves the neighbours on every path (ARP on both sides of the
// router) so that the first measured packets are not ARP-bound.
func (t *topo) warm(fromVM bool) error {
	from := t.C
	if fromVM {
		from = t.VM
	}
	var out string
	var err error
	for range 3 {
		out, err = t.l.ExecTimeout(from, 10*time.Second, "ping", "-c", "3", "-i", "0.1", "-W", "1", serverIP)
		if err == nil && !strings.Contains(out, " 0 received") {
			return nil
		}
	}
	return fmt.Errorf("no ping %s -> %s through the %s: %v", from, serverIP, t.name(), err)
}

// warm6 resolves the IPv6 neighbours on the client-server path (ND on
// both sides of the router).
func (t *topo) warm6() error {
	var out string
	var err error
	for range 3 {
		out, err = t.l.ExecTimeout(t.C, 10*time.Second, "ping", "-6", "-c", "3", "-i", "0.1", "-W", "1", server6)
		if err == nil && !strings.Contains(out, " 0 received") {
			return nil
		}
	}
	return fmt.Errorf("no ping -6 %s -> %s through the %s: %v", t.C, server6, t.name(), err)
}

var lladdrRe = regexp.MustCompile(`lladdr ([0-9a-f:]{17})`)

// gatewayMAC is the router's MAC as ns has resolved it for gw.
func (t *topo) gatewayMAC(ns, gw string) (string, error) {
	out, err := t.l.Exec(ns, "ip", "neigh", "show", gw)
	if err != nil {
		return "", err
	}
	m := lladdrRe.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("%s has no neighbour entry for %s: %q", ns, gw, out)
	}
	return m[1], nil
}

// offloads turns the hosts' offloads (client's and server's veth ends)
// off, or back to what they were before (a veth starts with GRO off: "on"
// for every feature would leave the later tests with GRO, and the veth's
// NAPI mode that comes with it, which the earlier ones did not have); the
// router's own interfaces are left as they are.
func (t *topo) offloads(on bool) error {
	for _, ns := range []string{t.C, t.S} {
		args := []string{"ethtool", "-K", "eth0"}
		if on {
			saved := t.savedOffloads[ns]
			if len(saved) == 0 {
				continue
			}
			args = append(args, saved...)
			delete(t.savedOffloads, ns)
		} else {
			out, err := t.l.Exec(ns, "ethtool", "-k", "eth0")
			if err != nil {
				return err
			}
			if t.savedOffloads == nil {
				t.savedOffloads = map[string][]string{}
			}
			t.savedOffloads[ns] = parseOffloads(out)
			args = append(args, "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off")
		}
		if _, err := t.l.Exec(ns, args...); err != nil {
			return err
		}
	}
	return nil
}

// parseOffloads turns `ethtool -k` output into the -K arguments that set
// tso, gso, gro, tx and rx as they are.
func parseOffloads(out string) []string {
	names := map[string]string{
		"tcp-segmentation-offload":     "tso",
		"generic-segmentation-offload": "gso",
		"generic-receive-offload":      "gro",
		"tx-checksumming":              "tx",
		"rx-checksumming":              "rx",
	}
	var args []string
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		if short, ok := names[k]; ok {
			f := strings.Fields(v)
			if len(f) > 0 && (f[0] == "on" || f[0] == "off") {
				args = append(args, short, f[0])
			}
		}
	}
	return args
}

// self is this binary, re-executed in namespaces for the helpers.
func self() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", err
	}
	if _, err := exec.LookPath(p); err != nil {
		return "", err
	}
	return p, nil
}
