package filter

import (
	"cmp"
	"container/heap"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"

	"vrouter/config"
	"vrouter/packet"
)

// Port dimension kinds of a shape.
const (
	kindAny   = 0 // masked out of the key (no ports given, or 0-65535)
	kindExact = 1 // one port, in the key
	kindRange = 2 // a range: masked out of the key, checked in the bucket
)

// slot is one hash table slot: the masked key and what it maps to.
// val: bits 0-22 ref+1 (0 = empty slot), bit 23 rangeFlag, bits 24-31 the
// protocol of the key. ref is a rule index, or with rangeFlag a bucket.
type slot struct {
	ka  uint64 // src&smask<<32 | dst&dmask
	kb  uint32 // sport<<16 | dport, exact dimensions only (ICMP: the type as dport)
	val uint32
}

const (
	refMask   = 1<<23 - 1
	rangeFlag = 1 << 23
)

// table is one shape: a mask over the packet's fields and the hash table of
// the masked keys of every rule entry with that shape.
type table struct {
	smask, dmask uint32
	pmask        uint32 // port bits in kb
	min          uint32 // lowest rule index in this table
	off, mask    uint32 // lines: tags[off : off+mask+1], slots from off*lineSlots
	probe        uint32 // the longest probe sequence of a stored key, in lines
	proto        uint8  // 0xff: protocol in the key, 0: any protocol
	needPorts    bool
}

// bucket is the list of entries that share one masked key in a table with
// a port range dimension: sorted by rule index, scanned until one's ranges
// hold the packet's ports, or, when ivN > 0, looked up through an interval
// index over one port (dim 0: dport, 1: sport).
type bucket struct {
	first, n     uint32 // rents[first : first+n]
	ivFirst, ivN uint32 // bounds/ivs[ivFirst : ivFirst+ivN]
	dim          uint8
}

// rangeEntry is one rule entry in a bucket: inclusive port ranges (full
// ranges for the dimensions the key holds).
type rangeEntry struct {
	rule               uint32
	slo, shi, dlo, dhi uint16
}

type span struct{ first, n uint32 }

const (
	sizeofTable      = 32
	sizeofSlot       = 16
	sizeofBucket     = 20
	sizeofRangeEntry = 12
	sizeofSpan       = 8

	// lineSlots: slots per hash line. A key hashes to a line and is stored
	// in its first free slot, or in the next line's when full. A line has a
	// tag word: 16 bits of the key's hash per slot (0 = free).
	lineSlots = 4

	// linearMax: buckets up to this many entries are scanned; longer ones
	// get an interval index when it fits in ivBudget.
	linearMax = 8
)

// ivBudget bounds the interval entries of one bucket of n entries.
func ivBudget(n int) int { return 4*n + 64 }

// shape packs a table's mask: prefix lengths, whether the protocol is in
// the key, the kinds of the two port dimensions and whether ports are
// needed.
type shape uint32

func mkShape(slen, dlen int, pset bool, sk, dk int, need bool) shape {
	s := uint32(slen) | uint32(dlen)<<6 | uint32(sk)<<14 | uint32(dk)<<16
	if pset {
		s |= 1 << 12
	}
	if need {
		s |= 1 << 13
	}
	return shape(s)
}

func (s shape) slen() int    { return int(s & 63) }
func (s shape) dlen() int    { return int(s >> 6 & 63) }
func (s shape) pset() bool   { return s&(1<<12) != 0 }
func (s shape) need() bool   { return s&(1<<13) != 0 }
func (s shape) skind() int   { return int(s >> 14 & 3) }
func (s shape) dkind() int   { return int(s >> 16 & 3) }
func (s shape) ranged() bool { return s.skind() == kindRange || s.dkind() == kindRange }

// mask is the netmask of a prefix length (a shift by 32 gives 0).
func mask(bits int) uint32 { return ^uint32(0) << (32 - bits) }

func portMask(kind int) uint32 {
	if kind == kindExact {
		return 0xffff
	}
	return 0
}

