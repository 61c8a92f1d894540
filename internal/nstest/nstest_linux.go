// Package nstest holds the helpers the packages' own root tests share: a
// throw-away network namespace (removed when the test ends), running code
// on an OS thread inside a namespace, and running commands. Nothing is ever
// created in the namespace the test itself runs in.
package nstest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// NeedRoot skips a test that needs root and network namespaces, unless it
// runs in CI (where it must run).
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Getuid() != 0 && os.Getenv("CI") == "" {
		t.Skip("needs root (network namespaces)")
	}
}

var seq atomic.Int32

// Name returns a namespace or interface name unique to this process: tag,
// pid and a sequence number.
func Name(tag string) string { return fmt.Sprintf("%s%d-%d", tag, os.Getpid(), seq.Add(1)) }

// Sh runs a command and fails the test if it fails; it returns the output.
func Sh(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// NS creates the network namespace name (IPv6 off: no router solicitations
// or MLD on test links), removed when the test ends, and returns a handle.
func NS(t testing.TB, name string) netns.NsHandle {
	t.Helper()
	Sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	Sh(t, "ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// In runs f on a goroutine whose OS thread is in ns. Sockets and devices
// created by f stay in ns.
func In(t testing.TB, ns netns.NsHandle, f func()) {
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

// Veth is two network namespaces of the test's own joined by a veth pair:
// va in namespace A, vb in namespace B.
type Veth struct {
	NameA, NameB string
	A, B         netns.NsHandle
}

// NewVeth makes the pair (namespaces named after tag) and sets both ends
// up; extra are more `ip link add` arguments for both ends (e.g. queue
// counts).
func NewVeth(t testing.TB, tag string, extra ...string) *Veth {
	t.Helper()
	base := Name(tag)
	v := &Veth{NameA: base + "a", NameB: base + "b"}
	v.A, v.B = NS(t, v.NameA), NS(t, v.NameB)
	args := append([]string{"ip", "-n", v.NameA, "link", "add", "va"}, extra...)
	args = append(append(args, "type", "veth", "peer", "name", "vb", "netns", v.NameB), extra...)
	Sh(t, args...)
	Sh(t, "ip", "-n", v.NameA, "link", "set", "va", "up")
	Sh(t, "ip", "-n", v.NameB, "link", "set", "vb", "up")
	return v
}

// WaitUp waits until both ends are operationally up (the kernel activates
// a link's qdisc a moment after carrier comes up; frames sent before that
// are dropped silently).
func (v *Veth) WaitUp(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		a := Sh(t, "ip", "-n", v.NameA, "-o", "link", "show", "va")
		b := Sh(t, "ip", "-n", v.NameB, "-o", "link", "show", "vb")
		if strings.Contains(a, "state UP") && strings.Contains(b, "state UP") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("veth not up:\n%s%s", a, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// InNamed runs f as In does, in the namespace called name (made by the
// test, e.g. with ip netns add).
func InNamed(t testing.TB, name string, f func()) {
	t.Helper()
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	In(t, h, f)
}

// IPBatch runs `ip -n ns -batch` over lines.
func IPBatch(t testing.TB, ns string, lines []string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	Sh(t, "ip", "-n", ns, "-batch", f)
}

// WaitFor polls f until it reports true and fails the test after d.
func WaitFor(t testing.TB, what string, d time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timeout waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
