package afpacket

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// needRoot skips a test that needs root and network namespaces, unless it
// runs in CI (where it must run).
func needRoot(t testing.TB) {
	t.Helper()
	if os.Getuid() != 0 && os.Getenv("CI") == "" {
		t.Skip("needs root (network namespaces)")
	}
}

var labSeq atomic.Int32

// lab is two network namespaces of our own joined by a veth pair: va in
// ns A, vb in ns B. Nothing is created in the namespace the test runs in.
type lab struct {
	nameA, nameB string
	a, b         netns.NsHandle
}

func sh(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newLab(t testing.TB) *lab {
	t.Helper()
	needRoot(t)
	seq := labSeq.Add(1)
	l := &lab{nameA: fmt.Sprintf("vrafp%d-%da", os.Getpid(), seq), nameB: fmt.Sprintf("vrafp%d-%db", os.Getpid(), seq)}
	for _, n := range []string{l.nameA, l.nameB} {
		sh(t, "ip", "netns", "add", n)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n).Run() })
		// No IPv6 chatter (router solicitations, MLD) on the test links.
		sh(t, "ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	}
	sh(t, "ip", "-n", l.nameA, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", l.nameB)
	sh(t, "ip", "-n", l.nameA, "link", "set", "va", "up")
	var err error
	if l.a, err = netns.GetFromName(l.nameA); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.a.Close() })
	if l.b, err = netns.GetFromName(l.nameB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.b.Close() })
	return l
}

// inNS runs f on a goroutine whose OS thread is in ns. Sockets created by f
// stay in ns.
func inNS(t testing.TB, ns netns.NsHandle, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			t.Error(err)
			runtime.UnlockOSThread()
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			t.Error(err)
			runtime.UnlockOSThread()
			return
		}
		f()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		} // else the thread stays locked and ends with the goroutine
	}()
	<-done
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
