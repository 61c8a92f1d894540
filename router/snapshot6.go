package router

import (
	"fmt"
	"net/netip"
	"slices"

	"vrouter/arp"
	"vrouter/config"
	"vrouter/fib"
	"vrouter/fib6"
	"vrouter/packet"
)

// net6 is the IPv6 side of a network: present (network.v6 != nil) when
// the network has an IPv6 address, and only then is IPv6 routed for it.
type net6 struct {
	ll    [16]byte // link-local address (configured, or EUI-64 from the MAC)
	addrs []ifAddr6
	mtu   int // the network's MTU, at least packet.IPv6MinMTU
	ra    bool
	dns   [][16]byte
	raMsg []byte // the advertisement (ndp.go raMessage), when ra
	// owned: a host-routed link's guest addresses (its only sources).
	owned map[[16]byte]struct{}
}

// pub6 is an address the router answers neighbour solicitations for on a
// network on behalf of a host-routed guest (proxy NDP), or its
// solicited-node group.
type pub6 struct {
	net  uint16
	addr [16]byte
}

// ifAddr6 is one of the router's IPv6 addresses on a network.
type ifAddr6 struct {
	addr   [16]byte
	prefix netip.Prefix
}

// snap6 is the IPv6 part of the snapshot.
type snap6 struct {
	// local maps each global address of the router to its network slot
	// (link-local addresses are per network: net6.ll).
	local map[[16]byte]uint16
	// any is a global router address for ICMPv6 errors when the egress
	// network has none.
	any    [16]byte
	hasAny bool
	// published: proxy NDP entries; groups: their solicited-node groups.
	published, groups map[pub6]struct{}
}

// compile6 adds the IPv6 part of cfg to the plan: each network's
// addresses and link-local address, its connected /n routes, the static
// IPv6 neighbours and proxy NDP entries ([[arp]]), and the IPv6 static
// routes.
func compile6(cfg *config.Config, s *snapshot, slots map[string]uint16, pl *plan) error {
	s.v6.local = map[[16]byte]uint16{}
	s.v6.published, s.v6.groups = map[pub6]struct{}{}, map[pub6]struct{}{}
	pl.routes6 = map[fib.Source][]fib6.Route{fib.Connected: nil, fib.Static: nil}
	for i := range cfg.Networks {
		nc := &cfg.Networks[i]
		n := &s.nets[slots[nc.Name]]
		addrs := nc.Addresses6
		if k := n.kernel6(); len(k) > 0 {
			addrs = append(slices.Clip(addrs), k...) // a daemon's, on the host interface
		}
		if len(addrs) == 0 {
			continue
		}
		v := &net6{ra: nc.RA, mtu: max(n.mtu, packet.IPv6MinMTU)}
		if nc.LinkLocal.IsValid() {
			v.ll = nc.LinkLocal.As16()
		} else {
			v.ll = packet.LinkLocalEUI64(n.mac)
		}
		for _, p := range addrs {
			a := p.Addr().As16()
			v.addrs = append(v.addrs, ifAddr6{addr: a, prefix: p})
			s.v6.local[a] = n.idx
			if !s.v6.hasAny {
				s.v6.any, s.v6.hasAny = a, true
			}
			pl.routes6[fib.Connected] = append(pl.routes6[fib.Connected], fib6.Route{Prefix: p.Masked(), Source: fib.Connected,
				NH: fib6.NextHop{Kind: fib.KindConnected, Network: n.idx}})
		}
		for _, d := range nc.DNS {
			v.dns = append(v.dns, d.As16())
		}
		n.v6 = v
		if v.ra {
			v.raMsg = raMessage(n)
		}
	}
	for _, hr := range cfg.HostRoutes {
		if len(hr.Addresses6) == 0 {
			continue
		}
		n := &s.nets[slots[hostRouteName(hr.Link)]]
		gw := hr.Gateway6
		if !gw.IsValid() {
			gw = config.DefaultHostRouteGateway6
		}
		v := &net6{ll: gw.As16(), mtu: max(n.mtu, packet.IPv6MinMTU), owned: map[[16]byte]struct{}{}}
		for _, a := range hr.Addresses6 {
			a16 := a.As16()
			v.owned[a16] = struct{}{}
			pl.routes6[fib.Connected] = append(pl.routes6[fib.Connected], fib6.Route{Prefix: netip.PrefixFrom(a, 128), Source: fib.Connected,
				NH: fib6.NextHop{Kind: fib.KindConnected, Network: n.idx}})
			for _, pub := range hr.Publish {
				if slot, ok := slots[pub]; ok {
					s.v6.published[pub6{slot, a16}] = struct{}{}
					s.v6.groups[pub6{slot, packet.SolicitedNode(a16)}] = struct{}{}
				}
			}
		}
		n.v6 = v
	}
	for _, e := range cfg.ARP6 {
		slot, ok := slots[e.Network]
		if !ok || s.nets[slot].v6 == nil {
			continue
		}
		a := e.IP.As16()
		if e.Publish {
			// Proxy NDP: solicitations for a on the network are answered.
			s.v6.published[pub6{slot, a}] = struct{}{}
			s.v6.groups[pub6{slot, packet.SolicitedNode(a)}] = struct{}{}
		}
		if len(e.MAC) == 6 {
			se := arp.StaticEntry{Network: slot, IP6: a, V6: true}
			copy(se.MAC[:], e.MAC)
			pl.statics = append(pl.statics, se)
		}
	}
	for _, r := range cfg.Routes6 {
		nh := fib6.NextHop{}
		if k, ok := refusingKind(r.Type); ok {
			nh.Kind = k
		} else {
			ni := -1
			if r.Network != "" {
				if slot, ok := slots[r.Network]; ok {
					ni = int(slot)
				}
			} else if r.Via.IsValid() {
				ni = s.networkContaining6(r.Via)
			}
			if ni < 0 || s.nets[ni].v6 == nil {
				return fmt.Errorf("route %s: no IPv6 network for it", r.Prefix)
			}
			if r.Via.IsValid() {
				nh = fib6.NextHop{Kind: fib.KindGateway, Network: uint16(ni), Gateway: r.Via.As16()}
			} else {
				nh = fib6.NextHop{Kind: fib.KindConnected, Network: uint16(ni)}
			}
		}
		pl.routes6[fib.Static] = append(pl.routes6[fib.Static], fib6.Route{Prefix: r.Prefix.Masked(), Source: fib.Static, NH: nh})
	}
	return nil
}

