package arp

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/packet"
)

const sec = int64(time.Second)

func testConfig() Config {
	return Config{Max: 16, ReachableTime: 30 * time.Second, StaleTime: 60 * time.Second,
		RetransTime: time.Second, Retries: 3, QueueLen: 3}
}

func ip4(a, b, c, d byte) uint32 { return binary.BigEndian.Uint32([]byte{a, b, c, d}) }

func macN(n byte) packet.MAC { return packet.MAC{0x02, 0, 0, 0, 0, n} }

// udpPacket builds an IPv4/UDP packet to dst with a payload tag, using
// gopacket as an independent encoder.
func udpPacket(t testing.TB, dst uint32, tag byte, payload int) []byte {
	t.Helper()
	d := make(net.IP, 4)
	binary.BigEndian.PutUint32(d, dst)
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(192, 0, 2, 1).To4(), DstIP: d}
	udp := &layers.UDP{SrcPort: 1000, DstPort: 2000}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	pl := bytes.Repeat([]byte{tag}, payload)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, udp, gopacket.Payload(pl)); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// recorder collects Tick callbacks.
type recorder struct {
	reqs  []reqItem
	fails []struct {
		net uint16
		ip  uint32
		pkt []byte
	}
}

func (r *recorder) req(net uint16, ip uint32, mac packet.MAC) {
	r.reqs = append(r.reqs, reqItem{net: net, ip: ip, mac: mac})
}

func (r *recorder) unreachable(net uint16, ip uint32, pkt []byte) {
	r.fails = append(r.fails, struct {
		net uint16
		ip  uint32
		pkt []byte
	}{net, ip, append([]byte(nil), pkt...)})
}

func (r *recorder) reset() { r.reqs, r.fails = nil, nil }

func (r *recorder) tick(c *Cache, now int64) { c.Tick(now, r.req, r.unreachable) }

// entry returns the displayed entry for (net, ip).
func entryOf(c *Cache, net uint16, ip uint32, now int64) (Entry, bool) {
	for _, e := range c.Entries(now) {
		if e.Network == net && e.IP == ip {
			return e, true
		}
	}
	return Entry{}, false
}

func wantState(t *testing.T, c *Cache, net uint16, ip uint32, now int64, want State) {
	t.Helper()
	e, ok := entryOf(c, net, ip, now)
	if !ok {
		t.Fatalf("no entry for %d/%08x, want %v", net, ip, want)
	}
	if e.State != want {
		t.Fatalf("state of %d/%08x = %v, want %v", net, ip, e.State, want)
	}
}

func wantGone(t *testing.T, c *Cache, net uint16, ip uint32) {
	t.Helper()
	if _, ok := entryOf(c, net, ip, 0); ok || c.Has(net, ip) {
		t.Fatalf("entry %d/%08x still present", net, ip)
	}
	if _, ok := c.Lookup(net, ip); ok {
		t.Fatalf("Lookup of removed %d/%08x succeeded", net, ip)
	}
}

func (c *Cache) freeBuffers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for b := c.pool.free; b >= 0; b = c.pool.next[b] {
		n++
	}
	return n
}

// checkInvariants verifies the table and slab agree (test helper).
func (c *Cache) checkInvariants(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	live := 0
	for i := range c.slots {
		k := c.slots[i].key.Load()
		if k == 0 {
			continue
		}
		live++
		ei := c.slotEnt[i]
		if int(ei) >= len(c.ents) || c.ents[ei].slot != uint32(i) || c.ents[ei].key|keyLive != k {
			t.Fatalf("slot %d (key %x) -> ent %d inconsistent", i, k, ei)
		}
		// every slot between home and i is occupied (linear probing)
		for j := c.home(k); j != uint64(i); j = (j + 1) & c.mask {
			if c.slots[j].key.Load() == 0 {
				t.Fatalf("hole at %d in probe chain of slot %d", j, i)
			}
		}
		v := c.slots[i].val.Load()
		e := &c.ents[ei]
		if v&^usedBit != valOf(e) {
			t.Fatalf("slot %d value %x, entry says %x", i, v, valOf(e))
		}
	}
	if live != len(c.ents) {
		t.Fatalf("%d live slots, %d entries", live, len(c.ents))
	}
	queued := 0
	for i := range c.ents {
		queued += int(c.ents[i].qlen)
	}
	free := 0
	for b := c.pool.free; b >= 0; b = c.pool.next[b] {
		free++
	}
	if free+queued != len(c.pool.ln) {
		t.Fatalf("pool: %d free + %d queued != %d", free, queued, len(c.pool.ln))
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Incomplete: "incomplete", Reachable: "reachable", Stale: "stale",
		Failed: "failed", Static: "static", 0: "none"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), want)
		}
	}
}

