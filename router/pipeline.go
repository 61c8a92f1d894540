package router

import (
	"encoding/binary"

	"vrouter/fib"
	"vrouter/nat"
	"vrouter/packet"
	"vrouter/router/port"
)

// The stage order of the data path lives in this file:
//
//	frame:  L2 parse -> (port, VID) -> network -> destination MAC check -> EtherType
//	arpIn:  ARP validation -> learning -> answer (own, published, proxy)
//	ipv4:   header checks -> source checks -> [filter_in] -> [NAT in] ->
//	        local delivery (echo) or FIB -> TTL -> [NAT out] -> [filter_out] -> output
//	output: MTU (DF -> 3/4) -> neighbour (miss -> queue + request) -> fragment -> L2 rewrite -> tx
//
// Each stage ends a packet with a named drop reason, an ICMP error, or by
// handing it to the next stage.

// frame handles one received frame in buf[off:off+n]; m is its offload
// metadata (nil for a plain frame; see offload.go).
func (w *worker) frame(p *portState, buf []byte, off, n int, m *packet.VnetHdr) {
	if p.host != nil {
		w.inject(p, buf, off, n) // the kernel's frame from a host interface
		return
	}
	f := buf[off : off+n]
	l2, ok := packet.ParseL2(f)
	if !ok {
		w.drop(DropL2Short)
		w.portDrop[p.idx]++
		return
	}
	if l2.Type == packet.EtherTypeVLAN || l2.Type == packet.EtherTypeQinQ {
		w.drop(DropQinQ)
		return
	}
	s := w.snap
	mb := s.portVID[p.idx][l2.VID]
	if !mb.ok() {
		w.drop(DropUnknownVLAN)
		w.portDrop[p.idx]++
		return
	}
	nw := &s.nets[mb.slot()]
	if m != nil {
		// Only routed IPv4 and IPv6 go on with their metadata (counted from
		// the IP header from here on); anything else is settled first.
		if nw.switched() || !w.routesWithMeta(nw, l2.Type, f[l2.HdrLen:]) || int(m.CsumStart) < l2.HdrLen {
			w.settleFrame(p, buf, off, n, l2.HdrLen, m)
			return
		}
		m.CsumStart -= uint16(l2.HdrLen)
	}
	ingress := mb.link()
	lc := &w.linkCnt[nw.links[ingress].id]
	lc.rxPackets++
	lc.rxBytes += uint64(n)
	eth := packet.Ether(f)
	if w.tp != nil {
		w.trRx(p.idx, l2.VID)
		w.trL2(nw.idx, l2.Type, eth.Src())
	}
	l2mcast := eth.DstIsMulticast()
	if nw.switched() {
		if src := eth.Src(); !src.IsMulticast() {
			if !nw.bridge.learn(src, ingress, w.sec()) {
				w.cnt[CntL2MACTableFull]++
			}
		}
		if nw.pureL2() {
			// No router address: the router is only the switch.
			w.switchFrame(nw, ingress, f, buf, off, l2)
			return
		}
		if eth.Dst() != nw.mac && !w.switchFrame(nw, ingress, f, buf, off, l2) {
			return
		}
	} else if !l2mcast && eth.Dst() != nw.mac {
		w.drop(DropNotForUs)
		return
	}
	w.hw.l2len = l2.HdrLen
	switch l2.Type {
	case packet.EtherTypeIPv4:
		w.ipv4(buf, off+l2.HdrLen, n-l2.HdrLen, nw, l2mcast, m)
	case packet.EtherTypeARP:
		w.arpIn(nw, eth.Src(), f[l2.HdrLen:])
	case packet.EtherTypeIPv6:
		w.ipv6(buf, off+l2.HdrLen, n-l2.HdrLen, nw, l2mcast, eth.Src(), m)
	default:
		w.drop(DropEtherType)
	}
}

