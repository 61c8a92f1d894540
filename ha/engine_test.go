package ha

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/config"
	"vrouter/internal/clock"
	"vrouter/nat"
	"vrouter/packet"
)

// Network slots of the test configuration.
const (
	nInside = 0
	nPublic = 1
)

func natConfig(max int) *config.Config {
	c := &config.Config{
		Networks: []config.Network{
			{Name: "inside", Addresses: []netip.Prefix{netip.MustParsePrefix("10.1.0.1/16")}},
			{Name: "public", Addresses: []netip.Prefix{netip.MustParsePrefix("203.0.113.1/24")}},
		},
		NAT: config.NAT{SNAT: []config.SNAT{{
			Source: netip.MustParsePrefix("10.1.0.0/16"),
			Out:    "public",
			To:     config.AddrRange{First: netip.MustParseAddr("203.0.113.10"), Last: netip.MustParseAddr("203.0.113.13")},
		}}},
		Conntrack: config.Conntrack{Max: max},
	}
	c.ApplyDefaults()
	return c
}

func newNAT(t testing.TB, max int) *nat.NAT {
	t.Helper()
	c := natConfig(max)
	r, err := nat.Compile(c, func(name string) (uint16, bool) {
		i := c.NetworkIndex(name)
		return uint16(i), i >= 0
	})
	if err != nil {
		t.Fatal(err)
	}
	n, err := nat.New(c, r)
	if err != nil {
		t.Fatal(err)
	}
	n.EnableSync()
	return n
}

// flowPkt builds an inside host's packet with gopacket (never our parser).
func flowPkt(t testing.TB, i int, proto uint8, tcpFlags uint8) []byte {
	src := net.IPv4(10, 1, byte(i>>12), byte(i>>4)).To4()
	sport := uint16(20000 + i&15)
	ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src, DstIP: net.IPv4(198, 51, 100, 9).To4(), Protocol: layers.IPProtocol(proto)}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}
	var err error
	if proto == packet.ProtoTCP {
		tc := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: 443, Seq: 1000, Window: 1000,
			SYN: tcpFlags&packet.TCPSyn != 0, ACK: tcpFlags&packet.TCPAck != 0, FIN: tcpFlags&packet.TCPFin != 0}
		tc.SetNetworkLayerForChecksum(ip)
		err = gopacket.SerializeLayers(buf, opts, ip, tc)
	} else {
		u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: 53}
		u.SetNetworkLayerForChecksum(ip)
		err = gopacket.SerializeLayers(buf, opts, ip, u, gopacket.Payload("q"))
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// open creates flow i's session on the master through the NAT's data path.
func open(t testing.TB, w *nat.Worker, i int, proto uint8, now int64) {
	p := flowPkt(t, i, proto, packet.TCPSyn)
	w.Reset()
	if v, r := w.Out(p, nInside, nPublic, now); v != nat.Translated {
		t.Fatalf("flow %d: %v %v", i, v, r)
	}
}

// missing counts the master's sessions the backup does not have.
func missing(a, b *nat.NAT, now int64) (miss int) {
	for pos, done := uint32(0), false; !done; {
		pos, done = a.SyncWalk(pos, 1<<16, now, func(r *nat.SyncRecord) {
			if !b.Lookup(r) {
				miss++
			}
		})
	}
	return miss
}

