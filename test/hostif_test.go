package test

// Host interfaces end to end: real daemons (dnsmasq, BIRD) on the router's
// host interfaces, a VM getting its lease through vrouter, eBGP over the
// router's own uplink feeding the FIB through [fib] kernel_table, addresses
// added with ip addr, and the data path kept out of the kernel.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"vrouter/test/lab"
)

// hostTopo is the standard lab with host interfaces on net1 (PREFIX-n1),
// net2 (PREFIX-n2) and vmnet (PREFIX-vm), and extra appended to the
// configuration (may use PREFIX).
type hostTopo struct {
	*lab.Topo
	N1, N2, VMH string // host interface names
}

func hostLab(t *testing.T, extra string, netExtra map[string]string) *hostTopo {
	t.Helper()
	needRoot(t)
	for _, tool := range []string{"nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s missing (make deps)", tool)
		}
	}
	topo, err := lab.StandardEdit("h", "afpacket", func(cfg, prefix string) string {
		for addr, name := range map[string]string{"192.0.2.1/24": "n1", "198.51.100.1/24": "n2", "10.10.0.1/24": "vm"} {
			line := `addresses = ["` + addr + `"]`
			cfg = strings.Replace(cfg, line, line+"\nhost = \""+prefix+"-"+name+"\"\n"+netExtra[name], 1)
		}
		return cfg + strings.ReplaceAll(extra, "PREFIX", prefix)
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &hostTopo{Topo: topo, N1: topo.Prefix + "-n1", N2: topo.Prefix + "-n2", VMH: topo.Prefix + "-vm"}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("router log:\n%s", topo.Router.Log())
			for _, f := range []string{"dnsmasq.log", "bird-r.log", "bird-up.log"} {
				if b, err := os.ReadFile(filepath.Join(topo.Dir, f)); err == nil {
					t.Logf("%s:\n%s", f, b)
				}
			}
		}
		topo.Close()
	})
	return h
}

// hostIfJSON is show host-interfaces -j.
type hostIfJSON struct {
	Network   string `json:"network"`
	Device    string `json:"device"`
	Ifindex   int    `json:"ifindex"`
	Addresses []struct {
		Address, Origin string
	} `json:"addresses"`
	PuntedPackets   uint64 `json:"punted_packets"`
	InjectedPackets uint64 `json:"injected_packets"`
	PuntDrops       uint64 `json:"punt_drops"`
}

func hostIfs(t *testing.T, r *lab.Router) map[string]hostIfJSON {
	t.Helper()
	out, err := r.Console("-j", "show", "host-interfaces")
	if err != nil {
		t.Fatalf("show host-interfaces: %v: %s", err, out)
	}
	var list []hostIfJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	m := map[string]hostIfJSON{}
	for _, h := range list {
		m[h.Network] = h
	}
	return m
}