func TestDefaults(t *testing.T) {
	c := New(Config{})
	got := c.Config()
	if got.Max != 65536 || got.ReachableTime != 30*time.Second || got.StaleTime != 60*time.Second ||
		got.RetransTime != time.Second || got.Retries != 3 || got.QueueLen != 3 ||
		got.PendingPackets != 2048 || got.PendingSize != 2048 {
		t.Fatalf("defaults: %+v", got)
	}
	if len(c.slots) != 131072 {
		t.Fatalf("%d slots, want 131072", len(c.slots))
	}
}

func TestIncompleteToReachable(t *testing.T) {
	c := New(testConfig())
	var r recorder
	dst := ip4(192, 0, 2, 10)
	t0 := 5 * sec
	p1, p2 := udpPacket(t, dst, 1, 10), udpPacket(t, dst, 2, 20)
	sendReq, queued := c.Miss(1, dst, p1, t0)
	if !sendReq || !queued {
		t.Fatalf("first Miss: sendReq=%v queued=%v", sendReq, queued)
	}
	if _, ok := c.Lookup(1, dst); ok {
		t.Fatal("Lookup of incomplete entry succeeded")
	}
	if !c.Has(1, dst) || c.Has(2, dst) {
		t.Fatal("Has wrong for incomplete entry")
	}
	p1[30] = 0xee // Miss must have copied
	sendReq, queued = c.Miss(1, dst, p2, t0+sec/2)
	if sendReq || !queued {
		t.Fatalf("second Miss: sendReq=%v queued=%v", sendReq, queued)
	}
	wantState(t, c, 1, dst, t0, Incomplete)
	if e, _ := entryOf(c, 1, dst, t0); e.Queued != 2 {
		t.Fatalf("Queued = %d", e.Queued)
	}
	var flushed [][]byte
	c.Update(1, dst, macN(7), false, t0+sec/2, func(p []byte) { flushed = append(flushed, append([]byte(nil), p...)) })
	if len(flushed) != 2 || !bytes.Equal(flushed[0], udpPacket(t, dst, 1, 10)) || !bytes.Equal(flushed[1], p2) {
		t.Fatalf("flushed %d packets / wrong content", len(flushed))
	}
	m, ok := c.Lookup(1, dst)
	if !ok || m != macN(7) {
		t.Fatalf("Lookup = %v %v", m, ok)
	}
	wantState(t, c, 1, dst, t0, Reachable)
	r.tick(c, t0+2*sec)
	if len(r.reqs) != 0 || len(r.fails) != 0 {
		t.Fatalf("reachable entry produced callbacks: %+v", r)
	}
	st := c.Stats()
	if st.Requests != 1 || st.Queued != 2 || st.Entries != 1 || st.QueueDrops != 0 {
		t.Fatalf("stats %+v", st)
	}
	if c.freeBuffers() != c.Config().PendingPackets {
		t.Fatal("pool buffers not returned after flush")
	}
	c.checkInvariants(t)
}

