package nat

import (
	"sync"
	"sync/atomic"
	"time"

	"vrouter/packet"
)

type tup struct {
	src, dst     uint32
	sport, dport uint16
	proto        uint8
}

type newSess struct {
	o, r   tup
	outNet uint16
	flags  uint16
}

// mapping returns the external address and port of inside endpoint
// ip:port (caller holds n.mu): the existing mapping of the endpoint when
// there is one (endpoint-independent mapping), otherwise a new one on the
// host's paired address.
func (n *NAT) mapping(r *Rules, sr *snatRule, ip uint32, port uint16, proto uint8, now int64) (uint32, uint16, Reason) {
	// Make room first: an eviction must not free the mapping found below.
	if !n.room(r, now) {
		return 0, 0, TableFull
	}
	a, b := mapIntKey(ip, port, proto, sr.out)
	var w words
	if n.t.first(a, b, kMapInt, &w) {
		return w.rDst(), w.rDport(), 0
	}
	xip := sr.pair(ip)
	xport, ok := n.allocPort(r, sr, xip, proto, ip, port)
	if !ok {
		return 0, 0, OutOfPorts
	}
	return xip, xport, 0
}

// room makes space for one more session when the table is full by evicting
// a session that never completed (TCP not established: handshake, closed;
// other protocols: never answered) and has been idle for EvictIdle.
// Established flows are never evicted. Caller holds n.mu; false when nothing
// could be evicted.
func (n *NAT) room(r *Rules, now int64) bool {
	t := n.t
	if t.live.Load() < int64(t.max) {
		return true
	}
	var w words
	for i := 0; i < 256; i++ {
		if n.evictPos >= t.hwm {
			n.evictPos = 0
		}
		idx := n.evictPos
		n.evictPos++
		st, ok, _ := t.read(idx, &w)
		if !ok {
			continue
		}
		if evictable(st, w.proto(), n.t.slab[idx].expires.Load(), now, r) {
			n.destroy(idx)
			n.evicted.Add(1)
			return true
		}
	}
	return false
}

// evictable is room's rule for a session of either family with state word
// st, protocol proto and expiry exp: unfinished (TCP not established, or
// never answered) and idle for EvictIdle (its expiry minus its protocol's
// timeout is the time of its last packet).
func evictable(st uint64, proto uint8, exp, now int64, r *Rules) bool {
	evict := st&stReplied == 0
	to := r.udp
	switch proto {
	case packet.ProtoTCP:
		to = r.tcpTrans
		switch st & stStateMask {
		case tcpSynSent, tcpSynRcvd, tcpTimeWait, tcpClose:
			evict = true
		default:
			evict = false
		}
	case packet.ProtoICMP, packet.ProtoICMPv6:
		to = r.icmp
	}
	return evict && exp-to <= now-int64(EvictIdle)
}

// create allocates and indexes a session (caller holds n.mu) and fills h as
// a lookup hit of the original key would.
func (n *NAT) create(r *Rules, ns *newSess, now int64, h *hit) Reason {
	t := n.t
	nkeys := 2
	if ns.flags&fMapped != 0 {
		nkeys += 2
	}
	if ns.flags&fHairpin != 0 {
		nkeys++
	}
	if !n.room(r, now) || uint64(t.keys+nkeys) > (t.mask+1)*3/4 {
		n.releasePort(ns)
		return TableFull
	}
	// The reply tuple must not belong to another session.
	ra, rb := keyWords(ns.r.src, ns.r.dst, ns.r.sport, ns.r.dport, ns.r.proto)
	var tmp hit
	if t.lookup(ra, rb, 1<<kOrig|1<<kReply, &tmp) {
		n.releasePort(ns)
		return TupleClash
	}
	idx, ok := t.alloc()
	if !ok {
		n.releasePort(ns)
		return TableFull
	}
	s := &t.slab[idx]
	oa, ob := keyWords(ns.o.src, ns.o.dst, ns.o.sport, ns.o.dport, ns.o.proto)
	ob |= uint64(ns.outNet)
	rb |= uint64(ns.flags)
	s.oa.Store(oa)
	s.ob.Store(ob)
	s.ra.Store(ra)
	s.rb.Store(rb)
	s.pkts.Store(0)
	s.bytes.Store(0)
	for i := range s.tcp {
		s.tcp[i].Store(0)
	}
	gen := s.state.Load()>>32 + 1
	st := gen<<32 | stLive
	s.state.Store(st)
	t.live.Add(1)
	h.idx, h.typ, h.st = idx, kOrig, st
	h.w = words{oa, ob, ra, rb}
	for typ := uint8(0); typ <= kMapExt; typ++ {
		switch typ {
		case kHair:
			if ns.flags&fHairpin == 0 {
				continue
			}
		case kMapInt, kMapExt:
			if ns.flags&fMapped == 0 {
				continue
			}
		}
		a, b := h.w.key(typ)
		t.insert(a, b, idx, typ)
	}
	// Until account() sets the protocol's timeout (UDP inbound-created
	// sessions keep this one).
	s.expires.Store(now + r.udp)
	n.lastNow.Store(now)
	n.noteCreate(idx, gen)
	return 0
}

