package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Tcpdump starts `tcpdump -e -n -l -c count` on iface in ns (bounded to
// 15 s) and waits until it listens. The returned function waits for it to
// finish (count packets or the time limit) and returns what it printed.
func (l *Lab) Tcpdump(ns, iface string, count int, filter ...string) (func() string, error) {
	name := fmt.Sprintf("tcpdump-%s-%s-%d.log", ns, iface, time.Now().UnixNano())
	args := append([]string{"timeout", "15", "tcpdump", "-e", "-n", "-l", "-c", strconv.Itoa(count), "-i", iface}, filter...)
	cmd, err := l.Start(ns, name, args...)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(l.Dir, name)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), "listening on") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return func() string {
		cmd.Wait()
		b, _ := os.ReadFile(path)
		return string(b)
	}, nil
}

// MoveTAP moves the kernel side of a TAP the router created in fromNS into
// toNS (it becomes the VM's interface) and configures addr (CIDR) and a
// default route via gw on it (gw "" = none).
func (l *Lab) MoveTAP(fromNS, dev, toNS, addr, gw string) error {
	if _, err := l.Exec(fromNS, "ip", "link", "set", dev, "netns", toNS); err != nil {
		return err
	}
	cmds := [][]string{{"ip", "link", "set", dev, "up"}, {"ip", "addr", "add", addr, "dev", dev}}
	if gw != "" {
		cmds = append(cmds, []string{"ip", "route", "add", "default", "via", gw})
	}
	for _, c := range cmds {
		if _, err := l.Exec(toNS, c...); err != nil {
			return err
		}
	}
	return nil
}

// MAC returns the MAC address of dev in ns.
func (l *Lab) MAC(ns, dev string) (string, error) {
	out, err := l.Exec(ns, "cat", "/sys/class/net/"+dev+"/address")
	return strings.TrimSpace(out), err
}
