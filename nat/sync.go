package nat

import (
	"sync/atomic"
	"time"
)

// Session sync for a redundant pair (package ha carries it to the peer).
//
// The data path only records that something happened to a session, in
// fixed-size records on rings that the sync engine drains from its own
// goroutine: no lock and no allocation on the fast path. A TCP state change
// is found by a worker without the table lock, so each worker has its own
// single-producer ring; creations and deletions happen under NAT.mu, so one
// ring fed under that lock serves them all. A creation or state change
// records only the session's slot and generation: the engine reads the
// session as it is when it drains the ring (so a burst of changes costs one
// up-to-date record), and skips it when the slot has been freed since. A
// deletion records the original tuple, which is all the peer needs. A full
// ring drops the record and counts it (SyncQueueFull); the engine then asks
// for a full resync, which repairs whatever was lost.
//
// The receiving side installs sessions as they are (Install), reserving
// their SNAT ports in its pools so that it never hands out a port a synced
// session holds once it is master, and removes deleted ones (Remove).

// SyncOp says what a SyncRecord does.
type SyncOp uint8

const (
	// SyncUpsert creates the session or brings it up to date.
	SyncUpsert SyncOp = 1
	// SyncDelete removes the session with the original tuple.
	SyncDelete SyncOp = 2
)

// SyncRecord is one session as the sync carries it: both tuples (the NAT
// mapping is their difference), the network the original direction leaves
// by (a network slot: both routers of a pair declare the same networks),
// the session's kind (Flags), its protocol state and the time it has left.
// A SyncDelete fills the original tuple only.
type SyncRecord struct {
	Op                     SyncOp
	Proto                  uint8
	OSrc, ODst, RSrc, RDst uint32
	OSport, ODport         uint16
	RSport, RDport         uint16
	OutNet                 uint16
	Flags                  uint16    // origin, mapped, hairpin (session.go)
	State                  uint32    // TCP state, opener, FINs seen, window scales, replied
	TCP                    [4]uint32 // sequence ends and windows of both directions (RST checks)
	Remaining              uint32    // milliseconds until the session expires
}

// syncEvent is one ring entry: a session slot and generation (upsert) or
// an original key (delete).
type syncEvent struct {
	op     SyncOp
	gen    uint32
	idx    uint32
	oa, ob uint64
}

// syncRing is a single-producer single-consumer ring of events. The
// producer is one worker, or whoever holds NAT.mu.
type syncRing struct {
	_    [64]byte
	head atomic.Uint64 // next to read (consumer)
	_    [56]byte
	tail atomic.Uint64 // next to write (producer)
	// seen is the producer's copy of head: it reads the consumer's cache
	// line only when the ring looks full.
	seen uint64
	full atomic.Uint64 // events dropped because the ring was full
	buf  []syncEvent
	mask uint64
}

func newSyncRing(size int) *syncRing {
	n := 1
	for n < size {
		n <<= 1
	}
	return &syncRing{buf: make([]syncEvent, n), mask: uint64(n - 1)}
}

func (q *syncRing) push(e syncEvent) {
	t := q.tail.Load()
	if t-q.seen > q.mask {
		if q.seen = q.head.Load(); t-q.seen > q.mask {
			q.full.Add(1)
			return
		}
	}
	q.buf[t&q.mask] = e
	q.tail.Store(t + 1)
}

// Ring sizes: a worker's state changes, and the creations and deletions
// of the whole table (bursts of new flows).
const (
	WorkerSyncRing = 1 << 14
	SharedSyncRing = 1 << 17
)

