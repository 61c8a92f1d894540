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
// NATed flows are tracked by their NAT sessions; flows a filter accepts that
// no NAT rule translates get tracking-only sessions (track.go).
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
//     like its first fragment (remembered per stage for [conntrack]
//     fragment_timeout, DefaultFragTimeout unless set). One
//     that arrives before its first fragment is translated at once when the
//     address mapping does not depend on ports (floating IPs, SNAT sources,
//     a single inside host behind an SNAT address for that remote);
//     otherwise (several hosts behind the address, port forwards, replies
//     of forward backends, hairpins) the stage copies it into a bounded hold
//     buffer (HoldSlots x HoldBytes, preallocated) and returns Held. When a
//     worker translates the first fragment it translates the held ones and
//     hands them to the router through Worker.Released, to continue after
//     the stage that held them. A full buffer evicts its oldest fragment;
//     Reap frees those held for fragment_timeout, and those whose first fragment
//     is dropped are freed then; all are counted. A first
//     fragment a stage leaves untranslated is remembered too, so its
//     followers pass (and held ones are released untouched).
//   - A session at the exact moment of its expiry may be reaped while a
//     worker refreshes it (the packet in flight is still translated).
package nat

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"vrouter/config"
	"vrouter/internal/counter"
)

// Local is the inNet the router passes to Out for packets it generates
// itself (ICMP errors).
const Local uint16 = 0xffff

// EvictIdle is how long an unfinished session (TCP handshake or closed, or
// never answered) must have been idle before a new flow may evict it from a
// full table.
const EvictIdle = time.Second

// DefaultFragTimeout is how long, unless [conntrack] fragment_timeout says
// otherwise, the fragment tables remember a first fragment and the hold
// buffer keeps a non-first fragment waiting for its first one (30 s, as
// Linux's net.ipv4.ipfrag_time). A reload (Commit) applies a changed
// timeout to the first fragments learned from then on and to every held
// fragment (counted from when it was held).
const DefaultFragTimeout = config.DefaultFragmentTimeout

// NAT is the connection tracking table and the NAT rules.
type NAT struct {
	rules atomic.Pointer[Rules] // committed: Reap, show nat, flushes
	t     *table
	t6    *table6 // IPv6 flows, tracking only (table6.go)
	frags fragTable
	// frags6: IPv6 datagrams whose first fragment passed the filter
	frags6 frag6Table
	hold   holdBuf
	hints  pairHints

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
	sync     syncState // HA session sync (sync.go)
}

// New allocates the conntrack tables for cfg.Conntrack.Max sessions each
// (IPv4, and IPv6 tracking-only sessions) and
// commits the initial rules (from Compile). Memory is
// reserved up front but only touched as sessions are created.
func New(cfg *config.Config, initial *Rules) (*NAT, error) {
	if initial == nil {
		return nil, fmt.Errorf("nat: no rules")
	}
	max := cfg.Conntrack.Max
	if max <= 0 {
		return nil, fmt.Errorf("nat: conntrack max %d (defaults not applied)", max)
	}
	if max >= 1<<28 {
		return nil, fmt.Errorf("nat: conntrack max %d too large", max)
	}
	n := &NAT{t: newTable(max), t6: newTable6(max), pools: map[uint64]*pool{}, reapBuf: make([]reapCand, 0, 256)}
	n.rules.Store(initial)
	n.frags.init(4096)
	n.frags6.init(4096)
	n.hold.init()
	n.setFragTimeout(initial.frag)
	return n, nil
}

// Max is the session capacity.
func (n *NAT) Max() int { return int(n.t.max) }

// Len is the number of live sessions.
func (n *NAT) Len() int { return int(n.t.live.Load()) }

// Worker is one data-path goroutine's handle: its own counters and scratch,
// so the hot path shares no written cache lines except the sessions.
type Worker struct {
	n *NAT
	r *Rules // the rules In and Out apply (Use)
	// partial: the packets given to In and Out carry a partial L4
	// checksum (SetPartial).
	partial bool
	cnt     [numCounters]atomic.Uint64
	reason  Reason
	h, h2   hit   // scratch of lookups about other packets (quotes of ICMP errors)
	ct      pktCT // the packet being processed (track.go)
	fl      flow  // Track's scratch
	f6      flow6 // the IPv6 packet Track6 parsed (for Create6)
	h6      hit6  // Track6's lookups

	// Held fragments this worker released (see hold.go): a ring of slot
	// indices and the copy Released hands out.
	rdHead, rdN int
	ready       [HoldSlots]uint32 // slot | generation<<16
	rel         []byte

	syncq atomic.Pointer[syncRing[uint64]] // TCP state changes for the HA sync (sync.go); nil when off
}

// NewWorker returns a worker handle. Each data-path goroutine needs its own.
func (n *NAT) NewWorker() *Worker {
	w := &Worker{n: n, r: n.rules.Load(), rel: make([]byte, HoldBytes)}
	n.mu.Lock()
	if n.sync.on.Load() {
		w.syncq.Store(newSyncRing[uint64](WorkerSyncRing))
	}
	n.workers = append(n.workers, w)
	ws := append([]*Worker(nil), n.workers...)
	n.sync.workers.Store(&ws)
	n.mu.Unlock()
	return w
}

// Use sets the rules In and Out apply, until the next Use (a new worker
// starts with the committed ones). The router calls it once per batch with
// the rules of the snapshot the batch runs on; r must not be nil.
func (w *Worker) Use(r *Rules) { w.r = r }

// SetPartial says whether the next packets given to In and Out carry a
// partial TCP/UDP checksum (a GSO super-frame or a checksum offloaded to
// the kernel or the peer): the field then holds the pseudo-header sum only
// and is rewritten as such. The router sets it around such packets only.
func (w *Worker) SetPartial(on bool) { w.partial = on }

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
	sh[gSessions6] = uint64(n.t6.live.Load())
	sh[gFragEntries] = uint64(n.frags.used())
	n.hold.counters(&sh)
	for i, v := range sh {
		out = append(out, counter.Value{Desc: sharedDescs[i], Value: v})
	}
	return out
}
