package nat

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"vrouter/packet"
)

// Holding out-of-order fragments. A non-first fragment that a stage cannot
// translate before its first fragment is seen (the address depends on the
// first fragment's ports) is copied into a slot of a fixed, preallocated,
// pointer-free hold buffer shared by all workers and the stage returns Held.
// When a worker later translates the first fragment of that datagram (and
// records it in the fragment table), it translates the held fragments of the
// same datagram and stage under the buffer's lock and moves them to its own
// ready list; the router takes them with Worker.Released and continues their
// pipeline after the stage that held them.
//
// Memory is bounded: HoldSlots slots of HoldBytes. A fragment larger than a
// slot is dropped (FragOutOfOrder). A full buffer evicts its oldest held
// fragment; a held fragment whose first fragment does not come within
// [conntrack] fragment_timeout (DefaultFragTimeout unless set) is freed by
// Reap; those whose first fragment the stage drops
// (no session, filtered...) are freed then. All are counted.

// HoldSlots is the number of fragments the hold buffer keeps.
const HoldSlots = 256

// HoldBytes is the largest fragment (IP header included) that can be held.
const HoldBytes = 9216

// Stage says where a released fragment continues in the router's pipeline.
type Stage uint8

const (
	// StageIn: held by In; continue after In (local delivery check, FIB,
	// TTL, Out, output).
	StageIn Stage = iota
	// StageOut: held by Out (TTL already decremented); continue after Out
	// (output on outNet).
	StageOut
)

func (s Stage) String() string {
	if s == StageIn {
		return "in"
	}
	return "out"
}

// Slot states.
const (
	hsFree  = 0
	hsHeld  = 1
	hsReady = 2 // translated, in one worker's ready list
)

type holdSlot struct {
	k1            uint64
	k2            uint32
	n             uint16 // packet length
	inNet, outNet uint16
	state         uint8
	gen           uint16 // bumped when the slot is taken: stale ready entries
	at            int64  // when held, then when released
}

type holdBuf struct {
	// pending counts held slots plus holders in progress; a worker that
	// learned a first fragment scans the buffer only when it is non-zero.
	pending atomic.Int32

	mu    sync.Mutex
	slots [HoldSlots]holdSlot
	data  []byte // HoldSlots * HoldBytes
	held  int    // slots in state hsHeld
	ttl   int64  // fragment_timeout, set by setFragTimeout

	cHeld, cReleased, cExpired, cEvicted, cDiscarded uint64
}

func (hb *holdBuf) init() {
	hb.data = make([]byte, HoldSlots*HoldBytes)
}

func (hb *holdBuf) buf(i int) []byte {
	return hb.data[i*HoldBytes : (i+1)*HoldBytes : (i+1)*HoldBytes]
}

// free releases slot i (hb.mu held).
func (hb *holdBuf) free(i int) {
	s := &hb.slots[i]
	if s.state == hsHeld {
		hb.held--
		hb.pending.Add(-1)
	}
	*s = holdSlot{gen: s.gen}
}

// hold copies the non-first fragment p into the hold buffer. When the first
// fragment has meanwhile been learned (another worker), p is translated at
// once instead and Translated returned. Drop FragOutOfOrder when p cannot be
// held (too large, or every slot is waiting in a worker's ready list).
func (w *Worker) hold(p packet.IPv4, stage int, inNet, outNet uint16, now int64) (Verdict, Reason) {
	if len(p) > HoldBytes {
		return w.drop(FragOutOfOrder)
	}
	n := w.n
	hb := &n.hold
	// Announce first, then look at the fragment table: a worker learning
	// the first fragment after our look sees pending > 0 and scans (after
	// we insert, as the scan takes hb.mu).
	hb.pending.Add(1)
	hb.mu.Lock()
	src, dst, proto, id := p.Src(), p.Dst(), p.Proto(), p.ID()
	if ip, ok := n.frags.find(src, dst, proto, id, stage, now); ok {
		hb.mu.Unlock()
		hb.pending.Add(-1)
		if !translateFrag(p, stage, ip) {
			return Pass, 0
		}
		w.inc(cFragTranslated)
		return Translated, 0
	}
	free, oldest := -1, -1
	for i := range hb.slots {
		s := &hb.slots[i]
		if s.state == hsFree {
			free = i
			break
		}
		if s.state == hsHeld && (oldest < 0 || s.at < hb.slots[oldest].at) {
			oldest = i
		}
	}
	if free < 0 {
		if oldest < 0 {
			hb.mu.Unlock()
			hb.pending.Add(-1)
			return w.drop(FragOutOfOrder)
		}
		hb.free(oldest)
		hb.cEvicted++
		free = oldest
	}
	k1, k2 := fragKey(src, dst, proto, id, stage)
	copy(hb.buf(free), p)
	hb.slots[free] = holdSlot{k1: k1, k2: k2, n: uint16(len(p)), inNet: inNet, outNet: outNet, state: hsHeld,
		gen: hb.slots[free].gen + 1, at: now}
	hb.held++
	hb.cHeld++
	hb.mu.Unlock()
	return Held, 0
}

