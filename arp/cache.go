// Package arp is the neighbour cache of both address families: IPv4 (ARP)
// and IPv6 (Neighbor Discovery, RFC 4861) -> MAC per network, with the
// states of RFC 1122/4861-style neighbour handling (incomplete, reachable,
// stale, failed, static), a bounded queue of packets per unresolved
// neighbour, at most one request per RetransTime per target, and timers
// driven by the caller's clock.
//
// Layout. The lookup side is a fixed-capacity open-addressing hash table
// (linear probing, a power of two >= 2*Max slots) of pointer-free slots. A
// slot is two atomic words: the key (1<<63 | network<<32 | ip; 0 = empty)
// and the value (MAC in the low 48 bits, the state in bits 48-50 and a
// "used" hint in bit 51). An IPv6 neighbour's key word has bit 62 set and
// a 32-bit fold of its address in place of the IPv4 address; its full
// address sits in a parallel array (addr6, same index as slots), written
// before the key and compared after it, so IPv4 lookups never touch it
// (cache6.go). Readers (Lookup, Has) probe without locks and
// without allocation. Writers serialise on a mutex. Inserting fills an empty
// slot, storing the value before the key, so readers never need to retry
// for it. Deleting uses backward-shift deletion (no tombstones, so the table
// never degrades); because that moves entries, the writer makes a table-wide
// sequence number odd while it shifts and readers retry when the number
// changed under them (seqlock).
//
// The per-entry timers and queue heads live in a dense slab indexed by
// uint32 (only the writer touches it); the packets waiting for resolution
// are held in a preallocated pool of fixed-size buffers chained by index, so
// Miss, Update and Tick do not allocate in steady state.
package arp

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"vrouter/packet"
)

// State of a neighbour entry.
type State uint8

const (
	Incomplete State = iota + 1
	Reachable
	Stale
	Failed
	Static
)

func (s State) String() string {
	switch s {
	case Incomplete:
		return "incomplete"
	case Reachable:
		return "reachable"
	case Stale:
		return "stale"
	case Failed:
		return "failed"
	case Static:
		return "static"
	}
	return "none"
}

// usable reports whether Lookup hands out the MAC of an entry in state s.
func (s State) usable() bool { return s == Reachable || s == Stale || s == Static }

// Config are the cache's limits and timers. A zero field takes the default
// noted beside it.
type Config struct {
	Max           int           // entries, static ones included; default 65536
	ReachableTime time.Duration // reachable -> stale after this; default 30s
	StaleTime     time.Duration // stale (or failed) entries unused this long are removed; default 60s
	RetransTime   time.Duration // at most one request per target per RetransTime; default 1s
	Retries       int           // requests without answer before failed (and unicast refreshes before removal); default 3
	QueueLen      int           // packets held per unresolved neighbour; default 3

	// PendingPackets is the total number of packets held for all
	// unresolved neighbours together (the preallocated pool); default
	// min(Max*QueueLen, 2048).
	PendingPackets int
	// PendingSize is the size of one pool buffer; a larger packet is not
	// queued (Stats.TooBig). Default 2048.
	PendingSize int
}

// Defaults used for zero Config fields.
const (
	DefaultMax            = 65536
	DefaultReachableTime  = 30 * time.Second
	DefaultStaleTime      = 60 * time.Second
	DefaultRetransTime    = time.Second
	DefaultRetries        = 3
	DefaultQueueLen       = 3
	DefaultPendingPackets = 2048
	DefaultPendingSize    = 2048
)

func (c Config) withDefaults() Config {
	if c.Max <= 0 {
		c.Max = DefaultMax
	}
	if c.ReachableTime <= 0 {
		c.ReachableTime = DefaultReachableTime
	}
	if c.StaleTime <= 0 {
		c.StaleTime = DefaultStaleTime
	}
	if c.RetransTime <= 0 {
		c.RetransTime = DefaultRetransTime
	}
	if c.Retries <= 0 {
		c.Retries = DefaultRetries
	}
	if c.QueueLen <= 0 {
		c.QueueLen = DefaultQueueLen
	}
	if c.PendingPackets <= 0 {
		c.PendingPackets = min(c.Max*c.QueueLen, DefaultPendingPackets)
	}
	if c.PendingSize <= 0 {
		c.PendingSize = DefaultPendingSize
	}
	return c
}

