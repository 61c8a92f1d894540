package router

// Host interfaces (config: [[network]] host = "NAME"): the Linux control
// plane beside the data path, as VPP's linux-cp. For each such network the
// router keeps a kernel TAP in its own namespace with the network's MAC,
// MTU and addresses, so that unmodified daemons (BIRD, FRR, keepalived,
// dnsmasq, sshd) run on it:
//
//   - punt: what arrives for the router on the network and the router does
//     not answer itself goes to the TAP as it was received, without its
//     802.1Q tag: anything to the router's addresses except an unfragmented
//     ICMP echo request (TCP, UDP, ICMP replies and errors, OSPF, fragments),
//     UDP to the limited or the network's broadcast (DHCP, also from
//     0.0.0.0), link-local multicast 224.0.0.0/24 (VRRP, OSPF, IGMP), ARP
//     replies addressed to the router's MAC and gratuitous ARP. ARP requests
//     and echo requests stay the router's, so nothing is answered twice.
//     Forwarded packets never go there. Punts are limited per network
//     (host_punt_rate) by a token bucket in each worker that reads the
//     network's links (the rate is shared among them), like the ICMP limiter.
//   - inject: every frame the kernel writes on the TAP is sent on the
//     network's links the way the router sends its own frames (txTo: the
//     learned link on a switched network, else flooded; tagged per link).
//   - address sync: an address a daemon adds to the TAP (a keepalived VIP)
//     becomes one of the network's addresses at run time, through the same
//     compile and snapshot store as a reload; removed, it goes away again.
//     Addresses from the file stay whatever the kernel does.
//
// The host TAP is a port of its own in Router.ports (portState.host set, no
// membership): its worker reads what the kernel writes and frame() hands it
// to inject; punted frames are queued on it like on any egress port, so the
// port's rx counters count injected frames, its tx counters punted ones and
// its drops the punts over the limit. Ports() and AllCounters() leave host
// ports out; HostInterfaces() reports them. The kernel side (creating the
// TAP, its addresses, the netlink watch, keeping the kernel off the ports'
// devices) is behind HostSystem: package router/hostif on Linux, a fake in
// the tests.

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"vrouter/config"
	"vrouter/fib"
	"vrouter/packet"
	"vrouter/router/port"
)

// HostSystem creates and configures host interfaces in the kernel. Calls
// come from the control plane (under the router's lock), never from a
// worker.
type HostSystem interface {
	// Open creates the TAP dev with the given MAC and MTU, sets it up and
	// returns the port the router reads and writes, and the device's
	// ifindex. A device of that name must not exist yet.
	Open(dev string, mac packet.MAC, mtu int) (p port.Port, ifindex int, err error)
	// SetLink changes the MAC and MTU of an open host interface.
	SetLink(dev string, mac packet.MAC, mtu int) error
	// AddAddr and DelAddr add and remove one of dev's kernel addresses.
	AddAddr(dev string, p netip.Prefix) error
	DelAddr(dev string, p netip.Prefix) error
	// Isolate keeps the kernel's own IP stack off the given port devices
	// (the router reads them; with host interfaces the kernel has the
	// router's addresses and would answer there too). nil undoes it.
	Isolate(devices []string) error
	// Watch calls f with the IPv4 address changes of every interface until
	// stop is called; f is never called concurrently.
	Watch(f func([]AddrEvent)) (stop func(), err error)
}

// AddrEvent is one kernel address change. Reset (with no address) says
// that the events after it in the same batch list every address there is
// (a new or renewed subscription): addresses of host interfaces not listed
// are gone.
type AddrEvent struct {
	Ifindex int
	Prefix  netip.Prefix
	Added   bool
	Reset   bool
}

// hostIf is the state of one host interface that lives across reloads (on
// its portState). Fields other than dev and ifindex are guarded by
// Router.mu.
type hostIf struct {
	dev     string
	ifindex int
	network string
	mac     packet.MAC
	mtu     int
	static  []netip.Prefix // the file's addresses, put on the device by the router
	kernel  []netip.Prefix // addresses someone else added to the device
}

