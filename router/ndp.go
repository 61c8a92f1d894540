package router

import (
	"math/rand/v2"
	"sync"
	"time"

	"vrouter/arp"
	"vrouter/packet"
	"vrouter/router/port"
)

// Neighbour discovery (RFC 4861) and router advertisements (RFC 4861 6,
// RDNSS RFC 8106). The router answers solicitations for its addresses
// (globals and the link-local one) and learns from them; it resolves next
// hops with solicitations to the solicited-node group; it probes its own
// addresses once when they appear (duplicate address detection, without
// waiting: a conflict is logged and counted, as for IPv4); it sends no
// redirects and acts on none, and ignores other routers' advertisements.

// Router advertisement constants (RFC 4861 6.2.1, 10).
const (
	raRouterLifetime   = 1800 // s, AdvDefaultLifetime
	raMaxInterval      = 600 * time.Second
	raMinInterval      = 198 * time.Second // 0.33 * raMaxInterval
	raInitialInterval  = 16 * time.Second  // MAX_INITIAL_RTR_ADVERT_INTERVAL
	raInitialCount     = 3                 // MAX_INITIAL_RTR_ADVERTISEMENTS
	raMinDelayBetween  = 3 * time.Second   // MIN_DELAY_BETWEEN_RAS
	raValidLifetime    = 2592000           // s, AdvValidLifetime (30 days)
	raPreferredLife    = 604800            // s, AdvPreferredLifetime (7 days)
	raDNSLifetime      = 3 * 600           // s, RFC 8106 5.1: 3 * MaxRtrAdvInterval
	raCurHopLimit      = 64
	ndReplyHopLimit    = packet.NDHopLimit
	ndSolicitFlags     = packet.NARouter | packet.NASolicited | packet.NAOverride
	ndUnsolicitedFlags = packet.NARouter | packet.NAOverride
)

// raMessage builds the advertisement a network sends (without checksum):
// its /64 prefixes for SLAAC, its MTU and its DNS servers.
func raMessage(n *network) []byte {
	ra := &packet.RA{HopLimit: raCurHopLimit, Lifetime: raRouterLifetime, SourceLL: n.mac, MTU: uint32(n.v6.mtu),
		ValidLife: raValidLifetime, PreferredLife: raPreferredLife, DNS: n.v6.dns, DNSLifetime: raDNSLifetime}
	for _, a := range n.v6.addrs {
		if a.prefix.Bits() == 64 {
			ra.Prefixes = append(ra.Prefixes, a.prefix.Masked().Addr().As16())
			ra.PrefixLens = append(ra.PrefixLens, 64)
		}
	}
	b := make([]byte, packet.RALenOf(ra))
	packet.PutRA(b, ra)
	return b
}

// raTimers is the state of the periodic advertisements, per network name.
type raTimers struct {
	mu   sync.Mutex
	nets map[string]*raState
}

type raState struct {
	next      int64 // next periodic advertisement
	sent      int   // periodic ones so far (the first few come faster)
	lastMcast int64 // last multicast advertisement (periodic or solicited)
}

func (t *raTimers) get(name string) *raState {
	if t.nets == nil {
		t.nets = map[string]*raState{}
	}
	st := t.nets[name]
	if st == nil {
		st = &raState{}
		t.nets[name] = st
	}
	return st
}

// raTick sends the periodic advertisements that are due (control worker).
func (r *Router) raTick(w *worker) {
	r.ra.mu.Lock()
	defer r.ra.mu.Unlock()
	w.snap.eachNetwork(func(n *network) {
		if n.v6 == nil || !n.v6.ra {
			return
		}
		st := r.ra.get(n.name)
		if st.next != 0 && w.now < st.next {
			return
		}
		w.sendRA(n, packet.AllNodes, packet.MulticastMAC6(packet.AllNodes))
		st.lastMcast = w.now
		st.sent++
		iv := raMinInterval + rand.N(raMaxInterval-raMinInterval)
		if st.sent <= raInitialCount {
			iv = min(iv, raInitialInterval)
		}
		st.next = w.now + int64(iv)
	})
}

// announce6 probes every IPv6 address of the router (DAD) and makes the
// next timer tick send an advertisement on networks with ra (start and
// reload).
func (r *Router) announce6(w *worker) {
	r.ra.mu.Lock()
	for _, st := range r.ra.nets {
		st.next = 0
	}
	r.ra.mu.Unlock()
	w.snap.eachNetwork(func(n *network) {
		if n.v6 == nil {
			return
		}
		w.sendDAD(n, n.v6.ll)
		for _, a := range n.v6.addrs {
			w.sendDAD(n, a.addr)
		}
	})
}

