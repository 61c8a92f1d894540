package nat

import (
	"vrouter/packet"
)

// New sessions created by Worker.In: port forwards, floating IPs, and
// inbound packets accepted by an SNAT mapping (filtering, hairpins).

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
			setAddr(p, f.proto, f.l4, packet.IPv4DstOff, fl.int, f.partial)
			w.ct.flags &^= ctParsed
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
	h := &w.ct.h
	if n.t.lookup(a, b, 1<<kOrig|1<<kReply, h) {
		n.mu.Unlock()
		w.noteFound(a, b, false)
		return w.inHit(p, f, h, ff, now, r)
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
	if (!found || !r.eif && !addrOK) && r.hostOwn[f.dst] {
		n.mu.Unlock()
		return Pass, 0 // the router's address: for its host interface
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
	if n.sync.passive.Load() {
		n.mu.Unlock()
		return w.drop(HABackup)
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
	why := n.create(r, &ns, now, h)
	n.mu.Unlock()
	if why != 0 {
		return w.drop(why)
	}
	w.inc(cSessionsCreated)
	if dir == kOrig {
		w.inc(cHairpin)
	}
	h.typ = dir // an inbound-created session's packet travels in the reply direction
	w.noteFound(a, b, true)
	return w.inHit(p, f, h, ff, now, r)
}

// newDNAT creates a session for a new flow to a floating IP or forward,
// with the hairpin source translation when the sender is itself inside.
func (w *Worker) newDNAT(p packet.IPv4, f *flow, toIP uint32, toPort uint16, origin uint16, ff uint16, now int64, r *Rules) (Verdict, Reason) {
	n := w.n
	if n.sync.passive.Load() {
		return w.drop(HABackup)
	}
	n.mu.Lock()
	a, b := f.key()
	h := &w.ct.h
	if n.t.lookup(a, b, 1<<kOrig|1<<kReply, h) {
		n.mu.Unlock()
		w.noteFound(a, b, false)
		return w.inHit(p, f, h, ff, now, r)
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
	why := n.create(r, &ns, now, h)
	n.mu.Unlock()
	if why != 0 {
		return w.drop(why)
	}
	w.inc(cSessionsCreated)
	if ns.flags&fHairpin != 0 {
		w.inc(cHairpin)
	}
	w.noteFound(a, b, true)
	return w.inHit(p, f, h, ff, now, r)
}
