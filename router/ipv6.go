package router

import (
	"encoding/binary"

	"vrouter/fib"
	"vrouter/fib6"
	"vrouter/packet"
	"vrouter/router/port"
)

// IPv6 forwarding (RFC 8200, ICMPv6 RFC 4443). The stage order:
//
//	ipv6:    header checks -> extension-header walk -> multicast (ND groups
//	         of the router) / own address -> local6, else forward6
//	forward6: link-local never forwarded -> RH0 dropped -> FIB6 -> hop
//	         limit -> MTU (packet too big; routers never fragment IPv6) ->
//	         output6
//	output6: neighbour (miss -> queue + NS) -> L2 rewrite -> tx
//
// NAT is IPv4-only (no NAT66): IPv6 never meets the NAT stages. Filters
// match IPv4 only, so IPv6 to or from a network with a filter is dropped
// (ipv6-filter) rather than let through unfiltered.

var ip6ErrReason = [...]DropReason{
	packet.IPv6OK:            DropNone,
	packet.IPv6TooShort:      DropIPv6TooShort,
	packet.IPv6BadVersion:    DropIPv6Version,
	packet.IPv6BadPayloadLen: DropIPv6BadLength,
}

// ipv6 handles an IPv6 packet at buf[off:off+n] received on nw from l2src.
func (w *worker) ipv6(buf []byte, off, n int, nw *network, l2mcast bool, l2src packet.MAC) {
	if nw.v6 == nil {
		w.drop(DropIPv6Off)
		return
	}
	ip, e := packet.CheckIPv6(buf[off : off+n])
	if e != packet.IPv6OK {
		w.drop(ip6ErrReason[e])
		return
	}
	w.trIPv6(ip)
	x, xe := packet.WalkExt(ip)
	if xe != packet.ExtOK {
		w.badExt(ip, &x, xe, nw)
		return
	}
	src, dst := ip.Src(), ip.Dst()
	if packet.IsMulticast6(dst) {
		if dst == packet.AllNodes || dst == packet.AllRouters || nw.ourSolicited(dst) || w.proxiedGroup(nw, dst) {
			w.local6(buf, off, ip, &x, nw, l2src)
			return
		}
		if nw.host != nil && dst[1]&0x0f == 2 {
			w.punt6(nw, buf, off, ip) // link-scope groups: DHCPv6, OSPFv3, ...
			return
		}
		w.drop(DropIPv6Multicast)
		return
	}
	if packet.IsMartianSource6(src) {
		w.drop(DropIPv6MartianSource)
		return
	}
	if nw.hostRoute && !packet.IsLinkLocal6(src) {
		if _, own := nw.v6.owned[src]; !own {
			w.drop(DropSpoofed)
			return
		}
	}
	if nw.mine6(dst) {
		w.local6(buf, off, ip, &x, nw, l2src)
		return
	}
	if _, mine := w.snap.v6.local[dst]; mine {
		w.local6(buf, off, ip, &x, nw, l2src) // an address of another network is the router's too
		return
	}
	if l2mcast {
		w.drop(DropL2BcastUnicastIP)
		return
	}
	w.forward6(buf, off, ip, &x, nw)
}

// badExt ends a packet whose extension headers the walk refused.
func (w *worker) badExt(ip packet.IPv6, x *packet.ExtInfo, xe packet.ExtErr, nw *network) {
	switch xe {
	case packet.ExtHopByHopNotFirst:
		w.drop(DropIPv6BadExt)
		w.icmp6Error(ip, x, nw, packet.ICMPv6ParamProblem, packet.CodeV6BadNextHdr, uint32(x.Ptr))
	case packet.ExtBadOption:
		w.drop(DropIPv6BadOption)
		w.icmp6Error(ip, x, nw, packet.ICMPv6ParamProblem, packet.CodeV6BadOption, uint32(x.Ptr))
	case packet.ExtBadOptionUnlessMcast:
		w.drop(DropIPv6BadOption)
		if !packet.IsMulticast6(ip.Dst()) {
			w.icmp6Error(ip, x, nw, packet.ICMPv6ParamProblem, packet.CodeV6BadOption, uint32(x.Ptr))
		}
	case packet.ExtBadOptionNoICMP:
		w.drop(DropIPv6BadOption)
	default:
		w.drop(DropIPv6BadExt)
	}
}