// Entry is one neighbour, for display.
type Entry struct {
	Network uint16
	IP      uint32 // IPv4 neighbours
	V6      bool
	IP6     [16]byte // IPv6 neighbours
	MAC     packet.MAC
	State   State
	Age     time.Duration // since last confirmed (or created)
	Queued  int
}

// Stats are the cache's counters.
type Stats struct {
	Entries     int
	Requests    uint64 // requests asked for (Miss + retransmits + unicast refreshes)
	Queued      uint64 // packets queued while resolving
	QueueDrops  uint64 // packets dropped because the neighbour's queue was full
	Failed      uint64 // resolutions that failed
	FailedDrops uint64 // queued packets dropped on failure
	TableFull   uint64 // new entries refused because the table was full

	TooBig        uint64 // packets not queued: larger than PendingSize
	PoolDrops     uint64 // packets not queued: every pool buffer in use
	FlushDrops    uint64 // queued packets discarded by Flush, FlushNetwork, SetStatic
	MissResolved  uint64 // Miss found the neighbour already resolved (raced with Update); packet not queued
	Refreshes     uint64 // unicast refreshes started for stale entries in use
	RefreshFailed uint64 // stale entries removed because their refresh got no answer
	Expired       uint64 // stale or failed entries removed after StaleTime unused
}

// Slot value layout.
const (
	keyLive    = uint64(1) << 63
	stateShift = 48
	stateMask  = uint64(7) << stateShift
	usedBit    = uint64(1) << 51
	macMask    = uint64(1)<<48 - 1
	hashMul    = 0x9E3779B97F4A7C15
	hashMul2   = 0xBF58476D1CE4E5B9
	never      = -1 << 62 // lastReq of an entry that never sent a request
	cacheLine  = 64
)

type slot struct {
	key atomic.Uint64
	val atomic.Uint64
}

// slot6 is the full address of an IPv6 neighbour (see Cache.addr6).
type slot6 struct {
	hi, lo atomic.Uint64
}

// ent is the writer-side state of one entry (slab element).
type ent struct {
	key        uint64 // network<<32 | ip; IPv6: key6Bit | network<<32 | fold (see key6)
	hi, lo     uint64 // IPv6 address (zero for IPv4)
	slot       uint32 // index in slots
	state      State
	probing    bool // stale entry being refreshed with unicast requests
	mark       bool // SetStatic sweep
	tries      int32
	mac        packet.MAC
	confirmed  int64
	since      int64 // entered the current state
	lastReq    int64
	probeStart int64
	qhead      int32 // pool buffer chain, -1 = empty
	qtail      int32
	qlen       int32
}

// pool is the preallocated store of queued packets: n buffers of size bytes,
// chained by index.
type pool struct {
	size int
	data []byte
	ln   []int32
	next []int32
	free int32
}

func newPool(n, size int) pool {
	p := pool{size: size, data: make([]byte, n*size), ln: make([]int32, n), next: make([]int32, n), free: -1}
	for i := n - 1; i >= 0; i-- {
		p.next[i] = p.free
		p.free = int32(i)
	}
	return p
}

func (p *pool) get() int32 {
	b := p.free
	if b >= 0 {
		p.free = p.next[b]
		p.next[b] = -1
	}
	return b
}

func (p *pool) put(b int32) { p.next[b] = p.free; p.free = b }

// putChain frees a chain and returns its length.
func (p *pool) putChain(b int32) int {
	n := 0
	for b >= 0 {
		nx := p.next[b]
		p.put(b)
		b = nx
		n++
	}
	return n
}

func (p *pool) buf(b int32) []byte {
	off := int(b) * p.size
	return p.data[off : off+int(p.ln[b]) : off+int(p.ln[b])]
}

// Cache is the neighbour cache. Lookup and Has are lock-free and
// allocation-free; every other method serialises on a mutex.
type Cache struct {
	// read-mostly: used by every Lookup
	slots []slot
	mask  uint64
	shift uint
	seed  uint64
	_     [cacheLine]byte
	seq   atomic.Uint64 // odd while the writer moves entries
	_     [cacheLine - 8]byte
	// addr6 holds the IPv6 neighbours' addresses by slot index (cache6.go);
	// kept off the line the IPv4 lookups read.
	addr6 []slot6

	mu      sync.Mutex
	cfg     Config
	slotEnt []uint32 // slot -> slab index (valid for live slots)
	ents    []ent    // the slab; len = live entries, cap = Max
	pool    pool
	st      Stats

	tickMu sync.Mutex
	reqs   []reqItem
	fails  []failItem
}