// translateFrag sets the destination (stageIn) or source address of the
// non-first fragment p to ip; false when it already is ip (the first
// fragment passed untranslated).
func translateFrag(p packet.IPv4, stage int, ip uint32) bool {
	off := packet.IPv4DstOff
	if stage == stageOut {
		off = packet.IPv4SrcOff
	}
	if binary.BigEndian.Uint32(p[off:]) == ip {
		return false
	}
	setAddr(p, p.Proto(), nil, off, ip, false)
	return true
}

// release is called after the first fragment of (src, dst, proto, id) was
// learned for stage: held fragments of that datagram are translated to ip
// and queued on w's ready list.
func (w *Worker) release(src, dst uint32, proto uint8, id uint16, stage int, ip uint32, now int64) {
	hb := &w.n.hold
	if hb.pending.Load() == 0 {
		return
	}
	k1, k2 := fragKey(src, dst, proto, id, stage)
	hb.mu.Lock()
	for i := range hb.slots {
		s := &hb.slots[i]
		if s.state != hsHeld || s.k1 != k1 || s.k2 != k2 {
			continue
		}
		if translateFrag(packet.IPv4(hb.buf(i)[:s.n]), stage, ip) {
			w.inc(cFragTranslated)
		}
		s.state, s.at = hsReady, now
		hb.held--
		hb.pending.Add(-1)
		if w.rdN == HoldSlots {
			// Only when the worker never drains: its oldest entry is stale
			// or left for Reap.
			w.rdHead = (w.rdHead + 1) % HoldSlots
			w.rdN--
		}
		w.ready[(w.rdHead+w.rdN)%HoldSlots] = uint32(i) | uint32(s.gen)<<16
		w.rdN++
	}
	hb.mu.Unlock()
}

// discard frees the held fragments of the datagram whose first fragment p
// the stage dropped: they would never be released.
func (w *Worker) discard(p packet.IPv4, stage int) {
	hb := &w.n.hold
	if hb.pending.Load() == 0 {
		return
	}
	k1, k2 := fragKey(p.Src(), p.Dst(), p.Proto(), p.ID(), stage)
	hb.mu.Lock()
	for i := range hb.slots {
		if s := &hb.slots[i]; s.state == hsHeld && s.k1 == k1 && s.k2 == k2 {
			hb.free(i)
			hb.cDiscarded++
		}
	}
	hb.mu.Unlock()
}

// HasReleased reports whether Released has a fragment to hand out (a plain
// per-worker counter: free to call after every packet).
func (w *Worker) HasReleased() bool { return w.rdN != 0 }

// Released hands out, one at a time, held fragments that became
// translatable (already translated) when this worker translated — or passed
// untranslated — their first fragment. The router drains it after every
// packet it ran through In/Out, whatever the verdict (HasReleased is the
// cheap check): `for w.HasReleased() { pkt, ..., ok := w.Released(); if !ok
// { break } ... }`. pkt is valid until the next call (a per-worker copy);
// stage is StageIn (continue the pipeline after In: local delivery, FIB,
// TTL, Out...) or StageOut (continue after Out: output on outNet, TTL
// already decremented). inNet is the network the fragment arrived on; outNet
// is the egress network for StageOut and Local for StageIn. ok is false when
// nothing (more) is ready; ready fragments left undrained for fragment_timeout are
// freed by Reap (then skipped here).
func (w *Worker) Released() (pkt []byte, inNet, outNet uint16, stage Stage, ok bool) {
	if w.rdN == 0 {
		return nil, 0, 0, 0, false
	}
	hb := &w.n.hold
	hb.mu.Lock()
	var s *holdSlot
	i := 0
	for w.rdN > 0 {
		e := w.ready[w.rdHead]
		w.rdHead = (w.rdHead + 1) % HoldSlots
		w.rdN--
		i = int(e & 0xffff)
		if c := &hb.slots[i]; c.state == hsReady && c.gen == uint16(e>>16) {
			s = c
			break
		}
	}
	if s == nil {
		hb.mu.Unlock()
		return nil, 0, 0, 0, false
	}
	n := int(s.n)
	copy(w.rel[:n], hb.buf(i)[:n])
	inNet, outNet = s.inNet, s.outNet
	stage = StageIn
	if s.k2>>1&1 == stageOut {
		stage = StageOut
	}
	hb.free(i)
	hb.cReleased++
	hb.mu.Unlock()
	return w.rel[:n], inNet, outNet, stage, true
}

// expire frees held fragments older than fragment_timeout (hb.ttl), and
// released ones a worker left undrained that long.
func (hb *holdBuf) expire(now int64) {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	for i := range hb.slots {
		if s := &hb.slots[i]; s.state != hsFree && now-s.at >= hb.ttl {
			hb.free(i)
			hb.cExpired++
		}
	}
}

func (hb *holdBuf) counters(sh *[numShared]uint64) {
	hb.mu.Lock()
	defer hb.mu.Unlock()
	sh[sFragHeld] = hb.cHeld
	sh[sFragReleased] = hb.cReleased
	sh[sFragHoldExpired] = hb.cExpired
	sh[sFragHoldEvicted] = hb.cEvicted
	sh[sFragHoldDiscarded] = hb.cDiscarded
	sh[gFragHolding] = uint64(hb.held)
}