func TestIncompleteToFailed(t *testing.T) {
	c := New(testConfig())
	var r recorder
	dst := ip4(192, 0, 2, 20)
	t0 := 10 * sec
	for i := byte(0); i < 4; i++ {
		_, queued := c.Miss(3, dst, udpPacket(t, dst, i, 8), t0+int64(i)*sec/10)
		if queued != (i < 3) {
			t.Fatalf("Miss %d queued=%v", i, queued)
		}
	}
	r.tick(c, t0+sec/2)
	if len(r.reqs) != 0 {
		t.Fatal("retransmit before RetransTime")
	}
	for i := int64(1); i <= 2; i++ {
		r.reset()
		r.tick(c, t0+i*sec)
		if len(r.reqs) != 1 || r.reqs[0] != (reqItem{net: 3, ip: dst}) {
			t.Fatalf("tick %d: reqs %+v", i, r.reqs)
		}
		if len(r.fails) != 0 {
			t.Fatal("failed too early")
		}
	}
	r.reset()
	r.tick(c, t0+3*sec)
	if len(r.reqs) != 0 {
		t.Fatalf("request after Retries: %+v", r.reqs)
	}
	if len(r.fails) != 1 || r.fails[0].net != 3 || r.fails[0].ip != dst || !bytes.Equal(r.fails[0].pkt, udpPacket(t, dst, 0, 8)) {
		t.Fatalf("unreachable calls: %+v", r.fails)
	}
	wantState(t, c, 3, dst, t0, Failed)
	for i := int64(4); i < 20; i++ {
		r.reset()
		r.tick(c, t0+i*sec)
		if len(r.reqs) != 0 || len(r.fails) != 0 {
			t.Fatalf("failed entry produced callbacks at %ds", i)
		}
	}
	if _, ok := c.Lookup(3, dst); ok {
		t.Fatal("Lookup of failed entry succeeded")
	}
	if !c.Has(3, dst) {
		t.Fatal("Has(failed) = false")
	}
	st := c.Stats()
	if st.Requests != 3 || st.Failed != 1 || st.FailedDrops != 2 || st.QueueDrops != 1 || st.Queued != 3 {
		t.Fatalf("stats %+v", st)
	}
	if c.freeBuffers() != c.Config().PendingPackets {
		t.Fatal("pool buffers leaked")
	}
	// A new Miss restarts resolution.
	sendReq, queued := c.Miss(3, dst, udpPacket(t, dst, 9, 8), t0+20*sec)
	if !sendReq || !queued {
		t.Fatalf("Miss on failed: sendReq=%v queued=%v", sendReq, queued)
	}
	wantState(t, c, 3, dst, t0+20*sec, Incomplete)
	c.checkInvariants(t)

	// Failed entries that nobody asks for again are removed after StaleTime.
	other := ip4(192, 0, 2, 21)
	c.Miss(3, other, nil, t0)
	for i := int64(1); i <= 3; i++ {
		r.tick(c, t0+i*sec)
	}
	wantState(t, c, 3, other, t0+3*sec, Failed)
	c.Update(3, dst, macN(1), false, t0+20*sec, nil)
	r.tick(c, t0+3*sec+60*sec-1)
	wantState(t, c, 3, other, 0, Failed)
	r.tick(c, t0+3*sec+60*sec)
	wantGone(t, c, 3, other)
	if c.Stats().Expired != 1 {
		t.Fatalf("Expired = %d", c.Stats().Expired)
	}
	c.checkInvariants(t)
}