// hostNet is a network's host interface as the data path sees it (in the
// snapshot).
type hostNet struct {
	port int // index of the host port (Router.ports)
	dev  string
	// rate and burst of each reading worker's token bucket: tokens per
	// second, and the most tokens a bucket holds.
	rate, burst int64
	cfgRate     int
	kernel      []netip.Prefix // the kernel-added addresses in use
	ignored     []IgnoredAddr  // and those not used, with why
}

// hostTable maps host ports to their networks (in the snapshot).
type hostTable struct {
	byPort []int32 // port index -> network slot + 1; 0: not a host port
}

func (t *hostTable) slotOf(port int) (uint16, bool) {
	if port < len(t.byPort) && t.byPort[port] > 0 {
		return uint16(t.byPort[port] - 1), true
	}
	return 0, false
}

// hostWork is a worker's host-interface state.
type hostWork struct {
	// l2len is the link header length of the frame being processed (0
	// for a packet without one, a fragment the NAT held).
	l2len   int
	buckets []puntBucket // by network slot
}

type puntBucket struct{ tokens, last int64 }

// ---- data path -----------------------------------------------------------------

// inject sends a frame the kernel wrote on host port p out on its network.
func (w *worker) inject(p *portState, buf []byte, off, n int) {
	f := buf[off : off+n]
	l2, ok := packet.ParseL2(f)
	if !ok {
		w.drop(DropL2Short)
		w.portDrop[p.idx]++
		return
	}
	if w.tp != nil {
		w.trRx(p.idx, l2.VID)
	}
	if l2.Tagged {
		w.drop(DropHostTagged)
		w.portDrop[p.idx]++
		return
	}
	slot, ok := w.snap.host.slotOf(p.idx)
	nw := w.snap.net(slot)
	if !ok || nw == nil {
		w.drop(DropHostStale)
		return
	}
	w.cnt[CntHostInjected]++
	eth := packet.Ether(f)
	w.txTo(nw, eth.Dst(), eth.Src(), buf, off+l2.HdrLen, n-l2.HdrLen, l2.Type, -1, nil)
}

// puntToken takes a token of nw's punt bucket in this worker.
func (w *worker) puntToken(nw *network) bool {
	h := nw.host
	if int(nw.idx) >= len(w.hw.buckets) {
		w.hw.buckets = append(w.hw.buckets, make([]puntBucket, int(nw.idx)+1-len(w.hw.buckets))...)
	}
	b := &w.hw.buckets[nw.idx]
	const scale = 1e9
	if el := w.now - b.last; b.last == 0 || el >= 1e9 || el < 0 {
		b.tokens = h.burst * scale
	} else {
		b.tokens += el * h.rate // tokens scaled by 1e9 per ns
		if b.tokens > h.burst*scale {
			b.tokens = h.burst * scale
		}
	}
	b.last = w.now
	if b.tokens >= scale {
		b.tokens -= scale
		return true
	}
	return false
}

// punt hands the IPv4 packet ip = buf[off:...], received on nw, to nw's
// host interface with the Ethernet header it came with (its 802.1Q tag
// removed). It reports false when nw has no host interface.
func (w *worker) punt(nw *network, buf []byte, off int, ip packet.IPv4) bool {
	h := nw.host
	if h == nil {
		return false
	}
	if !w.puntToken(nw) {
		w.drop(DropHostPuntLimit)
		w.portDrop[h.port]++
		return true
	}
	start := off - packet.EtherHdrLen
	switch w.hw.l2len {
	case packet.EtherHdrLen:
	case packet.EtherHdrLen + packet.VLANHdrLen:
		// MACs over the tag; the inner EtherType stays where it is.
		copy(buf[start:off-2], buf[off-packet.EtherHdrLen-packet.VLANHdrLen:off-6])
	default:
		// A packet without its link header (the NAT held it): address it
		// as the kernel expects to receive it.
		packet.PutEther(buf[start:], groupMAC(ip.Dst(), nw), packet.MAC{}, 0, packet.EtherTypeIPv4)
	}
	w.queueTx(h.port, buf[start:off+len(ip)])
	w.cnt[CntHostPunted]++
	if w.tp != nil {
		w.trTx(h.port, 0, off+len(ip)-start)
	}
	return true
}

