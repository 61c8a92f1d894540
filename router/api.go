package router

// The control-plane API: what the console, the completion names and the
// metrics read from a running router, and the few things they do to it.
// Every read of the router's unexported state on their behalf is in this
// file. The methods return plain data (copies), are safe to call while the
// workers run, and never block the data path: counters are atomics summed
// here, the configuration is read from the snapshot in force.

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"vrouter/arp"
	"vrouter/config"
	"vrouter/fib"
	"vrouter/filter"
	"vrouter/internal/counter"
	"vrouter/packet"
	"vrouter/router/port"
)

// linkName is a link as written in the configuration ("trunk.1234", "vm1").
func (s *snapshot) linkName(l link) string {
	name := s.ports[l.port].name
	if l.vid != 0 {
		name = fmt.Sprintf("%s.%d", name, l.vid)
	}
	return name
}

// Config returns the configuration in force.
func (r *Router) Config() *config.Config { return r.snap.Load().cfg }

// Uptime is the time since Start.
func (r *Router) Uptime() time.Duration { return time.Since(r.started) }

// Reloads returns how many reloads were attempted (Reconfigure and
// ReloadFailed) and whether the last one succeeded (true when there was
// none).
func (r *Router) Reloads() (attempts uint64, lastOK bool) {
	p := r.lastReload.Load()
	return r.reloads.Load(), p == nil || *p == "ok"
}

// PortStats are the counters of one port as the router sees them, and the
// port driver's own.
type PortStats struct {
	Name, Driver, Device string
	MAC                  packet.MAC
	MTU                  int
	RxPackets, RxBytes   uint64
	TxPackets, TxBytes   uint64
	Drops                uint64 // frames dropped at the port (malformed, unknown VLAN)
	TxErrors             uint64 // frames the port refused to send
	DeviceStats          port.Stats
	// State is "up", "lost" (the device is gone: supervise.go), the
	// kernel's operational state of the device (down, lowerlayerdown,
	// dormant, notpresent, testing, unknown) or "admin-down"; see
	// linkstate.go.
	State string
}

// Ports returns the open ports with their counters and states, in
// configuration order. The states are looked up now (rtnetlink, one
// request per device).
func (r *Router) Ports() []PortStats {
	var out []PortStats
	look := newLinkLookup()
	defer look.close()
	for _, p := range r.snap.Load().ports {
		if p.closed.Load() || p.host != nil { // host interfaces: HostInterfaces
			continue
		}
		out = append(out, PortStats{Name: p.name, Driver: p.p.Driver(), Device: p.p.Device(), MAC: p.mac, MTU: p.mtu, State: p.linkState(look),
			RxPackets: p.rxPackets.Load(), RxBytes: p.rxBytes.Load(), TxPackets: p.txPackets.Load(),
			TxBytes: p.txBytes.Load(), Drops: p.drops.Load(), TxErrors: p.txErrors.Load(), DeviceStats: p.p.Stats()})
	}
	return out
}

// Network describes one network (a [[network]] or a host-routed link).
type Network struct {
	Name      string
	MAC       packet.MAC
	MTU       int
	Addresses []netip.Prefix // the router's addresses on it (IPv4, IPv6, the IPv6 link-local one last)
	RA        bool           // router advertisements sent
	ProxyARP  bool
	HostRoute bool
	Links     []LinkStats
}

// LinkStats are one link of a network ("trunk.1234" = VLAN 1234 of port
// trunk) and its counters.
type LinkStats struct {
	Name               string
	Port               string
	VLAN               uint16 // 0 = untagged
	RxPackets, RxBytes uint64
	TxPackets, TxBytes uint64
}