// TestRequestRateLimit drives Misses and Ticks every 100ms for a long time
// and checks that no target ever gets two requests less than RetransTime
// apart, across failure and restart.
func TestRequestRateLimit(t *testing.T) {
	c := New(testConfig())
	targets := []uint32{ip4(10, 0, 0, 1), ip4(10, 0, 0, 2)}
	last := map[uint32]int64{}
	count := map[uint32]int{}
	note := func(ip uint32, now int64) {
		if l, ok := last[ip]; ok && now-l < sec {
			t.Fatalf("two requests for %08x %v apart", ip, time.Duration(now-l))
		}
		last[ip] = now
		count[ip]++
	}
	unreach := 0
	for now := sec; now < 20*sec; now += sec / 10 {
		for _, ip := range targets {
			if _, ok := c.Lookup(0, ip); !ok {
				if sendReq, _ := c.Miss(0, ip, []byte{1, 2, 3}, now); sendReq {
					note(ip, now)
				}
			}
		}
		c.Tick(now, func(_ uint16, ip uint32, _ packet.MAC) { note(ip, now) },
			func(uint16, uint32, []byte) { unreach++ })
	}
	// 19s of continuous demand: one request per second per target.
	for _, ip := range targets {
		if count[ip] < 18 || count[ip] > 20 {
			t.Fatalf("%08x got %d requests in 19s", ip, count[ip])
		}
	}
	// Each failure cycle is 3 requests; one unreachable per cycle per target.
	if unreach < 2*5 || unreach > 2*7 {
		t.Fatalf("unreachable called %d times", unreach)
	}
}

func TestQueueBounds(t *testing.T) {
	cfg := testConfig()
	cfg.PendingPackets = 4
	cfg.PendingSize = 100
	c := New(cfg)
	a, b, d := ip4(10, 1, 0, 1), ip4(10, 1, 0, 2), ip4(10, 1, 0, 3)
	small := udpPacket(t, a, 0, 10)
	for i := 0; i < 5; i++ {
		_, q := c.Miss(0, a, small, sec)
		if q != (i < 3) {
			t.Fatalf("Miss %d to a: queued=%v", i, q)
		}
	}
	if _, q := c.Miss(0, b, udpPacket(t, b, 0, 200), sec); q {
		t.Fatal("oversized packet queued")
	}
	if _, q := c.Miss(0, b, small, sec); !q {
		t.Fatal("small packet to b not queued")
	}
	if _, q := c.Miss(0, d, small, sec); q {
		t.Fatal("queued with an empty pool")
	}
	st := c.Stats()
	if st.QueueDrops != 2 || st.TooBig != 1 || st.PoolDrops != 1 || st.Queued != 4 {
		t.Fatalf("stats %+v", st)
	}
	if c.freeBuffers() != 0 {
		t.Fatal("pool should be exhausted")
	}
	n := 0
	c.Update(0, a, macN(1), false, sec, func([]byte) { n++ })
	if n != 3 {
		t.Fatalf("flushed %d", n)
	}
	if _, q := c.Miss(0, d, small, sec); !q {
		t.Fatal("buffers not reusable after flush")
	}
	c.checkInvariants(t)
}

func TestReachableStaleRemoved(t *testing.T) {
	c := New(testConfig())
	var r recorder
	dst := ip4(198, 51, 100, 7)
	t0 := 100 * sec
	c.Update(2, dst, macN(3), true, t0, nil)
	wantState(t, c, 2, dst, t0, Reachable)
	r.tick(c, t0+30*sec-1)
	wantState(t, c, 2, dst, t0, Reachable)
	r.tick(c, t0+30*sec)
	wantState(t, c, 2, dst, t0, Stale)
	r.tick(c, t0+90*sec-1)
	wantState(t, c, 2, dst, t0, Stale)
	if len(r.reqs) != 0 {
		t.Fatalf("unused stale entry refreshed: %+v", r.reqs)
	}
	r.tick(c, t0+90*sec)
	wantGone(t, c, 2, dst)
	if st := c.Stats(); st.Expired != 1 || st.Entries != 0 {
		t.Fatalf("stats %+v", st)
	}
	c.checkInvariants(t)
}