// nd handles a neighbour discovery message m (of ip, at buf[off:])
// received on nw.
func (w *worker) nd(buf []byte, off int, ip packet.IPv6, m []byte, nw *network, l2src packet.MAC) {
	w.cnt[CntNDIn]++
	if e := packet.CheckND(ip, m); e != packet.NDOK {
		w.drop(DropNDInvalid)
		return
	}
	if l2src == nw.mac {
		w.drop(DropNDIgnored) // our own, flooded back by a switch
		return
	}
	msg := packet.NDMsg(m)
	src := ip.Src()
	switch msg.Type() {
	case packet.ICMPv6NeighSolicit:
		t := msg.Target()
		if !nw.mine6(t) {
			w.proxyNS(nw, ip, msg, l2src)
			return
		}
		if packet.IsUnspecified6(src) {
			// Another node's DAD for our address: defend it (RFC 4862 5.4.3).
			w.drop(DropNDConflict)
			w.r.conflict6(nw.name, t, l2src)
			w.sendNA(nw, t, t, packet.AllNodes, packet.MulticastMAC6(packet.AllNodes), ndUnsolicitedFlags)
			return
		}
		dmac := l2src
		if sll, ok := packet.NDLinkLayer(msg.Options(), packet.NDOptSourceLL); ok {
			dmac = sll
			w.learn6(nw, src, sll, arp.Learn{Create: arp.Stale, Override: true})
		}
		w.sendNA(nw, t, t, src, dmac, ndSolicitFlags)
	case packet.ICMPv6NeighAdvert:
		t := msg.Target()
		if nw.mine6(t) {
			w.drop(DropNDConflict)
			w.r.conflict6(nw.name, t, l2src)
			return
		}
		tll, ok := packet.NDLinkLayer(msg.Options(), packet.NDOptTargetLL)
		if !ok {
			w.drop(DropNDIgnored)
			return
		}
		f := msg.NAFlags()
		w.learn6(nw, t, tll, arp.Learn{Reachable: f&packet.NASolicited != 0, Override: f&packet.NAOverride != 0})
		if nw.host != nil {
			w.punt6(nw, buf, off, ip) // the kernel resolves its own next hops too
		}
	case packet.ICMPv6RouterSolicit:
		if !nw.v6.ra {
			if nw.host != nil {
				w.punt6(nw, buf, off, ip) // dnsmasq may advertise instead
				return
			}
			w.drop(DropNDIgnored)
			return
		}
		if packet.IsUnspecified6(src) {
			w.solicitedRA(nw)
			return
		}
		dmac := l2src
		if sll, ok := packet.NDLinkLayer(msg.Options(), packet.NDOptSourceLL); ok {
			dmac = sll
			w.learn6(nw, src, sll, arp.Learn{Create: arp.Stale, Override: true})
		}
		// RFC 4861 6.2.6 allows the answer to go unicast to the soliciting
		// host; it counts against the ICMP rate limit.
		if w.takeToken() {
			w.sendRA(nw, src, dmac)
		}
	default:
		w.drop(DropNDIgnored) // other routers' advertisements, redirects
	}
}

// solicitedRA answers a solicitation from an unspecified source with a
// multicast advertisement, at most one per raMinDelayBetween per network.
func (w *worker) solicitedRA(nw *network) {
	r := w.r
	r.ra.mu.Lock()
	st := r.ra.get(nw.name)
	ok := st.lastMcast == 0 || w.now-st.lastMcast >= int64(raMinDelayBetween)
	if ok {
		st.lastMcast = w.now
	}
	r.ra.mu.Unlock()
	if ok {
		w.sendRA(nw, packet.AllNodes, packet.MulticastMAC6(packet.AllNodes))
	}
}

// learn6 records a neighbour's MAC, sending what waited for it.
func (w *worker) learn6(nw *network, a [16]byte, mac packet.MAC, how arp.Learn) {
	if mac.IsMulticast() || mac.IsZero() {
		return
	}
	w.flushNet, w.flushMAC = nw, mac
	w.r.Neigh.Update6(nw.idx, a, mac, how, w.now, w.flushFn)
	w.flushNet = nil
}

// ndOut builds the IPv6 header around the ND message at b[o+40:o+40+n]
// and sends it to dmac.
func (w *worker) ndOut(nw *network, b []byte, o, n int, src, dst [16]byte, dmac packet.MAC) {
	p := b[o : o+packet.IPv6HdrLen+n]
	packet.PutIPv6Header(p, n, packet.ProtoICMPv6, ndReplyHopLimit, src, dst)
	packet.FinishICMPv6(src, dst, p[packet.IPv6HdrLen:])
	w.txTo(nw, dmac, nw.mac, b, o, len(p), packet.EtherTypeIPv6, -1, nil)
}