// entry is one (source, destination, sport item, dport item) combination of
// a rule, while compiling.
type entry struct {
	ka   uint64
	kb   uint32
	p    uint8
	rule uint32
	r    rangeEntry
}

type builder struct {
	shape shape
	ents  []entry
}

func kindOf(r config.PortRange) int {
	switch {
	case r.Lo == 0 && r.Hi == 0xffff:
		return kindAny
	case r.Lo == r.Hi:
		return kindExact
	}
	return kindRange
}

var fullPorts = []config.PortRange{{Lo: 0, Hi: 0xffff}}
var (
	anyPrefix  = []netip.Prefix{netip.PrefixFrom(netip.IPv4Unspecified(), 0)}
	anyPrefix6 = []netip.Prefix{netip.PrefixFrom(netip.IPv6Unspecified(), 0)}
)

func compileRuleset(f *config.Filter) (*Ruleset, error) {
	def, ok := parseAction(f.Default)
	if !ok {
		return nil, fmt.Errorf("filter %q: default %q is not accept, drop or reject", f.Name, f.Default)
	}
	rs := &Ruleset{def: def, cfg: cloneFilter(f)}
	total := 0
	for i := range f.Rules {
		total += f.Rules[i].Entries()
		if total > config.MaxFilterEntries {
			return nil, fmt.Errorf("filter %q: more than %d entries (rule %d)", f.Name, config.MaxFilterEntries, i+1)
		}
	}
	byShape := map[shape]*builder{}
	for i := range f.Rules {
		r := &f.Rules[i]
		what := func(format string, args ...any) error {
			return fmt.Errorf("filter %q rule %d: %s", f.Name, i+1, fmt.Sprintf(format, args...))
		}
		act, ok := parseAction(r.Action)
		if !ok {
			return nil, what("action %q is not accept, drop or reject", r.Action)
		}
		rs.actions = append(rs.actions, act)
		var proto uint8
		pset := true
		switch r.Proto {
		case config.ProtoAny, "":
			pset = false
		case config.ProtoTCP:
			proto = ProtoTCP
		case config.ProtoUDP:
			proto = ProtoUDP
		case config.ProtoICMP:
			proto = ProtoICMP
		case config.ProtoICMPv6:
			proto = ProtoICMPv6
		default:
			return nil, what("proto %q is not tcp, udp, icmp, icmpv6 or any", r.Proto)
		}
		hasPorts := len(r.SPort) > 0 || len(r.DPort) > 0
		if hasPorts && proto != ProtoTCP && proto != ProtoUDP {
			return nil, what("ports need proto tcp or udp")
		}
		if r.HasICMPType && proto != ProtoICMP && proto != ProtoICMPv6 {
			return nil, what("icmp_type needs proto icmp or icmpv6")
		}
		need := hasPorts || r.HasICMPType
		sps, dps := normPorts(r.SPort), normPorts(r.DPort)
		if r.HasICMPType {
			dps = []config.PortRange{{Lo: uint16(r.ICMPType), Hi: uint16(r.ICMPType)}}
		}
		fam, err := ruleFamily(r, proto)
		if err != nil {
			return nil, what("%v", err)
		}
		if fam != 4 {
			if err := rs.six.expand(r, uint32(i), proto, pset, need, sps, dps); err != nil {
				return nil, what("%v", err)
			}
		}
		if fam == 6 {
			continue
		}
		srcs, err := normPrefixes(r.Source, false)
		if err != nil {
			return nil, what("source: %v", err)
		}
		dsts, err := normPrefixes(r.Destination, false)
		if err != nil {
			return nil, what("destination: %v", err)
		}
		for _, s := range srcs {
			sm := mask(s.Bits())
			sa := packet.U32(s.Addr()) & sm
			for _, d := range dsts {
				dm := mask(d.Bits())
				ka := uint64(sa)<<32 | uint64(packet.U32(d.Addr())&dm)
				for _, sp := range sps {
					sk := kindOf(sp)
					for _, dp := range dps {
						dk := kindOf(dp)
						sh := mkShape(s.Bits(), d.Bits(), pset, sk, dk, need)
						b := byShape[sh]
						if b == nil {
							b = &builder{shape: sh}
							byShape[sh] = b
						}
						e := entry{ka: ka, p: proto, rule: uint32(i),
							r: rangeEntry{rule: uint32(i), slo: 0, shi: 0xffff, dlo: 0, dhi: 0xffff}}
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
						b.ents = append(b.ents, e)
						rs.entries++
					}
				}
			}
		}
	}
	shapes := make([]*builder, 0, len(byShape))
	for _, b := range byShape {
		shapes = append(shapes, b)
	}
	slices.SortFunc(shapes, func(a, b *builder) int { return cmp.Compare(a.shape, b.shape) })
	for _, b := range shapes {
		rs.build(b)
	}
	// Tables in the order of their best rule: Classify stops at the first
	// table that cannot beat the match it has.
	slices.SortStableFunc(rs.tables, func(a, b table) int { return cmp.Compare(a.min, b.min) })
	rs.six.finish()
	return rs, nil
}

