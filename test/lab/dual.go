package lab

import (
	"fmt"
	"strings"
)

// DualTopo is the dual-stack lab:
//
//	h1 192.0.2.10, 2001:db8:1::10 --veth-- [p1]        [p2] --veth-- h2 198.51.100.10, 2001:db8:2::10
//	                                           vrouter       (p2 mtu 1280)
//	vm (SLAAC in 2001:db8:3::/64) ----TAP---- [vm]   (ra = true, dns 2001:db8::53)
//	g 2001:db8:1::77 (host-routed, published on net1) --veth-- [g]   (DualGuest only)
//
// The hosts run IPv6 with duplicate address detection off (no 1-2 s
// waits); the router's own namespace keeps IPv6 off, so only vrouter
// answers there. The VM's TAP is up with accept_ra: it configures itself
// from vrouter's advertisements.
type DualTopo struct {
	*Lab
	R, H1, H2, VM, G string
	TapDev           string
	Router           *Router
}

// DualConfig is the router configuration of the dual-stack lab (TAPDEV and
// SOCKET are replaced when it is written).
const DualConfig = `
[router]
name    = "dual"
console = "SOCKET"

[[port]]
name   = "p1"
driver = "afpacket"
device = "r-h1"

[[port]]
name   = "p2"
driver = "afpacket"
device = "r-h2"
mtu    = 1280

[[port]]
name   = "vm"
driver = "tap"
device = "TAPDEV"

[[network]]
name      = "net1"
links     = ["p1"]
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]

[[network]]
name      = "net2"
links     = ["p2"]
addresses = ["198.51.100.1/24", "2001:db8:2::1/64"]

[[network]]
name      = "vmnet"
links     = ["vm"]
addresses = ["10.10.0.1/24", "2001:db8:3::1/64"]
ra        = true
dns       = ["2001:db8::53"]

[[route]]
prefix = "2001:db8:99::/48"
type   = "unreachable"
`

// DualGuestConfig adds a host-routed guest on a veth (g's eth0) with one
// IPv6 address inside net1's prefix, published there (proxy NDP).
const DualGuestConfig = `
[[port]]
name   = "g"
driver = "afpacket"
device = "r-g"

[[hostroute]]
link      = "g"
addresses = ["2001:db8:1::77"]
publish   = ["net1"]
`

// EnableIPv6 turns IPv6 on in a lab namespace (NS turns it off) with
// duplicate address detection off, for devs too.
func (l *Lab) EnableIPv6(ns string, devs ...string) error {
	args := []string{"sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0",
		"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"}
	for _, d := range devs {
		args = append(args, "net.ipv6.conf."+d+".accept_dad=0", "net.ipv6.conf."+d+".disable_ipv6=0")
	}
	_, err := l.Exec(ns, args...)
	return err
}

// Dual builds the dual-stack lab and starts vrouter; with guest, the
// host-routed guest g too. On error everything made so far is removed.
func Dual(tag string, guest bool) (t *DualTopo, err error) { return DualEdit(tag, guest, nil) }

// DualEdit is Dual with the configuration passed through edit (with the
// lab's name prefix) before it is written.
func DualEdit(tag string, guest bool, edit func(cfg, prefix string) string) (t *DualTopo, err error) {
	l, err := New(tag)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	t = &DualTopo{Lab: l, TapDev: l.Prefix + "-tap"}
	if len(t.TapDev) > 15 {
		return nil, fmt.Errorf("tap name %q too long", t.TapDev)
	}
	names := []struct {
		p    *string
		name string
	}{{&t.R, "r"}, {&t.H1, "h1"}, {&t.H2, "h2"}, {&t.VM, "vm"}}
	if guest {
		names = append(names, struct {
			p    *string
			name string
		}{&t.G, "g"})
	}
	for _, n := range names {
		if *n.p, err = l.NS(n.name); err != nil {
			return nil, err
		}
		if n.name != "r" {
			if err = l.EnableIPv6(*n.p); err != nil {
				return nil, err
			}
		}
	}
	for _, v := range [][2]string{{t.H1, "r-h1"}, {t.H2, "r-h2"}, {t.G, "r-g"}} {
		if v[0] == "" {
			continue
		}
		if err = l.Veth(v[0], "eth0", t.R, v[1]); err != nil {
			return nil, err
		}
	}
	cmds := []struct{ ns, cmd string }{
		{t.H1, "ip addr add 192.0.2.10/24 dev eth0"},
		{t.H1, "ip route add default via 192.0.2.1"},
		{t.H1, "ip -6 addr add 2001:db8:1::10/64 dev eth0 nodad"},
		{t.H1, "ip -6 route add default via 2001:db8:1::1"},
		{t.H2, "ip addr add 198.51.100.10/24 dev eth0"},
		{t.H2, "ip route add default via 198.51.100.1"},
		{t.H2, "ip -6 addr add 2001:db8:2::10/64 dev eth0 nodad"},
		{t.H2, "ip -6 route add default via 2001:db8:2::1"},
	}
	cfg := DualConfig
	if guest {
		cmds = append(cmds, struct{ ns, cmd string }{t.G, "ip -6 addr add 2001:db8:1::77/128 dev eth0 nodad"},
			struct{ ns, cmd string }{t.G, "ip -6 route add default via fe80::1 dev eth0"})
		cfg += DualGuestConfig
	}
	for _, c := range cmds {
		if _, err = l.Exec(c.ns, strings.Fields(c.cmd)...); err != nil {
			return nil, err
		}
	}
	if edit != nil {
		cfg = edit(cfg, l.Prefix)
	}
	if t.Router, err = l.StartRouter(t.R, "dual", strings.ReplaceAll(cfg, "TAPDEV", t.TapDev)); err != nil {
		return nil, err
	}
	if _, err = l.Exec(t.R, "ip", "link", "set", t.TapDev, "netns", t.VM); err != nil {
		return nil, err
	}
	if err = l.EnableIPv6(t.VM, t.TapDev); err != nil {
		return nil, err
	}
	dev := "net.ipv6.conf." + t.TapDev + "."
	if _, err = l.Exec(t.VM, "sysctl", "-qw", dev+"accept_ra=1", dev+"autoconf=1", dev+"router_solicitation_interval=1"); err != nil {
		return nil, err
	}
	if _, err = l.Exec(t.VM, "ip", "link", "set", t.TapDev, "up"); err != nil {
		return nil, err
	}
	return t, nil
}