// sendNA advertises target (one of the router's addresses on nw, or one
// it answers for) with nw's MAC, from src to dst.
func (w *worker) sendNA(nw *network, target, src, dst [16]byte, dmac packet.MAC, flags uint8) {
	b := w.getScratch()
	o := port.Headroom + l2hdrMax
	n := packet.PutNA(b[o+packet.IPv6HdrLen:], target, flags, nw.mac)
	w.ndOut(nw, b, o, n, src, dst, dmac)
	w.cnt[CntNASent]++
}

// proxiedGroup reports whether dst is the solicited-node group of an
// address the router answers for on nw (proxy NDP).
func (w *worker) proxiedGroup(nw *network, dst [16]byte) bool {
	if len(w.snap.v6.groups) == 0 || !packet.IsSolicitedNode(dst) {
		return false
	}
	_, ok := w.snap.v6.groups[pub6{nw.idx, dst}]
	return ok
}

// proxyNS answers a solicitation for an address that is not the router's:
// on a publish network for a host-routed guest's address (proxy NDP,
// RFC 4861 7.2.8: Override clear), and on a host-routed link for anything
// but the guest's own addresses (the router is the guest's only
// neighbour). Duplicate address detection probes are never answered.
func (w *worker) proxyNS(nw *network, ip packet.IPv6, msg packet.NDMsg, l2src packet.MAC) {
	t, src := msg.Target(), ip.Src()
	_, pub := w.snap.v6.published[pub6{nw.idx, t}]
	if nw.hostRoute {
		_, own := nw.v6.owned[t]
		pub = !own
	}
	if !pub || packet.IsUnspecified6(src) {
		w.drop(DropNDNotOurs)
		return
	}
	dmac := l2src
	if sll, ok := packet.NDLinkLayer(msg.Options(), packet.NDOptSourceLL); ok {
		dmac = sll
		w.learn6(nw, src, sll, arp.Learn{Create: arp.Stale, Override: true})
	}
	flags := uint8(packet.NASolicited)
	if nw.hostRoute {
		flags |= packet.NARouter | packet.NAOverride
	}
	w.sendNA(nw, t, nw.src6For(src), src, dmac, flags)
}

// sendNS solicits target on network ni: to its solicited-node group when
// mac is zero, else unicast to mac (a stale entry's refresh).
func (w *worker) sendNS(ni uint16, target [16]byte, mac packet.MAC) {
	nw := w.snap.net(ni)
	if nw == nil || nw.v6 == nil {
		return
	}
	dst, dmac := packet.SolicitedNode(target), packet.MulticastMAC6(packet.SolicitedNode(target))
	if !mac.IsZero() {
		dst, dmac = target, mac
	}
	b := w.getScratch()
	o := port.Headroom + l2hdrMax
	n := packet.PutNS(b[o+packet.IPv6HdrLen:], target, nw.mac)
	w.ndOut(nw, b, o, n, nw.src6For(target), dst, dmac)
	w.cnt[CntNSSent]++
}

// sendDAD probes one of the router's addresses (RFC 4862 5.4.2: from the
// unspecified address, without a link-layer option).
func (w *worker) sendDAD(nw *network, a [16]byte) {
	b := w.getScratch()
	o := port.Headroom + l2hdrMax
	n := packet.PutNS(b[o+packet.IPv6HdrLen:], a, packet.MAC{})
	sn := packet.SolicitedNode(a)
	w.ndOut(nw, b, o, n, [16]byte{}, sn, packet.MulticastMAC6(sn))
	w.cnt[CntDADSent]++
}

// sendRA sends nw's advertisement to dst.
func (w *worker) sendRA(nw *network, dst [16]byte, dmac packet.MAC) {
	msg := nw.v6.raMsg
	b := w.getScratch()
	o := port.Headroom + l2hdrMax
	if o+packet.IPv6HdrLen+len(msg) > len(b) {
		return
	}
	n := copy(b[o+packet.IPv6HdrLen:], msg)
	w.ndOut(nw, b, o, n, nw.v6.ll, dst, dmac)
	w.cnt[CntRASent]++
}

// conflict6 logs (at most once per 10 s, with the IPv4 conflicts) another
// host claiming a router IPv6 address.
func (r *Router) conflict6(network string, a [16]byte, mac packet.MAC) {
	conflictLog.Lock()
	defer conflictLog.Unlock()
	if time.Since(conflictLog.last) < 10*time.Second {
		return
	}
	conflictLog.last = time.Now()
	r.log.Warn("address conflict: another host claims a router IPv6 address (duplicate address detection)",
		"network", network, "ip", netipFrom16(a), "mac", mac.String())
}