func waitFor(t testing.TB, d time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > d {
			t.Fatalf("%s: not after %v", what, d)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func pair(t testing.TB, ca, cb Conn, max int, key []byte) (na, nb *nat.NAT, ea, eb *Engine) {
	na, nb = newNAT(t, max), newNAT(t, max)
	clk := clock.System{}
	ea = New(na, ca, Options{Key: key, NetSig: 7, Clock: clk})
	eb = New(nb, cb, Options{Key: key, NetSig: 7, Clock: clk})
	ea.SetMaster(true)
	ea.Start()
	eb.Start()
	t.Cleanup(func() { ea.Stop(); eb.Stop() })
	return
}

// Over a link that loses 5% of the datagrams each way, every session the
// master creates, changes and deletes reaches the backup: retransmissions
// fill the holes and nothing is missing (or left over) at the end.
func TestLossyLink(t *testing.T) {
	l := NewMemLink(0.05, 42)
	na, nb, ea, eb := pair(t, l.A, l.B, 1<<15, []byte("0123456789abcdef"))
	waitFor(t, 5*time.Second, "peers see each other", func() bool { return ea.Stats().PeerUp && eb.Stats().PeerUp })
	w := na.NewWorker()
	clk := clock.System{}
	for i := 0; i < 4000; i++ {
		proto := uint8(packet.ProtoUDP)
		if i%2 == 0 {
			proto = packet.ProtoTCP
		}
		open(t, w, i, proto, clk.Now())
		if i%50 == 49 {
			time.Sleep(3 * time.Millisecond) // events in many batches, acks too
		}
	}
	// Delete a quarter of them on the master.
	flushed, _ := na.FlushIf(func(f *nat.Flow) string {
		if f.SPort%4 == 0 {
			return "test"
		}
		return ""
	})
	took := waitFor(t, 10*time.Second, "backup converges", func() bool {
		return nb.Len() == na.Len() && missing(na, nb, clk.Now()) == 0
	})
	a, b := ea.Stats(), eb.Stats()
	t.Logf("4000 sessions, %d deleted, 5%% loss each way: converged %v after the last change; sent %d acked %d retransmits %d lost %d; backup received %d, link dropped %d of %d and %d of %d datagrams",
		flushed, took, a.SessionsSent, a.SessionsAcked, a.Retransmits, a.SessionsLost, b.SessionsReceived, l.A.Dropped.Load(), l.A.Sent.Load(), l.B.Dropped.Load(), l.B.Sent.Load())
	if a.Retransmits == 0 || l.A.Dropped.Load() == 0 || l.B.Dropped.Load() == 0 {
		t.Fatalf("no loss exercised: %+v", a)
	}
	if a.SessionsLost != 0 {
		t.Fatalf("lost %d", a.SessionsLost)
	}
	waitFor(t, 2*time.Second, "all acknowledged", func() bool { return ea.Stats().Unacked == 0 })
}

// A backup that starts late asks for a resync and gets the whole table;
// one whose peer restarts (a new sequence) does too.
func TestResyncOnStart(t *testing.T) {
	l := NewMemLink(0, 1)
	na, nb := newNAT(t, 1<<14), newNAT(t, 1<<14)
	w := na.NewWorker()
	clk := clock.System{}
	for i := 0; i < 3000; i++ {
		open(t, w, i, packet.ProtoUDP, clk.Now())
	}
	ea := New(na, l.A, Options{NetSig: 7})
	ea.SetMaster(true)
	ea.Start()
	defer ea.Stop()
	time.Sleep(300 * time.Millisecond) // the master runs alone: nobody to send to
	eb := New(nb, l.B, Options{NetSig: 7})
	eb.Start()
	defer eb.Stop()
	took := waitFor(t, 5*time.Second, "resync", func() bool { return nb.Len() == 3000 })
	t.Logf("late backup resynced 3000 sessions in %v", took)
	if s := eb.Stats(); s.ResyncsRequested == 0 || ea.Stats().ResyncsServed == 0 {
		t.Fatalf("no resync: backup %+v", s)
	}
}

// Datagrams that are damaged, of another version, unauthenticated or from
// a router numbering its networks differently are dropped and counted.
func TestDrops(t *testing.T) {
	key := []byte("0123456789abcdef")
	l := NewMemLink(0, 1)
	e := New(newNAT(t, 64), l.B, Options{Key: key, NetSig: 7})
	var h header
	h.typ, h.id = msgHello, 99
	good := func(sig uint32, k []byte) []byte {
		h.netSig = sig
		b := make([]byte, HeaderLen)
		putHeader(b, &h)
		return seal(b, k)
	}
	bad := good(7, key)
	bad[10] ^= 1
	ver := good(7, key)
	ver[2] = 9
	for _, tc := range []struct {
		b    []byte
		want Drop
	}{
		{[]byte{'V', 'H', 1}, DropShort},
		{ver, DropBadVersion},
		{bad, DropBadAuth},
		{good(7, []byte("another key 1234")), DropBadAuth},
		{good(7, nil), DropShort},
		{append(good(7, nil), make([]byte, 40)...), DropBadAuth},
		{good(8, key), DropWrongNet},
	} {
		before := e.cnt[tc.want].Load()
		e.receive(tc.b)
		if e.cnt[tc.want].Load() != before+1 {
			t.Errorf("%x: %v not counted", tc.b, tc.want)
		}
	}
	// Unkeyed: the record count must match the length.
	u := New(newNAT(t, 64), l.B, Options{NetSig: 7})
	h.count = 2
	b := make([]byte, HeaderLen+RecordLen)
	h.netSig = 7
	putHeader(b, &h)
	u.receive(b)
	if u.cnt[DropBadLength].Load() != 1 {
		t.Error("bad length not counted")
	}
	// A good one is taken.
	h.count = 0
	putHeader(b, &h)
	u.receive(b[:HeaderLen])
	if u.cnt[cDatagramsReceived].Load() != 1 || !u.known {
		t.Error("valid hello not taken")
	}
}

// Records survive the wire unchanged.
func TestRecordRoundTrip(t *testing.T) {
	r := nat.SyncRecord{Op: nat.SyncUpsert, Proto: 6, OSrc: 1, ODst: 2, OSport: 3, ODport: 4, RSrc: 5, RDst: 6, RSport: 7,
		RDport: 8, OutNet: 9, Flags: 10, State: 11, TCP: [4]uint32{12, 13, 14, 15}, Remaining: 16}
	b := make([]byte, RecordLen)
	putRecord(b, &r)
	var g nat.SyncRecord
	getRecord(b, &g)
	if g != r {
		t.Fatalf("%+v != %+v", g, r)
	}
	if MaxDatagram > 1400 {
		t.Fatalf("datagram %d bytes", MaxDatagram)
	}
}

// 100,000 sessions created on the master reach the backup within 2 s of
// the last creation, over real UDP sockets on the loopback.
func TestScale100k(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	port := 40000 + int(time.Now().UnixNano()%20000)
	ca, err := ListenUDP(netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"), port)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := ListenUDP(netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1"), port)
	if err != nil {
		t.Fatal(err)
	}
	n := 100000
	if raceEnabled {
		n = 20000 // the race detector slows everything tenfold: no timing claim then
	}
	na, nb, ea, eb := pair(t, ca, cb, 1<<17, []byte("0123456789abcdef"))
	waitFor(t, 2*time.Second, "peers see each other", func() bool { return ea.Stats().PeerUp && eb.Stats().PeerUp })
	w := na.NewWorker()
	clk := clock.System{}
	start := time.Now()
	for i := 0; i < n; i++ {
		open(t, w, i, packet.ProtoUDP, clk.Now())
	}
	created := time.Since(start)
	took := waitFor(t, 30*time.Second, "sessions on the backup", func() bool { return nb.Len() == n })
	a := ea.Stats()
	t.Logf("%d sessions created in %v (%.0f/s); on the backup %v after the last creation; sent %d, retransmits %d, lost %d",
		n, created, float64(n)/created.Seconds(), took, a.SessionsSent, a.Retransmits, a.SessionsLost)
	if took > 2*time.Second && !raceEnabled {
		t.Fatalf("took %v, want < 2s", took)
	}
	if m := missing(na, nb, clk.Now()); m != 0 {
		t.Fatalf("%d missing", m)
	}
}

// BenchmarkSyncSessions: the CPU time (all threads: the master's engine,
// the link, the backup's engine installing) per session synced, for
// sessions created through the NAT's data path between measurements.
func BenchmarkSyncSessions(b *testing.B) {
	l := NewMemLink(0, 1)
	na, nb, ea, eb := pair(b, l.A, l.B, 1<<20, nil)
	waitFor(b, 2*time.Second, "peers see each other", func() bool { return ea.Stats().PeerUp && eb.Stats().PeerUp })
	w := na.NewWorker()
	clk := clock.System{}
	n := min(b.N, 900000)
	pkts := make([][]byte, n)
	for i := range pkts {
		pkts[i] = flowPkt(b, i, packet.ProtoUDP, 0)
	}
	b.ResetTimer()
	for i := 0; i < n; i++ {
		w.Reset()
		w.Out(pkts[i], nInside, nPublic, clk.Now())
	}
	waitFor(b, 30*time.Second, "synced", func() bool { return nb.Len() == n })
}

// Deletions lost while the link is cut leave stale sessions on the backup
// only until the resync that follows: the master's walk is framed, and its
// end removes what it did not include.
func TestResyncSweepsStale(t *testing.T) {
	l := NewMemLink(0, 3)
	na, nb := newNAT(t, 1<<14), newNAT(t, 1<<14)
	nb.SetPassive(true)
	o := Options{NetSig: 7, GiveUp: 300 * time.Millisecond, PeerTimeout: 300 * time.Millisecond, Refresh: time.Hour}
	ea, eb := New(na, l.A, o), New(nb, l.B, o)
	ea.SetMaster(true)
	ea.Start()
	eb.Start()
	t.Cleanup(func() { ea.Stop(); eb.Stop() })
	w := na.NewWorker()
	clk := clock.System{}
	for i := 0; i < 2000; i++ {
		open(t, w, i, packet.ProtoUDP, clk.Now())
	}
	waitFor(t, 5*time.Second, "synced", func() bool { return nb.Len() == 2000 })
	// Cut: the deletions do not reach the backup, and the master gives
	// its sequence up.
	l.A.SetLoss(1)
	l.B.SetLoss(1)
	flushed, _ := na.FlushIf(func(f *nat.Flow) string {
		if f.SPort%2 == 0 {
			return "test"
		}
		return ""
	})
	waitFor(t, 5*time.Second, "master gives up", func() bool { return ea.Stats().SessionsLost > 0 })
	if nb.Len() != 2000 {
		t.Fatalf("backup has %d sessions during the cut", nb.Len())
	}
	l.A.SetLoss(0)
	l.B.SetLoss(0)
	took := waitFor(t, 5*time.Second, "backup equals master", func() bool {
		return nb.Len() == na.Len() && missing(na, nb, clk.Now()) == 0 && !eb.Stats().Resyncing
	})
	s := eb.Stats()
	t.Logf("%d of 2000 deleted during a cut; after it the backup resynced in %v: %d swept, %d resyncs requested", flushed, took, s.Swept, s.ResyncsRequested)
	if s.Swept != uint64(flushed) || s.ResyncsRequested < 2 {
		t.Fatalf("swept %d, want %d; resyncs %d", s.Swept, flushed, s.ResyncsRequested)
	}
}

// A backup that is killed while the master has datagrams in flight to it,
// and comes back as a new incarnation (a new sender id, an empty table),
// converges at once: whichever of the two hears the other first, the
// master's stream to the old incarnation must not stall the new one until
// the master gives its window up (GiveUp, 3 s).
func TestResyncRestartedBackup(t *testing.T) {
	for _, tc := range []struct {
		name        string
		dead        time.Duration // how long the backup is gone
		backupFirst bool          // the new backup hears the master before the master hears it
	}{
		{"short/backup-hears-first", 400 * time.Millisecond, true},
		{"short/master-hears-first", 400 * time.Millisecond, false},
		{"long/backup-hears-first", 1300 * time.Millisecond, true},
		{"long/master-hears-first", 1300 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := NewMemLink(0, 5)
			na, nb := newNAT(t, 1<<14), newNAT(t, 1<<14)
			nb.SetPassive(true)
			o := Options{NetSig: 7, Refresh: time.Hour}
			ea, eb := New(na, l.A, o), New(nb, l.B, o)
			ea.SetMaster(true)
			ea.Start()
			eb.Start()
			defer ea.Stop()
			w := na.NewWorker()
			clk := clock.System{}
			for i := 0; i < 1000; i++ {
				open(t, w, i, packet.ProtoUDP, clk.Now())
			}
			waitFor(t, 5*time.Second, "synced", func() bool { return nb.Len() == 1000 })
			// Kill the backup; the master goes on creating sessions and
			// sends them to nobody (they stay unacknowledged).
			eb.Stop()
			for i := 1000; i < 1200; i++ {
				open(t, w, i, packet.ProtoUDP, clk.Now())
			}
			time.Sleep(tc.dead)
			nb = newNAT(t, 1<<14)
			nb.SetPassive(true)
			cb := l.RenewB()
			quiet := l.A // the side whose first words are lost
			if tc.backupFirst {
				quiet = cb
			}
			quiet.SetLoss(1)
			eb = New(nb, cb, o)
			start := time.Now()
			eb.Start()
			defer eb.Stop()
			time.Sleep(150 * time.Millisecond)
			quiet.SetLoss(0)
			waitFor(t, 10*time.Second, "restarted backup converges", func() bool {
				return nb.Len() == na.Len() && missing(na, nb, clk.Now()) == 0
			})
			took := time.Since(start)
			a, b := ea.Stats(), eb.Stats()
			t.Logf("dead %v: converged %v after the restart (150 ms of it one-way); master lost %d, retransmits %d; backup asked %d resyncs",
				tc.dead, took, a.SessionsLost, a.Retransmits, b.ResyncsRequested)
			limit := time.Second
			if raceEnabled {
				limit = 2500 * time.Millisecond // still below GiveUp, which a stall waits for
			}
			if took > limit {
				t.Errorf("took %v, want < %v", took, limit)
			}
			if a.SessionsLost != 0 || b.ResyncsRequested != 1 {
				t.Errorf("master gave its window up (lost %d) or the backup asked %d times", a.SessionsLost, b.ResyncsRequested)
			}
		})
	}
}