// arpIn handles an ARP packet received on network nw.
func (w *worker) arpIn(nw *network, l2src packet.MAC, b []byte) {
	w.cnt[CntARPIn]++
	if !packet.ValidARP(b) {
		w.drop(DropARPMalformed)
		return
	}
	a := packet.ARP(b)
	sha, spa, tpa := a.SenderMAC(), a.SenderIP(), a.TargetIP()
	if sha.IsMulticast() || sha.IsZero() {
		w.drop(DropARPBadSender)
		return
	}
	s := w.snap
	if _, mine := s.local.get(spa); mine {
		if sha != nw.mac {
			w.drop(DropARPConflict)
			w.r.conflict(nw.name, spa, sha)
		}
		return
	}
	// A sender outside the segment (other than a probe) is not learned and
	// not answered; host-routed links have no subnet and accept the guest.
	inSegment := spa == 0 || nw.hostRoute || nw.onSubnet(spa) || w.connectedOn(spa, nw)
	if !inSegment {
		w.drop(DropARPBadSender)
		return
	}
	if nw.hostRoute && spa != 0 {
		if _, own := nw.owned[spa]; !own {
			w.drop(DropSpoofed)
			return
		}
	}
	op := a.Op()
	w.trARP(op, spa, tpa)
	ours := false
	if op == packet.ARPRequest {
		if li, ok := s.local.get(tpa); ok && li == nw.idx {
			ours = true
		} else if nw.hostRoute && tpa != spa {
			ours = true // the guest's gateway (and anything else) is the router
		}
	}
	if spa != 0 {
		// RFC 826: update an existing entry; create one only when we are the target.
		create := ours || (op == packet.ARPReply && a.TargetMAC() == nw.mac)
		w.flushNet, w.flushMAC = nw, sha
		w.r.Neigh.Update(nw.idx, spa, sha, create, w.now, w.flushFn)
		w.flushNet = nil
	}
	if nw.host != nil {
		w.puntARP(nw, l2src, b) // replies to the router's MAC, gratuitous ARP
	}
	if op != packet.ARPRequest {
		return
	}
	if ours {
		w.cnt[CntARPReplies]++
		w.sendARPReply(nw, sha, spa, tpa)
		return
	}
	if spa == 0 || tpa == spa {
		w.drop(DropARPNotOurs) // probes and announcements are never proxied
		return
	}
	if _, pub := s.published[uint64(nw.idx)<<32|uint64(tpa)]; pub {
		if w.r.haSilent(s, nw.idx, tpa) {
			w.drop(DropHABackupARP)
			return
		}
		w.cnt[CntARPProxyReplies]++
		w.sendARPReply(nw, sha, spa, tpa)
		return
	}
	if nw.proxyARP && !nw.onSubnet(tpa) {
		if nh, ok := w.r.FIB.Lookup(tpa); ok && nh.Network != nw.idx &&
			(nh.Kind == fib.KindConnected || nh.Kind == fib.KindGateway) {
			w.cnt[CntARPProxyReplies]++
			w.sendARPReply(nw, sha, spa, tpa)
			return
		}
	}
	if nw.proxyARP && nw.onSubnet(tpa) {
		// Routed elsewhere although inside this subnet (a public /32 routed to a VM).
		if nh, ok := w.r.FIB.Lookup(tpa); ok && nh.Network != nw.idx &&
			(nh.Kind == fib.KindConnected || nh.Kind == fib.KindGateway) {
			w.cnt[CntARPProxyReplies]++
			w.sendARPReply(nw, sha, spa, tpa)
			return
		}
	}
	w.drop(DropARPNotOurs)
}

// sendARPReply answers a request from (tha, tpa) for spa with nw's MAC.
func (w *worker) sendARPReply(nw *network, tha packet.MAC, tpa, spa uint32) {
	w.sendARP(nw, tha, packet.ARPReply, spa, tha, tpa)
}

