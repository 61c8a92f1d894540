package router

import (
	"math/rand/v2"
	"testing"
)

func TestAddrSetAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, n := range []int{0, 1, 5, 100, 1000} {
		ref := map[uint32]uint16{}
		for len(ref) < n {
			ref[rng.Uint32()|1] = uint16(rng.IntN(100))
		}
		s := newAddrSet(n)
		for a, v := range ref {
			s.add(a, v)
		}
		for a, v := range ref {
			if got, ok := s.get(a); !ok || got != v {
				t.Fatalf("n=%d: %08x -> %d %v, want %d", n, a, got, ok, v)
			}
		}
		for i := 0; i < 10000; i++ {
			a := rng.Uint32()
			_, want := ref[a]
			if _, ok := s.get(a); ok != want {
				t.Fatalf("n=%d: %08x present=%v, want %v", n, a, ok, want)
			}
		}
		if _, ok := s.get(0); ok {
			t.Fatal("0.0.0.0 is never a router address")
		}
	}
}
