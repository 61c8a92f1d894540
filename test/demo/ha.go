package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"vrouter/test/lab"
)

// haScene is part 6: a redundant pair. Two vrouters with keepalived
// (VRRPv3, 0.1 s adverts) on their host interfaces keep their conntrack
// tables in step; a TCP stream through SNAT and one to a floating IP run
// while the master is killed with SIGKILL, and go on through the backup.
func haScene() {
	for _, tool := range []string{"keepalived", "/usr/bin/python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Printf("\npart 6 (high availability) skipped: %s missing (make deps)\n", tool)
			return
		}
	}
	p := build(func() (*lab.HAPair, *lab.Lab, error) {
		p, err := lab.NewHAPair("demo")
		if err != nil {
			return nil, nil, err
		}
		return p, p.Lab, nil
	})
	fmt.Print(`
========================================================================
Part 6: a redundant pair. keepalived (VRRPv3, adverts every 0.1 s) on each
router's inside host interface holds the VMs' gateway 10.1.1.1 and tells
its vrouter "ha state master|backup" from its notify script; the master
streams its sessions (tuples, NAT mapping, TCP state) to the backup.

  in 10.1.1.5 (floating IP 203.0.113.50), 10.1.1.6 (SNAT to 203.0.113.10)
     |                      |
   r1 10.1.1.2           r2 10.1.1.3          (bridged inside and outside segments)
     |                      |
  out 203.0.113.100
`)
	check := func(err error) {
		if err != nil {
			fail(err)
		}
	}
	console := func(i int, args ...string) {
		stopping()
		out, err := p.R[i].Router.Console(args...)
		fmt.Printf("\n$ vrouter console (%s) %s\n%s", p.R[i].Name, strings.Join(args, " "), out)
		if err != nil {
			fmt.Println("error:", err)
		}
	}
	mu.Lock()
	check(p.StartRouter(0))
	check(p.StartRouter(1))
	check(p.StartKeepalived(0, 150))
	mu.Unlock()
	_, err := p.WaitState(0, "master", 10*time.Second)
	check(err)
	mu.Lock()
	check(p.StartKeepalived(1, 100))
	mu.Unlock()
	time.Sleep(time.Second)
	console(0, "show", "ha")
	console(1, "show", "ha")

	fmt.Println("\n### two TCP streams: out's server read by 10.1.1.6 through SNAT, and 10.1.1.5's server read by out through the floating IP")
	mu.Lock()
	st, err := p.StartStreams()
	mu.Unlock()
	check(err)
	time.Sleep(2 * time.Second)
	b, _ := os.ReadFile(st.SNATLog)
	fmt.Printf("the server sees the SNAT client as %s\n", strings.TrimSpace(string(b)))
	console(1, "show", "conntrack")

	fmt.Println("\n### kill -9 r1's vrouter and keepalived")
	killed := time.Now()
	p.Kill(0)
	_, err = p.WaitState(1, "master", 5*time.Second)
	check(err)
	fmt.Printf("r2 is master %v later\n", time.Since(killed).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	console(1, "show", "ha")
	fmt.Println("\n### a new connection through r2")
	if err := p.Once(false); err != nil {
		fmt.Println("error:", err)
	} else {
		fmt.Println("ok")
	}
	snat, floating, err := st.Stop()
	check(err)
	for _, s := range []struct {
		name string
		r    lab.StreamResult
	}{{"SNAT", snat}, {"floating IP", floating}} {
		e := "none"
		if s.r.Error != "" {
			e = s.r.Error
		}
		fmt.Printf("%s stream: %d KiB received, longest silence %.2f s (the failover), error: %s\n", s.name, s.r.Bytes/1024, s.r.MaxGap, e)
	}
	fmt.Println("part 6 done; removing the pair")
	mu.Lock()
	closeAll()
	mu.Unlock()
}
