package nat

import (
	"net/netip"
	"testing"

	"vrouter/packet"
)

// pump hands every event of a to b as the HA engine would.
func pump(a, b *NAT, now int64) (n int) {
	return a.SyncDrain(1<<20, now, func(r *SyncRecord) {
		n++
		if r.Op == SyncDelete {
			b.Remove(r)
		} else {
			b.Install(r, now)
		}
	})
}

// A master's SNAT session, its TCP state and its deletion reach a backup,
// which then translates the flow's packets with the same mapping, holds its
// port against new mappings, and refuses new flows while passive.
func TestSyncInstall(t *testing.T) {
	c := testConfig()
	ma, wa := newNAT(t, c)
	mb, wb := newNAT(t, c)
	ma.EnableSync()
	mb.EnableSync()
	mb.SetPassive(true)
	now := 10 * sec

	syn := pk{src: "10.1.1.7", dst: "198.51.100.9", proto: packet.ProtoTCP, sport: 40000, dport: 443, flags: packet.TCPSyn, seq: 100, win: 1000}
	d := out(t, wa, build(t, syn), now, Translated)
	synack := pk{src: "198.51.100.9", dst: d.src, proto: packet.ProtoTCP, sport: 443, dport: d.sport, flags: packet.TCPSyn | packet.TCPAck, seq: 500, ack: 101, win: 1000}
	in(t, wa, build(t, synack), now, Translated)
	ack := syn
	ack.flags, ack.seq, ack.ack = packet.TCPAck, 101, 501
	out(t, wa, build(t, ack), now, Translated)
	// A creation and two state changes in one pass: one record, with the
	// latest state.
	ma.SyncNewPass()
	if n := pump(ma, mb, now); n != 1 {
		t.Fatalf("%d records, want 1", n)
	}
	if mb.Len() != 1 {
		t.Fatalf("backup has %d sessions", mb.Len())
	}
	ss := mb.Sessions(netip.Addr{})
	if ss[0].State != "ESTABLISHED" || ss[0].Reply.Dst.Port() != d.sport {
		t.Fatalf("backup session %v", ss[0])
	}
	// The backup translates the established flow (a non-SYN segment needs
	// the session) both ways, with the master's mapping.
	mb.SetPassive(false)
	data := ack
	data.seq = 101
	if e := out(t, wb, build(t, data), now+sec, Translated); e.src != d.src || e.sport != d.sport {
		t.Fatalf("backup maps %s:%d, master %s:%d", e.src, e.sport, d.src, d.sport)
	}
	mb.SetPassive(true)
	// The port is held: another host asking for the same inside port gets another.
	mb.SetPassive(false)
	other := syn
	other.src = "10.1.2.7" // same paired address (one SNAT address)
	if e := out(t, wb, build(t, other), now+sec, Translated); e.sport == d.sport {
		t.Fatalf("new mapping reused synced port %d", e.sport)
	}
	mb.SetPassive(true)
	// Passive: a new flow is refused and counted.
	third := syn
	third.src, third.sport = "10.1.1.8", 40001
	v, r := wb.In(build(t, third), nInside, now)
	if v == Drop {
		t.Fatal(r)
	}
	if v, r = wb.Out(build(t, third), nInside, nPublic, now); v != Drop || r != HABackup || counts(mb)["nat-ha-backup"] != 1 {
		t.Fatalf("passive: %v %v, counted %d", v, r, counts(mb)["nat-ha-backup"])
	}
	// Deletion on the master removes it on the backup.
	ma.SyncNewPass()
	if f, _ := ma.FlushIf(func(*Flow) string { return "test" }); f != 1 {
		t.Fatalf("flushed %d", f)
	}
	pump(ma, mb, now)
	if mb.Lookup(&SyncRecord{Proto: packet.ProtoTCP, OSrc: packet.U32(mustAddr("10.1.1.7")), ODst: packet.U32(mustAddr("198.51.100.9")), OSport: 40000, ODport: 443}) {
		t.Fatal("deleted session still on the backup")
	}
	// Installed sessions make no events of their own (no echo).
	// Its only events are its own session's (other): one record.
	mb.SyncNewPass()
	if n := pump(mb, ma, now); n != 1 {
		t.Fatalf("backup records %d, want 1", n)
	}
}

// A walk sees every session, and the data path makes no allocation to
// record events.
func TestSyncWalkAndAllocs(t *testing.T) {
	c := testConfig()
	ma, _ := newNAT(t, c)
	ma.EnableSync()
	wa := ma.NewWorker() // made after EnableSync: has its ring
	now := 10 * sec
	for i := 0; i < 100; i++ {
		p := pk{src: "10.1.1.7", dst: "198.51.100.9", proto: packet.ProtoUDP, sport: uint16(2000 + i), dport: 53}
		out(t, wa, build(t, p), now, Translated)
	}
	seen := 0
	for pos, done := uint32(0), false; !done; {
		pos, done = ma.SyncWalk(pos, 7, now, func(r *SyncRecord) { seen++ })
	}
	if seen != 100 {
		t.Fatalf("walk saw %d", seen)
	}
	// A TCP flow's state changes on the fast path allocate nothing.
	syn := pk{src: "10.1.1.7", dst: "198.51.100.9", proto: packet.ProtoTCP, sport: 40000, dport: 443, flags: packet.TCPSyn, seq: 100, win: 1000}
	out(t, wa, build(t, syn), now, Translated)
	// Each SYN reopens the closed session and each in-window RST closes
	// it: two state changes (two events) per run.
	rst := syn
	rst.flags, rst.seq = packet.TCPRst, 101
	ps, pr := build(t, syn), build(t, rst)
	buf := make([]byte, 1500)
	ma.SyncDrain(1<<20, now, func(*SyncRecord) {})
	q := wa.syncq.Load()
	before := q.tail.Load()
	allocs := testing.AllocsPerRun(100, func() {
		for _, p := range []packet.IPv4{ps, pr} {
			b := packet.IPv4(buf[:len(p)])
			copy(b, p)
			wa.Reset()
			wa.In(b, nInside, now)
			wa.Out(b, nInside, nPublic, now)
		}
	})
	if n := q.tail.Load() - before; n < 200 {
		t.Fatalf("%d events recorded for 101 runs of SYN and RST", n)
	}
	ma.SyncNewPass()
	if n := ma.SyncDrain(1<<20, now, func(*SyncRecord) {}); n != 1 {
		t.Fatalf("%d records of one session's events in one pass", n)
	}
	if allocs != 0 {
		t.Fatalf("%v allocations per packet", allocs)
	}
}
