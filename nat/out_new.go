package nat

import (
	"vrouter/packet"
)

// New sessions created by Worker.Out: SNAT mappings and floating IPs of
// inside hosts opening flows.

// newOut handles a packet leaving via outNet that matched no session: the
// floating IP of its source or an SNAT rule for (source, outNet) creates
// one; anything else passes.
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
			setAddr(p, f.proto, f.l4, packet.IPv4SrcOff, fl.ext, f.partial)
			w.ct.flags &^= ctParsed
			w.inc(cStateless)
			w.inc(cTranslatedOut)
			return Translated, 0
		}
		return w.drop(TCPNoSession)
	}
	if sr != nil && f.pt == ptNone {
		return w.drop(UnsupportedProto)
	}
	if n.sync.passive.Load() {
		return w.drop(HABackup)
	}
	n.mu.Lock()
	a, b := f.key()
	h := &w.ct.h
	if n.t.lookup(a, b, 1<<kOrig|1<<kReply|1<<kHair, h) {
		n.mu.Unlock()
		w.noteFound(a, b, false)
		return w.outHit(p, f, h, ff, now, r)
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
	why := n.create(r, &ns, now, h)
	n.mu.Unlock()
	if why != 0 {
		return w.drop(why)
	}
	if sr != nil {
		n.hints.note(f.dst, xip, f.proto, f.src, now, r.udp)
	}
	w.inc(cSessionsCreated)
	w.noteFound(a, b, true)
	return w.outHit(p, f, h, ff, now, r)
}