// Networks returns the networks in index order.
func (r *Router) Networks() []Network {
	s := r.snap.Load()
	var out []Network
	s.eachNetwork(func(n *network) {
		nw := Network{Name: n.name, MAC: n.mac, MTU: n.mtu, ProxyARP: n.proxyARP, HostRoute: n.hostRoute}
		for _, l := range n.links {
			lc := s.links[l.id]
			nw.Links = append(nw.Links, LinkStats{Name: s.linkName(l), Port: s.ports[l.port].name, VLAN: l.vid,
				RxPackets: lc.rxPackets.Load(), RxBytes: lc.rxBytes.Load(), TxPackets: lc.txPackets.Load(), TxBytes: lc.txBytes.Load()})
		}
		for _, a := range n.addrs {
			nw.Addresses = append(nw.Addresses, a.prefix)
		}
		if n.v6 != nil {
			for _, a := range n.v6.addrs {
				nw.Addresses = append(nw.Addresses, a.prefix)
			}
			nw.Addresses = append(nw.Addresses, netip.PrefixFrom(netip.AddrFrom16(n.v6.ll), 64))
			nw.RA = n.v6.ra
		}
		out = append(out, nw)
	})
	return out
}

// NetworkName is the name of the network with index i (as in a FIB next
// hop), or "" when there is none.
func (r *Router) NetworkName(i uint16) string {
	if n := r.snap.Load().net(uint16(i)); n != nil {
		return n.name
	}
	return ""
}

// Neighbour is one entry of the neighbour cache.
type Neighbour struct {
	IP      netip.Addr
	MAC     packet.MAC // not yet known while State is arp.Incomplete
	Network string
	State   arp.State
	Age     time.Duration // since last confirmed (or created)
	Queued  int           // packets waiting for the resolution
}

// Neighbours returns the neighbour cache, sorted by network (in index
// order), then by address.
func (r *Router) Neighbours() []Neighbour {
	s := r.snap.Load()
	es := r.Neigh.Entries(r.clock.Now())
	sort.Slice(es, func(i, j int) bool {
		if es[i].Network != es[j].Network {
			return es[i].Network < es[j].Network
		}
		return es[i].IP < es[j].IP
	})
	out := make([]Neighbour, 0, len(es))
	for _, e := range es {
		if e.V6 {
			continue // Neighbours6
		}
		nb := Neighbour{IP: packet.Addr(e.IP), MAC: e.MAC, State: e.State, Age: e.Age, Queued: e.Queued}
		if n := s.net(uint16(e.Network)); n != nil {
			nb.Network = n.name
		}
		out = append(out, nb)
	}
	return out
}

// ClearARP forgets the learned neighbours; static entries stay.
func (r *Router) ClearARP() { r.Neigh.Flush() }

// ProxyARPKind says why the router answers ARP on behalf of others.
type ProxyARPKind uint8

const (
	// ProxyPublished: one published address ([[arp]] publish, a floating
	// IP, a NAT address, a host-routed guest on a `publish` network).
	ProxyPublished ProxyARPKind = iota
	// ProxyNetwork: proxy_arp on the network, for any address routed out of
	// another network.
	ProxyNetwork
	// ProxyHostRoute: a host-routed link, where every request is answered.
	ProxyHostRoute
)

// ProxyARPEntry is one address (or, for ProxyNetwork and ProxyHostRoute,
// every address) the router answers ARP for on a network.
type ProxyARPEntry struct {
	Network string
	IP      netip.Addr // ProxyPublished only
	Kind    ProxyARPKind
}

// ProxyARP returns the proxy-ARP entries, in no particular order.
func (r *Router) ProxyARP() []ProxyARPEntry {
	s := r.snap.Load()
	var out []ProxyARPEntry
	for k := range s.published {
		if n := s.net(uint16(k >> 32)); n != nil {
			out = append(out, ProxyARPEntry{Network: n.name, IP: packet.Addr(uint32(k)), Kind: ProxyPublished})
		}
	}
	s.eachNetwork(func(n *network) {
		if n.proxyARP {
			out = append(out, ProxyARPEntry{Network: n.name, Kind: ProxyNetwork})
		}
		if n.hostRoute {
			out = append(out, ProxyARPEntry{Network: n.name, Kind: ProxyHostRoute})
		}
	})
	return out
}

// BridgeEntry is one MAC address learned on a switched (multi-link) network.
type BridgeEntry struct {
	Network string
	MAC     packet.MAC
	Link    string
	Age     time.Duration // since last seen, in whole seconds
}

// ErrNoNetwork is returned for an unknown network name.
var ErrNoNetwork = errors.New("no network")

