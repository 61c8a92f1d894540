package nat

import (
	"encoding/binary"
	"runtime"
	"time"

	"vrouter/packet"
)

// Port kinds of a flow.
const (
	ptNone    = iota // no ports (other protocols, ICMP other than query)
	ptPorts          // TCP / UDP
	ptICMPReq        // ICMP echo/timestamp request: the id is the source port
	ptICMPRep        // ICMP echo/timestamp reply: the id is the destination port
)

// flow is the NAT view of a packet (first fragment or unfragmented).
type flow struct {
	src, dst     uint32
	sport, dport uint16
	proto        uint8
	pt           uint8
	l4           []byte
}

func (f *flow) key() (a, b uint64) { return keyWords(f.src, f.dst, f.sport, f.dport, f.proto) }
func (f *flow) rkey() (a, b uint64) {
	return keyWords(f.dst, f.src, f.dport, f.sport, f.proto)
}

// parseFlow fills f from p (not a non-first fragment). It fails only when a
// TCP/UDP/ICMP query header is too short to translate.
func parseFlow(p packet.IPv4, f *flow) bool {
	f.src, f.dst, f.proto = p.Src(), p.Dst(), p.Proto()
	f.sport, f.dport, f.pt = 0, 0, ptNone
	ihl := p.IHL()
	if ihl > len(p) {
		return false
	}
	f.l4 = p[ihl:]
	switch f.proto {
	case packet.ProtoTCP:
		if len(f.l4) < packet.TCPMinLen {
			return false
		}
		f.pt = ptPorts
	case packet.ProtoUDP:
		if len(f.l4) < packet.UDPHdrLen {
			return false
		}
		f.pt = ptPorts
	case packet.ProtoICMP:
		if len(f.l4) < packet.ICMPHdrLen {
			return len(f.l4) >= 1 && !packet.IsICMPQuery(f.l4[0])
		}
		id := binary.BigEndian.Uint16(f.l4[4:6])
		switch f.l4[0] {
		case packet.ICMPEchoRequest, packet.ICMPTimestamp:
			f.pt, f.sport = ptICMPReq, id
		case packet.ICMPEchoReply, packet.ICMPTimestampReply:
			f.pt, f.dport = ptICMPRep, id
		}
		return true
	default:
		return true
	}
	f.sport = binary.BigEndian.Uint16(f.l4[0:2])
	f.dport = binary.BigEndian.Uint16(f.l4[2:4])
	return true
}

// setAddr rewrites the IPv4 address at off (12 src, 16 dst) with checksums:
// the header's, and the TCP/UDP pseudo-header sum when l4 holds the header
// (nil for non-first fragments). A UDP checksum of 0 stays 0.
func setAddr(p packet.IPv4, proto uint8, l4 []byte, off int, ip uint32) {
	old := binary.BigEndian.Uint32(p[off:])
	if old == ip {
		return
	}
	binary.BigEndian.PutUint32(p[off:], ip)
	p.SetChecksum(packet.Update32(p.Checksum(), old, ip))
	if l4 == nil {
		return
	}
	switch proto {
	case packet.ProtoTCP:
		if len(l4) >= 18 {
			c := binary.BigEndian.Uint16(l4[16:])
			binary.BigEndian.PutUint16(l4[16:], packet.Update32(c, old, ip))
		}
	case packet.ProtoUDP:
		if len(l4) >= 8 {
			if c := binary.BigEndian.Uint16(l4[6:]); c != 0 {
				c = packet.Update32(c, old, ip)
				if c == 0 {
					c = 0xffff
				}
				binary.BigEndian.PutUint16(l4[6:], c)
			}
		}
	}
}