// networkContaining6 returns the slot of the network with an IPv6 prefix
// holding a, or -1.
func (s *snapshot) networkContaining6(a netip.Addr) int {
	for i := range s.nets {
		if n := &s.nets[i]; n.live && n.v6 != nil {
			for _, ia := range n.v6.addrs {
				if ia.prefix.Contains(a) {
					return i
				}
			}
		}
	}
	return -1
}

// mine6 reports whether a is an address of the router on network n
// (global or link-local).
func (n *network) mine6(a [16]byte) bool {
	if n.v6 == nil {
		return false
	}
	if a == n.v6.ll {
		return true
	}
	for i := range n.v6.addrs {
		if n.v6.addrs[i].addr == a {
			return true
		}
	}
	return false
}

// ourSolicited reports whether a is the solicited-node group of one of
// the router's addresses on n.
func (n *network) ourSolicited(a [16]byte) bool {
	if n.v6 == nil || !packet.IsSolicitedNode(a) {
		return false
	}
	if packet.SolicitedNode(n.v6.ll) == a {
		return true
	}
	for i := range n.v6.addrs {
		if packet.SolicitedNode(n.v6.addrs[i].addr) == a {
			return true
		}
	}
	return false
}

// src6For picks the router's address on n to use towards a: the
// link-local address for link-local destinations, else a global address
// on a's prefix, else the first global one, else the link-local one.
func (n *network) src6For(a [16]byte) [16]byte {
	if packet.IsLinkLocal6(a) || len(n.v6.addrs) == 0 {
		return n.v6.ll
	}
	for i := range n.v6.addrs {
		if n.v6.addrs[i].prefix.Contains(netip.AddrFrom16(a)) {
			return n.v6.addrs[i].addr
		}
	}
	return n.v6.addrs[0].addr
}

// same6 reports whether two networks' IPv6 addresses are the same (a
// change forgets the network's neighbours, as for IPv4).
func same6(a, b *net6) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.ll != b.ll || len(a.addrs) != len(b.addrs) {
		return false
	}
	for i := range a.addrs {
		if a.addrs[i] != b.addrs[i] {
			return false
		}
	}
	return true
}

func netipFrom16(a [16]byte) string { return netip.AddrFrom16(a).String() }
