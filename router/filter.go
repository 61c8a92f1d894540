package router

import (
	"encoding/binary"
	"reflect"
	"sync"

	"vrouter/config"
	"vrouter/fib"
	"vrouter/filter"
	"vrouter/nat"
	"vrouter/packet"
	"vrouter/router/port"
)

// The stateful filter's stages (filter_in, filter_out) and what they keep:
// the compiled rulesets travel in the snapshot, per network as netFilter;
// their counters in a filterState per compiled Set.
//
// A network with a filter_in or a filter_out is filtered, and every packet
// that enters or leaves a filtered network is tracked: filterIn asks the
// conntrack table about the packet as received (nat.Worker.Track, the
// lookup NAT In then reuses), filterOut about the packet as sent, unless
// filterIn did. Packets of a session, ICMP errors about one and later
// fragments of a datagram whose first fragment passed go through without
// being classified. The first packet of a flow is classified by the
// ingress network's filter_in (as received, before NAT In) and by the
// egress network's filter_out (as sent, after NAT Out); if both accept
// (or are absent) and no NAT rule made a session for the flow, filterOut
// gives it a tracking-only one, so that its replies, which enter and leave
// by the same networks the other way, are let through. Packets to the
// router itself pass filter_in and are classified each (the router keeps
// no session for them; its own answers are never filtered). A session a
// NAT stage made for a first packet that does not leave (a filter refused
// it, or any other drop) is deleted again at the end of the packet
// (worker.processBatch), so that a refused flow never looks established.

// netFilter is a network's rulesets; nil on a network without filter.
type netFilter struct {
	in, out *filter.Ruleset // filter_in, filter_out (nil: none)
}

// Sides of a filter stage in counters, traces and messages.
const (
	sideIn  = 0 // filter_in, the packet as received
	sideOut = 1 // filter_out, the packet as sent
)

// fstUnknown: the worker's fst is not about the packet (a released
// fragment): filterOut asks the conntrack table itself.
const fstUnknown nat.FlowState = 0xff

// filterKey is what the classifier looks at in ip.
func filterKey(ip packet.IPv4) filter.Key {
	k := filter.Key{Src: ip.Src(), Dst: ip.Dst(), Proto: ip.Proto()}
	if ip.FragOff() != 0 {
		return k
	}
	pl := ip.Payload()
	switch k.Proto {
	case packet.ProtoTCP, packet.ProtoUDP:
		if len(pl) >= 4 {
			k.SPort, k.DPort = packet.Ports(pl)
			k.HasPorts = true
		}
	case packet.ProtoICMP:
		if len(pl) >= 1 {
			k.ICMPType = pl[0]
			k.HasPorts = true
		}
	}
	return k
}

// filterIn is the filter_in stage of a packet received on the filtered
// network nw, before NAT In, after the conntrack table said st (ipv4 asks
// it): false when the packet is dropped.
func (w *worker) filterIn(ip packet.IPv4, nw *network, st nat.FlowState, why nat.Reason) bool {
	switch st {
	case nat.FlowNew:
		if rs := nw.filt.in; rs != nil && !w.classify(rs, ip, sideIn) {
			return false
		}
	case nat.FlowInvalid:
		w.trFilterState(sideIn, st, why)
		w.drop(DropFilterInvalid)
		return false
	default:
		w.trFilterState(sideIn, st, 0)
	}
	w.passFragments(ip, nat.AsReceived)
	return true
}

// filterOut is the filter_out stage of a packet leaving by out after NAT
// Out (in: the network it came from, nil for a released fragment whose
// network is gone). It gives an accepted first packet its tracking
// session: false when the packet is dropped.
func (w *worker) filterOut(ip packet.IPv4, in, out *network) bool {
	st := w.fst
	if in == nil || in.filt == nil || st == fstUnknown {
		var why nat.Reason
		st, why = w.nat.Track(ip, nat.AsSent, w.now)
		if st == nat.FlowInvalid {
			w.trFilterState(sideOut, st, why)
			w.drop(DropFilterInvalid)
			return false
		}
	}
	if st != nat.FlowNew {
		w.trFilterState(sideOut, st, 0)
		w.passFragments(ip, nat.AsSent)
		return true
	}
	if out.filt != nil {
		if rs := out.filt.out; rs != nil && !w.classify(rs, ip, sideOut) {
			return false
		}
	}
	if ip.FragOff() == 0 && !isICMPErr(ip) && !w.nat.Tracked() {
		if why := w.nat.Create(ip, out.idx, w.now); why != 0 {
			w.natDrop(why)
			return false
		}
	}
	w.passFragments(ip, nat.AsSent)
	return true
}