// The host interfaces exist with the network's MAC, MTU and addresses; the
// kernel talks through them (TCP to the router's address, a ping from the
// kernel), vrouter still answers ICMP echo itself (once), and the kernel
// never answers on the ports' devices.
func TestHostInterfaceBasics(t *testing.T) {
	l := hostLab(t, "", nil)
	out := run(t, l.Topo, l.R, "ip", "-o", "-4", "addr", "show", "dev", l.N1)
	contains(t, out, "inet 192.0.2.1/24 brd 192.0.2.255")
	link := run(t, l.Topo, l.R, "ip", "-o", "link", "show", "dev", l.N2)
	contains(t, link, "mtu 1400") // p2's MTU
	mac := strings.Fields(run(t, l.Topo, l.R, "cat", "/sys/class/net/r-h2/address"))[0]
	contains(t, link, "link/ether "+mac) // the network's MAC is p2's (its device's)
	contains(t, run(t, l.Topo, l.R, "nft", "list", "ruleset"), `hook ingress device "r-h1" priority -500; policy drop;`)

	// Echo: vrouter answers, exactly once (the kernel sees neither the
	// request on r-h1 nor a punt).
	out = run(t, l.Topo, l.H1, "ping", "-c", "3", "-i", "0.2", "192.0.2.1")
	contains(t, out, " 0% packet loss")
	if strings.Contains(out, "DUP!") {
		t.Fatalf("duplicate echo replies:\n%s", out)
	}
	before := hostIfs(t, l.Router)["net1"]

	// TCP to the router's address: a listener in the router's namespace.
	if _, err := l.Start(l.R, "socat.log", "socat", "TCP-LISTEN:2222,bind=192.0.2.1,reuseaddr,fork", "EXEC:echo hello-from-the-router"); err != nil {
		t.Fatal(err)
	}
	var got string
	for i := 0; i < 20; i++ {
		got, _ = l.Exec(l.H1, "socat", "-T", "2", "-", "TCP:192.0.2.1:2222,connect-timeout=2")
		if strings.Contains(got, "hello") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	contains(t, got, "hello-from-the-router")
	// The kernel pings h1 through its host interface (the echo replies
	// are punted to it).
	out = run(t, l.Topo, l.R, "ping", "-c", "3", "-i", "0.2", "-I", l.N1, "192.0.2.10")
	contains(t, out, " 0% packet loss")
	after := hostIfs(t, l.Router)["net1"]
	if after.PuntedPackets <= before.PuntedPackets || after.InjectedPackets <= before.InjectedPackets {
		t.Fatalf("host interface counters did not move: before %+v after %+v", before, after)
	}
	hostLatency(t, l)
	// UDP to the router with nobody listening: the kernel's port
	// unreachable, not vrouter's (which would have come without a punt).
	st := stats(t, l.Router)
	if st.Drops["local-protocol"] != 0 {
		t.Fatalf("local-protocol drops %d with a host interface", st.Drops["local-protocol"])
	}
}

// Forwarded traffic never reaches a host interface: tcpdump on every host
// interface during a forwarded flow sees none of it.
func TestHostInterfaceNoForwardedTraffic(t *testing.T) {
	l := hostLab(t, "", nil)
	ping(t, l.Lab, l.H1, "198.51.100.10")
	var dumps []*exec.Cmd
	var files []string
	for _, dev := range []string{l.N1, l.N2, l.VMH} {
		f := filepath.Join(l.Dir, dev+".pcap")
		cmd, err := l.Start(l.R, dev+".tcpdump.log", "tcpdump", "--immediate-mode", "-i", dev, "-n", "-U", "-w", f)
		if err != nil {
			t.Fatal(err)
		}
		dumps, files = append(dumps, cmd), append(files, f)
	}
	time.Sleep(500 * time.Millisecond)
	mbit := iperf(t, l.Topo)
	out := run(t, l.Topo, l.H1, "ping", "-c", "5", "-i", "0.1", "198.51.100.10")
	contains(t, out, " 0% packet loss")
	run(t, l.Topo, l.VM, "ping", "-c", "3", "-i", "0.1", "198.51.100.10")
	// What is the kernel's does reach it: the captures work.
	run(t, l.Topo, l.H1, "sh", "-c", "echo probe | socat -u - UDP:192.0.2.1:9")
	time.Sleep(200 * time.Millisecond)
	for _, c := range dumps {
		c.Process.Signal(os.Interrupt)
		c.Wait()
	}
	if out, _ := exec.Command("tcpdump", "-n", "-r", files[0], "udp port 9").CombinedOutput(); !strings.Contains(string(out), "192.0.2.10") {
		t.Fatalf("the probe to the router did not reach %s:\n%s", l.N1, out)
	}
	for _, f := range files {
		out, err := exec.Command("tcpdump", "-n", "-r", f, "host 198.51.100.10 and (host 192.0.2.10 or host 10.10.0.10)").CombinedOutput()
		if err != nil {
			t.Fatalf("tcpdump -r %s: %v: %s", f, err, out)
		}
		if n := len(lab.Lines(strings.ReplaceAll(string(out), "reading from file", "\n"))); strings.Contains(string(out), " IP ") {
			t.Fatalf("forwarded packets reached the host interface (%s, %d lines):\n%.2000s", f, n, out)
		}
	}
	t.Logf("iperf3 h1 -> h2 with host interfaces: %.0f Mbit/s", mbit)
}

var arpingReply = regexp.MustCompile(`Received [1-9]\d* response`)

// An address added with ip addr add on a host interface is answered by
// vrouter's ARP within 100 ms and announced with a gratuitous ARP; removed,
// it is no longer answered.
func TestHostInterfaceAddressSync(t *testing.T) {
	l := hostLab(t, "", nil)
	pcap := filepath.Join(l.Dir, "h1-arp.txt")
	f, err := os.Create(pcap)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dump := exec.Command("ip", "netns", "exec", l.H1, "tcpdump", "-i", "eth0", "-n", "-l", "-tt", "arp")
	dump.Stdout, dump.Stderr = f, f
	if err := dump.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { dump.Process.Kill(); dump.Wait() }()
	time.Sleep(700 * time.Millisecond)
	added := time.Now()
	run(t, l.Topo, l.R, "ip", "addr", "add", "192.0.2.50/32", "dev", l.N1)
	out, err := l.Exec(l.H1, "arping", "-c", "1", "-w", "1", "-I", "eth0", "192.0.2.50")
	answered := time.Since(added)
	if err != nil || !arpingReply.MatchString(out) {
		t.Fatalf("192.0.2.50 not answered after ip addr add: %v\n%s", err, out)
	}
	// The gratuitous ARP, and when it was sent.
	var garp time.Time
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && garp.IsZero(); time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(pcap)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "Request who-has 192.0.2.50 tell 192.0.2.50") || strings.Contains(line, "Announcement 192.0.2.50") {
				fs := strings.Fields(line)
				sec, _ := strconv.ParseFloat(fs[0], 64)
				garp = time.Unix(0, int64(sec*1e9))
				break
			}
		}
	}
	if garp.IsZero() {
		b, _ := os.ReadFile(pcap)
		t.Fatalf("no gratuitous ARP for 192.0.2.50 seen on h1:\n%s", b)
	}
	lat := garp.Sub(added)
	t.Logf("ip addr add -> gratuitous ARP on the wire: %v; -> arping answered: %v (both including the ip and arping processes)", lat.Round(time.Microsecond), answered.Round(time.Millisecond))
	if lat > 100*time.Millisecond {
		t.Fatalf("gratuitous ARP %v after ip addr add, want < 100 ms", lat)
	}
	hi := hostIfs(t, l.Router)["net1"]
	found := false
	for _, a := range hi.Addresses {
		found = found || (a.Address == "192.0.2.50/32" && a.Origin == "kernel")
	}
	if !found {
		t.Fatalf("show host-interfaces: %+v", hi)
	}
	ping(t, l.Lab, l.H1, "192.0.2.50")
	run(t, l.Topo, l.R, "ip", "addr", "del", "192.0.2.50/32", "dev", l.N1)
	time.Sleep(100 * time.Millisecond)
	if out, err := l.Exec(l.H1, "arping", "-c", "2", "-w", "2", "-I", "eth0", "192.0.2.50"); err == nil || arpingReply.MatchString(out) {
		t.Fatalf("192.0.2.50 still answered after ip addr del:\n%s", out)
	}
	// The file's address stays, whatever the kernel does.
	run(t, l.Topo, l.R, "ip", "addr", "del", "192.0.2.1/24", "dev", l.N1)
	time.Sleep(100 * time.Millisecond)
	ping(t, l.Lab, l.H1, "192.0.2.1")
}