// syncState is the NAT's sync bookkeeping.
type syncState struct {
	on       atomic.Bool
	shared   *syncRing // creations and deletions, fed under NAT.mu
	applying bool      // under NAT.mu: Install/Remove run (their changes are not events)
	passive  atomic.Bool
	workers  atomic.Pointer[[]*Worker] // a copy of NAT.workers, replaced when one is added
	// sent[idx] is pass<<32 | generation of the last record made of slot
	// idx: within one pass (SyncNewPass) a session is sent once, however
	// many events it had (a handshake's three are one record). Only the
	// drainer touches it.
	sent []uint64
	pass uint64
	// The engine sleeps between ticks when nothing happens; the first
	// event after that wakes it (one atomic load per event, none per
	// packet).
	sleeping atomic.Bool
	wake     chan struct{}
}

// EnableSync starts recording session events for SyncDrain. Call it before
// the workers start; it cannot be undone.
func (n *NAT) EnableSync() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sync.on.Load() {
		return
	}
	n.sync.shared = newSyncRing(SharedSyncRing)
	n.sync.sent = make([]uint64, n.t.max)
	n.sync.wake = make(chan struct{}, 1)
	n.sync.pass = 1
	for _, w := range n.workers {
		w.syncq.Store(newSyncRing(WorkerSyncRing))
	}
	n.sync.on.Store(true)
}

// SetPassive makes the NAT refuse new translated flows (an HA backup: the
// traffic that reaches it by mistake must not take ports or mappings the
// master hands out); sessions that exist (synced ones) still translate.
func (n *NAT) SetPassive(on bool) { n.sync.passive.Store(on) }

// Passive reports SetPassive's setting.
func (n *NAT) Passive() bool { return n.sync.passive.Load() }

// noteCreate records a new session (caller holds n.mu).
func (n *NAT) noteCreate(idx uint32, gen uint64) {
	if n.sync.on.Load() && !n.sync.applying {
		n.sync.shared.push(syncEvent{op: SyncUpsert, idx: idx, gen: uint32(gen)})
		n.wakeSync()
	}
}

// wakeSync wakes a sleeping engine.
func (n *NAT) wakeSync() {
	if n.sync.sleeping.Load() && n.sync.sleeping.CompareAndSwap(true, false) {
		select {
		case n.sync.wake <- struct{}{}:
		default:
		}
	}
}

// SyncSleep says the engine will wait for SyncWake (or its slow timer)
// before it drains again. It drains once more after calling it, so that an
// event recorded just before is not left waiting.
func (n *NAT) SyncSleep() { n.sync.sleeping.Store(true) }

// SyncWake is signalled by the first event after SyncSleep (nil when sync
// is off).
func (n *NAT) SyncWake() <-chan struct{} { return n.sync.wake }

// noteDelete records a deleted session by its original key (caller holds n.mu).
func (n *NAT) noteDelete(w *words) {
	if n.sync.on.Load() && !n.sync.applying {
		n.sync.shared.push(syncEvent{op: SyncDelete, oa: w.oa, ob: w.ob & keyMask})
		n.wakeSync()
	}
}

// noteChange records a TCP state change a worker made.
func (w *Worker) noteChange(idx uint32, gen uint64) {
	if q := w.syncq.Load(); q != nil {
		q.push(syncEvent{op: SyncUpsert, idx: idx, gen: uint32(gen)})
		w.n.wakeSync()
	}
}

// workerList is the workers made so far (the sync reads their rings
// without taking the table lock).
func (n *NAT) workerList() []*Worker {
	if p := n.sync.workers.Load(); p != nil {
		return *p
	}
	return nil
}

// SyncQueueFull is the number of events lost to full rings.
func (n *NAT) SyncQueueFull() uint64 {
	if !n.sync.on.Load() {
		return 0
	}
	s := n.sync.shared.full.Load()
	for _, w := range n.workerList() {
		if q := w.syncq.Load(); q != nil {
			s += q.full.Load()
		}
	}
	return s
}

// SyncNewPass starts a new pass of SyncDrain: a session whose record was
// handed out in this pass is not handed out again until the next one (it
// is read when drained, so the one record has its latest state). The sync
// engine starts a pass each time it collects events.
func (n *NAT) SyncNewPass() { n.sync.pass++ }

