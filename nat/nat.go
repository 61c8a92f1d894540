// Package nat is the router's connection tracking and NAT: SNAT with
// endpoint-independent mapping and paired pooling (RFC 4787, 5382, 7857),
// floating IPs (1:1), port forwards, hairpinning, ICMP query and error
// translation (RFC 5508) and fragments of NATed datagrams.
//
// The router calls Worker.In for every IPv4 packet after input validation and
// before the FIB lookup (destination rewrites: replies to SNAT, floating IPs,
// forwards, ICMP errors), and Worker.Out after the FIB chose the egress network
// (source rewrites: SNAT, replies from floating/forwarded hosts, hairpin
// sources, and the quoted packet of ICMP errors the router itself generates).
// Only NATed flows are tracked.
//
// Policies (BEHAVIOUR.md leaves these open):
//   - Mapping is endpoint-independent; filtering is address-dependent by
//     default (an inbound packet to a mapping must come from an address the
//     inside endpoint sent to) or endpoint-independent ([nat] filtering).
//   - Paired pooling is by hash of the inside address over the `to` range; a
//     host whose paired address is out of ports is refused (OutOfPorts), never
//     moved to another address. Existing mappings are never deleted to make
//     room. Ports below 1024 map below 1024; ICMP identifiers are ports.
//   - Unsolicited inbound traffic to an SNAT address is dropped silently
//     (NoSession/Filtered); the router may answer OutOfPorts with ICMP 3/13.
//   - TCP sessions are created by a SYN only. A non-SYN segment without a
//     session is dropped for SNAT and forwards, and translated 1:1 without a
//     session for floating IPs. A RST is honoured only inside the window
//     (state CLOSE, held for tcp_transitory, RFC 7857 2.2); a new SYN reopens
//     a closed or TIME_WAIT session.
//   - UDP mappings are refreshed by outbound packets only (sessions to a
//     floating IP or forward by both directions). ICMP errors never create,
//     refresh or delete a session.
//   - A full table refuses new flows (TableFull) after trying to evict one
//     unfinished session (TCP not established, or never answered) idle for
//     EvictIdle; established sessions are never evicted.
//   - ICMP errors from hosts (either side) are translated in In; errors the
//     router generates itself are passed to Out with inNet == Local.
//   - Fragments: see frag.go and hold.go. A non-first fragment is translated
//     like its first fragment (remembered per stage for FragTimeout). One
//     that arrives before its first fragment is translated at once when the
//     address mapping does not depend on ports (floating IPs, SNAT sources,
//     a single inside host behind an SNAT address for that remote);
//     otherwise (several hosts behind the address, port forwards, replies
//     of forward backends, hairpins) the stage copies it into a bounded hold
//     buffer (HoldSlots x HoldBytes, preallocated) and returns Held. When a
//     worker translates the first fragment it translates the held ones and
//     hands them to the router through Worker.Released, to continue after
//     the stage that held them. A full buffer evicts its oldest fragment;
//     Reap frees those held for FragTimeout, and those whose first fragment
//     is dropped are freed then; all are counted. A first
//     fragment a stage leaves untranslated is remembered too, so its
//     followers pass (and held ones are released untouched).
//   - A session at the exact moment of its expiry may be reaped while a
//     worker refreshes it (the packet in flight is still translated).
package nat

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"vrouter/config"
	"vrouter/internal/counter"
	"vrouter/packet"
)

// Local is the inNet the router passes to Out for packets it generates
// itself (ICMP errors).
const Local uint16 = 0xffff

// EvictIdle is how long an unfinished session (TCP handshake or closed, or
// never answered) must have been idle before a new flow may evict it from a
// full table.
const EvictIdle = time.Second

// FragTimeout is how long the fragment table remembers a first fragment.
const FragTimeout = 30 * time.Second

type snatRule struct {
	spec        config.SNAT
	base, mask  uint32
	out         uint16
	first, last uint32
	lo, hi      uint16
}

func (r *snatRule) contains(a uint32) bool { return a&r.mask == r.base }

// pair gives the external address of inside host a (paired pooling: always
// the same address for a host, chosen by hash).
func (r *snatRule) pair(a uint32) uint32 {
	n := uint64(r.last - r.first + 1)
	h := hashKey(uint64(a), 0x5eed)
	return r.first + uint32(h%n)
}

type floatRule struct {
	spec     config.Floating
	ext, int uint32
	extNet   uint16 // network holding ext (Local when none)
}

type fwdRule struct {
	spec     config.Forward
	proto    uint8
	ext      uint32
	port     uint16
	backends []uint64 // ip<<16 | port
	net      uint16
}

// Address kinds in rules.addrs.
const (
	aSNAT  = 1
	aFloat = 2
	aFwd   = 4
)