// A flood to a router address over the punt limit is counted as punt drops
// and the forwarded traffic keeps its rate.
func TestHostInterfacePuntFlood(t *testing.T) {
	l := hostLab(t, "", map[string]string{"n1": "host_punt_rate = 1000\n"})
	ping(t, l.Lab, l.H1, "198.51.100.10")
	ping(t, l.Lab, l.H1, "192.0.2.1")
	// udpRate runs 3 s of UDP h1 -> h2 at 100 Mbit/s and returns the rate
	// and the share lost that h2 measured.
	udpRate := func() (float64, float64) {
		t.Helper()
		iperfServer(t, l.Lab, l.H2, "5202")
		time.Sleep(300 * time.Millisecond)
		out, err := l.ExecTimeout(l.H1, 30*time.Second, "iperf3", "-u", "-b", "100M", "-l", "1200", "-c", "198.51.100.10", "-p", "5202", "-t", "3", "-f", "m")
		if err != nil {
			t.Fatalf("iperf3: %v", err)
		}
		m := regexp.MustCompile(`([\d.]+) Mbits/sec\s+[\d.]+ ms\s+\d+/\d+ \(([\d.e+-]+)%\)\s+receiver`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no iperf3 result:\n%s", out)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		lost, _ := strconv.ParseFloat(m[2], 64)
		return v, lost
	}
	base, baseLost := udpRate()
	before := hostIfs(t, l.Router)["net1"]
	// The flood: 64-byte UDP datagrams to the router as fast as socat goes.
	// (niced: on this test's shared CPUs the generator would otherwise
	// starve the iperf3 sender itself).
	flood, err := l.Start(l.H1, "flood.log", "nice", "-n", "19", "socat", "-u", "-b", "64", "OPEN:/dev/zero", "UDP-SENDTO:192.0.2.1:9999")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	during, lost := udpRate()
	dur := time.Since(start)
	flood.Process.Kill()
	flood.Wait()
	after := hostIfs(t, l.Router)["net1"]
	st := stats(t, l.Router)
	punted := after.PuntedPackets - before.PuntedPackets
	drops := after.PuntDrops - before.PuntDrops
	t.Logf("forwarded UDP 100 Mbit/s offered: %.0f Mbit/s received alone (%.2f%% lost), %.0f during the flood (%.2f%% lost); flood: %d punted, %d dropped over the limit in %v",
		base, baseLost, during, lost, punted, drops, dur.Round(time.Millisecond))
	if drops == 0 || st.Drops["host-punt-limit"] == 0 {
		t.Fatalf("no punt drops counted (punted %d)", punted)
	}
	if limit := uint64(dur.Seconds()*1000*1.5) + 200; punted > limit {
		t.Fatalf("%d punted in %v over a 1000/s limit", punted, dur)
	}
	if during < 0.9*base || lost > 10 {
		t.Fatalf("forwarded rate fell from %.0f to %.0f Mbit/s (%.2f%% lost) during the flood", base, during, lost)
	}
}

// dnsmasq on a host interface leases an address, the router and the DNS
// server to a VM on a TAP (udhcpc), answers a DNS query for a host record,
// and the lease survives a reload.
func TestHostInterfaceDnsmasq(t *testing.T) {
	for _, tool := range []string{"dnsmasq", "udhcpc", "dig"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s missing (make deps)", tool)
		}
	}
	l := hostLab(t, "", nil)
	// The VM starts without an address.
	run(t, l.Topo, l.VM, "ip", "addr", "flush", "dev", l.TapDev)
	startDnsmasq(t, l)
	lease := udhcpc(t, l, "")
	if lease["ip"] == "" || !strings.HasPrefix(lease["ip"], "10.10.0.") || lease["router"] != "10.10.0.1" || lease["dns"] != "10.10.0.1" {
		t.Fatalf("lease %v", lease)
	}
	ping(t, l.Lab, l.VM, "10.10.0.1")
	ping(t, l.Lab, l.VM, "198.51.100.10") // routed through vrouter with the leased address
	dig := func() {
		t.Helper()
		out := run(t, l.Topo, l.VM, "dig", "+short", "+time=2", "+tries=2", "@10.10.0.1", "gw.lab.test")
		if strings.TrimSpace(out) != "10.10.0.1" {
			t.Fatalf("dig gw.lab.test: %q", out)
		}
	}
	dig()
	before := hostIfs(t, l.Router)["vmnet"]
	out, err := l.Router.Console("reload")
	if err != nil {
		t.Fatalf("reload: %v %s", err, out)
	}
	if after := hostIfs(t, l.Router)["vmnet"]; after.Ifindex != before.Ifindex {
		t.Fatalf("reload recreated the host interface: ifindex %d -> %d", before.Ifindex, after.Ifindex)
	}
	// The lease is renewed (the same address) and DNS still answers.
	renewed := udhcpc(t, l, lease["ip"])
	if renewed["ip"] != lease["ip"] {
		t.Fatalf("after reload the VM got %s, had %s", renewed["ip"], lease["ip"])
	}
	leases, _ := os.ReadFile(filepath.Join(l.Dir, "dnsmasq.leases"))
	if !strings.Contains(string(leases), lease["ip"]) {
		t.Fatalf("dnsmasq lease file:\n%s", leases)
	}
	dig()
}

