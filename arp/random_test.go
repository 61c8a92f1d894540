package arp

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"vrouter/packet"
)

// TestTableRandom inserts and deletes random keys (many collisions in a
// small table) and compares with a map after every step.
func TestTableRandom(t *testing.T) {
	for _, max := range []int{1, 5, 64} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(max), 7))
			cfg := testConfig()
			cfg.Max = max
			c := New(cfg)
			model := map[uint64]packet.MAC{}
			for step := 0; step < 20000; step++ {
				net, ip := uint16(r.IntN(2)), uint32(r.IntN(3*max+3))
				k := key(net, ip)
				switch op := r.IntN(10); {
				case op < 5:
					m := macN(byte(r.Uint32()))
					c.Update(net, ip, m, true, sec, nil)
					if _, ok := model[k]; ok || len(model) < max {
						model[k] = m
					}
				case op < 9:
					c.mu.Lock()
					if i := c.find(k, 0, 0); i >= 0 {
						c.remove(i)
					}
					c.mu.Unlock()
					delete(model, k)
				default:
					c.FlushNetwork(net)
					for mk := range model {
						if uint16(mk>>32) == net {
							delete(model, mk)
						}
					}
				}
				for probe := 0; probe < 4; probe++ {
					net, ip := uint16(r.IntN(2)), uint32(r.IntN(3*max+3))
					want, wok := model[key(net, ip)]
					got, ok := c.Lookup(net, ip)
					if ok != wok || got != want || c.Has(net, ip) != wok {
						t.Fatalf("step %d: Lookup(%d,%d) = %v %v, want %v %v", step, net, ip, got, ok, want, wok)
					}
				}
				if step%97 == 0 {
					c.checkInvariants(t)
					if c.Stats().Entries != len(model) {
						t.Fatalf("Entries %d, model %d", c.Stats().Entries, len(model))
					}
				}
			}
			c.checkInvariants(t)
		})
	}
}

// TestRandomAgainstRef runs random traffic (Lookup then Miss, ARP answers
// with and without create, Ticks) against the original mutex+map cache and
// compares every result. The time span stays below ReachableTime, where the
// two implement the same rules.
func TestRandomAgainstRef(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		compareWithRef(t, seed, 64, 40, 3000)
	}
}

// FuzzAgainstRef is TestRandomAgainstRef with fuzzed seeds and sizes.
func FuzzAgainstRef(f *testing.F) {
	f.Add(uint64(1), uint8(64), uint8(40))
	f.Add(uint64(2), uint8(4), uint8(10))
	f.Add(uint64(3), uint8(1), uint8(3))
	f.Fuzz(func(t *testing.T, seed uint64, max, hosts uint8) {
		compareWithRef(t, seed, int(max%128)+1, int(hosts%100)+1, 500)
	})
}

