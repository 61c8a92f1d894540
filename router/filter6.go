package router

import (
	"encoding/binary"
	"net/netip"

	"vrouter/fib"
	"vrouter/filter"
	"vrouter/nat"
	"vrouter/packet"
	"vrouter/router/port"
)

// The stateful filter for IPv6 (filter.go has IPv4's and the counters).
// IPv6 is never translated (no NAT66), so a forwarded packet is the same
// as received and as sent: one conntrack question (nat.Worker.Track6)
// serves both stages. A packet of a session, an ICMPv6 error about one
// (path MTU discovery: packet too big) and a later fragment of a datagram
// whose first fragment passed go through unclassified; the first packet of
// a flow is classified by the ingress network's filter_in and the egress
// network's filter_out, and if both accept (or are absent) it gets a
// session, so that its replies pass. Packets to the router's own unicast
// addresses pass filter_in, classified each (the router keeps no session
// for them); neighbour discovery and multicast to the router are link
// control, like ARP, and never filtered; what the router sends itself
// (echo replies, ICMPv6 errors, reject answers) is not filtered either.

// filterKey6 is what the classifier looks at in ip (x: its extension-header
// walk). A non-first fragment has no ports.
func filterKey6(ip packet.IPv6, x *packet.ExtInfo) filter.Key6 {
	k := filter.Key6{Src: ip.Src(), Dst: ip.Dst(), Proto: x.Proto}
	if x.Fragment && x.FragOff != 0 || x.Off >= len(ip) {
		return k
	}
	l4 := ip[x.Off:]
	switch x.Proto {
	case packet.ProtoTCP, packet.ProtoUDP:
		if len(l4) >= 4 {
			k.SPort, k.DPort = packet.Ports(l4)
			k.HasPorts = true
		}
	case packet.ProtoICMPv6:
		k.ICMPType, k.HasPorts = l4[0], true
	}
	return k
}

// filter6 is the filter stage of an IPv6 packet routed from nw to out, one
// of them filtered: false when the packet is dropped.
func (w *worker) filter6(ip packet.IPv6, x *packet.ExtInfo, nw, out *network) bool {
	side := uint8(sideIn)
	if nw.filt == nil {
		side = sideOut
	}
	st, why := w.nat.Track6(ip, x, w.now)
	switch st {
	case nat.FlowInvalid:
		w.trFilterState(side, st, why)
		w.drop(DropFilterInvalid)
		return false
	case nat.FlowNew:
		if nw.filt != nil && nw.filt.in != nil && !w.classify6(nw.filt.in, ip, x, nw, sideIn) {
			return false
		}
		if out.filt != nil && out.filt.out != nil && !w.classify6(out.filt.out, ip, x, nw, sideOut) {
			return false
		}
		if !(x.Fragment && x.FragOff != 0) && !isICMPv6Err(ip, x) {
			if why := w.nat.Create6(ip, x, out.idx, w.now); why != 0 {
				w.natDrop(why)
				return false
			}
		}
	default:
		w.trFilterState(side, st, 0)
	}
	if x.Fragment && x.FragOff == 0 && x.MF {
		w.nat.PassFragments6(ip, x, w.now)
	}
	return true
}

// filterLocal6 is filter_in for a packet to one of the router's unicast
// addresses, received on the filtered network nw: classified each time,
// except neighbour discovery. False when the packet is dropped.
func (w *worker) filterLocal6(ip packet.IPv6, x *packet.ExtInfo, nw *network) bool {
	rs := nw.filt.in
	if rs == nil {
		return true
	}
	if x.Proto == packet.ProtoICMPv6 && !(x.Fragment && x.FragOff != 0) && x.Off < len(ip) {
		if t := ip[x.Off]; t >= packet.ICMPv6RouterSolicit && t <= packet.ICMPv6Redirect {
			return true
		}
	}
	return w.classify6(rs, ip, x, nw, sideIn)
}

// isICMPv6Err reports an ICMPv6 error (not a later fragment).
func isICMPv6Err(ip packet.IPv6, x *packet.ExtInfo) bool {
	return x.Proto == packet.ProtoICMPv6 && !(x.Fragment && x.FragOff != 0) && x.Off < len(ip) && packet.IsICMPv6Error(ip[x.Off])
}

// classify6 runs the first packet of an IPv6 flow (received on in) through
// rs and counts it; false when the ruleset refuses it (dropped, or
// rejected: answered).
func (w *worker) classify6(rs *filter.Ruleset, ip packet.IPv6, x *packet.ExtInfo, in *network, side uint8) bool {
	v := rs.Classify6(filterKey6(ip, x))
	w.fc.Hit(rs, v, len(ip))
	if w.tp != nil {
		w.trFilter(side, rs, v)
	}
	switch v.Action {
	case filter.Accept:
		return true
	case filter.Reject:
		w.cnt[CntFilterRejects]++
		if x.Proto == packet.ProtoTCP && !(x.Fragment && x.FragOff != 0) {
			w.sendReset6(ip, x, in)
		} else {
			w.icmp6Error(ip, x, in, packet.ICMPv6DstUnreach, packet.CodeV6AdminProhibited, 0)
		}
	}
	w.drop(DropFilter)
	return false
}