// setPort rewrites the source (dst=false) or destination port of f's packet;
// for ICMP queries the identifier when it plays that role.
func setPort(f *flow, dst bool, port uint16) {
	l4 := f.l4
	switch f.pt {
	case ptPorts:
		off := 0
		if dst {
			off = 2
		}
		old := binary.BigEndian.Uint16(l4[off:])
		if old == port {
			return
		}
		binary.BigEndian.PutUint16(l4[off:], port)
		if f.proto == packet.ProtoTCP {
			c := binary.BigEndian.Uint16(l4[16:])
			binary.BigEndian.PutUint16(l4[16:], packet.Update16(c, old, port))
		} else if c := binary.BigEndian.Uint16(l4[6:]); c != 0 {
			c = packet.Update16(c, old, port)
			if c == 0 {
				c = 0xffff
			}
			binary.BigEndian.PutUint16(l4[6:], c)
		}
	case ptICMPReq, ptICMPRep:
		if (f.pt == ptICMPRep) != dst {
			return
		}
		old := binary.BigEndian.Uint16(l4[4:])
		if old == port {
			return
		}
		binary.BigEndian.PutUint16(l4[4:], port)
		c := binary.BigEndian.Uint16(l4[2:])
		binary.BigEndian.PutUint16(l4[2:], packet.Update16(c, old, port))
	}
}

func setDst(p packet.IPv4, f *flow, ip uint32, port uint16) {
	setAddr(p, f.proto, f.l4, 16, ip)
	setPort(f, true, port)
}

func setSrc(p packet.IPv4, f *flow, ip uint32, port uint16) {
	setAddr(p, f.proto, f.l4, 12, ip)
	setPort(f, false, port)
}

// account applies one packet of direction dir to the session of h: TCP state
// machine, timeout refresh, counters.
func (w *Worker) account(h *hit, dir int, f *flow, p packet.IPv4, now int64, r *Rules) Reason {
	s := &w.n.t.slab[h.idx]
	if s.expires.Load() == expDying {
		return reasonGone
	}
	var to int64
	refresh := true
	switch f.proto {
	case packet.ProtoTCP:
		var why Reason
		payload := len(f.l4) - int(f.l4[12]>>4)*4
		if payload < 0 {
			payload = 0
		}
		why, to = tcpTrack(s, h.st>>32, dir, f.l4, payload, r)
		if why != 0 {
			return why
		}
	case packet.ProtoUDP:
		to = r.udp
		// Outbound packets refresh a mapping; inbound ones only refresh
		// sessions to a floating IP or forward (RFC 4787 REQ-6).
		o := h.w.origin()
		if dir == 1 && (o == oSNAT || o == oFloatOut) || dir == 0 && o == oSNATIn {
			refresh = false
		}
	case packet.ProtoICMP:
		to = r.icmp
	default:
		to = r.udp
	}
	if dir == 1 {
		if st := s.state.Load(); st&stReplied == 0 && st>>32 == h.st>>32 {
			s.state.CompareAndSwap(st, st|stReplied)
		}
	}
	// Refresh; skipping stores that would move the expiry by under 1/8 s
	// keeps most packets from writing the shared cache line.
	if refresh {
		// A CAS, so that a session the reaper has claimed (expDying) is
		// never revived: the packet is then looked up again.
		for {
			old := s.expires.Load()
			if old == expDying {
				return reasonGone
			}
			if d := now + to - old; d < int64(125*time.Millisecond) && d >= 0 {
				break
			}
			if s.expires.CompareAndSwap(old, now+to) {
				break
			}
		}
	}
	// The slot may have been reaped and reused since the lookup (ABA): then
	// the hit is stale and the packet is looked up again.
	if st := s.state.Load(); st&stLive == 0 || st>>32 != h.st>>32 {
		return reasonGone
	}
	s.pkts.Add(1)
	s.bytes.Add(uint64(len(p)))
	return 0
}

// In is called for every IPv4 packet after input validation, before the FIB
// lookup. It reverse-translates packets of existing sessions arriving from
// outside, applies floating IPs and port forwards (creating sessions), and
// translates ICMP errors (RFC 5508). Packets that match nothing are Pass,
// untouched.
func (w *Worker) In(p packet.IPv4, inNet uint16, now int64) (Verdict, Reason) {
	for try := 0; ; try++ {
		v, why := w.in(p, inNet, now)
		if why != reasonGone {
			return w.settleFirst(p, stageIn, v, why, now)
		}
		if try == 3 {
			return w.drop(NoSession)
		}
		runtime.Gosched() // the reaper is deleting the session: look again
	}
}