// stepper drives engines by hand (no goroutines): each step hands every
// engine what reached its end of the link, then ticks it. Tests use it to
// put events exactly where the running loop would race with them.
type stepper []struct {
	e *Engine
	c *MemConn
}

func (s stepper) step() {
	for _, x := range s {
		for more := true; more; {
			select {
			case d := <-x.c.in:
				x.e.receive(d)
			default:
				more = false
			}
		}
		x.e.tick(time.Now())
	}
	time.Sleep(time.Millisecond)
}

func (s stepper) until(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	for start := time.Now(); !ok(); s.step() {
		if time.Since(start) > d {
			t.Fatalf("%s: not after %v", what, d)
		}
	}
}

// Sessions a master created just before it turned backup (their events
// still queued, not yet sent) reach the new master: the old master sends
// what it had queued before it takes the new master's table as the truth,
// so the resync that follows does not sweep them away on either side.
func TestSyncSwitchBackKeepsLastSessions(t *testing.T) {
	l := NewMemLink(0, 9)
	na, nb := newNAT(t, 1<<14), newNAT(t, 1<<14)
	nb.SetPassive(true)
	o := Options{NetSig: 7, Refresh: time.Hour}
	ea, eb := New(na, l.A, o), New(nb, l.B, o)
	ea.SetMaster(true)
	s := stepper{{ea, l.A}, {eb, l.B}}
	w := na.NewWorker()
	clk := clock.System{}
	for i := 0; i < 100; i++ {
		open(t, w, i, packet.ProtoTCP, clk.Now())
	}
	s.until(t, 5*time.Second, "synced", func() bool {
		return nb.Len() == 100 && eb.Stats().ResyncsRequested == 1 && !eb.Stats().Resyncing
	})
	// The last sessions, then at once the switch (keepalived tells the
	// old master first here: the worse order for it).
	for i := 100; i < 150; i++ {
		open(t, w, i, packet.ProtoTCP, clk.Now())
	}
	na.SetPassive(true)
	ea.SetMaster(false)
	s.step()
	nb.SetPassive(false)
	eb.SetMaster(true)
	s.until(t, 5*time.Second, "old master resynced", func() bool {
		a := ea.Stats()
		return a.ResyncsRequested == 1 && !a.Resyncing && eb.Stats().ResyncsServed == 1 && ea.Stats().Unacked == 0 && eb.Stats().Unacked == 0
	})
	if na.Len() != 150 || nb.Len() != 150 || missing(na, nb, clk.Now()) != 0 {
		t.Fatalf("after the switch the old master has %d sessions, the new one %d (want 150 on both)", na.Len(), nb.Len())
	}
	t.Logf("50 sessions created just before the switch: on both routers after it; old master swept %d", ea.Stats().Swept)
}

