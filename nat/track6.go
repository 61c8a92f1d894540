package nat

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"vrouter/packet"
)

// Connection tracking of IPv6 flows for the stateful filter (table6.go has
// the table). IPv6 is never translated, so a packet is the same as the
// router received it and as it sends it: the router asks Track6 once per
// packet for both filter stages, and gives an accepted first packet its
// session with Create6. What a packet is follows Track's rules:
//
//   - a packet of a session (either direction): FlowEstablished, accounted
//     to the session (TCP state machine, timeouts, counters);
//   - an ICMPv6 error (destination unreachable, packet too big, time
//     exceeded, parameter problem) whose quoted packet belongs to a session
//     and that goes to the quoted packet's source: FlowRelated (path MTU
//     discovery and traceroute through a filter);
//   - a non-first fragment of a datagram whose first fragment passed:
//     FlowFragment;
//   - a TCP segment other than a SYN without a session, an RST outside the
//     window, or a transport header too short: FlowInvalid;
//   - anything else: FlowNew (classified by the filter).
//
// Echo requests and replies are tracked by their identifier (as the
// request's source port, the reply's destination port), like ICMP queries.

// flow6 is the conntrack view of an IPv6 packet.
type flow6 struct {
	k  key6
	l4 []byte
	p0 uintptr // the packet it was parsed from (an identity only)
}

// parseFlow6 fills f from p, whose extension headers walked to x (not a
// non-first fragment). It fails when a TCP, UDP or echo header is too
// short to track; quote: p is the quote of an ICMPv6 error, of which only
// the ports (or the identifier) are needed.
func parseFlow6(p packet.IPv6, x *packet.ExtInfo, f *flow6, quote bool) bool {
	if x.Off > len(p) {
		return false
	}
	f.l4 = p[x.Off:]
	f.k.s0 = binary.BigEndian.Uint64(p[packet.IPv6SrcOff:])
	f.k.s1 = binary.BigEndian.Uint64(p[packet.IPv6SrcOff+8:])
	f.k.d0 = binary.BigEndian.Uint64(p[packet.IPv6DstOff:])
	f.k.d1 = binary.BigEndian.Uint64(p[packet.IPv6DstOff+8:])
	var sport, dport uint16
	switch x.Proto {
	case packet.ProtoTCP, packet.ProtoUDP:
		need := packet.UDPHdrLen
		if x.Proto == packet.ProtoTCP {
			need = packet.TCPMinLen
		}
		if quote {
			need = 4
		}
		if len(f.l4) < need {
			return false
		}
		sport, dport = packet.Ports(f.l4)
	case packet.ProtoICMPv6:
		if len(f.l4) < 1 {
			return false
		}
		switch f.l4[0] {
		case packet.ICMPv6EchoRequest, packet.ICMPv6EchoReply:
			if len(f.l4) < packet.ICMPv6HdrLen {
				return false
			}
			id := binary.BigEndian.Uint16(f.l4[4:])
			if f.l4[0] == packet.ICMPv6EchoRequest {
				sport = id
			} else {
				dport = id
			}
		}
	}
	f.k.p = ports6(sport, dport, x.Proto)
	return true
}

// Track6 says what the conntrack table knows of the IPv6 packet p (x: its
// extension-header walk) and accounts p to its session. A FlowInvalid
// comes with its reason. It counts nothing: the router counts what the
// filter does.
func (w *Worker) Track6(p packet.IPv6, x *packet.ExtInfo, now int64) (FlowState, Reason) {
	if x.Fragment && x.FragOff != 0 {
		if id, ok := fragID6(p, x); ok && w.n.frags6.find(p, id, now) {
			return FlowFragment, 0
		}
		return FlowNew, 0
	}
	if x.Proto == packet.ProtoICMPv6 && x.Off < len(p) && packet.IsICMPv6Error(p[x.Off]) {
		if w.related6(p, x) {
			return FlowRelated, 0
		}
		return FlowNew, 0
	}
	f := &w.f6
	if !parseFlow6(p, x, f, false) {
		f.p0 = 0
		return FlowInvalid, Malformed
	}
	f.p0 = pktID(packet.IPv4(p))
	t := w.n.t6
	for try := 0; ; try++ {
		if !t.lookup(&f.k, &w.h6) {
			if x.Proto == packet.ProtoTCP && packet.TCP(f.l4).Flags()&(packet.TCPSyn|packet.TCPAck|packet.TCPRst) != packet.TCPSyn {
				return FlowInvalid, TCPNoSession
			}
			return FlowNew, 0
		}
		why := w.account6(&w.h6, f, len(p), now)
		if why == 0 {
			return FlowEstablished, 0
		}
		if why != reasonGone {
			return FlowInvalid, why
		}
		// The reaper is deleting the session: look again.
		if try == 3 {
			return FlowNew, 0
		}
		runtime.Gosched()
	}
}