func TestStaleRefresh(t *testing.T) {
	c := New(testConfig())
	var r recorder
	a, b := ip4(198, 51, 100, 1), ip4(198, 51, 100, 2)
	t0 := 10 * sec
	c.Update(0, a, macN(1), true, t0, nil)
	c.Update(0, b, macN(2), true, t0, nil)
	// Lookups while reachable do not count as use after becoming stale.
	c.Lookup(0, a)
	r.tick(c, t0+30*sec)
	wantState(t, c, 0, a, 0, Stale)
	r.tick(c, t0+31*sec)
	if len(r.reqs) != 0 {
		t.Fatalf("refresh without use: %+v", r.reqs)
	}
	// Both in use now.
	if m, ok := c.Lookup(0, a); !ok || m != macN(1) {
		t.Fatal("stale entry not usable")
	}
	c.Lookup(0, b)
	r.tick(c, t0+32*sec)
	if len(r.reqs) != 2 {
		t.Fatalf("refreshes: %+v", r.reqs)
	}
	for _, q := range r.reqs {
		if (q.ip == a && q.mac != macN(1)) || (q.ip == b && q.mac != macN(2)) {
			t.Fatalf("refresh not unicast to the known MAC: %+v", q)
		}
	}
	// a answers, b does not.
	c.Update(0, a, macN(1), false, t0+32*sec+sec/2, nil)
	wantState(t, c, 0, a, 0, Reachable)
	r.reset()
	r.tick(c, t0+32*sec+sec/2) // too early for a second refresh of b
	if len(r.reqs) != 0 {
		t.Fatalf("refresh rate limit: %+v", r.reqs)
	}
	for i := int64(1); i <= 2; i++ {
		r.reset()
		r.tick(c, t0+(32+i)*sec)
		if len(r.reqs) != 1 || r.reqs[0] != (reqItem{ip: b, mac: macN(2)}) {
			t.Fatalf("refresh %d: %+v", i, r.reqs)
		}
		wantState(t, c, 0, b, 0, Stale)
		if _, ok := c.Lookup(0, b); !ok {
			t.Fatal("entry being refreshed must stay usable")
		}
	}
	r.reset()
	r.tick(c, t0+35*sec)
	if len(r.reqs) != 0 || len(r.fails) != 0 {
		t.Fatalf("callbacks on refresh failure: %+v", r)
	}
	wantGone(t, c, 0, b)
	wantState(t, c, 0, a, 0, Reachable)
	st := c.Stats()
	if st.Refreshes != 2 || st.RefreshFailed != 1 || st.Requests != 4 {
		t.Fatalf("stats %+v", st)
	}
	c.checkInvariants(t)
}

func TestStaticBeatsLearned(t *testing.T) {
	c := New(testConfig())
	var r recorder
	s1, s2, l := ip4(203, 0, 113, 1), ip4(203, 0, 113, 2), ip4(203, 0, 113, 3)
	c.Miss(1, l, []byte{1}, sec)
	c.SetStatic([]StaticEntry{{1, s1, macN(0x11)}, {1, s2, macN(0x12)}})
	for _, create := range []bool{false, true} {
		c.Update(1, s1, macN(0x99), create, sec, nil)
	}
	if m, ok := c.Lookup(1, s1); !ok || m != macN(0x11) {
		t.Fatalf("static overwritten: %v %v", m, ok)
	}
	for now := sec; now < 1000*sec; now += 10 * sec {
		r.tick(c, now)
	}
	wantState(t, c, 1, s1, 0, Static)
	wantState(t, c, 1, s2, 0, Static)
	if sendReq, queued := c.Miss(1, s1, []byte{1}, 2000*sec); sendReq || queued {
		t.Fatal("Miss on static queued or requested")
	}
	if c.Stats().MissResolved != 1 {
		t.Fatal("MissResolved not counted")
	}
	// Replace: s2 dropped, learned l (queued packet) converted to static.
	c.Miss(1, l, []byte{1}, 2000*sec)
	c.SetStatic([]StaticEntry{{1, s1, macN(0x21)}, {1, l, macN(0x13)}})
	wantGone(t, c, 1, s2)
	if m, _ := c.Lookup(1, s1); m != macN(0x21) {
		t.Fatal("static MAC not replaced")
	}
	if m, ok := c.Lookup(1, l); !ok || m != macN(0x13) {
		t.Fatal("learned entry not made static")
	}
	if c.Stats().FlushDrops != 1 {
		t.Fatalf("FlushDrops = %d", c.Stats().FlushDrops)
	}
	c.checkInvariants(t)
}