// BridgeEntries returns the learned MACs of the named network, or of every
// network when name is "", in no particular order.
func (r *Router) BridgeEntries(name string) ([]BridgeEntry, error) {
	s := r.snap.Load()
	sec := r.clock.Now() / 1e9
	var out []BridgeEntry
	found := name == ""
	s.eachNetwork(func(n *network) {
		if name != "" && n.name != name {
			return
		}
		found = true
		if n.bridge == nil {
			return
		}
		for _, e := range n.bridge.entries(sec) {
			if e.Link >= len(n.links) {
				continue // learned on a link a reload removed
			}
			out = append(out, BridgeEntry{Network: n.name, MAC: e.MAC, Link: s.linkName(n.links[e.Link]), Age: time.Duration(e.Age) * time.Second})
		}
	})
	if !found {
		return nil, fmt.Errorf("%w %q", ErrNoNetwork, name)
	}
	return out, nil
}

// Drops returns the drop counters summed over workers.
func (r *Router) Drops() [NumDropReasons]uint64 {
	var out [NumDropReasons]uint64
	for _, w := range r.allWorkers() {
		for i := range out {
			out[i] += w.sdrops[i].Load()
		}
	}
	return out
}

// Counters returns the event counters summed over workers.
func (r *Router) Counters() [NumCounters]uint64 {
	var out [NumCounters]uint64
	for _, w := range r.allWorkers() {
		for i := range out {
			out[i] += w.scnt[i].Load()
		}
	}
	return out
}

// StageCounters returns the router stage's counters (in Descs order),
// summed over workers.
func (r *Router) StageCounters() []counter.Value {
	d, c := r.Drops(), r.Counters()
	out := make([]counter.Value, 0, int(NumDropReasons)-1+int(NumCounters))
	for i := DropNone + 1; i < NumDropReasons; i++ {
		out = append(out, counter.Value{Desc: dropDescs[i], Value: d[i]})
	}
	for i := Counter(0); i < NumCounters; i++ {
		out = append(out, counter.Value{Desc: eventDescs[i], Value: c[i]})
	}
	return out
}

// AllCounters returns the counters of every stage: the router's
// (StageCounters), the NAT's, the neighbour cache's, then each open port's
// driver counters (Value.Port set to the port's name), in configuration
// order.
func (r *Router) AllCounters() []counter.Value {
	out := r.StageCounters()
	out = append(out, r.NAT.Counters()...)
	out = append(out, r.Neigh.Counters()...)
	out = append(out, r.haCounters()...)
	for _, p := range r.snap.Load().ports {
		if p.closed.Load() || p.host != nil {
			continue
		}
		for _, v := range p.p.Counters() {
			v.Port = p.name
			out = append(out, v)
		}
	}
	return out
}

// ClearStats zeroes the router's drop, event, port and link counters.
func (r *Router) ClearStats() {
	for _, w := range r.allWorkers() {
		for i := range w.sdrops {
			w.sdrops[i].Store(0)
		}
		for i := range w.scnt {
			w.scnt[i].Store(0)
		}
	}
	for _, p := range r.snap.Load().ports {
		p.rxPackets.Store(0)
		p.rxBytes.Store(0)
		p.txPackets.Store(0)
		p.txBytes.Store(0)
		p.txErrors.Store(0)
		p.drops.Store(0)
	}
}

func (r *Router) allWorkers() []*worker {
	r.wmu.Lock()
	ws := append(append([]*worker{}, r.workers...), r.qworkers...)
	r.wmu.Unlock()
	if r.ctl != nil {
		ws = append(ws, r.ctl)
	}
	return ws
}

// AddRoute adds a runtime route to prefix p via gateway gw (it lasts until
// the next reload) and returns the network the gateway is on. The gateway
// must be on one of the router's subnets.
func (r *Router) AddRoute(p netip.Prefix, gw netip.Addr) (network string, err error) {
	if !p.Addr().Is4() || !gw.Is4() {
		return "", errors.New("IPv4 only")
	}
	s := r.snap.Load()
	ni := s.networkContaining(packet.U32(gw))
	if ni < 0 {
		return "", fmt.Errorf("gateway %s is on no connected network", gw)
	}
	r.FIB.Add(fib.Route{Prefix: p.Masked(), Source: fib.Runtime,
		NH: fib.NextHop{Kind: fib.KindGateway, Network: uint16(ni), Gateway: packet.U32(gw)}})
	return s.nets[ni].name, nil
}