// related6 reports whether the ICMPv6 error p is about a packet of a
// session, sent to that packet's source.
func (w *Worker) related6(p packet.IPv6, x *packet.ExtInfo) bool {
	m := p[x.Off:]
	if len(m) < packet.ICMPv6HdrLen+packet.IPv6HdrLen {
		return false
	}
	q := packet.IPv6(m[packet.ICMPv6HdrLen:])
	if q[0]>>4 != 6 || [16]byte(q[packet.IPv6SrcOff:packet.IPv6SrcOff+16]) != [16]byte(p[packet.IPv6DstOff:packet.IPv6DstOff+16]) {
		return false
	}
	qx, e := packet.WalkExt(q)
	if e != packet.ExtOK || qx.Fragment && qx.FragOff != 0 {
		return false
	}
	if qx.Proto == packet.ProtoICMPv6 && qx.Off < len(q) && packet.IsICMPv6Error(q[qx.Off]) {
		return false // an error about an error: never sent (RFC 4443 2.4)
	}
	var qf flow6
	if !parseFlow6(q, &qx, &qf, true) {
		return false
	}
	return w.n.t6.lookup(&qf.k, &w.h6)
}

// account6 applies one packet (its flow f, plen bytes) to the session of
// h: TCP state machine, timeout refresh, counters (as account).
func (w *Worker) account6(h *hit6, f *flow6, plen int, now int64) Reason {
	r := w.r
	s := &w.n.t6.slab[h.idx]
	if s.expires.Load() == expDying {
		return reasonGone
	}
	dir := int(h.dir)
	var to int64
	switch f.k.proto() {
	case packet.ProtoTCP:
		var why Reason
		payload := max(len(f.l4)-packet.TCP(f.l4).DataOff(), 0)
		why, to, _ = tcpTrack(&s.state, &s.tcp, h.st>>32, dir, f.l4, payload, r)
		if why != 0 {
			return why
		}
	case packet.ProtoICMPv6:
		to = r.icmp
	default:
		to = r.udp
	}
	if dir == 1 {
		if st := s.state.Load(); st&stReplied == 0 && st>>32 == h.st>>32 {
			s.state.CompareAndSwap(st, st|stReplied)
		}
	}
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
	if st := s.state.Load(); st&stLive == 0 || st>>32 != h.st>>32 {
		return reasonGone
	}
	s.pkts.Add(1)
	s.bytes.Add(uint64(plen))
	return 0
}

// Create6 gives p, the first packet of an IPv6 flow that the filters
// accepted (Track6 said FlowNew; not an ICMPv6 error or a non-first
// fragment), leaving by network outNet, its session. A Drop reason
// (TableFull, Malformed) is counted like the NAT's own.
func (w *Worker) Create6(p packet.IPv6, x *packet.ExtInfo, outNet uint16, now int64) Reason {
	f := &w.f6
	if f.p0 != pktID(packet.IPv4(p)) || f.p0 == 0 {
		if !parseFlow6(p, x, f, false) {
			_, why := w.drop(Malformed)
			return why
		}
	}
	f.p0 = 0
	t := w.n.t6
	h := &w.h6
	k := f.k
	k.p = k.p&keyMask | uint64(outNet)
	t.mu.Lock()
	if !t.lookup(&k, h) { // else another worker created it meanwhile
		if !w.n.room6(w.r, now) || !t.create(&k, now, w.r.udp, h) {
			t.mu.Unlock()
			_, why := w.drop(TableFull)
			return why
		}
		w.inc(cTracking6)
	}
	t.mu.Unlock()
	if why := w.account6(h, f, len(p), now); why != 0 && why != reasonGone {
		_, why = w.drop(why)
		return why
	}
	return 0
}