// ruleFamily gives the address family a rule applies to: 4 or 6 by its
// prefixes or its protocol (icmp, icmpv6), 0 for both (no prefixes, a
// protocol of both). A rule mixing the families is an error.
func ruleFamily(r *config.FilterRule, proto uint8) (int, error) {
	fam := 0
	switch proto {
	case ProtoICMP:
		fam = 4
	case ProtoICMPv6:
		fam = 6
	}
	for _, l := range [][]netip.Prefix{r.Source, r.Destination} {
		for _, p := range l {
			f := 4
			if p.Addr().Is6() && !p.Addr().Is4In6() {
				f = 6
			}
			if fam != 0 && f != fam {
				return 0, fmt.Errorf("mixes IPv4 and IPv6: %v does not go with the rule's other prefixes or proto %q", p, r.Proto)
			}
			fam = f
		}
	}
	return fam, nil
}

// build adds the table of one shape.
func (rs *Ruleset) build(b *builder) {
	sh := b.shape
	t := table{
		smask:     mask(sh.slen()),
		dmask:     mask(sh.dlen()),
		pmask:     portMask(sh.skind())<<16 | portMask(sh.dkind()),
		min:       ^uint32(0),
		needPorts: sh.need(),
	}
	if sh.pset() {
		t.proto = 0xff
	}
	ents := b.ents
	slices.SortFunc(ents, func(x, y entry) int {
		if c := cmp.Compare(x.ka, y.ka); c != 0 {
			return c
		}
		if c := cmp.Compare(x.kb, y.kb); c != 0 {
			return c
		}
		if c := cmp.Compare(x.p, y.p); c != 0 {
			return c
		}
		return cmp.Compare(x.rule, y.rule)
	})
	// one slot per distinct masked key
	keys := 0
	for i := range ents {
		if i == 0 || !sameKey(&ents[i], &ents[i-1]) {
			keys++
		}
	}
	// lines of lineSlots slots, at most half full
	lines := uint32(1)
	for lines*lineSlots < uint32(2*keys) {
		lines <<= 1
	}
	t.off = uint32(len(rs.tags))
	t.mask = lines - 1
	rs.tags = append(rs.tags, make([]uint64, lines)...)
	rs.slots = append(rs.slots, make([]slot, lines*lineSlots)...)
	for i := 0; i < len(ents); {
		j := i + 1
		for j < len(ents) && sameKey(&ents[j], &ents[i]) {
			j++
		}
		g := ents[i:j]
		t.min = min(t.min, g[0].rule)
		var val uint32
		if sh.ranged() {
			val = uint32(len(rs.buckets)+1) | rangeFlag
			ents := make([]rangeEntry, len(g))
			for k := range g {
				ents[k] = g[k].r
			}
			rs.addBucket(ents, sh.skind(), sh.dkind())
		} else {
			val = g[0].rule + 1
		}
		val |= uint32(g[0].p) << 24
		h := hash(g[0].ka, g[0].kb, g[0].p)
		for n := uint32(0); ; n++ {
			li := t.off + (uint32(h)+n)&t.mask
			free := zeroLanes(rs.tags[li])
			if free == 0 {
				continue
			}
			lane := uint32(bits.TrailingZeros64(free) >> 4)
			rs.tags[li] |= tagOf(h) << (16 * lane)
			rs.slots[li*lineSlots+lane] = slot{ka: g[0].ka, kb: g[0].kb, val: val}
			t.probe = max(t.probe, n+1)
			break
		}
		i = j
	}
	rs.tables = append(rs.tables, t)
}

