package filter

import (
	"cmp"
	"encoding/binary"
	"math/bits"
	"slices"

	"vrouter/config"
)

// IPv6: the same tuple space search over IPv6 keys. Rules apply to the
// families their prefixes and protocol say (icmp: IPv4, icmpv6: IPv6, no
// prefixes and another protocol: both); a rule keeps its index, so the
// first match and the counters are the same whatever the family. The
// IPv6 tables have their own shapes (prefix lengths up to 128), slots (40
// bytes: both masked addresses, the exact ports, the verdict) and range
// buckets; the tag lines, the probe and the early exit are IPv4's.

// Key6 is what the classifier looks at in an IPv6 packet; as Key, with
// 16-byte addresses and the ICMPv6 type for proto 58.
type Key6 struct {
	Src, Dst     [16]byte
	SPort, DPort uint16 // TCP, UDP
	Proto        uint8  // the upper-layer protocol (after extension headers)
	ICMPType     uint8  // ICMPv6
	HasPorts     bool
}

// slot6 is one hash slot of an IPv6 table (val as in slot).
type slot6 struct {
	s0, s1, d0, d1 uint64 // src&smask, dst&dmask
	kb             uint32
	val            uint32
}

// table6 is one IPv6 shape.
type table6 struct {
	smask, dmask [2]uint64
	pmask        uint32
	min          uint32
	off, mask    uint32
	probe        uint32
	proto        uint8
	needPorts    bool
}

const (
	sizeofTable6 = 64
	sizeofSlot6  = 40
)

// tables6 is the IPv6 half of a Ruleset.
type tables6 struct {
	tables []table6 // sorted by min
	tags   []uint64
	slots  []slot6
	ranges
	entries int

	byShape map[shape6][]entry6 // while compiling
}

// shape6 is a shape with lengths up to 128: slen | dlen<<8 | the flags
// and port kinds of shape (its bits 12-17) from bit 16.
type shape6 uint32

func mkShape6(slen, dlen int, pset bool, sk, dk int, need bool) shape6 {
	return shape6(uint32(slen) | uint32(dlen)<<8 | uint32(mkShape(0, 0, pset, sk, dk, need))>>12<<16)
}

func (s shape6) slen() int    { return int(s & 0xff) }
func (s shape6) dlen() int    { return int(s >> 8 & 0xff) }
func (s shape6) flags() shape { return shape(s >> 16 << 12) }

type entry6 struct {
	s0, s1, d0, d1 uint64
	kb             uint32
	p              uint8
	rule           uint32
	r              rangeEntry
}

func split6(a [16]byte) (uint64, uint64) {
	return binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
}

// mask6 is the netmask of a prefix length as two words.
func mask6(bits int) [2]uint64 {
	switch {
	case bits <= 0:
		return [2]uint64{}
	case bits < 64:
		return [2]uint64{^uint64(0) << (64 - bits), 0}
	case bits < 128:
		return [2]uint64{^uint64(0), ^uint64(0) << (128 - bits)}
	}
	return [2]uint64{^uint64(0), ^uint64(0)}
}

func hash6(s0, s1, d0, d1 uint64, b uint32, p uint8) uint64 {
	h := s0*0x9e3779b97f4a7c15 ^ s1*0xbf58476d1ce4e5b9 ^ d0*0x94d049bb133111eb ^ d1*0xff51afd7ed558ccd
	h = h<<31 | h>>33
	h ^= (uint64(b)<<8 | uint64(p)) * 0xc2b2ae3d27d4eb4f
	h ^= h >> 32
	h *= 0xd6e8feb86659fd93
	h ^= h >> 29
	return h
}

// expand adds the IPv6 entries of rule i.
func (x *tables6) expand(r *config.FilterRule, rule uint32, proto uint8, pset, need bool, sps, dps []config.PortRange) error {
	srcs, err := normPrefixes(r.Source, true)
	if err != nil {
		return err
	}
	dsts, err := normPrefixes(r.Destination, true)
	if err != nil {
		return err
	}
	if x.byShape == nil {
		x.byShape = map[shape6][]entry6{}
	}
	for _, s := range srcs {
		sm := mask6(s.Bits())
		s0, s1 := split6(s.Addr().As16())
		for _, d := range dsts {
			dm := mask6(d.Bits())
			d0, d1 := split6(d.Addr().As16())
			for _, sp := range sps {
				sk := kindOf(sp)
				for _, dp := range dps {
					dk := kindOf(dp)
					sh := mkShape6(s.Bits(), d.Bits(), pset, sk, dk, need)
					e := entry6{s0: s0 & sm[0], s1: s1 & sm[1], d0: d0 & dm[0], d1: d1 & dm[1], p: proto, rule: rule,
						r: rangeEntry{rule: rule, slo: 0, shi: 0xffff, dlo: 0, dhi: 0xffff}}
					if sk == kindExact {
						e.kb |= uint32(sp.Lo) << 16
					} else if sk == kindRange {
						e.r.slo, e.r.shi = sp.Lo, sp.Hi
					}
					if dk == kindExact {
						e.kb |= uint32(dp.Lo)
					} else if dk == kindRange {
						e.r.dlo, e.r.dhi = dp.Lo, dp.Hi
					}
					x.byShape[sh] = append(x.byShape[sh], e)
					x.entries++
				}
			}
		}
	}
	return nil
}

