// Package poptrie holds the node layout and the control-plane helpers
// (placing a built subtree, sizing and compacting the live tree) shared by
// the IPv4 FIB (package fib) and the IPv6 FIB (package fib6). The lookups
// and the builders stay in those packages: they depend on the key width and
// are the per-packet and per-route hot code.
//
// A tree is a directory of entries, each either a leaf (LeafFlag |
// next-hop index) or the index of a chunk's root node, over two
// pointer-free arrays, nodes and leaves. A node has 64 slots: slot i is a
// child node (bit i of Vec) or a leaf; children are stored contiguously
// from Base1, leaves run-length compressed from Base0 (bit i of Leafvec
// marks a slot whose leaf differs from the previous slot's).
package poptrie

import "math/bits"

// LeafFlag marks a directory entry that is a leaf, not a node index.
const LeafFlag = 1 << 31

// Node is one trie node.
type Node struct {
	Vec     uint64
	Leafvec uint64
	Base0   uint32 // first leaf
	Base1   uint32 // first child
}

// NodeBytes is the size of a Node.
const NodeBytes = 24

// Place copies a subtree built with indices relative to 0 (bn, bl) to
// nodes[nb:] and leaves[lb:], rebasing its indices.
func Place(nodes []Node, leaves []uint32, nb, lb uint32, bn []Node, bl []uint32) {
	for i, n := range bn {
		n.Base0 += lb
		n.Base1 += nb
		nodes[nb+uint32(i)] = n
	}
	copy(leaves[lb:], bl)
}

// Append appends a subtree built with indices relative to 0 (bn, bl) to
// nodes and leaves, rebasing its indices; its root is at the old
// len(nodes).
func Append(nodes []Node, leaves []uint32, bn []Node, bl []uint32) ([]Node, []uint32) {
	nb, lb := len(nodes), len(leaves)
	nodes = append(nodes, bn...)
	leaves = append(leaves, bl...)
	for i := nb; i < len(nodes); i++ {
		nodes[i].Base0 += uint32(lb)
		nodes[i].Base1 += uint32(nb)
	}
	return nodes, leaves
}

// SubtreeSize counts the nodes and leaves of the subtree rooted at i.
func SubtreeSize(nodes []Node, i uint32) (nn, nl int) {
	n := nodes[i]
	nn, nl = 1, bits.OnesCount64(n.Leafvec)
	for c := range uint32(bits.OnesCount64(n.Vec)) {
		a, l := SubtreeSize(nodes, n.Base1+c)
		nn += a
		nl += l
	}
	return nn, nl
}

// LiveSize counts the nodes and leaves reachable from dir.
func LiveSize(dir []uint32, nodes []Node) (nn, nl int) {
	for _, e := range dir {
		if e&LeafFlag == 0 {
			a, b := SubtreeSize(nodes, e)
			nn += a
			nl += b
		}
	}
	return nn, nl
}

// headroom sizes arrays at compaction: three times the live size, so that
// the garbage of many rebuilds fits before the next compaction.
func headroom(live, need, min int) int {
	return live + need + 2*max(live, min)
}

// Compact copies the tree reachable from dir into fresh arrays with room
// for needN more nodes and needL more leaves, writing the new directory
// entries to ndir (len(dir)). It returns the arrays at full capacity and
// how much of each is used.
func Compact(ndir, dir []uint32, nodes []Node, leaves []uint32, needN, needL int) (nn []Node, nl []uint32, nUsed, lUsed int) {
	nLive, lLive := LiveSize(dir, nodes)
	c := copier{
		srcN:   nodes,
		srcL:   leaves,
		nodes:  make([]Node, 0, headroom(nLive, needN, 4096)),
		leaves: make([]uint32, 0, headroom(lLive, needL, 16384)),
	}
	for i, e := range dir {
		if e&LeafFlag != 0 {
			ndir[i] = e
			continue
		}
		dst := len(c.nodes)
		c.nodes = append(c.nodes, Node{})
		c.copyNode(e, dst)
		ndir[i] = uint32(dst)
	}
	return c.nodes[:cap(c.nodes)], c.leaves[:cap(c.leaves)], len(c.nodes), len(c.leaves)
}

// copier copies subtrees into fresh arrays.
type copier struct {
	srcN   []Node
	srcL   []uint32
	nodes  []Node
	leaves []uint32
}

// copyNode copies node i of the source into c.nodes[dst] (already reserved).
func (c *copier) copyNode(i uint32, dst int) {
	n := c.srcN[i]
	nl := bits.OnesCount64(n.Leafvec)
	lb := len(c.leaves)
	c.leaves = append(c.leaves, c.srcL[n.Base0:int(n.Base0)+nl]...)
	k := bits.OnesCount64(n.Vec)
	cb := len(c.nodes)
	for range k {
		c.nodes = append(c.nodes, Node{})
	}
	c.nodes[dst] = Node{Vec: n.Vec, Leafvec: n.Leafvec, Base0: uint32(lb), Base1: uint32(cb)}
	for j := range k {
		c.copyNode(n.Base1+uint32(j), cb+j)
	}
}