func startDnsmasq(t *testing.T, l *hostTopo) {
	t.Helper()
	d := l.Dir
	_, err := l.Start(l.R, "dnsmasq.out", "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--interface="+l.VMH, "--bind-interfaces", "--except-interface=lo",
		"--dhcp-range=10.10.0.100,10.10.0.150,255.255.255.0,1h", "--dhcp-option=option:router,10.10.0.1",
		"--dhcp-option=option:dns-server,10.10.0.1", "--dhcp-authoritative", "--host-record=gw.lab.test,10.10.0.1",
		"--dhcp-leasefile="+filepath.Join(d, "dnsmasq.leases"), "--pid-file="+filepath.Join(d, "dnsmasq.pid"),
		"--log-facility="+filepath.Join(d, "dnsmasq.log"), "--log-dhcp", "--log-queries", "--user=root")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if out, _ := l.Exec(l.R, "ss", "-lun"); strings.Contains(out, "10.10.0.1:53") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(d, "dnsmasq.log"))
	t.Fatalf("dnsmasq did not start:\n%s", b)
}

// udhcpc runs a DHCP client in the VM (asking for request when set) and
// returns what its script was told.
func udhcpc(t *testing.T, l *hostTopo, request string) map[string]string {
	t.Helper()
	script := filepath.Join(l.Dir, "udhcpc.sh")
	env := filepath.Join(l.Dir, "udhcpc.env")
	os.Remove(env)
	err := os.WriteFile(script, []byte(`#!/bin/sh
case "$1" in
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/$mask" dev "$interface"
	ip route replace default via "$router"
	printf 'ip=%s\nmask=%s\nrouter=%s\ndns=%s\n' "$ip" "$mask" "$router" "$dns" > `+env+`
	;;
esac
`), 0o755)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"udhcpc", "-i", l.TapDev, "-f", "-q", "-n", "-t", "5", "-T", "1", "-s", script}
	if request != "" {
		args = append(args, "-r", request)
	}
	out, err := l.ExecTimeout(l.VM, 30*time.Second, args...)
	if err != nil {
		t.Fatalf("udhcpc: %v\n%s", err, out)
	}
	b, err := os.ReadFile(env)
	if err != nil {
		t.Fatalf("udhcpc got no lease:\n%s", out)
	}
	m := map[string]string{}
	for _, line := range lab.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// BIRD in the router's namespace holds an eBGP session with an upstream
