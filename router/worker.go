package router

import (
	"errors"
	"sync/atomic"
	"time"

	"vrouter/filter"
	"vrouter/nat"
	"vrouter/packet"
	"vrouter/router/port"
)

const scratchBufs = 128

// worker runs batches to completion. Each receive goroutine has its own;
// the control worker (id -1) serves timers and the control plane under
// Router.ctlMu.
type worker struct {
	r    *Router
	id   int // port index (-1: control worker)
	q    int // queue of the port this worker reads (port.Multi)
	rx   *port.Batch
	snap *snapshot
	now  int64

	// counters: plain arrays during a batch, added to the shared atomics
	// once per batch (end).
	drops    [NumDropReasons]uint64
	cnt      [NumCounters]uint64
	sdrops   [NumDropReasons]atomic.Uint64
	scnt     [NumCounters]atomic.Uint64
	portDrop []uint64

	tx [][][]byte // per egress port, frames to write at the end of the batch
	// txMeta holds the offload metadata of the frames in tx that have some,
	// per port, with their index in tx; flushTx expands it for the port.
	// Plain frames pay nothing for it.
	txMeta  [][]txMeta
	txDense []packet.VnetHdr // flushTx's expansion (reused)
	gro     [][]byte         // super-frames being built (gro.go)
	scratch [][]byte
	nscr    int

	tokens     int64 // ICMP error tokens (scaled by 1e9)
	lastRefill int64

	// set around arp.Cache.Update so the pre-bound flushFn knows where to send.
	flushNet *network
	flushMAC packet.MAC
	flushFn  func([]byte)

	ipID uint16

	tracing bool      // tracing armed at the start of this batch
	tp      *tracePkt // the packet being traced, nil when not
	tpBuf   tracePkt

	capFrames [][]byte

	linkCnt []linkCount // per link (snapshot.links), this batch

	nat        *nat.Worker
	touched    uint32 // what prefetchBatch read (kept so that its loads are)
	noPrefetch bool   // BenchmarkPipelineSNAT's comparison only

	hw hostWork // host interfaces (hostif.go)
	// filter: this worker's counter block for the snapshot's filter
	// rulesets (made when a batch first runs on a new filterState), and
	// what filterIn learnt of the packet (read by filterOut).
	fc      *filter.Counters
	fcState *filterState
	fst     nat.FlowState
}

// newWorker makes the worker of queue q of port id (-1: the control
// worker, used by timers and the control plane).
func (r *Router) newWorker(id, q int) *worker {
	w := &worker{r: r, id: id, q: q, rx: port.NewBatch(r.opts.BatchSize)}
	w.growPorts(len(r.ports))
	mem := make([]byte, scratchBufs*port.SlotSize)
	for i := 0; i < scratchBufs; i++ {
		w.scratch = append(w.scratch, mem[i*port.SlotSize:(i+1)*port.SlotSize:(i+1)*port.SlotSize])
	}
	w.flushFn = w.flushQueued
	w.nat = r.NAT.NewWorker()
	w.ipID = uint16(id*7919 + q*104729)
	return w
}

// run is the receive loop of one port. A failing port (a TAP whose VM
// side went away) is retried with a back-off and logged once per minute.
func (w *worker) run(p *portState) {
	var lastLog time.Time
	backoff := 10 * time.Millisecond
	rxq := p.queues[w.q]
	for {
		n, err := rxq.ReadBatch(w.rx)
		if err != nil {
			if errors.Is(err, port.ErrClosed) || w.r.stopped.Load() {
				return
			}
			if time.Since(lastLog) > time.Minute {
				w.r.log.Warn("port read failed; retrying", "port", p.name, "err", err)
				lastLog = time.Now()
			}
			select {
			case <-w.r.stop:
				return
			case <-time.After(backoff):
			}
			if backoff < time.Second {
				backoff *= 2
			}
			continue
		}
		backoff = 10 * time.Millisecond
		if n > 0 {
			w.processBatch(p, w.rx)
		}
	}
}

