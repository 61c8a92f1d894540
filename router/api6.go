package router

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"vrouter/fib"
	"vrouter/fib6"
)

// Neighbours6 returns the IPv6 neighbours, sorted by network (in index
// order), then by address.
func (r *Router) Neighbours6() []Neighbour {
	s := r.snap.Load()
	var out []Neighbour
	nets := map[string]uint16{}
	for _, e := range r.Neigh.Entries(r.clock.Now()) {
		if !e.V6 {
			continue
		}
		nb := Neighbour{IP: netip.AddrFrom16(e.IP6), MAC: e.MAC, State: e.State, Age: e.Age, Queued: e.Queued}
		if n := s.net(e.Network); n != nil {
			nb.Network = n.name
		}
		nets[nb.Network] = e.Network
		out = append(out, nb)
	}
	sort.Slice(out, func(i, j int) bool {
		if a, b := nets[out[i].Network], nets[out[j].Network]; a != b {
			return a < b
		}
		return out[i].IP.Less(out[j].IP)
	})
	return out
}

// AddRoute6 adds a runtime IPv6 route via a global gateway on one of the
// networks' IPv6 prefixes; it returns that network's name.
func (r *Router) AddRoute6(p netip.Prefix, gw netip.Addr) (string, error) {
	if !p.Addr().Is6() || !gw.Is6() || gw.Is4In6() {
		return "", errors.New("IPv6 only")
	}
	s := r.snap.Load()
	ni := s.networkContaining6(gw)
	if ni < 0 {
		return "", fmt.Errorf("gateway %s is on no connected IPv6 network", gw)
	}
	r.FIB6.Add(fib6.Route{Prefix: p.Masked(), Source: fib.Runtime,
		NH: fib6.NextHop{Kind: fib.KindGateway, Network: uint16(ni), Gateway: gw.As16()}})
	return s.nets[ni].name, nil
}

// DeleteRoute6 deletes the runtime IPv6 route to p; false if there is none.
func (r *Router) DeleteRoute6(p netip.Prefix) bool { return r.FIB6.Delete(p.Masked(), fib.Runtime) }

// ResolveGateway6 gives the network of an IPv6 gateway for the kernel table
// import: a global gateway by the network prefix that holds it; a
// link-local one by the route's device, which must be a host interface.
func (r *Router) ResolveGateway6(gw [16]byte, ifindex int) (uint16, bool) {
	a := netip.AddrFrom16(gw)
	if a.IsLinkLocalUnicast() {
		if ifindex <= 0 {
			return 0, false
		}
		return r.ResolveDevice(ifindex, "")
	}
	ni := r.snap.Load().networkContaining6(a)
	return uint16(ni), ni >= 0
}
