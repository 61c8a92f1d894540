package arp

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"vrouter/packet"
)

type lookuper interface {
	Lookup(net uint16, ip uint32) (packet.MAC, bool)
}

// benchSetup fills both caches with n reachable neighbours and returns a
// random lookup order over them (length a power of two).
func benchSetup(n int) (*Cache, *refCache, []uint32) {
	cfg := testConfig()
	cfg.Max = max(n, 16)
	c, ref := New(cfg), newRef(cfg)
	ips := make([]uint32, n)
	for i := range ips {
		ips[i] = ip4(10, byte(i>>16), byte(i>>8), byte(i))
		c.Update(0, ips[i], macN(byte(i)), true, sec, nil)
		ref.Update(0, ips[i], macN(byte(i)), true, sec, nil)
	}
	r := rand.New(rand.NewPCG(uint64(n), 1))
	order := make([]uint32, 1<<16)
	for i := range order {
		order[i] = ips[r.IntN(n)]
	}
	return c, ref, order
}

// BenchmarkLookup compares the lock-free table with the original
// mutex+map cache, single goroutine and parallel, at several sizes.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{16, 4000, 65536} {
		c, ref, order := benchSetup(n)
		for _, impl := range []struct {
			name string
			l    lookuper
		}{{"lockfree", c}, {"mutexmap", ref}} {
			b.Run(fmt.Sprintf("%s/entries=%d", impl.name, n), func(b *testing.B) {
				b.ReportAllocs()
				l := impl.l
				i := 0
				for b.Loop() {
					if _, ok := l.Lookup(0, order[i&(len(order)-1)]); !ok {
						b.Fatal("miss")
					}
					i++
				}
			})
			b.Run(fmt.Sprintf("%s/entries=%d/parallel", impl.name, n), func(b *testing.B) {
				b.ReportAllocs()
				l := impl.l
				b.RunParallel(func(pb *testing.PB) {
					i := rand.IntN(len(order))
					for pb.Next() {
						if _, ok := l.Lookup(0, order[i&(len(order)-1)]); !ok {
							panic("miss")
						}
						i++
					}
				})
			})
		}
	}
}

// BenchmarkMissUpdate is the slow path: an unresolved neighbour gets a
// packet queued and is then resolved (flushing it), then forgotten.
func BenchmarkMissUpdate(b *testing.B) {
	c := New(testConfig())
	pkt := make([]byte, 1200)
	flush := func([]byte) {}
	b.ReportAllocs()
	i := uint32(0)
	for b.Loop() {
		ip := ip4(10, 0, 0, byte(i&7))
		c.Miss(0, ip, pkt, sec)
		c.Update(0, ip, macN(1), false, sec, flush)
		if i&7 == 7 {
			c.Flush()
		}
		i++
	}
}

// BenchmarkTick is one timer pass over a full table of reachable entries
// (nothing due), the cost the router pays per Tick.
func BenchmarkTick(b *testing.B) {
	for _, n := range []int{4000, 65536} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			c, _, _ := benchSetup(n)
			b.ReportAllocs()
			for b.Loop() {
				c.Tick(2*sec, nil, nil)
			}
		})
	}
}
