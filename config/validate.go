package config

import (
	"fmt"
	"net/netip"
)

// validate runs the checks that relate several values to each other. Values
// that failed their own checks are zero and skipped here, so one mistake
// gives one message.
func (d *decoder) validate() {
	c := d.c

	// ports: unique names and devices
	portAt := map[string]int{}
	devAt := map[string]int{}
	for i, p := range c.Ports {
		t := d.portT[i]
		if p.Name != "" {
			if j, dup := portAt[p.Name]; dup {
				d.errf(vpos(t, "name"), "duplicate port name %q (first at line %d)", p.Name, vpos(d.portT[j], "name").Line)
			} else {
				portAt[p.Name] = i
			}
		}
		if p.Device != "" && p.Driver != "pipe" {
			if j, dup := devAt[p.Device]; dup {
				d.errf(vpos(t, "device"), "device %q is already used by port %q (line %d)", p.Device, c.Ports[j].Name, c.Ports[j].Pos.Line)
			} else {
				devAt[p.Device] = i
			}
		}
	}

	// links: each one in at most one network or hostroute
	type owner struct {
		what string
		line int
	}
	linkOwner := map[Link]owner{}
	useLink := func(l Link, pos Pos, o owner) {
		if l.Port == "" {
			return // invalid, already reported
		}
		if _, ok := portAt[l.Port]; !ok {
			d.errf(pos, "link %q: no port named %q", l.String(), l.Port)
			return
		}
		if prev, dup := linkOwner[l]; dup {
			d.errf(pos, "link %q is already used by %s (line %d)", l.String(), prev.what, prev.line)
			return
		}
		linkOwner[l] = o
	}

	// networks
	netAt := map[string]int{}
	var addrs []addrOwner
	for i, n := range c.Networks {
		t := d.netT[i]
		if n.Name != "" {
			if j, dup := netAt[n.Name]; dup {
				d.errf(vpos(t, "name"), "duplicate network name %q (first at line %d)", n.Name, vpos(d.netT[j], "name").Line)
			} else {
				netAt[n.Name] = i
			}
		}
		for k, l := range n.Links {
			useLink(l, epos(t, "links", k), owner{fmt.Sprintf("network %q", n.Name), n.Pos.Line})
		}
		for k, a := range n.Addresses {
			if !a.IsValid() {
				continue
			}
			addrs = d.claimAddr(addrs, addrOwner{net: i, pos: epos(t, "addresses", k), pfx: a, name: n.Name})
		}
	}

	// the network whose subnet holds a (and isn't a's own address) or -1
	subnetOf := func(a netip.Addr, only int) int {
		for i, n := range c.Networks {
			if only >= 0 && i != only {
				continue
			}
			for _, p := range n.Addresses {
				if p.IsValid() && p.Masked().Contains(a) {
					return i
				}
			}
		}
		return -1
	}
	ownAddr := func(a netip.Addr) int {
		for i, n := range c.Networks {
			for _, p := range n.Addresses {
				if p.IsValid() && p.Addr() == a {
					return i
				}
			}
		}
		return -1
	}
	knownNet := func(name string, pos Pos, what string) int {
		if name == "" {
			return -1
		}
		i, ok := netAt[name]
		if !ok {
			d.errf(pos, "%s %q is not a network", what, name)
			return -1
		}
		return i
	}

	// hostroutes
	hrAddr := map[netip.Addr]int{}
	for i, h := range c.HostRoutes {
		t := d.hrT[i]
		useLink(h.Link, vpos(t, "link"), owner{"a hostroute", h.Pos.Line})
		for k, a := range h.Addresses {
			if !a.IsValid() {
				continue
			}
			if j, dup := hrAddr[a]; dup {
				d.errf(epos(t, "addresses", k), "address %s is already routed to the hostroute at line %d", a, c.HostRoutes[j].Pos.Line)
				continue
			}
			hrAddr[a] = i
			if n := ownAddr(a); n >= 0 {
				d.errf(epos(t, "addresses", k), "hostroute address %s is the router's own address on network %q", a, c.Networks[n].Name)
			}
		}
		for k, name := range h.Publish {
			knownNet(name, epos(t, "publish", k), "hostroute publish")
		}
	}

	// routes
	routeAt := map[netip.Prefix]int{}
	for i := range c.Routes {
		r := &c.Routes[i]
		t := d.routeT[i]
		ni := knownNet(r.Network, vpos(t, "network"), "route network")
		if r.Prefix.IsValid() {
			if j, dup := routeAt[r.Prefix]; dup {
				d.errf(vpos(t, "prefix"), "duplicate route %s (first at line %d)", r.Prefix, c.Routes[j].Pos.Line)
			} else {
				routeAt[r.Prefix] = i
			}
		}
		if !d.routeKeys(t, r, "a.b.c.d") {
			continue
		}
		pos := vpos(t, "via")
		if n := ownAddr(r.Via); n >= 0 {
			d.errf(pos, "via %s is the router's own address on network %q", r.Via, c.Networks[n].Name)
			continue
		}
		if r.Network != "" {
			if ni >= 0 && subnetOf(r.Via, ni) < 0 {
				d.errf(pos, "via %s is not inside network %q", r.Via, r.Network)
			}
		} else if subnetOf(r.Via, -1) < 0 {
			d.errf(pos, "via %s is not on any network (no network address covers it)", r.Via)
		}
	}

	// static ARP
	type arpKey struct {
		net string
		ip  netip.Addr
	}
	arpAt := map[arpKey]int{} // line of the first entry
	checkARP := func(a ARPEntry, t *table) int {
		ni := knownNet(a.Network, vpos(t, "network"), "arp network")
		if a.IP.IsValid() && a.Network != "" {
			k := arpKey{a.Network, a.IP}
			if line, dup := arpAt[k]; dup {
				d.errf(vpos(t, "ip"), "duplicate [[arp]] entry for %s on network %q (first at line %d)", a.IP, a.Network, line)
			} else {
				arpAt[k] = a.Pos.Line
			}
		}
		return ni
	}
	for i, a := range c.ARP {
		checkARP(a, d.arpT[i])
	}
	for i, a := range c.ARP6 {
		t := d.arp6T[i]
		ni := checkARP(a, t)
		switch {
		case a.IP.IsUnspecified() || a.IP.IsLoopback() || a.IP.IsMulticast():
			d.errf(vpos(t, "ip"), "arp.ip %s is not a unicast address", a.IP)
		case a.Publish && a.IP.IsLinkLocalUnicast():
			d.errf(vpos(t, "ip"), "arp.ip %s: publish (proxy NDP) takes a global address, not a link-local one", a.IP)
		case ni >= 0 && len(c.Networks[ni].Addresses6) == 0:
			d.errf(vpos(t, "network"), "arp ip %s: network %q has no IPv6 address", a.IP, a.Network)
		}
	}

	// SNAT
	for i := range c.NAT.SNAT {
		s := &c.NAT.SNAT[i]
		t := d.snatT[i]
		ni := knownNet(s.Out, vpos(t, "out"), "nat out")
		if ni < 0 || t.get("to") != nil {
			continue
		}
		var first netip.Addr
		for _, p := range c.Networks[ni].Addresses {
			if p.IsValid() {
				first = p.Addr()
				break
			}
		}
		if !first.IsValid() {
			d.errf(vpos(t, "out"), "nat out %q has no address; set to = \"a.b.c.d\"", s.Out)
			continue
		}
		s.To = AddrRange{First: first, Last: first}
	}

	// floating IPs
	extAt := map[netip.Addr]int{}
	intAt := map[netip.Addr]int{}
	for i, f := range c.NAT.Floating {
		t := d.floatT[i]
		if f.External.IsValid() {
			pos := vpos(t, "external")
			if j, dup := extAt[f.External]; dup {
				d.errf(pos, "duplicate floating IP %s (first at line %d)", f.External, c.NAT.Floating[j].Pos.Line)
			} else {
				extAt[f.External] = i
				if n := ownAddr(f.External); n >= 0 {
					d.errf(pos, "floating IP %s is the router's own address on network %q", f.External, c.Networks[n].Name)
				} else if subnetOf(f.External, -1) < 0 {
					d.errf(pos, "floating IP %s is outside every network", f.External)
				}
			}
		}
		if f.Internal.IsValid() {
			if j, dup := intAt[f.Internal]; dup {
				d.errf(vpos(t, "internal"), "internal address %s already has floating IP %s (line %d)", f.Internal, c.NAT.Floating[j].External, c.NAT.Floating[j].Pos.Line)
			} else {
				intAt[f.Internal] = i
			}
		}
	}

	// port forwards
	type fwdKey struct {
		proto string
		ext   netip.AddrPort
	}
	fwdAt := map[fwdKey]int{}
	for i, f := range c.NAT.Forward {
		if f.Proto == "" || !f.External.IsValid() {
			continue
		}
		k := fwdKey{f.Proto, f.External}
		if j, dup := fwdAt[k]; dup {
			d.errf(vpos(d.fwdT[i], "external"), "duplicate port forward %s %s (first at line %d)", f.Proto, f.External, c.NAT.Forward[j].Pos.Line)
		} else {
			fwdAt[k] = i
		}
	}
	d.validateFilters()
	d.validateHosts()
	d.validateHA()
}