// sendReset6 answers the TCP segment of ip with an RST (as sendReset:
// RFC 793 "Reset Generation"), from the address the sender addressed.
func (w *worker) sendReset6(ip packet.IPv6, x *packet.ExtInfo, in *network) {
	if x.Off+packet.TCPMinLen > len(ip) {
		return
	}
	t := packet.TCP(ip[x.Off:])
	flags := t.Flags()
	if flags&packet.TCPRst != 0 {
		return // never an RST for an RST
	}
	src, dst := ip.Src(), ip.Dst()
	if packet.IsUnspecified6(src) || packet.IsMulticast6(src) || packet.IsMulticast6(dst) {
		return
	}
	nh, out := w.route6Back(src, in)
	if out == nil || !w.takeToken() {
		return
	}
	seg := uint32(len(t) - min(t.DataOff(), len(t)))
	if flags&packet.TCPSyn != 0 {
		seg++
	}
	if flags&packet.TCPFin != 0 {
		seg++
	}
	var seq, ack uint32
	rf := uint8(packet.TCPRst)
	if flags&packet.TCPAck != 0 {
		seq = t.Ack()
	} else {
		ack = t.Seq() + seg
		rf |= packet.TCPAck
	}
	b := w.getScratch()
	o := port.Headroom + l2hdrMax
	const n = packet.IPv6HdrLen + packet.TCPMinLen
	p := packet.IPv6(b[o : o+n])
	packet.PutIPv6Header(p, packet.TCPMinLen, packet.ProtoTCP, 64, dst, src)
	r := packet.TCP(p[packet.IPv6HdrLen:])
	clear(r)
	r.SetSrcPort(t.DstPort())
	r.SetDstPort(t.SrcPort())
	r.SetSeq(seq)
	binary.BigEndian.PutUint32(r[packet.TCPAckOff:], ack)
	r[packet.TCPDataOffOff] = 5 << 4
	r.SetFlags(rf)
	r.SetChecksum(^packet.Fold(packet.Sum(r, packet.PseudoSum6(dst, src, packet.ProtoTCP, len(r)))))
	w.cnt[CntFilterResets]++
	if w.tp != nil {
		w.trFilterReset6(src, t.SrcPort())
	}
	w.output6(b, o, p, nh, out, nil)
}

// --- reload ---

// flushWhy6 is flushFiltered's question for the IPv6 sessions: the first
// packet of each is classified again by the filter_in of the network its
// source is routed to and the filter_out of its egress network.
func (r *Router) flushWhy6(s *snapshot) func(*nat.Flow6) string {
	netOf := func(a [16]byte) *network {
		nh, ok := r.FIB6.Lookup(a)
		if !ok || (nh.Kind != fib.KindConnected && nh.Kind != fib.KindGateway) {
			return nil
		}
		return s.net(nh.Network)
	}
	return func(f *nat.Flow6) string {
		k := flowKey6(f)
		if in := netOf(f.Src); in != nil && in.filt != nil && in.filt.in != nil {
			if in.filt.in.Classify6(k).Action != filter.Accept {
				return "no longer accepted by filter " + in.filt.in.Name()
			}
		}
		out := s.net(f.OutNet)
		if out == nil {
			out = netOf(f.Dst)
		}
		if out != nil && out.filt != nil && out.filt.out != nil {
			if out.filt.out.Classify6(k).Action != filter.Accept {
				return "no longer accepted by filter " + out.filt.out.Name()
			}
		}
		return ""
	}
}

// flowKey6 is the classifier's key of an IPv6 session's first packet (an
// ICMPv6 session is one of echo: a request, or a reply that started it).
func flowKey6(f *nat.Flow6) filter.Key6 {
	k := filter.Key6{Src: f.Src, Dst: f.Dst, Proto: f.Proto}
	switch f.Proto {
	case packet.ProtoTCP, packet.ProtoUDP:
		k.SPort, k.DPort, k.HasPorts = f.SPort, f.DPort, true
	case packet.ProtoICMPv6:
		k.ICMPType, k.HasPorts = packet.ICMPv6EchoRequest, true
		if f.SPort == 0 && f.DPort != 0 {
			k.ICMPType = packet.ICMPv6EchoReply
		}
	}
	return k
}

// --- trace ---

func (w *worker) trFilterReset6(to [16]byte, port uint16) {
	if p := w.tp; p != nil {
		if e := p.add(tsFilter); e != nil {
			e.filt = filterRecord{kind: frReset6, port: port}
			e.ip6.a = to
		}
	}
}

func formatReset6(to [16]byte, port uint16) string {
	return "reject: sent tcp reset to " + netip.AddrPortFrom(netip.AddrFrom16(to), port).String()
}