func (w *Worker) in(p packet.IPv4, inNet uint16, now int64) (Verdict, Reason) {
	n := w.n
	r := w.r
	ff := p.FlagsFrag()
	first := ff&0x1fff == 0
	ihl := p.IHL()
	if first && p.Proto() == packet.ProtoICMP && len(p) >= ihl+packet.ICMPHdrLen && packet.IsICMPError(p[ihl]) {
		return w.icmpError(p, r, false)
	}
	dst := p.Dst()
	kind, ok := r.addrs[dst]
	if !ok {
		return Pass, 0
	}
	if !first {
		return w.fragIn(p, r, kind, inNet, now)
	}
	var f flow
	if !parseFlow(p, &f) {
		if r.own[dst] {
			return Pass, 0
		}
		return w.drop(Malformed)
	}
	a, b := f.key()
	h := &w.h
	if n.t.lookup(a, b, 1<<kOrig|1<<kReply, h) {
		return w.inHit(p, &f, h, ff, now, r)
	}
	return w.newIn(p, &f, kind, ff, now, r)
}

func (w *Worker) inHit(p packet.IPv4, f *flow, h *hit, ff uint16, now int64, r *Rules) (Verdict, Reason) {
	var ip uint32
	var port uint16
	if h.typ == kOrig {
		ip, port = h.w.rSrc(), h.w.rSport()
	} else {
		ip, port = h.w.oSrc(), h.w.oSport()
	}
	if ip == f.dst && port == f.dport {
		return Pass, 0 // nothing to do here; Out translates the source
	}
	if why := w.account(h, int(h.typ), f, p, now, r); why != 0 {
		if why == reasonGone {
			return Drop, why
		}
		return w.drop(why)
	}
	if ff&0x2000 != 0 { // first fragment of several
		if !w.n.frags.learn(f.src, f.dst, f.proto, p.ID(), stageIn, ip, now) {
			return w.drop(FragTableFull)
		}
		w.release(f.src, f.dst, f.proto, p.ID(), stageIn, ip, now)
	}
	setDst(p, f, ip, port)
	w.inc(cTranslatedIn)
	return Translated, 0
}

func isSYN(f *flow) bool {
	return f.l4[13]&(packet.TCPSyn|packet.TCPAck|packet.TCPRst) == packet.TCPSyn
}

// newIn handles a packet to a NAT address that matched no session.
func (w *Worker) newIn(p packet.IPv4, f *flow, kind uint8, ff uint16, now int64, r *Rules) (Verdict, Reason) {
	if kind&aFwd != 0 && f.pt == ptPorts {
		if i, ok := r.fwdByExt[r.fwdKey(f.proto, f.dst, f.dport)]; ok {
			fw := &r.fwds[i]
			if f.proto == packet.ProtoTCP && !isSYN(f) {
				return w.drop(TCPNoSession)
			}
			be := fw.backends[0]
			if len(fw.backends) > 1 {
				h := hashKey(uint64(f.src)<<16|uint64(f.sport), uint64(f.proto))
				be = fw.backends[h%uint64(len(fw.backends))]
			}
			return w.newDNAT(p, f, uint32(be>>16), uint16(be), oForward, ff, now, r)
		}
	}
	if kind&aFloat != 0 {
		fl := &r.floats[r.floatByExt[f.dst]]
		if f.proto == packet.ProtoTCP && !isSYN(f) {
			// 1:1 without a session: translate the address only.
			setAddr(p, f.proto, f.l4, 16, fl.int)
			w.inc(cStateless)
			w.inc(cTranslatedIn)
			return Translated, 0
		}
		port := f.dport
		return w.newDNAT(p, f, fl.int, port, oFloatIn, ff, now, r)
	}
	if kind&aSNAT != 0 && f.pt == ptPorts {
		return w.newInbound(p, f, ff, now, r)
	}
	if r.own[f.dst] {
		return Pass, 0
	}
	return w.drop(NoSession)
}