func sameKey(a, b *entry) bool { return a.ka == b.ka && a.kb == b.kb && a.p == b.p }

// addBucket stores the entries of one key of a ranged table (sorted by
// rule), with an interval index when the bucket is long.
// skind and dkind are the port kinds of the table's shape.
func (rs *ranges) addBucket(g []rangeEntry, skind, dkind int) {
	bk := bucket{first: uint32(len(rs.rents)), n: uint32(len(g))}
	rs.rents = append(rs.rents, g...)
	if len(g) > linearMax {
		dim := uint8(0)
		if dkind != kindRange {
			dim = 1
		}
		twoD := skind == kindRange && dkind == kindRange
		if bounds, lists, ok := intervals(rs.rents[bk.first:], dim, twoD); ok {
			bk.ivFirst, bk.ivN, bk.dim = uint32(len(rs.bounds)), uint32(len(bounds)), dim
			rs.bounds = append(rs.bounds, bounds...)
			for _, l := range lists {
				rs.ivs = append(rs.ivs, span{first: uint32(len(rs.ivEnts)), n: uint32(len(l))})
				rs.ivEnts = append(rs.ivEnts, l...)
			}
		}
	}
	rs.buckets = append(rs.buckets, bk)
}

// dimRange is an entry's range on dimension dim (0: dport, 1: sport).
func dimRange(e *rangeEntry, dim uint8) (lo, hi uint16) {
	if dim == 0 {
		return e.dlo, e.dhi
	}
	return e.slo, e.shi
}

// intervals builds the interval index of a bucket (entries sorted by rule)
// over port dimension dim: the elementary intervals that the entries'
// ranges cut 0..65535 into, each with the entries covering it in rule
// order. All entries of a table have the same shape, so either the other
// dimension is no range (one-dimensional: an interval keeps only its best
// entry, found by a sweep) or every entry has a range on both (each
// interval lists every entry covering it; ok is false when that exceeds
// ivBudget, and the bucket is then scanned).
func intervals(ents []rangeEntry, dim uint8, twoD bool) (bounds []uint16, lists [][]rangeEntry, ok bool) {
	pts := []uint16{0}
	for i := range ents {
		lo, hi := dimRange(&ents[i], dim)
		pts = append(pts, lo)
		if hi < 0xffff {
			pts = append(pts, hi+1)
		}
	}
	slices.Sort(pts)
	pts = slices.Compact(pts)
	lists = make([][]rangeEntry, len(pts))
	if twoD {
		size := 0
		for i := range ents {
			lo, hi := dimRange(&ents[i], dim)
			k, _ := slices.BinarySearch(pts, lo)
			for ; k < len(pts) && pts[k] <= hi; k++ {
				lists[k] = append(lists[k], ents[i])
				if size++; size > ivBudget(len(ents)) {
					return nil, nil, false
				}
			}
		}
		return pts, lists, true
	}
	// Sweep the interval starts with a heap of the entries that have
	// started; the top, once the ended ones are popped, is the best.
	order := make([]int, len(ents))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		la, _ := dimRange(&ents[a], dim)
		lb, _ := dimRange(&ents[b], dim)
		return cmp.Compare(la, lb)
	})
	h := &entHeap{}
	next := 0
	for k, start := range pts {
		for ; next < len(order); next++ {
			if lo, _ := dimRange(&ents[order[next]], dim); lo > start {
				break
			}
			heap.Push(h, order[next])
		}
		for h.Len() > 0 {
			if _, hi := dimRange(&ents[h.idx[0]], dim); hi >= start {
				break
			}
			heap.Pop(h)
		}
		if h.Len() > 0 {
			lists[k] = []rangeEntry{ents[h.idx[0]]}
		}
	}
	return pts, lists, true
}

