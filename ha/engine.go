package ha

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"vrouter/internal/clock"
	"vrouter/internal/counter"
	"vrouter/nat"
)

// Table is the conntrack table the engine syncs (*nat.NAT).
type Table interface {
	SyncNewPass()
	SyncDrain(max int, now int64, f func(*nat.SyncRecord)) int
	SyncWalk(from uint32, max int, now int64, f func(*nat.SyncRecord)) (next uint32, done bool)
	Install(r *nat.SyncRecord, now int64) nat.InstallResult
	Remove(r *nat.SyncRecord) bool
	SyncQueueFull() uint64
	SyncSleep()
	SyncWake() <-chan struct{}
	SyncSweepBegin() uint32
	SyncSweep(gen uint32, all bool) int
}

// Conn carries datagrams to and from the peer (a UDP socket, or an
// in-memory link in tests).
type Conn interface {
	// Send sends one datagram to the peer.
	Send(b []byte) error
	// Recv blocks for the next datagram; fromPeer says whether it came
	// from the peer's address. It fails once the Conn is closed.
	Recv(b []byte) (n int, fromPeer bool, err error)
	Close() error
}

// Options tune the engine; zero values take the defaults.
type Options struct {
	Key    []byte // HMAC-SHA256 key; nil: datagrams are not authenticated
	NetSig uint32 // signature of the router's networks (both must agree)
	Clock  clock.Clock
	Logger *slog.Logger
	// Tick is how often events are collected and sent while there are
	// some; after IdleTicks ticks without any, the engine sleeps until the
	// next event wakes it (or IdleTick passes: hellos, retransmissions).
	Tick, IdleTick time.Duration
	IdleTicks      int
	// RTO is how long a datagram waits for its acknowledgement before it is
	// sent again.
	RTO time.Duration
	// Hello is the keepalive interval; a peer silent for PeerTimeout is
	// taken as gone (events are not sent to it; it resyncs when back).
	Hello, PeerTimeout time.Duration
	// GiveUp is how long the oldest unacknowledged datagram may wait before
	// the window is given up (counted lost) and a new sequence starts.
	GiveUp time.Duration
	// Refresh is the period of the full walk that keeps the peer's copies
	// of long-lived sessions from expiring; 0: 20 s.
	Refresh time.Duration
	// Window is the number of datagrams in flight at most.
	Window int
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Tick, 2*time.Millisecond)
	def(&o.IdleTick, 20*time.Millisecond)
	if o.IdleTicks <= 0 {
		o.IdleTicks = 10
	}
	def(&o.RTO, 40*time.Millisecond)
	def(&o.Hello, 100*time.Millisecond)
	def(&o.PeerTimeout, time.Second)
	def(&o.GiveUp, 3*time.Second)
	def(&o.Refresh, 20*time.Second)
	if o.Window <= 0 {
		o.Window = 1024
	}
	if o.Window > 4096 {
		o.Window = 4096
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// outDgram is a data datagram in flight: its records and when it was sent.
type outDgram struct {
	seq     uint32
	used    bool
	acked   bool
	n       int // records
	sess    int // of which sessions (not control records)
	tries   int // transmissions
	first   time.Time
	sent    time.Time
	records [MaxRecords * RecordLen]byte
}

// Engine syncs one conntrack table with the peer. Its loop goroutine owns
// the protocol state; counters and the master flag are atomic.
type Engine struct {
	o    Options
	t    Table
	conn Conn

	master       atomic.Bool
	cnt          [numCounters]atomic.Uint64
	unacked      atomic.Int64
	peerUp       atomic.Bool
	peerMast     atomic.Bool
	peerSeen     atomic.Int64 // unix nanoseconds of the last valid datagram
	idNow        atomic.Uint32
	resyncWanted atomic.Bool // SetMaster(false): ask the peer for a resync
	handover     atomic.Bool // SetMaster(false): send the events queued while master first
	sweeping     atomic.Bool // the peer's walk is being received (show ha: resync in progress)

	rx   chan []byte
	free chan []byte // receive buffers handed back by the loop
	stop chan struct{}
	wg   sync.WaitGroup

	// Loop-owned from here on.
	id        uint32 // our sender id (a new one starts a new sequence)
	next      uint32 // number of the next data datagram
	base      uint32 // oldest unacknowledged
	win       []outDgram
	cur       outDgram // being filled
	lastHeard time.Time
	lastHello time.Time
	progress  time.Time // the last acknowledgement that moved base (or when the window was empty)
	queueFull uint64
	missed    bool // events were drained while the peer was gone: it needs a walk when back
	// walk: a resync or refresh in progress. Each walk is numbered and
	// framed by a begin and an end record, so that the peer can remove
	// what the walk did not refresh.
	walking    bool
	walkPos    uint32
	walkID     uint32
	walkBegun  bool
	lastWalk   time.Time
	refreshPos uint32
	// receiver
	peerID   uint32
	known    bool
	expected uint32
	held     map[uint32][]byte
	ackDue   bool
	// sweep: the peer's walk being received and the table's generation
	// for it.
	sweepWalk, sweepGen uint32
	out                 [MaxDatagram]byte
}

// New makes an engine for table t over conn; Start runs it.
func New(t Table, conn Conn, o Options) *Engine {
	o.defaults()
	e := &Engine{o: o, t: t, conn: conn, rx: make(chan []byte, 4096), free: make(chan []byte, 4096), stop: make(chan struct{}),
		win: make([]outDgram, o.Window), held: map[uint32][]byte{}}
	e.newSequence()
	return e
}

// newSequence takes a new sender id and starts numbering again: the peer
// sees a new sequence and asks for a resync.
func (e *Engine) newSequence() {
	var b [4]byte
	for e.id == 0 || e.id == e.idNow.Load() {
		rand.Read(b[:])
		e.id = binary.BigEndian.Uint32(b[:])
	}
	e.idNow.Store(e.id)
	e.next, e.base = 1, 1
	for i := range e.win {
		e.win[i].used = false
	}
	e.cur.n, e.cur.sess = 0, 0
	e.unacked.Store(0)
}

// SetMaster says whether this router is the master: only the master sends
// its sessions (and serves resyncs). A change is counted.
func (e *Engine) SetMaster(on bool) {
	if e.master.Swap(on) != on {
		e.cnt[cTransitions].Add(1)
		// A master that becomes backup takes the new master's table as
		// the truth: it asks for it all, and the walk's end removes what
		// the master does not have (after a split brain, the flows it
		// made that the master refused).
		e.resyncWanted.Store(!on)
		// Sessions made in its last moments as master may still have
		// their events queued: they go to the peer before the resync
		// request, or the new master would not have them and the resync
		// would sweep them here too.
		e.handover.Store(!on)
	}
}

// Start runs the engine until Stop.
func (e *Engine) Start() {
	e.wg.Add(2)
	go func() { defer e.wg.Done(); e.readLoop() }()
	go func() { defer e.wg.Done(); e.loop() }()
}

// Stop ends the engine and closes its Conn.
func (e *Engine) Stop() {
	close(e.stop)
	e.conn.Close()
	e.wg.Wait()
}

func (e *Engine) readLoop() {
	for {
		var b []byte
		select {
		case b = <-e.free:
		default:
			b = make([]byte, MaxDatagram+64)
		}
		b = b[:cap(b)]
		n, fromPeer, err := e.conn.Recv(b)
		if err != nil {
			select {
			case <-e.stop:
				return
			default:
			}
			if errors.Is(err, errClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !fromPeer {
			e.cnt[DropWrongPeer].Add(1)
			continue
		}
		select {
		case e.rx <- b[:n]:
		case <-e.stop:
			return
		}
	}
}

func (e *Engine) loop() {
	tk := time.NewTicker(e.o.Tick)
	defer tk.Stop()
	idle, asleep := 0, false
	awake := func() {
		if asleep {
			asleep, idle = false, 0
			tk.Reset(e.o.Tick)
		}
	}
	for {
		select {
		case <-e.stop:
			return
		case <-e.t.SyncWake():
			awake()
			e.tick(time.Now())
		case b := <-e.rx:
			e.receive(b)
			e.recycle(b)
			for more := true; more; {
				select {
				case b = <-e.rx:
					e.receive(b)
					e.recycle(b)
				default:
					more = false
				}
			}
			// Acknowledge a burst at once (the ticker may be slow).
			if e.ackDue {
				e.sendCtl(msgAck)
				e.ackDue = false
			}
		case <-tk.C:
			if e.tick(time.Now()) {
				awake()
				idle = 0
			} else if idle++; !asleep && idle >= e.o.IdleTicks {
				// Nothing to do for a while: tick slowly (a fast
				// ticker costs CPU time even when idle) until an
				// event comes.
				asleep = true
				e.t.SyncSleep()
				tk.Reset(e.o.IdleTick)
				e.tick(time.Now())
			}
		}
	}
}

// recycle hands a receive buffer back to the reader (receive keeps a copy
// of what it holds).
func (e *Engine) recycle(b []byte) {
	select {
	case e.free <- b:
	default:
	}
}

// tick does the periodic work: collect events, walks, retransmissions,
// hellos and acknowledgements. It reports whether there was work (events,
// a walk, datagrams in flight).
func (e *Engine) tick(now time.Time) (busy bool) {
	peerUp := !e.lastHeard.IsZero() && now.Sub(e.lastHeard) < e.o.PeerTimeout
	e.peerUp.Store(peerUp)
	master := e.master.Load()
	nowNs := e.o.Clock.Now()
	if qf := e.t.SyncQueueFull(); qf != e.queueFull {
		// Events were lost: send the whole table again.
		e.queueFull = qf
		if master && peerUp {
			e.startWalk() // a walk under way starts again: it may have missed them too
		}
	}
	handover := !master && e.handover.Load()
	if e.resyncWanted.Load() && !handover && e.known && peerUp && e.peerMast.Load() && !master && e.room() {
		e.resyncWanted.Store(false)
		e.requestResync(now)
	}
	send := master && peerUp
	sendEvents := (master || handover) && peerUp
	e.t.SyncNewPass()
	// Events first (they are the newest news), as long as the window has room.
	drained := false
	for e.room() {
		n := e.t.SyncDrain(MaxRecords, nowNs, func(r *nat.SyncRecord) {
			if sendEvents {
				e.add(r, now)
			}
		})
		if n == 0 {
			drained = true
			break
		}
		busy = true
		if master && !peerUp {
			e.missed = true
		}
	}
	if handover && (drained || !peerUp) {
		// All sent (what a backup records from now on is not news for
		// the master), or nobody to send to.
		e.handover.Store(false)
	}
	if send && e.missed {
		// The peer is back from a silence shorter than GiveUp (a longer
		// one starts a new sequence and a resync): what it missed
		// meanwhile comes with a walk, whose end also removes what was
		// deleted meanwhile.
		e.missed = false
		e.startWalk()
		e.cnt[cRefreshes].Add(1)
	}
	if send && e.walking {
		for e.room() && e.walking {
			// Each used slot gives at most one record: walk no more slots
			// than the window has room for, less the begin and end.
			step := min(4096, (len(e.win)-1-int(e.next-e.base))*MaxRecords-e.cur.n) - 2
			if step <= 0 {
				break
			}
			if !e.walkBegun {
				e.walkBegun = true
				e.add(&nat.SyncRecord{Op: opWalkBegin, State: e.walkID}, now)
			}
			var done bool
			e.walkPos, done = e.t.SyncWalk(e.walkPos, step, nowNs, func(r *nat.SyncRecord) { e.add(r, now) })
			if done {
				e.walking = false
				e.lastWalk = now
				e.add(&nat.SyncRecord{Op: opWalkEnd, State: e.walkID}, now)
			}
		}
	} else if !send {
		e.walking = false
	}
	if send && !e.walking && now.Sub(e.lastWalk) >= e.o.Refresh {
		e.startWalk()
		e.cnt[cRefreshes].Add(1)
	}
	e.flush(now)
	e.retransmit(now)
	if now.Sub(e.lastHello) >= e.o.Hello {
		e.lastHello = now
		e.sendCtl(msgHello)
		e.ackDue = false
	}
	if e.ackDue {
		e.sendCtl(msgAck)
		e.ackDue = false
	}
	return busy || e.walking || e.base != e.next
}

// startWalk starts a walk of the whole table (from its first slot, with a
// new number).
func (e *Engine) startWalk() {
	e.walking, e.walkPos, e.walkBegun = true, 0, false
	e.walkID++
}

// room reports whether another datagram fits in the window.
func (e *Engine) room() bool { return int(e.next-e.base) < len(e.win)-1 }

// add appends a record to the datagram being filled, sending it when full.
func (e *Engine) add(r *nat.SyncRecord, now time.Time) {
	putRecord(e.cur.records[e.cur.n*RecordLen:], r)
	e.cur.n++
	if r.Op == nat.SyncUpsert || r.Op == nat.SyncDelete {
		e.cur.sess++
	}
	if e.cur.n == MaxRecords {
		e.flush(now)
	}
}

// flush sends the datagram being filled.
func (e *Engine) flush(now time.Time) {
	if e.cur.n == 0 {
		return
	}
	if e.base == e.next {
		e.progress = now
	}
	d := &e.win[e.next%uint32(len(e.win))]
	d.seq, d.used, d.acked, d.n, d.sess, d.tries, d.first, d.sent = e.next, true, false, e.cur.n, e.cur.sess, 1, now, now
	copy(d.records[:], e.cur.records[:e.cur.n*RecordLen])
	e.next++
	e.cur.n, e.cur.sess = 0, 0
	e.unacked.Store(int64(e.next - e.base))
	e.cnt[cRecordsSent].Add(uint64(d.sess))
	e.cnt[cDatagramsSent].Add(1)
	e.transmit(d)
}

// ackFields fills the acknowledgement of the peer's stream.
func (e *Engine) ackFields(h *header) {
	if !e.known {
		return
	}
	h.flags |= flagAck
	h.ack, h.ackedID = e.expected, e.peerID
	if len(e.held) == 0 {
		return
	}
	for i := uint32(0); i < 64; i++ {
		if _, ok := e.held[e.expected+1+i]; ok {
			h.sack |= 1 << i
		}
	}
}

func (e *Engine) header(typ uint8) header {
	h := header{typ: typ, id: e.id, netSig: e.o.NetSig, seq: e.next, base: e.base}
	if e.master.Load() {
		h.flags |= flagMaster
	}
	e.ackFields(&h)
	return h
}

func (e *Engine) transmit(d *outDgram) {
	h := e.header(msgData)
	h.seq, h.count = d.seq, uint16(d.n)
	putHeader(e.out[:], &h)
	n := HeaderLen + copy(e.out[HeaderLen:], d.records[:d.n*RecordLen])
	e.send(e.out[:n])
	e.ackDue = false
}

func (e *Engine) sendCtl(typ uint8) {
	h := e.header(typ)
	putHeader(e.out[:], &h)
	e.send(e.out[:HeaderLen])
}

func (e *Engine) send(b []byte) {
	if err := e.conn.Send(seal(b, e.o.Key)); err != nil {
		e.cnt[cSendErrors].Add(1)
	}
}

// retransmit sends again what waited RTO for its acknowledgement, and
// gives the window up when the peer stays silent.
func (e *Engine) retransmit(now time.Time) {
	for s := e.base; s != e.next; s++ {
		d := &e.win[s%uint32(len(e.win))]
		if !d.used || d.acked {
			continue
		}
		if now.Sub(d.first) > e.o.GiveUp && now.Sub(e.progress) > e.o.GiveUp {
			// Nothing acknowledged for GiveUp: the peer is gone (a
			// slow peer that acknowledges something keeps its stream).
			e.giveUp()
			return
		}
		// While the peer is silent nothing is sent again (it resyncs
		// when it comes back); otherwise the timeout doubles with each
		// try, up to 16 times RTO.
		if e.peerUp.Load() && now.Sub(d.sent) >= e.o.RTO<<min(d.tries-1, 4) {
			d.sent = now
			d.tries++
			e.cnt[cRetransmits].Add(1)
			e.transmit(d)
		}
	}
}

// giveUp counts what is in flight as lost and starts a new sequence (the
// peer, when it hears again, asks for a resync).
func (e *Engine) giveUp() {
	var lost uint64
	for s := e.base; s != e.next; s++ {
		if d := &e.win[s%uint32(len(e.win))]; d.used && !d.acked {
			lost += uint64(d.sess)
		}
	}
	e.cnt[cRecordsLost].Add(lost)
	e.o.Logger.Warn("ha: peer does not acknowledge; sync restarts with a resync", "lost", lost)
	e.newSequence()
	if !e.master.Load() {
		// The peer takes our new sequence for a new incarnation and drops
		// what it had in flight to us (see skipTo): ask for it all.
		e.resyncWanted.Store(true)
	}
}

// receive handles one datagram from the peer's address.
func (e *Engine) receive(b []byte) {
	var h header
	recs, why := parse(b, e.o.Key, &h)
	if why != 0 {
		e.cnt[why].Add(1)
		return
	}
	if h.netSig != e.o.NetSig {
		e.cnt[DropWrongNet].Add(1)
		return
	}
	if h.id == e.id {
		e.cnt[DropOwn].Add(1)
		return
	}
	now := time.Now()
	if !e.lastHeard.IsZero() && now.Sub(e.lastHeard) >= e.o.PeerTimeout && h.id == e.peerID {
		e.peerBack(now)
	}
	e.lastHeard = now
	e.peerSeen.Store(now.UnixNano())
	e.peerMast.Store(h.flags&flagMaster != 0)
	e.cnt[cDatagramsReceived].Add(1)
	if h.flags&flagAck != 0 && h.ackedID == e.id {
		e.acked(h.ack, h.sack)
	}
	if !e.known || h.id != e.peerID {
		// A new peer, or the peer restarted or gave up: take its stream
		// from its oldest unacknowledged datagram and ask for everything.
		if e.known {
			e.o.Logger.Info("ha: peer started a new sync sequence; asking for a resync")
		}
		e.known, e.peerID, e.expected = true, h.id, h.base
		clear(e.held)
		e.sweeping.Store(false)
		// What we sent its previous incarnation is moot.
		e.base = e.next
		for i := range e.win {
			e.win[i].used = false
		}
		e.unacked.Store(0)
		if h.flags&flagMaster != 0 {
			// Only a master has sessions to give.
			e.requestResync(now)
		}
	}
	if int32(h.base-e.expected) > 0 {
		e.skipTo(h.base)
	}
	if h.typ != msgData {
		return
	}
	e.ackDue = true
	d := h.seq - e.expected
	switch {
	case int32(d) < 0:
		e.cnt[cDuplicates].Add(1)
	case d == 0:
		e.apply(recs)
		e.expected++
		for {
			r, ok := e.held[e.expected]
			if !ok {
				break
			}
			delete(e.held, e.expected)
			e.apply(r)
			e.expected++
		}
	case d < uint32(len(e.win)):
		if _, dup := e.held[h.seq]; dup {
			e.cnt[cDuplicates].Add(1)
		} else {
			e.held[h.seq] = append([]byte(nil), recs...)
			e.cnt[cOutOfOrder].Add(1)
		}
	default:
		// Beyond any window: the sequence is lost.
		e.expected = h.seq + 1
		clear(e.held)
		e.apply(recs)
		e.requestResync(now)
	}
}

// skipTo follows the peer's stream past datagrams it no longer sends:
// its oldest unacknowledged datagram (base) is beyond the one we wait
// for. The peer moves its base past what we did not acknowledge only when
// it took us for a new incarnation (we restarted, or gave our own sequence
// up) and dropped what it had sent to the old one; both times we asked for
// a resync, whose walk follows the drop in its stream. Waiting for the
// dropped datagrams instead would stall the stream (and the resync in it)
// until the peer gave its window up. What is held of the skipped part is
// applied in order: it is the peer's news all the same.
func (e *Engine) skipTo(base uint32) {
	for ; e.expected != base; e.expected++ {
		if r, ok := e.held[e.expected]; ok {
			delete(e.held, e.expected)
			e.apply(r)
		}
	}
	for {
		r, ok := e.held[e.expected]
		if !ok {
			break
		}
		delete(e.held, e.expected)
		e.apply(r)
		e.expected++
	}
	e.ackDue = true
}

// peerBack restarts the retransmission of what is in flight when the peer
// is heard again after PeerTimeout of silence (a cut link, a peer that
// stalled): nothing was sent again meanwhile and the timeouts had grown,
// so it all goes again at the next tick with the first timeout, and the
// peer gets GiveUp from now to acknowledge it.
func (e *Engine) peerBack(now time.Time) {
	for s := e.base; s != e.next; s++ {
		if d := &e.win[s%uint32(len(e.win))]; d.used && !d.acked {
			d.tries, d.sent, d.first = 1, time.Time{}, now
		}
	}
	e.progress = now
}

// requestResync asks the peer for its whole table, in our numbered stream.
func (e *Engine) requestResync(now time.Time) {
	e.cnt[cResyncsRequested].Add(1)
	r := nat.SyncRecord{Op: opResync}
	if !e.room() {
		e.giveUp()
		e.resyncWanted.Store(false) // asked right now
	}
	e.add(&r, now)
	e.flush(now)
}

// acked marks the datagrams the peer acknowledged.
func (e *Engine) acked(ack uint32, sack uint64) {
	if int32(ack-e.base) < 0 || int32(e.next-ack) < 0 {
		return // outside what is in flight
	}
	mark := func(s uint32) {
		d := &e.win[s%uint32(len(e.win))]
		if d.used && !d.acked && d.seq == s {
			d.acked = true
			e.cnt[cRecordsAcked].Add(uint64(d.sess))
		}
	}
	for s := e.base; s != ack; s++ {
		mark(s)
	}
	for i := uint32(0); i < 64; i++ {
		if sack&(1<<i) != 0 {
			if s := ack + 1 + i; int32(e.next-s) > 0 {
				mark(s)
			}
		}
	}
	for e.base != e.next && e.win[e.base%uint32(len(e.win))].acked {
		e.win[e.base%uint32(len(e.win))].used = false
		e.base++
		e.progress = time.Now()
	}
	e.unacked.Store(int64(e.next - e.base))
}

// apply installs, updates and removes the sessions of one datagram.
func (e *Engine) apply(recs []byte) {
	now := e.o.Clock.Now()
	var r nat.SyncRecord
	for i := 0; i+RecordLen <= len(recs); i += RecordLen {
		getRecord(recs[i:], &r)
		switch r.Op {
		case opResync:
			if e.master.Load() {
				e.startWalk()
				e.cnt[cResyncsServed].Add(1)
			}
			continue
		case opWalkBegin:
			e.sweepWalk, e.sweepGen = r.State, e.t.SyncSweepBegin()
			e.sweeping.Store(true)
			continue
		case opWalkEnd:
			if e.sweeping.Load() && r.State == e.sweepWalk {
				e.sweeping.Store(false)
				e.cnt[cSwept].Add(uint64(e.t.SyncSweep(e.sweepGen, !e.master.Load())))
			}
			continue
		case nat.SyncDelete:
			if e.t.Remove(&r) {
				e.cnt[cRemoved].Add(1)
			}
		case nat.SyncUpsert:
			switch e.t.Install(&r, now) {
			case nat.Installed, nat.Replaced:
				e.cnt[cInstalled].Add(1)
			case nat.Updated:
				e.cnt[cUpdated].Add(1)
			default:
				e.cnt[cRefused].Add(1)
			}
		default:
			continue
		}
		e.cnt[cRecordsReceived].Add(1)
	}
}

// Stats is what show ha reports of the sync.
type Stats struct {
	Master                          bool
	PeerUp, PeerMaster              bool
	PeerSeen                        time.Time // zero: never heard
	SessionsSent, SessionsReceived  uint64
	SessionsAcked, SessionsLost     uint64
	Retransmits                     uint64
	ResyncsRequested, ResyncsServed uint64
	Refused                         uint64 // records not installed (table full, or a clash with this master's own sessions)
	Swept                           uint64 // sessions removed at the end of the peer's walks
	Resyncing                       bool   // the peer's walk of its table is being received
	Unacked                         int64
}

// Stats returns the engine's state and main counters.
func (e *Engine) Stats() Stats {
	s := Stats{Master: e.master.Load(), PeerUp: e.peerUp.Load(), PeerMaster: e.peerMast.Load(),
		SessionsSent: e.cnt[cRecordsSent].Load(), SessionsReceived: e.cnt[cRecordsReceived].Load(),
		SessionsAcked: e.cnt[cRecordsAcked].Load(), SessionsLost: e.cnt[cRecordsLost].Load(),
		Retransmits: e.cnt[cRetransmits].Load(), ResyncsRequested: e.cnt[cResyncsRequested].Load(),
		ResyncsServed: e.cnt[cResyncsServed].Load(), Refused: e.cnt[cRefused].Load(), Swept: e.cnt[cSwept].Load(), Resyncing: e.sweeping.Load(),
		Unacked: e.unacked.Load()}
	if ns := e.peerSeen.Load(); ns != 0 {
		s.PeerSeen = time.Unix(0, ns)
	}
	return s
}

// Counters returns every counter in Descs order.
func (e *Engine) Counters() []counter.Value {
	out := make([]counter.Value, 0, numCounters+2)
	for i := int(DropNone) + 1; i < int(numCounters); i++ {
		out = append(out, counter.Value{Desc: descs[i], Value: e.cnt[i].Load()})
	}
	var m uint64
	if e.master.Load() {
		m = 1
	}
	return append(out, counter.Value{Desc: descQueueFull, Value: e.t.SyncQueueFull()},
		counter.Value{Desc: descUnacked, Value: uint64(e.unacked.Load())},
		counter.Value{Desc: descMaster, Value: m})
}

// errClosed is what a closed Conn returns.
var errClosed = errors.New("ha: connection closed")
