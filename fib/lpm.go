package fib

import (
	"math/bits"
	"slices"
	"sync/atomic"

	"vrouter/internal/poptrie"
)

// The compiled FIB is a poptrie-like multibit trie over pointer-free arrays.
//
// The top 18 bits of the address index dir directly (a "chunk" is a /18).
// A dir entry is either a leaf (leafFlag | next-hop index) or the index of
// the chunk's root node. A node has 64 slots (6 address bits); slot i is
// either a child node (bit i of vec) or a leaf. Children are stored
// contiguously from base1, so child i is base1 + popcount(vec below i).
// Leaves are run-length compressed: bit i of leafvec marks a leaf slot whose
// value differs from the previous leaf slot; the leaf of slot i is
// leaves[base0 + popcount(leafvec up to and including i) - 1]. Levels cover
// address bits 18-23, 24-29 and 30-35 (the last with bits 32-35 zero), so a
// lookup reads dir, at most three nodes and one leaf.
//
// Publishing: readers load the snapshot pointer once, then the dir entry
// with an atomic load, and the leaf with an atomic load. The writer
// modifies memory reachable from a published dir entry in one way only:
// leaves, each with one atomic store (Table.rewriteLeaf: the runs under a
// changed /19-/24 prefix get new values; a lookup reads one leaf and sees
// its old or its new value). Any other change is a rebuilt chunk written into unused space at
// the tail of the arrays, then published by atomically storing the new dir
// entry. The old
// chunk's space becomes garbage; when the tail runs out, the live chunks are
// copied into fresh arrays (compaction) and a new snapshot is published with
// an atomic pointer swap; lookups still running on the old snapshot keep
// reading unchanged memory, which the GC frees when they are done.

const (
	dirBits  = 18
	dirSize  = 1 << dirBits
	leafFlag = poptrie.LeafFlag
	// maxNH is the largest next-hop index (next-hop indices fit 24 bits in
	// the RIB encoding).
	maxNH = 1<<24 - 1
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
	return dirSize*4 + int64(len(s.nodes))*nodeBytes + int64(len(s.leaves))*4 + int64(len(s.nhs))*8
}

// lookup returns the next-hop index for addr (0: no route).
func (s *snapshot) lookup(addr uint32) uint32 {
	e := atomic.LoadUint32(&s.dir[addr>>(32-dirBits)])
	if e&leafFlag != 0 {
		return e &^ leafFlag
	}
	n := &s.nodes[e]
	v := (addr >> 8) & 63
	if n.Vec>>v&1 != 0 {
		n = &s.nodes[n.Base1+uint32(bits.OnesCount64(n.Vec&(uint64(1)<<v-1)))]
		v = (addr >> 2) & 63
		if n.Vec>>v&1 != 0 {
			n = &s.nodes[n.Base1+uint32(bits.OnesCount64(n.Vec&(uint64(1)<<v-1)))]
			v = (addr << 4) & 63
		}
	}
	// atomic: a leaf of a published chunk may be rewritten in place
	// (see Table.rewriteLeaf); on amd64 this is a plain load
	return atomic.LoadUint32(&s.leaves[n.Base0+uint32(bits.OnesCount64(n.Leafvec&(uint64(2)<<v-1)))-1])
}

// bent is one (best) route of a chunk as the builder sees it.
type bent struct {
	addr uint32
	plen uint8
	nh   uint32
}

// builder compiles one chunk into scratch arrays with indices relative to
// their start.
type builder struct {
	nodes  []node
	leaves []uint32
	ents   []bent
	// per level scratch (not zeroed between uses)
	slots  [3][64]uint32
	gs, ge [3][64]int32
	ck     [3][64]uint8  // child slot
	cd     [3][64]uint32 // child default
}

func slotOf(addr uint32, end uint) uint64 {
	return (uint64(addr) << 4 >> (36 - end)) & 63
}

// build compiles b.ents (sorted by address then length, all longer than
// /18, all inside one chunk) over the default next hop def. The root is
// node 0 of b.nodes.
func (b *builder) build(def uint32) {
	b.nodes = b.nodes[:0]
	b.leaves = b.leaves[:0]
	b.nodes = append(b.nodes, node{})
	b.buildNode(0, 0, b.ents, def)
}

// buildNode compiles one node by a sweep over its routes: they come in
// address order with covering routes first, so the painted slot ranges nest
// and a stack of open ranges gives the value of every stretch of slots;
// each stretch that differs from the previous leaf value starts a leaf run.
// The work is proportional to the routes, not to the 64 slots.
func (b *builder) buildNode(ni int, lv uint, ents []bent, def uint32) {
	end := 24 + 6*lv
	type span struct {
		end uint64
		v   uint32
	}
	var stack [8]span
	stack[0] = span{64, def}
	top := 0
	var vec, leafvec uint64
	pos := uint64(0)
	prev := ^uint32(0) // impossible value: the first stretch starts a run
	lb := len(b.leaves)
	// emit gives slots [pos, upto) the value v
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
		k := slotOf(e.addr, end)
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
		for j < len(ents) && uint(ents[j].plen) > end && slotOf(ents[j].addr, end) == k {
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
		b.buildNode(cb+c, lv+1, ents[gs[c]:ge[c]], cd[c])
	}
}

// buildFlat compiles a chunk whose routes are all /24 or shorter (most
// chunks) straight from its sorted route list: one root node, its 64 slots
// painted in list order (covering routes come first, so a more specific one
// overwrites), then run-length encoded. It reports false, having built
// nothing, when a route is longer than /24 or the chunk is a single leaf
// (the general builder handles those).
func (b *builder) buildFlat(l []rent, def uint32) bool {
	slots := &b.slots[0]
	for i := range slots {
		slots[i] = def
	}
	last := ^uint32(0)
	for i := range l {
		e := &l[i] // (a copy of the array would go through the stack)
		// e[0]: low 14 address bits; e[1]: plen<<10 | src<<8 | nh>>16
		plen := uint32(e[1] >> 10)
		if plen > 24 {
			return false
		}
		pk := uint32(e[0])<<6 | plen
		if pk == last {
			continue // a worse source of the same prefix
		}
		last = pk
		nh := uint32(e[1]&0xff)<<16 | uint32(e[2])
		k := uint32(e[0]>>8) & 63
		if plen == 24 {
			slots[k] = nh
			continue
		}
		for j := k; j < k+1<<(24-plen); j++ {
			slots[j&63] = nh
		}
	}
	// slot k starts a run if it differs from slot k-1 (slot 0 always)
	leafvec := uint64(1)
	for k := 1; k < 64; k++ {
		d := slots[k] ^ slots[k-1]
		leafvec |= uint64((d|-d)>>31) << k
	}
	if leafvec == 1 {
		return false
	}
	out := slices.Grow(b.leaves[:0], 64)
	for m := leafvec; m != 0; m &= m - 1 {
		out = append(out, slots[bits.TrailingZeros64(m)])
	}
	b.leaves = out
	b.nodes = append(b.nodes[:0], node{Leafvec: leafvec, Base1: 1})
	return true
}