// newInbound: a packet from outside to an SNAT address:port without an exact
// session. Filtering decides whether the mapping accepts it.
func (w *Worker) newInbound(p packet.IPv4, f *flow, ff uint16, now int64, r *Rules) (Verdict, Reason) {
	n := w.n
	ma, mb := mapExtKey(f.dst, f.dport, f.proto)
	n.mu.Lock()
	a, b := f.key()
	if n.t.lookup(a, b, 1<<kOrig|1<<kReply, &w.h) {
		n.mu.Unlock()
		return w.inHit(p, f, &w.h, ff, now, r)
	}
	// A sender that is itself inside (hairpinning through a mapping, RFC 4787
	// REQ-9) is seen with its own external address.
	ns := newSess{outNet: Local}
	hsrc, hport := f.src, f.sport
	var hsr *snatRule
	if fi, ok := r.floatByInt[f.src]; ok {
		hsrc = r.floats[fi].ext
		ns.flags = fHairpin | fHairFloat
	} else if hsr = r.insideSNAT(f.src); hsr != nil {
		hsrc = hsr.pair(f.src)
		var w2 words
		if ia, ib := mapIntKey(f.src, f.sport, f.proto, hsr.out); n.t.first(ia, ib, kMapInt, &w2) {
			hsrc = w2.rDst()
		}
	}
	var cand, cw words
	found, addrOK := false, false
	for it := n.t.iter(ma, mb, kMapExt); it.next(&cw); {
		if !found {
			cand, found = cw, true
		}
		if cw.rSrc() == f.src || cw.rSrc() == hsrc {
			cand, addrOK = cw, true
			break
		}
	}
	if !found {
		n.mu.Unlock()
		return w.drop(NoSession)
	}
	if !r.eif && !addrOK {
		n.mu.Unlock()
		return w.drop(Filtered)
	}
	if f.proto == packet.ProtoTCP && !isSYN(f) {
		n.mu.Unlock()
		return w.drop(TCPNoSession)
	}
	dir := uint8(kReply)
	if hsrc != f.src || hsr != nil {
		// Hairpin: a DNAT to the mapping's owner plus the sender's own mapping.
		if hsr != nil {
			var why Reason
			hsrc, hport, why = n.mapping(r, hsr, f.src, f.sport, f.proto, now)
			if why != 0 {
				n.mu.Unlock()
				return w.drop(why)
			}
			ns.flags = fHairpin | fMapped
			ns.outNet = hsr.out
		}
		ns.flags |= oMapHair
		ns.o = tup{f.src, f.dst, f.sport, f.dport, f.proto}
		ns.r = tup{cand.oSrc(), hsrc, cand.oSport(), hport, f.proto}
		dir = kOrig
	} else {
		ns.o = tup{cand.oSrc(), f.src, cand.oSport(), f.sport, f.proto}
		ns.r = tup{f.src, f.dst, f.sport, f.dport, f.proto}
		ns.outNet = cand.outNet()
		ns.flags = oSNATIn | fMapped
	}
	why := n.create(r, &ns, now, &w.h)
	n.mu.Unlock()
	if why != 0 {
		return w.drop(why)
	}
	w.inc(cSessionsCreated)
	if dir == kOrig {
		w.inc(cHairpin)
	}
	w.h.typ = dir // an inbound-created session's packet travels in the reply direction
	return w.inHit(p, f, &w.h, ff, now, r)
}

