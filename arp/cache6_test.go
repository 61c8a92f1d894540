package arp

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"vrouter/packet"
)

func ip6(s string) [16]byte { return netip.MustParseAddr(s).As16() }

// checkAddr6 verifies that every IPv6 slot holds its entry's address.
func (c *Cache) checkAddr6(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.slots {
		k := c.slots[i].key.Load()
		if k == 0 || k&key6Bit == 0 {
			continue
		}
		e := &c.ents[c.slotEnt[i]]
		if c.addr6[i].hi.Load() != e.hi || c.addr6[i].lo.Load() != e.lo {
			t.Fatalf("slot %d: address %x %x, entry %x %x", i, c.addr6[i].hi.Load(), c.addr6[i].lo.Load(), e.hi, e.lo)
		}
	}
}

func TestResolve6QueueAndFlush(t *testing.T) {
	c := New(testConfig())
	a := ip6("2001:db8::5")
	pkt := []byte{0x60, 1, 2, 3}
	_, ok, send, queued := c.Resolve6(1, a, pkt, sec)
	if ok || !send || !queued {
		t.Fatalf("first miss: ok %v send %v queued %v", ok, send, queued)
	}
	if _, ok := c.Lookup6(1, a); ok {
		t.Fatal("incomplete entry is usable")
	}
	// The IPv4 address with the same low bits is another neighbour.
	if c.Has(1, 0x00000005) || !c.Has6(1, a) || c.Has6(2, a) {
		t.Fatal("keys of the two families or networks mix")
	}
	var got [][]byte
	c.Update6(1, a, macN(7), Learn{Reachable: true}, 2*sec, func(p []byte) { got = append(got, append([]byte(nil), p...)) })
	if len(got) != 1 || string(got[0]) != string(pkt) {
		t.Fatalf("flushed %v", got)
	}
	if m, ok := c.Lookup6(1, a); !ok || m != macN(7) {
		t.Fatal("not resolved", m, ok)
	}
	es := c.Entries(2 * sec)
	if len(es) != 1 || !es[0].V6 || es[0].IP6 != a || es[0].State != Reachable || es[0].Network != 1 {
		t.Fatalf("entries %+v", es)
	}
	c.checkInvariants(t)
	c.checkAddr6(t)
}

// RFC 4861 7.2.5: an NA without O does not change a known MAC (a reachable
// entry only becomes stale); with O it does; an unsolicited one leaves the
// entry stale.
func TestUpdate6Override(t *testing.T) {
	c := New(testConfig())
	a := ip6("fe80::1")
	c.Update6(0, a, macN(1), Learn{Create: Stale}, sec, nil) // NS with SLLA
	wantState6(t, c, 0, a, Stale, macN(1))
	c.Update6(0, a, macN(1), Learn{Reachable: true}, sec, nil) // solicited NA
	wantState6(t, c, 0, a, Reachable, macN(1))
	c.Update6(0, a, macN(2), Learn{Reachable: true}, sec, nil) // solicited, no override, other MAC
	wantState6(t, c, 0, a, Stale, macN(1))
	c.Update6(0, a, macN(2), Learn{Override: true}, sec, nil) // unsolicited override
	wantState6(t, c, 0, a, Stale, macN(2))
	c.Update6(0, a, macN(2), Learn{Reachable: true, Override: true}, sec, nil)
	wantState6(t, c, 0, a, Reachable, macN(2))
	c.Update6(0, ip6("fe80::2"), macN(3), Learn{Reachable: true}, sec, nil) // unknown, no create
	if c.Has6(0, ip6("fe80::2")) {
		t.Fatal("NA created an entry")
	}
}

func wantState6(t *testing.T, c *Cache, net uint16, a [16]byte, st State, mac packet.MAC) {
	t.Helper()
	for _, e := range c.Entries(0) {
		if e.V6 && e.IP6 == a && e.Network == net {
			if e.State != st || e.MAC != mac {
				t.Fatalf("%v: %v %v, want %v %v", netip.AddrFrom16(a), e.State, e.MAC, st, mac)
			}
			return
		}
	}
	t.Fatalf("%v: no entry", netip.AddrFrom16(a))
}

