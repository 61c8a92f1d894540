package poptrie

import (
	"slices"
	"testing"
)

// flatten lists the leaves of the subtree at i in depth-first order, each
// node's own leaves before its children's.
func flatten(nodes []Node, leaves []uint32, i uint32, out []uint32) []uint32 {
	n := nodes[i]
	k, nl := 0, 0
	for m := n.Leafvec; m != 0; m &= m - 1 {
		nl++
	}
	out = append(out, leaves[n.Base0:n.Base0+uint32(nl)]...)
	for m := n.Vec; m != 0; m &= m - 1 {
		out = flatten(nodes, leaves, n.Base1+uint32(k), out)
		k++
	}
	return out
}

// subtree returns a built subtree (indices relative to 0): a root with two
// children, the second with one child; leaf values start at v.
func subtree(v uint32) ([]Node, []uint32) {
	nodes := []Node{
		{Vec: 1<<3 | 1<<9, Leafvec: 1 | 1<<3, Base0: 0, Base1: 1},
		{Leafvec: 1, Base0: 2},
		{Vec: 1 << 5, Leafvec: 1 | 1<<5 | 1<<6, Base0: 3, Base1: 3},
		{Leafvec: 1 | 1<<1, Base0: 6},
	}
	leaves := []uint32{v, v + 1, v + 2, v + 3, v + 4, v + 5, v + 6, v + 7}
	return nodes, leaves
}

func TestPlaceAppendCompact(t *testing.T) {
	bn, bl := subtree(10)
	want := flatten(bn, bl, 0, nil)
	if nn, nl := SubtreeSize(bn, 0); nn != 4 || nl != len(want) {
		t.Fatalf("SubtreeSize = %d, %d; want 4, %d", nn, nl, len(want))
	}

	// two copies by Append, one garbage copy by Place between them
	var nodes []Node
	var leaves []uint32
	nodes, leaves = Append(nodes, leaves, bn, bl)
	nodes = append(nodes, make([]Node, len(bn))...)
	leaves = append(leaves, make([]uint32, len(bl))...)
	Place(nodes, leaves, uint32(len(bn)), uint32(len(bl)), bn, bl)
	second := uint32(len(nodes))
	nodes, leaves = Append(nodes, leaves, bn, bl)
	for _, r := range []uint32{0, uint32(len(bn)), second} {
		if got := flatten(nodes, leaves, r, nil); !slices.Equal(got, want) {
			t.Fatalf("subtree at %d: leaves %v, want %v", r, got, want)
		}
	}

	dir := []uint32{LeafFlag | 7, second, LeafFlag | 1, 0}
	if nn, nl := LiveSize(dir, nodes); nn != 8 || nl != 2*len(want) {
		t.Fatalf("LiveSize = %d, %d; want 8, %d", nn, nl, 2*len(want))
	}
	ndir := make([]uint32, len(dir))
	cn, cl, nUsed, lUsed := Compact(ndir, dir, nodes, leaves, 100, 200)
	if nUsed != 8 || lUsed != 2*len(want) {
		t.Fatalf("Compact used %d nodes, %d leaves; want 8, %d", nUsed, lUsed, 2*len(want))
	}
	if len(cn) < nUsed+100 || len(cl) < lUsed+200 {
		t.Fatalf("Compact left no room: %d nodes, %d leaves", len(cn), len(cl))
	}
	if ndir[0] != dir[0] || ndir[2] != dir[2] {
		t.Fatalf("leaf entries changed: %v -> %v", dir, ndir)
	}
	for _, i := range []int{1, 3} {
		if got := flatten(cn, cl, ndir[i], nil); !slices.Equal(got, want) {
			t.Fatalf("compacted entry %d: leaves %v, want %v", i, got, want)
		}
	}
}