// BIRD over vrouter's own uplink; 10,000 announced prefixes reach the FIB
// through [fib] kernel_table and traffic to them is forwarded; withdrawn,
// they are gone.
func TestHostInterfaceBGP(t *testing.T) {
	for _, tool := range []string{"bird", "birdc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s missing (make deps)", tool)
		}
	}
	l := hostLab(t, "\n[fib]\nkernel_table = 100\n", nil)
	const n = 10000
	sockR, sockUp := startBGP(t, l, n)
	waitEstablished(t, l, l.R, sockR)
	waitEstablished(t, l, l.H2, sockUp)
	var s routeSummary
	start := time.Now()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if s = summary(t, l.Router); s.Kernel.Routes >= n {
			break
		}
	}
	if s.Kernel.Routes != n {
		out, _ := l.Exec(l.R, "ip", "route", "show", "table", "100")
		t.Fatalf("vrouter has %d kernel routes, want %d (skipped %d); table 100:\n%.1500s", s.Kernel.Routes, n, s.Kernel.Skipped, out)
	}
	t.Logf("%d prefixes in the FIB %v after the session came up", n, time.Since(start).Round(time.Millisecond))
	keepaliveLatency(t, l)
	out, err := l.Router.Console("show", "ip", "route", "10.201.7.9")
	if err != nil || !strings.Contains(out, "198.51.100.10") || !strings.Contains(out, "kernel") {
		t.Fatalf("show ip route 10.201.7.9: %v\n%s", err, out)
	}
	// Traffic to an announced prefix goes to the upstream.
	run(t, l.Topo, l.H2, "ip", "addr", "add", "10.201.7.9/32", "dev", "lo")
	ping(t, l.Lab, l.H1, "10.201.7.9")
	// Withdrawn: gone from the FIB.
	if out, err := l.Exec(l.H2, "birdc", "-s", sockUp, "disable", "announce"); err != nil {
		t.Fatalf("birdc disable: %v %s", err, out)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if s = summary(t, l.Router); s.Kernel.Routes == 0 {
			break
		}
	}
	if s.Kernel.Routes != 0 {
		t.Fatalf("%d kernel routes left after the withdrawal", s.Kernel.Routes)
	}
	noPing(t, l.Lab, l.H1, "10.201.7.9")
	// A BGP keepalive's way through vrouter (punt and inject), and the
	// session survives a reload.
	if out, err := l.Router.Console("reload"); err != nil {
		t.Fatalf("reload: %v %s", err, out)
	}
	time.Sleep(time.Second)
	waitEstablished(t, l, l.R, sockR)
	out, _ = l.Exec(l.R, "birdc", "-s", sockR, "show", "protocols", "all", "uplink")
	if !regexp.MustCompile(`BGP state:\s+Established`).MatchString(out) {
		t.Fatalf("session state:\n%s", out)
	}
}

