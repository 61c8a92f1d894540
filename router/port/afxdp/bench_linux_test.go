package afxdp

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"vrouter/packet"
	"vrouter/router/port"
)

// benchPort is what the benchmark drives on either veth end.
type benchPort interface {
	ReadBatch(*port.Batch) (int, error)
	WriteBatch([][]byte, []packet.VnetHdr) (int, error)
	Stats() port.Stats
}

// BenchmarkVeth moves frames over a veth pair between two namespaces: a
// writer goroutine sends batches of 64 on one end, the benchmark loop reads
// b.N frames on the other. The writer/reader drivers are named in the
// sub-benchmark: afpacket (this repository's AF_PACKET port) or afxdp (this
// package, native XDP, copy mode on veth). Reported: received frames/s and
// the fraction of sent frames the receiving side dropped.
func BenchmarkVeth(b *testing.B) {
	for _, size := range []int{64, 1500} {
		for _, pair := range [][2]string{{"afpacket", "afpacket"}, {"afxdp", "afxdp"}, {"afpacket", "afxdp"}, {"afxdp", "afpacket"}} {
			b.Run(fmt.Sprintf("%s-to-%s/%dB", pair[0], pair[1], size), func(b *testing.B) { benchPair(b, pair[0], pair[1], size) })
		}
	}
}

func benchPair(b *testing.B, wdrv, rdrv string, size int) {
	l := newLab(b)
	open := func(drv, ns string) benchPort {
		h, dev := l.a, "va"
		if ns == "b" {
			h, dev = l.b, "vb"
		}
		if drv == "afxdp" {
			return openIn(b, h, ns, dev, Options{})
		}
		return openAFP(b, h, ns, dev)
	}
	w := open(wdrv, "a")
	r := open(rdrv, "b")
	l.waitUp(b)
	f := udpFrame(b, strings.Repeat("z", max(size-42, 18)))
	frames := make([][]byte, port.DefaultBatch)
	for i := range frames {
		frames[i] = f
	}
	var stop atomic.Bool
	var sent atomic.Uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			n, err := w.WriteBatch(frames, nil)
			if err != nil {
				return
			}
			sent.Add(uint64(n))
		}
	}()
	batch := port.NewBatch(port.DefaultBatch)
	b.ReportAllocs()
	b.ResetTimer()
	for got := 0; got < b.N; {
		n, err := r.ReadBatch(batch)
		if err != nil {
			b.Fatal(err)
		}
		got += n
	}
	b.StopTimer()
	stop.Store(true)
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(float64(r.Stats().RxDropped)/float64(max(sent.Load(), 1)), "dropped/sent")
	b.ReportMetric(float64(w.Stats().TxErrors)/float64(max(sent.Load(), 1)), "txerr/sent")
}
