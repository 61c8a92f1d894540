package router

import (
	"sort"

	"vrouter/fib"
	"vrouter/packet"
)

// Names are the things the console completes: ports, networks, addresses.
type Names struct {
	Router    string   `json:"router"`
	Ports     []string `json:"ports"`
	Networks  []string `json:"networks"`
	Addresses []string `json:"addresses"` // router addresses and neighbours
	Runtime   []string `json:"runtime_routes"`
}

func (r *Router) names() Names {
	s := r.snap.Load()
	n := Names{Router: s.cfg.Router.Name}
	for _, p := range s.ports {
		if !p.closed.Load() {
			n.Ports = append(n.Ports, p.name)
		}
	}
	seen := map[string]bool{}
	s.eachNetwork(func(nw *network) {
		n.Networks = append(n.Networks, nw.name)
		for _, a := range nw.addrs {
			seen[packet.Addr(a.addr).String()] = true
		}
	})
	for _, e := range r.Neigh.Entries(r.clock.Now()) {
		seen[packet.Addr(e.IP).String()] = true
	}
	for a := range seen {
		n.Addresses = append(n.Addresses, a)
	}
	sort.Strings(n.Addresses)
	for _, rt := range r.FIB.Routes() {
		if rt.Source == fib.Runtime {
			n.Runtime = append(n.Runtime, rt.Prefix.String())
		}
	}
	return n
}

func (r *Router) cmdNames(args []string, js bool) (string, error) { return toJSON(r.names()) }