// groupMAC is the destination MAC of a frame carrying an IPv4 packet to
// dst on nw: broadcast, IPv4 multicast (RFC 1112) or nw's own.
func groupMAC(dst uint32, nw *network) packet.MAC {
	switch {
	case dst == 0xffffffff || nw.isBroadcastOn(dst):
		return packet.Broadcast
	case packet.IsMulticast(dst):
		return packet.MAC{0x01, 0x00, 0x5e, byte(dst>>16) & 0x7f, byte(dst >> 8), byte(dst)}
	}
	return nw.mac
}

// puntLocal punts a packet for one of the router's addresses unless the
// router answers it itself (an unfragmented ICMP echo request). It reports
// whether the packet was taken.
func (w *worker) puntLocal(buf []byte, off int, ip packet.IPv4, nw *network) bool {
	if ip.Proto() == packet.ProtoICMP && !ip.IsFragment() {
		if pl := ip.Payload(); len(pl) >= 1 && pl[0] == packet.ICMPEchoRequest {
			return false
		}
	}
	return w.punt(nw, buf, off, ip)
}

// puntGroup punts UDP to the limited broadcast or nw's broadcast (DHCP)
// and anything to link-local multicast 224.0.0.0/24 (VRRP, OSPF). It
// reports whether the packet was taken.
func (w *worker) puntGroup(buf []byte, off int, ip packet.IPv4, nw *network, m *packet.VnetHdr) bool {
	dst := ip.Dst()
	bcast := dst == 0xffffffff || nw.isBroadcastOn(dst)
	if !(bcast && ip.Proto() == packet.ProtoUDP) && dst&0xffffff00 != 0xe0000000 {
		return false
	}
	if m != nil {
		if isGSO(m) {
			w.drop(DropLocalProto)
			return true
		}
		if !w.settle(buf, off, ip, m, w.noNext) {
			return true
		}
	}
	return w.punt(nw, buf, off, ip)
}

// puntUnspecified punts UDP from 0.0.0.0 (a DHCP client without an
// address) to a broadcast or the router's address on nw; RFC 1812 5.3.7
// lets a router take these. It reports whether the packet was taken.
func (w *worker) puntUnspecified(buf []byte, off int, ip packet.IPv4, nw *network) bool {
	if ip.Src() != 0 || ip.Proto() != packet.ProtoUDP {
		return false
	}
	dst := ip.Dst()
	li, mine := w.snap.local.get(dst)
	if dst != 0xffffffff && !nw.isBroadcastOn(dst) && !(mine && li == nw.idx) {
		return false
	}
	return w.punt(nw, buf, off, ip)
}

// puntARP hands a copy of an ARP packet b (from l2src on nw) to the host
// interface when the kernel needs it for its neighbour table: a reply to
// the router's MAC, or a gratuitous announcement.
func (w *worker) puntARP(nw *network, l2src packet.MAC, b []byte) {
	a := packet.ARP(b)
	dst := nw.mac
	switch {
	case a.Op() == packet.ARPReply && a.TargetMAC() == nw.mac:
	case a.SenderIP() == a.TargetIP() && a.SenderIP() != 0:
		dst = packet.Broadcast
	default:
		return
	}
	h := nw.host
	if !w.puntToken(nw) {
		w.drop(DropHostPuntLimit)
		w.portDrop[h.port]++
		return
	}
	s := w.getScratch()
	o := port.Headroom
	packet.PutEther(s[o:], dst, l2src, 0, packet.EtherTypeARP)
	n := packet.EtherHdrLen + copy(s[o+packet.EtherHdrLen:], b[:packet.ARPLen])
	for ; n < 60; n++ {
		s[o+n] = 0
	}
	w.queueTx(h.port, s[o:o+n])
	w.cnt[CntHostPunted]++
	if w.tp != nil {
		w.trTx(h.port, 0, n)
	}
}

// ---- compile ---------------------------------------------------------------------

// hostCompile adds the host interfaces to a snapshot being compiled: it
// finds each network's host port among the ports and decides which of the
// addresses the kernel added to it the network takes.
type hostCompile struct {
	s     *snapshot
	ports []*portState
	cfg   *config.Config
	// configured addresses and subnets of every network, by network name
	cfgAddrs map[netip.Addr]string
	nets     []namedPrefix
	taken    []namedPrefix // kernel-added addresses accepted so far
}

type namedPrefix struct {
	p    netip.Prefix
	name string
}

