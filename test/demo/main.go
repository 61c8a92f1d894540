// Command demo builds the standard lab in network namespaces, runs vrouter
// on it, shows ping, traceroute and iperf3 through it and the console's
// view, and removes everything. `make demo` runs it (as root).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"vrouter/test/lab"
)

func main() {
	if os.Getuid() != 0 {
		fmt.Fprintln(os.Stderr, "demo: needs root (network namespaces, AF_PACKET, TAP)")
		os.Exit(1)
	}
	t, err := lab.Standard("demo", "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; t.Close(); os.Exit(1) }()
	defer t.Close()

	fmt.Println(`vrouter demo lab (all inside network namespaces, removed at the end):

  h1 192.0.2.10 --veth-- [p1 afpacket] vrouter [p2 afpacket, mtu 1400] --veth-- h2 198.51.100.10
  vm 10.10.0.10 --TAP--- [vm tap]`)
	step := func(title, ns string, args ...string) {
		fmt.Printf("\n### %s\n$ %s\n", title, strings.Join(args, " "))
		out, err := t.Exec(ns, args...)
		fmt.Print(out)
		if err != nil && !strings.Contains(err.Error(), "exit status") {
			fmt.Println("error:", err)
		}
	}
	step("ping h1 -> h2 through two AF_PACKET ports", t.H1, "ping", "-c", "3", "-i", "0.2", "198.51.100.10")
	step("ping h1 -> vm through the TAP port", t.H1, "ping", "-c", "3", "-i", "0.2", "10.10.0.10")
	step("traceroute h1 -> h2: the router is hop 1", t.H1, "traceroute", "-n", "-q", "1", "-w", "1", "198.51.100.10")
	step("no route: Destination Net Unreachable", t.H1, "ping", "-c", "1", "-W", "1", "10.99.0.1")
	step("1478-byte packets without DF over the 1400-byte port: fragmented by the router and answered", t.H1, "ping", "-c", "2", "-i", "0.2", "-M", "dont", "-s", "1450", "198.51.100.10")
	step("the same with DF: Frag needed (mtu = 1400)", t.H1, "ping", "-c", "1", "-W", "1", "-M", "do", "-s", "1450", "198.51.100.10")
	if _, err := t.Exec(t.H2, "iperf3", "-s", "-D", "-1"); err == nil {
		step("iperf3 TCP h1 -> h2 (default offloads on the hosts' veths)", t.H1, "iperf3", "-c", "198.51.100.10", "-t", "3", "-f", "m")
	}
	for _, c := range [][]string{{"show", "interfaces"}, {"show", "ip", "route"}, {"show", "arp"}, {"show", "stats"}} {
		out, _ := t.Router.Console(c...)
		fmt.Printf("\n### vrouter console %s\n%s", strings.Join(c, " "), out)
	}
	fmt.Println("\ndemo done; removing the lab")
}
