package nat

import (
	"fmt"
	"runtime"
	"strings"
	"unsafe"

	"vrouter/packet"
)

// Connection tracking for the router's stateful filter, and the per-packet
// record that lets the filter and the NAT stages look a packet's session up
// once.
//
// The filter stages (filter_in on the packet as received, filter_out on the
// packet as sent) ask Track what the conntrack table knows of a packet: a
// packet of a session (either direction), an ICMP error about one (RFC 5508:
// the quoted header matches a session and the error goes to the quoted
// packet's source), a later fragment of a datagram whose first fragment
// passed, or a new flow. A flow that the filters accept and that no NAT rule
// translated gets a tracking-only session (Create): a session like the
// NAT's whose reply tuple is the mirror of its original tuple, so that
// nothing is translated; it follows the TCP state machine and the timeouts
// of the others. NAT sessions track their flows too.
//
// The per-packet record. The router calls Reset for every IPv4 packet before
// the first stage (Track or In) sees it. The stages then share the lookup of
// the packet's flow and its session: In reuses the lookup Track made, Out
// translates with the session In or Track found instead of looking up the
// translated packet again, and Track at the egress reuses what In and Out
// found. A session a NAT stage created for the packet is deleted by Abort
// unless the router Confirms that the packet left (a filter may refuse a
// first packet after NAT In or Out created its session). Without Reset
// (callers of In and Out that never call it) nothing is shared: every stage
// looks up on its own.

// pktCT is what the stages learnt about the packet being processed.
type pktCT struct {
	flags uint8
	a, b  uint64  // the key looked up (ctLooked): the flow as received
	p0    uintptr // the packet f was parsed from (ctParsed), In translated (ctInX): its first byte's address, an identity only
	f     flow    // the packet's flow as it is now (ctParsed)
	h     hit     // the packet's session (ctFound)
	// the session created for the packet (ctCreated)
	cIdx uint32
	cGen uint64
}

const (
	ctActive    = 1 << iota // Reset was called: share
	ctLooked                // (a, b) was looked up among the original and reply keys
	ctFound                 // ... and h is its session
	ctCreated               // a NAT stage created a session for the packet (cIdx, cGen)
	ctAccounted             // h was accounted for the packet
	ctInX                   // In translated the packet (p0) with h
	ctParsed                // f is the packet p0 as it is now
)

// flowOf is p's flow: the parse of an earlier stage when p has not changed
// since, or f filled by parseFlow (ok as parseFlow's). Stages that look at
// the flow but do not change it (Out reads a parse of Track or In, which
// keep theirs) do not modify what it returns.
func (w *Worker) flowOf(p packet.IPv4, f *flow) (*flow, bool) {
	c := &w.ct
	if c.flags&ctParsed != 0 && c.p0 == pktID(p) {
		return &c.f, true
	}
	return f, parseFlow(p, f)
}

// pktID identifies a packet by the address of its first byte (p is never
// empty here): a pointer compare without a pointer store (no write
// barrier on the per-packet path). Only packets of the current record are
// compared, which are all alive.
func pktID(p packet.IPv4) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(p))) }

// parseKeep is flowOf for the first stages (Track, In): their parse is
// kept for the next ones.
func (w *Worker) parseKeep(p packet.IPv4, f *flow) (*flow, bool) {
	c := &w.ct
	if c.flags&ctActive == 0 {
		return f, parseFlow(p, f)
	}
	if c.flags&ctParsed != 0 && c.p0 == pktID(p) {
		return &c.f, true
	}
	if !parseFlow(p, &c.f) {
		return f, false
	}
	c.p0 = pktID(p)
	c.flags |= ctParsed
	return &c.f, true
}

// oTrack is the origin of tracking-only sessions (Create): nothing is
// translated.
const oTrack = 7

// Reset starts the record of a new packet. The router calls it for every
// IPv4 packet before Track or In.
func (w *Worker) Reset() { w.ct.flags = ctActive }