func newHostCompile(cfg *config.Config, ports []*portState, s *snapshot) *hostCompile {
	return &hostCompile{s: s, ports: ports, cfg: cfg}
}

// addrs returns the addresses of network n (configured as nc): the file's,
// then those the kernel added to its host interface and that fit. It sets
// n.host and the host table.
func (hc *hostCompile) addrs(n *network, nc *config.Network) []netip.Prefix {
	if nc.Host == "" {
		return nc.Addresses
	}
	var hp *portState
	for _, p := range hc.ports {
		if p.host != nil && p.host.dev == nc.Host && !p.closed.Load() {
			hp = p
			break
		}
	}
	if hp == nil {
		return nc.Addresses // not open (yet): a reload's trial compile
	}
	readers := 0
	seen := map[int]bool{}
	for _, l := range n.links {
		if !seen[l.port] {
			seen[l.port] = true
			readers += max(1, len(hc.ports[l.port].queues))
		}
	}
	rate := int64(max(1, nc.HostPuntRate/max(1, readers)))
	h := &hostNet{port: hp.idx, dev: nc.Host, rate: rate, burst: max(16, (rate+9)/10), cfgRate: nc.HostPuntRate}
	n.host = h
	if len(hc.s.host.byPort) < len(hc.ports) {
		hc.s.host.byPort = append(hc.s.host.byPort, make([]int32, len(hc.ports)-len(hc.s.host.byPort))...)
	}
	hc.s.host.byPort[hp.idx] = int32(n.idx) + 1
	out := nc.Addresses
	for _, p := range hp.host.kernel {
		if why := hc.check(p, nc.Name); why != "" {
			h.ignored = append(h.ignored, IgnoredAddr{Prefix: p, Reason: why})
			continue
		}
		hc.taken = append(hc.taken, namedPrefix{p, nc.Name})
		h.kernel = append(h.kernel, p)
		out = append(out[:len(out):len(out)], p)
	}
	return out
}

// natConfig is the configuration the NAT compiles: cfg, with the
// kernel-added addresses taken added to their networks' (so that the NAT
// knows them as the router's own).
func (hc *hostCompile) natConfig() *config.Config {
	if len(hc.taken) == 0 {
		return hc.cfg
	}
	c := *hc.cfg
	c.Networks = slices.Clone(c.Networks)
	for _, t := range hc.taken {
		if i := c.NetworkIndex(t.name); i >= 0 {
			n := &c.Networks[i]
			n.Addresses = append(slices.Clip(n.Addresses), t.p)
		}
	}
	return &c
}

// check says why a kernel-added address p of network name cannot be used
// ("" when it can): it is already an address of the router, or its subnet
// overlaps another network's.
func (hc *hostCompile) check(p netip.Prefix, name string) string {
	if !p.Addr().Is4() || p.Bits() == 0 {
		return "not an IPv4 interface address"
	}
	if hc.cfgAddrs == nil {
		hc.cfgAddrs = map[netip.Addr]string{}
		for _, nc := range hc.cfg.Networks {
			for _, a := range nc.Addresses {
				hc.cfgAddrs[a.Addr()] = nc.Name
				hc.nets = append(hc.nets, namedPrefix{a.Masked(), nc.Name})
			}
		}
	}
	if on, ok := hc.cfgAddrs[p.Addr()]; ok {
		return fmt.Sprintf("already an address of network %q", on)
	}
	for _, t := range hc.taken {
		if t.p.Addr() == p.Addr() {
			return fmt.Sprintf("already added on network %q", t.name)
		}
	}
	for _, list := range [][]namedPrefix{hc.nets, hc.taken} {
		for _, o := range list {
			if o.name != name && o.p.Masked().Overlaps(p.Masked()) {
				return fmt.Sprintf("overlaps %s of network %q", o.p.Masked(), o.name)
			}
		}
	}
	return ""
}

// ---- control plane ---------------------------------------------------------------

