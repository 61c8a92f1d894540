package fib6

import (
	"math/bits"
	"sync/atomic"

	"vrouter/internal/poptrie"
)

// The compiled FIB is a poptrie-like multibit trie over pointer-free
// arrays, as in package fib, for 128-bit keys.
//
// The top 16 bits of the address index dir directly (a "chunk" is a /16;
// the real IPv6 table uses some sixty of them). A dir entry is either a
// leaf (leafFlag | next-hop index) or the index of the chunk's root node. A
// node has 64 slots (6 address bits); slot i is either a child node (bit i
// of vec) or a leaf. Children are stored contiguously from base1, so child
// i is base1 + popcount(vec below i). Leaves are run-length compressed: bit
// i of leafvec marks a leaf slot whose value differs from the previous leaf
// slot; the leaf of slot i is leaves[base0 + popcount(leafvec up to and
// including i) - 1]. Level k covers address bits 16+6k .. 21+6k (the last,
// k = 18, bits 124-127 and two zero bits), so a /32 ends at level 2 and a
// /48 at level 5.
//
// Publishing: readers load the snapshot pointer once, then the dir entry
// and every base1 with atomic loads (plain loads on amd64). Published
// memory changes in two ways only: a dir entry, or the base1 of a node
// (both one atomic store each). A change recompiles the smallest subtree
// that holds it (the deepest node whose range contains the changed prefix)
// into unused space at the tail of the arrays; the subtree root's siblings
// are copied there too, with the new root in its place, and the parent's
// base1 is switched to the copy (or, for a chunk root, the dir entry): the
// parent's vec does not change, so a lookup reading the old or the new
// base1 sees a complete old or new subtree. Replaced space becomes garbage;
// when the tail runs out, the live tree is copied into fresh arrays
// (compaction) and published with a pointer swap; lookups still on the old
// snapshot keep reading memory no writer touches again, which the GC frees.

const (
	dirBits  = 16
	dirSize  = 1 << dirBits
	stride   = 6
	leafFlag = poptrie.LeafFlag
)

type node = poptrie.Node

const nodeBytes = poptrie.NodeBytes

// snapshot is what lookups read. nodes, leaves and nhs have len == cap; the
// writer tracks how much of them is used.
type snapshot struct {
	dir    *[dirSize]uint32
	nodes  []node
	leaves []uint32
	nhs    []NextHop // index 0 is "no route"
}

func (s *snapshot) memBytes() int64 {
	return dirSize*4 + int64(len(s.nodes))*nodeBytes + int64(len(s.leaves))*4 + int64(len(s.nhs))*20
}

// lookup returns the next-hop index for the address hi/lo (0: no route).
func (s *snapshot) lookup(hi, lo uint64) uint32 {
	e := atomic.LoadUint32(&s.dir[hi>>(64-dirBits)])
	if e&leafFlag != 0 {
		return e &^ leafFlag
	}
	// the bits below the directory's, left-aligned; zeros shift in
	hi, lo = hi<<dirBits|lo>>(64-dirBits), lo<<dirBits
	n := &s.nodes[e]
	v := hi >> (64 - stride)
	for n.Vec>>v&1 != 0 {
		n = &s.nodes[atomic.LoadUint32(&n.Base1)+uint32(bits.OnesCount64(n.Vec&(uint64(1)<<v-1)))]
		hi, lo = hi<<stride|lo>>(64-stride), lo<<stride
		v = hi >> (64 - stride)
	}
	return s.leaves[n.Base0+uint32(bits.OnesCount64(n.Leafvec&(uint64(2)<<v-1)))-1]
}

// slotAt returns the 6 address bits of hi/lo from bit d on (zeros past 127).
func slotAt(hi, lo uint64, d uint) uint64 {
	switch {
	case d+stride <= 64:
		return hi >> (64 - stride - d) & 63
	case d >= 64:
		d -= 64
		if d+stride <= 64 {
			return lo >> (64 - stride - d) & 63
		}
		return lo << (d + stride - 64) & 63
	}
	return (hi<<(d+stride-64) | lo>>(128-stride-d)) & 63
}

// bent is one (best) route as the builder sees it.
type bent struct {
	hi, lo uint64
	plen   uint8
	nh     uint32
}

const levels = (128 - dirBits + stride - 1) / stride // 19

// builder compiles one subtree into scratch arrays with indices relative
// to their start.
type builder struct {
	nodes  []node
	leaves []uint32
	ents   []bent
	// per level scratch (not zeroed between uses)
	gs, ge [levels][64]int32
	ck     [levels][64]uint8  // child slot
	cd     [levels][64]uint32 // child default
}

// build compiles b.ents (sorted by address then length, all longer than d,
// all inside one prefix of length d) into a subtree whose root, node 0 of
// b.nodes, splits bits d..d+5, over the default next hop def.
func (b *builder) build(d uint, def uint32) {
	b.nodes = b.nodes[:0]
	b.leaves = b.leaves[:0]
	b.nodes = append(b.nodes, node{})
	b.buildNode(0, d, b.ents, def)
}

// buildNode compiles one node by a sweep over its routes: they come in
// address order with covering routes first, so the painted slot ranges nest
// and a stack of open ranges gives the value of every stretch of slots;
// each stretch that differs from the previous leaf value starts a leaf run.
// The work is proportional to the routes, not to the 64 slots.
func (b *builder) buildNode(ni int, d uint, ents []bent, def uint32) {
	lv := (d - dirBits) / stride
	end := d + stride
	type span struct {
		end uint64
		v   uint32
	}
	var stack [stride + 2]span
	stack[0] = span{64, def}
	top := 0
	var vec, leafvec uint64
	pos := uint64(0)
	prev := ^uint32(0) // impossible value: the first stretch starts a run
	lb := len(b.leaves)
	emit := func(upto uint64, v uint32) {
		if upto > pos {
			if v != prev {
				leafvec |= 1 << pos
				b.leaves = append(b.leaves, v)
				prev = v
			}
			pos = upto
		}
	}
	nc := 0
	ck, cd, gs, ge := &b.ck[lv], &b.cd[lv], &b.gs[lv], &b.ge[lv]
	for i := 0; i < len(ents); {
		e := ents[i]
		k := slotAt(e.hi, e.lo, d)
		for stack[top].end <= k {
			emit(stack[top].end, stack[top].v)
			top--
		}
		emit(k, stack[top].v)
		if uint(e.plen) <= end {
			top++
			stack[top] = span{k + uint64(1)<<(end-uint(e.plen)), e.nh}
			i++
			continue
		}
		j := i + 1
		for j < len(ents) && uint(ents[j].plen) > end && slotAt(ents[j].hi, ents[j].lo, d) == k {
			j++
		}
		vec |= 1 << k
		ck[nc], cd[nc], gs[nc], ge[nc] = uint8(k), stack[top].v, int32(i), int32(j)
		nc++
		pos = k + 1
		i = j
	}
	for top > 0 {
		emit(stack[top].end, stack[top].v)
		top--
	}
	emit(64, def)
	cb := len(b.nodes)
	for range nc {
		b.nodes = append(b.nodes, node{})
	}
	b.nodes[ni] = node{Vec: vec, Leafvec: leafvec, Base0: uint32(lb), Base1: uint32(cb)}
	for c := range nc {
		b.buildNode(cb+c, end, ents[gs[c]:ge[c]], cd[c])
	}
}
