package router

import (
	"sync/atomic"

	"vrouter/packet"
)

// macTable is the MAC learning table of one multi-link network: a fixed
// open-addressing table of pointer-free slots, read without locks and
// written with compare-and-swap by every worker. A slot's key is the MAC
// (with bit 63 set so that 0 means empty); its value packs the link index
// (low 16 bits) and the second the MAC was last seen (high 48 bits).
type macTable struct {
	slots []macSlot
	mask  uint64
	full  atomic.Uint64 // learnings refused because the probe sequence was full
	moves atomic.Uint64 // a MAC seen on another link than before
}

type macSlot struct {
	key atomic.Uint64
	val atomic.Uint64
}

const (
	macTableSize  = 8192 // per network
	macProbe      = 32
	macAgeSeconds = 300 // like Linux bridge ageing_time
)

func newMACTable() *macTable {
	return &macTable{slots: make([]macSlot, macTableSize), mask: macTableSize - 1}
}

func macHash(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	return k
}

// learn records that mac was seen on link at time sec. It returns false
// when the MAC could not be learned: every slot of its probe sequence holds
// another MAC that has not aged out (a MAC flood); the frame is still
// switched, by flooding. A slot whose MAC aged out is taken over, so a flood
// of made-up MACs leaves the table usable again once they age out. A MAC
// already in the table further along the sequence is updated there, never
// entered twice.
func (t *macTable) learn(mac packet.MAC, link int, sec int64) bool {
	k := mac.Uint64() | 1<<63
	v := uint64(link) | uint64(sec)<<16
	h := macHash(k)
	reuse := -1 // the first aged slot of the sequence
	var reuseKey uint64
	for i := uint64(0); i < macProbe; i++ {
		idx := (h + i) & t.mask
		s := &t.slots[idx]
		cur := s.key.Load()
		if cur == 0 {
			if reuse >= 0 {
				break
			}
			if !s.key.CompareAndSwap(0, k) {
				cur = s.key.Load()
				if cur != k {
					continue
				}
			}
			s.val.Store(v)
			return true
		}
		if cur == k {
			old := s.val.Load()
			if int(old&0xffff) != link {
				t.moves.Add(1)
				s.val.Store(v)
			} else if int64(old>>16) != sec {
				s.val.Store(v)
			}
			return true
		}
		if reuse < 0 && sec-int64(s.val.Load()>>16) > macAgeSeconds {
			reuse, reuseKey = int(idx), cur
		}
	}
	if reuse >= 0 {
		// Take the aged slot over. Readers that see the new key before its
		// value find the old, aged time and miss (the frame is flooded).
		s := &t.slots[reuse]
		if s.key.CompareAndSwap(reuseKey, k) {
			s.val.Store(v)
			return true
		}
	}
	t.full.Add(1)
	return false
}

// lookup returns the link a MAC was last seen on, if not aged out.
func (t *macTable) lookup(mac packet.MAC, sec int64) (int, bool) {
	k := mac.Uint64() | 1<<63
	h := macHash(k)
	for i := uint64(0); i < macProbe; i++ {
		s := &t.slots[(h+i)&t.mask]
		cur := s.key.Load()
		if cur == 0 {
			return 0, false
		}
		if cur == k {
			v := s.val.Load()
			if sec-int64(v>>16) > macAgeSeconds {
				return 0, false
			}
			return int(v & 0xffff), true
		}
	}
	return 0, false
}

// macEntry is one learned MAC, for display.
type macEntry struct {
	MAC  packet.MAC
	Link int
	Age  int64
}

func (t *macTable) entries(sec int64) []macEntry {
	var out []macEntry
	for i := range t.slots {
		k := t.slots[i].key.Load()
		if k == 0 {
			continue
		}
		v := t.slots[i].val.Load()
		age := sec - int64(v>>16)
		if age > macAgeSeconds {
			continue
		}
		out = append(out, macEntry{MAC: packet.MACFromUint64(k &^ (1 << 63)), Link: int(v & 0xffff), Age: age})
	}
	return out
}

func (t *macTable) flush() {
	for i := range t.slots {
		t.slots[i].val.Store(0)
		t.slots[i].key.Store(0)
	}
}
