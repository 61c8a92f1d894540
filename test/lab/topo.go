package lab

import (
	"fmt"
	"strings"
)

// Topo is the standard lab:
//
//	h1 (192.0.2.10) --veth-- [p1]        [p2] --veth-- h2 (198.51.100.10)
//	                             vrouter             (p2 mtu 1400)
//	vm (10.10.0.10) ----TAP----- [vm]
//
// vrouter runs in namespace R; h1, h2 and vm are hosts with the router as
// their default gateway. 203.0.113.0/24 is routed via 198.51.100.254, a next
// hop that never answers ARP.
type Topo struct {
	*Lab
	R, H1, H2, VM string
	TapDev        string
	Router        *Router
}

// StandardConfig is the router configuration of the standard lab; TAPDEV and
// SOCKET are replaced when it is written.
const StandardConfig = `
[router]
name    = "lab"
console = "SOCKET"
metrics = "127.0.0.1:9469"   # inside the router's namespace

[[port]]
name   = "p1"
driver = "afpacket"
device = "r-h1"

[[port]]
name   = "p2"
driver = "afpacket"
device = "r-h2"
mtu    = 1400

[[port]]
name   = "vm"
driver = "tap"
device = "TAPDEV"

[[network]]
name      = "net1"
links     = ["p1"]
addresses = ["192.0.2.1/24"]

[[network]]
name      = "net2"
links     = ["p2"]
addresses = ["198.51.100.1/24"]

[[network]]
name      = "vmnet"
links     = ["vm"]
addresses = ["10.10.0.1/24"]

[[route]]
prefix = "203.0.113.0/24"
via    = "198.51.100.254"
`

// Standard builds the standard lab and starts vrouter with StandardConfig
// plus extra (appended TOML). On error everything made so far is removed.
func Standard(tag, extra string) (t *Topo, err error) {
	return StandardDriver(tag, "afpacket", extra)
}

// StandardDriver is Standard with the two veth ports (p1, p2) opened by
// driver ("afpacket" or "afxdp").
func StandardDriver(tag, driver, extra string) (t *Topo, err error) {
	return StandardEdit(tag, driver, func(cfg, _ string) string { return cfg + extra })
}

// StandardEdit is StandardDriver with the configuration passed through edit
// (with the lab's name prefix, for names of its own) before it is written.
func StandardEdit(tag, driver string, edit func(cfg, prefix string) string) (t *Topo, err error) {
	l, err := New(tag)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	t = &Topo{Lab: l, TapDev: l.Prefix + "-tap"}
	if len(t.TapDev) > 15 {
		return nil, fmt.Errorf("tap name %q too long", t.TapDev)
	}
	for _, n := range []struct {
		p    *string
		name string
	}{{&t.R, "r"}, {&t.H1, "h1"}, {&t.H2, "h2"}, {&t.VM, "vm"}} {
		if *n.p, err = l.NS(n.name); err != nil {
			return nil, err
		}
	}
	if err = l.Veth(t.H1, "eth0", t.R, "r-h1"); err != nil {
		return nil, err
	}
	if err = l.Veth(t.H2, "eth0", t.R, "r-h2"); err != nil {
		return nil, err
	}
	cmds := []struct {
		ns   string
		args string
	}{
		{t.H1, "ip addr add 192.0.2.10/24 dev eth0"},
		{t.H1, "ip route add default via 192.0.2.1"},
		{t.H2, "ip addr add 198.51.100.10/24 dev eth0"},
		{t.H2, "ip route add default via 198.51.100.1"},
	}
	for _, c := range cmds {
		if _, err = l.Exec(c.ns, strings.Fields(c.args)...); err != nil {
			return nil, err
		}
	}
	cfg := strings.ReplaceAll(StandardConfig, "TAPDEV", t.TapDev)
	cfg = edit(strings.ReplaceAll(cfg, `driver = "afpacket"`, `driver = "`+driver+`"`), l.Prefix)
	if t.Router, err = l.StartRouter(t.R, "lab", cfg); err != nil {
		return nil, err
	}
	// The TAP's kernel side is the VM's wire: move it into the VM namespace.
	if _, err = l.Exec(t.R, "ip", "link", "set", t.TapDev, "netns", t.VM); err != nil {
		return nil, err
	}
	for _, c := range []string{
		"ip link set " + t.TapDev + " up",
		"ip addr add 10.10.0.10/24 dev " + t.TapDev,
		"ip route add default via 10.10.0.1",
	} {
		if _, err = l.Exec(t.VM, strings.Fields(c)...); err != nil {
			return nil, err
		}
	}
	return t, nil
}