// growPorts sizes the per-port arrays for n ports (after a reload added some).
func (w *worker) growPorts(n int) {
	for len(w.tx) < n {
		w.tx = append(w.tx, make([][]byte, 0, 4*w.r.opts.BatchSize))
		w.txMeta = append(w.txMeta, nil)
		w.portDrop = append(w.portDrop, 0)
	}
}

// begin loads the snapshot and the time for a batch.
func (w *worker) begin() {
	w.snap = w.r.snap.Load()
	if len(w.tx) < len(w.snap.ports) {
		w.growPorts(len(w.snap.ports))
	}
	for len(w.linkCnt) < len(w.snap.links) {
		w.linkCnt = append(w.linkCnt, linkCount{})
	}
	w.nat.Use(w.snap.nat)
	if fs := w.snap.filters; fs != w.fcState {
		w.fc, w.fcState = fs.block(), fs
	}
	w.now = w.r.clock.Now()
	w.nscr = 0
	w.refillTokens()
	w.tracing = w.r.trace.armed.Load()
}

// end writes the pending frames and publishes the counters.
func (w *worker) end() {
	w.flushTx()
	w.fc.Flush()
	for i := range w.drops {
		if v := w.drops[i]; v != 0 {
			w.sdrops[i].Add(v)
			w.drops[i] = 0
		}
	}
	for i := range w.cnt {
		if v := w.cnt[i]; v != 0 {
			w.scnt[i].Add(v)
			w.cnt[i] = 0
		}
	}
	for i := range w.snap.links {
		c := &w.linkCnt[i]
		if c.rxPackets|c.txPackets != 0 {
			lc := w.snap.links[i]
			lc.rxPackets.Add(c.rxPackets)
			lc.rxBytes.Add(c.rxBytes)
			lc.txPackets.Add(c.txPackets)
			lc.txBytes.Add(c.txBytes)
			*c = linkCount{}
		}
	}
	for i, v := range w.portDrop {
		if v != 0 {
			w.snap.ports[i].drops.Add(v)
			w.portDrop[i] = 0
		}
	}
}

// processBatch runs one received batch through the pipeline.
func (w *worker) processBatch(p *portState, b *port.Batch) {
	w.begin()
	if p.capture.Load() != nil {
		w.captureRx(p, b)
	}
	if w.snap.natOn && b.N > 1 && p.host == nil && !w.noPrefetch {
		w.prefetchBatch(b)
	}
	var bytes uint64
	for i := 0; i < b.N; i++ {
		bytes += uint64(b.Len[i])
		if w.tracing {
			w.startTrace(p, b.Len[i])
		}
		var m *packet.VnetHdr
		if b.HasMeta {
			if mt := &b.Meta[i]; mt.Flags|mt.GSOType != 0 {
				m = mt // a super-frame or a partial checksum (DataValid alone needs nothing)
			}
		}
		w.frame(p, b.Bufs[i], b.Off[i], b.Len[i], m)
		if w.snap.natOn {
			if w.nat.Unconfirmed() {
				w.unconfirmed()
			}
			if w.nat.HasReleased() {
				w.drainReleased()
			}
		}
		if w.tp != nil {
			w.r.trace.store(w.tp)
			w.tp = nil
		}
	}
	p.rxPackets.Add(uint64(b.N))
	p.rxBytes.Add(bytes)
	w.cnt[CntRxFrames] += uint64(b.N)
	w.end()
}

// unconfirmed settles a session a NAT stage made for a first packet that
// did not leave the router: with filters it is deleted, so that the flow's
// next packet is classified again instead of passing as established. (Only
// the NAT stages leave a session unconfirmed; Reset forgets it with the
// next packet.)
func (w *worker) unconfirmed() {
	if w.snap.filterOn {
		w.nat.Abort()
		return
	}
	w.nat.Confirm()
}

// captureRx hands the received frames to the port's capture (before the
// pipeline rewrites them in place).
func (w *worker) captureRx(p *portState, b *port.Batch) {
	frames := w.capFrames[:0]
	for i := 0; i < b.N; i++ {
		frames = append(frames, b.Frame(i))
	}
	p.captureFrames(frames)
	w.capFrames = frames[:0]
}

