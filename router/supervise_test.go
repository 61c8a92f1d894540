package router

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"vrouter/config"
	"vrouter/internal/clock"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

// devPort is a pipe port that says it sits on a kernel device, so that the
// supervisor watches it.
type devPort struct{ *pipe.Port }

func (devPort) Driver() string { return "afpacket" }

// A supervised port's device goes away (counted, the port stays), comes
// back with a new index (reopened with Options.Open, retried with a
// back-off while that fails); the new port carries the traffic and the
// runtime routes survive the swap.
func TestSuperviseReopensRecreatedDevice(t *testing.T) {
	pa, pb, pc := pipe.New("pa", macA, 1500), devPort{pipe.New("pb", macB, 1500)}, pipe.New("pc", macC, 1500)
	var fresh *pipe.Port
	failOpen := true
	open := func(pc config.Port) (port.Port, error) {
		if failOpen {
			return nil, errors.New("device not ready")
		}
		fresh = pipe.New(pc.Name, [6]byte{2, 0, 0, 0, 0, 0x2b}, 1500)
		return devPort{fresh}, nil
	}
	r, err := New(rotatingConfig(0), []port.Port{pa, pb, pc}, Options{Clock: clock.NewManual(), Open: open})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	devs := map[string]int{"pipe:pb": 5}
	old := deviceIndex
	deviceIndex = func(name string) (int, bool) { i, ok := devs[name]; return i, ok }
	defer func() { deviceIndex = old }()
	stubLinks(t, map[string]string{"pipe:pb": "up"}) // what the kernel says of the device when there
	if _, err := r.AddRoute(netip.MustParsePrefix("10.77.0.0/16"), netip.MustParseAddr("198.51.100.254")); err != nil {
		t.Fatal(err)
	}
	seen := map[*portState]*watched{}
	now := time.Unix(1000, 0)
	r.superviseOnce(seen, now)

	delete(devs, "pipe:pb")
	r.superviseOnce(seen, now.Add(superviseEvery))
	r.superviseOnce(seen, now.Add(2*superviseEvery))
	if c := r.Counters(); c[CntPortDeviceLost] != 1 || c[CntPortReopened] != 0 {
		t.Fatalf("device gone: lost %d, reopened %d; want 1, 0", c[CntPortDeviceLost], c[CntPortReopened])
	}
	wantState(t, r, "pb", PortStateLost)
	wantState(t, r, "pa", PortStateUp) // a pipe: no device

	devs["pipe:pb"] = 9 // recreated: a new index
	r.superviseOnce(seen, now.Add(3*superviseEvery))
	if r.Counters()[CntPortReopened] != 0 || r.ports[1].closed.Load() {
		t.Fatal("a failing open replaced the port")
	}
	wantState(t, r, "pb", PortStateLost) // the device is there, the port is not on it yet
	failOpen = false
	r.superviseOnce(seen, now.Add(3*superviseEvery+superviseEvery/2)) // within the back-off
	if fresh != nil {
		t.Fatal("reopened within the back-off")
	}
	r.superviseOnce(seen, now.Add(10*superviseEvery))
	if fresh == nil || r.Counters()[CntPortReopened] != 1 || !r.ports[1].closed.Load() {
		t.Fatalf("not reopened: fresh %v, reopened %d", fresh != nil, r.Counters()[CntPortReopened])
	}
	fresh.Take() // the gratuitous ARP of the swap
	wantState(t, r, "pb", PortStateUp)

	// Through the runtime route, out of the new port.
	w := r.workers[0]
	pa.Inject(udpFrom(t, net.IPv4(10, 77, 1, 1).To4(), 4000))
	for pa.TryReadBatch(w.rx) > 0 {
		w.processBatch(r.ports[0], w.rx)
	}
	out := fresh.Take()
	if len(out) != 1 {
		t.Fatalf("%d frames out of the reopened port, want 1 (drops %v)", len(out), r.Drops())
	}
	if ip := checkIPChecksum(t, decode(out[0])); !ip.DstIP.Equal(net.IPv4(10, 77, 1, 1)) || ip.Protocol != layers.IPProtocolUDP {
		t.Fatalf("out of the reopened port: %v", ip)
	}
	got := r.Ports()
	n := 0
	for _, p := range got {
		if p.Name == "pb" {
			n++
			if p.TxPackets == 0 {
				t.Errorf("pb after the swap: %+v", p)
			}
		}
	}
	if len(got) != 3 || n != 1 {
		t.Fatalf("ports after the swap: %+v", got)
	}
	// Nothing happens on the next looks.
	r.superviseOnce(seen, now.Add(20*superviseEvery))
	if c := r.Counters(); c[CntPortReopened] != 1 || c[CntPortDeviceLost] != 1 {
		t.Fatalf("counters moved: %d %d", c[CntPortDeviceLost], c[CntPortReopened])
	}
}