type reqItem struct {
	net    uint16
	ip     uint32
	mac    packet.MAC
	v6     bool
	hi, lo uint64
}

type failItem struct {
	net    uint16
	ip     uint32
	buf    int32
	v6     bool
	hi, lo uint64
}

func key(net uint16, ip uint32) uint64 { return uint64(net)<<32 | uint64(ip) }

// New makes a cache; all its memory is allocated here.
func New(cfg Config) *Cache {
	cfg = cfg.withDefaults()
	bits := uint(4)
	for 1<<bits < 2*cfg.Max {
		bits++
	}
	c := &Cache{
		cfg:     cfg,
		slots:   make([]slot, 1<<bits),
		addr6:   make([]slot6, 1<<bits),
		mask:    1<<bits - 1,
		shift:   64 - bits,
		seed:    rand.Uint64(),
		slotEnt: make([]uint32, 1<<bits),
		ents:    make([]ent, 0, cfg.Max),
		pool:    newPool(cfg.PendingPackets, cfg.PendingSize),
	}
	return c
}

// Config returns the configuration in use (defaults filled in).
func (c *Cache) Config() Config { return c.cfg }

// home is the first slot to probe for a key. The key is mixed with a
// per-cache random seed so that nobody can pick addresses (e.g. packets to
// chosen destinations in a connected /16) that pile up in one probe chain.
func (c *Cache) home(sk uint64) uint64 {
	x := (sk ^ c.seed) * hashMul
	x ^= x >> 29
	x *= hashMul2
	return x >> c.shift
}

// probe finds the slot of a key (with keyLive set) without locks. It returns
// the slot index and value seen under a stable sequence number.
func (c *Cache) probe(sk uint64) (i, v uint64, ok bool) {
	slots, mask := c.slots, c.mask
	for {
		s := c.seq.Load()
		if s&1 != 0 {
			runtime.Gosched()
			continue
		}
		i = c.home(sk)
		ok = false
		for n := uint64(0); n <= mask; n++ {
			k := slots[i&mask].key.Load()
			if k == sk {
				v = slots[i&mask].val.Load()
				ok = true
				break
			}
			if k == 0 {
				break
			}
			i = (i + 1) & mask
		}
		if c.seq.Load() == s {
			return i & mask, v, ok
		}
	}
}

// Lookup returns a usable MAC (reachable, stale or static). It never takes
// the mutex and never allocates; it only retries (yielding) while a removal
// is moving entries, which takes a few nanoseconds per removed entry. Using
// a stale entry marks it so that Tick refreshes it.
func (c *Cache) Lookup(net uint16, ip uint32) (packet.MAC, bool) {
	i, v, ok := c.probe(keyLive | key(net, ip))
	if !ok {
		return packet.MAC{}, false
	}
	st := State((v & stateMask) >> stateShift)
	if !st.usable() {
		return packet.MAC{}, false
	}
	if st == Stale && v&usedBit == 0 {
		// A hint: if the slot changed meanwhile, at worst some stale
		// entry is refreshed once without need.
		c.slots[i].val.Or(usedBit)
	}
	return packet.MACFromUint64(v), true
}

// Has reports whether an entry exists for (net, ip) in any state (RFC 826:
// a sender's mapping is updated only when it is already known). Lock-free.
func (c *Cache) Has(net uint16, ip uint32) bool {
	_, _, ok := c.probe(keyLive | key(net, ip))
	return ok
}

// find returns the slab index of a key (hi, lo: the IPv6 address of an
// IPv6 key, else 0), or -1 (writer side, under mu).
func (c *Cache) find(k, hi, lo uint64) int {
	sk := keyLive | k
	i := c.home(sk)
	for {
		kk := c.slots[i].key.Load()
		if kk == sk && (k&key6Bit == 0 || c.addr6[i].hi.Load() == hi && c.addr6[i].lo.Load() == lo) {
			return int(c.slotEnt[i])
		}
		if kk == 0 {
			return -1
		}
		i = (i + 1) & c.mask
	}
}

func valOf(e *ent) uint64 { return e.mac.Uint64() | uint64(e.state)<<stateShift }

// publish makes the entry's MAC and state visible to readers (clears the
// used hint).
func (c *Cache) publish(e *ent) { c.slots[e.slot].val.Store(valOf(e)) }

