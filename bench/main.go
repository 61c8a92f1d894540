// Command bench is the system benchmark: the same two-host topology in
// network namespaces, forwarded once by the Linux kernel (ip_forward) and
// once by vrouter, measured with iperf3 (TCP throughput and small-packet
// UDP rate) with the hosts' offloads on (default) and off. It prints the
// figures side by side with the ratio vrouter/kernel. Absolute numbers on a
// shared 2-core machine are noisy; the ratio from one run is the result.
//
//	go run ./bench [-t 3] [-out bench/results.txt]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"vrouter/test/lab"
)

const routerCfg = `
[router]
name    = "bench"
console = "SOCKET"

[[port]]
name   = "p1"
driver = "afpacket"
device = "r-h1"

[[port]]
name   = "p2"
driver = "afpacket"
device = "r-h2"

[[network]]
name      = "net1"
links     = ["p1"]
addresses = ["192.0.2.1/24"]

[[network]]
name      = "net2"
links     = ["p2"]
addresses = ["198.51.100.1/24"]
`

type result struct {
	tcpMbps, udpPps float64
}

func main() {
	secs := flag.Int("t", 3, "seconds per iperf3 run")
	outFile := flag.String("out", "", "also write the results to this file")
	flag.Parse()
	if os.Getuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: needs root")
		os.Exit(1)
	}
	var w io.Writer = os.Stdout
	if *outFile != "" {
		f, err := os.Create(*outFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		w = io.MultiWriter(os.Stdout, f)
	}
	fmt.Fprintf(w, "system benchmark %s, %d s per run, h1 -> router -> h2 over veth\n", time.Now().UTC().Format(time.RFC3339), *secs)
	fmt.Fprintf(w, "%-14s %-10s %14s %14s\n", "offloads", "router", "TCP Mbit/s", "UDP64 pkt/s")
	for _, offl := range []bool{true, false} {
		k, err := measure(false, offl, *secs)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench kernel:", err)
			os.Exit(1)
		}
		v, err := measure(true, offl, *secs)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench vrouter:", err)
			os.Exit(1)
		}
		name := map[bool]string{true: "on (default)", false: "off"}[offl]
		fmt.Fprintf(w, "%-14s %-10s %14.0f %14.0f\n", name, "kernel", k.tcpMbps, k.udpPps)
		fmt.Fprintf(w, "%-14s %-10s %14.0f %14.0f\n", name, "vrouter", v.tcpMbps, v.udpPps)
		fmt.Fprintf(w, "%-14s %-10s %14.2f %14.2f\n", name, "ratio", v.tcpMbps/k.tcpMbps, v.udpPps/k.udpPps)
	}
}

func measure(vrouter, offloads bool, secs int) (res result, err error) {
	l, err := lab.New("b")
	if err != nil {
		return res, err
	}
	defer l.Close()
	var r, h1, h2 string
	if r, err = l.NS("r"); err != nil {
		return
	}
	if h1, err = l.NS("h1"); err != nil {
		return
	}
	if h2, err = l.NS("h2"); err != nil {
		return
	}
	if err = l.Veth(h1, "eth0", r, "r-h1"); err != nil {
		return
	}
	if err = l.Veth(h2, "eth0", r, "r-h2"); err != nil {
		return
	}
	cmds := [][]string{
		{h1, "ip addr add 192.0.2.10/24 dev eth0"}, {h1, "ip route add default via 192.0.2.1"},
		{h2, "ip addr add 198.51.100.10/24 dev eth0"}, {h2, "ip route add default via 198.51.100.1"},
	}
	if !vrouter {
		cmds = append(cmds, []string{r, "ip addr add 192.0.2.1/24 dev r-h1"}, []string{r, "ip addr add 198.51.100.1/24 dev r-h2"},
			[]string{r, "sysctl -qw net.ipv4.ip_forward=1"})
	}
	if !offloads {
		for _, ns := range []string{h1, h2} {
			cmds = append(cmds, []string{ns, "ethtool -K eth0 tso off gso off gro off tx off rx off"})
		}
		for _, d := range []string{"r-h1", "r-h2"} {
			cmds = append(cmds, []string{r, "ethtool -K " + d + " tso off gso off gro off tx off rx off"})
		}
	}
	for _, c := range cmds {
		if _, err = l.Exec(c[0], strings.Fields(c[1])...); err != nil {
			return
		}
	}
	if vrouter {
		if _, err = l.StartRouter(r, "bench", routerCfg); err != nil {
			return
		}
	}
	if _, err = l.Exec(h1, "ping", "-c", "2", "-i", "0.2", "-W", "2", "198.51.100.10"); err != nil {
		return
	}
	if res.tcpMbps, err = iperf(l, h1, h2, secs, false); err != nil {
		return
	}
	res.udpPps, err = iperf(l, h1, h2, secs, true)
	return
}

var (
	tcpRe = regexp.MustCompile(`([\d.]+) ([KMG])bits/sec\s+\d*\s*receiver`)
	udpRe = regexp.MustCompile(`(\d+)/(\d+) \([\d.e+-]+%\)\s+receiver`)
)

func iperf(l *lab.Lab, h1, h2 string, secs int, udp bool) (float64, error) {
	if _, err := l.Exec(h2, "iperf3", "-s", "-D", "-1"); err != nil {
		return 0, err
	}
	time.Sleep(300 * time.Millisecond)
	args := []string{"iperf3", "-c", "198.51.100.10", "-t", strconv.Itoa(secs), "-f", "m"}
	if udp {
		args = append(args, "-u", "-b", "0", "-l", "64")
	}
	out, err := l.ExecTimeout(h1, time.Duration(secs+20)*time.Second, args...)
	if err != nil {
		return 0, err
	}
	if udp {
		m := udpRe.FindStringSubmatch(out)
		if m == nil {
			return 0, fmt.Errorf("no UDP result:\n%s", out)
		}
		total, _ := strconv.ParseFloat(m[2], 64)
		lost, _ := strconv.ParseFloat(m[1], 64)
		return (total - lost) / float64(secs), nil
	}
	m := tcpRe.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no TCP result:\n%s", out)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	switch m[2] {
	case "G":
		v *= 1000
	case "K":
		v /= 1000
	}
	return v, nil
}
