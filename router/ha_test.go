package router

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"vrouter/config"
	"vrouter/ha"
	"vrouter/internal/clock"
	"vrouter/nat"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

var (
	ipSNATShared = net.IPv4(198, 51, 100, 50).To4()
	ipHAFloat    = net.IPv4(198, 51, 100, 60).To4()
)

// haConfig is testConfig with SNAT of network a behind a shared address,
// a floating IP, and [ha].
func haConfig(initial string) *config.Config {
	c := testConfig()
	c.NAT.SNAT = []config.SNAT{{Source: netip.MustParsePrefix("192.0.2.0/24"), Out: "b",
		To: config.AddrRange{First: netip.MustParseAddr("198.51.100.50"), Last: netip.MustParseAddr("198.51.100.50")}}}
	c.NAT.Floating = []config.Floating{{External: netip.MustParseAddr("198.51.100.60"), Internal: netip.MustParseAddr("192.0.2.20")}}
	c.HA = config.HA{Local: netip.MustParseAddr("192.0.2.1"), Peer: netip.MustParseAddr("192.0.2.2"), Initial: initial}
	c.ApplyDefaults()
	return c
}

func newHALab(t testing.TB, initial string) *lab {
	pa := pipe.New("pa", macA, 1500)
	pb := pipe.New("pb", macB, 1400)
	clk := clock.NewManual()
	r, err := New(haConfig(initial), []port.Port{pa, pb}, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	r.started = time.Now() // announcements go out (Start is not called: the test runs the workers)
	t.Cleanup(r.stopHA)
	return &lab{t: t, r: r, clk: clk, pa: pa, pb: pb}
}

// garps returns the addresses announced by gratuitous ARP in frames.
func garps(t testing.TB, frames [][]byte) map[string]bool {
	out := map[string]bool{}
	for _, f := range frames {
		if a, ok := decode(f).Layer(layers.LayerTypeARP).(*layers.ARP); ok && a.Operation == layers.ARPRequest &&
			net.IP(a.SourceProtAddress).Equal(net.IP(a.DstProtAddress)) {
			out[net.IP(a.SourceProtAddress).String()] = true
		}
	}
	return out
}

func dropCount(r *Router, d DropReason) uint64 { return r.Drops()[d] }

func natCount(r *Router, name string) uint64 {
	for _, v := range r.NAT.Counters() {
		if v.Name == name {
			return v.Value
		}
	}
	return 0
}

// A pair in one process: the master answers ARP for the shared addresses
// and the backup does not; a flow the master translates is synced, and the
// backup forwards it with the same mapping while refusing new ones; when
// the backup becomes master it announces the shared addresses at once.
func TestHAPair(t *testing.T) {
	m, b := newHALab(t, "master"), newHALab(t, "backup")
	link := ha.NewMemLink(0, 1)
	if err := m.r.StartHA(link.A); err != nil {
		t.Fatal(err)
	}
	if err := b.r.StartHA(link.B); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*lab{m, b} {
		l.resolveBoth()
	}
	// ARP for the shared SNAT address and the floating IP on network b.
	for _, ip := range []net.IP{ipSNATShared, ipHAFloat} {
		m.pb.Inject(arpReq(t, hostB, ipHostB, ip))
		m.run()
		if out := m.pb.Take(); len(out) != 1 {
			t.Fatalf("master: %d replies for %v", len(out), ip)
		}
		b.pb.Inject(arpReq(t, hostB, ipHostB, ip))
		b.run()
		if out := b.pb.Take(); len(out) != 0 {
			t.Fatalf("backup answered for %v", ip)
		}
	}
	if n := dropCount(b.r, DropHABackupARP); n != 2 {
		t.Fatalf("ha-backup-arp %d, want 2", n)
	}
	// A flow through the master's SNAT.
	m.pa.Inject(udpTo(t, hostA, macA[:], ipHostA, ipHostB, 5353, 53))
	m.run()
	out := m.pb.Take()
	if len(out) != 1 {
		t.Fatalf("master forwarded %d", len(out))
	}
	mu := decode(out[0]).Layer(layers.LayerTypeUDP).(*layers.UDP)
	want := nat.SyncRecord{Proto: 17, OSrc: 0xc000020a, ODst: 0xc633640a, OSport: 5353, ODport: 53}
	deadline := time.Now().Add(3 * time.Second)
	for !b.r.NAT.Lookup(&want) {
		if time.Now().After(deadline) {
			t.Fatalf("session not synced: %+v", b.r.HA())
		}
		time.Sleep(2 * time.Millisecond)
	}
	// The backup forwards the synced flow with the master's mapping ...
	b.pa.Inject(udpTo(t, hostA, macA[:], ipHostA, ipHostB, 5353, 53))
	b.run()
	out = b.pb.Take()
	if len(out) != 1 {
		t.Fatalf("backup forwarded %d of a synced flow", len(out))
	}
	p := decode(out[0])
	if ip := checkIPChecksum(t, p); !ip.SrcIP.Equal(ipSNATShared) || p.Layer(layers.LayerTypeUDP).(*layers.UDP).SrcPort != mu.SrcPort {
		t.Fatalf("backup translated to %v, master to %v:%d", p, ipSNATShared, mu.SrcPort)
	}
	// ... and its reply.
	b.pb.Inject(udpTo(t, hostB, macB[:], ipHostB, ipSNATShared, 53, uint16(mu.SrcPort)))
	b.run()
	if out = b.pa.Take(); len(out) != 1 {
		t.Fatalf("backup delivered %d replies", len(out))
	}
	// A new flow is refused and counted.
	refused := natCount(b.r, "nat-ha-backup")
	b.pa.Inject(udpTo(t, hostA, macA[:], ipHostA, ipHostB, 5354, 53))
	b.run()
	if out = b.pb.Take(); len(out) != 0 || natCount(b.r, "nat-ha-backup") != refused+1 {
		t.Fatalf("backup forwarded a new flow (%d frames, counted %d)", len(out), natCount(b.r, "nat-ha-backup")-refused)
	}
	// Takeover: gratuitous ARP for everything on network b at once, and
	// the new flow now passes.
	if err := b.r.SetHAState("master", "test"); err != nil {
		t.Fatal(err)
	}
	g := garps(t, b.pb.Take())
	for _, ip := range []string{"198.51.100.1", "198.51.100.50", "198.51.100.60"} {
		if !g[ip] {
			t.Errorf("no gratuitous ARP for %s (got %v)", ip, g)
		}
	}
	b.pa.Inject(udpTo(t, hostA, macA[:], ipHostA, ipHostB, 5354, 53))
	b.run()
	if out = b.pb.Take(); len(out) != 1 {
		t.Fatalf("new master forwarded %d of a new flow", len(out))
	}
	info := b.r.HA()
	if info.State != "master" || info.Previous != "backup" || info.Cause != "test" || info.Sync.SessionsReceived == 0 {
		t.Fatalf("show ha: %+v", info)
	}
	if err := b.r.SetHAState("primary", "test"); err == nil {
		t.Fatal("bad state accepted")
	}
}

// A backup that starts (or reloads) next to a working master announces its
// own addresses but not the shared ones: a gratuitous ARP for the SNAT
// address or a floating IP would move the outside neighbours' entries to
// the backup, which has not yet received the master's sessions, and the
// master's flows would stall (the switch-back stall of TestHAFailover: a
// restarted backup took the SNAT address, its resync was not through,
// and the server's data was dropped as nat-ha-backup until TCP's
// retransmission backoff found the way again, ~3 s later). Becoming
// master announces them all.
func TestHABackupAnnouncesNoSharedAddress(t *testing.T) {
	l := newHALab(t, "backup")
	shared := []string{ipSNATShared.String(), ipHAFloat.String()}
	check := func(when string, wantShared bool) {
		t.Helper()
		g := garps(t, l.pb.Take())
		if !g["198.51.100.1"] {
			t.Errorf("%s: no gratuitous ARP for the router's own address (got %v)", when, g)
		}
		for _, ip := range shared {
			if g[ip] != wantShared {
				t.Errorf("%s: gratuitous ARP for %s: %v, want %v", when, ip, g[ip], wantShared)
			}
		}
	}
	l.r.announce() // what Start does
	check("backup starts", false)
	if _, err := l.r.Reconfigure(haConfig("backup")); err != nil {
		t.Fatal(err)
	}
	check("backup reloads", false)
	if err := l.r.SetHAState("fault", "test"); err != nil {
		t.Fatal(err)
	}
	l.r.announce()
	check("fault", false)
	if err := l.r.SetHAState("master", "test"); err != nil {
		t.Fatal(err)
	}
	check("becomes master", true)
	l.r.announce()
	check("master starts", true)
}

// Without [ha] the router answers for everything and ha state is refused.
func TestHAStandalone(t *testing.T) {
	l := newLab(t)
	if err := l.r.SetHAState("master", "test"); err == nil {
		t.Fatal("ha state accepted without [ha]")
	}
	if s := l.r.HA().State; s != "standalone" {
		t.Fatalf("state %q", s)
	}
}

// sessionsOf lists a router's sessions by original tuple, with their
// external address and port.
func sessionsOf(r *Router) map[[5]uint32][2]uint32 {
	out := map[[5]uint32][2]uint32{}
	now := r.clock.Now()
	for pos, done := uint32(0), false; !done; {
		pos, done = r.NAT.SyncWalk(pos, 1<<16, now, func(s *nat.SyncRecord) {
			out[[5]uint32{uint32(s.Proto), s.OSrc, s.ODst, uint32(s.OSport), uint32(s.ODport)}] = [2]uint32{s.RDst, uint32(s.RDport)}
		})
	}
	return out
}

// noPortTwice fails when two inside endpoints hold one external address
// and port.
func noPortTwice(t *testing.T, who string, ss map[[5]uint32][2]uint32) {
	t.Helper()
	owner := map[[2]uint32][2]uint32{}
	for k, ext := range ss {
		in := [2]uint32{k[1], k[3]}
		if o, ok := owner[ext]; ok && o != in {
			t.Fatalf("%s: external port %d held by %v and %v", who, ext[1], o, in)
		}
		owner[ext] = in
	}
}

// Split brain: the sync link is cut and both routers become master; both
// create sessions from the same SNAT address (so their ports clash). When
// the link returns each resyncs from the other and keeps its own flows
// against the other's clashing ones; then one goes backup, asks for the
// master's table and drops what the master does not have: both tables are
// the master's, and no port is held twice.
func TestHASplitBrain(t *testing.T) {
	a, b := newHALab(t, "master"), newHALab(t, "backup")
	link := ha.NewMemLink(0, 5)
	if err := a.r.StartHA(link.A); err != nil {
		t.Fatal(err)
	}
	if err := b.r.StartHA(link.B); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*lab{a, b} {
		l.resolveBoth()
	}
	ipHostA2 := net.IPv4(192, 0, 2, 11).To4()
	flowFrom := func(l *lab, src net.IP, sport uint16) {
		l.pa.Inject(udpTo(t, hostA, macA[:], src, ipHostB, sport, 53))
		l.run()
		n := 0
		for _, f := range l.pb.Take() { // gratuitous ARP may come too
			if decode(f).Layer(layers.LayerTypeUDP) != nil {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("flow from %v:%d not forwarded", src, sport)
		}
	}
	flow := func(l *lab, sport uint16) { flowFrom(l, ipHostA, sport) }
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: A %+v, B %+v", what, a.r.HA(), b.r.HA())
			}
		}
	}
	for i := uint16(0); i < 10; i++ {
		flow(a, 5000+i) // before the split: synced to B
	}
	wait("synced", func() bool { return b.r.NAT.Len() == a.r.NAT.Len() })
	// The cut: B's keepalived hears no adverts and makes it master.
	link.A.SetLoss(1)
	link.B.SetLoss(1)
	if err := b.r.SetHAState("master", "test: split"); err != nil {
		t.Fatal(err)
	}
	// Port preservation gives A's host .10 and B's host .11 the same
	// external ports: twenty clashes, and ten flows of B that clash with
	// nothing.
	for i := uint16(0); i < 20; i++ {
		flow(a, 6000+i)
		flowFrom(b, ipHostA2, 6000+i)
	}
	for i := uint16(0); i < 10; i++ {
		flowFrom(b, ipHostA2, 9000+i)
	}
	flow(a, 8000) // the same flow on both, each with its own mapping
	flow(b, 8000)
	wait("both give their sequences up", func() bool {
		return a.r.HA().Sync.SessionsLost > 0 && b.r.HA().Sync.SessionsLost > 0
	})
	// The link returns; both are still master for a moment.
	servedA, servedB := a.r.HA().Sync.ResyncsServed, b.r.HA().Sync.ResyncsServed
	link.A.SetLoss(0)
	link.B.SetLoss(0)
	// Each walks its table to the other, which refuses the twenty
	// records that clash with its own flows.
	wait("each resynced from the other, refusing the clashes", func() bool {
		sa, sb := a.r.HA().Sync, b.r.HA().Sync
		return sa.ResyncsServed > servedA && sb.ResyncsServed > servedB && sa.Refused >= 20 && sb.Refused >= 20 &&
			sa.Unacked == 0 && sb.Unacked == 0 && !sa.Resyncing && !sb.Resyncing
	})
	refusedA, refusedB := a.r.HA().Sync.Refused, b.r.HA().Sync.Refused
	// VRRP elects A; B goes back to backup.
	if err := b.r.SetHAState("backup", "test: healed"); err != nil {
		t.Fatal(err)
	}
	wait("the backup's table is the master's", func() bool {
		sa, sb := sessionsOf(a.r), sessionsOf(b.r)
		if len(sa) != len(sb) || b.r.HA().Sync.Resyncing {
			return false
		}
		for k, v := range sa {
			if sb[k] != v {
				return false
			}
		}
		return true
	})
	sa, sb := sessionsOf(a.r), sessionsOf(b.r)
	noPortTwice(t, "A", sa)
	noPortTwice(t, "B", sb)
	// The master kept every flow of its own.
	for i := uint16(0); i < 10; i++ {
		for _, base := range []uint16{5000, 6000} {
			k := [5]uint32{17, 0xc000020a, 0xc633640a, uint32(base + i), 53}
			if _, ok := sa[k]; !ok {
				t.Fatalf("master lost its own flow from port %d", base+i)
			}
		}
	}
	// B's flows survive where they clashed with nothing.
	kept := 0
	for i := uint16(0); i < 20; i++ {
		if _, ok := sa[[5]uint32{17, 0xc000020b, 0xc633640a, uint32(6000 + i), 53}]; ok {
			t.Errorf("B's flow from port %d, which clashed with A's, is on the master", 6000+i)
		}
		if _, ok := sa[[5]uint32{17, 0xc000020b, 0xc633640a, uint32(9000 + i), 53}]; ok {
			kept++
		}
	}
	if kept != 10 {
		t.Errorf("%d of B's 10 flows that clashed with nothing are on the master", kept)
	}
	t.Logf("split brain: master A has %d sessions, backup B the same; of B's 30 flows made during the split the %d that clashed with nothing survive; while both were master A refused %d of B's records and B %d of A's; B swept %d",
		len(sa), kept, refusedA, refusedB, b.r.HA().Sync.Swept)
}

// A reload that changes [ha] applies the rest and says that [ha] needs a
// restart; the router keeps the [ha] it started with.
func TestHAReloadNeedsRestart(t *testing.T) {
	l := newHALab(t, "backup")
	cfg := haConfig("backup")
	sum, err := l.r.Reconfigure(cfg)
	if err != nil || strings.Contains(sum, "[ha]") {
		t.Fatalf("unchanged [ha]: %q %v", sum, err)
	}
	cfg = haConfig("backup")
	cfg.HA.Peer = netip.MustParseAddr("192.0.2.3")
	cfg.HA.Key = []byte("0123456789abcdef")
	sum, err = l.r.Reconfigure(cfg)
	if err != nil || !strings.Contains(sum, "[ha] changed (peer, key): not applied, needs a restart") {
		t.Fatalf("reload summary %q %v", sum, err)
	}
	if h := l.r.HA(); h.Peer != netip.MustParseAddr("192.0.2.2") || h.Authenticated {
		t.Fatalf("reload applied [ha]: %+v", h)
	}
}