// insert adds an absent key (under mu). It fails, counting TableFull, when
// the slab is full.
func (c *Cache) insert(e ent) int {
	if len(c.ents) >= c.cfg.Max {
		c.st.TableFull++
		return -1
	}
	sk := keyLive | e.key
	i := c.home(sk)
	for c.slots[i].key.Load() != 0 {
		i = (i + 1) & c.mask
	}
	idx := len(c.ents)
	e.slot = uint32(i)
	c.ents = append(c.ents, e)
	c.slotEnt[i] = uint32(idx)
	if e.key&key6Bit != 0 {
		c.addr6[i].hi.Store(e.hi)
		c.addr6[i].lo.Store(e.lo)
	}
	c.slots[i].val.Store(valOf(&c.ents[idx]))
	c.slots[i].key.Store(sk) // publishes the slot
	return idx
}

// testHookShift, when set by a test, runs in the middle of a backward
// shift (the table is inconsistent and the sequence number odd).
var testHookShift func()

// remove deletes the entry at slab index idx (under mu). Its queue must be
// empty (see dropQueue). The slab's last entry moves into idx.
func (c *Cache) remove(idx int) {
	mask := c.mask
	i := uint64(c.ents[idx].slot)
	c.seq.Add(1)
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		kj := c.slots[j].key.Load()
		if kj == 0 {
			break
		}
		// The entry at j may fill the hole at i unless its home lies
		// cyclically in (i, j].
		if (j-c.home(kj))&mask >= (j-i)&mask {
			c.slots[i].key.Store(kj)
			if testHookShift != nil {
				testHookShift()
			}
			c.slots[i].val.Store(c.slots[j].val.Load())
			if kj&key6Bit != 0 {
				c.addr6[i].hi.Store(c.addr6[j].hi.Load())
				c.addr6[i].lo.Store(c.addr6[j].lo.Load())
			}
			ej := c.slotEnt[j]
			c.slotEnt[i] = ej
			c.ents[ej].slot = uint32(i)
			i = j
		}
	}
	c.slots[i].key.Store(0)
	c.slots[i].val.Store(0)
	c.addr6[i].hi.Store(0)
	c.addr6[i].lo.Store(0)
	if testHookShift != nil {
		testHookShift()
	}
	c.seq.Add(1)

	last := len(c.ents) - 1
	if idx != last {
		c.ents[idx] = c.ents[last]
		c.slotEnt[c.ents[idx].slot] = uint32(idx)
	}
	c.ents = c.ents[:last]
}

// dropQueue frees the entry's queued packets and returns how many there were.
func (c *Cache) dropQueue(e *ent) int {
	n := c.pool.putChain(e.qhead)
	e.qhead, e.qtail, e.qlen = -1, -1, 0
	return n
}

func (c *Cache) enqueue(e *ent, pkt []byte) bool {
	if int(e.qlen) >= c.cfg.QueueLen {
		c.st.QueueDrops++
		return false
	}
	if len(pkt) > c.pool.size {
		c.st.TooBig++
		return false
	}
	b := c.pool.get()
	if b < 0 {
		c.st.PoolDrops++
		return false
	}
	copy(c.pool.data[int(b)*c.pool.size:], pkt)
	c.pool.ln[b] = int32(len(pkt))
	if e.qtail >= 0 {
		c.pool.next[e.qtail] = b
	} else {
		e.qhead = b
	}
	e.qtail = b
	e.qlen++
	c.st.Queued++
	return true
}

// mayRequest reports whether a request to the entry's target is allowed now
// (at most one per RetransTime).
func (c *Cache) mayRequest(e *ent, now int64) bool {
	return e.lastReq == never || now-e.lastReq >= int64(c.cfg.RetransTime)
}

// Miss queues a copy of pkt (an IPv4 packet) for (net, ip). sendReq says the
// caller should broadcast an ARP request now; queued is false when the
// packet was dropped (queue, pool or table full, or too big; each counted).
// A Miss on a failed entry restarts resolution. When the entry has become
// usable since the caller's Lookup, nothing is queued (MissResolved); use
// Resolve to get the MAC in that case.
func (c *Cache) Miss(net uint16, ip uint32, pkt []byte, now int64) (sendReq, queued bool) {
	c.mu.Lock()
	_, _, sendReq, queued = c.missLocked(net, ip, pkt, now, true)
	c.mu.Unlock()
	return sendReq, queued
}