func TestTickAll6(t *testing.T) {
	c := New(testConfig())
	a := ip6("2001:db8::9")
	c.Resolve6(0, a, []byte{0x60, 0, 0, 0}, 0)
	c.Resolve(0, ip4(10, 0, 0, 9), []byte{0x45}, 0)
	var req6 [][16]byte
	var req4 []uint32
	var fail6 [][16]byte
	h := Handlers{
		Request:      func(_ uint16, ip uint32, _ packet.MAC) { req4 = append(req4, ip) },
		Request6:     func(_ uint16, ip [16]byte, _ packet.MAC) { req6 = append(req6, ip) },
		Unreachable6: func(_ uint16, ip [16]byte, pkt []byte) { fail6 = append(fail6, ip) },
	}
	for s := int64(1); s <= 4; s++ {
		c.TickAll(s*sec, h)
	}
	if len(req6) != 2 || req6[0] != a || len(req4) != 2 || len(fail6) != 1 || fail6[0] != a {
		t.Fatalf("req6 %v req4 %v fail6 %v", req6, req4, fail6)
	}
	wantState6(t, c, 0, a, Failed, packet.MAC{})
}

// TestMixedFamiliesModel: random inserts, updates and removals of IPv4
// and IPv6 neighbours (addresses chosen so that many share their low
// bits) agree with a map, and the table's invariants hold.
func TestMixedFamiliesModel(t *testing.T) {
	cfg := testConfig()
	cfg.Max = 64
	c := New(cfg)
	rng := rand.New(rand.NewPCG(4, 6))
	type k struct {
		v6  bool
		net uint16
		a   [16]byte
	}
	model := map[k]packet.MAC{}
	now := sec
	for step := 0; step < 20000; step++ {
		var key k
		key.net = uint16(rng.IntN(2))
		key.v6 = rng.IntN(2) == 0
		low := byte(rng.IntN(40))
		if key.v6 {
			key.a = ip6(fmt.Sprintf("2001:db8:%x::%x", rng.IntN(3), low))
		} else {
			key.a[15] = low
		}
		mac := macN(byte(rng.IntN(250) + 1))
		switch rng.IntN(5) {
		case 0, 1, 2:
			if key.v6 {
				c.Update6(key.net, key.a, mac, Learn{Create: Reachable, Reachable: true, Override: true}, now, nil)
			} else {
				c.Update(key.net, uint32(key.a[15]), mac, true, now, nil)
			}
			if _, ok := model[key]; ok || len(model) < cfg.Max {
				model[key] = mac
			}
		case 3:
			if rng.IntN(20) == 0 {
				c.FlushNetwork(key.net)
				for mk := range model {
					if mk.net == key.net {
						delete(model, mk)
					}
				}
			}
		case 4:
			now += 100 * sec // everything ages out over two ticks
			c.Tick(now, nil, nil)
			c.Tick(now+100*sec, nil, nil)
			now += 100 * sec
			clear(model)
		}
		if step%500 == 0 {
			c.checkInvariants(t)
			c.checkAddr6(t)
		}
		for mk, want := range model {
			var got packet.MAC
			var ok bool
			if mk.v6 {
				got, ok = c.Lookup6(mk.net, mk.a)
			} else {
				got, ok = c.Lookup(mk.net, uint32(mk.a[15]))
			}
			if !ok || got != want {
				t.Fatalf("step %d: %+v: %v %v, want %v", step, mk, got, ok, want)
			}
		}
	}
}

func TestLookup6NoAlloc(t *testing.T) {
	c := New(testConfig())
	a := ip6("2001:db8::1")
	c.Update6(0, a, macN(1), Learn{Create: Reachable, Reachable: true}, sec, nil)
	if n := testing.AllocsPerRun(1000, func() {
		if _, ok := c.Lookup6(0, a); !ok {
			panic("miss")
		}
	}); n != 0 {
		t.Fatalf("%v allocs per Lookup6", n)
	}
}

func BenchmarkLookup6(b *testing.B) {
	for _, n := range []int{16, 4000, 65536} {
		cfg := testConfig()
		cfg.Max = max(n, 16)
		c := New(cfg)
		addrs := make([][16]byte, n)
		for i := range addrs {
			addrs[i] = ip6(fmt.Sprintf("2001:db8::%x:%x", i>>16, i&0xffff))
			c.Update6(0, addrs[i], macN(byte(i)), Learn{Create: Reachable, Reachable: true}, sec, nil)
		}
		r := rand.New(rand.NewPCG(uint64(n), 1))
		order := make([][16]byte, 1<<16)
		for i := range order {
			order[i] = addrs[r.IntN(n)]
		}
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := c.Lookup6(0, order[i&(len(order)-1)]); !ok {
					b.Fatal("miss")
				}
				i++
			}
		})
	}
}