// idxPort is a supervised port that knows its device's index at open.
type idxPort struct {
	devPort
	idx int
}

func (p idxPort) Ifindex() int { return p.idx }

// A device deleted and created again before the supervisor's first look
// at the port: the index the port was opened on says it is another
// device, so the port is reopened all the same.
func TestSuperviseDeviceRecreatedBeforeFirstLook(t *testing.T) {
	pa, pb := pipe.New("pa", macA, 1500), idxPort{devPort{pipe.New("pb", macB, 1500)}, 5}
	var fresh *pipe.Port
	open := func(pc config.Port) (port.Port, error) {
		fresh = pipe.New(pc.Name, [6]byte{2, 0, 0, 0, 0, 0x2b}, 1500)
		return idxPort{devPort{fresh}, 9}, nil
	}
	r, err := New(rotatingConfig(0), []port.Port{pa, pb, pipe.New("pc", macC, 1500)}, Options{Clock: clock.NewManual(), Open: open})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	devs := map[string]int{"pipe:pb": 9} // already recreated
	old := deviceIndex
	deviceIndex = func(name string) (int, bool) { i, ok := devs[name]; return i, ok }
	defer func() { deviceIndex = old }()
	stubLinks(t, map[string]string{"pipe:pb": "up"})
	seen := map[*portState]*watched{}
	now := time.Unix(1000, 0)
	r.superviseOnce(seen, now)
	if fresh == nil || r.Counters()[CntPortReopened] != 1 {
		t.Fatalf("not reopened at the first look: fresh %v, reopened %d", fresh != nil, r.Counters()[CntPortReopened])
	}
	fresh.Take()
	// The new port is watched against its own index: nothing more.
	r.superviseOnce(seen, now.Add(superviseEvery))
	r.superviseOnce(seen, now.Add(2*superviseEvery))
	if c := r.Counters(); c[CntPortReopened] != 1 || c[CntPortDeviceLost] != 0 {
		t.Fatalf("after the reopen: lost %d, reopened %d; want 0, 1", c[CntPortDeviceLost], c[CntPortReopened])
	}
	if len(seen) != 1 {
		t.Errorf("%d ports watched, want 1 (the closed one forgotten)", len(seen))
	}
}

// [router] shared_poll with ports that cannot be polled (pipes): they keep
// workers of their own and forward; the shared worker starts and stops
// with the router; a reload that turns the setting says it needs a
// restart and applies the rest.
func TestSharedPollFallbackAndReload(t *testing.T) {
	cfg := rotatingConfig(0)
	cfg.Router.SharedPoll = true
	pa, pb, pc := pipe.New("pa", macA, 1500), pipe.New("pb", macB, 1500), pipe.New("pc", macC, 1500)
	r, err := New(cfg, []port.Port{pa, pb, pc}, Options{Clock: clock.NewManual()})
	if err != nil {
		t.Fatal(err)
	}
	if r.sp == nil {
		t.Fatal("no shared poller")
	}
	r.Start()
	defer r.Stop()
	if n := len(*r.sp.members.Load()); n != 0 {
		t.Fatalf("%d pipe ports on the shared worker, want 0", n)
	}
	next := rotatingConfig(0)
	sum, err := r.Reconfigure(next)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sum, "shared_poll = false: not applied, needs a restart") {
		t.Fatalf("reload summary %q does not say shared_poll needs a restart", sum)
	}
	if r.sp == nil {
		t.Fatal("the reload removed the shared poller")
	}
}