// Resolve is Lookup followed, on a miss, by Miss, closing the race between
// the two: ok with the MAC when the neighbour is usable, otherwise the
// results of Miss.
func (c *Cache) Resolve(net uint16, ip uint32, pkt []byte, now int64) (mac packet.MAC, ok, sendReq, queued bool) {
	if mac, ok = c.Lookup(net, ip); ok {
		return mac, true, false, false
	}
	c.mu.Lock()
	mac, ok, sendReq, queued = c.missLocked(net, ip, pkt, now, false)
	c.mu.Unlock()
	return
}

func (c *Cache) missLocked(net uint16, ip uint32, pkt []byte, now int64, countRace bool) (mac packet.MAC, ok, sendReq, queued bool) {
	return c.missKey(key(net, ip), 0, 0, pkt, now, countRace)
}

// missKey is Miss/Resolve for either family (hi, lo: see find).
func (c *Cache) missKey(k, hi, lo uint64, pkt []byte, now int64, countRace bool) (mac packet.MAC, ok, sendReq, queued bool) {
	idx := c.find(k, hi, lo)
	if idx < 0 {
		idx = c.insert(ent{key: k, hi: hi, lo: lo, state: Incomplete, confirmed: now, since: now, lastReq: never, qhead: -1, qtail: -1})
		if idx < 0 {
			return
		}
	}
	e := &c.ents[idx]
	switch e.state {
	case Reachable, Stale, Static:
		if countRace {
			c.st.MissResolved++
		}
		return e.mac, true, false, false
	case Failed:
		e.state, e.tries, e.since, e.confirmed = Incomplete, 0, now, now
		c.publish(e)
	}
	queued = c.enqueue(e, pkt)
	// After Retries requests, Tick (which can report) fails the entry.
	if e.tries < int32(c.cfg.Retries) && c.mayRequest(e, now) {
		e.tries++
		e.lastReq = now
		c.st.Requests++
		sendReq = true
	}
	return
}

// Update records ip -> mac learned from ARP. create says whether a missing
// entry may be created (we were the target, RFC 826); otherwise only an
// existing entry is updated. Packets queued for the neighbour are handed to
// flush (the slice is valid only during the call; flush runs without the
// cache's lock held). Static entries are never changed.
func (c *Cache) Update(net uint16, ip uint32, mac packet.MAC, create bool, now int64, flush func(pkt []byte)) {
	how := Learn{Reachable: true, Override: true}
	if create {
		how.Create = Reachable
	}
	c.update(key(net, ip), 0, 0, mac, how, now, flush)
}

// Learn says how an advertisement changes an entry (RFC 4861 7.2.3-7.2.5;
// ARP is Reachable and Override without Create unless we were the target).
type Learn struct {
	// Create is the state of a new entry (Reachable or Stale); 0: an
	// absent entry is not created.
	Create State
	// Reachable: the advertisement confirms reachability (ARP, a
	// solicited NA); otherwise an entry whose MAC changes becomes stale.
	Reachable bool
	// Override: the MAC of a resolved entry may change (ARP, NA with O);
	// without it a reachable entry with another MAC only becomes stale.
	Override bool
}

// update applies an advertisement of mac for a key (hi, lo: see find).
func (c *Cache) update(k, hi, lo uint64, mac packet.MAC, how Learn, now int64, flush func(pkt []byte)) {
	c.mu.Lock()
	idx := c.find(k, hi, lo)
	if idx < 0 {
		if how.Create != 0 {
			c.insert(ent{key: k, hi: hi, lo: lo, state: how.Create, mac: mac, confirmed: now, since: now, lastReq: never, qhead: -1, qtail: -1})
		}
		c.mu.Unlock()
		return
	}
	e := &c.ents[idx]
	if e.state == Static {
		c.mu.Unlock()
		return
	}
	changed := e.mac != mac
	switch {
	case e.state == Incomplete || e.state == Failed:
		st := Stale
		if how.Reachable {
			st = Reachable
		}
		e.mac, e.state, e.since, e.tries, e.probing = mac, st, now, 0, false
		if st == Reachable {
			e.confirmed = now
		}
	case changed && !how.Override:
		if e.state == Reachable {
			e.state, e.since = Stale, now
		}
		c.publish(e)
		c.mu.Unlock()
		return
	case how.Reachable:
		e.mac, e.state, e.confirmed, e.since, e.tries, e.probing = mac, Reachable, now, now, 0, false
	case changed:
		e.mac, e.state, e.since, e.tries, e.probing = mac, Stale, now, 0, false
	default:
		c.mu.Unlock()
		return // the same MAC, not a confirmation: nothing changes
	}
	c.publish(e)
	head := e.qhead
	e.qhead, e.qtail, e.qlen = -1, -1, 0
	c.mu.Unlock()
	if head < 0 {
		return
	}
	// The chain is detached: nobody else touches these buffers now.
	if flush != nil {
		for b := head; b >= 0; b = c.pool.next[b] {
			flush(c.pool.buf(b))
		}
	}
	c.mu.Lock()
	c.pool.putChain(head)
	c.mu.Unlock()
}