// forget drops what was learnt about the packet's session (it went away
// while the packet used it); a created session stays recorded for Abort.
func (w *Worker) forget() { w.ct.flags &= ctActive | ctCreated }

// lookupFlow looks up key (a, b), the packet's flow as received, among the
// original and reply keys into w.ct.h, reusing an earlier lookup of the
// same key for the same packet.
func (w *Worker) lookupFlow(a, b uint64) bool {
	c := &w.ct
	if c.flags&ctActive != 0 {
		if c.flags&ctLooked != 0 && c.a == a && c.b == b {
			return c.flags&ctFound != 0
		}
		c.a, c.b = a, b
		c.flags = c.flags&^(ctFound|ctAccounted|ctInX) | ctLooked
	}
	if w.n.t.lookup(a, b, 1<<kOrig|1<<kReply, &c.h) {
		if c.flags&ctActive != 0 {
			c.flags |= ctFound
		}
		return true
	}
	return false
}

// noteFound records that w.ct.h is the session of the packet whose flow
// key is (a, b); created: a stage has just created it.
func (w *Worker) noteFound(a, b uint64, created bool) {
	c := &w.ct
	if c.flags&ctActive == 0 {
		return
	}
	c.a, c.b = a, b
	c.flags = c.flags&^(ctAccounted|ctInX) | ctLooked | ctFound
	if created {
		c.flags |= ctCreated
		c.cIdx, c.cGen = c.h.idx, c.h.st>>32
	}
}

// accountOnce accounts the packet to its tracking-only session h (w.ct.h)
// unless Track did already (on the other side). A NAT session is accounted
// by the one of In and Out that translates (both for a hairpin: In).
func (w *Worker) accountOnce(h *hit, f *flow, p packet.IPv4, now int64, r *Rules) Reason {
	c := &w.ct
	if c.flags&ctAccounted != 0 {
		return 0
	}
	why := w.account(h, int(h.typ), f, p, now, r)
	if why == 0 && c.flags&ctActive != 0 {
		c.flags |= ctAccounted
	}
	return why
}

// outCT is Out for a packet whose session Track or In found: the source
// becomes the session's, without a second lookup. The original direction
// leaves from the reply tuple's destination, the reply direction from the
// original tuple's destination (what Out's own lookup of the packet, or of
// its reverse for a hairpin reply, would give).
func (w *Worker) outCT(p packet.IPv4, f *flow, ff uint16, now int64, r *Rules) (Verdict, Reason) {
	h := &w.ct.h
	ip, port := h.w.rDst(), h.w.rDport()
	if h.typ == kReply {
		ip, port = h.w.oDst(), h.w.oDport()
	}
	if ip == f.src && port == f.sport {
		return Pass, 0
	}
	if w.ct.flags&ctInX == 0 { // else In accounted it (a hairpin: both translate)
		if why := w.account(h, int(h.typ), f, p, now, r); why != 0 {
			if why == reasonGone {
				return Drop, why
			}
			return w.drop(why)
		}
	}
	return w.setSrcOut(p, f, ip, port, ff, now)
}

// Side says which packet a filter stage looks at: as the router received it
// (filter_in, before NAT) or as it sends it (filter_out, after NAT).
type Side uint8

const (
	AsReceived Side = iota
	AsSent
)

// fragStage is the fragment-table stage of a filter side (the NAT's In and
// Out use 0 and 1).
func fragStage(s Side) int { return 2 + int(s) }

// FlowState is what the conntrack table knows of a packet (Track).
type FlowState uint8

