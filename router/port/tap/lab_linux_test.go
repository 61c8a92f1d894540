package tap

import (
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"vrouter/internal/nstest"
)

var (
	needRoot = nstest.NeedRoot
	sh       = nstest.Sh
	inNS     = nstest.In
)

// lab is two network namespaces of our own: R, where the router opens the
// TAP, and V, the "VM" that the TAP's kernel side is moved into. Nothing is
// created in the namespace the test runs in.
type lab struct {
	nameR, nameV string
	r, v         netns.NsHandle
	tap          string
}

func newLab(t testing.TB) *lab {
	t.Helper()
	needRoot(t)
	base := nstest.Name("vrtap")
	l := &lab{nameR: base + "r", nameV: base + "v", tap: "vrt" + base[len("vrtap"):]}
	if len(l.tap) > 15 {
		l.tap = l.tap[:15]
	}
	l.r, l.v = nstest.NS(t, l.nameR), nstest.NS(t, l.nameV)
	return l
}

// moveToVM moves the TAP's kernel side into V, gives it addr and sets it up.
func (l *lab) moveToVM(t testing.TB, addr string) {
	t.Helper()
	sh(t, "ip", "-n", l.nameR, "link", "set", l.tap, "netns", l.nameV)
	if addr != "" {
		sh(t, "ip", "-n", l.nameV, "addr", "add", addr, "dev", l.tap)
	}
	sh(t, "ip", "-n", l.nameV, "link", "set", l.tap, "up")
	deadline := time.Now().Add(3 * time.Second)
	for {
		out := sh(t, "ip", "-n", l.nameV, "-o", "link", "show", l.tap)
		if strings.Contains(out, "LOWER_UP") && !strings.Contains(out, "qdisc noop") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("TAP not up in V: %s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func openIn(t testing.TB, ns netns.NsHandle, name, dev string, opts Options) *Port {
	t.Helper()
	var p *Port
	var err error
	inNS(t, ns, func() { p, err = Open(name, dev, opts) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}