// newDNAT creates a session for a new flow to a floating IP or forward,
// with the hairpin source translation when the sender is itself inside.
func (w *Worker) newDNAT(p packet.IPv4, f *flow, toIP uint32, toPort uint16, origin uint16, ff uint16, now int64, r *Rules) (Verdict, Reason) {
	n := w.n
	n.mu.Lock()
	a, b := f.key()
	if n.t.lookup(a, b, 1<<kOrig|1<<kReply, &w.h) {
		n.mu.Unlock()
		return w.inHit(p, f, &w.h, ff, now, r)
	}
	ns := newSess{o: tup{f.src, f.dst, f.sport, f.dport, f.proto}, flags: origin, outNet: Local}
	hsrc, hport := f.src, f.sport
	if fi, ok := r.floatByInt[f.src]; ok {
		hsrc = r.floats[fi].ext
		ns.flags |= fHairpin | fHairFloat
	} else if sr := r.insideSNAT(f.src); sr != nil && f.pt != ptNone {
		var why Reason
		hsrc, hport, why = n.mapping(r, sr, f.src, f.sport, f.proto, now)
		if why != 0 {
			n.mu.Unlock()
			return w.drop(why)
		}
		ns.flags |= fHairpin | fMapped
		ns.outNet = sr.out
	}
	ns.r = tup{toIP, hsrc, toPort, hport, f.proto}
	if f.pt == ptICMPReq {
		ns.r.sport = 0
	}
	why := n.create(r, &ns, now, &w.h)
	n.mu.Unlock()
	if why != 0 {
		return w.drop(why)
	}
	w.inc(cSessionsCreated)
	if ns.flags&fHairpin != 0 {
		w.inc(cHairpin)
	}
	return w.inHit(p, f, &w.h, ff, now, r)
}

// Out is called after the FIB chose the egress network outNet (TTL already
// decremented). It applies source translations: SNAT of new and existing
// flows, replies from floating-IP hosts and forward backends, hairpin
// sources, and — for packets the router generated itself (inNet == Local) —
// the quoted packet of ICMP errors.
func (w *Worker) Out(p packet.IPv4, inNet, outNet uint16, now int64) (Verdict, Reason) {
	for try := 0; ; try++ {
		v, why := w.out(p, inNet, outNet, now)
		if why != reasonGone {
			if inNet == Local {
				return v, why
			}
			return w.settleFirst(p, stageOut, v, why, now)
		}
		if try == 3 {
			return w.drop(NoSession)
		}
		runtime.Gosched()
	}
}

func (w *Worker) out(p packet.IPv4, inNet, outNet uint16, now int64) (Verdict, Reason) {
	n := w.n
	r := w.r
	ff := p.FlagsFrag()
	first := ff&0x1fff == 0
	ihl := p.IHL()
	if first && p.Proto() == packet.ProtoICMP && len(p) >= ihl+packet.ICMPHdrLen && packet.IsICMPError(p[ihl]) {
		if inNet == Local {
			return w.icmpError(p, r, true)
		}
		return w.icmpErrorOut(p, r, inNet, outNet)
	}
	if inNet == Local {
		return Pass, 0
	}
	if !first {
		return w.fragOut(p, r, inNet, outNet, now)
	}
	var f flow
	if !parseFlow(p, &f) {
		if r.isInside(p.Src()) {
			return w.drop(Malformed)
		}
		return Pass, 0
	}
	a, b := f.key()
	h := &w.h
	if n.t.lookup(a, b, 1<<kOrig|1<<kReply|1<<kHair, h) {
		return w.outHit(p, &f, h, ff, now, r)
	}
	if !r.isInside(f.src) {
		return Pass, 0
	}
	// Already translated by In (its reverse is a session key), or a hairpin
	// reply after In (the reverse of a kHair key).
	if a, b = f.rkey(); n.t.lookup(a, b, 1<<kOrig|1<<kReply|1<<kHair, h) {
		if h.typ != kHair {
			return Pass, 0 // already fully translated by In
		}
		// Hairpin reply after In: source becomes the original destination.
		return w.setSrcOut(p, &f, h.w.oDst(), h.w.oDport(), ff, now)
	}
	return w.newOut(p, &f, inNet, outNet, ff, now, r)
}

func (w *Worker) outHit(p packet.IPv4, f *flow, h *hit, ff uint16, now int64, r *Rules) (Verdict, Reason) {
	var ip uint32
	var port uint16
	if h.typ == kReply {
		ip, port = h.w.oDst(), h.w.oDport()
	} else {
		ip, port = h.w.rDst(), h.w.rDport()
	}
	if ip == f.src && port == f.sport {
		return Pass, 0
	}
	if h.typ != kHair {
		if why := w.account(h, int(h.typ), f, p, now, r); why != 0 {
			if why == reasonGone {
				return Drop, why
			}
			return w.drop(why)
		}
	}
	return w.setSrcOut(p, f, ip, port, ff, now)
}