const (
	// FlowNew: no session; the first packet of a flow, or a packet that
	// cannot have one (an ICMP error matching none, a fragment whose
	// first fragment did not pass). The filter classifies it.
	FlowNew FlowState = iota
	// FlowEstablished: a packet of a session, either direction.
	FlowEstablished
	// FlowRelated: an ICMP error whose quoted packet belongs to a session
	// and that goes to the quoted packet's source (RFC 5508).
	FlowRelated
	// FlowFragment: a non-first fragment of a datagram whose first
	// fragment passed this side's filter stage.
	FlowFragment
	// FlowInvalid: a packet that belongs to no session and cannot start one
	// (TCP other than a SYN: TCPNoSession; a transport header too short:
	// Malformed), or that its session refuses (an RST outside the window:
	// TCPBadRST). The filter drops it.
	FlowInvalid
)

var flowStateNames = [...]string{"new", "established", "related", "fragment", "invalid"}

func (s FlowState) String() string {
	if int(s) < len(flowStateNames) {
		return flowStateNames[s]
	}
	return "flow?"
}

// Track says what the conntrack table knows of p, seen by a filter stage
// on side s, and accounts p to its session when it is a tracking-only one
// (NAT sessions are accounted by In and Out). It changes nothing in p and
// counts nothing: the router counts what the filter does. A FlowInvalid
// comes with its reason. A worker that was never Reset is Reset by Track.
func (w *Worker) Track(p packet.IPv4, s Side, now int64) (FlowState, Reason) {
	if p.FlagsFrag()&packet.IPv4FragOffMask != 0 {
		if _, ok := w.n.frags.find(p.Src(), p.Dst(), p.Proto(), p.ID(), fragStage(s), now); ok {
			return FlowFragment, 0
		}
		return FlowNew, 0
	}
	c := &w.ct
	if c.flags&ctActive == 0 {
		c.flags = ctActive // a caller that never Resets: this is a new packet
	}
	for try := 0; ; try++ {
		var found, ok bool
		var f *flow
		if c.flags&ctLooked != 0 && (p.Proto() != packet.ProtoICMP || !isICMPError(p)) {
			// In or Out (or Track on the other side) looked the packet up.
			found = c.flags&ctFound != 0
			if !found || c.h.w.origin() == oTrack {
				if f, ok = w.flowOf(p, &w.fl); !ok {
					return FlowInvalid, Malformed
				}
			}
		} else {
			// The first stage to see the packet: its parse is kept (as
			// parseKeep does).
			f = &c.f
			if c.flags&ctParsed == 0 || c.p0 != pktID(p) {
				if !parseFlow(p, f) {
					return FlowInvalid, Malformed
				}
				c.p0 = pktID(p)
				c.flags |= ctParsed
			}
			if f.proto == packet.ProtoICMP && f.pt == ptNone && len(f.l4) >= packet.ICMPHdrLen && packet.IsICMPError(f.l4[0]) {
				if w.related(p, s) {
					return FlowRelated, 0
				}
				return FlowNew, 0
			}
			a, b := f.key()
			c.a, c.b = a, b
			c.flags = c.flags&^(ctFound|ctAccounted|ctInX) | ctLooked
			if found = w.n.t.lookup(a, b, 1<<kOrig|1<<kReply, &c.h); found {
				c.flags |= ctFound
			}
		}
		if !found {
			if f.proto == packet.ProtoTCP && !isSYN(f) {
				return FlowInvalid, TCPNoSession
			}
			return FlowNew, 0
		}
		h := &c.h
		if c.flags&ctCreated != 0 && c.cIdx == h.idx && c.cGen == h.st>>32 {
			// In or Out made this session for this very packet: the
			// first packet of its flow.
			return FlowNew, 0
		}
		if h.w.origin() != oTrack || h.typ > kReply || c.flags&ctAccounted != 0 {
			return FlowEstablished, 0
		}
		why := w.accountOnce(h, f, p, now, w.r)
		if why == 0 {
			return FlowEstablished, 0
		}
		if why != reasonGone {
			return FlowInvalid, why
		}
		// The reaper is deleting the session: look again.
		w.forget()
		if try == 3 {
			return FlowNew, 0
		}
		runtime.Gosched()
	}
}

