package nat

import (
	"runtime"

	"vrouter/packet"
)

// The outbound stage, Worker.Out: source translation of existing sessions
// (the fast path), and the dispatch of the rest: ICMP errors (icmp.go),
// non-first fragments (frag.go), new sessions (out_new.go).

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
		w.forget()
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
	first := ff&packet.IPv4FragOffMask == 0
	if first && isICMPError(p) {
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
	c := &w.ct
	var fl flow
	f := &fl
	if c.flags&ctParsed != 0 && c.p0 == pktID(p) {
		f = &c.f // Track's or In's parse (w.flowOf)
	} else if !parseFlow(p, f) {
		if r.isInside(p.Src()) {
			return w.drop(Malformed)
		}
		return Pass, 0
	}
	f.partial = w.partial
	a, b := f.key()
	if c.flags&ctFound != 0 && (c.a == a && c.b == b || c.flags&ctInX != 0 && c.p0 == pktID(p)) {
		// Track or In found the session of this packet.
		return w.outCT(p, f, ff, now, r)
	}
	c.flags &^= ctFound // c.h is about to be overwritten
	h := &c.h
	if n.t.lookup(a, b, 1<<kOrig|1<<kReply|1<<kHair, h) {
		w.noteFound(a, b, false)
		return w.outHit(p, f, h, ff, now, r)
	}
	if c.flags&(ctActive|ctLooked) == ctActive {
		// In did not look: the packet is as received.
		c.a, c.b = a, b
		c.flags |= ctLooked
	}
	if !r.isInside(f.src) {
		return Pass, 0
	}
	// Already translated by In (its reverse is a session key), or a hairpin
	// reply after In (the reverse of a kHair key).
	if a, b = f.rkey(); n.t.lookup(a, b, 1<<kOrig|1<<kReply|1<<kHair, &w.h) {
		h = &w.h
		if h.typ != kHair {
			return Pass, 0 // already fully translated by In
		}
		// Hairpin reply after In: source becomes the original destination.
		return w.setSrcOut(p, f, h.w.oDst(), h.w.oDport(), ff, now)
	}
	return w.newOut(p, f, inNet, outNet, ff, now, r)
}

// outHit translates the source of a packet of session h and accounts it
// (hairpin keys are accounted by In).
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

// setSrcOut sets the source of f's packet, remembering it for the next
// fragments when p is a first fragment of several.
func (w *Worker) setSrcOut(p packet.IPv4, f *flow, ip uint32, port uint16, ff uint16, now int64) (Verdict, Reason) {
	if ff&packet.IPv4MF != 0 { // first fragment of several
		if !w.n.frags.learn(f.src, f.dst, f.proto, p.ID(), stageOut, ip, now) {
			return w.drop(FragTableFull)
		}
		w.release(f.src, f.dst, f.proto, p.ID(), stageOut, ip, now)
	}
	setSrc(p, f, ip, port)
	w.ct.flags &^= ctParsed // a kept parse is out of date
	w.inc(cTranslatedOut)
	return Translated, 0
}