func cmpEntry6(a, b *entry6) int {
	if c := cmp.Compare(a.s0, b.s0); c != 0 {
		return c
	}
	if c := cmp.Compare(a.s1, b.s1); c != 0 {
		return c
	}
	if c := cmp.Compare(a.d0, b.d0); c != 0 {
		return c
	}
	if c := cmp.Compare(a.d1, b.d1); c != 0 {
		return c
	}
	if c := cmp.Compare(a.kb, b.kb); c != 0 {
		return c
	}
	return cmp.Compare(a.p, b.p)
}

// finish builds the tables of the shapes expand collected.
func (x *tables6) finish() {
	shapes := make([]shape6, 0, len(x.byShape))
	for sh := range x.byShape {
		shapes = append(shapes, sh)
	}
	slices.Sort(shapes)
	for _, sh := range shapes {
		x.build(sh, x.byShape[sh])
	}
	x.byShape = nil
	slices.SortStableFunc(x.tables, func(a, b table6) int { return cmp.Compare(a.min, b.min) })
}

// build adds the table of one shape (as Ruleset.build).
func (x *tables6) build(sh shape6, ents []entry6) {
	f := sh.flags()
	t := table6{
		smask:     mask6(sh.slen()),
		dmask:     mask6(sh.dlen()),
		pmask:     portMask(f.skind())<<16 | portMask(f.dkind()),
		min:       ^uint32(0),
		needPorts: f.need(),
	}
	if f.pset() {
		t.proto = 0xff
	}
	slices.SortFunc(ents, func(a, b entry6) int {
		if c := cmpEntry6(&a, &b); c != 0 {
			return c
		}
		return cmp.Compare(a.rule, b.rule)
	})
	keys := 0
	for i := range ents {
		if i == 0 || cmpEntry6(&ents[i], &ents[i-1]) != 0 {
			keys++
		}
	}
	lines := uint32(1)
	for lines*lineSlots < uint32(2*keys) {
		lines <<= 1
	}
	t.off = uint32(len(x.tags))
	t.mask = lines - 1
	x.tags = append(x.tags, make([]uint64, lines)...)
	x.slots = append(x.slots, make([]slot6, lines*lineSlots)...)
	for i := 0; i < len(ents); {
		j := i + 1
		for j < len(ents) && cmpEntry6(&ents[j], &ents[i]) == 0 {
			j++
		}
		g := ents[i:j]
		e := &g[0]
		t.min = min(t.min, e.rule)
		var val uint32
		if f.ranged() {
			val = uint32(len(x.buckets)+1) | rangeFlag
			rents := make([]rangeEntry, len(g))
			for k := range g {
				rents[k] = g[k].r
			}
			x.addBucket(rents, f.skind(), f.dkind())
		} else {
			val = e.rule + 1
		}
		val |= uint32(e.p) << 24
		h := hash6(e.s0, e.s1, e.d0, e.d1, e.kb, e.p)
		for n := uint32(0); ; n++ {
			li := t.off + (uint32(h)+n)&t.mask
			free := zeroLanes(x.tags[li])
			if free == 0 {
				continue
			}
			lane := uint32(bits.TrailingZeros64(free) >> 4)
			x.tags[li] |= tagOf(h) << (16 * lane)
			x.slots[li*lineSlots+lane] = slot6{s0: e.s0, s1: e.s1, d0: e.d0, d1: e.d1, kb: e.kb, val: val}
			t.probe = max(t.probe, n+1)
			break
		}
		i = j
	}
	x.tables = append(x.tables, t)
}

// Classify6 gives the first rule (in file order) that matches the IPv6
// packet k, or the default; as Classify (no allocation, no lock).
func (rs *Ruleset) Classify6(k Key6) Verdict {
	x := &rs.six
	best := none
	var ports uint32
	if k.HasPorts {
		switch k.Proto {
		case ProtoTCP, ProtoUDP:
			ports = uint32(k.SPort)<<16 | uint32(k.DPort)
		case ProtoICMPv6:
			ports = uint32(k.ICMPType)
		}
	}
	s0, s1 := split6(k.Src)
	d0, d1 := split6(k.Dst)
	slots, tags := x.slots, x.tags
	for ti := range x.tables {
		t := &x.tables[ti]
		if t.min >= best {
			break
		}
		if t.needPorts && !k.HasPorts {
			continue
		}
		a0, a1, b0, b1 := s0&t.smask[0], s1&t.smask[1], d0&t.dmask[0], d1&t.dmask[1]
		b := ports & t.pmask
		p := k.Proto & t.proto
		h := hash6(a0, a1, b0, b1, b, p)
		tag := tagOf(h) * lanes
		var hit uint32
	probe:
		for n := uint32(0); ; n++ {
			li := t.off + (uint32(h)+n)&t.mask
			w := tags[li]
			for m := zeroLanes(w ^ tag); m != 0; m &= m - 1 {
				s := &slots[li*lineSlots+uint32(bits.TrailingZeros64(m)>>4)]
				if s.s0 == a0 && s.s1 == a1 && s.d0 == b0 && s.d1 == b1 && s.kb == b && uint8(s.val>>24) == p {
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
			best = x.scan(&x.buckets[ref], k.SPort, k.DPort, best)
		}
	}
	if best == none {
		return Verdict{Rule: Default, Action: rs.def}
	}
	return Verdict{Rule: int32(best), Action: rs.actions[best]}
}
