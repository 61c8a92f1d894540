package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// IPv6 in the file: IPv6 prefixes in a network's `addresses` (kept in
// Network.Addresses6), `ra`, `dns` and `link_local` on a network, and
// [[route]]s whose prefix is IPv6 (Config.Routes6). The IPv4 fields stay
// IPv4-only, so code that knows only IPv4 never meets an IPv6 address.

// isIPv6 tells an IPv6 literal (with or without a prefix length) from an
// IPv4 one: only IPv6 has colons.
func isIPv6(s string) bool { return strings.Contains(s, ":") }

func parseAddr6(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("invalid IPv6 address %q", s)
	}
	return a, nil
}

func parsePrefix6(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("invalid IPv6 prefix %q (write 2001:db8::/n)", s)
	}
	return p, nil
}

// parseNetPrefix6 is parseNetPrefix for IPv6.
func parseNetPrefix6(what, s string) (netip.Prefix, error) {
	p, err := parsePrefix6(s)
	if err != nil {
		return p, err
	}
	if m := p.Masked(); m != p {
		return m, fmt.Errorf("%s %s has host bits set; did you mean %s?", what, s, m)
	}
	return p, nil
}

// parseIfAddr6 parses an IPv6 interface address 2001:db8::1/64.
func parseIfAddr6(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		return netip.Prefix{}, fmt.Errorf("address %q needs a prefix length (write 2001:db8::1/64)", s)
	}
	p, err := parsePrefix6(s)
	if err != nil {
		return p, err
	}
	a := p.Addr()
	switch {
	case p.Bits() == 0:
		return p, fmt.Errorf("address %s: prefix length /0 is not an interface address", s)
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast():
		return p, fmt.Errorf("address %s is not a usable unicast address", s)
	case a.IsLinkLocalUnicast():
		return p, fmt.Errorf("address %s is link-local; set it with link_local = %q (the router has one per network)", s, a)
	case p.Bits() < 127 && a == p.Masked().Addr():
		return p, fmt.Errorf("address %s is the subnet-router anycast address of its prefix (RFC 4291 2.6.1)", s)
	}
	return p, nil
}

// ifAddr6 adds an IPv6 entry of `addresses` to n.
func (d *decoder) ifAddr6(n *Network, s string, pos Pos, p string) {
	a, err := parseIfAddr6(s)
	if err != nil {
		d.errf(pos, "network.addresses: %v", err)
		return
	}
	n.Addresses6 = append(n.Addresses6, a)
	d.pending6 = append(d.pending6, pos)
}

// network6Key decodes ra, dns and link_local.
func (d *decoder) network6Key(n *Network, key string, v *value, p string) {
	switch key {
	case "ra":
		n.RA, _ = d.boolean(v, p)
	case "link_local":
		if a, ok := d.linkLocal(v, p, "network.link_local"); ok {
			n.LinkLocal = a
		}
	case "dns":
		if v.kind != kArray || v.aot {
			d.wrongType(v, p, "an array of strings")
			return
		}
		for _, ev := range v.arr {
			s, ok := d.str(ev, p)
			if !ok {
				continue
			}
			a, err := parseAddr6(s)
			if err == nil && (a.IsUnspecified() || a.IsMulticast() || a.IsLoopback()) {
				err = fmt.Errorf("%s is not a unicast address", s)
			}
			if err != nil {
				d.errf(ev.pos, "network.dns: %v (RDNSS takes IPv6 servers)", err)
				continue
			}
			n.DNS = append(n.DNS, a)
		}
	}
}

// compactAddresses drops the empty IPv4 slots that IPv6 entries of
// `addresses` left (validation needed them for positions).
func (d *decoder) compactAddresses() {
	for i := range d.c.Networks {
		d.c.Networks[i].Addresses = validOnly(d.c.Networks[i].Addresses)
	}
	for i := range d.c.HostRoutes {
		d.c.HostRoutes[i].Addresses = validOnly(d.c.HostRoutes[i].Addresses)
	}
}

