package afpacket

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"vrouter/router/port"
)

// BenchmarkVeth moves frames over a veth pair between two namespaces: a
// writer goroutine sends batches of 64, the benchmark loop reads b.N frames.
// "batch64" is this package (sendmmsg/recvmmsg through the runtime poller);
// "baseline" is a plain blocking AF_PACKET socket pair with one write(2) and
// one read(2) per frame. Reported: received frames/s and the fraction the
// receiving socket dropped (the writer outruns the reader).
func BenchmarkVeth(b *testing.B) {
	for _, size := range []int{64, 1500} {
		b.Run(fmt.Sprintf("batch64/%dB", size), func(b *testing.B) { benchBatch(b, size) })
		b.Run(fmt.Sprintf("baseline/%dB", size), func(b *testing.B) { benchBaseline(b, size) })
	}
}

func benchFrame(b *testing.B, size int) []byte {
	f := udpFrame(b, nil, layers.EthernetTypeIPv4, strings.Repeat("z", max(size-42, 18)))
	return f
}

func benchBatch(b *testing.B, size int) {
	l := newLab(b)
	pa := openIn(b, l.a, "a", "va", Options{})
	pb := openIn(b, l.b, "b", "vb", Options{})
	l.waitUp(b)
	f := benchFrame(b, size)
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
			n, err := pa.WriteBatch(frames, nil)
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
		n, err := pb.ReadBatch(batch)
		if err != nil {
			b.Fatal(err)
		}
		got += n
	}
	b.StopTimer()
	stop.Store(true)
	<-done
	st := pb.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(float64(st.RxDropped)/float64(max(sent.Load(), 1)), "dropped/sent")
}

func rawSocket(b *testing.B, h netns.NsHandle, name string) int {
	var fd int
	var err error
	inNS(b, h, func() {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return
		}
		var ifi *unix.Ifreq
		if ifi, err = unix.NewIfreq(name); err != nil {
			return
		}
		if err = unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifi); err != nil {
			return
		}
		idx := int(ifi.Uint32())
		if err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: idx}); err != nil {
			return
		}
		err = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Close(fd) })
	return fd
}

func benchBaseline(b *testing.B, size int) {
	l := newLab(b)
	sh(b, "ip", "-n", l.nameB, "link", "set", "vb", "up")
	wfd := rawSocket(b, l.a, "va")
	rfd := rawSocket(b, l.b, "vb")
	l.waitUp(b)
	f := benchFrame(b, size)
	var stop atomic.Bool
	var sent atomic.Uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			if _, err := unix.Write(wfd, f); err == nil {
				sent.Add(1)
			}
		}
	}()
	buf := make([]byte, 2048)
	b.ReportAllocs()
	b.ResetTimer()
	for got := 0; got < b.N; got++ {
		if _, err := unix.Read(rfd, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	stop.Store(true)
	<-done
	st, _ := unix.GetsockoptTpacketStats(rfd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
	if st != nil {
		b.ReportMetric(float64(st.Drops)/float64(max(sent.Load(), 1)), "dropped/sent")
	}
}