// startBGP starts BIRD in the router's namespace (AS 65001, 198.51.100.1,
// exporting to kernel table 100) and an upstream BIRD on h2 (AS 65002,
// 198.51.100.10) announcing n /24s from 10.200.0.0; it returns their
// control sockets.
func startBGP(t *testing.T, l *hostTopo, n int) (sockR, sockUp string) {
	t.Helper()
	d := l.Dir
	sockR, sockUp = filepath.Join(d, "bird-r.ctl"), filepath.Join(d, "bird-up.ctl")
	confR := fmt.Sprintf(`log "%s" all;
router id 198.51.100.1;
protocol device { scan time 10; }
ipv4 table master4;
protocol kernel k100 {
	kernel table 100;
	ipv4 { import none; export all; };
}
protocol bgp uplink {
	local 198.51.100.1 as 65001;
	neighbor 198.51.100.10 as 65002;
	hold time 9;
	keepalive time 3;
	connect retry time 1;
	ipv4 { import all; export none; };
}
`, filepath.Join(d, "bird-r.log"))
	var routes strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&routes, "\troute 10.%d.%d.0/24 blackhole;\n", 200+i/256, i%256)
	}
	confUp := fmt.Sprintf(`log "%s" all;
router id 198.51.100.10;
protocol device { scan time 10; }
protocol static announce {
	ipv4;
%s}
protocol bgp downlink {
	local 198.51.100.10 as 65002;
	neighbor 198.51.100.1 as 65001;
	hold time 9;
	keepalive time 3;
	connect retry time 1;
	ipv4 { import none; export all; };
}
`, filepath.Join(d, "bird-up.log"), routes.String())
	for _, b := range []struct{ ns, name, conf, sock string }{{l.R, "bird-r", confR, sockR}, {l.H2, "bird-up", confUp, sockUp}} {
		path := filepath.Join(d, b.name+".conf")
		if err := os.WriteFile(path, []byte(b.conf), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Start(b.ns, b.name+".out", "bird", "-f", "-c", path, "-s", b.sock, "-P", filepath.Join(d, b.name+".pid")); err != nil {
			t.Fatal(err)
		}
	}
	return sockR, sockUp
}

