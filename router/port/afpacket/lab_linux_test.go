package afpacket

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

// lab is two network namespaces of our own joined by a veth pair: va in
// ns A, vb in ns B. Nothing is created in the namespace the test runs in.
type lab struct {
	nameA, nameB string
	a, b         netns.NsHandle
}

func newLab(t testing.TB) *lab {
	t.Helper()
	needRoot(t)
	base := nstest.Name("vrafp")
	l := &lab{nameA: base + "a", nameB: base + "b"}
	l.a, l.b = nstest.NS(t, l.nameA), nstest.NS(t, l.nameB)
	sh(t, "ip", "-n", l.nameA, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", l.nameB)
	sh(t, "ip", "-n", l.nameA, "link", "set", "va", "up")
	return l
}

// waitUp waits until both ends of the veth are operationally up (the kernel
// activates the qdisc of a link a moment after carrier comes up; frames
// sent before that are dropped silently).
func (l *lab) waitUp(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		a := sh(t, "ip", "-n", l.nameA, "-o", "link", "show", "va")
		b := sh(t, "ip", "-n", l.nameB, "-o", "link", "show", "vb")
		if strings.Contains(a, "state UP") && strings.Contains(b, "state UP") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("veth not up:\n%s%s", a, b)
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