// syncHosts makes the host interfaces match cfg, whose plan pl was compiled
// over *all without the host interfaces that cfg adds: it opens the new
// ones (appended to *all and *opened), retires those cfg no longer names
// (marked closed and appended to *removed, for the caller to close after
// publishing), and returns the plan compiled again over them. Kept host
// interfaces are left open (daemons keep their sessions); their MAC, MTU
// and file addresses are brought up to date. On error nothing changed.
func (r *Router) syncHosts(cfg *config.Config, all, opened, removed *[]*portState, pl *plan) (*plan, error) {
	want := map[string]*config.Network{}
	var order []string
	for i := range cfg.Networks {
		if h := cfg.Networks[i].Host; h != "" {
			want[h] = &cfg.Networks[i]
			order = append(order, h)
		}
	}
	existing := map[string]*portState{}
	for _, p := range *all {
		if p.host != nil && !p.closed.Load() {
			existing[p.host.dev] = p
		}
	}
	if len(want) == 0 && len(existing) == 0 {
		return pl, nil
	}
	hs := r.opts.Host
	if hs == nil && len(want) > 0 {
		return nil, fmt.Errorf("network %q: host interface %q: this router cannot create host interfaces", want[order[0]].Name, order[0])
	}
	var retired, fresh []*portState
	fail := func(err error) (*plan, error) {
		for _, p := range fresh {
			p.closed.Store(true)
			p.p.Close()
		}
		for _, p := range retired {
			p.closed.Store(false)
		}
		return nil, err
	}
	for dev, p := range existing {
		if want[dev] == nil {
			p.closed.Store(true)
			retired = append(retired, p)
		}
	}
	for _, dev := range order {
		nc := want[dev]
		if existing[dev] != nil {
			continue
		}
		n := pl.snap.net(pl.snap.slots[nc.Name])
		if n == nil {
			return fail(fmt.Errorf("network %q: not compiled", nc.Name))
		}
		hp, ifindex, err := hs.Open(dev, n.mac, n.mtu)
		if err != nil {
			return fail(fmt.Errorf("network %q: host interface %q: %v", nc.Name, dev, err))
		}
		ps := newPortState(len(*all)+len(fresh), hp)
		ps.name = "host:" + dev
		ps.host = &hostIf{dev: dev, ifindex: ifindex, network: nc.Name, mac: n.mac, mtu: n.mtu}
		fresh = append(fresh, ps)
	}
	ports := append(append([]*portState(nil), *all...), fresh...)
	npl, err := compile(cfg, ports, r.snap.Load())
	if err != nil {
		return fail(err)
	}
	// Nothing can fail from here on: bring the kernel side up to date.
	for _, dev := range order {
		nc := want[dev]
		p := existing[dev]
		if p == nil {
			for _, f := range fresh {
				if f.host.dev == dev {
					p = f
				}
			}
		}
		h := p.host
		n := npl.snap.net(npl.snap.slots[nc.Name])
		h.network = nc.Name
		if n.mac != h.mac || n.mtu != h.mtu {
			if err := hs.SetLink(dev, n.mac, n.mtu); err != nil {
				r.log.Warn("host interface: setting MAC and MTU", "device", dev, "mac", n.mac.String(), "mtu", n.mtu, "err", err)
			} else {
				h.mac, h.mtu = n.mac, n.mtu
			}
		}
		static := hostStatic(nc)
		for _, a := range h.static {
			if !slices.Contains(static, a) {
				if err := hs.DelAddr(dev, a); err != nil {
					r.log.Warn("host interface: removing address", "device", dev, "address", a, "err", err)
				}
			}
		}
		h.static = static
		h.kernel = slices.DeleteFunc(h.kernel, func(a netip.Prefix) bool { return slices.Contains(h.static, a) })
		for _, a := range h.static {
			// Also puts back a file address someone removed.
			if err := hs.AddAddr(dev, a); err != nil {
				r.log.Warn("host interface: adding address", "device", dev, "address", a, "err", err)
			}
		}
	}
	*all = ports
	*opened = append(*opened, fresh...)
	*removed = append(*removed, retired...)
	r.isolate(hs, ports, len(want) > 0)
	if len(want) > 0 && !r.started.IsZero() {
		r.watchHosts()
	}
	return npl, nil
}

// hostStatic is what a network's host interface carries from the file:
// its addresses, IPv6 ones and a configured link-local one included.
func hostStatic(nc *config.Network) []netip.Prefix {
	static := append(slices.Clone(nc.Addresses), nc.Addresses6...)
	if nc.LinkLocal.IsValid() {
		static = append(static, netip.PrefixFrom(nc.LinkLocal, 64))
	}
	return static
}