// Rules is one compiled NAT configuration, immutable once compiled. The
// router holds the Rules of each of its snapshots and hands them to its
// workers with Worker.Use; the NAT keeps the committed ones (Commit) for the
// control plane (Reap, show nat, flushes).
type Rules struct {
	eif        bool // endpoint-independent filtering
	snat       []snatRule
	floats     []floatRule
	floatByExt map[uint32]int32
	floatByInt map[uint32]int32
	fwds       []fwdRule
	fwdByExt   map[uint64]int32 // proto<<48 | ip<<16 | port
	backends   map[uint32]bool
	addrs      map[uint32]uint8 // every NAT external address
	own        map[uint32]bool  // the router's own addresses
	ext        []ExternalAddr
	max        int // cfg.Conntrack.Max (only New uses it; Commit notes a change)

	tcpEst, tcpTrans, udp, icmp int64
}

// Active reports whether r has any SNAT, floating or forward rule (the
// router skips the NAT stages otherwise).
func (r *Rules) Active() bool {
	return len(r.snat)+len(r.floats)+len(r.fwds) > 0
}

// ExternalAddrs lists every address the router must answer ARP for on
// behalf of NAT (SNAT `to` addresses, floating externals, forward externals)
// with the network slot of each (Local when no network holds it).
func (r *Rules) ExternalAddrs() []ExternalAddr {
	return append([]ExternalAddr(nil), r.ext...)
}

func (r *Rules) fwdKey(proto uint8, ip uint32, port uint16) uint64 {
	return uint64(proto)<<48 | uint64(ip)<<16 | uint64(port)
}

// isFwdPort reports whether ip:port/proto is a forward's external port
// (never handed out by the dynamic pool).
func (r *Rules) isFwdPort(proto uint8, ip uint32, port uint16) bool {
	_, ok := r.fwdByExt[r.fwdKey(proto, ip, port)]
	return ok
}

// insideSNAT returns the first SNAT rule whose source holds a (any out network).
func (r *Rules) insideSNAT(a uint32) *snatRule {
	for i := range r.snat {
		if r.snat[i].contains(a) {
			return &r.snat[i]
		}
	}
	return nil
}

// isInside reports whether a may originate NATed traffic.
func (r *Rules) isInside(a uint32) bool {
	if _, ok := r.floatByInt[a]; ok {
		return true
	}
	return r.backends[a] || r.insideSNAT(a) != nil
}

// ExternalAddr is an address the router must answer ARP for on behalf of
// NAT, on network Net (the slot Compile's netIndex gave).
type ExternalAddr struct {
	Addr netip.Addr
	Net  uint16
	Kind string // "snat" | "floating" | "forward"
}

func a32(a netip.Addr) uint32 {
	b := a.As4()
	return packet.AddrFrom4(b)
}

func addrOf(a uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
}