func compareWithRef(t *testing.T, seed uint64, max, hosts, steps int) {
	{
		r := rand.New(rand.NewPCG(seed, 99))
		cfg := testConfig()
		cfg.Max = max
		c, ref := New(cfg), newRef(cfg)
		now := sec
		type call struct {
			net uint16
			ip  uint32
			mac packet.MAC
			pkt string
		}
		for step := 0; step < steps && now < 29*sec; step++ {
			net, ip := uint16(r.IntN(2)), ip4(10, 0, 0, byte(r.IntN(hosts)))
			switch op := r.IntN(10); {
			case op < 5:
				m1, ok1 := c.Lookup(net, ip)
				m2, ok2 := ref.Lookup(net, ip)
				if m1 != m2 || ok1 != ok2 {
					t.Fatalf("seed %d step %d: Lookup %v %v, ref %v %v", seed, step, m1, ok1, m2, ok2)
				}
				if !ok1 {
					pkt := []byte{byte(step), byte(step >> 8), byte(ip)}
					s1, q1 := c.Miss(net, ip, pkt, now)
					s2, q2 := ref.Miss(net, ip, pkt, now)
					if s1 != s2 || q1 != q2 {
						t.Fatalf("seed %d step %d: Miss %v %v, ref %v %v", seed, step, s1, q1, s2, q2)
					}
				}
			case op < 7:
				m := macN(byte(r.IntN(3)))
				create := r.IntN(2) == 0
				var f1, f2 [][]byte
				c.Update(net, ip, m, create, now, func(p []byte) { f1 = append(f1, slices.Clone(p)) })
				ref.Update(net, ip, m, create, now, func(p []byte) { f2 = append(f2, slices.Clone(p)) })
				if !slices.EqualFunc(f1, f2, bytes.Equal) {
					t.Fatalf("seed %d step %d: flushed %v, ref %v", seed, step, f1, f2)
				}
			case op < 9:
				now += int64(r.IntN(400)) * int64(time.Millisecond)
			default:
				var a, b []call
				c.Tick(now, func(n uint16, ip uint32, m packet.MAC) { a = append(a, call{n, ip, m, ""}) },
					func(n uint16, ip uint32, p []byte) { a = append(a, call{n, ip, packet.MAC{}, string(p)}) })
				ref.Tick(now, func(n uint16, ip uint32, m packet.MAC) { b = append(b, call{n, ip, m, ""}) },
					func(n uint16, ip uint32, p []byte) { b = append(b, call{n, ip, packet.MAC{}, string(p)}) })
				cmp := func(x, y call) int {
					return cmpKey(x.net, x.ip, x.pkt) - cmpKey(y.net, y.ip, y.pkt)
				}
				slices.SortFunc(a, cmp)
				slices.SortFunc(b, cmp)
				if !slices.Equal(a, b) {
					t.Fatalf("seed %d step %d: Tick callbacks %v, ref %v", seed, step, a, b)
				}
			}
		}
		s1, s2 := c.Stats(), ref.Stats()
		s1.MissResolved, s1.Expired = 0, 0
		// The original did not count refused creations by Update.
		if s1.TableFull < s2.TableFull {
			t.Fatalf("seed %d: TableFull %d < ref %d", seed, s1.TableFull, s2.TableFull)
		}
		s1.TableFull = s2.TableFull
		if s1 != s2 {
			t.Fatalf("seed %d: stats %+v, ref %+v", seed, s1, s2)
		}
		c.checkInvariants(t)
	}
}

func cmpKey(net uint16, ip uint32, pkt string) int {
	k := int(net)<<33 | int(ip)<<1
	if pkt != "" {
		k |= 1
	}
	return k
}

