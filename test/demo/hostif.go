package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"vrouter/test/lab"
)

// hostScenes is part 3: host interfaces. dnsmasq on the VM network's host
// interface gives the VM on the TAP its address through vrouter, and BIRD
// on the uplink's host interface holds an eBGP session with an upstream
// BIRD on h2 whose routes reach vrouter's FIB through [fib] kernel_table.
func hostScenes() {
	for _, tool := range []string{"dnsmasq", "udhcpc", "bird", "birdc", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Printf("\npart 3 (host interfaces) skipped: %s missing (make deps)\n", tool)
			return
		}
	}
	t := build(func() (*lab.Topo, *lab.Lab, error) {
		t, err := lab.StandardEdit("demo", "afpacket", func(cfg, prefix string) string {
			for addr, name := range map[string]string{"198.51.100.1/24": "up", "10.10.0.1/24": "vm"} {
				line := `addresses = ["` + addr + `"]`
				cfg = strings.Replace(cfg, line, line+"\nhost = \""+prefix+"-"+name+"\"", 1)
			}
			return cfg + "\n[fib]\nkernel_table = 100\n"
		})
		if err != nil {
			return nil, nil, err
		}
		return t, t.Lab, nil
	})
	vmHost, upHost := t.Prefix+"-vm", t.Prefix+"-up"
	fmt.Printf(`
========================================================================
Part 3: host interfaces. The networks vmnet and net2 get host = "%s" and
host = "%s": TAPs in the router's namespace with the networks' MACs and
addresses, where unmodified daemons run. vrouter hands them what is for the
router and that it does not answer itself, and sends out what they send.

  vm (no address) --TAP-- vrouter --veth-- h2 198.51.100.10 (upstream BIRD, AS 65002)
                             |
              %s 10.10.0.1: dnsmasq      %s 198.51.100.1: BIRD (AS 65001)
`, vmHost, upHost, vmHost, upHost)
	step := func(title, ns string, args ...string) string {
		stopping()
		fmt.Printf("\n### %s\n$ %s\n", title, strings.Join(args, " "))
		c, done := context.WithTimeout(ctx, time.Minute)
		out, err := t.ExecContext(c, ns, args...)
		done()
		fmt.Print(out)
		if err != nil && !strings.Contains(err.Error(), "exit status") {
			fmt.Println("error:", err)
		}
		return out
	}
	d := t.Dir
	if err := startProc(t.Lab, t.R, "dnsmasq.out", "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--interface="+vmHost, "--bind-interfaces", "--except-interface=lo",
		"--dhcp-range=10.10.0.100,10.10.0.150,255.255.255.0,1h", "--dhcp-option=option:router,10.10.0.1",
		"--dhcp-option=option:dns-server,10.10.0.1", "--host-record=gw.lab.test,10.10.0.1",
		"--dhcp-leasefile="+filepath.Join(d, "dnsmasq.leases"), "--pid-file="+filepath.Join(d, "dnsmasq.pid"),
		"--log-facility="+filepath.Join(d, "dnsmasq.log"), "--user=root"); err != nil {
		fail(err)
	}
	script := filepath.Join(d, "udhcpc.sh")
	os.WriteFile(script, []byte(`#!/bin/sh
case "$1" in
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/$mask" dev "$interface"
	ip route replace default via "$router"
	echo "udhcpc: $interface got $ip/$mask, router $router, dns $dns"
	;;
esac
`), 0o755)
	time.Sleep(500 * time.Millisecond)
	t.Exec(t.VM, "ip", "addr", "flush", "dev", t.TapDev)
	step("the VM asks for an address (udhcpc); dnsmasq answers from the host interface", t.VM,
		"udhcpc", "-i", t.TapDev, "-f", "-q", "-n", "-t", "5", "-T", "1", "-s", script)
	step("the VM resolves a name at the router (dnsmasq)", t.VM, "dig", "+short", "+time=2", "@10.10.0.1", "gw.lab.test")
	step("and is routed by vrouter with its leased address", t.VM, "ping", "-c", "2", "-i", "0.2", "198.51.100.10")

	// BGP over the uplink.
	confR := `router id 198.51.100.1;
protocol device { }
protocol kernel k100 { kernel table 100; ipv4 { import none; export all; }; }
protocol bgp uplink {
	local 198.51.100.1 as 65001; neighbor 198.51.100.10 as 65002;
	connect retry time 1;
	ipv4 { import all; export none; };
}
`
	confUp := `router id 198.51.100.10;
protocol device { }
protocol static announce { ipv4; route 10.201.0.0/16 blackhole; route 10.202.0.0/24 blackhole; route 10.203.4.0/22 blackhole; }
protocol bgp downlink {
	local 198.51.100.10 as 65002; neighbor 198.51.100.1 as 65001;
	connect retry time 1;
	ipv4 { import none; export all; };
}
`
	sockR, sockUp := filepath.Join(d, "bird-r.ctl"), filepath.Join(d, "bird-up.ctl")
	for _, b := range []struct{ ns, name, conf, sock string }{{t.R, "bird-r", confR, sockR}, {t.H2, "bird-up", confUp, sockUp}} {
		path := filepath.Join(d, b.name+".conf")
		os.WriteFile(path, []byte(b.conf), 0o644)
		if err := startProc(t.Lab, b.ns, b.name+".out", "bird", "-f", "-c", path, "-s", b.sock, "-P", filepath.Join(d, b.name+".pid")); err != nil {
			fail(err)
		}
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		stopping()
		if out, _ := t.Exec(t.R, "birdc", "-s", sockR, "show", "protocols"); strings.Contains(out, "Established") {
			break
		}
	}
	time.Sleep(500 * time.Millisecond)
	step("BIRD in the router's namespace: the eBGP session to h2 runs over vrouter's own uplink port", t.R, "birdc", "-s", sockR, "show", "protocols")
	step("its routes in kernel table 100 (through the host interface)", t.R, "ip", "route", "show", "table", "100")
	t.Exec(t.H2, "ip", "addr", "add", "10.201.0.1/32", "dev", "lo")
	for _, c := range [][]string{{"show", "host-interfaces"}, {"show", "ip", "route", "10.201.0.1"}} {
		stopping()
		out, _ := t.Router.Console(c...)
		fmt.Printf("\n### vrouter console %s\n%s", strings.Join(c, " "), out)
	}
	step("h1 reaches a prefix learned over BGP", t.H1, "ping", "-c", "2", "-i", "0.2", "10.201.0.1")
	fmt.Println("\npart 3 done; removing the host-interface lab")
	mu.Lock()
	closeAll()
	mu.Unlock()
}