// forward6 routes a checked packet that is not for the router.
func (w *worker) forward6(buf []byte, off int, ip packet.IPv6, x *packet.ExtInfo, nw *network) {
	s := w.snap
	src, dst := ip.Src(), ip.Dst()
	if packet.IsLinkLocal6(src) {
		w.drop(DropIPv6LinkLocal)
		w.icmp6Error(ip, x, nw, packet.ICMPv6DstUnreach, packet.CodeV6BeyondScope, 0)
		return
	}
	if packet.IsLinkLocal6(dst) {
		w.drop(DropIPv6LinkLocal)
		return
	}
	if x.Routing && x.RoutingType == 0 {
		w.drop(DropIPv6RH0)
		return
	}
	nh, ok := w.r.FIB6.Lookup(dst)
	if w.tp != nil && ok {
		w.trFIB6(nh)
	}
	if !ok {
		w.drop(DropNoRoute)
		w.icmp6Error(ip, x, nw, packet.ICMPv6DstUnreach, packet.CodeV6NoRoute, 0)
		return
	}
	switch nh.Kind {
	case fib.KindDrop:
		w.drop(DropBlackhole)
		return
	case fib.KindUnreachable:
		// As Linux does for an unreachable route: "no route" (code 0).
		w.drop(DropUnreachableRoute)
		w.icmp6Error(ip, x, nw, packet.ICMPv6DstUnreach, packet.CodeV6NoRoute, 0)
		return
	case fib.KindProhibit:
		w.drop(DropProhibitedRoute)
		w.icmp6Error(ip, x, nw, packet.ICMPv6DstUnreach, packet.CodeV6AdminProhibited, 0)
		return
	}
	out := s.net(nh.Network)
	if out == nil || out.v6 == nil {
		w.drop(DropRouteStale)
		return
	}
	if ip.HopLimit() <= 1 {
		w.drop(DropIPv6HopLimit)
		w.icmp6Error(ip, x, nw, packet.ICMPv6TimeExceeded, packet.CodeV6HopLimit, 0)
		return
	}
	if s.filterOn && (nw.filt != nil || out.filt != nil) {
		w.drop(DropIPv6Filtered)
		return
	}
	if len(ip) > out.v6.mtu {
		w.drop(DropIPv6TooBig)
		w.icmp6Error(ip, x, nw, packet.ICMPv6PacketTooBig, 0, uint32(out.v6.mtu))
		return
	}
	ip.SetHopLimit(ip.HopLimit() - 1)
	w.cnt[CntForwarded6]++
	w.output6(buf, off, ip, nh, out)
}

// local6 handles a packet addressed to the router (or to a group it is in).
func (w *worker) local6(buf []byte, off int, ip packet.IPv6, x *packet.ExtInfo, nw *network, l2src packet.MAC) {
	w.cnt[CntLocalIn6]++
	if nw.host != nil && !routerTakes6(ip, x) {
		w.punt6(nw, buf, off, ip) // the kernel's: TCP, UDP, ICMPv6 errors, fragments
		return
	}
	mcast := packet.IsMulticast6(ip.Dst())
	if x.Fragment {
		w.drop(DropLocalFragment)
		return
	}
	if x.Routing && x.SegmentsLeft > 0 {
		// RFC 8200 4.4: no routing type is processed here (RFC 5095: not 0).
		if x.RoutingType == 0 {
			w.drop(DropIPv6RH0)
		} else {
			w.drop(DropIPv6BadExt)
		}
		if !mcast {
			w.icmp6Error(ip, x, nw, packet.ICMPv6ParamProblem, packet.CodeV6BadHeader, uint32(x.RoutingOff+2))
		}
		return
	}
	switch x.Proto {
	case packet.ProtoICMPv6:
		w.icmp6Local(buf, off, ip, x, nw, l2src)
	case packet.ProtoUDP:
		w.drop(DropLocalProto)
		if !mcast {
			w.icmp6Error(ip, x, nw, packet.ICMPv6DstUnreach, packet.CodeV6PortUnreachable, 0)
		}
	case packet.ProtoTCP, packet.ProtoNoNext, packet.ProtoESP:
		w.drop(DropLocalProto)
	default:
		w.drop(DropIPv6UnknownNext)
		w.icmp6Error(ip, x, nw, packet.ICMPv6ParamProblem, packet.CodeV6BadNextHdr, uint32(x.ProtoPtr))
	}
}