// SyncDrain hands the recorded events to f, at most max of them, oldest
// first per ring (the shared ring first). The record is valid during the
// call only. now is the time Remaining is counted from. One goroutine at a
// time may drain.
func (n *NAT) SyncDrain(max int, now int64, f func(*SyncRecord)) int {
	if !n.sync.on.Load() {
		return 0
	}
	done := n.drainRing(n.sync.shared, max, now, f)
	for _, w := range n.workerList() {
		if done >= max {
			break
		}
		if q := w.syncq.Load(); q != nil {
			done += n.drainRing(q, max-done, now, f)
		}
	}
	return done
}

func (n *NAT) drainRing(q *syncRing, max int, now int64, f func(*SyncRecord)) int {
	var rec SyncRecord
	done := 0
	h, t := q.head.Load(), q.tail.Load()
	for ; h != t && done < max; h++ {
		e := q.buf[h&q.mask]
		switch e.op {
		case SyncDelete:
			rec = SyncRecord{Op: SyncDelete, Proto: uint8(e.ob >> 24), OSrc: uint32(e.oa >> 32), ODst: uint32(e.oa),
				OSport: uint16(e.ob >> 48), ODport: uint16(e.ob >> 32)}
		case SyncUpsert:
			stamp := n.sync.pass<<32 | uint64(e.gen)
			if n.sync.sent[e.idx] == stamp {
				continue // already sent in this pass, as it is now
			}
			if !n.record(e.idx, uint64(e.gen), true, now, &rec) {
				continue
			}
			n.sync.sent[e.idx] = stamp
		}
		f(&rec)
		done++
	}
	q.head.Store(h)
	return done
}

// record fills rec from session idx; with checkGen, only when its
// generation's low 32 bits are gen. False when the slot holds no such
// session.
func (n *NAT) record(idx uint32, gen uint64, checkGen bool, now int64, rec *SyncRecord) bool {
	var w words
	st, ok, _ := n.t.read(idx, &w)
	if !ok || checkGen && uint32(st>>32) != uint32(gen) {
		return false
	}
	s := &n.t.slab[idx]
	rem := s.expires.Load() - now
	if rem <= 0 {
		return false // expired (or being reaped): the deletion follows
	}
	*rec = SyncRecord{Op: SyncUpsert, Proto: w.proto(),
		OSrc: w.oSrc(), ODst: w.oDst(), OSport: w.oSport(), ODport: w.oDport(),
		RSrc: w.rSrc(), RDst: w.rDst(), RSport: w.rSport(), RDport: w.rDport(),
		OutNet: w.outNet(), Flags: w.flags(), State: uint32(st) &^ stLive,
		Remaining: uint32(min(rem/int64(time.Millisecond), 1<<32-1))}
	for i := range rec.TCP {
		rec.TCP[i] = s.tcp[i].Load()
	}
	return true
}

// SyncWalk hands f the live sessions in slots from..from+max-1 (a bulk
// resync or a periodic refresh walks the whole table in such steps). It
// returns where the next step starts, and done when the walk reached the
// end of the used slots. Lock-free.
func (n *NAT) SyncWalk(from uint32, max int, now int64, f func(*SyncRecord)) (next uint32, done bool) {
	hwm := n.hwm()
	var rec SyncRecord
	i := from
	for ; i < hwm && int(i-from) < max; i++ {
		if n.record(i, 0, false, now, &rec) {
			f(&rec)
		}
	}
	return i, i >= hwm
}

// InstallResult says what Install did.
type InstallResult uint8

const (
	Installed InstallResult = iota // a new session
	Updated                        // an existing session brought up to date
	Replaced                       // a session that clashed with it was removed first
	Refused                        // no room (table or index full), or a malformed record
)

