package tap

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

// lab is two network namespaces of our own: R, where the router opens the
// TAP, and V, the "VM" that the TAP's kernel side is moved into. Nothing is
// created in the namespace the test runs in.
type lab struct {
	nameR, nameV string
	r, v         netns.NsHandle
	tap          string
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
	l := &lab{nameR: fmt.Sprintf("vrtap%d-%dr", os.Getpid(), seq), nameV: fmt.Sprintf("vrtap%d-%dv", os.Getpid(), seq),
		tap: fmt.Sprintf("vrt%d", seq)}
	for _, n := range []string{l.nameR, l.nameV} {
		sh(t, "ip", "netns", "add", n)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n).Run() })
		sh(t, "ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	}
	var err error
	if l.r, err = netns.GetFromName(l.nameR); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.r.Close() })
	if l.v, err = netns.GetFromName(l.nameV); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.v.Close() })
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