// icmp6Local handles an ICMPv6 message for the router: echo and neighbour
// discovery; the rest is counted and dropped.
func (w *worker) icmp6Local(buf []byte, off int, ip packet.IPv6, x *packet.ExtInfo, nw *network, l2src packet.MAC) {
	m := ip[x.Off:]
	if len(m) < packet.ICMPv6HdrLen-4 || !packet.ICMPv6ChecksumOK(ip.Src(), ip.Dst(), m) {
		w.drop(DropICMPv6Bad)
		return
	}
	switch m[0] {
	case packet.ICMPv6EchoRequest:
		if len(m) < packet.ICMPv6HdrLen {
			w.drop(DropICMPv6Bad)
			return
		}
		if packet.IsMulticast6(ip.Dst()) || packet.IsUnspecified6(ip.Src()) {
			w.drop(DropIPv6Multicast)
			return
		}
		w.trLocal(true)
		w.echoReply6(ip, m, nw)
	case packet.ICMPv6RouterSolicit, packet.ICMPv6RouterAdvert, packet.ICMPv6NeighSolicit,
		packet.ICMPv6NeighAdvert, packet.ICMPv6Redirect:
		w.nd(buf, off, ip, m, nw, l2src)
	default:
		w.drop(DropLocalProto)
	}
}

// echoReply6 answers an echo request (message m of ip) with a new packet
// that carries none of the request's extension headers.
func (w *worker) echoReply6(ip packet.IPv6, m []byte, in *network) {
	to, from := ip.Src(), ip.Dst()
	nh, out := w.route6Back(to, in)
	if out == nil {
		w.drop(DropNoRoute)
		return
	}
	b := w.getScratch()
	o := port.Headroom + l2hdrMax
	n := len(m)
	if o+packet.IPv6HdrLen+n > len(b) {
		w.drop(DropLocalProto)
		return
	}
	p := packet.IPv6(b[o : o+packet.IPv6HdrLen+n])
	packet.PutIPv6Header(p, n, packet.ProtoICMPv6, 64, from, to)
	r := p[packet.IPv6HdrLen:]
	copy(r, m)
	r[0] = packet.ICMPv6EchoReply
	packet.FinishICMPv6(from, to, r)
	w.cnt[CntEchoReplies6]++
	w.output6(b, o, p, nh, out)
}

// route6Back finds how a packet the router sends to dst leaves: link-local
// destinations go back out of the network they came from (in), others by
// the FIB. out is nil when there is no usable route.
func (w *worker) route6Back(dst [16]byte, in *network) (fib6.NextHop, *network) {
	if packet.IsLinkLocal6(dst) {
		if in == nil || in.v6 == nil {
			return fib6.NextHop{}, nil
		}
		return fib6.NextHop{Kind: fib.KindConnected, Network: in.idx}, in
	}
	nh, ok := w.r.FIB6.Lookup(dst)
	if !ok || (nh.Kind != fib.KindConnected && nh.Kind != fib.KindGateway) {
		return nh, nil
	}
	out := w.snap.net(nh.Network)
	if out == nil || out.v6 == nil {
		return nh, nil
	}
	return nh, out
}

