package router

import (
	"testing"
	"time"

	"vrouter/internal/nstest"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
	"vrouter/router/port/tap"
)

// The real lookup, in a namespace of the test's own: a veth with both ends
// down, one end up, both up, a device that is not there, and a TAP port
// (up with carrier from the start, which the kernel calls unknown) whose
// device is moved into another namespace (down there until set up) and
// renamed there.
func TestLinkLookup(t *testing.T) {
	nstest.NeedRoot(t)
	nsA, nsB := nstest.Name("lsa"), nstest.Name("lsb")
	a := nstest.NS(t, nsA)
	nstest.NS(t, nsB)
	va, vb, tp := nstest.Name("va"), nstest.Name("vb"), nstest.Name("tp")
	nstest.Sh(t, "ip", "-n", nsA, "link", "add", va, "type", "veth", "peer", "name", vb)
	nstest.In(t, a, func() {
		look := osLinkLookup()
		defer look.close()
		// The kernel updates the operational state shortly after a
		// change (linkwatch): the lookup is repeated for a while.
		want := func(p port.Port, st string, found bool) {
			t.Helper()
			deadline := time.Now().Add(3 * time.Second)
			for {
				got, ok := look.state(p)
				if got == st && ok == found {
					return
				}
				if time.Now().After(deadline) {
					t.Errorf("%s: %q %v, want %q %v", p.Device(), got, ok, st, found)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		want(onDevice(va), "admin-down", true)
		nstest.Sh(t, "ip", "-n", nsA, "link", "set", va, "up")
		want(onDevice(va), "lowerlayerdown", true) // its peer is down
		nstest.Sh(t, "ip", "-n", nsA, "link", "set", vb, "up")
		want(onDevice(va), "up", true)
		want(onDevice("nosuchdev0"), "", false)

		p, err := tap.Open("vm", tp, tap.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		want(p, "unknown", true) // up, carrier from the start: the kernel says UNKNOWN
		nstest.Sh(t, "ip", "-n", nsA, "link", "set", tp, "netns", nsB)
		want(p, "admin-down", true)
		nstest.Sh(t, "ip", "-n", nsB, "link", "set", tp, "name", "eth9", "up")
		want(p, "unknown", true)
		want(onDevice(tp), "", false) // no device of that name where the router is
	})
}

// onDevice is a port on kernel device d (a pipe underneath).
func onDevice(d string) port.Port { return namedDevPort{devPort{pipe.New("x", macA, 1500)}, d} }

type namedDevPort struct {
	devPort
	dev string
}

func (p namedDevPort) Device() string { return p.dev }