// isICMPErr reports an ICMP error (not a later fragment).
func isICMPErr(ip packet.IPv4) bool {
	pl := ip.Payload()
	return ip.Proto() == packet.ProtoICMP && len(pl) > 0 && packet.IsICMPError(pl[0])
}

// passFragments lets the later fragments of ip through the stage on side s
// when ip is the first fragment of several.
func (w *worker) passFragments(ip packet.IPv4, s nat.Side) {
	if ip.FlagsFrag()&(packet.IPv4MF|packet.IPv4FragOffMask) == packet.IPv4MF {
		w.nat.PassFragments(ip, s, w.now)
	}
}

// classify runs the first packet of a flow through ruleset rs and counts
// it; false when the ruleset refuses it (dropped, or rejected: answered).
func (w *worker) classify(rs *filter.Ruleset, ip packet.IPv4, side uint8) bool {
	v := rs.Classify(filterKey(ip))
	w.fc.Hit(rs, v, len(ip))
	if w.tp != nil {
		w.trFilter(side, rs, v)
	}
	switch v.Action {
	case filter.Accept:
		return true
	case filter.Reject:
		w.reject(ip)
	}
	w.drop(DropFilter)
	return false
}

// reject answers a refused packet: TCP with an RST, anything else with
// ICMP 3/13 (administratively prohibited), both rate limited like every
// ICMP error.
func (w *worker) reject(ip packet.IPv4) {
	w.cnt[CntFilterRejects]++
	if ip.Proto() == packet.ProtoTCP && ip.FragOff() == 0 {
		w.sendReset(ip)
		return
	}
	w.icmpError(ip, packet.ICMPUnreachable, packet.CodeAdminProhibited, 0)
}

// sendReset answers the TCP segment ip with an RST (RFC 793, "Reset
// Generation": the sequence number is the segment's acknowledgment when it
// has one; otherwise it is 0 and the RST acknowledges the segment). It is
// addressed as the sender addressed the segment: a segment a NAT stage
// translated is answered from its original destination.
func (w *worker) sendReset(ip packet.IPv4) {
	pl := ip.Payload()
	if len(pl) < packet.TCPMinLen {
		return
	}
	t := packet.TCP(pl)
	flags := t.Flags()
	if flags&packet.TCPRst != 0 {
		return // never an RST for an RST
	}
	src, dst := ip.Src(), ip.Dst()
	sport, dport := t.SrcPort(), t.DstPort()
	if s, d, sp, dp, ok := w.nat.Received(); ok {
		src, dst, sport, dport = s, d, sp, dp
	}
	if src == 0 || packet.IsMartianSource(src) || packet.IsMulticast(dst) || dst == 0xffffffff {
		return
	}
	nh, out := w.routeBack(src)
	if out == nil || out.isBroadcastOn(src) || out.isBroadcastOn(dst) {
		return
	}
	if !w.takeToken() {
		return
	}
	seg := uint32(len(pl) - min(t.DataOff(), len(pl)))
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
	const n = packet.IPv4MinLen + packet.TCPMinLen
	p := packet.IPv4(b[o : o+n])
	clear(p)
	p[0] = 0x45
	p.SetTotalLen(n)
	w.ipID++
	p.SetID(w.ipID)
	p.SetFlagsFrag(0x4000) // DF
	p.SetTTL(64)
	p.SetProto(packet.ProtoTCP)
	p.SetSrc(dst)
	p.SetDst(src)
	p.ComputeChecksum()
	r := packet.TCP(p[packet.IPv4MinLen:])
	r.SetSrcPort(dport)
	r.SetDstPort(sport)
	r.SetSeq(seq)
	binary.BigEndian.PutUint32(r[packet.TCPAckOff:], ack)
	r[packet.TCPDataOffOff] = 5 << 4
	r.SetFlags(rf)
	r.SetChecksum(packet.L4Checksum(dst, src, packet.ProtoTCP, r))
	w.cnt[CntFilterResets]++
	if w.tp != nil {
		w.trFilterReset(src, sport)
	}
	w.output(b, o, p, nh, out, nil)
}