// room6 is room for the IPv6 table (caller holds t6.mu).
func (n *NAT) room6(r *Rules, now int64) bool {
	t := n.t6
	if t.live.Load() < int64(t.max) {
		return true
	}
	var k key6
	for i := 0; i < 256; i++ {
		if t.evictPos >= t.hwm {
			t.evictPos = 0
		}
		idx := t.evictPos
		t.evictPos++
		st, ok, _ := t.read(idx, &k)
		if ok && evictable(st, k.proto(), t.slab[idx].expires.Load(), now, r) {
			t.destroy(idx)
			n.evicted.Add(1)
			return true
		}
	}
	return false
}

// reap6 is Reap for the IPv6 table (caller holds reapMu).
func (n *NAT) reap6(now int64, budget int) int {
	t := n.t6
	t.mu.Lock()
	hwm := t.hwm
	t.mu.Unlock()
	return reapScan(t.slab, hwm, &t.reapPos, n.reapBuf[:0], &t.mu, t.destroy, now, budget)
}

// scan6 calls f for every live IPv6 session (each read consistently; the
// caller holds t6.mu when f deletes).
func (n *NAT) scan6(hwm uint32, f func(idx uint32, s *session6, k *key6, st uint64)) {
	t := n.t6
	var k key6
	for idx := uint32(0); idx < hwm; idx++ {
		if st, ok, _ := t.read(idx, &k); ok {
			f(idx, &t.slab[idx], &k, st)
		}
	}
}

func (k *key6) src() netip.Addr { return addr6(k.s0, k.s1) }
func (k *key6) dst() netip.Addr { return addr6(k.d0, k.d1) }

func addr6(a, b uint64) netip.Addr {
	var x [16]byte
	binary.BigEndian.PutUint64(x[:8], a)
	binary.BigEndian.PutUint64(x[8:], b)
	return netip.AddrFrom16(x)
}

// touches reports whether a is one of the session's addresses.
func (k *key6) touches(a netip.Addr) bool { return k.src() == a || k.dst() == a }

// Flow6 is an IPv6 session as a filter sees it: its first packet (the
// original direction; as received and as sent are the same).
type Flow6 struct {
	Proto        uint8
	Src, Dst     [16]byte
	SPort, DPort uint16 // echo: the identifier as SPort (requests) or DPort (replies)
	OutNet       uint16 // the network the original direction leaves by
}

// flushIf6 is flushIf for the IPv6 sessions (FlushIfBoth).
func (n *NAT) flushIf6(why func(*Flow6) string, counts map[string]int, order *[]string) (flushed int) {
	t := n.t6
	t.mu.Lock()
	defer t.mu.Unlock()
	var fl Flow6
	n.scan6(t.hwm, func(idx uint32, _ *session6, k *key6, _ uint64) {
		fl = Flow6{Proto: k.proto(), Src: k.src().As16(), Dst: k.dst().As16(), SPort: k.sport(), DPort: k.dport(), OutNet: k.outNet()}
		if r := why(&fl); r != "" {
			if counts[r] == 0 {
				*order = append(*order, r)
			}
			counts[r]++
			t.destroy(idx)
			flushed++
		}
	})
	return flushed
}

// sessions6 appends the IPv6 sessions that involve addr (all when addr is
// the zero Addr) to out.
func (n *NAT) sessions6(addr netip.Addr, now int64, out []SessionInfo) []SessionInfo {
	t := n.t6
	t.mu.Lock()
	hwm := t.hwm
	t.mu.Unlock()
	n.scan6(hwm, func(_ uint32, s *session6, k *key6, st uint64) {
		if addr.IsValid() && !k.touches(addr) {
			return
		}
		src, dst := netip.AddrPortFrom(k.src(), k.sport()), netip.AddrPortFrom(k.dst(), k.dport())
		si := SessionInfo{
			Proto:   k.proto(),
			Orig:    Tuple{src, dst},
			Reply:   Tuple{dst, src},
			NAT:     "none",
			Timeout: max(time.Duration(s.expires.Load()-now), 0),
			Packets: s.pkts.Load(),
			Bytes:   s.bytes.Load(),
		}
		if k.proto() == packet.ProtoTCP {
			si.State = tcpStateNames[st&stStateMask]
		} else if st&stReplied != 0 {
			si.State = "REPLIED"
		} else {
			si.State = "UNREPLIED"
		}
		out = append(out, si)
	})
	return out
}

