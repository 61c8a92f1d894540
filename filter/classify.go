package filter

import "math/bits"

// hash mixes a masked key into 64 bits: the low bits choose the line, the
// top 16 are the tag.
func hash(a uint64, b uint32, p uint8) uint64 {
	h := a*0x9e3779b97f4a7c15 ^ (uint64(b)<<8|uint64(p))*0xc2b2ae3d27d4eb4f
	h ^= h >> 32
	h *= 0xd6e8feb86659fd93
	h ^= h >> 29
	return h
}

const none = ^uint32(0)

// Tag words: four 16-bit lanes.
const (
	lanes = 0x0001_0001_0001_0001
	low15 = 0x7fff_7fff_7fff_7fff
	high1 = 0x8000_8000_8000_8000
)

// tagOf is the tag of a hash: its top 16 bits, never 0 (a free slot).
func tagOf(h uint64) uint64 { return h>>48 | 1 }

// zeroLanes has the top bit of each lane of w that is zero.
func zeroLanes(w uint64) uint64 { return ^((w&low15 + low15) | w) & high1 }

// Classify gives the first rule (in file order) that matches k, or the
// default. It reads only the compiled tables: no allocation, no lock, no
// pointer chasing besides the ruleset's slices. Safe for concurrent use.
func (rs *Ruleset) Classify(k Key) Verdict {
	best := none
	var ports uint32
	if k.HasPorts {
		switch k.Proto {
		case ProtoTCP, ProtoUDP:
			ports = uint32(k.SPort)<<16 | uint32(k.DPort)
		case ProtoICMP:
			ports = uint32(k.ICMPType)
		}
	}
	slots, tags := rs.slots, rs.tags
	for ti := range rs.tables {
		t := &rs.tables[ti]
		if t.min >= best {
			break // this table and all after it hold only later rules
		}
		if t.needPorts && !k.HasPorts {
			continue
		}
		a := uint64(k.Src&t.smask)<<32 | uint64(k.Dst&t.dmask)
		b := ports & t.pmask
		p := k.Proto & t.proto
		h := hash(a, b, p)
		// The lines of the probe sequence up to one with a free slot (no
		// key went past it). The tag word gives the slots whose tag is
		// the key's: nearly always none when the key is not there.
		tag := tagOf(h) * lanes
		var hit uint32
	probe:
		for n := uint32(0); ; n++ {
			li := t.off + (uint32(h)+n)&t.mask
			w := tags[li]
			for m := zeroLanes(w ^ tag); m != 0; m &= m - 1 {
				s := &slots[li*lineSlots+uint32(bits.TrailingZeros64(m)>>4)]
				if s.ka == a && s.kb == b && uint8(s.val>>24) == p {
					hit = s.val
					break probe
				}
			}
			if zeroLanes(w) != 0 || n+1 >= t.probe {
				break
			}
		}
		if hit == 0 {
			continue
		}
		ref := hit&refMask - 1
		if hit&rangeFlag == 0 {
			best = min(best, ref)
		} else {
			best = rs.scan(&rs.buckets[ref], k.SPort, k.DPort, best)
		}
	}
	if best == none {
		return Verdict{Rule: Default, Action: rs.def}
	}
	return Verdict{Rule: int32(best), Action: rs.actions[best]}
}

// scan gives the lowest rule of a bucket whose ranges hold the ports, if
// below best, else best.
func (rs *ranges) scan(b *bucket, sp, dp uint16, best uint32) uint32 {
	ents := rs.rents[b.first : b.first+b.n]
	if b.ivN > 0 {
		x := dp
		if b.dim == 1 {
			x = sp
		}
		bounds := rs.bounds[b.ivFirst : b.ivFirst+b.ivN]
		lo, hi := 0, len(bounds) // bounds[0] == 0 <= x
		for hi-lo > 1 {
			m := int(uint(lo+hi) >> 1)
			if bounds[m] <= x {
				lo = m
			} else {
				hi = m
			}
		}
		l := rs.ivs[int(b.ivFirst)+lo]
		ents = rs.ivEnts[l.first : l.first+l.n]
	}
	for i := range ents {
		e := &ents[i]
		if e.rule >= best {
			break
		}
		if sp-e.slo <= e.shi-e.slo && dp-e.dlo <= e.dhi-e.dlo {
			return e.rule
		}
	}
	return best
}