// isolate keeps the kernel off the devices of the ports the router reads
// while it has host interfaces (on), and lets it back when not.
func (r *Router) isolate(hs HostSystem, ports []*portState, on bool) {
	var devs []string
	if on {
		for _, p := range ports {
			if p.host != nil || p.closed.Load() || p.p == nil {
				continue
			}
			switch p.p.Driver() {
			case "tap", "pipe":
				// A TAP's kernel side is the VM's wire, not the router's.
			default:
				devs = append(devs, p.p.Device())
			}
		}
		sort.Strings(devs)
	}
	if slices.Equal(devs, r.hostState.isolated) {
		return
	}
	if err := hs.Isolate(devs); err != nil {
		r.log.Error("host interfaces: cannot keep the kernel's IP stack off the ports' devices; it may answer there as well (install nftables)", "devices", devs, "err", err)
		return
	}
	r.hostState.isolated = devs
}

// hostState is the router's host-interface bookkeeping (under Router.mu).
type hostState struct {
	isolated  []string
	stopWatch func()
}

// watchHosts starts following the kernel's address changes (once).
func (r *Router) watchHosts() {
	if r.hostState.stopWatch != nil || r.opts.Host == nil {
		return
	}
	stop, err := r.opts.Host.Watch(r.hostAddrEvents)
	if err != nil {
		r.log.Error("host interfaces: cannot follow the kernel's address changes", "err", err)
		return
	}
	r.hostState.stopWatch = stop
}

// startHosts is Start's part: follow the kernel's addresses when there
// are host interfaces.
func (r *Router) startHosts() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.ports {
		if p.host != nil && !p.closed.Load() {
			r.watchHosts()
			return
		}
	}
}