// related reports whether the ICMP error p is about a packet of a session:
// as received, the error quotes the packet as the router sent it, whose
// reverse is a key of the session; as sent (after In restored the quote),
// the quote is the packet as the router received it, a key itself. The
// error must go to the quoted packet's source.
func (w *Worker) related(p packet.IPv4, s Side) bool {
	var qt quote
	if !parseQuote(p, &qt) {
		return false
	}
	q := qt.q
	if p.Dst() != q.src {
		return false
	}
	a, b := keyWords(q.dst, q.src, q.dport, q.sport, q.proto)
	if s == AsSent {
		a, b = keyWords(q.src, q.dst, q.sport, q.dport, q.proto)
	}
	return w.n.t.lookup(a, b, 1<<kOrig|1<<kReply, &w.h)
}

// PassFragments lets the later fragments of p, a first fragment of several
// that a filter stage on side s let through, through the same stage
// (bounded like the NAT's fragment table: when it is full they are
// classified on their own).
func (w *Worker) PassFragments(p packet.IPv4, s Side, now int64) {
	w.n.frags.learn(p.Src(), p.Dst(), p.Proto(), p.ID(), fragStage(s), 0, now)
}

// SessionFound reports whether In or Out translated the packet with an
// existing NAT session (not one made for it): the packet of an established
// flow, which the filter lets through without asking Track.
func (w *Worker) SessionFound() bool {
	c := &w.ct
	return c.flags&(ctFound|ctCreated) == ctFound && c.h.w.origin() != oTrack
}

// Tracked reports whether the packet has a session (Track, In or Out found
// or created one).
func (w *Worker) Tracked() bool { return w.ct.flags&ctFound != 0 }

// Received gives the packet's addresses and ports as the router received
// it when a NAT stage translated it with its session (false: no session, p
// is as received). The router answers a refused first packet (reject) to
// the sender as the sender addressed it.
func (w *Worker) Received() (src, dst uint32, sport, dport uint16, ok bool) {
	c := &w.ct
	if c.flags&ctFound == 0 {
		return 0, 0, 0, 0, false
	}
	h := &c.h.w
	if c.h.typ == kReply {
		return h.rSrc(), h.rDst(), h.rSport(), h.rDport(), true
	}
	return h.oSrc(), h.oDst(), h.oSport(), h.oDport(), true
}

// Create gives p, the first packet of a flow that the filters accepted, as
// sent on network outNet, a tracking-only session unless it has a session
// already. It is not for ICMP errors or non-first fragments. A Drop reason
// (TableFull, TupleClash, Malformed) is counted like the NAT's own.
func (w *Worker) Create(p packet.IPv4, outNet uint16, now int64) Reason {
	c := &w.ct
	if c.flags&ctFound != 0 {
		return 0
	}
	var fl flow
	f, ok := w.flowOf(p, &fl)
	if !ok {
		_, why := w.drop(Malformed)
		return why
	}
	n := w.n
	a, b := f.key()
	n.mu.Lock()
	if n.t.lookup(a, b, 1<<kOrig|1<<kReply, &c.h) {
		// Another worker created it meanwhile.
		n.mu.Unlock()
		w.noteFound(a, b, false)
		if c.h.w.origin() == oTrack && c.h.typ <= kReply {
			if why := w.accountOnce(&c.h, f, p, now, w.r); why != 0 && why != reasonGone {
				_, why = w.drop(why)
				return why
			}
		}
		return 0
	}
	ns := newSess{o: tup{f.src, f.dst, f.sport, f.dport, f.proto}, r: tup{f.dst, f.src, f.dport, f.sport, f.proto},
		outNet: outNet, flags: oTrack}
	why := n.create(w.r, &ns, now, &c.h)
	n.mu.Unlock()
	if why != 0 {
		_, why = w.drop(why)
		return why
	}
	w.inc(cTracking)
	w.noteFound(a, b, false)
	if why := w.accountOnce(&c.h, f, p, now, w.r); why != 0 && why != reasonGone {
		_, why = w.drop(why)
		return why
	}
	return 0
}