// icmp6Error sends an ICMPv6 error about orig to its source (RFC 4443 2.4):
// never about an error message, a packet from an unspecified or multicast
// source, or one to a multicast group (except packet too big); rate
// limited with the IPv4 errors; as much of orig as fits in the minimum MTU.
func (w *worker) icmp6Error(orig packet.IPv6, x *packet.ExtInfo, in *network, typ, code uint8, param uint32) {
	src, dst := orig.Src(), orig.Dst()
	if packet.IsUnspecified6(src) || packet.IsMulticast6(src) {
		return
	}
	if packet.IsMulticast6(dst) && typ != packet.ICMPv6PacketTooBig {
		return
	}
	if x.Proto == packet.ProtoICMPv6 && x.FragOff == 0 && x.Off < len(orig) && packet.IsICMPv6Error(orig[x.Off]) {
		return
	}
	nh, out := w.route6Back(src, in)
	if out == nil {
		return
	}
	if !w.takeToken() {
		return
	}
	from := out.src6For(src)
	if packet.IsLinkLocal6(from) && !packet.IsLinkLocal6(src) && w.snap.v6.hasAny {
		from = w.snap.v6.any // a global destination needs a global source
	}
	b := w.getScratch()
	o := port.Headroom + l2hdrMax
	q := min(len(orig), packet.IPv6MinMTU-packet.IPv6HdrLen-packet.ICMPv6HdrLen)
	n := packet.ICMPv6HdrLen + q
	p := packet.IPv6(b[o : o+packet.IPv6HdrLen+n])
	packet.PutIPv6Header(p, n, packet.ProtoICMPv6, 64, from, src)
	m := p[packet.IPv6HdrLen:]
	m[0], m[1] = typ, code
	binary.BigEndian.PutUint32(m[4:8], param)
	copy(m[8:], orig[:q])
	packet.FinishICMPv6(from, src, m)
	w.trICMP6(typ, code, src, param)
	w.cnt[CntICMPv6Errors]++
	w.output6(b, o, p, nh, out)
}

// output6 sends a routed (hop limit handled) or locally made packet to
// next hop nh on network out.
func (w *worker) output6(buf []byte, off int, ip packet.IPv6, nh fib6.NextHop, out *network) {
	hop := ip.Dst()
	if nh.Kind == fib.KindGateway {
		hop = nh.Gateway
	}
	mac, ok := w.r.Neigh.Lookup6(out.idx, hop)
	var sendReq, queued bool
	if !ok {
		mac, ok, sendReq, queued = w.r.Neigh.Resolve6(out.idx, hop, ip, w.now)
	}
	if w.tp != nil {
		w.trNeigh6(out.idx, hop, mac, ok, queued, sendReq)
	}
	if !ok {
		if queued {
			w.drop(DropNDQueued)
		} else {
			w.drop(DropNDQueueFull)
		}
		if sendReq {
			w.sendNS(out.idx, hop, packet.MAC{})
		}
		return
	}
	w.txTo(out, mac, out.mac, buf, off, len(ip), packet.EtherTypeIPv6, -1, nil)
}

// flushQueued6 sends an IPv6 packet that waited for its next hop.
func (w *worker) flushQueued6(nw *network, pkt []byte) {
	b := w.getScratch()
	o := port.Headroom + l2hdrMax
	n := copy(b[o:], pkt)
	w.cnt[CntNeighFlushed]++
	w.txTo(nw, w.flushMAC, nw.mac, b, o, n, packet.EtherTypeIPv6, -1, nil)
}

// neighFailed6 is called once per failed IPv6 resolution with the first
// packet that waited: ICMPv6 1/3 (address unreachable) to its source.
func (w *worker) neighFailed6(ni uint16, ip [16]byte, pkt []byte) {
	w.drop(DropNDFailed)
	p, e := packet.CheckIPv6(pkt)
	if e != packet.IPv6OK {
		return
	}
	x, xe := packet.WalkExt(p)
	if xe != packet.ExtOK {
		return
	}
	w.icmp6Error(p, &x, w.snap.net(ni), packet.ICMPv6DstUnreach, packet.CodeV6AddrUnreachable, 0)
}

// routerTakes6 reports whether the router answers a packet for it itself
// (an unfragmented echo request or neighbour discovery message) rather
// than leaving it to the network's host interface.
func routerTakes6(ip packet.IPv6, x *packet.ExtInfo) bool {
	if x.Fragment || x.Proto != packet.ProtoICMPv6 || x.Off >= len(ip) {
		return false
	}
	t := ip[x.Off]
	return t == packet.ICMPv6EchoRequest || (t >= packet.ICMPv6RouterSolicit && t <= packet.ICMPv6Redirect)
}

// punt6 hands an IPv6 packet to nw's host interface (punt: the frame as
// received, its tag removed; IPv6 always has its link header here).
func (w *worker) punt6(nw *network, buf []byte, off int, ip packet.IPv6) {
	w.punt(nw, buf, off, packet.IPv4(ip))
}
