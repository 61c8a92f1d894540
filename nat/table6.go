package nat

import (
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
)

// The IPv6 conntrack table: the sessions of IPv6 flows that a filter
// accepted. NAT is IPv4-only (no NAT66), so every IPv6 session is a
// tracking-only one whose reply tuple is the mirror of its original tuple,
// and only two keys lead to it (the original tuple and its mirror).
//
// It is a sibling of the IPv4 table rather than a family of it: widening
// the IPv4 session to 16-byte addresses would make every IPv4 lookup read
// and compare more. What the two share is the behaviour: the state word
// (TCP state, flags, generation), the TCP state machine (tcpTrack), the
// timeouts and the eviction rule of the NAT's Rules, and the same
// concurrency design: a pointer-free slab of sessions indexed by uint32,
// an open-addressing index of 4-byte entries without tombstones, lock-free
// readers that re-check the generation and the index version, writers
// under one lock (the table's own, so IPv4 and IPv6 new flows do not
// contend). An index entry is
//
//	tag (remaining high bits) | session index + 1 | direction (1 bit)

type session6 struct {
	state          atomic.Uint64 // as session.state
	s0, s1, d0, d1 atomic.Uint64 // the original tuple's addresses
	ports          atomic.Uint64 // sport<<48 | dport<<32 | proto<<24 | outNet
	expires        atomic.Int64
	pkts           atomic.Uint64
	bytes          atomic.Uint64
	tcp            [4]atomic.Uint32 // end0, win0, end1, win1
}

// key6 is an IPv6 flow key: the addresses as two words each and the ports
// word (sport<<48 | dport<<32 | proto<<24; the low 16 bits are not key).
type key6 struct{ s0, s1, d0, d1, p uint64 }

// mirror is the key of the other direction.
func (k key6) mirror() key6 {
	return key6{k.d0, k.d1, k.s0, k.s1, uint64(uint16(k.p>>32))<<48 | uint64(uint16(k.p>>48))<<32 | k.p&0xff000000}
}

func ports6(sport, dport uint16, proto uint8) uint64 {
	return uint64(sport)<<48 | uint64(dport)<<32 | uint64(proto)<<24
}

func (k *key6) sport() uint16  { return uint16(k.p >> 48) }
func (k *key6) dport() uint16  { return uint16(k.p >> 32) }
func (k *key6) proto() uint8   { return uint8(k.p >> 24) }
func (k *key6) outNet() uint16 { return uint16(k.p) }

func hashKey6(k *key6) uint64 {
	h := (k.s0 ^ 0x243f6a8885a308d3) * 0x9e3779b97f4a7c15
	h ^= (k.s1 ^ 0x13198a2e03707344) * 0xc2b2ae3d27d4eb4f
	h = h<<29 | h>>35
	h ^= (k.d0 ^ 0xa4093822299f31d0) * 0x94d049bb133111eb
	h ^= (k.d1 ^ 0x082efa98ec4e6c89) * 0xbf58476d1ce4e5b9
	h = h<<31 | h>>33
	h ^= (k.p&keyMask ^ 0x452821e638d01377) * 0xff51afd7ed558ccd
	h ^= h >> 32
	h *= 0x94d049bb133111eb
	h ^= h >> 29
	return h
}

type table6 struct {
	mu      sync.Mutex // writers: create, delete
	slab    []session6
	max     uint32
	hwm     uint32 // slots below hwm have been used at least once
	free    uint32 // head of the free list + 1; next link kept in s0
	live    atomic.Int64
	slots   []atomic.Uint32
	mask    uint64
	idxBits uint
	tagBits uint
	keys    int
	ver     atomic.Uint64

	evictPos uint32 // under mu
	reapPos  uint32 // under NAT.reapMu
}

func newTable6(max int) *table6 {
	if max < 1 {
		max = 1
	}
	t := &table6{max: uint32(max), slab: make([]session6, max)}
	n := uint64(64)
	for n < uint64(max)*4 { // two keys a session: at most half full
		n <<= 1
	}
	t.slots = make([]atomic.Uint32, n)
	t.mask = n - 1
	t.idxBits = uint(bits.Len32(uint32(max)))
	if 1+t.idxBits < 32 {
		t.tagBits = 32 - 1 - t.idxBits
	}
	return t
}

func (t *table6) tag(h uint64) uint32 {
	if t.tagBits == 0 {
		return 0
	}
	return uint32(h>>40) & (1<<t.tagBits - 1)
}

func (t *table6) entryIdx(e uint32) uint32 { return (e>>1)&(1<<t.idxBits-1) - 1 }

// hit6 is the result of a lookup: the session, the direction the key is
// (0 original, 1 reply), its state word and original key as read.
type hit6 struct {
	idx uint32
	dir uint8
	st  uint64
	k   key6
}