func (w *Worker) setSrcOut(p packet.IPv4, f *flow, ip uint32, port uint16, ff uint16, now int64) (Verdict, Reason) {
	if ff&0x2000 != 0 {
		if !w.n.frags.learn(f.src, f.dst, f.proto, p.ID(), stageOut, ip, now) {
			return w.drop(FragTableFull)
		}
		w.release(f.src, f.dst, f.proto, p.ID(), stageOut, ip, now)
	}
	setSrc(p, f, ip, port)
	w.inc(cTranslatedOut)
	return Translated, 0
}

// floatOut returns the floating rule that applies to traffic from src
// leaving via outNet.
func (r *Rules) floatOut(src uint32, inNet, outNet uint16) *floatRule {
	fi, ok := r.floatByInt[src]
	if !ok {
		return nil
	}
	fl := &r.floats[fi]
	if fl.extNet == outNet || fl.extNet == Local && outNet != inNet {
		return fl
	}
	return nil
}

func (r *Rules) snatOut(src uint32, outNet uint16) *snatRule {
	for i := range r.snat {
		sr := &r.snat[i]
		if sr.out == outNet && sr.contains(src) {
			return sr
		}
	}
	return nil
}

func (w *Worker) newOut(p packet.IPv4, f *flow, inNet, outNet uint16, ff uint16, now int64, r *Rules) (Verdict, Reason) {
	n := w.n
	fl := r.floatOut(f.src, inNet, outNet)
	var sr *snatRule
	if fl == nil {
		if sr = r.snatOut(f.src, outNet); sr == nil {
			return Pass, 0
		}
	}
	if f.proto == packet.ProtoTCP && !isSYN(f) {
		if fl != nil {
			setAddr(p, f.proto, f.l4, 12, fl.ext)
			w.inc(cStateless)
			w.inc(cTranslatedOut)
			return Translated, 0
		}
		return w.drop(TCPNoSession)
	}
	if sr != nil && f.pt == ptNone {
		return w.drop(UnsupportedProto)
	}
	n.mu.Lock()
	a, b := f.key()
	if n.t.lookup(a, b, 1<<kOrig|1<<kReply|1<<kHair, &w.h) {
		n.mu.Unlock()
		return w.outHit(p, f, &w.h, ff, now, r)
	}
	ns := newSess{o: tup{f.src, f.dst, f.sport, f.dport, f.proto}, outNet: outNet}
	var xip uint32
	xport := f.sport
	if fl != nil {
		xip = fl.ext
		ns.flags = oFloatOut
	} else {
		var why Reason
		xip, xport, why = n.mapping(r, sr, f.src, f.sport, f.proto, now)
		if why != 0 {
			n.mu.Unlock()
			return w.drop(why)
		}
		ns.flags = oSNAT | fMapped
	}
	ns.r = tup{f.dst, xip, f.dport, xport, f.proto}
	why := n.create(r, &ns, now, &w.h)
	n.mu.Unlock()
	if why != 0 {
		return w.drop(why)
	}
	if sr != nil {
		n.hints.note(f.dst, xip, f.proto, f.src, now, r.udp)
	}
	w.inc(cSessionsCreated)
	return w.outHit(p, f, &w.h, ff, now, r)
}

// settleFirst does a stage's fragment bookkeeping once its verdict on a
// first fragment of several is known: a Pass is remembered (so later
// fragments pass and held ones are released untouched), a Drop frees the
// fragments held for it.
func (w *Worker) settleFirst(p packet.IPv4, stage int, v Verdict, why Reason, now int64) (Verdict, Reason) {
	if p.FlagsFrag()&0x3fff == 0x2000 {
		switch v {
		case Pass:
			return w.learnPass(p, stage, now)
		case Drop:
			w.discard(p, stage)
		}
	}
	return v, why
}