// Compile compiles cfg's NAT rules, off the data path; nothing changes in
// any NAT. netIndex gives the network slot of a network by name (false when
// unknown). An error means the configuration must be refused.
func Compile(cfg *config.Config, netIndex func(name string) (uint16, bool)) (*Rules, error) {
	r := &Rules{
		eif:        cfg.NAT.Filtering == "endpoint-independent",
		floatByExt: map[uint32]int32{},
		floatByInt: map[uint32]int32{},
		fwdByExt:   map[uint64]int32{},
		backends:   map[uint32]bool{},
		addrs:      map[uint32]uint8{},
		own:        map[uint32]bool{},
		max:        cfg.Conntrack.Max,
	}
	ct := cfg.Conntrack
	r.tcpEst, r.tcpTrans, r.udp, r.icmp = int64(ct.TCPEstablished), int64(ct.TCPTransitory), int64(ct.UDP), int64(ct.ICMP)
	if r.tcpEst <= 0 {
		r.tcpEst = int64(2*time.Hour + 4*time.Minute)
	}
	if r.tcpTrans <= 0 {
		r.tcpTrans = int64(4 * time.Minute)
	}
	if r.udp <= 0 {
		r.udp = int64(5 * time.Minute)
	}
	if r.icmp <= 0 {
		r.icmp = int64(60 * time.Second)
	}
	for _, nw := range cfg.Networks {
		for _, p := range nw.Addresses {
			if p.Addr().Is4() {
				r.own[a32(p.Addr())] = true
			}
		}
	}
	// slot maps a network name to its slot; a network of cfg that netIndex
	// does not know is an error of the caller.
	slot := func(name string) (uint16, error) {
		if i, ok := netIndex(name); ok {
			return i, nil
		}
		return 0, fmt.Errorf("nat: network %q has no slot", name)
	}
	// netOf gives the slot of the first network (in cfg order) holding a,
	// Local when none does.
	netOf := func(a netip.Addr) (uint16, error) {
		for _, nw := range cfg.Networks {
			for _, p := range nw.Addresses {
				if p.Contains(a) {
					return slot(nw.Name)
				}
			}
		}
		return Local, nil
	}
	for _, s := range cfg.NAT.SNAT {
		nw := cfg.NetworkByName(s.Out)
		out, ok := netIndex(s.Out)
		if nw == nil || !ok {
			return nil, fmt.Errorf("nat: snat out network %q does not exist", s.Out)
		}
		if !s.Source.Addr().Is4() {
			return nil, fmt.Errorf("nat: snat source %v is not IPv4", s.Source)
		}
		to := s.To
		if !to.First.IsValid() {
			if len(nw.Addresses) == 0 {
				return nil, fmt.Errorf("nat: snat to network %q: no address", s.Out)
			}
			to = config.AddrRange{First: nw.Addresses[0].Addr(), Last: nw.Addresses[0].Addr()}
		}
		if !to.Last.IsValid() {
			to.Last = to.First
		}
		lo, hi := s.Ports.Lo, s.Ports.Hi
		if lo == 0 && hi == 0 {
			lo, hi = 1024, 65535
		}
		if lo == 0 {
			lo = 1
		}
		p := s.Source.Masked()
		mask := ^uint32(0)
		if p.Bits() < 32 {
			mask = ^(^uint32(0) >> p.Bits())
		}
		if p.Bits() == 0 {
			mask = 0
		}
		sr := snatRule{spec: s, base: a32(p.Addr()) & mask, mask: mask, out: out,
			first: a32(to.First), last: a32(to.Last), lo: lo, hi: hi}
		if sr.last < sr.first {
			return nil, fmt.Errorf("nat: snat range %v-%v is empty", to.First, to.Last)
		}
		r.snat = append(r.snat, sr)
		for a := sr.first; ; a++ {
			if r.addrs[a]&aSNAT == 0 {
				r.ext = append(r.ext, ExternalAddr{addrOf(a), out, "snat"})
			}
			r.addrs[a] |= aSNAT
			if a == sr.last {
				break
			}
		}
	}
	for _, f := range cfg.NAT.Floating {
		if !f.External.Is4() || !f.Internal.Is4() {
			return nil, fmt.Errorf("nat: floating %v -> %v is not IPv4", f.External, f.Internal)
		}
		extNet, err := netOf(f.External)
		if err != nil {
			return nil, err
		}
		fr := floatRule{spec: f, ext: a32(f.External), int: a32(f.Internal), extNet: extNet}
		if _, dup := r.floatByExt[fr.ext]; dup {
			return nil, fmt.Errorf("nat: floating IP %v given twice", f.External)
		}
		if _, dup := r.floatByInt[fr.int]; dup {
			return nil, fmt.Errorf("nat: internal address %v has two floating IPs", f.Internal)
		}
		r.floatByExt[fr.ext] = int32(len(r.floats))
		r.floatByInt[fr.int] = int32(len(r.floats))
		r.floats = append(r.floats, fr)
		r.addrs[fr.ext] |= aFloat
		r.ext = append(r.ext, ExternalAddr{f.External, fr.extNet, "floating"})
	}
	for _, f := range cfg.NAT.Forward {
		var proto uint8
		switch f.Proto {
		case "tcp":
			proto = packet.ProtoTCP
		case "udp":
			proto = packet.ProtoUDP
		default:
			return nil, fmt.Errorf("nat: forward proto %q (tcp or udp)", f.Proto)
		}
		if len(f.Internal) == 0 {
			return nil, fmt.Errorf("nat: forward %v has no internal address", f.External)
		}
		extNet, err := netOf(f.External.Addr())
		if err != nil {
			return nil, err
		}
		fr := fwdRule{spec: f, proto: proto, ext: a32(f.External.Addr()), port: f.External.Port(), net: extNet}
		for _, in := range f.Internal {
			fr.backends = append(fr.backends, uint64(a32(in.Addr()))<<16|uint64(in.Port()))
			r.backends[a32(in.Addr())] = true
		}
		k := r.fwdKey(proto, fr.ext, fr.port)
		if _, dup := r.fwdByExt[k]; dup {
			return nil, fmt.Errorf("nat: forward %s %v given twice", f.Proto, f.External)
		}
		if _, fl := r.floatByExt[fr.ext]; fl {
			return nil, fmt.Errorf("nat: forward %v uses floating IP %v", f.External, f.External.Addr())
		}
		if fr.net == Local {
			for _, s := range r.snat {
				if fr.ext >= s.first && fr.ext <= s.last {
					fr.net = s.out
				}
			}
		}
		r.fwdByExt[k] = int32(len(r.fwds))
		r.fwds = append(r.fwds, fr)
		if r.addrs[fr.ext]&(aFwd|aSNAT) == 0 {
			r.ext = append(r.ext, ExternalAddr{f.External.Addr(), fr.net, "forward"})
		}
		r.addrs[fr.ext] |= aFwd
	}
	return r, nil
}