// sendARP builds an ARP packet and sends it to dst on nw.
func (w *worker) sendARP(nw *network, dst packet.MAC, op uint16, spa uint32, tha packet.MAC, tpa uint32) {
	b := w.getScratch()
	o := port.Headroom + l2hdrMax
	packet.PutARP(b[o:], op, nw.mac, spa, tha, tpa)
	n := packet.ARPLen
	for ; n < 46; n++ { // pad to the Ethernet minimum
		b[o+n] = 0
	}
	w.txTo(nw, dst, nw.mac, b, o, n, packet.EtherTypeARP, -1, nil)
}

// sendARPRequest asks for ip on network ni (broadcast when mac is zero,
// unicast refresh otherwise).
func (w *worker) sendARPRequest(ni uint16, ip uint32, mac packet.MAC) {
	nw := w.snap.net(ni)
	if nw == nil {
		return
	}
	if !w.r.arpLimit.allow(w.now, w.snap.arpReqRate) {
		w.cnt[CntARPRequestsLimited]++
		return
	}
	src := nw.srcFor(ip)
	dst := mac
	if mac.IsZero() {
		dst = packet.Broadcast
	}
	w.sendARP(nw, dst, packet.ARPRequest, src, packet.MAC{}, ip)
	w.cnt[CntARPRequests]++
}

// sendGARP announces ip on nw (a gratuitous ARP request: sender = target = ip).
func (w *worker) sendGARP(nw *network, ip uint32) {
	w.sendARP(nw, packet.Broadcast, packet.ARPRequest, ip, packet.MAC{}, ip)
	w.cnt[CntGARP]++
}

// ipv4 handles an IPv4 packet at buf[off:off+n] received on nw.
func (w *worker) ipv4(buf []byte, off, n int, nw *network, l2mcast bool, m *packet.VnetHdr) {
	ip, e := packet.CheckIPv4(buf[off : off+n])
	if e != packet.IPv4OK {
		w.drop(ipErrReason[e])
		return
	}
	if ip.IHL() > packet.IPv4MinLen && ip.HasSourceRoute() {
		w.drop(DropSourceRoute)
		return
	}
	src := ip.Src()
	w.trIPv4(ip)
	if src == 0 && nw.host != nil && w.puntUnspecified(buf, off, ip, nw) {
		return // DHCP from a client without an address
	}
	if packet.IsMartianSource(src) {
		w.drop(DropMartianSource)
		return
	}
	if nw.hostRoute {
		if _, own := nw.owned[src]; !own {
			w.drop(DropSpoofed)
			return
		}
	}
	w.nat.Reset()
	if nw.filt != nil {
		// filter_in: conntrack first; a packet of a session goes on (the
		// rest, and everything when tracing, in filterIn).
		st, why := w.nat.Track(ip, nat.AsReceived, w.now)
		w.fst = st
		if (st != nat.FlowEstablished || w.tp != nil || ip.MF()) && !w.filterIn(ip, nw, st, why) {
			return
		}
	}
	if w.snap.natOn {
		if m != nil {
			w.nat.SetPartial(m.Flags&packet.VnetNeedsCsum != 0)
		}
		v, why := w.nat.In(ip, nw.idx, w.now)
		if m != nil {
			w.nat.SetPartial(false)
		}
		switch v {
		case nat.Drop:
			w.natDrop(why)
			return
		case nat.Held:
			w.cnt[CntNATHeld]++ // an early fragment, sent when its first fragment comes
			return
		case nat.Translated:
			w.trNAT(nat.StageIn, ip)
		}
	}
	w.route(buf, off, ip, nw, l2mcast, m)
}