// Install creates or updates the session rec describes (from the peer),
// and reserves its SNAT port. Sessions that clash with it (the same
// original or reply tuple with other contents) are removed first: the
// sender is the master of the flow. now is the time Remaining counts from.
func (n *NAT) Install(rec *SyncRecord, now int64) InstallResult {
	if rec.Op != SyncUpsert || rec.Proto == 0 {
		return Refused
	}
	oa, ob := keyWords(rec.OSrc, rec.ODst, rec.OSport, rec.ODport, rec.Proto)
	ra, rb := keyWords(rec.RSrc, rec.RDst, rec.RSport, rec.RDport, rec.Proto)
	ob |= uint64(rec.OutNet)
	rb |= uint64(rec.Flags)
	want := words{oa, ob, ra, rb}
	exp := now + int64(rec.Remaining)*int64(time.Millisecond)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sync.applying = true
	defer func() { n.sync.applying = false }()
	t := n.t
	var h hit
	res := Installed
	if t.lookup(oa, ob&keyMask, 1<<kOrig, &h) {
		if h.w == want {
			n.apply(h.idx, h.st, rec, exp)
			return Updated
		}
		n.destroy(h.idx)
		res = Replaced
	}
	if t.lookup(ra, rb&keyMask, 1<<kOrig|1<<kReply, &h) {
		n.destroy(h.idx)
		res = Replaced
	}
	if ha, hb := want.key(kHair); rec.Flags&fHairpin != 0 && t.lookup(ha, hb, 1<<kHair, &h) {
		n.destroy(h.idx)
		res = Replaced
	}
	nkeys := 2
	if rec.Flags&fMapped != 0 {
		nkeys += 2
	}
	if rec.Flags&fHairpin != 0 {
		nkeys++
	}
	if uint64(t.keys+nkeys) > (t.mask+1)*3/4 {
		return Refused
	}
	idx, ok := t.alloc()
	if !ok {
		return Refused
	}
	if rec.Flags&fMapped != 0 {
		n.pool(rec.RDst, rec.Proto).reserve(rec.RDport)
	}
	s := &t.slab[idx]
	s.oa.Store(oa)
	s.ob.Store(ob)
	s.ra.Store(ra)
	s.rb.Store(rb)
	s.pkts.Store(0)
	s.bytes.Store(0)
	gen := s.state.Load()>>32 + 1
	st := gen<<32 | stLive
	s.state.Store(st)
	t.live.Add(1)
	for typ := uint8(0); typ <= kMapExt; typ++ {
		switch typ {
		case kHair:
			if rec.Flags&fHairpin == 0 {
				continue
			}
		case kMapInt, kMapExt:
			if rec.Flags&fMapped == 0 {
				continue
			}
		}
		a, b := want.key(typ)
		t.insert(a, b, idx, typ)
	}
	n.apply(idx, st, rec, exp)
	n.lastNow.Store(now)
	return res
}

// apply sets a live session's state, TCP tracking and expiry from rec.
func (n *NAT) apply(idx uint32, st uint64, rec *SyncRecord, exp int64) {
	s := &n.t.slab[idx]
	for i := range s.tcp {
		s.tcp[i].Store(rec.TCP[i])
	}
	s.state.Store(st&^0xffffffff | uint64(rec.State&^stLive) | stLive)
	s.expires.Store(exp)
}

// Remove deletes the session with rec's original tuple; false when there
// is none.
func (n *NAT) Remove(rec *SyncRecord) bool {
	a, b := keyWords(rec.OSrc, rec.ODst, rec.OSport, rec.ODport, rec.Proto)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sync.applying = true
	defer func() { n.sync.applying = false }()
	var h hit
	if !n.t.lookup(a, b, 1<<kOrig, &h) {
		return false
	}
	n.destroy(h.idx)
	return true
}

// Lookup reports whether a session with this original tuple exists
// (tests and tools compare tables with it).
func (n *NAT) Lookup(rec *SyncRecord) bool {
	a, b := keyWords(rec.OSrc, rec.ODst, rec.OSport, rec.ODport, rec.Proto)
	var h hit
	return n.t.lookup(a, b, 1<<kOrig, &h)
}