// Confirm says the packet leaves the router: a session a NAT stage created
// for it stays.
func (w *Worker) Confirm() { w.ct.flags &^= ctCreated }

// Unconfirmed reports whether a NAT stage created a session for the packet
// that was not confirmed.
func (w *Worker) Unconfirmed() bool { return w.ct.flags&ctCreated != 0 }

// Abort deletes the session a NAT stage created for the packet, which did
// not leave the router (a filter refused it, or it was dropped before a
// filter could look at it): the flow's next packet is a first packet again.
func (w *Worker) Abort() {
	c := &w.ct
	if c.flags&ctCreated == 0 {
		return
	}
	c.flags &^= ctCreated | ctFound
	n := w.n
	n.mu.Lock()
	if st := n.t.slab[c.cIdx].state.Load(); st&stLive != 0 && st>>32 == c.cGen {
		n.destroy(c.cIdx)
		w.inc(cAborted)
	}
	n.mu.Unlock()
}

// Flow is a session as a filter sees it: the first packet of its original
// direction as the router received it and as it sent it.
type Flow struct {
	Proto                uint8
	Src, Dst             uint32 // as received (the original tuple)
	SPort, DPort         uint16 // ICMP queries: the identifier as SPort (requests) or DPort (replies)
	SentSrc, SentDst     uint32 // as sent (the reverse of the reply tuple)
	SentSPort, SentDPort uint16
	// OutNet is the network the original direction leaves by, Local when
	// the session does not say (those made by In: floating IPs, forwards).
	OutNet   uint16
	Tracking bool // a tracking-only session (no NAT)
}

// FlushIf deletes the sessions for which why returns a reason (under the
// table lock: why must be quick and must not call the NAT) and returns how
// many, with a summary like Commit's ("3 sessions flushed: no longer
// accepted by filter web"; "" when none).
func (n *NAT) FlushIf(why func(*Flow) string) (flushed int, summary string) {
	return n.FlushIfBoth(why, nil)
}

// FlushIfBoth is FlushIf over both families: why for the IPv4 sessions,
// why6 for the IPv6 ones (either may be nil), with one summary.
func (n *NAT) FlushIfBoth(why func(*Flow) string, why6 func(*Flow6) string) (flushed int, summary string) {
	counts := map[string]int{}
	var order []string
	if why != nil {
		flushed += n.flushIf(why, counts, &order)
	}
	if why6 != nil {
		flushed += n.flushIf6(why6, counts, &order)
	}
	n.flushed.Add(uint64(flushed))
	return flushed, flushSummary(flushed, order, counts)
}

// flushIf deletes the IPv4 sessions for which why gives a reason, counted
// by reason in counts (first seen first in order).
func (n *NAT) flushIf(why func(*Flow) string, counts map[string]int, order *[]string) (flushed int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var fl Flow
	n.scan(n.t.hwm, func(idx uint32, _ *session, w *words, _ uint64) {
		fl = Flow{Proto: w.proto(), Src: w.oSrc(), Dst: w.oDst(), SPort: w.oSport(), DPort: w.oDport(),
			SentSrc: w.rDst(), SentDst: w.rSrc(), SentSPort: w.rDport(), SentDPort: w.rSport(),
			OutNet: w.outNet(), Tracking: w.origin() == oTrack}
		if r := why(&fl); r != "" {
			if counts[r] == 0 {
				*order = append(*order, r)
			}
			counts[r]++
			n.destroy(idx)
			flushed++
		}
	})
	return flushed
}

// flushSummary is "N sessions flushed: why (n), why (n)".
func flushSummary(flushed int, order []string, counts map[string]int) string {
	if flushed == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d session", flushed)
	if flushed > 1 {
		b.WriteString("s")
	}
	b.WriteString(" flushed: ")
	for i, r := range order {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(r)
		if len(order) > 1 {
			fmt.Fprintf(&b, " (%d)", counts[r])
		}
	}
	return b.String()
}