// Tick runs the timers: retransmits requests for incomplete entries (req
// with a zero MAC means broadcast), fails entries after Retries requests
// (unreachable is called once with the first queued packet, the rest are
// dropped), ages reachable entries to stale after ReachableTime, refreshes
// stale entries used since they became stale with unicast requests (req
// with the known MAC) and removes them when Retries refreshes got no answer
// within Retries*RetransTime, and removes stale entries unused for
// StaleTime and failed entries after StaleTime. The callbacks run without
// the cache's lock held. Tick does not allocate in steady state.
func (c *Cache) Tick(now int64, req func(net uint16, ip uint32, mac packet.MAC), unreachable func(net uint16, ip uint32, pkt []byte)) {
	c.TickAll(now, Handlers{Request: req, Unreachable: unreachable})
}

// Handlers are Tick's callbacks per family (nil: not called).
type Handlers struct {
	Request      func(net uint16, ip uint32, mac packet.MAC)
	Unreachable  func(net uint16, ip uint32, pkt []byte)
	Request6     func(net uint16, ip [16]byte, mac packet.MAC)
	Unreachable6 func(net uint16, ip [16]byte, pkt []byte)
}

// TickAll is Tick for the entries of both families.
func (c *Cache) TickAll(now int64, h Handlers) {
	c.tickMu.Lock()
	defer c.tickMu.Unlock()
	reqs, fails := c.reqs[:0], c.fails[:0]
	R := int64(c.cfg.RetransTime)
	retries := int32(c.cfg.Retries)

	c.mu.Lock()
	for i := len(c.ents) - 1; i >= 0; i-- {
		e := &c.ents[i]
		net, ip := uint16(e.key>>32), uint32(e.key)
		v6, hi, lo := e.key&key6Bit != 0, e.hi, e.lo
		switch e.state {
		case Incomplete:
			if !c.mayRequest(e, now) {
				continue
			}
			if e.tries >= retries {
				e.state, e.since = Failed, now
				c.publish(e)
				c.st.Failed++
				if first := e.qhead; first >= 0 {
					rest := c.pool.next[first]
					c.pool.next[first] = -1
					c.st.FailedDrops += uint64(c.pool.putChain(rest))
					fails = append(fails, failItem{net, ip, first, v6, hi, lo})
				}
				e.qhead, e.qtail, e.qlen = -1, -1, 0
				continue
			}
			e.tries++
			e.lastReq = now
			c.st.Requests++
			reqs = append(reqs, reqItem{net: net, ip: ip, v6: v6, hi: hi, lo: lo})
		case Reachable:
			if now-e.confirmed >= int64(c.cfg.ReachableTime) {
				e.state, e.since, e.probing = Stale, now, false
				c.publish(e)
			}
		case Stale:
			switch {
			case e.probing:
				if now-e.probeStart >= int64(retries)*R {
					c.st.RefreshFailed++
					c.remove(i)
				} else if e.tries < retries && c.mayRequest(e, now) {
					e.tries++
					e.lastReq = now
					c.st.Requests++
					reqs = append(reqs, reqItem{net, ip, e.mac, v6, hi, lo})
				}
			case c.slots[e.slot].val.Load()&usedBit != 0:
				if c.mayRequest(e, now) {
					e.probing, e.probeStart, e.tries, e.lastReq = true, now, 1, now
					c.st.Refreshes++
					c.st.Requests++
					reqs = append(reqs, reqItem{net, ip, e.mac, v6, hi, lo})
				}
			case now-e.since >= int64(c.cfg.StaleTime):
				c.st.Expired++
				c.remove(i)
			}
		case Failed:
			if now-e.since >= int64(c.cfg.StaleTime) {
				c.st.Expired++
				c.remove(i)
			}
		}
	}
	c.mu.Unlock()

	for _, r := range reqs {
		switch {
		case r.v6 && h.Request6 != nil:
			h.Request6(r.net, join6(r.hi, r.lo), r.mac)
		case !r.v6 && h.Request != nil:
			h.Request(r.net, r.ip, r.mac)
		}
	}
	if len(fails) > 0 {
		for _, f := range fails {
			switch {
			case f.v6 && h.Unreachable6 != nil:
				h.Unreachable6(f.net, join6(f.hi, f.lo), c.pool.buf(f.buf))
			case !f.v6 && h.Unreachable != nil:
				h.Unreachable(f.net, f.ip, c.pool.buf(f.buf))
			}
		}
		c.mu.Lock()
		for _, f := range fails {
			c.pool.put(f.buf)
		}
		c.mu.Unlock()
	}
	c.reqs, c.fails = reqs[:0], fails[:0]
}