func waitEstablished(t *testing.T, l *hostTopo, ns, sock string) {
	t.Helper()
	var out string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out, _ = l.Exec(ns, "birdc", "-s", sock, "show", "protocols")
		if strings.Contains(out, "Established") {
			return
		}
	}
	t.Fatalf("BGP session not established:\n%s", out)
}

var rttLine = regexp.MustCompile(`rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)`)

// hostLatency logs what the punt and inject paths cost: ping RTTs of the
// router's own echo, of the kernel pinging through its host interface, and
// of a forwarded ping; and the round trip of one byte over an established
// TCP connection to a server in the router's namespace (ssh-like).
func hostLatency(t *testing.T, l *hostTopo) {
	t.Helper()
	rtt := func(ns string, args ...string) string {
		out := run(t, l.Topo, ns, append([]string{"ping", "-q", "-c", "50", "-i", "0.01"}, args...)...)
		m := rttLine.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no rtt in %s", out)
		}
		return "min " + m[1] + " avg " + m[2] + " ms"
	}
	own := rtt(l.H1, "192.0.2.1")
	kernel := rtt(l.R, "-I", l.N1, "192.0.2.10")
	fwd := rtt(l.H1, "198.51.100.10")
	srv := filepath.Join(l.Dir, "echo.py")
	os.WriteFile(srv, []byte(`import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.0.2.1", 2223))
s.listen(1)
c, _ = s.accept()
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
while True:
    d = c.recv(64)
    if not d:
        break
    c.sendall(d)
`), 0o644)
	cli := filepath.Join(l.Dir, "rtt.py")
	os.WriteFile(cli, []byte(`import socket, time
for i in range(50):
    try:
        c = socket.create_connection(("192.0.2.1", 2223), timeout=5)
        break
    except OSError:
        time.sleep(0.1)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
ts = []
for i in range(500):
    t = time.perf_counter()
    c.sendall(b"x")
    c.recv(64)
    ts.append(time.perf_counter() - t)
ts.sort()
print("median %d us, p99 %d us" % (ts[250] * 1e6, ts[495] * 1e6))
`), 0o644)
	if _, err := l.Start(l.R, "echo.log", "/usr/bin/python3", srv); err != nil {
		t.Fatal(err)
	}
	tcp := strings.TrimSpace(run(t, l.Topo, l.H1, "/usr/bin/python3", cli))
	t.Logf("latency: ping h1 -> router (vrouter answers): %s; router kernel -> h1 through its host interface (inject, punt): %s; h1 -> h2 forwarded: %s; 1-byte TCP round trip h1 <-> a server on the router's address (punt, inject): %s",
		own, kernel, fwd, tcp)
}

var tcpdumpSeq = regexp.MustCompile(`^(\d+\.\d+) IP (\S+) > (\S+): Flags \[[^]]*\], seq (\d+:\d+)`)

// keepaliveLatency captures the BGP session on h2's wire and on the
// router's host interface for two keepalive intervals and logs how long a
// segment takes from one to the other: upstream -> kernel is the punt path
// (veth, vrouter, TAP), kernel -> upstream the inject path.
func keepaliveLatency(t *testing.T, l *hostTopo) {
	t.Helper()
	capture := func(ns, dev string) (*exec.Cmd, string) {
		f := filepath.Join(l.Dir, "bgp-"+dev+".txt")
		cmd, err := l.Start(ns, "bgp-"+dev+".txt", "tcpdump", "--immediate-mode", "-l", "-tt", "-S", "-n", "-i", dev, "tcp port 179")
		if err != nil {
			t.Fatal(err)
		}
		return cmd, f
	}
	c1, wire := capture(l.H2, "eth0")
	c2, host := capture(l.R, l.N2)
	time.Sleep(7 * time.Second)
	for _, c := range []*exec.Cmd{c1, c2} {
		c.Process.Signal(os.Interrupt)
		c.Wait()
	}
	seen := func(f string) map[string]float64 {
		b, _ := os.ReadFile(f)
		m := map[string]float64{}
		for _, line := range strings.Split(string(b), "\n") {
			if g := tcpdumpSeq.FindStringSubmatch(line); g != nil {
				v, _ := strconv.ParseFloat(g[1], 64)
				m[g[2]+">"+g[3]+" "+g[4]] = v
			}
		}
		return m
	}
	w, h := seen(wire), seen(host)
	var punt, inject []time.Duration
	for k, tw := range w {
		th, ok := h[k]
		if !ok {
			continue
		}
		d := time.Duration((th - tw) * 1e9)
		if strings.HasPrefix(k, "198.51.100.10.") {
			punt = append(punt, d)
		} else {
			inject = append(inject, -d)
		}
	}
	if len(punt) == 0 || len(inject) == 0 {
		t.Fatalf("no keepalive seen both on the wire and on the host interface (punt %d, inject %d)", len(punt), len(inject))
	}
	t.Logf("BGP keepalives: upstream wire -> router's host interface (punt) %v; host interface -> upstream wire (inject) %v", punt, inject)
}

