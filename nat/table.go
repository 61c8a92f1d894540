package nat

import (
	"math/bits"
	"runtime"
	"sync/atomic"
)

// The conntrack table.
//
// Sessions live in a preallocated slab of fixed-size, pointer-free structs
// indexed by uint32. An open-addressing index (linear probing, 4-byte
// entries, no tombstones: deletion shifts entries back) maps keys to
// sessions. Each session is reachable by up to five keys:
//
//	kOrig    the original tuple (as the initiator's packets arrive)
//	kReply   the reply tuple (as the responder's packets arrive)
//	kHair    hairpin sessions only: the original tuple after In's
//	         destination rewrite (what Out sees)
//	kMapInt  SNAT mappings: (proto, inside addr, inside port, out network)
//	kMapExt  SNAT mappings: (proto, external addr, external port)
//
// Several sessions may share a mapping key (endpoint-independent mapping:
// one mapping, many sessions); lookups by mapping key return any of them.
//
// Readers take no lock. Every session field is accessed atomically; the
// state word carries a generation in its upper 32 bits that changes when the
// session is freed or reused, and a reader re-checks it after reading the
// keys. Writers (create, delete) hold NAT.mu. A deletion bumps the index
// version (odd while entries move); a reader whose probe missed while the
// version changed probes again, so moving entries is never seen as a miss.
// An index entry is
//
//	tag (remaining high bits) | session index + 1 | key type (3 bits)
//
// where the tag is taken from the hash so most mismatches never touch the slab.

const (
	kOrig   = 0
	kReply  = 1
	kHair   = 2
	kMapInt = 3
	kMapExt = 4

	kindMapInt = 1
	kindMapExt = 2

	keyMask = ^uint64(0xffff) // the low 16 bits of a b word carry session data, not key
)

// State word (low 32 bits; high 32 = generation).
const (
	stLive      = 1 << 31
	stStateMask = 0xf // TCP state
	stOpener1   = 1 << 4
	stFin0      = 1 << 5
	stFin1      = 1 << 6
	stSeen0     = 1 << 7
	stSeen1     = 1 << 8
	stWS0Shift  = 9 // 4 bits each
	stWS1Shift  = 13
	stWS0       = 1 << 17
	stWS1       = 1 << 18
	stReplied   = 1 << 19
)

// Flags kept in the low 16 bits of the reply b word (fixed for the life of
// the session).
const (
	fOriginMask = 0x7
	oSNAT       = 1 // inside host through an SNAT rule
	oSNATIn     = 2 // inbound through an existing SNAT mapping (filtering allowed it)
	oFloatOut   = 3 // VM with a floating IP started it
	oFloatIn    = 4 // sent to a floating IP
	oForward    = 5 // sent to a port forward
	oMapHair    = 6 // an inside host to another inside host's SNAT mapping (hairpin)
	fMapped     = 1 << 3
	fHairpin    = 1 << 4
	fHairFloat  = 1 << 5 // hairpin source translated by a floating IP (else an SNAT mapping)
)

type session struct {
	state   atomic.Uint64
	oa, ob  atomic.Uint64 // original tuple: src<<32|dst, sport<<48|dport<<32|proto<<24|outNet
	ra, rb  atomic.Uint64 // reply tuple: same layout; low 16 bits of rb = flags
	expires atomic.Int64
	pkts    atomic.Uint64
	bytes   atomic.Uint64
	tcp     [4]atomic.Uint32 // end0, win0, end1, win1
}

func keyWords(src, dst uint32, sport, dport uint16, proto uint8) (a, b uint64) {
	return uint64(src)<<32 | uint64(dst), uint64(sport)<<48 | uint64(dport)<<32 | uint64(proto)<<24
}

func mapIntKey(ip uint32, port uint16, proto uint8, outNet uint16) (a, b uint64) {
	return uint64(ip)<<32 | uint64(outNet), uint64(port)<<48 | uint64(proto)<<24 | kindMapInt<<16
}

func mapExtKey(ip uint32, port uint16, proto uint8) (a, b uint64) {
	return uint64(ip) << 32, uint64(port)<<48 | uint64(proto)<<24 | kindMapExt<<16
}

// words is a consistent copy of a session's tuples.
type words struct{ oa, ob, ra, rb uint64 }