// routeKeys checks the keys of route r (table t) against its type: a
// refusing route takes no via or network, a unicast one needs one of them.
// It reports whether r is a well-formed route via a gateway, which the
// caller checks next; gw is an example gateway for the error.
func (d *decoder) routeKeys(t *table, r *Route, gw string) bool {
	if r.Type == "" {
		return false // invalid type, already reported
	}
	if r.Type != RouteUnicast {
		for _, k := range []string{"via", "network"} {
			if e := t.get(k); e != nil {
				d.errf(e.keyPos, "a %s route takes no %s", r.Type, k)
			}
		}
		return false
	}
	if t.get("via") == nil && t.get("network") == nil {
		d.errf(t.pos, "[[route]] needs via = %q or network = \"...\" (or a type like blackhole)", gw)
		return false
	}
	return r.Via.IsValid()
}

// addrOwner is a router address as the checks for duplicate and
// overlapping addresses see it: its network (index and name), position
// and prefix.
type addrOwner struct {
	net  int
	pos  Pos
	pfx  netip.Prefix
	name string
}

// claimAddr checks address a against those claimed before it (one
// address twice, or overlapping prefixes of two networks, is an error)
// and returns claimed with a added.
func (d *decoder) claimAddr(claimed []addrOwner, a addrOwner) []addrOwner {
	for _, o := range claimed {
		if o.pfx.Addr() == a.pfx.Addr() {
			d.errf(a.pos, "duplicate address %s (also on network %q, line %d)", a.pfx.Addr(), o.name, o.pos.Line)
			return append(claimed, a)
		}
	}
	for _, o := range claimed {
		if o.net != a.net && o.pfx.Overlaps(a.pfx) {
			d.errf(a.pos, "overlapping addresses in two networks: %s (network %q) overlaps %s (network %q, line %d)", a.pfx, a.name, o.pfx, o.name, o.pos.Line)
			break
		}
	}
	return append(claimed, a)
}