// keepalived runs VRRP on a host interface: its advertisements go out
// through vrouter, and the VIP it adds as master is answered by vrouter's
// ARP and ping; stopped, the VIP goes away.
func TestHostInterfaceKeepalived(t *testing.T) {
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Fatal("keepalived missing (make deps)")
	}
	l := hostLab(t, "", nil)
	conf := filepath.Join(l.Dir, "keepalived.conf")
	os.WriteFile(conf, []byte(`global_defs {
	router_id lab
	enable_script_security
}
vrrp_instance public {
	state MASTER
	interface `+l.N1+`
	virtual_router_id 51
	priority 150
	advert_int 1
	virtual_ipaddress {
		192.0.2.60/32 dev `+l.N1+`
	}
}
`), 0o644)
	// VRRP advertisements on h1's wire.
	adv, err := l.Start(l.H1, "vrrp.txt", "tcpdump", "--immediate-mode", "-l", "-n", "-i", "eth0", "ip proto 112")
	if err != nil {
		t.Fatal(err)
	}
	ka, err := l.Start(l.R, "keepalived.log", "keepalived", "-n", "-l", "-D", "-P", "-f", conf,
		"-p", filepath.Join(l.Dir, "keepalived.pid"), "-r", filepath.Join(l.Dir, "vrrp.pid"))
	if err != nil {
		t.Fatal(err)
	}
	var out string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if out, _ = l.Exec(l.H1, "arping", "-c", "1", "-w", "1", "-I", "eth0", "192.0.2.60"); arpingReply.MatchString(out) {
			break
		}
	}
	if !arpingReply.MatchString(out) {
		b, _ := os.ReadFile(filepath.Join(l.Dir, "keepalived.log"))
		t.Fatalf("VIP not answered:\n%s\nkeepalived:\n%s", out, b)
	}
	ping(t, l.Lab, l.H1, "192.0.2.60")
	time.Sleep(1500 * time.Millisecond)
	adv.Process.Signal(os.Interrupt)
	adv.Wait()
	if b, _ := os.ReadFile(filepath.Join(l.Dir, "vrrp.txt")); !strings.Contains(string(b), "VRRPv2, Advertisement, vrid 51") {
		t.Fatalf("no VRRP advertisement on h1's wire:\n%s", b)
	}
	hi := hostIfs(t, l.Router)["net1"]
	found := false
	for _, a := range hi.Addresses {
		found = found || (a.Address == "192.0.2.60/32" && a.Origin == "kernel")
	}
	if !found {
		t.Fatalf("show host-interfaces: %+v", hi)
	}
	ka.Process.Signal(os.Interrupt)
	ka.Wait()
	time.Sleep(300 * time.Millisecond)
	if out, err := l.Exec(l.H1, "arping", "-c", "2", "-w", "2", "-I", "eth0", "192.0.2.60"); err == nil || arpingReply.MatchString(out) {
		t.Fatalf("VIP still answered after keepalived stopped:\n%s", out)
	}
}
