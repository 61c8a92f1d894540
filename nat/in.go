package nat

import (
	"runtime"

	"vrouter/packet"
)

// The inbound stage, Worker.In: packets arriving from outside for existing
// sessions (the fast path), and the dispatch of the rest: ICMP errors
// (icmp.go), non-first fragments (frag.go), new sessions (in_new.go).

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
		w.forget()
		if try == 3 {
			return w.drop(NoSession)
		}
		runtime.Gosched() // the reaper is deleting the session: look again
	}
}

func (w *Worker) in(p packet.IPv4, inNet uint16, now int64) (Verdict, Reason) {
	r := w.r
	ff := p.FlagsFrag()
	first := ff&packet.IPv4FragOffMask == 0
	if first && isICMPError(p) {
		return w.icmpError(p, r, false)
	}
	if c := &w.ct; c.flags&(ctFound|ctParsed) == ctFound|ctParsed && c.p0 == pktID(p) && first {
		// Track found the session: In's part of it, without the lookups.
		f := &c.f
		f.partial = w.partial
		return w.inHit(p, f, &c.h, ff, now, r)
	}
	dst := p.Dst()
	kind, ok := r.addrs[dst]
	if !ok {
		return Pass, 0
	}
	if !first {
		return w.fragIn(p, r, kind, inNet, now)
	}
	var fl flow
	f, ok := w.parseKeep(p, &fl)
	if !ok {
		if r.own[dst] {
			return Pass, 0
		}
		return w.drop(Malformed)
	}
	f.partial = w.partial
	if w.lookupFlow(f.key()) {
		return w.inHit(p, f, &w.ct.h, ff, now, r)
	}
	return w.newIn(p, f, kind, ff, now, r)
}

// inHit translates the destination of a packet of session h (a reply to
// SNAT, or a flow to a floating IP or forward) and accounts it.
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
	if ff&packet.IPv4MF != 0 { // first fragment of several
		if !w.n.frags.learn(f.src, f.dst, f.proto, p.ID(), stageIn, ip, now) {
			return w.drop(FragTableFull)
		}
		w.release(f.src, f.dst, f.proto, p.ID(), stageIn, ip, now)
	}
	setDst(p, f, ip, port)
	if c := &w.ct; c.flags&ctActive != 0 {
		c.flags |= ctInX // Out translates the source without a lookup (outCT)
		if c.flags&ctParsed != 0 && c.p0 == pktID(p) {
			c.f.dst = ip // the kept parse stays valid for Out
			if c.f.pt == ptPorts || c.f.pt == ptICMPRep {
				c.f.dport = port
			}
		} else {
			c.flags &^= ctParsed
		}
		c.p0 = pktID(p)
	}
	w.inc(cTranslatedIn)
	return Translated, 0
}