// validOnly drops the invalid (zero) entries of s in place; nil if none
// is left.
func validOnly[T interface{ IsValid() bool }](s []T) []T {
	out := s[:0]
	for _, a := range s {
		if a.IsValid() {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// validate6 checks the IPv6 parts: no address twice, no prefix in two
// networks, `ra` only with an IPv6 address, routes whose next hop is on a
// network.
func (d *decoder) validate6() {
	c := d.c
	var addrs []addrOwner
	lls := map[netip.Addr]int{}
	for i := range c.Networks {
		n := &c.Networks[i]
		t := d.netT[i]
		for k, a := range n.Addresses6 {
			addrs = d.claimAddr(addrs, addrOwner{net: i, pos: d.addr6Pos[i][k], pfx: a, name: n.Name})
		}
		if n.LinkLocal.IsValid() {
			if j, dup := lls[n.LinkLocal]; dup {
				d.errf(vpos(t, "link_local"), "link_local %s is also network %q's", n.LinkLocal, c.Networks[j].Name)
			}
			lls[n.LinkLocal] = i
		}
		if n.RA && len(n.Addresses6) == 0 {
			d.errf(vpos(t, "ra"), "ra = true needs an IPv6 address in the network's addresses (its /64 is what the advertisements carry)")
		}
		if len(n.DNS) > 0 && !n.RA {
			d.errf(vpos(t, "dns"), "dns is sent in router advertisements: set ra = true too")
		}
	}
	subnetOf := func(a netip.Addr, only int) int {
		for i, n := range c.Networks {
			if only >= 0 && i != only {
				continue
			}
			for _, p := range n.Addresses6 {
				if p.Masked().Contains(a) {
					return i
				}
			}
		}
		return -1
	}
	own := func(a netip.Addr) int {
		for i, n := range c.Networks {
			for _, p := range n.Addresses6 {
				if p.Addr() == a {
					return i
				}
			}
			if n.LinkLocal == a {
				return i
			}
		}
		return -1
	}
	hr6 := map[netip.Addr]int{}
	for i, h := range c.HostRoutes {
		for _, a := range h.Addresses6 {
			if j, dup := hr6[a]; dup {
				d.errf(vpos(d.hrT[i], "addresses"), "address %s is already routed to the hostroute at line %d", a, c.HostRoutes[j].Pos.Line)
				continue
			}
			hr6[a] = i
			if n := own(a); n >= 0 {
				d.errf(vpos(d.hrT[i], "addresses"), "hostroute address %s is the router's own address on network %q", a, c.Networks[n].Name)
			}
		}
	}
	netAt := map[string]int{}
	for i, n := range c.Networks {
		netAt[n.Name] = i
	}
	routeAt := map[netip.Prefix]int{}
	for i := range c.Routes6 {
		r := &c.Routes6[i]
		t := d.route6T[i]
		ni := -1
		if r.Network != "" {
			j, ok := netAt[r.Network]
			if !ok {
				d.errf(vpos(t, "network"), "route network %q is not a network", r.Network)
				continue
			}
			ni = j
		}
		if r.Prefix.IsValid() {
			if j, dup := routeAt[r.Prefix]; dup {
				d.errf(vpos(t, "prefix"), "duplicate route %s (first at line %d)", r.Prefix, c.Routes6[j].Pos.Line)
			} else {
				routeAt[r.Prefix] = i
			}
		}
		if r.Via.IsValid() && r.Via.Is4() {
			d.errf(vpos(t, "via"), "route.via %s is IPv4 but the prefix is IPv6", r.Via)
			continue
		}
		if !d.routeKeys(t, r, "2001:db8::1") {
			continue
		}
		pos := vpos(t, "via")
		if n := own(r.Via); n >= 0 {
			d.errf(pos, "via %s is the router's own address on network %q", r.Via, c.Networks[n].Name)
			continue
		}
		switch {
		case r.Via.IsLinkLocalUnicast():
			if r.Network == "" {
				d.errf(pos, "via %s is link-local: name its network with network = \"...\"", r.Via)
			}
		case r.Via.IsMulticast() || r.Via.IsUnspecified():
			d.errf(pos, "via %s is not a unicast address", r.Via)
		case ni >= 0:
			if subnetOf(r.Via, ni) < 0 {
				d.errf(pos, "via %s is not inside network %q", r.Via, r.Network)
			}
		default:
			if subnetOf(r.Via, -1) < 0 {
				d.errf(pos, "via %s is not on any network (no network address covers it)", r.Via)
			}
		}
	}
	// An IPv4 prefix with an IPv6 via (or the reverse) is caught here.
	for i, r := range c.Routes {
		if r.Via.IsValid() && r.Via.Is6() {
			d.errf(vpos(d.routeT[i], "via"), "route.via %s is IPv6 but the prefix is IPv4", r.Via)
		}
	}
}

// hostAddr6 adds an IPv6 entry of a [[hostroute]]'s addresses (a /128).
func (d *decoder) hostAddr6(h *HostRoute, s string, pos Pos) {
	a, err := parseAddr6(strings.TrimSuffix(s, "/128"))
	if err == nil && (a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast()) {
		err = fmt.Errorf("%s is not a usable global unicast address", a)
	}
	if err != nil {
		d.errf(pos, "hostroute.addresses: %v", err)
		return
	}
	h.Addresses6 = append(h.Addresses6, a)
}

// hostGateway6 decodes a [[hostroute]]'s gateway6.
func (d *decoder) hostGateway6(h *HostRoute, v *value, p string) {
	if a, ok := d.linkLocal(v, p, "hostroute.gateway6"); ok {
		h.Gateway6 = a
	}
}

// linkLocal decodes a link-local IPv6 address; an error names the key as
// what.
func (d *decoder) linkLocal(v *value, p, what string) (netip.Addr, bool) {
	s, ok := d.str(v, p)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := parseAddr6(s)
	if err == nil && !a.IsLinkLocalUnicast() {
		err = fmt.Errorf("%s is not a link-local address (fe80::/10)", s)
	}
	if err != nil {
		d.errf(v.pos, "%s: %v", what, err)
		return netip.Addr{}, false
	}
	return a, true
}