// --- counters ---

// filterState is one compiled Set with its counters: a block per worker
// (a worker makes its own when it first runs a batch on this state) and
// the counts of the rulesets that a reload did not change, carried over
// from the state before. A state links to the one before it (prev) until
// the next reload freezes what it carries (carry): by then no worker
// counts into the older state any more, so no count is lost.
type filterState struct {
	set *filter.Set

	mu      sync.Mutex
	blocks  []*filter.Counters
	prev    *filterState   // the state before (until frozen)
	prevIdx []int          // per ruleset of set: its index in prev.set, -1 when new or changed
	carry   []filter.Stats // frozen counts carried over (nil until frozen)
}

// newFilterState compiles cfg's rulesets; old (nil at start) is the
// state in force, whose unchanged rulesets' counts the new one carries.
func newFilterState(cfg *config.Config, old *filterState) (*filterState, error) {
	set, err := filter.Compile(cfg.Filters)
	if err != nil {
		return nil, err
	}
	fs := &filterState{set: set, prevIdx: make([]int, set.Len())}
	for i := range fs.prevIdx {
		fs.prevIdx[i] = -1
		if old == nil {
			continue
		}
		rs := set.Ruleset(i)
		if o := old.set.Lookup(rs.Name()); o != nil && sameRuleset(o.Config(), rs.Config()) {
			fs.prevIdx[i] = o.Index()
		}
	}
	return fs, nil
}

