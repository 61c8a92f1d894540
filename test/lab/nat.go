package lab

import (
	"strings"
)

// NATTopo is the NAT lab, the virtual router of a cloud tenant network:
//
//	in1 10.1.1.5 (floating 203.0.113.50) --[pin1]
//	                                          vrouter --[pup] 203.0.113.1 -- up (Linux router) 203.0.113.254
//	in2 10.1.2.6, 10.1.2.7 (SNAT; forward) --[pin2]                        198.51.100.1 --(mtu 1300)-- srv 198.51.100.10, .20
//
// vrouter runs in namespace R; in1 and in2 are the inside hosts (VMs), up is
// a plain Linux router (ip_forward, no NAT) and srv an outside host.
type NATTopo struct {
	*Lab
	R, In1, In2, Up, Srv string
	Router               *Router
}

// NATConfig is the router configuration of the NAT lab; SOCKET is replaced
// when it is written.
const NATConfig = `
[router]
name    = "nat"
console = "SOCKET"

[[port]]
name   = "pup"
driver = "afpacket"
device = "r-up"

[[port]]
name   = "pin1"
driver = "afpacket"
device = "r-in1"

[[port]]
name   = "pin2"
driver = "afpacket"
device = "r-in2"

[[network]]
name      = "public"
links     = ["pup"]
addresses = ["203.0.113.1/24"]

[[network]]
name      = "inside1"
links     = ["pin1"]
addresses = ["10.1.1.1/24"]

[[network]]
name      = "inside2"
links     = ["pin2"]
addresses = ["10.1.2.1/24"]

[[route]]
prefix = "0.0.0.0/0"
via    = "203.0.113.254"

[[nat.snat]]
source = "10.1.0.0/16"
out    = "public"
to     = "203.0.113.1"

[[nat.floating]]
external = "203.0.113.50"
internal = "10.1.1.5"

[[nat.forward]]
proto    = "tcp"
external = "203.0.113.1:8080"
internal = ["10.1.2.6:80", "10.1.2.7:80"]

[conntrack]
max = 65536
`

// FilterRules is the stateful filter of the NAT lab's VM in1 behind its
// floating IP (FilterConfig): ssh and http open, https rejected, the admin
// port 8080 from 198.51.100.20 only, ping; everything else dropped.
const FilterRules = `
[[filter]]
name    = "vm-in"
default = "drop"

[[filter.rule]]
action      = "accept"
proto       = "tcp"
destination = ["10.1.1.5"]
dport       = "22,80"

[[filter.rule]]
action = "reject"
proto  = "tcp"
dport  = "443"

[[filter.rule]]
action = "accept"
proto  = "tcp"
source = ["198.51.100.20"]
dport  = "8080"

[[filter.rule]]
action    = "accept"
proto     = "icmp"
icmp_type = 8
`

// FilterConfig is NATConfig with FilterRules as the filter_out of in1's
// network (what the router sends to the VM) and metrics on
// 127.0.0.1:9469 in the router's namespace.
var FilterConfig = strings.Replace(strings.Replace(NATConfig, `addresses = ["10.1.1.1/24"]`,
	`addresses = ["10.1.1.1/24"]
filter_out = "vm-in"`, 1), `console = "SOCKET"`, `console = "SOCKET"
metrics = "127.0.0.1:9469"`, 1) + FilterRules

// NAT builds the NAT lab and starts vrouter (console name "nat") with
// NATConfig. On error everything made so far is removed.
func NAT(tag string) (n *NATTopo, err error) { return NATDriver(tag, "afpacket") }

// NATDriver is NAT with the router's ports on driver (afpacket or afxdp).
func NATDriver(tag, driver string) (n *NATTopo, err error) {
	return NATConfigured(tag, strings.ReplaceAll(NATConfig, `driver = "afpacket"`, `driver = "`+driver+`"`))
}

// NATConfigured is the NAT lab with vrouter running cfg (NATConfig or a
// variant of it: the same ports, devices and addresses).
func NATConfigured(tag, cfg string) (n *NATTopo, err error) {
	l, err := New(tag)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	n = &NATTopo{Lab: l}
	for _, x := range []struct {
		p    *string
		name string
	}{{&n.R, "r"}, {&n.In1, "in1"}, {&n.In2, "in2"}, {&n.Up, "up"}, {&n.Srv, "srv"}} {
		if *x.p, err = l.NS(x.name); err != nil {
			return nil, err
		}
	}
	for _, v := range [][4]string{{n.In1, "eth0", n.R, "r-in1"}, {n.In2, "eth0", n.R, "r-in2"}, {n.Up, "eth0", n.R, "r-up"}, {n.Up, "eth1", n.Srv, "eth0"}} {
		if err = l.Veth(v[0], v[1], v[2], v[3]); err != nil {
			return nil, err
		}
	}
	cmds := [][2]string{
		{n.In1, "ip addr add 10.1.1.5/24 dev eth0"}, {n.In1, "ip route add default via 10.1.1.1"},
		{n.In2, "ip addr add 10.1.2.6/24 dev eth0"}, {n.In2, "ip addr add 10.1.2.7/24 dev eth0"},
		{n.In2, "ip route add default via 10.1.2.1"},
		{n.Up, "ip addr add 203.0.113.254/24 dev eth0"}, {n.Up, "ip addr add 198.51.100.1/24 dev eth1"},
		{n.Up, "ip link set eth1 mtu 1300"}, {n.Up, "sysctl -qw net.ipv4.ip_forward=1"},
		{n.Srv, "ip link set eth0 mtu 1300"},
		{n.Srv, "ip addr add 198.51.100.10/24 dev eth0"}, {n.Srv, "ip addr add 198.51.100.20/24 dev eth0"},
		{n.Srv, "ip route add default via 198.51.100.1"},
	}
	for _, c := range cmds {
		if _, err = l.Exec(c[0], strings.Fields(c[1])...); err != nil {
			return nil, err
		}
	}
	if n.Router, err = l.StartRouter(n.R, "nat", cfg); err != nil {
		return nil, err
	}
	return n, nil
}