// TestConcurrentLookup has readers look up while a writer updates MACs,
// inserts, ages and deletes entries (backward shifts move the readers'
// entries). Readers must never miss a key that is always present and never
// see a MAC that belongs to another key. Run with -race.
func TestConcurrentLookup(t *testing.T) {
	cfg := testConfig()
	cfg.Max = 64
	c := New(cfg)
	const stable = 40
	// MAC = 02:gen:ip bytes, so a reader can check the MAC belongs to the key.
	mac := func(ip uint32, gen byte) packet.MAC {
		return packet.MAC{0x02, gen, byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}
	}
	for i := 0; i < stable; i++ {
		c.Update(0, ip4(10, 0, 0, byte(i)), mac(ip4(10, 0, 0, byte(i)), 0), true, sec, nil)
	}
	// Yield in the middle of every shift so that readers really run
	// while the table is inconsistent (without it the window is a few
	// nanoseconds and a broken seqlock would go unnoticed).
	testHookShift = runtime.Gosched
	defer func() { testHookShift = nil }()
	var stop atomic.Bool
	var wg sync.WaitGroup
	var lookups atomic.Int64
	errs := make(chan string, 8)
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			n := int64(0)
			for i := g; !stop.Load(); i++ {
				ip := ip4(10, 0, 0, byte(i%stable))
				m, ok := c.Lookup(0, ip)
				if !ok || !c.Has(0, ip) || m[0] != 0x02 || uint32(m[2])<<24|uint32(m[3])<<16|uint32(m[4])<<8|uint32(m[5]) != ip {
					errs <- fmt.Sprintf("stable %08x: %v %v", ip, m, ok)
					return
				}
				cip := ip4(10, 1, byte(i%7), byte(i))
				if m, ok := c.Lookup(1, cip); ok && uint32(m[2])<<24|uint32(m[3])<<16|uint32(m[4])<<8|uint32(m[5]) != cip {
					errs <- fmt.Sprintf("churn %08x: %v", cip, m)
					return
				}
				n++
			}
			lookups.Add(n)
		}(g)
	}
	r := rand.New(rand.NewPCG(1, 2))
	now := sec
	deadline := time.Now().Add(300 * time.Millisecond)
	for it := 0; time.Now().Before(deadline) || it < 300; it++ {
		i := r.IntN(stable)
		ip := ip4(10, 0, 0, byte(i))
		c.Update(0, ip, mac(ip, byte(it)), false, now, nil)
		for j := 0; j < 30; j++ {
			cip := ip4(10, 1, byte(r.IntN(7)), byte(r.IntN(256)))
			if r.IntN(2) == 0 {
				c.Update(1, cip, mac(cip, 1), true, now, nil)
			} else {
				c.Miss(1, cip, []byte{1}, now)
			}
		}
		if it%10 == 0 {
			c.FlushNetwork(1)
		} else {
			// delete churn entries one by one (each a backward shift)
			c.mu.Lock()
			for k := len(c.ents) - 1; k >= 0; k-- {
				if uint16(c.ents[k].key>>32) == 1 && r.IntN(2) == 0 {
					c.dropQueue(&c.ents[k])
					c.remove(k)
				}
			}
			c.mu.Unlock()
		}
		if it%50 == 0 {
			// Age: network 1 entries go stale and expire; stable
			// ones are re-confirmed first so they never do.
			for k := 0; k < stable; k++ {
				c.Update(0, ip4(10, 0, 0, byte(k)), mac(ip4(10, 0, 0, byte(k)), byte(it)), false, now, nil)
			}
			now += 25 * sec
			c.Tick(now, nil, nil)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if lookups.Load() == 0 {
		t.Fatal("readers did not run")
	}
	c.checkInvariants(t)
}

func TestLookupAllocs(t *testing.T) {
	c := New(testConfig())
	a, b, s := ip4(10, 0, 0, 1), ip4(10, 0, 0, 2), ip4(10, 0, 0, 3)
	c.Update(0, a, macN(1), true, sec, nil)
	c.Update(0, s, macN(3), true, sec, nil)
	c.Tick(31*sec, nil, nil)
	c.Update(0, a, macN(1), true, 31*sec, nil)
	n := testing.AllocsPerRun(1000, func() {
		if _, ok := c.Lookup(0, a); !ok {
			t.Fatal("miss")
		}
		if _, ok := c.Lookup(0, b); ok {
			t.Fatal("hit")
		}
		if _, ok := c.Lookup(0, s); !ok {
			t.Fatal("stale miss")
		}
		_ = c.Has(0, b)
	})
	if n != 0 {
		t.Fatalf("Lookup allocates %v", n)
	}
}

func TestMissUpdateTickAllocs(t *testing.T) {
	c := New(testConfig())
	dst := ip4(10, 0, 0, 9)
	pkt := udpPacket(t, dst, 1, 100)
	flushed := 0
	flush := func([]byte) { flushed++ }
	reqs, unreach := 0, 0
	req := func(uint16, uint32, packet.MAC) { reqs++ }
	unr := func(uint16, uint32, []byte) { unreach++ }
	now := sec
	cycle := func() {
		// resolved neighbour
		c.Miss(0, dst, pkt, now)
		c.Miss(0, dst, pkt, now)
		c.Update(0, dst, macN(1), false, now, flush)
		// unresolved neighbour: retries then failure
		c.Miss(1, dst, pkt, now)
		for i := 1; i <= 3; i++ {
			c.Tick(now+int64(i)*sec, req, unr)
		}
		c.FlushNetwork(0)
		c.FlushNetwork(1)
		now += 10 * sec
	}
	cycle()
	n := testing.AllocsPerRun(200, cycle)
	if n != 0 {
		t.Fatalf("Miss+Update+Tick cycle allocates %v", n)
	}
	if flushed == 0 || reqs == 0 || unreach == 0 {
		t.Fatalf("cycle did not exercise the paths: %d %d %d", flushed, reqs, unreach)
	}
}