// StaticEntry is a static neighbour.
type StaticEntry struct {
	Network uint16
	IP      uint32
	MAC     packet.MAC
}

// SetStatic replaces the set of static entries with list. A learned entry
// for the same address becomes static (its queued packets are dropped,
// FlushDrops). Static entries count against Max: when the table is full a
// learned entry is evicted to make room, and a static entry that still does
// not fit is refused (TableFull).
func (c *Cache) SetStatic(list []StaticEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.ents {
		c.ents[i].mark = false
	}
	for _, s := range list {
		k := key(s.Network, s.IP)
		idx := c.find(k, 0, 0)
		if idx < 0 && len(c.ents) >= c.cfg.Max {
			c.evictLearned()
		}
		if idx < 0 {
			idx = c.insert(ent{key: k, lastReq: never, qhead: -1, qtail: -1})
			if idx < 0 {
				continue
			}
		}
		e := &c.ents[idx]
		c.st.FlushDrops += uint64(c.dropQueue(e))
		e.state, e.mac, e.mark, e.probing, e.tries = Static, s.MAC, true, false, 0
		c.publish(e)
	}
	for i := len(c.ents) - 1; i >= 0; i-- {
		if c.ents[i].state == Static && !c.ents[i].mark {
			c.remove(i)
		}
	}
}

// evictLearned removes one non-static entry, preferring failed, then
// incomplete, then stale, then reachable ones.
func (c *Cache) evictLearned() {
	best, rank := -1, 0
	for i := range c.ents {
		r := 0
		switch c.ents[i].state {
		case Failed:
			r = 4
		case Incomplete:
			r = 3
		case Stale:
			r = 2
		case Reachable:
			r = 1
		}
		if r > rank {
			best, rank = i, r
		}
	}
	if best >= 0 {
		c.st.FlushDrops += uint64(c.dropQueue(&c.ents[best]))
		c.remove(best)
	}
}

// Flush removes every entry that is not static (queued packets are dropped,
// FlushDrops).
func (c *Cache) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.ents) - 1; i >= 0; i-- {
		if c.ents[i].state != Static {
			c.st.FlushDrops += uint64(c.dropQueue(&c.ents[i]))
			c.remove(i)
		}
	}
}

// FlushNetwork removes every entry of a network, static ones included (used
// when a network is removed or renumbered on reload; SetStatic re-adds the
// statics).
func (c *Cache) FlushNetwork(net uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.ents) - 1; i >= 0; i-- {
		if uint16(c.ents[i].key>>32) == net {
			c.st.FlushDrops += uint64(c.dropQueue(&c.ents[i]))
			c.remove(i)
		}
	}
}

// Entries lists the cache (allocates; for display). Age is 0 for static
// entries.
func (c *Cache) Entries(now int64) []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Entry, 0, len(c.ents))
	for i := range c.ents {
		e := &c.ents[i]
		age := time.Duration(now - e.confirmed)
		if e.state == Static {
			age = 0
		}
		en := Entry{Network: uint16(e.key >> 32), IP: uint32(e.key), MAC: e.mac, State: e.state,
			Age: age, Queued: int(e.qlen)}
		if e.key&key6Bit != 0 {
			en.IP, en.V6, en.IP6 = 0, true, join6(e.hi, e.lo)
		}
		out = append(out, en)
	}
	return out
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.st
	s.Entries = len(c.ents)
	return s
}