// route continues with a checked (and NAT-translated) packet: local
// delivery, FIB, TTL, NAT out, output.
func (w *worker) route(buf []byte, off int, ip packet.IPv4, nw *network, l2mcast bool, m *packet.VnetHdr) {
	s := w.snap
	dst := ip.Dst()
	if _, mine := s.local.get(dst); mine || (nw.hostRoute && dst == nw.gateway) {
		if m != nil {
			if isGSO(m) {
				w.drop(DropLocalProto) // the router serves no TCP/UDP itself
				return
			}
			if !w.settle(buf, off, ip, m, w.noNext) {
				return
			}
		}
		w.local(buf, off, ip, nw)
		return
	}
	if nw.host != nil && w.puntGroup(buf, off, ip, nw, m) {
		return // UDP broadcast, link-local multicast
	}
	if dst == 0xffffffff || nw.isBroadcastOn(dst) {
		w.drop(DropBroadcast)
		return
	}
	if packet.IsMulticast(dst) {
		w.drop(DropMulticast)
		return
	}
	if l2mcast {
		w.drop(DropL2BcastUnicastIP)
		return
	}
	nh, ok := w.r.FIB.Lookup(dst)
	if w.tp != nil && ok {
		w.trFIB(nh)
	}
	if !ok {
		w.drop(DropNoRoute)
		w.icmpError(ip, packet.ICMPUnreachable, packet.CodeNetUnreachable, 0)
		return
	}
	switch nh.Kind {
	case fib.KindDrop:
		w.drop(DropBlackhole)
		return
	case fib.KindUnreachable:
		w.drop(DropUnreachableRoute)
		w.icmpError(ip, packet.ICMPUnreachable, packet.CodeHostUnreachable, 0)
		return
	case fib.KindProhibit:
		w.drop(DropProhibitedRoute)
		w.icmpError(ip, packet.ICMPUnreachable, packet.CodeAdminProhibited, 0)
		return
	}
	out := s.net(nh.Network)
	if out == nil {
		w.drop(DropRouteStale)
		return
	}
	if nh.Kind == fib.KindConnected && out.isBroadcastOn(dst) {
		w.drop(DropDirectedBroadcast)
		return
	}
	if ip.TTL() <= 1 {
		w.drop(DropTTLExceeded)
		w.icmpError(ip, packet.ICMPTimeExceeded, 0, 0)
		return
	}
	ip.DecTTL()
	if s.natOn {
		if m != nil {
			w.nat.SetPartial(m.Flags&packet.VnetNeedsCsum != 0)
		}
		v, why := w.nat.Out(ip, nw.idx, out.idx, w.now)
		if m != nil {
			w.nat.SetPartial(false)
		}
		switch v {
		case nat.Drop:
			w.natDrop(why)
			return
		case nat.Held:
			w.cnt[CntNATHeld]++
			return
		case nat.Translated:
			w.trNAT(nat.StageOut, ip)
		}
	}
	if s.filterOn {
		if out.filt != nil || nw.filt != nil {
			// A packet of a session (filterIn or the NAT found it) passes
			// unless it is the first fragment of several (filterOut lets
			// the others pass).
			est := w.fst == nat.FlowEstablished
			if nw.filt == nil {
				est = w.nat.SessionFound()
			}
			if (!est || ip.MF()) && !w.filterOut(ip, nw, out) {
				return
			}
		}
		w.nat.Confirm()
	}
	w.cnt[CntForwarded]++
	w.output(buf, off, ip, nh, out, m)
}

var ipErrReason = [...]DropReason{
	packet.IPv4OK:          DropNone,
	packet.IPv4TooShort:    DropIPTooShort,
	packet.IPv4BadVersion:  DropIPVersion,
	packet.IPv4BadIHL:      DropIPBadIHL,
	packet.IPv4BadTotalLen: DropIPBadTotalLen,
	packet.IPv4Truncated:   DropIPTruncated,
	packet.IPv4BadChecksum: DropIPChecksum,
}

// local handles a packet addressed to the router itself.
func (w *worker) local(buf []byte, off int, ip packet.IPv4, nw *network) {
	w.cnt[CntLocalIn]++
	if nw.host != nil && w.puntLocal(buf, off, ip, nw) {
		return // the kernel's: everything but echo requests
	}
	if ip.IsFragment() {
		w.drop(DropLocalFragment)
		return
	}
	pl := ip.Payload()
	if ip.Proto() == packet.ProtoICMP && len(pl) >= packet.ICMPHdrLen && pl[0] == packet.ICMPEchoRequest &&
		packet.Fold(packet.Sum(pl, 0)) == 0xffff {
		w.trLocal(true)
		w.echoReply(buf, off, ip)
		return
	}
	if ip.Proto() == packet.ProtoUDP {
		w.icmpError(ip, packet.ICMPUnreachable, packet.CodePortUnreachable, 0)
	}
	w.drop(DropLocalProto)
}