func TestStaticEvictsLearnedWhenFull(t *testing.T) {
	cfg := testConfig()
	cfg.Max = 3
	c := New(cfg)
	for i := byte(1); i <= 3; i++ {
		c.Update(0, ip4(10, 0, 0, i), macN(i), true, sec, nil)
	}
	c.SetStatic([]StaticEntry{{0, ip4(10, 9, 9, 1), macN(1)}, {0, ip4(10, 9, 9, 2), macN(2)},
		{0, ip4(10, 9, 9, 3), macN(3)}, {0, ip4(10, 9, 9, 4), macN(4)}})
	for i := byte(1); i <= 3; i++ {
		if !c.Has(0, ip4(10, 9, 9, i)) {
			t.Fatalf("static %d missing", i)
		}
	}
	if c.Has(0, ip4(10, 9, 9, 4)) || c.Stats().TableFull != 1 || c.Stats().Entries != 3 {
		t.Fatalf("stats %+v", c.Stats())
	}
	c.checkInvariants(t)
}

func TestUpdateCreate(t *testing.T) {
	c := New(testConfig())
	dst := ip4(192, 0, 2, 99)
	// A GARP/reply for an unknown address must not create an entry.
	c.Update(0, dst, macN(6), false, sec, nil)
	if c.Has(0, dst) || len(c.Entries(sec)) != 0 {
		t.Fatal("Update(create=false) created an entry")
	}
	if _, ok := c.Lookup(0, dst); ok {
		t.Fatal("poisoned")
	}
	// It does update an existing one (also with a new MAC).
	c.Update(0, dst, macN(6), true, sec, nil)
	c.Update(0, dst, macN(8), false, 2*sec, nil)
	if m, ok := c.Lookup(0, dst); !ok || m != macN(8) {
		t.Fatalf("existing entry not updated: %v", m)
	}
	c.checkInvariants(t)
}

func TestTableFull(t *testing.T) {
	cfg := testConfig()
	cfg.Max = 4
	c := New(cfg)
	for i := byte(1); i <= 4; i++ {
		if _, q := c.Miss(0, ip4(10, 0, 0, i), []byte{i}, sec); !q {
			t.Fatalf("Miss %d refused", i)
		}
	}
	if s, q := c.Miss(0, ip4(10, 0, 0, 5), []byte{5}, sec); s || q {
		t.Fatal("fifth entry accepted")
	}
	c.Update(0, ip4(10, 0, 0, 6), macN(6), true, sec, nil)
	if c.Has(0, ip4(10, 0, 0, 5)) || c.Has(0, ip4(10, 0, 0, 6)) {
		t.Fatal("entry created beyond Max")
	}
	if st := c.Stats(); st.TableFull != 2 || st.Entries != 4 {
		t.Fatalf("stats %+v", st)
	}
	// Existing entries still update when full.
	c.Update(0, ip4(10, 0, 0, 1), macN(1), false, sec, nil)
	if _, ok := c.Lookup(0, ip4(10, 0, 0, 1)); !ok {
		t.Fatal("update of existing entry refused when full")
	}
	c.Flush()
	if _, q := c.Miss(0, ip4(10, 0, 0, 5), []byte{5}, sec); !q {
		t.Fatal("room not reclaimed after Flush")
	}
	c.checkInvariants(t)
}

