package router

import (
	"net"
	"net/netip"
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