// sameRuleset reports whether two rulesets have the same rules and default
// (wherever they stand in the file).
func sameRuleset(a, b *config.Filter) bool {
	if a.Name != b.Name || a.Default != b.Default || len(a.Rules) != len(b.Rules) {
		return false
	}
	for i := range a.Rules {
		x, y := a.Rules[i], b.Rules[i]
		x.Pos, y.Pos = config.Pos{}, config.Pos{}
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

// link makes fs follow old (the state in force until now): old's own
// predecessor is frozen into old's carry first.
func (fs *filterState) link(old *filterState) {
	if old == nil || old == fs {
		return
	}
	old.mu.Lock()
	if old.prev != nil {
		old.carry = old.carriedLocked()
		old.prev = nil
	}
	old.mu.Unlock()
	fs.mu.Lock()
	fs.prev = old
	fs.mu.Unlock()
}

// block makes a worker's counter block.
func (fs *filterState) block() *filter.Counters {
	c := fs.set.NewCounters()
	fs.mu.Lock()
	fs.blocks = append(fs.blocks, c)
	fs.mu.Unlock()
	return c
}

// carriedLocked is what fs carries per ruleset (fs.mu held).
func (fs *filterState) carriedLocked() []filter.Stats {
	if fs.carry != nil {
		return fs.carry
	}
	out := make([]filter.Stats, fs.set.Len())
	var ps []filter.Stats
	if fs.prev != nil {
		ps = fs.prev.stats()
	}
	for i := range out {
		rs := fs.set.Ruleset(i)
		out[i] = filter.Stats{Name: rs.Name(), Default: rs.DefaultAction(), Rules: make([]filter.Count, rs.Len())}
		if j := fs.prevIdx[i]; j >= 0 && j < len(ps) && len(ps[j].Rules) == rs.Len() {
			copy(out[i].Rules, ps[j].Rules)
			out[i].Other = ps[j].Other
		}
	}
	return out
}

// stats is every ruleset's counts: its workers' and what it carries.
func (fs *filterState) stats() []filter.Stats {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	own := fs.set.Stats(fs.blocks)
	for i, c := range fs.carriedLocked() {
		for r := range own[i].Rules {
			addCount(&own[i].Rules[r], c.Rules[r])
		}
		addCount(&own[i].Other, c.Other)
	}
	return own
}

func addCount(a *filter.Count, b filter.Count) {
	a.Hits += b.Hits
	a.Packets += b.Packets
	a.Bytes += b.Bytes
}

// --- reload ---

// flushFiltered deletes the sessions that the filters of s no longer
// accept: the first packet of a session's original direction, as it
// entered (filter_in of the network its source is routed to) and as it
// left (filter_out of its egress network), is classified again (IPv6
// sessions: flushWhy6). It returns the summary ("" when none), as
// NAT.Commit does.
func (r *Router) flushFiltered(s *snapshot) string {
	if !s.filterOn {
		return ""
	}
	netOf := func(a uint32) *network {
		nh, ok := r.FIB.Lookup(a)
		if !ok || (nh.Kind != fib.KindConnected && nh.Kind != fib.KindGateway) {
			return nil
		}
		return s.net(nh.Network)
	}
	_, msg := r.NAT.FlushIfBoth(func(f *nat.Flow) string {
		if in := netOf(f.Src); in != nil && in.filt != nil && in.filt.in != nil {
			k := flowKey(f.Proto, f.Src, f.Dst, f.SPort, f.DPort)
			if in.filt.in.Classify(k).Action != filter.Accept {
				return "no longer accepted by filter " + in.filt.in.Name()
			}
		}
		out := s.net(f.OutNet)
		if out == nil {
			out = netOf(f.SentDst)
		}
		if out != nil && out.filt != nil && out.filt.out != nil {
			k := flowKey(f.Proto, f.SentSrc, f.SentDst, f.SentSPort, f.SentDPort)
			if out.filt.out.Classify(k).Action != filter.Accept {
				return "no longer accepted by filter " + out.filt.out.Name()
			}
		}
		return ""
	}, r.flushWhy6(s))
	return msg
}

// flowKey is the classifier's key of a session's first packet. An ICMP
// session is one of queries: a request (its identifier is the source
// port) or, rarely, a reply that started it.
func flowKey(proto uint8, src, dst uint32, sport, dport uint16) filter.Key {
	k := filter.Key{Src: src, Dst: dst, Proto: proto}
	switch proto {
	case packet.ProtoTCP, packet.ProtoUDP:
		k.SPort, k.DPort, k.HasPorts = sport, dport, true
	case packet.ProtoICMP:
		k.ICMPType, k.HasPorts = packet.ICMPEchoRequest, true
		if sport == 0 && dport != 0 {
			k.ICMPType = packet.ICMPEchoReply
		}
	}
	return k
}

// --- control plane ---

// FilterStats is one ruleset for show filter and /metrics.
type FilterStats struct {
	Name    string
	Default filter.Action
	Rules   []config.FilterRule // as configured, in order (with their file positions)
	Counts  []filter.Count      // per rule
	Other   filter.Count        // the default action's
	In, Out []string            // the networks that use it as filter_in, filter_out
	Info    filter.Info         // the compiled structure
}

// Filters returns the rulesets in configuration order with their counters
// (the counts of a ruleset that reloads did not change carry over).
func (r *Router) Filters() []FilterStats {
	s := r.snap.Load()
	fs := s.filters
	st := fs.stats()
	out := make([]FilterStats, 0, len(st))
	for i, x := range st {
		rs := fs.set.Ruleset(i)
		f := FilterStats{Name: x.Name, Default: x.Default, Rules: rs.Config().Rules, Counts: x.Rules, Other: x.Other, Info: rs.Info()}
		s.eachNetwork(func(n *network) {
			if n.filt == nil {
				return
			}
			if n.filt.in == rs {
				f.In = append(f.In, n.name)
			}
			if n.filt.out == rs {
				f.Out = append(f.Out, n.name)
			}
		})
		out = append(out, f)
	}
	return out
}