func (w *worker) drop(r DropReason) {
	w.drops[r]++
	w.trDrop(r)
}

// startTrace starts a trace record for the next packet if any are left.
func (w *worker) startTrace(p *portState, n int) {
	seq, ok := w.r.trace.take()
	if !ok {
		w.tracing = false
		return
	}
	w.tpBuf.start(seq, n)
	w.tp = &w.tpBuf
}

// getScratch returns a scratch buffer for a generated packet, flushing the
// pending frames first when the pool is used up.
func (w *worker) getScratch() []byte {
	if w.nscr == len(w.scratch) {
		w.flushTx()
		w.nscr = 0
	}
	b := w.scratch[w.nscr]
	w.nscr++
	return b
}

// txMeta is the offload metadata of frame i of a port's tx queue.
type txMeta struct {
	i int
	m packet.VnetHdr
}

// queueTx adds a complete frame for port pi.
func (w *worker) queueTx(pi int, frame []byte) {
	w.tx[pi] = append(w.tx[pi], frame)
}

// queueTxMeta adds a frame with offload metadata for port pi (a port whose
// Offloads is true).
func (w *worker) queueTxMeta(pi int, frame []byte, m packet.VnetHdr) {
	w.txMeta[pi] = append(w.txMeta[pi], txMeta{len(w.tx[pi]), m})
	w.tx[pi] = append(w.tx[pi], frame)
}

// plainMeta is the worker's reused dense metadata for n frames, all plain.
func (w *worker) plainMeta(n int) []packet.VnetHdr {
	meta := w.txDense[:0]
	for range n {
		meta = append(meta, packet.VnetHdr{})
	}
	w.txDense = meta
	return meta
}

func (w *worker) flushTx() {
	for pi, frames := range w.tx {
		if len(frames) == 0 {
			continue
		}
		ps := w.snap.ports[pi]
		var meta []packet.VnetHdr
		if tm := w.txMeta[pi]; len(tm) > 0 {
			meta = w.plainMeta(len(frames))
			for _, e := range tm {
				meta[e.i] = e.m
			}
			w.txMeta[pi] = tm[:0]
		}
		if pi < len(w.snap.gro) && w.snap.gro[pi] && len(frames) > 1 {
			frames, meta = w.coalesce(frames, meta)
		}
		n, _ := ps.queues[w.q%len(ps.queues)].WriteBatch(frames, meta)
		if ps.capture.Load() != nil {
			ps.captureFrames(frames[:n])
		}
		var by uint64
		for _, f := range frames[:n] {
			by += uint64(len(f))
		}
		ps.txPackets.Add(uint64(n))
		ps.txBytes.Add(by)
		if n < len(frames) {
			fail := uint64(len(frames) - n)
			ps.txErrors.Add(fail)
			w.drops[DropTxError] += fail
		}
		frames = w.tx[pi] // as queued (coalescing shortened frames)
		for i := range frames {
			frames[i] = nil
		}
		w.tx[pi] = frames[:0]
	}
}

// refillTokens adds ICMP error tokens for the time since the last refill.
func (w *worker) refillTokens() {
	s := w.snap
	if s.icmpRate <= 0 {
		return
	}
	workers := int64(w.r.nworkers.Load() + 1)
	const scale = 1e9
	max := int64(s.icmpBurst) * scale / workers
	if max < scale {
		max = scale
	}
	if w.lastRefill == 0 {
		w.tokens = max
	} else {
		// tokens per ns = rate/workers/1e9; scaled by 1e9 -> rate/workers per ns.
		w.tokens += (w.now - w.lastRefill) * int64(s.icmpRate) / workers
		if w.tokens > max {
			w.tokens = max
		}
	}
	w.lastRefill = w.now
}

// takeToken reports whether an ICMP error may be sent now.
func (w *worker) takeToken() bool {
	if w.snap.icmpRate <= 0 {
		return true
	}
	if w.tokens >= 1e9 {
		w.tokens -= 1e9
		return true
	}
	w.cnt[CntICMPRateLimited]++
	return false
}
