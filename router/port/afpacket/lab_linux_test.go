package afpacket

import (
	"testing"

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
	veth         *nstest.Veth
}

func newLab(t testing.TB) *lab {
	t.Helper()
	needRoot(t)
	v := nstest.NewVeth(t, "vrafp")
	return &lab{nameA: v.NameA, nameB: v.NameB, a: v.A, b: v.B, veth: v}
}

// waitUp waits until both ends of the veth are operationally up.
func (l *lab) waitUp(t testing.TB) { l.veth.WaitUp(t) }

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