// entHeap holds entry indices, lowest first: the entries are sorted by
// rule, so the top is the best rule.
type entHeap struct{ idx []int }

func (h *entHeap) Len() int           { return len(h.idx) }
func (h *entHeap) Less(i, j int) bool { return h.idx[i] < h.idx[j] }
func (h *entHeap) Swap(i, j int)      { h.idx[i], h.idx[j] = h.idx[j], h.idx[i] }
func (h *entHeap) Push(x any)         { h.idx = append(h.idx, x.(int)) }
func (h *entHeap) Pop() any {
	x := h.idx[len(h.idx)-1]
	h.idx = h.idx[:len(h.idx)-1]
	return x
}

// normPrefixes gives the prefixes of a source or destination list (of one
// family: IPv6 if six) without those inside another one of the list; an
// empty list is 0.0.0.0/0 or ::/0.
func normPrefixes(ps []netip.Prefix, six bool) ([]netip.Prefix, error) {
	if len(ps) == 0 {
		if six {
			return anyPrefix6, nil
		}
		return anyPrefix, nil
	}
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if !six && (!p.IsValid() || !p.Addr().Is4()) {
			return nil, fmt.Errorf("%v is not an IPv4 prefix", p)
		}
		if six && (!p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() || p.Addr().Zone() != "") {
			return nil, fmt.Errorf("%v is not an IPv6 prefix", p)
		}
		out = append(out, p.Masked())
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := cmp.Compare(a.Bits(), b.Bits()); c != 0 {
			return c
		}
		return a.Addr().Compare(b.Addr())
	})
	kept := make(map[netip.Prefix]bool, len(out))
	var lens []int // lengths kept so far, ascending
	res := out[:0]
	for _, p := range out {
		covered := false
		for _, l := range lens {
			if l > p.Bits() {
				break
			}
			if kept[netip.PrefixFrom(p.Addr(), l).Masked()] {
				covered = true
				break
			}
		}
		if covered {
			continue
		}
		kept[p] = true
		if len(lens) == 0 || lens[len(lens)-1] != p.Bits() {
			lens = append(lens, p.Bits())
		}
		res = append(res, p)
	}
	return res, nil
}

// normPorts sorts a port list and merges overlapping items; an empty list
// is 0-65535.
func normPorts(rs []config.PortRange) []config.PortRange {
	if len(rs) == 0 {
		return fullPorts
	}
	out := slices.Clone(rs)
	slices.SortFunc(out, func(a, b config.PortRange) int { return cmp.Compare(a.Lo, b.Lo) })
	res := out[:1]
	for _, r := range out[1:] {
		last := &res[len(res)-1]
		if r.Lo <= last.Hi {
			last.Hi = max(last.Hi, r.Hi)
			continue
		}
		res = append(res, r)
	}
	return res
}

// cloneFilter copies a ruleset's configuration so that the compiled form
// does not share slices with the Config it came from.
func cloneFilter(f *config.Filter) config.Filter {
	c := *f
	c.Rules = slices.Clone(f.Rules)
	for i := range c.Rules {
		r := &c.Rules[i]
		r.Source = slices.Clone(r.Source)
		r.Destination = slices.Clone(r.Destination)
		r.SPort = slices.Clone(r.SPort)
		r.DPort = slices.Clone(r.DPort)
	}
	return c
}