// clear6 deletes the IPv6 sessions that involve addr (all when addr is the
// zero Addr).
func (n *NAT) clear6(addr netip.Addr) int {
	t := n.t6
	t.mu.Lock()
	defer t.mu.Unlock()
	c := 0
	n.scan6(t.hwm, func(idx uint32, _ *session6, k *key6, _ uint64) {
		if !addr.IsValid() || k.touches(addr) {
			t.destroy(idx)
			c++
		}
	})
	return c
}

// Len6 is the number of live IPv6 sessions.
func (n *NAT) Len6() int { return int(n.t6.live.Load()) }

// --- fragments ---

// fragID6 is the identification of the fragment header of p (x.Fragment).
func fragID6(p packet.IPv6, x *packet.ExtInfo) (uint32, bool) {
	if x.FragOff != 0 {
		// The walk stopped right after the fragment header.
		if x.Off < packet.IPv6HdrLen+8 || x.Off > len(p) {
			return 0, false
		}
		return binary.BigEndian.Uint32(p[x.Off-4:]), true
	}
	nh, off := p.NextHeader(), packet.IPv6HdrLen
	for i := 0; i < packet.MaxExtHeaders && packet.IsExtHeader(nh) && off+8 <= len(p); i++ {
		if nh == packet.ProtoFragment {
			return binary.BigEndian.Uint32(p[off+4:]), true
		}
		hl := (int(p[off+1]) + 1) * 8
		if nh == packet.ProtoAH {
			hl = (int(p[off+1]) + 2) * 4
		}
		nh, off = p[off], off+hl
	}
	return 0, false
}

// PassFragments6 lets the later fragments of p, a first fragment (of
// several) that the filter let through, through as well (bounded: when the
// table is full they are classified on their own).
func (w *Worker) PassFragments6(p packet.IPv6, x *packet.ExtInfo, now int64) {
	if id, ok := fragID6(p, x); ok {
		w.n.frags6.learn(p, id, now)
	}
}

type frag6Entry struct {
	s0, s1, d0, d1 uint64
	id             uint32
	expires        int64 // 0: free
}

// frag6Table remembers the datagrams whose first fragment passed, by
// (source, destination, identification), for fragment_timeout.
type frag6Table struct {
	mu  sync.Mutex
	e   []frag6Entry
	set uint64
	n   int
	ttl int64 // fragment_timeout, set by setFragTimeout
}

func (ft *frag6Table) init(n int) {
	ft.e = make([]frag6Entry, n)
	ft.set = uint64(n / fragWays)
}

func (ft *frag6Table) key(p packet.IPv6, id uint32) (frag6Entry, []frag6Entry) {
	k := frag6Entry{
		s0: binary.BigEndian.Uint64(p[packet.IPv6SrcOff:]), s1: binary.BigEndian.Uint64(p[packet.IPv6SrcOff+8:]),
		d0: binary.BigEndian.Uint64(p[packet.IPv6DstOff:]), d1: binary.BigEndian.Uint64(p[packet.IPv6DstOff+8:]), id: id,
	}
	kk := key6{k.s0, k.s1, k.d0, k.d1, uint64(id) << 16}
	b := hashKey6(&kk) % ft.set * fragWays
	return k, ft.e[b : b+fragWays]
}

func (ft *frag6Table) learn(p packet.IPv6, id uint32, now int64) {
	k, b := ft.key(p, id)
	ft.mu.Lock()
	defer ft.mu.Unlock()
	k.expires = now + ft.ttl
	free := -1
	for i := range b {
		e := &b[i]
		if e.expires != 0 && e.s0 == k.s0 && e.s1 == k.s1 && e.d0 == k.d0 && e.d1 == k.d1 && e.id == k.id {
			e.expires = k.expires
			return
		}
		if free < 0 && e.expires <= now {
			free = i
		}
	}
	if free < 0 {
		return
	}
	if b[free].expires == 0 {
		ft.n++
	}
	b[free] = k
}

func (ft *frag6Table) find(p packet.IPv6, id uint32, now int64) bool {
	k, b := ft.key(p, id)
	ft.mu.Lock()
	defer ft.mu.Unlock()
	for i := range b {
		e := &b[i]
		if e.expires > now && e.s0 == k.s0 && e.s1 == k.s1 && e.d0 == k.d0 && e.d1 == k.d1 && e.id == k.id {
			return true
		}
	}
	return false
}

func (ft *frag6Table) expire(now int64) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	for i := range ft.e {
		if e := &ft.e[i]; e.expires != 0 && e.expires <= now {
			*e = frag6Entry{}
			ft.n--
		}
	}
}