// releasePort frees the port of a mapping no session holds (caller holds n.mu).
func (n *NAT) releasePort(ns *newSess) {
	if ns.flags&fMapped == 0 {
		return
	}
	n.releaseMapping(ns.r.dst, ns.r.dport, ns.r.proto)
}

func (n *NAT) releaseMapping(ip uint32, port uint16, proto uint8) {
	a, b := mapExtKey(ip, port, proto)
	var w words
	if !n.t.first(a, b, kMapExt, &w) {
		if p := n.pools[poolKey(ip, proto)]; p != nil {
			p.clear(port)
		}
	}
}

// destroy removes session idx (caller holds n.mu).
func (n *NAT) destroy(idx uint32) {
	t := n.t
	var w words
	if _, ok, _ := t.read(idx, &w); !ok {
		return
	}
	for typ := uint8(0); typ <= kMapExt; typ++ {
		switch typ {
		case kHair:
			if !w.hairpin() {
				continue
			}
		case kMapInt, kMapExt:
			if !w.mapped() {
				continue
			}
		}
		a, b := w.key(typ)
		t.remove(a, b, idx, typ)
	}
	n.noteDelete(&w)
	t.release(idx)
	if w.mapped() {
		n.releaseMapping(w.rDst(), w.rDport(), w.proto())
	}
}

// Reap expires at most budget sessions whose timeout passed, scanning a
// bounded part of the table (8 slots per unit of budget, at least 4096) from
// where the previous call stopped. The scan takes no lock; expired sessions
// are deleted in batches under the table lock, so new flows wait at most one
// batch. The router calls it from a ticker. It returns the number expired.
func (n *NAT) Reap(now int64, budget int) int {
	n.lastNow.Store(now)
	n.frags.expire(now)
	n.frags6.expire(now)
	n.hold.expire(now)
	n.reapMu.Lock()
	defer n.reapMu.Unlock()
	done := n.reap4(now, budget)
	done += n.reap6(now, budget-done)
	n.reaped.Add(uint64(done))
	return done
}

// reap4 is Reap for the IPv4 table (caller holds reapMu).
func (n *NAT) reap4(now int64, budget int) int {
	t := n.t
	n.mu.Lock()
	hwm := t.hwm
	n.mu.Unlock()
	return reapScan(t.slab, hwm, &n.reapPos, n.reapBuf[:0], &n.mu, n.destroy, now, budget)
}

// slot is what the reaper reads of a session of either family.
type slot interface {
	stateWord() *atomic.Uint64
	expiry() *atomic.Int64
}

func (s *session) stateWord() *atomic.Uint64  { return &s.state }
func (s *session) expiry() *atomic.Int64      { return &s.expires }
func (s *session6) stateWord() *atomic.Uint64 { return &s.state }
func (s *session6) expiry() *atomic.Int64     { return &s.expires }

// reapScan destroys at most budget sessions of slab[:hwm] whose timeout
// passed, scanning on from *pos (at most max(budget*8, 4096) slots per
// call) without the table's lock and taking it (mu) once per batch of
// candidates: a candidate is destroyed only if it is still the same
// session (generation), still expired and not refreshed meanwhile (its
// expiry claimed with a CAS, so a worker's refresh then fails).
func reapScan[S any, P interface {
	*S
	slot
}](slab []S, hwm uint32, pos *uint32, batch []reapCand, mu *sync.Mutex, destroy func(uint32), now int64, budget int) int {
	if hwm == 0 || budget <= 0 {
		return 0
	}
	scan := min(max(budget*8, 4096), int(hwm))
	done := 0
	flush := func() {
		mu.Lock()
		for _, c := range batch {
			s := P(&slab[c.idx])
			if st := s.stateWord().Load(); st&stLive != 0 && st>>32 == c.gen {
				if e := s.expiry().Load(); e <= now && e != expDying && s.expiry().CompareAndSwap(e, expDying) {
					destroy(c.idx)
					done++
				}
			}
		}
		mu.Unlock()
		batch = batch[:0]
	}
	for i := 0; i < scan && done+len(batch) < budget; i++ {
		if *pos >= hwm {
			*pos = 0
		}
		idx := *pos
		*pos++
		s := P(&slab[idx])
		st := s.stateWord().Load()
		if st&stLive == 0 || s.expiry().Load() > now {
			continue
		}
		batch = append(batch, reapCand{idx, st >> 32})
		if len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
	return done
}

type reapCand struct {
	idx uint32
	gen uint64
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
		var changed bool
		payload := len(f.l4) - packet.TCP(f.l4).DataOff()
		if payload < 0 {
			payload = 0
		}
		why, to, changed = tcpTrack(&s.state, &s.tcp, h.st>>32, dir, f.l4, payload, r)
		if why != 0 {
			return why
		}
		if changed {
			w.noteChange(h.idx, h.st>>32)
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
