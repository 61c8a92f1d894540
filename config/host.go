package config

import "fmt"

// This file holds the host interface keys of a [[network]]: `host`, the
// name of the kernel TAP that mirrors the network into the router's
// namespace for the control-plane daemons (BIRD, keepalived, dnsmasq,
// sshd), and `host_punt_rate`, how many packets per second the router
// hands to it at most. The router (router/hostif.go) and the Linux side
// (router/hostif) read them.

// DefaultHostPuntRate is the default host_punt_rate: packets per second a
// network hands to its host interface (enough for BGP, OSPF, VRRP, DHCP and
// DNS of a few thousand guests; a full-table BGP session is faster with
// more).
const DefaultHostPuntRate = 10000

// MaxHostPuntRate bounds host_punt_rate.
const MaxHostPuntRate = 10_000_000

// hostKey decodes the `host` and `host_punt_rate` keys of a [[network]].
func (d *decoder) hostKey(n *Network, key string, v *value, p string) {
	switch key {
	case "host":
		s, ok := d.str(v, p)
		if !ok {
			return
		}
		if err := validIfName(s); err != nil {
			d.errf(v.pos, "network.host: %v", hostNameError(err, s))
			return
		}
		n.Host = s
	case "host_punt_rate":
		if r, ok := d.intIn(v, p, 1, MaxHostPuntRate); ok {
			n.HostPuntRate = r
		}
	}
}

// hostNameError rewords validIfName's "device name" as an interface name.
func hostNameError(err error, s string) error {
	if len(s) > MaxIfNameLen {
		return fmt.Errorf("host interface name %q is longer than %d characters (IFNAMSIZ)", s, MaxIfNameLen)
	}
	return err
}

// validateHosts checks the host interfaces against each other and the
// ports: a name is used by one network only, is no port's device, and its
// network has an address (the host interface mirrors the router's
// addresses; a network without one has nothing to hand to it).
// host_punt_rate without host is a mistake too.
func (d *decoder) validateHosts() {
	c := d.c
	devs := map[string]int{}
	for i, p := range c.Ports {
		if p.Device != "" && p.Driver != "pipe" {
			devs[p.Device] = i
		}
	}
	hostAt := map[string]int{}
	for i, n := range c.Networks {
		t := d.netT[i]
		if n.Host == "" {
			if e := t.get("host_punt_rate"); e != nil && t.get("host") == nil {
				d.errf(e.keyPos, "host_punt_rate needs host = \"NAME\" on network %q", n.Name)
			}
			continue
		}
		pos := vpos(t, "host")
		if j, dup := hostAt[n.Host]; dup {
			d.errf(pos, "host interface %q is already taken by network %q (line %d)", n.Host, c.Networks[j].Name, c.Networks[j].Pos.Line)
			continue
		}
		hostAt[n.Host] = i
		if j, ok := devs[n.Host]; ok {
			d.errf(pos, "host interface %q is already taken: it is the device of port %q (line %d)", n.Host, c.Ports[j].Name, c.Ports[j].Pos.Line)
			continue
		}
		if t.get("addresses") == nil || len(n.Addresses) == 0 {
			d.errf(pos, "network %q: host needs at least one address in addresses (the host interface carries the router's addresses)", n.Name)
		}
	}
}

// applyHostDefaults sets the punt rate of every network with a host
// interface that has none.
func (c *Config) applyHostDefaults() {
	for i := range c.Networks {
		if n := &c.Networks[i]; n.Host != "" && n.HostPuntRate <= 0 {
			n.HostPuntRate = DefaultHostPuntRate
		}
	}
}