func TestFlushNetworkAndFlush(t *testing.T) {
	c := New(testConfig())
	c.SetStatic([]StaticEntry{{1, ip4(10, 0, 0, 100), macN(100)}, {2, ip4(10, 0, 0, 100), macN(101)}})
	for i := byte(1); i <= 3; i++ {
		for _, n := range []uint16{1, 2} {
			c.Update(n, ip4(10, 0, 0, i), macN(i), true, sec, nil)
		}
	}
	c.Miss(1, ip4(10, 0, 0, 50), []byte{1}, sec)
	c.Miss(1, ip4(10, 0, 0, 50), []byte{2}, sec)
	c.FlushNetwork(1)
	for _, e := range c.Entries(sec) {
		if e.Network == 1 {
			t.Fatalf("entry of flushed network left: %+v", e)
		}
	}
	if st := c.Stats(); st.Entries != 4 || st.FlushDrops != 2 {
		t.Fatalf("stats %+v", st)
	}
	c.checkInvariants(t)
	c.Miss(2, ip4(10, 0, 0, 50), []byte{1}, sec)
	c.Flush()
	es := c.Entries(sec)
	if len(es) != 1 || es[0].State != Static || es[0].Network != 2 || es[0].MAC != macN(101) {
		t.Fatalf("after Flush: %+v", es)
	}
	if c.freeBuffers() != c.Config().PendingPackets {
		t.Fatal("pool leaked")
	}
	c.checkInvariants(t)
}

func TestResolve(t *testing.T) {
	c := New(testConfig())
	dst := ip4(10, 2, 0, 1)
	_, ok, s, q := c.Resolve(0, dst, []byte{1}, sec)
	if ok || !s || !q {
		t.Fatalf("Resolve miss: ok=%v sendReq=%v queued=%v", ok, s, q)
	}
	c.Update(0, dst, macN(4), false, sec, func([]byte) {})
	m, ok, s, q := c.Resolve(0, dst, []byte{1}, sec)
	if !ok || s || q || m != macN(4) {
		t.Fatal("Resolve hit")
	}
	// The locked path of Resolve returns the MAC too (race with Update).
	c.mu.Lock()
	m, ok, _, q = c.missLocked(0, dst, []byte{1}, sec, false)
	c.mu.Unlock()
	if !ok || q || m != macN(4) || c.Stats().MissResolved != 0 {
		t.Fatal("missLocked on resolved entry")
	}
}

// TestCallbacksMayReenter checks that flush, req and unreachable run
// without the cache's lock: the router's callbacks look up and queue.
func TestCallbacksMayReenter(t *testing.T) {
	c := New(testConfig())
	a, b := ip4(10, 3, 0, 1), ip4(10, 3, 0, 2)
	c.Miss(0, a, []byte{1}, sec)
	c.Miss(0, b, []byte{2}, sec)
	n := 0
	c.Update(0, a, macN(1), false, sec, func([]byte) {
		if _, ok := c.Lookup(0, a); !ok {
			t.Error("entry not usable during flush")
		}
		c.Miss(0, ip4(10, 3, 0, 3), []byte{3}, sec)
		n++
	})
	if n != 1 || !c.Has(0, ip4(10, 3, 0, 3)) {
		t.Fatal("flush did not run or could not call Miss")
	}
	u := 0
	for i := int64(1); i <= 3; i++ {
		c.Tick(sec+i*sec, func(net uint16, ip uint32, _ packet.MAC) {
			c.Has(net, ip)
			_ = c.Stats()
		}, func(net uint16, ip uint32, pkt []byte) {
			// e.g. an ICMP error back to the source needs its neighbour
			c.Miss(net, ip4(10, 3, 0, 9), pkt, sec+i*sec)
			u++
		})
	}
	if u != 2 || !c.Has(0, ip4(10, 3, 0, 9)) {
		t.Fatalf("unreachable ran %d times", u)
	}
	c.checkInvariants(t)
}

func TestEntriesAge(t *testing.T) {
	c := New(testConfig())
	c.SetStatic([]StaticEntry{{0, ip4(10, 4, 0, 1), macN(1)}})
	c.Update(0, ip4(10, 4, 0, 2), macN(2), true, 5*sec, nil)
	for _, e := range c.Entries(12 * sec) {
		switch e.IP {
		case ip4(10, 4, 0, 1):
			if e.Age != 0 || e.State != Static || e.MAC != macN(1) {
				t.Fatalf("%+v", e)
			}
		case ip4(10, 4, 0, 2):
			if e.Age != 7*time.Second || e.State != Reachable || e.MAC != macN(2) {
				t.Fatalf("%+v", e)
			}
		}
	}
}
