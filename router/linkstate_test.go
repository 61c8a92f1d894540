package router

import (
	"testing"

	"vrouter/internal/clock"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

// The kernel's operational state (IF_OPER_*) and the IFF_UP flag make the
// state show interfaces prints.
func TestLinkStateName(t *testing.T) {
	for _, c := range []struct {
		oper  uint8
		flags uint32
		want  string
	}{
		{6, 0x1003, "up"},             // IF_OPER_UP, IFF_UP|IFF_BROADCAST|IFF_MULTICAST
		{2, 0x1003, "down"},           // up but no carrier (a TAP without reader)
		{2, 0x1002, "admin-down"},     // IFF_UP off: the kernel says down too
		{6, 0x0, "admin-down"},        //
		{3, 0x1003, "lowerlayerdown"}, // a veth whose peer is down
		{5, 0x1003, "dormant"},        //
		{1, 0x1003, "notpresent"},     //
		{4, 0x1003, "testing"},        //
		{0, 0x1003, "unknown"},        // a device that reports none
		{7, 0x1003, "unknown"},        // a value newer than this code
		{255, 0x1003, "unknown"},      //
	} {
		if got := linkStateName(c.oper, c.flags); got != c.want {
			t.Errorf("oper %d flags %#x: %q, want %q", c.oper, c.flags, got, c.want)
		}
	}
	for st, up := range map[string]bool{"up": true, "unknown": true, "down": false, "lost": false, "admin-down": false, "lowerlayerdown": false} {
		if p := (PortStats{State: st}); p.Up() != up {
			t.Errorf("%s: Up %v", st, p.Up())
		}
	}
}

// fakeLinks answers for devices by name; a device it does not know is
// not there.
type fakeLinks map[string]string

func (f fakeLinks) state(p port.Port) (string, bool) { s, ok := f[p.Device()]; return s, ok }
func (fakeLinks) close()                             {}

// stubLinks makes Ports see devices in states for the rest of the test.
func stubLinks(t *testing.T, states map[string]string) {
	old := newLinkLookup
	newLinkLookup = func() linkLookup { return fakeLinks(states) }
	t.Cleanup(func() { newLinkLookup = old })
}

// wantState checks the state Ports gives port name.
func wantState(t *testing.T, r *Router, name, want string) {
	t.Helper()
	for _, p := range r.Ports() {
		if p.Name == name {
			if p.State != want {
				t.Errorf("port %s: state %q, want %q", name, p.State, want)
			}
			return
		}
	}
	t.Errorf("no port %s", name)
}

// A port on a kernel device is in the kernel's state of the device, lost
// when there is no such device; a pipe port has none and is up.
func TestPortStates(t *testing.T) {
	pa, pb, pc := pipe.New("pa", macA, 1500), devPort{pipe.New("pb", macB, 1500)}, devPort{pipe.New("pc", macC, 1500)}
	r, err := New(rotatingConfig(0), []port.Port{pa, pb, pc}, Options{Clock: clock.NewManual()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	stubLinks(t, map[string]string{"pipe:pb": "admin-down"})
	wantState(t, r, "pa", "up")
	wantState(t, r, "pb", "admin-down")
	wantState(t, r, "pc", "lost")
}