func (w *words) oSrc() uint32    { return uint32(w.oa >> 32) }
func (w *words) oDst() uint32    { return uint32(w.oa) }
func (w *words) rSrc() uint32    { return uint32(w.ra >> 32) }
func (w *words) rDst() uint32    { return uint32(w.ra) }
func (w *words) oSport() uint16  { return uint16(w.ob >> 48) }
func (w *words) oDport() uint16  { return uint16(w.ob >> 32) }
func (w *words) rSport() uint16  { return uint16(w.rb >> 48) }
func (w *words) rDport() uint16  { return uint16(w.rb >> 32) }
func (w *words) proto() uint8    { return uint8(w.ob >> 24) }
func (w *words) outNet() uint16  { return uint16(w.ob) }
func (w *words) flags() uint16   { return uint16(w.rb) }
func (w *words) origin() uint16  { return uint16(w.rb) & fOriginMask }
func (w *words) mapped() bool    { return w.rb&fMapped != 0 }
func (w *words) hairpin() bool   { return w.rb&fHairpin != 0 }
func (w *words) hairFloat() bool { return w.rb&fHairFloat != 0 }

// key returns the index key of type t.
func (w *words) key(t uint8) (a, b uint64) {
	switch t {
	case kOrig:
		return w.oa, w.ob & keyMask
	case kReply:
		return w.ra, w.rb & keyMask
	case kHair:
		return keyWords(w.oSrc(), w.rSrc(), w.oSport(), w.rSport(), w.proto())
	case kMapInt:
		return mapIntKey(w.oSrc(), w.oSport(), w.proto(), w.outNet())
	default:
		return mapExtKey(w.rDst(), w.rDport(), w.proto())
	}
}

func hashKey(a, b uint64) uint64 {
	h := (a ^ 0x243f6a8885a308d3) * 0x9e3779b97f4a7c15
	h ^= (b ^ 0x13198a2e03707344) * 0xc2b2ae3d27d4eb4f
	h ^= h >> 32
	h *= 0x94d049bb133111eb
	h ^= h >> 29
	return h
}

type table struct {
	slab    []session
	max     uint32
	hwm     uint32 // slots below hwm have been used at least once
	free    uint32 // head of the free list + 1 (0 = empty); next link kept in oa
	live    atomic.Int64
	slots   []atomic.Uint32
	mask    uint64
	idxBits uint
	tagBits uint
	keys    int // entries in the index
	ver     atomic.Uint64
}

func newTable(max int) *table {
	if max < 1 {
		max = 1
	}
	t := &table{max: uint32(max)}
	t.slab = make([]session, max)
	n := uint64(64)
	for n < uint64(max)*8 {
		n <<= 1
	}
	t.slots = make([]atomic.Uint32, n)
	t.mask = n - 1
	t.idxBits = uint(bits.Len32(uint32(max)))
	if 3+t.idxBits < 32 {
		t.tagBits = 32 - 3 - t.idxBits
	}
	return t
}

func (t *table) tag(h uint64) uint32 {
	if t.tagBits == 0 {
		return 0
	}
	return uint32(h>>40) & (1<<t.tagBits - 1)
}

func (t *table) entry(h uint64, idx uint32, typ uint8) uint32 {
	return t.tag(h)<<(3+t.idxBits) | (idx+1)<<3 | uint32(typ)
}

func (t *table) entryIdx(e uint32) uint32 { return (e>>3)&(1<<t.idxBits-1) - 1 }

// hit is the result of a lookup.
type hit struct {
	idx uint32
	typ uint8
	st  uint64 // state word read with the tuples
	w   words
}

// read copies the tuples of session idx consistently. ok is false when the
// session is not live; retry is true when it changed while being read.
func (t *table) read(idx uint32, w *words) (st uint64, ok, retry bool) {
	s := &t.slab[idx]
	st = s.state.Load()
	if st&stLive == 0 {
		return st, false, false
	}
	w.oa, w.ob, w.ra, w.rb = s.oa.Load(), s.ob.Load(), s.ra.Load(), s.rb.Load()
	st2 := s.state.Load()
	if st2>>32 != st>>32 {
		return st, false, true
	}
	return st2, true, false
}

// lookup finds a live session with key (a, b) among the key types in the
// bit set types. Lock-free.
func (t *table) lookup(a, b uint64, types uint8, h *hit) bool {
	hash := hashKey(a, b)
	tag := t.tag(hash)
	shift := 3 + t.idxBits
	for spins := 0; ; spins++ {
		v := t.ver.Load()
		retry := v&1 == 1
		if !retry {
			for i := hash & t.mask; ; i = (i + 1) & t.mask {
				e := t.slots[i].Load()
				if e == 0 {
					break
				}
				if e>>shift != tag || types&(1<<(e&7)) == 0 {
					continue
				}
				typ := uint8(e & 7)
				idx := t.entryIdx(e)
				st, ok, r := t.read(idx, &h.w)
				if r {
					retry = true
					break
				}
				if !ok {
					continue
				}
				ka, kb := h.w.key(typ)
				if ka == a && kb == b {
					h.idx, h.typ, h.st = idx, typ, st
					return true
				}
			}
			if !retry && t.ver.Load() == v {
				return false
			}
		}
		if spins > 16 {
			runtime.Gosched()
		}
	}
}