// DeleteRoute deletes the runtime route to prefix p; false if there is none.
func (r *Router) DeleteRoute(p netip.Prefix) bool {
	return r.FIB.Delete(p.Masked(), fib.Runtime)
}

// TraceMax is the most packets one trace records.
const TraceMax = traceKeep

// Trace starts recording the next n packets (1..TraceMax) as they pass each
// stage; it forgets the packets of an earlier trace.
func (r *Router) Trace(n int) error {
	if n <= 0 || n > TraceMax {
		return fmt.Errorf("trace: %d packets is outside 1..%d", n, TraceMax)
	}
	r.trace.arm(n)
	return nil
}

// TraceLines renders the packets recorded by Trace: per packet a line, then
// an indented line per stage event.
func (r *Router) TraceLines() []string {
	s := r.snap.Load()
	netName := func(i uint32) string {
		if n := s.net(uint16(i)); n != nil {
			return n.name
		}
		return fmt.Sprint(i)
	}
	portName := func(i uint32) string {
		if int(i) < len(s.ports) {
			return s.ports[i].name
		}
		return fmt.Sprint(i)
	}
	ruleName := func(set uint32, rule int32) string {
		rs := s.filters.set.Ruleset(int(set))
		if rs == nil {
			return fmt.Sprintf("ruleset %d rule %d", set, rule)
		}
		if rule == filter.Default {
			return rs.Name() + " default"
		}
		if c := rs.Config(); int(rule) >= 0 && int(rule) < len(c.Rules) {
			return fmt.Sprintf("%s rule %d (line %d)", rs.Name(), rule+1, c.Rules[rule].Pos.Line)
		}
		return fmt.Sprintf("%s rule %d", rs.Name(), rule+1)
	}
	names := traceNames{net: netName, port: portName, rule: ruleName}
	var out []string
	for _, p := range r.trace.packets() {
		out = p.appendLines(out, names)
	}
	return out
}

// StartCapture writes the next n frames seen on the named port, in and out,
// to a pcap file at path (created or truncated); a capture already running
// on the port is stopped first. An unknown port gives an error wrapping
// ErrNoPort.
func (r *Router) StartCapture(portName, path string, n int) error {
	p, err := r.portByName(portName)
	if err != nil {
		return err
	}
	c, err := newCapture(path, n)
	if err != nil {
		return err
	}
	c.failed = func(path string, err error) {
		r.log.Error("capture stopped: the file cannot be written", "port", p.name, "file", path, "err", err)
	}
	if old := p.capture.Swap(c); old != nil {
		old.stop()
	}
	return nil
}

// ErrNoCapture is returned by StopCapture when no capture runs on the port.
var ErrNoCapture = errors.New("no capture running")

// StopCapture ends the capture running on the named port and returns the
// path of its file.
func (r *Router) StopCapture(portName string) (path string, err error) {
	p, err := r.portByName(portName)
	if err != nil {
		return "", err
	}
	c := p.capture.Swap(nil)
	if c == nil {
		return "", fmt.Errorf("%w on %s", ErrNoCapture, p.name)
	}
	c.stop()
	return c.path, nil
}

// Names are what the console completes: the router's name, its open ports,
// its networks, the addresses it knows (its own and its neighbours', sorted
// as text), the runtime routes and the filter rulesets.
type Names struct {
	Router        string
	Ports         []string
	Networks      []string
	Addresses     []string
	RuntimeRoutes []string
	Filters       []string
}

// Names returns the names for completion.
func (r *Router) Names() Names {
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
			n.RuntimeRoutes = append(n.RuntimeRoutes, rt.Prefix.String())
		}
	}
	for i := 0; i < s.filters.set.Len(); i++ {
		n.Filters = append(n.Filters, s.filters.set.Ruleset(i).Name())
	}
	return n
}
