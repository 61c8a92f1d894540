package afxdp

import (
	"bytes"
	"testing"
	"time"

	"vrouter/router/port"
)

func TestSmoke(t *testing.T) {
	l := newLab(t)
	x := openIn(t, l.a, "fast", "va", Options{})
	peer := openAFP(t, l.b, "peer", "vb")
	l.waitUp(t)
	t.Logf("mode %s zerocopy %v queues %d native err %v; ip says %q", x.Mode(), x.ZeroCopy(), x.Queues(), x.NativeError(), xdpAttached(t, l.nameA, "va"))
	f := udpFrame(t, "hello afxdp")
	go func() {
		for i := 0; i < 20; i++ {
			peer.WriteBatch([][]byte{f}, nil)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	got := readUntil(t, x, 1, 3*time.Second, func(b []byte) bool { return bytes.Equal(b, f) })
	t.Logf("rx ok %d", len(got))
	g := udpFrame(t, "from afxdp")
	go func() {
		for i := 0; i < 20; i++ {
			x.WriteBatch([][]byte{g}, nil)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	readUntil(t, peer, 1, 3*time.Second, func(b []byte) bool { return bytes.Equal(b, g) })
	t.Logf("stats %+v counters %v", x.Stats(), x.Counters())
	_ = port.DefaultBatch
}
