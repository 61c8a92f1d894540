package router

import (
	"fmt"
	"net/netip"
	"sync/atomic"

	"vrouter/config"
	"vrouter/fib"
	"vrouter/nat"
	"vrouter/packet"
)

// link is one attachment of a network: a port, untagged or one VLAN.
type link struct {
	port int    // index into Router.ports
	vid  uint16 // 0 = untagged
	id   int    // index into snapshot.links (per-link counters)
}

// linkCounters are one link's counters, shared by the workers (added to
// once per batch) and kept across reloads while the link exists.
type linkCounters struct {
	network, name                          string
	rxPackets, rxBytes, txPackets, txBytes atomic.Uint64
}

// ifAddr is one of the router's addresses on a network.
type ifAddr struct {
	addr, mask, bcast uint32
	prefix            netip.Prefix
}

// network is the compiled form of a [[network]] (or a host-routed link).
type network struct {
	idx       uint16
	name      string
	mac       packet.MAC
	addrs     []ifAddr
	links     []link
	mtu       int
	proxyARP  bool
	hostRoute bool   // a [[hostroute]] link: answer every ARP, guest owns `owned`
	gateway   uint32 // hostroute: the guest's gateway address
	owned     map[uint32]struct{}
	bridge    *macTable // multi-link networks only: MAC learning
}

// switched reports whether the network switches frames between several links.
func (n *network) switched() bool { return len(n.links) > 1 }

// pureL2 reports a switched network on which the router has no address.
func (n *network) pureL2() bool { return n.switched() && len(n.addrs) == 0 && !n.hostRoute }

// snapshot is everything the data path reads from the configuration. It is
// built off the data path and swapped atomically; workers load it once per
// batch.
type snapshot struct {
	cfg   *config.Config
	ports []*portState // indexed by link.port; closed ports stay (unreferenced)
	nets  []network
	// portVID maps (port, VID) to (link index << 16 | network index+1);
	// 0 = not a member.
	portVID [][4096]uint32
	// local maps each router address to its network.
	local addrSet
	// published: (network<<32 | ip) the router answers ARP for with its own MAC.
	published map[uint64]struct{}
	// links holds the counters of every link, indexed by link.id.
	links []*linkCounters
	// anyAddr is a router address to use as ICMP source when nothing better fits.
	anyAddr             uint32
	icmpRate, icmpBurst int
	natOn               bool // any NAT rule: run the NAT stages
	nat                 *nat.Rules
}

func prefixMask(bits int) uint32 {
	if bits == 0 {
		return 0
	}
	return ^uint32(0) << (32 - bits)
}

