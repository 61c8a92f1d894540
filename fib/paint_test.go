package fib

import (
	"math/bits"
	"slices"
)

// The painting builder: the straightforward way to compile a chunk, kept
// only as the reference the tests compare the sweep (buildNode) and flat
// (buildFlat) builders with.

// buildPaint is build with buildNodePaint (for tests).
func (b *builder) buildPaint(def uint32) {
	b.nodes = b.nodes[:0]
	b.leaves = b.leaves[:0]
	b.nodes = append(b.nodes, node{})
	b.buildNodePaint(0, 0, b.ents, def)
}

// buildNodePaint is the straightforward version of buildNode (paint 64
// slots, then encode them); tests check that both agree.
func (b *builder) buildNodePaint(ni int, lv uint, ents []bent, def uint32) {
	end := 24 + 6*lv
	slots, gs, ge := &b.slots[lv], &b.gs[lv], &b.ge[lv]
	for i := range slots {
		slots[i] = def
	}
	var vec uint64
	for i := 0; i < len(ents); {
		e := ents[i]
		k := slotOf(e.addr, end)
		if uint(e.plen) <= end {
			n := uint64(1) << (end - uint(e.plen))
			for j := k; j < k+n; j++ {
				slots[j] = e.nh
			}
			i++
			continue
		}
		j := i + 1
		for j < len(ents) && uint(ents[j].plen) > end && slotOf(ents[j].addr, end) == k {
			j++
		}
		vec |= 1 << k
		gs[k], ge[k] = int32(i), int32(j)
		i = j
	}
	cb := len(b.nodes)
	for range bits.OnesCount64(vec) {
		b.nodes = append(b.nodes, node{})
	}
	// leaves, branch-free: slot k starts a run if it is a leaf and differs
	// from the previous leaf slot (prev starts as an impossible value)
	lb := len(b.leaves)
	b.leaves = slices.Grow(b.leaves, 64)
	out := b.leaves[lb : lb+64]
	var leafvec uint64
	prev := ^uint32(0)
	n := 0
	for k := range 64 {
		v := slots[k]
		isLeaf := uint32(^vec>>k) & 1
		d := v ^ prev
		bit := isLeaf & ((d | -d) >> 31)
		leafvec |= uint64(bit) << k
		out[n&63] = v
		n += int(bit)
		prev ^= d & -isLeaf
	}
	b.leaves = b.leaves[:lb+n]
	b.nodes[ni] = node{Vec: vec, Leafvec: leafvec, Base0: uint32(lb), Base1: uint32(cb)}
	c := cb
	for m := vec; m != 0; m &= m - 1 {
		k := bits.TrailingZeros64(m)
		b.buildNodePaint(c, lv+1, ents[gs[k]:ge[k]], slots[k])
		c++
	}
}