// stopHosts is Stop's part: stop following addresses and let the kernel
// back onto the ports' devices (the host TAPs go with the ports).
func (r *Router) stopHosts() {
	r.mu.Lock()
	stop := r.hostState.stopWatch
	r.hostState.stopWatch = nil
	if r.hostState.isolated != nil && r.opts.Host != nil {
		if err := r.opts.Host.Isolate(nil); err != nil {
			r.log.Warn("host interfaces: undoing the ports' isolation", "err", err)
		}
		r.hostState.isolated = nil
	}
	r.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// hostAddrEvents applies kernel address changes: an address added to a
// host interface (and not from the file) joins its network, a removed one
// leaves it. The new addresses are published like a reload publishes (a
// new snapshot and its connected routes; runtime routes, neighbours and
// NAT sessions are kept), then announced with gratuitous ARP.
func (r *Router) hostAddrEvents(evs []AddrEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped.Load() {
		return
	}
	hosts := map[int]*hostIf{}
	for _, p := range r.ports {
		if p.host != nil && !p.closed.Load() {
			hosts[p.host.ifindex] = p.host
		}
	}
	next := map[*hostIf][]netip.Prefix{}
	for _, h := range hosts {
		next[h] = slices.Clone(h.kernel)
	}
	for _, ev := range evs {
		if ev.Reset {
			for h := range next {
				next[h] = nil
			}
			continue
		}
		h := hosts[ev.Ifindex]
		if h == nil || !ev.Prefix.Addr().Is4() || slices.Contains(h.static, ev.Prefix) {
			continue
		}
		i := slices.Index(next[h], ev.Prefix)
		switch {
		case ev.Added && i < 0:
			next[h] = append(next[h], ev.Prefix)
		case !ev.Added && i >= 0:
			next[h] = slices.Delete(next[h], i, i+1)
		}
	}
	var added []netip.Prefix
	var addedOn []string
	changed := false
	for h, ks := range next {
		if slices.Equal(ks, h.kernel) {
			continue
		}
		changed = true
		for _, p := range ks {
			if !slices.Contains(h.kernel, p) {
				added, addedOn = append(added, p), append(addedOn, h.network)
				r.log.Info("host interface address added", "device", h.dev, "network", h.network, "address", p)
			}
		}
		for _, p := range h.kernel {
			if !slices.Contains(ks, p) {
				r.log.Info("host interface address removed", "device", h.dev, "network", h.network, "address", p)
			}
		}
		h.kernel = ks
	}
	if !changed {
		return
	}
	old := r.snap.Load()
	pl, err := compile(old.cfg, r.ports, old)
	if err != nil {
		r.log.Error("host interface addresses not applied", "err", err)
		return
	}
	// The file did not change: runtime routes and neighbours stay; the NAT
	// takes the same rules with the router's new addresses.
	r.snap.Store(pl.snap)
	r.FIB.ReplaceSources(map[fib.Source][]fib.Route{fib.Connected: pl.routes[fib.Connected], fib.Static: pl.routes[fib.Static]})
	if _, why := r.NAT.Commit(pl.snap.nat); why != "" {
		r.log.Info("host interface addresses: NAT", "changes", why)
	}
	for i, p := range added {
		slot, ok := pl.snap.slotOf(addedOn[i])
		if !ok {
			continue
		}
		if n := pl.snap.net(slot); n != nil && n.host != nil && slices.Contains(n.host.kernel, p) {
			r.garp(slot, packet.U32(p.Addr()))
		}
	}
	if f := r.kernelResync.Load(); f != nil {
		(*f)()
	}
}

// garp announces addr on the network in slot (control worker).
func (r *Router) garp(slot uint16, addr uint32) {
	r.ctlMu.Lock()
	defer r.ctlMu.Unlock()
	w := r.ctl
	if w == nil {
		return
	}
	w.begin()
	if n := w.snap.net(slot); n != nil {
		w.sendGARP(n, addr)
	}
	w.end()
}

// ResolveDevice gives the network whose host interface is the kernel
// device ifindex (or, when ifindex is 0, called name): for routes the
// kernel table import finds through a host interface ("dev NAME").
func (r *Router) ResolveDevice(ifindex int, name string) (uint16, bool) {
	s := r.snap.Load()
	for _, p := range s.ports {
		if p.host == nil || p.closed.Load() {
			continue
		}
		if (ifindex > 0 && p.host.ifindex == ifindex) || (ifindex <= 0 && name != "" && p.host.dev == name) {
			if slot, ok := s.host.slotOf(p.idx); ok && s.net(slot) != nil {
				return slot, true
			}
		}
	}
	return 0, false
}

// IgnoredAddr is a kernel-added address a network does not take, and why.
type IgnoredAddr struct {
	Prefix netip.Prefix
	Reason string
}

// HostInterface is one network's host interface and its counters.
type HostInterface struct {
	Network, Device string
	Ifindex         int
	MAC             packet.MAC
	MTU             int
	PuntRate        int            // host_punt_rate, packets/s
	Static          []netip.Prefix // the file's addresses
	Kernel          []netip.Prefix // addresses the kernel added that the network uses
	Ignored         []IgnoredAddr  // addresses the kernel added that it does not
	// Punted: packets (and bytes) handed to the kernel; Injected: frames
	// the kernel sent; PuntDrops: punts over the rate limit and frames
	// from the kernel dropped; PuntErrors: punts the TAP refused.
	PuntedPackets, PuntedBytes     uint64
	InjectedPackets, InjectedBytes uint64
	PuntDrops, PuntErrors          uint64
}

// HostInterfaces returns the networks' host interfaces, in network order.
func (r *Router) HostInterfaces() []HostInterface {
	s := r.snap.Load()
	var out []HostInterface
	s.eachNetwork(func(n *network) {
		h := n.host
		if h == nil {
			return
		}
		p := s.ports[h.port]
		hi := HostInterface{Network: n.name, Device: h.dev, MAC: n.mac, MTU: n.mtu, PuntRate: h.cfgRate,
			Kernel: h.kernel, Ignored: h.ignored,
			PuntedPackets: p.txPackets.Load(), PuntedBytes: p.txBytes.Load(),
			InjectedPackets: p.rxPackets.Load(), InjectedBytes: p.rxBytes.Load(),
			PuntDrops: p.drops.Load(), PuntErrors: p.txErrors.Load()}
		if p.host != nil {
			hi.Ifindex = p.host.ifindex
		}
		if nc := s.cfg.NetworkByName(n.name); nc != nil {
			hi.Static = hostStatic(nc)
		}
		out = append(out, hi)
	})
	return out
}