// Sessions created while the link is cut for longer than PeerTimeout but
// shorter than GiveUp (the master takes the peer as gone and does not send
// their events; nothing is given up, so neither side starts a new
// sequence) reach the backup soon after the link returns, not at the next
// periodic refresh.
func TestResyncAfterShortCut(t *testing.T) {
	l := NewMemLink(0, 11)
	na, nb := newNAT(t, 1<<14), newNAT(t, 1<<14)
	nb.SetPassive(true)
	o := Options{NetSig: 7, PeerTimeout: 300 * time.Millisecond, Refresh: time.Hour}
	ea, eb := New(na, l.A, o), New(nb, l.B, o)
	ea.SetMaster(true)
	ea.Start()
	eb.Start()
	t.Cleanup(func() { ea.Stop(); eb.Stop() })
	w := na.NewWorker()
	clk := clock.System{}
	for i := 0; i < 500; i++ {
		open(t, w, i, packet.ProtoUDP, clk.Now())
	}
	waitFor(t, 5*time.Second, "synced", func() bool { return nb.Len() == 500 && ea.Stats().Unacked == 0 })
	l.A.SetLoss(1)
	l.B.SetLoss(1)
	waitFor(t, 5*time.Second, "master takes the peer as gone", func() bool { return !ea.Stats().PeerUp })
	for i := 500; i < 600; i++ {
		open(t, w, i, packet.ProtoUDP, clk.Now())
	}
	time.Sleep(50 * time.Millisecond)
	l.A.SetLoss(0)
	l.B.SetLoss(0)
	took := waitFor(t, 5*time.Second, "backup converges", func() bool {
		return nb.Len() == na.Len() && missing(na, nb, clk.Now()) == 0
	})
	t.Logf("100 sessions created during a cut: on the backup %v after it; master lost %d", took, ea.Stats().SessionsLost)
	if took > 2*time.Second {
		t.Fatalf("took %v", took)
	}
}