// NAT is the connection tracking table and the NAT rules.
type NAT struct {
	rules atomic.Pointer[Rules] // committed: Reap, show nat, flushes
	t     *table
	frags fragTable
	hold  holdBuf
	hints pairHints

	mu       sync.Mutex // slow path: creating and deleting sessions, pools
	pools    map[uint64]*pool
	workers  []*Worker
	reapMu   sync.Mutex // one reaper at a time; guards reapPos, reapBuf
	reapPos  uint32
	reapBuf  []reapCand
	evictPos uint32
	evicted  atomic.Uint64
	lastNow  atomic.Int64
	reaped   atomic.Uint64
	flushed  atomic.Uint64
}

// New allocates the conntrack table for cfg.Conntrack.Max sessions
// (default 1048576) and commits the initial rules (from Compile). Memory is
// reserved up front but only touched as sessions are created.
func New(cfg *config.Config, initial *Rules) (*NAT, error) {
	if initial == nil {
		return nil, fmt.Errorf("nat: no rules")
	}
	max := cfg.Conntrack.Max
	if max <= 0 {
		max = 1 << 20
	}
	if max >= 1<<28 {
		return nil, fmt.Errorf("nat: conntrack max %d too large", max)
	}
	n := &NAT{t: newTable(max), pools: map[uint64]*pool{}, reapBuf: make([]reapCand, 0, 256)}
	n.rules.Store(initial)
	n.frags.init(4096)
	n.hold.init()
	return n, nil
}

// Max is the session capacity.
func (n *NAT) Max() int { return int(n.t.max) }

// Len is the number of live sessions.
func (n *NAT) Len() int { return int(n.t.live.Load()) }

// Worker is one data-path goroutine's handle: its own counters and scratch,
// so the hot path shares no written cache lines except the sessions.
type Worker struct {
	n      *NAT
	r      *Rules // the rules In and Out apply (Use)
	cnt    [numCounters]atomic.Uint64
	reason Reason
	h, h2  hit

	// Held fragments this worker released (see hold.go): a ring of slot
	// indices and the copy Released hands out.
	rdHead, rdN int
	ready       [HoldSlots]uint32 // slot | generation<<16
	rel         []byte
}

// NewWorker returns a worker handle. Each data-path goroutine needs its own.
func (n *NAT) NewWorker() *Worker {
	w := &Worker{n: n, r: n.rules.Load(), rel: make([]byte, HoldBytes)}
	n.mu.Lock()
	n.workers = append(n.workers, w)
	n.mu.Unlock()
	return w
}

// Use sets the rules In and Out apply, until the next Use (a new worker
// starts with the committed ones). The router calls it once per batch with
// the rules of the snapshot the batch runs on; r must not be nil.
func (w *Worker) Use(r *Rules) { w.r = r }

// Reason is the reason of the last Drop this worker returned.
func (w *Worker) Reason() Reason { return w.reason }

func (w *Worker) inc(c int) {
	x := &w.cnt[c]
	x.Store(x.Load() + 1)
}

func (w *Worker) drop(r Reason) (Verdict, Reason) {
	w.reason = r
	w.inc(int(r))
	return Drop, r
}

// Counters returns every counter of the NAT stage, in Descs order: the
// drop reasons and events summed over the workers, then the table's own
// counters and gauges.
func (n *NAT) Counters() []counter.Value {
	n.mu.Lock()
	ws := append([]*Worker(nil), n.workers...)
	n.mu.Unlock()
	out := make([]counter.Value, 0, numCounters-1+numShared)
	for i := 1; i < numCounters; i++ {
		var s uint64
		for _, w := range ws {
			s += w.cnt[i].Load()
		}
		var d counter.Desc
		if i < int(numReasons) {
			d = reasonDescs[i]
		} else {
			d = workerDescs[i-int(numReasons)]
		}
		out = append(out, counter.Value{Desc: d, Value: s})
	}
	var sh [numShared]uint64
	sh[sExpired] = n.reaped.Load()
	sh[sFlushed] = n.flushed.Load()
	sh[sEvicted] = n.evicted.Load()
	sh[gSessions] = uint64(n.t.live.Load())
	sh[gSessionsMax] = uint64(n.t.max)
	sh[gFragEntries] = uint64(n.frags.used())
	n.hold.counters(&sh)
	for i, v := range sh {
		out = append(out, counter.Value{Desc: sharedDescs[i], Value: v})
	}
	return out
}