// echoReply turns an echo request into its reply in place and sends it.
func (w *worker) echoReply(buf []byte, off int, ip packet.IPv4) {
	src, dst := ip.Src(), ip.Dst()
	ip.SetSrc(dst)
	ip.SetDst(src)
	ip.SetTTL(64)
	ip.ComputeChecksum()
	m := packet.ICMP(ip.Payload())
	old := binary.BigEndian.Uint16(m[0:2])
	m[0] = packet.ICMPEchoReply
	m.SetChecksum(packet.Update16(m.Checksum(), old, binary.BigEndian.Uint16(m[0:2])))
	nh, out := w.routeBack(src)
	if out == nil {
		w.drop(DropNoRoute)
		return
	}
	w.cnt[CntEchoReplies]++
	w.output(buf, off, ip, nh, out, nil)
}

// icmpError sends an ICMP error about orig to its source (RFC 1812 4.3.2).
func (w *worker) icmpError(orig packet.IPv4, typ, code uint8, mtu int) {
	src := orig.Src()
	dst := orig.Dst()
	if src == 0 || packet.IsMartianSource(src) || packet.IsMulticast(dst) || dst == 0xffffffff {
		return
	}
	if orig.FragOff() != 0 {
		return // never about a non-initial fragment
	}
	if orig.Proto() == packet.ProtoICMP {
		pl := orig.Payload()
		if len(pl) < 1 || packet.IsICMPError(pl[0]) {
			return // never about an ICMP error
		}
	}
	nh, out := w.routeBack(src)
	if out == nil || out.isBroadcastOn(src) {
		return
	}
	if !w.takeToken() {
		return
	}
	from := out.srcFor(src)
	if from == 0 {
		from = w.snap.anyAddr
	}
	b := w.getScratch()
	o := port.Headroom + l2hdrMax
	q := len(orig)
	if q > 576-28 {
		q = 576 - 28
	}
	tot := 28 + q
	p := packet.IPv4(b[o : o+tot])
	p[0] = 0x45
	p[1] = 0xc0 // internetwork control
	p.SetTotalLen(tot)
	w.ipID++
	p.SetID(w.ipID)
	p.SetFlagsFrag(0)
	p.SetTTL(64)
	p.SetProto(packet.ProtoICMP)
	p.SetSrc(from)
	p.SetDst(src)
	p.ComputeChecksum()
	m := packet.ICMP(p[20:])
	m[0], m[1] = typ, code
	binary.BigEndian.PutUint32(m[4:8], 0)
	if typ == packet.ICMPUnreachable && code == packet.CodeFragNeeded {
		binary.BigEndian.PutUint16(m[6:8], uint16(mtu))
	}
	copy(m[8:], orig[:q])
	m.ComputeChecksum()
	if w.snap.natOn {
		// An error about a translated packet quotes it as its source sent it.
		if v, why := w.nat.Out(p, nat.Local, out.idx, w.now); v == nat.Drop {
			w.natDrop(why)
			return
		}
		if to := p.Dst(); to != src {
			// The packet was SNATed (a frag-needed found after NAT out):
			// the error goes back to the inside host it came from, from
			// the router's address on that side.
			if nh, out = w.routeBack(to); out == nil || out.isBroadcastOn(to) {
				return
			}
			if f := out.srcFor(to); f != 0 {
				p.SetSrc(f)
				p.ComputeChecksum()
			}
		}
	}
	w.trICMP(typ, code, p.Dst(), mtu)
	w.cnt[CntICMPErrors]++
	w.output(b, o, p, nh, out, nil)
}