// iter walks the live sessions with key (a, b) of one type (several sessions
// share a mapping key). Caller holds NAT.mu, so entries do not move.
type iter struct {
	t        *table
	a, b     uint64
	i        uint64
	tag      uint32
	typ      uint8
	finished bool
}

func (t *table) iter(a, b uint64, typ uint8) iter {
	h := hashKey(a, b)
	return iter{t: t, a: a, b: b, i: h & t.mask, tag: t.tag(h), typ: typ}
}

// next fills w with the next matching session; false at the end.
func (it *iter) next(w *words) bool {
	t := it.t
	shift := 3 + t.idxBits
	for !it.finished {
		e := t.slots[it.i].Load()
		it.i = (it.i + 1) & t.mask
		if e == 0 {
			it.finished = true
			break
		}
		if e>>shift != it.tag || uint8(e&7) != it.typ {
			continue
		}
		if _, ok, _ := t.read(t.entryIdx(e), w); !ok {
			continue
		}
		if ka, kb := w.key(it.typ); ka == it.a && kb == it.b {
			return true
		}
	}
	return false
}

// first finds any live session with key (a, b) of type typ (caller holds NAT.mu).
func (t *table) first(a, b uint64, typ uint8, w *words) bool {
	it := t.iter(a, b, typ)
	return it.next(w)
}

// insert adds an index entry. Caller holds NAT.mu.
func (t *table) insert(a, b uint64, idx uint32, typ uint8) {
	hash := hashKey(a, b)
	e := t.entry(hash, idx, typ)
	for i := hash & t.mask; ; i = (i + 1) & t.mask {
		if t.slots[i].Load() == 0 {
			t.slots[i].Store(e)
			t.keys++
			return
		}
	}
}

// home is the probe start of an existing entry (caller holds NAT.mu).
func (t *table) home(e uint32) uint64 {
	var w words
	s := &t.slab[t.entryIdx(e)]
	w.oa, w.ob, w.ra, w.rb = s.oa.Load(), s.ob.Load(), s.ra.Load(), s.rb.Load()
	a, b := w.key(uint8(e & 7))
	return hashKey(a, b) & t.mask
}

// remove deletes the entry of (idx, typ) stored under key (a, b), moving
// later entries of the cluster back (no tombstones). Caller holds NAT.mu.
func (t *table) remove(a, b uint64, idx uint32, typ uint8) bool {
	hash := hashKey(a, b)
	want := (idx+1)<<3 | uint32(typ)
	low := uint32(1)<<(3+t.idxBits) - 1
	i := hash & t.mask
	for ; ; i = (i + 1) & t.mask {
		e := t.slots[i].Load()
		if e == 0 {
			return false
		}
		if e&low == want {
			break
		}
	}
	t.ver.Add(1)
	j := i
	for {
		j = (j + 1) & t.mask
		e := t.slots[j].Load()
		if e == 0 {
			break
		}
		h := t.home(e)
		// e may move to i when its home is not cyclically within (i, j].
		var stay bool
		if i <= j {
			stay = i < h && h <= j
		} else {
			stay = i < h || h <= j
		}
		if !stay {
			t.slots[i].Store(e)
			i = j
		}
	}
	t.slots[i].Store(0)
	t.ver.Add(1)
	t.keys--
	return true
}

// alloc takes a free session slot (caller holds NAT.mu).
func (t *table) alloc() (uint32, bool) {
	if t.free != 0 {
		idx := t.free - 1
		t.free = uint32(t.slab[idx].oa.Load())
		return idx, true
	}
	if t.hwm < t.max {
		t.hwm++
		return t.hwm - 1, true
	}
	return 0, false
}

// release marks idx free and links it to the free list (caller holds NAT.mu
// and has removed the index entries).
func (t *table) release(idx uint32) {
	s := &t.slab[idx]
	st := s.state.Load()
	s.state.Store((st>>32 + 1) << 32)
	s.oa.Store(uint64(t.free))
	t.free = idx + 1
	t.live.Add(-1)
}
