package afxdp

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netns"

	"vrouter/internal/nstest"
	"vrouter/router/port"
	"vrouter/router/port/afpacket"
)

var (
	needRoot  = nstest.NeedRoot
	sh        = nstest.Sh
	inNS      = nstest.In
	serialize = nstest.Serialize
)

// lab is two network namespaces of our own joined by a veth pair: va in
// ns A, vb in ns B. Nothing is created in the namespace the test runs in.
type lab struct {
	nameA, nameB string
	a, b         netns.NsHandle
	veth         *nstest.Veth
}

// newLab makes the lab; extra are more `ip link add` arguments for the
// veth (e.g. queue counts).
func newLab(t testing.TB, extra ...string) *lab {
	t.Helper()
	needRoot(t)
	v := nstest.NewVeth(t, "vrxdp", extra...)
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

func openAFP(t testing.TB, ns netns.NsHandle, name, dev string) *afpacket.Port {
	t.Helper()
	var p *afpacket.Port
	var err error
	inNS(t, ns, func() { p, err = afpacket.Open(name, dev, afpacket.Options{}) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// reader is what tests read frames with: an afxdp or afpacket port.
type reader interface {
	ReadBatch(*port.Batch) (int, error)
	Close() error
}

// readUntil reads frames until keep has accepted n of them or the deadline
// passed; it returns the accepted frames (copies).
func readUntil(t testing.TB, p reader, n int, timeout time.Duration, keep func([]byte) bool) [][]byte {
	t.Helper()
	var got [][]byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := port.NewBatch(port.DefaultBatch)
		for len(got) < n {
			k, err := p.ReadBatch(b)
			if err != nil {
				return
			}
			for i := 0; i < k; i++ {
				if keep == nil || keep(b.Frame(i)) {
					got = append(got, append([]byte(nil), b.Frame(i)...))
				}
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		p.Close()
		<-done
		t.Fatalf("got %d of %d frames", len(got), n)
	}
	return got
}

func udpFrame(t testing.TB, payload string) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 1, 0, 1}, DstIP: net.IP{10, 1, 0, 2}}
	u := &layers.UDP{SrcPort: 1000, DstPort: 2000}
	u.SetNetworkLayerForChecksum(ip)
	return serialize(t, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 0xa}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 0xb}, EthernetType: layers.EthernetTypeIPv4},
		ip, u, gopacket.Payload(payload))
}

// xdpAttached returns what `ip link show` says about XDP on dev in ns.
func xdpAttached(t testing.TB, ns, dev string) string {
	out := sh(t, "ip", "-n", ns, "-d", "link", "show", dev)
	switch {
	case strings.Contains(out, "xdpgeneric"):
		return ModeGeneric
	case strings.Contains(out, "prog/xdp"):
		return ModeNative
	}
	return ""
}