// output sends a routed (TTL already handled) packet ip = buf[off:...] to
// next hop nh on network out; m is its offload metadata (nil when plain).
func (w *worker) output(buf []byte, off int, ip packet.IPv4, nh fib.NextHop, out *network, m *packet.VnetHdr) {
	size := len(ip)
	if isGSO(m) {
		size = segmentLen(ip, m) // the MTU applies to each segment
	}
	if size > out.mtu && ip.DF() {
		w.drop(DropFragNeeded)
		w.icmpError(ip, packet.ICMPUnreachable, packet.CodeFragNeeded, out.mtu)
		return
	}
	hop := ip.Dst()
	if nh.Kind == fib.KindGateway {
		hop = nh.Gateway
	}
	// The lock-free lookup is the fast path; on a miss Resolve looks again
	// under the cache's lock, which closes the race with a reply that
	// arrives in between, and queues the packet only if still unresolved.
	mac, ok := w.r.Neigh.Lookup(out.idx, hop)
	var sendReq, queued bool
	if !ok && m != nil {
		// The queue keeps plain packets only.
		w.settle(buf, off, ip, m, func(b []byte, o int, seg []byte) { w.output(b, o, seg, nh, out, nil) })
		return
	}
	if !ok {
		mac, ok, sendReq, queued = w.r.Neigh.Resolve(out.idx, hop, ip, w.now)
	}
	if w.tp != nil {
		w.trNeigh(out.idx, hop, mac, ok, queued, sendReq)
	}
	if !ok {
		if queued {
			w.drop(DropARPQueued)
		} else {
			w.drop(DropARPQueueFull)
		}
		if sendReq {
			w.sendARPRequest(out.idx, hop, packet.MAC{})
		}
		return
	}
	w.l2out(out, mac, buf, off, ip, m)
}

// l2out adds the link-layer header and queues the frame on out's link; it
// fragments packets larger than the MTU (DF was checked by output). A
// super-frame whose segments fit goes on whole.
func (w *worker) l2out(out *network, mac packet.MAC, buf []byte, off int, ip packet.IPv4, m *packet.VnetHdr) {
	if len(ip) > out.mtu && !(isGSO(m) && segmentLen(ip, m) <= out.mtu) {
		if m != nil {
			w.settle(buf, off, ip, m, func(b []byte, o int, seg []byte) { w.l2out(out, mac, b, o, seg, nil) })
			return
		}
		w.fragment(out, mac, ip)
		return
	}
	w.txTo(out, mac, out.mac, buf, off, len(ip), packet.EtherTypeIPv4, -1, m)
}

// fragment splits ip into fragments that fit out.mtu (RFC 791) and sends them.
func (w *worker) fragment(out *network, mac packet.MAC, ip packet.IPv4) {
	hl := ip.IHL()
	payload := ip[hl:]
	// Options of later fragments: only those with the copy bit.
	var opt [40]byte
	nopt := 0
	for it := ip.OptionIter(); ; {
		o, ok := it.Next()
		if !ok {
			break
		}
		if o[0]&packet.OptCopied != 0 {
			nopt += copy(opt[nopt:], o)
		}
	}
	for nopt%4 != 0 {
		opt[nopt] = 0
		nopt++
	}
	baseOff := ip.FragOff()
	lastMF := ip.MF()
	flags := ip.FlagsFrag() & 0x4000 // keep reserved/DF bits (DF is clear here)
	done := 0
	first := true
	for done < len(payload) {
		h := hl
		if !first {
			h = 20 + nopt
		}
		chunk := (out.mtu - h) &^ 7
		if chunk <= 0 {
			w.drop(DropFragNeeded)
			return
		}
		last := false
		if done+chunk >= len(payload) {
			chunk = len(payload) - done
			last = true
		}
		b := w.getScratch()
		fo := port.Headroom + l2hdrMax
		f := packet.IPv4(b[fo : fo+h+chunk])
		if first {
			copy(f, ip[:hl])
		} else {
			copy(f, ip[:20])
			copy(f[20:], opt[:nopt])
			f[0] = 0x40 | byte(h/4)
		}
		copy(f[h:], payload[done:done+chunk])
		ff := flags | uint16((baseOff+done)/8)
		if !last || lastMF {
			ff |= 0x2000
		}
		f.SetFlagsFrag(ff)
		f.SetTotalLen(h + chunk)
		f.ComputeChecksum()
		w.cnt[CntFragmentsOut]++
		w.l2out(out, mac, b, fo, f, nil)
		done += chunk
		first = false
	}
}

