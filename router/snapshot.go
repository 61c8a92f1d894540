package router

import (
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"

	"vrouter/arp"
	"vrouter/config"
	"vrouter/fib"
	"vrouter/fib6"
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

// linkCount is one worker's count for a link during a batch; end() adds it
// to the link's linkCounters.
type linkCount struct {
	rxPackets, rxBytes, txPackets, txBytes uint64
}

// member says where the frames of one (port, VID) belong: a network slot
// and the index of the link in that network, in one word (read for every
// frame). The zero value is "none".
type member uint32

func memberOf(slot uint16, link int) member { return member(uint32(link)<<16 | uint32(slot) + 1) }

func (m member) ok() bool     { return m != 0 }
func (m member) slot() uint16 { return uint16(m) - 1 }
func (m member) link() int    { return int(m >> 16) }

// ifAddr is one of the router's addresses on a network.
type ifAddr struct {
	addr, mask, bcast uint32
	prefix            netip.Prefix
}

// network is the compiled form of a [[network]] (or a host-routed link).
type network struct {
	idx       uint16 // the network's slot (see snapshot.nets)
	live      bool   // false: a slot whose network a reload removed
	name      string
	mac       packet.MAC
	addrs     []ifAddr
	links     []link
	mtu       int
	proxyARP  bool
	hostRoute bool   // a [[hostroute]] link: answer every ARP, guest owns `owned`
	gateway   uint32 // hostroute: the guest's gateway address
	owned     map[uint32]struct{}
	bridge    *macTable  // multi-link networks only: MAC learning
	host      *hostNet   // the network's host interface (hostif.go), nil when none
	filt      *netFilter // filter_in / filter_out; nil: none (filter.go)
	v6        *net6      // IPv6; nil when the network has no IPv6 address (snapshot6.go)
}

// switched reports whether the network switches frames between several links.
func (n *network) switched() bool { return len(n.links) > 1 }

// pureL2 reports a switched network on which the router has no address.
func (n *network) pureL2() bool { return n.switched() && len(n.addrs) == 0 && !n.hostRoute }

// snapshot is everything the data path reads from the configuration: the
// networks, the ports' memberships, the router's addresses, the compiled
// NAT rules and filter rulesets. A reload builds a new one off the data path and publishes it
// with one atomic store; workers load it once per batch.
//
// Networks are numbered by slot, not by their position in the file: a
// network keeps its slot across reloads, and the slot of a removed network
// stays dead for the rest of that reload, so that state keyed by network
// elsewhere (FIB next hops, neighbour entries, NAT sessions), which is
// published a moment later or lives on, can never name a different network
// than the one it was made for.
type snapshot struct {
	cfg   *config.Config
	ports []*portState // indexed by link.port; closed ports stay (unreferenced)
	// gro: the port coalesces the TCP segments it sends (gro.go), by
	// port index.
	gro   []bool
	nets  []network // indexed by slot; see network.live
	slots map[string]uint16
	// portVID maps (port, VID) to its network and link.
	portVID [][4096]member
	// local maps each router address to its network.
	local addrSet
	// published: (network<<32 | ip) the router answers ARP for with its own MAC.
	published map[uint64]struct{}
	// haShared: the published NAT addresses (floating IPs, SNAT and
	// forward addresses that are not the router's own), which only the HA
	// master answers for (ha.go).
	haShared map[uint64]struct{}
	// links holds the counters of every link, indexed by link.id.
	links []*linkCounters
	// anyAddr is a router address to use as ICMP source when nothing better fits.
	anyAddr             uint32
	icmpRate, icmpBurst int
	arpReqRate          int          // [neighbor] request_rate (arplimit.go)
	nat                 *nat.Rules   // compiled NAT rules (never nil)
	natOn               bool         // any NAT rule: run the NAT stages
	host                hostTable    // host ports to their networks (hostif.go)
	filters             *filterState // compiled filter rulesets and their counters (never nil)
	filterOn            bool         // a network has a filter: some packets are tracked
	v6                  snap6        // IPv6 addresses (snapshot6.go)
}

// net returns the live network in slot i, or nil (a FIB next hop may name
// a network that a reload in progress has just removed).
func (s *snapshot) net(i uint16) *network {
	if int(i) < len(s.nets) && s.nets[i].live {
		return &s.nets[i]
	}
	return nil
}

// eachNetwork calls f for every live network in slot order.
func (s *snapshot) eachNetwork(f func(*network)) {
	for i := range s.nets {
		if s.nets[i].live {
			f(&s.nets[i])
		}
	}
}

// slotOf gives the slot of a network by name.
func (s *snapshot) slotOf(name string) (uint16, bool) {
	i, ok := s.slots[name]
	return i, ok
}

func prefixMask(bits int) uint32 {
	if bits == 0 {
		return 0
	}
	return ^uint32(0) << (32 - bits)
}

// plan is a compiled configuration, ready to publish: the snapshot and what
// goes into the FIB, the neighbour cache and the NAT with it.
type plan struct {
	snap    *snapshot
	routes  map[fib.Source][]fib.Route // connected and static
	routes6 map[fib.Source][]fib6.Route
	statics []arp.StaticEntry
	// removed lists slots whose network this reload removes or whose
	// addresses changed (their neighbours are forgotten).
	removed []uint16
	// keepRuntime: publish keeps the runtime routes (a port reopened by
	// the supervisor is no reload).
	keepRuntime bool
}

// hostRouteName is the name of the network a [[hostroute]] link becomes.
func hostRouteName(l config.Link) string { return "hostroute:" + l.String() }

// slotsBeforeReuse is how many slots may exist before the slots of removed
// networks are handed to new ones. Below it a slot is never reused, so
// nothing published late (a kernel route resolved before a reload) can
// ever name the wrong network; above it only slots already dead before
// this reload are reused.
const slotsBeforeReuse = 1024

// assignSlots numbers the networks of cfg (configured ones, then host-routed
// links): a name keeps its slot from old; a new name takes a new slot at the
// end (or, past slotsBeforeReuse, one that was already dead in old).
func assignSlots(cfg *config.Config, old *snapshot) (map[string]uint16, int) {
	var names []string
	for _, nc := range cfg.Networks {
		names = append(names, nc.Name)
	}
	for _, hr := range cfg.HostRoutes {
		names = append(names, hostRouteName(hr.Link))
	}
	slots := make(map[string]uint16, len(names))
	n := 0
	var free []uint16
	if old != nil {
		n = len(old.nets)
		for i := range old.nets {
			if !old.nets[i].live {
				free = append(free, uint16(i))
			}
		}
	}
	for _, name := range names {
		if old != nil {
			if i, ok := old.slots[name]; ok {
				slots[name] = i
			}
		}
	}
	for _, name := range names {
		if _, ok := slots[name]; ok {
			continue
		}
		if n >= slotsBeforeReuse && len(free) > 0 {
			slots[name] = free[0]
			free = free[1:]
			continue
		}
		slots[name] = uint16(n)
		n++
	}
	return slots, n
}

// compile builds a plan from cfg and the opened ports, off the data path.
// Nothing is published; an error leaves the router as it was.
func compile(cfg *config.Config, ports []*portState, old *snapshot) (*plan, error) {
	oldBridges := map[string]*macTable{}
	oldLinks := map[string]*linkCounters{}
	if old != nil {
		for _, lc := range old.links {
			oldLinks[lc.network+"/"+lc.name] = lc
		}
		old.eachNetwork(func(n *network) {
			if n.bridge != nil {
				oldBridges[n.name] = n.bridge
			}
		})
	}
	byName := map[string]int{}
	for i, p := range ports {
		if !p.closed.Load() {
			byName[p.name] = i
		}
	}
	slots, nslots := assignSlots(cfg, old)
	if nslots >= int(nat.Local) {
		return nil, fmt.Errorf("too many networks (%d)", nslots)
	}
	s := &snapshot{cfg: cfg, ports: ports, portVID: make([][4096]member, len(ports)),
		nets: make([]network, nslots), slots: slots, published: map[uint64]struct{}{},
		haShared: map[uint64]struct{}{},
		icmpRate: cfg.ICMP.RatePerSec, icmpBurst: cfg.ICMP.Burst, arpReqRate: cfg.Neighbor.RequestRate}
	for i := range s.nets {
		s.nets[i].idx = uint16(i)
	}
	s.gro = make([]bool, len(ports))
	for i, p := range ports {
		pc := portConfig(cfg, p.name)
		s.gro[i] = p.offloads && p.host == nil && pc != nil && !pc.NoGRO
	}
	naddr := 0
	for _, nc := range cfg.Networks {
		naddr += len(nc.Addresses)
	}
	s.local = newAddrSet(naddr)
	pl := &plan{snap: s, routes: map[fib.Source][]fib.Route{fib.Connected: nil, fib.Static: nil}}
	connected := func(p netip.Prefix, slot uint16) {
		pl.routes[fib.Connected] = append(pl.routes[fib.Connected], fib.Route{Prefix: p, Source: fib.Connected,
			NH: fib.NextHop{Kind: fib.KindConnected, Network: slot}})
	}
	addLink := func(n *network, l config.Link) error {
		pi, ok := byName[l.Port]
		if !ok {
			return fmt.Errorf("network %q: link %q: no such port", n.name, l.String())
		}
		s.portVID[pi][l.VID] = memberOf(n.idx, len(n.links))
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
	hc := newHostCompile(cfg, ports, s)
	for i := range cfg.Networks {
		nc := &cfg.Networks[i]
		n := &s.nets[slots[nc.Name]]
		*n = network{idx: n.idx, live: true, name: nc.Name, proxyARP: nc.ProxyARP}
		for _, l := range nc.Links {
			if err := addLink(n, l); err != nil {
				return nil, err
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
		for _, p := range hc.addrs(n, nc) {
			a := packet.U32(p.Addr())
			m := prefixMask(p.Bits())
			n.addrs = append(n.addrs, ifAddr{addr: a, mask: m, bcast: a | ^m, prefix: p})
			s.local.add(a, n.idx)
			if s.anyAddr == 0 {
				s.anyAddr = a
			}
			connected(p.Masked(), n.idx)
		}
	}
	for _, hr := range cfg.HostRoutes {
		n := &s.nets[slots[hostRouteName(hr.Link)]]
		*n = network{idx: n.idx, live: true, name: hostRouteName(hr.Link), hostRoute: true,
			gateway: packet.U32(hr.Gateway), owned: map[uint32]struct{}{}}
		if err := addLink(n, hr.Link); err != nil {
			return nil, err
		}
		n.mac = ports[n.links[0].port].mac
		for _, a := range hr.Addresses {
			v := packet.U32(a)
			n.owned[v] = struct{}{}
			connected(netip.PrefixFrom(a, 32), n.idx)
			for _, pub := range hr.Publish {
				if pi, ok := slots[pub]; ok {
					s.publish(pi, v)
				}
			}
		}
	}
	if err := compile6(cfg, s, slots, pl); err != nil {
		return nil, err
	}
	for _, e := range cfg.ARP {
		slot, ok := slots[e.Network]
		if !ok {
			continue
		}
		if e.Publish {
			s.publish(slot, packet.U32(e.IP))
		}
		if len(e.MAC) == 6 {
			var m packet.MAC
			copy(m[:], e.MAC)
			pl.statics = append(pl.statics, arp.StaticEntry{Network: slot, IP: packet.U32(e.IP), MAC: m})
		}
	}
	for _, f := range cfg.NAT.Floating {
		if ni := s.networkContaining(packet.U32(f.External)); ni >= 0 {
			s.publish(uint16(ni), packet.U32(f.External))
		}
	}
	for _, r := range cfg.Routes {
		nh := fib.NextHop{}
		if k, ok := refusingKind(r.Type); ok {
			nh.Kind = k
		} else {
			if r.Via.IsValid() {
				gw := packet.U32(r.Via)
				ni := s.networkContaining(gw)
				if r.Network != "" {
					ni = -1
					if slot, ok := slots[r.Network]; ok {
						ni = int(slot)
					}
				}
				if ni < 0 {
					return nil, fmt.Errorf("route %s: gateway %s is on no network", r.Prefix, r.Via)
				}
				nh = fib.NextHop{Kind: fib.KindGateway, Network: uint16(ni), Gateway: gw}
			} else {
				slot, ok := slots[r.Network]
				if !ok {
					return nil, fmt.Errorf("route %s: network %q not found", r.Prefix, r.Network)
				}
				nh = fib.NextHop{Kind: fib.KindConnected, Network: slot}
			}
		}
		pl.routes[fib.Static] = append(pl.routes[fib.Static], fib.Route{Prefix: r.Prefix.Masked(), Source: fib.Static, NH: nh})
	}
	rules, err := nat.Compile(hc.natConfig(), s.slotOf) // with the kernel-added addresses
	if err != nil {
		return nil, err
	}
	s.nat = rules
	s.natOn = rules.Active()
	var oldFilters *filterState
	if old != nil {
		oldFilters = old.filters
	}
	if s.filters, err = newFilterState(cfg, oldFilters); err != nil {
		return nil, err
	}
	for _, nc := range cfg.Networks {
		if nc.FilterIn == "" && nc.FilterOut == "" {
			continue
		}
		f := &netFilter{in: s.filters.set.Lookup(nc.FilterIn), out: s.filters.set.Lookup(nc.FilterOut)}
		if nc.FilterIn != "" && f.in == nil {
			return nil, fmt.Errorf("network %q: filter_in: no filter ruleset %q", nc.Name, nc.FilterIn)
		}
		if nc.FilterOut != "" && f.out == nil {
			return nil, fmt.Errorf("network %q: filter_out: no filter ruleset %q", nc.Name, nc.FilterOut)
		}
		s.nets[slots[nc.Name]].filt = f
		s.filterOn = true
	}
	for _, e := range rules.ExternalAddrs() {
		if s.net(e.Net) != nil {
			if _, mine := s.local.get(packet.U32(e.Addr)); !mine {
				s.publish(e.Net, packet.U32(e.Addr))
				s.haShared[uint64(e.Net)<<32|uint64(packet.U32(e.Addr))] = struct{}{}
			}
		}
	}
	if old != nil {
		old.eachNetwork(func(on *network) {
			n := s.net(on.idx)
			if n == nil || !slices.Equal(n.addrs, on.addrs) || !same6(n.v6, on.v6) {
				pl.removed = append(pl.removed, on.idx)
			}
		})
	}
	return pl, nil
}

// publish makes the router answer ARP for ip on network slot with its MAC.
func (s *snapshot) publish(slot uint16, ip uint32) {
	s.published[uint64(slot)<<32|uint64(ip)] = struct{}{}
}

// refusingKind is the next-hop kind of a static route of type t that
// refuses traffic (blackhole, unreachable, prohibit); false for unicast.
func refusingKind(t config.RouteType) (fib.Kind, bool) {
	switch t {
	case config.RouteBlackhole:
		return fib.KindDrop, true
	case config.RouteUnreachable:
		return fib.KindUnreachable, true
	case config.RouteProhibit:
		return fib.KindProhibit, true
	}
	return 0, false
}

// networkContaining returns the slot of the network whose router address
// subnet holds a, or -1.
func (s *snapshot) networkContaining(a uint32) int {
	for i := range s.nets {
		if !s.nets[i].live {
			continue
		}
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