// compile builds a snapshot from cfg and the opened ports (by name).
// Host-routed links become networks of their own, after the configured ones.
func compile(cfg *config.Config, ports []*portState, old *snapshot) (*snapshot, []fib.Route, error) {
	oldBridges := map[string]*macTable{}
	oldLinks := map[string]*linkCounters{}
	if old != nil {
		for _, lc := range old.links {
			oldLinks[lc.network+"/"+lc.name] = lc
		}
		for _, n := range old.nets {
			if n.bridge != nil {
				oldBridges[n.name] = n.bridge
			}
		}
	}
	byName := map[string]int{}
	for i, p := range ports {
		if !p.closed.Load() {
			byName[p.name] = i
		}
	}
	s := &snapshot{cfg: cfg, ports: ports, portVID: make([][4096]uint32, len(ports)),
		published: map[uint64]struct{}{},
		icmpRate:  cfg.ICMP.RatePerSec, icmpBurst: cfg.ICMP.Burst}
	naddr := 0
	for _, nc := range cfg.Networks {
		naddr += len(nc.Addresses)
	}
	s.local = newAddrSet(naddr)
	var routes []fib.Route
	addLink := func(n *network, l config.Link) error {
		pi, ok := byName[l.Port]
		if !ok {
			return fmt.Errorf("network %q: link %q: no such port", n.name, l.String())
		}
		s.portVID[pi][l.VID] = uint32(len(n.links))<<16 | uint32(n.idx+1)
		lc := oldLinks[n.name+"/"+l.String()]
		if lc == nil {
			lc = &linkCounters{network: n.name, name: l.String()}
		}
		n.links = append(n.links, link{port: pi, vid: l.VID, id: len(s.links)})
		s.links = append(s.links, lc)
		if m := ports[pi].mtu; n.mtu == 0 || m < n.mtu {
			n.mtu = m
		}
		return nil
	}
	for i, nc := range cfg.Networks {
		n := network{idx: uint16(i), name: nc.Name, proxyARP: nc.ProxyARP}
		for _, l := range nc.Links {
			if err := addLink(&n, l); err != nil {
				return nil, nil, err
			}
		}
		if n.switched() {
			n.bridge = oldBridges[n.name]
			if n.bridge == nil {
				n.bridge = newMACTable()
			}
		}
		if len(nc.MAC) == 6 {
			copy(n.mac[:], nc.MAC)
		} else if len(n.links) > 0 {
			n.mac = ports[n.links[0].port].mac
		}
		for _, p := range nc.Addresses {
			a := packet.U32(p.Addr())
			m := prefixMask(p.Bits())
			n.addrs = append(n.addrs, ifAddr{addr: a, mask: m, bcast: a | ^m, prefix: p})
			s.local.add(a, n.idx)
			if s.anyAddr == 0 {
				s.anyAddr = a
			}
			routes = append(routes, fib.Route{Prefix: p.Masked(), Source: fib.Connected,
				NH: fib.NextHop{Kind: fib.KindConnected, Network: n.idx}})
		}
		s.nets = append(s.nets, n)
	}
	for _, hr := range cfg.HostRoutes {
		n := network{idx: uint16(len(s.nets)), name: "hostroute:" + hr.Link.String(), hostRoute: true,
			gateway: packet.U32(hr.Gateway), owned: map[uint32]struct{}{}}
		if err := addLink(&n, hr.Link); err != nil {
			return nil, nil, err
		}
		n.mac = ports[n.links[0].port].mac
		for _, a := range hr.Addresses {
			v := packet.U32(a)
			n.owned[v] = struct{}{}
			routes = append(routes, fib.Route{Prefix: netip.PrefixFrom(a, 32), Source: fib.Connected,
				NH: fib.NextHop{Kind: fib.KindConnected, Network: n.idx}})
			for _, pub := range hr.Publish {
				if pi := netIndex(cfg, pub); pi >= 0 {
					s.published[uint64(pi)<<32|uint64(v)] = struct{}{}
				}
			}
		}
		s.nets = append(s.nets, n)
	}
	for _, e := range cfg.ARP {
		if e.Publish {
			if ni := netIndex(cfg, e.Network); ni >= 0 {
				s.published[uint64(ni)<<32|uint64(packet.U32(e.IP))] = struct{}{}
			}
		}
	}
	for _, f := range cfg.NAT.Floating {
		if ni := s.networkContaining(packet.U32(f.External)); ni >= 0 {
			s.published[uint64(ni)<<32|uint64(packet.U32(f.External))] = struct{}{}
		}
	}
	for _, r := range cfg.Routes {
		nh := fib.NextHop{}
		switch r.Type {
		case config.RouteBlackhole:
			nh.Kind = fib.KindDrop
		case config.RouteUnreachable:
			nh.Kind = fib.KindUnreachable
		case config.RouteProhibit:
			nh.Kind = fib.KindProhibit
		default:
			if r.Via.IsValid() {
				gw := packet.U32(r.Via)
				ni := s.networkContaining(gw)
				if r.Network != "" {
					ni = netIndex(cfg, r.Network)
				}
				if ni < 0 {
					return nil, nil, fmt.Errorf("route %s: gateway %s is on no network", r.Prefix, r.Via)
				}
				nh = fib.NextHop{Kind: fib.KindGateway, Network: uint16(ni), Gateway: gw}
			} else {
				ni := netIndex(cfg, r.Network)
				if ni < 0 {
					return nil, nil, fmt.Errorf("route %s: network %q not found", r.Prefix, r.Network)
				}
				nh = fib.NextHop{Kind: fib.KindConnected, Network: uint16(ni)}
			}
		}
		routes = append(routes, fib.Route{Prefix: r.Prefix.Masked(), Source: fib.Static, NH: nh})
	}
	return s, routes, nil
}

// networkContaining returns the network whose router address subnet holds a, or -1.
func (s *snapshot) networkContaining(a uint32) int {
	for i := range s.nets {
		for _, ia := range s.nets[i].addrs {
			if a&ia.mask == ia.addr&ia.mask {
				return i
			}
		}
	}
	return -1
}

// onSubnet reports whether a lies in one of n's subnets.
func (n *network) onSubnet(a uint32) bool {
	for _, ia := range n.addrs {
		if a&ia.mask == ia.addr&ia.mask {
			return true
		}
	}
	return false
}

// srcFor picks the router's address on n to use towards a (same subnet
// first, then the first address); 0 if n has none.
func (n *network) srcFor(a uint32) uint32 {
	for _, ia := range n.addrs {
		if a&ia.mask == ia.addr&ia.mask {
			return ia.addr
		}
	}
	if len(n.addrs) > 0 {
		return n.addrs[0].addr
	}
	if n.hostRoute {
		return n.gateway
	}
	return 0
}

// isBroadcastOn reports whether a is the subnet broadcast address of one of n's subnets
// (never for /31 and /32).
func (n *network) isBroadcastOn(a uint32) bool {
	for _, ia := range n.addrs {
		if ia.mask < 0xfffffffe && a == ia.bcast {
			return true
		}
	}
	return false
}

func netIndex(cfg *config.Config, name string) int {
	for i := range cfg.Networks {
		if cfg.Networks[i].Name == name {
			return i
		}
	}
	return -1
}