// flushQueued sends a packet that waited for neighbour resolution (called
// from arp.Cache.Update via the pre-bound flushFn).
func (w *worker) flushQueued(pkt []byte) {
	nw := w.flushNet
	if nw == nil || len(pkt) < packet.IPv4MinLen {
		return
	}
	if pkt[0]>>4 == 6 {
		w.flushQueued6(nw, pkt)
		return
	}
	b := w.getScratch()
	o := port.Headroom + l2hdrMax
	n := copy(b[o:], pkt)
	w.cnt[CntNeighFlushed]++
	w.l2out(nw, w.flushMAC, b, o, packet.IPv4(b[o:o+n]), nil)
}

// neighFailed is called once per failed resolution with the first packet
// that waited for it: ICMP 3/1 to its source.
func (w *worker) neighFailed(ni uint16, ip uint32, pkt []byte) {
	w.drop(DropARPFailed)
	if len(pkt) < packet.IPv4MinLen {
		return
	}
	w.icmpError(packet.IPv4(pkt), packet.ICMPUnreachable, packet.CodeHostUnreachable, 0)
}

// natDrop counts a packet the NAT refused (the NAT keeps the detailed reason).
func (w *worker) natDrop(why nat.Reason) {
	w.drops[DropNAT]++
	w.trNATDrop(why)
}

// routeBack finds the route and network a packet the router sends itself
// (a reply, an ICMP error, a released fragment) leaves by; nil when there
// is no usable route.
func (w *worker) routeBack(dst uint32) (fib.NextHop, *network) {
	nh, ok := w.r.FIB.Lookup(dst)
	if !ok || (nh.Kind != fib.KindConnected && nh.Kind != fib.KindGateway) {
		return nh, nil
	}
	return nh, w.snap.net(nh.Network)
}

// connectedOn reports whether a is routed as directly connected on nw (a
// [[route]] with network = nw, e.g. public /32s routed to VMs on a VLAN).
func (w *worker) connectedOn(a uint32, nw *network) bool {
	nh, ok := w.r.FIB.Lookup(a)
	return ok && nh.Kind == fib.KindConnected && nh.Network == nw.idx
}

// drainReleased sends the early fragments the NAT held and released once
// their first fragment was translated; each continues where it was held.
func (w *worker) drainReleased() {
	s := w.snap
	for {
		pkt, inNet, _, stage, ok := w.nat.Released()
		if !ok {
			return
		}
		w.cnt[CntNATReleased]++
		w.hw.l2len = 0 // no link header
		b := w.getScratch()
		o := port.Headroom + l2hdrMax
		n := copy(b[o:], pkt)
		ip := packet.IPv4(b[o : o+n])
		w.nat.Reset()
		w.fst = fstUnknown // filterOut asks about the fragment itself
		nw := s.net(inNet)
		switch stage {
		case nat.StageIn:
			if nw == nil {
				w.drop(DropNAT) // its network went away in a reload
				continue
			}
			w.route(b, o, ip, nw, false, nil)
		case nat.StageOut:
			nh, out := w.routeBack(ip.Dst())
			if out == nil {
				w.drop(DropNoRoute)
				continue
			}
			if (out.filt != nil || nw != nil && nw.filt != nil) && !w.filterOut(ip, nw, out) {
				continue
			}
			w.output(b, o, ip, nh, out, nil)
		}
	}
}