// A backup that gives its own sequence up (its resync request went
// unacknowledged for GiveUp) asks for a resync again: the master takes its
// new sequence for a new incarnation and drops what it had in flight to
// it, which the backup would otherwise miss until the next refresh.
func TestResyncAfterBackupGivesUp(t *testing.T) {
	l := NewMemLink(0, 13)
	na, nb := newNAT(t, 1<<14), newNAT(t, 1<<14)
	nb.SetPassive(true)
	ea := New(na, l.A, Options{NetSig: 7, Refresh: time.Hour, PeerTimeout: 10 * time.Second, GiveUp: 10 * time.Second})
	eb := New(nb, l.B, Options{NetSig: 7, Refresh: time.Hour, GiveUp: 300 * time.Millisecond})
	ea.SetMaster(true)
	s := stepper{{ea, l.A}, {eb, l.B}}
	w := na.NewWorker()
	clk := clock.System{}
	for i := 0; i < 100; i++ {
		open(t, w, i, packet.ProtoUDP, clk.Now())
	}
	s.until(t, 5*time.Second, "synced", func() bool { return nb.Len() == 100 && ea.Stats().Unacked == 0 && eb.Stats().Unacked == 0 })
	// Cut both ways; the backup asks for a resync that nobody hears, and
	// the master sends sessions that nobody hears.
	l.A.SetLoss(1)
	l.B.SetLoss(1)
	eb.requestResync(time.Now())
	oldID := eb.id
	for i := 100; i < 150; i++ {
		open(t, w, i, packet.ProtoUDP, clk.Now())
	}
	s.until(t, 5*time.Second, "backup gives up", func() bool { return eb.id != oldID })
	// The backup's new sequence reaches the master first (it drops its
	// window), then the link is whole again.
	l.B.SetLoss(0)
	s.until(t, 5*time.Second, "master sees the new sequence", func() bool { return ea.peerID == eb.id })
	l.A.SetLoss(0)
	s.until(t, 5*time.Second, "backup converges", func() bool {
		return nb.Len() == 150 && missing(na, nb, clk.Now()) == 0
	})
	if r := eb.Stats().ResyncsRequested; r != 3 {
		t.Fatalf("backup asked %d resyncs, want 3 (at start, in the cut, after giving up)", r)
	}
}