// read copies session idx's original key consistently (as table.read).
func (t *table6) read(idx uint32, k *key6) (st uint64, ok, retry bool) {
	s := &t.slab[idx]
	st = s.state.Load()
	if st&stLive == 0 {
		return st, false, false
	}
	k.s0, k.s1, k.d0, k.d1, k.p = s.s0.Load(), s.s1.Load(), s.d0.Load(), s.d1.Load(), s.ports.Load()
	st2 := s.state.Load()
	if st2>>32 != st>>32 {
		return st, false, true
	}
	return st2, true, false
}

func sameKey6(a, b *key6) bool {
	return a.s0 == b.s0 && a.s1 == b.s1 && a.d0 == b.d0 && a.d1 == b.d1 && a.p&keyMask == b.p&keyMask
}

// lookup finds the live session of which k is the original or the reply
// key. Lock-free.
func (t *table6) lookup(k *key6, h *hit6) bool {
	hash := hashKey6(k)
	tag := t.tag(hash)
	shift := 1 + t.idxBits
	for spins := 0; ; spins++ {
		v := t.ver.Load()
		retry := v&1 == 1
		if !retry {
			for i := hash & t.mask; ; i = (i + 1) & t.mask {
				e := t.slots[i].Load()
				if e == 0 {
					break
				}
				if e>>shift != tag {
					continue
				}
				idx := t.entryIdx(e)
				st, ok, r := t.read(idx, &h.k)
				if r {
					retry = true
					break
				}
				if !ok {
					continue
				}
				dir := uint8(e & 1)
				kk := h.k
				if dir == 1 {
					kk = kk.mirror()
				}
				if sameKey6(&kk, k) {
					h.idx, h.dir, h.st = idx, dir, st
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

// insert adds the index entry of (idx, dir) under k (caller holds mu).
func (t *table6) insert(k *key6, idx uint32, dir uint8) {
	hash := hashKey6(k)
	e := t.tag(hash)<<(1+t.idxBits) | (idx+1)<<1 | uint32(dir)
	for i := hash & t.mask; ; i = (i + 1) & t.mask {
		if t.slots[i].Load() == 0 {
			t.slots[i].Store(e)
			t.keys++
			return
		}
	}
}

// home is the probe start of an existing entry (caller holds mu).
func (t *table6) home(e uint32) uint64 {
	s := &t.slab[t.entryIdx(e)]
	k := key6{s.s0.Load(), s.s1.Load(), s.d0.Load(), s.d1.Load(), s.ports.Load()}
	if e&1 == 1 {
		k = k.mirror()
	}
	return hashKey6(&k) & t.mask
}

// remove deletes the entry of (idx, dir) stored under k, moving later
// entries of the cluster back (caller holds mu).
func (t *table6) remove(k *key6, idx uint32, dir uint8) {
	hash := hashKey6(k)
	want := (idx+1)<<1 | uint32(dir)
	low := uint32(1)<<(1+t.idxBits) - 1
	i := hash & t.mask
	for ; ; i = (i + 1) & t.mask {
		e := t.slots[i].Load()
		if e == 0 {
			return
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
}

// create adds a session with original key k (outNet in its low bits) and
// fills h as a lookup of k would (caller holds mu, has made room and
// checked that neither direction has a session).
func (t *table6) create(k *key6, now, initTO int64, h *hit6) bool {
	if uint64(t.keys+2) > (t.mask+1)/2 {
		return false
	}
	var idx uint32
	switch {
	case t.free != 0:
		idx = t.free - 1
		t.free = uint32(t.slab[idx].s0.Load())
	case t.hwm < t.max:
		idx = t.hwm
		t.hwm++
	default:
		return false
	}
	s := &t.slab[idx]
	s.s0.Store(k.s0)
	s.s1.Store(k.s1)
	s.d0.Store(k.d0)
	s.d1.Store(k.d1)
	s.ports.Store(k.p)
	s.pkts.Store(0)
	s.bytes.Store(0)
	for i := range s.tcp {
		s.tcp[i].Store(0)
	}
	s.expires.Store(now + initTO)
	st := (s.state.Load()>>32+1)<<32 | stLive
	s.state.Store(st)
	t.live.Add(1)
	t.insert(k, idx, 0)
	m := k.mirror()
	t.insert(&m, idx, 1)
	h.idx, h.dir, h.st, h.k = idx, 0, st, *k
	return true
}

// destroy removes session idx (caller holds mu).
func (t *table6) destroy(idx uint32) {
	var k key6
	if _, ok, _ := t.read(idx, &k); !ok {
		return
	}
	t.remove(&k, idx, 0)
	m := k.mirror()
	t.remove(&m, idx, 1)
	s := &t.slab[idx]
	s.state.Store((s.state.Load()>>32 + 1) << 32)
	s.s0.Store(uint64(t.free))
	t.free = idx + 1
	t.live.Add(-1)
}
