package nat

import (
	"math/rand"
	"net/netip"
	"testing"

	"vrouter/config"
)

// TestIndexAgainstMap drives the open-addressing index (insert, backward-shift
// delete, slot reuse) with random operations and compares every lookup with
// a plain map.
func TestIndexAgainstMap(t *testing.T) {
	const max = 300
	tb := newTable(max)
	// Make the index tiny so clusters are long and wrap around.
	tb.slots = tb.slots[:1024]
	tb.mask = 1023
	rnd := rand.New(rand.NewSource(1))
	type key struct{ a, b uint64 }
	ref := map[key]uint32{} // orig key -> idx
	live := map[uint32]words{}
	mk := func() words {
		// Few distinct values so that keys collide in the hash's low bits too.
		src, dst := uint32(0x0a000000+rnd.Intn(50)), uint32(0xc6336400+rnd.Intn(4))
		sp, dp := uint16(rnd.Intn(40)), uint16(80)
		oa, ob := keyWords(src, dst, sp, dp, 17)
		ra, rb := keyWords(dst, 0xcb007101, dp, uint16(rnd.Intn(60000)), 17)
		return words{oa, ob, ra, rb}
	}
	var h hit
	for step := 0; step < 20000; step++ {
		switch op := rnd.Intn(3); {
		case op < 2 && len(live) < max: // insert
			w := mk()
			ka, kb := w.key(kOrig)
			ra, rb := w.key(kReply)
			if _, dup := ref[key{ka, kb}]; dup {
				continue
			}
			if tb.lookup(ra, rb, 1<<kOrig|1<<kReply, &h) {
				continue // reply tuple taken
			}
			if _, dup := ref[key{ra, rb}]; dup {
				continue
			}
			idx, ok := tb.alloc()
			if !ok {
				t.Fatal("alloc failed below max")
			}
			s := &tb.slab[idx]
			s.oa.Store(w.oa)
			s.ob.Store(w.ob)
			s.ra.Store(w.ra)
			s.rb.Store(w.rb)
			s.state.Store((s.state.Load()>>32+1)<<32 | stLive)
			tb.live.Add(1)
			tb.insert(ka, kb, idx, kOrig)
			tb.insert(ra, rb, idx, kReply)
			ref[key{ka, kb}] = idx
			live[idx] = w
		case len(live) > 0: // delete a random live session
			var idx uint32
			k := rnd.Intn(len(live))
			for i := range live {
				if k == 0 {
					idx = i
					break
				}
				k--
			}
			w := live[idx]
			for _, typ := range []uint8{kOrig, kReply} {
				a, b := w.key(typ)
				if !tb.remove(a, b, idx, typ) {
					t.Fatalf("step %d: entry of %d/%d not found", step, idx, typ)
				}
			}
			tb.release(idx)
			ka, kb := w.key(kOrig)
			delete(ref, key{ka, kb})
			delete(live, idx)
			// The deleted keys are gone.
			if tb.lookup(ka, kb, 1<<kOrig, &h) {
				t.Fatalf("step %d: deleted key still found", step)
			}
		}
		if step%97 == 0 {
			for k, idx := range ref {
				if !tb.lookup(k.a, k.b, 1<<kOrig, &h) || h.idx != idx || h.typ != kOrig {
					t.Fatalf("step %d: key of session %d lost", step, idx)
				}
				w := live[idx]
				ra, rb := w.key(kReply)
				if !tb.lookup(ra, rb, 1<<kReply, &h) || h.idx != idx {
					t.Fatalf("step %d: reply key of session %d lost", step, idx)
				}
			}
			if tb.keys != 2*len(ref) || int(tb.live.Load()) != len(ref) {
				t.Fatalf("step %d: %d keys, %d live, want %d sessions", step, tb.keys, tb.live.Load(), len(ref))
			}
		}
	}
}

// TestSNATInvariantsRandom sends random flows and checks, against a naive
// model, the mapping rules: endpoint-independent (an inside endpoint keeps
// its external endpoint), paired (a host keeps its address), no overloading
// (an external endpoint belongs to one inside endpoint), ports below 1024
// stay below 1024, forwarded ports are never handed out.
func TestSNATInvariantsRandom(t *testing.T) {
	c := benchConfig(4096)
	c.NAT.SNAT[0].Ports.Lo, c.NAT.SNAT[0].Ports.Hi = 8000, 8200
	c.NAT.SNAT[0].To = config.AddrRange{First: netip.MustParseAddr("203.0.113.1"), Last: netip.MustParseAddr("203.0.113.4")}
	_, w := newNAT(t, c)
	rnd := rand.New(rand.NewSource(7))
	type ep struct {
		ip    string
		port  uint16
		proto uint8
	}
	mapOf := map[ep]ep{}
	owner := map[ep]ep{}
	addrOf := map[string]string{}
	drops := 0
	for i := 0; i < 3000; i++ {
		proto := []uint8{tcp, udp}[rnd.Intn(2)]
		in := ep{"10.1.3." + itoa(10+rnd.Intn(30)), uint16([]int{80, 123, 8080, 8100, 40000}[rnd.Intn(5)] + rnd.Intn(3)), proto}
		p := build(t, pk{src: in.ip, dst: "198.51.100." + itoa(1+rnd.Intn(9)), proto: proto, sport: in.port, dport: 53, flags: syn})
		w.In(p, nInside, sec)
		v, r := w.Out(p, nInside, nPublic, sec)
		if v == Drop {
			if r != OutOfPorts {
				t.Fatalf("flow %d: %v", i, r)
			}
			if _, had := mapOf[in]; had {
				t.Fatalf("existing mapping refused")
			}
			drops++
			continue
		}
		d := decode(t, p)
		ext := ep{d.src, d.sport, proto}
		if old, ok := mapOf[in]; ok && old != ext {
			t.Fatalf("EIM: %v mapped to %v then %v", in, old, ext)
		}
		if o, ok := owner[ext]; ok && o != in {
			t.Fatalf("overloading: %v used by %v and %v", ext, o, in)
		}
		if a, ok := addrOf[in.ip]; ok && a != d.src {
			t.Fatalf("pairing: %s used %s and %s", in.ip, a, d.src)
		}
		if (in.port < 1024) != (ext.port < 1024) {
			t.Fatalf("port class: %d -> %d", in.port, ext.port)
		}
		if ext.ip == "203.0.113.1" && ext.port == 8080 && proto == tcp {
			t.Fatal("forwarded port handed out")
		}
		if in.port >= 1024 && (ext.port < 8000 || ext.port > 8200) {
			t.Fatalf("port %d outside the range", ext.port)
		}
		mapOf[in], owner[ext], addrOf[in.ip] = ext, in, d.src
	}
	if len(addrOf) < 20 || len(mapOf) < 200 {
		t.Fatalf("only %d hosts, %d mappings (%d drops)", len(addrOf), len(mapOf), drops)
	}
}
