package nat

import (
	"encoding/binary"
	"math/rand"
	"net/netip"
	"sync"
	"testing"
	"time"

	"vrouter/packet"
)

// TestTwoWorkersOneFlow: the first packet of a flow seen by two workers at
// the same moment becomes one session, and both packets get the same
// translation.
func TestTwoWorkersOneFlow(t *testing.T) {
	n, _ := newNAT(t, testConfig())
	w1, w2 := n.NewWorker(), n.NewWorker()
	for i := 0; i < 300; i++ {
		sport := uint16(10000 + i)
		var pkts [2][]byte
		var start sync.WaitGroup
		var done sync.WaitGroup
		start.Add(1)
		for j, w := range []*Worker{w1, w2} {
			var p []byte
			switch i % 3 {
			case 0: // outbound SNAT
				p = build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: sport, dport: 53})
			case 1: // inbound to the floating IP
				p = build(t, pk{src: "198.51.100.7", dst: "203.0.113.50", proto: udp, sport: sport, dport: 53})
			default: // TCP SYN to the forward
				p = build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: tcp, sport: sport, dport: 8080, flags: syn})
			}
			pkts[j] = p
			done.Add(1)
			go func(w *Worker, p []byte) {
				defer done.Done()
				start.Wait()
				if v, r := w.In(p, nInside, sec); v == Drop {
					t.Errorf("In: %v", r)
				}
				if v, r := w.Out(p, nInside, nPublic, sec); v == Drop {
					t.Errorf("Out: %v", r)
				}
			}(w, p)
		}
		start.Done()
		done.Wait()
		if n.Len() != i+1 {
			t.Fatalf("flow %d: %d sessions, want %d", i, n.Len(), i+1)
		}
		if string(pkts[0]) != string(pkts[1]) {
			t.Fatalf("flow %d translated differently:\n% x\n% x", i, pkts[0], pkts[1])
		}
	}
}

// TestConcurrentChurn runs workers translating while the reaper deletes and
// slots are reused (meant for -race); every translated reply must reach the
// host that owns the mapping.
func TestConcurrentChurn(t *testing.T) {
	c := testConfig()
	c.Conntrack.Max = 8192 // no eviction: every reply must find its session
	n, _ := newNAT(t, c)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	// Workers hold the clock (read lock) for one flow's round trip, so the
	// reaper never expires a flow between its packet and its reply; it runs
	// with a time no later than any worker's.
	var clock sync.RWMutex
	now := sec
	for g := 0; g < 3; g++ {
		w := n.NewWorker()
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(int64(g)))
			for i := 0; i < 3000; i++ {
				if g == 0 && i%100 == 99 {
					clock.Lock()
					now += int64(100 * time.Second)
					ts := now
					clock.Unlock()
					n.Reap(ts, 100)
				}
				host := byte(10 + rnd.Intn(20))
				sport := uint16(2000 + rnd.Intn(200))
				src := "10.1.1." + itoa(int(host))
				p := build(t, pk{src: src, dst: "198.51.100.7", proto: udp, sport: sport, dport: 53})
				r := build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: udp, sport: 53})
				clock.RLock()
				ts := now
				w.In(p, nInside, ts)
				v, _ := w.Out(p, nInside, nPublic, ts)
				if v == Translated {
					d := decode(t, p)
					r.SetDst(packet.AddrFrom4(netip.MustParseAddr(d.src).As4()))
					binary.BigEndian.PutUint16(r[22:], d.sport)
					r.ComputeChecksum()
					binary.BigEndian.PutUint16(r[26:], 0)
					v, why := w.In(r, nPublic, ts)
					dd := decode(t, r)
					if v != Translated || dd.dst != src || dd.dport != sport {
						t.Errorf("reply for %s:%d (mapped %s:%d): %v %v to %s:%d", src, sport, d.src, d.sport, v, why, dd.dst, dd.dport)
					}
				}
				clock.RUnlock()
				if t.Failed() {
					return
				}
			}
		}(g)
	}
	var reaper sync.WaitGroup
	reaper.Add(1)
	go func() {
		defer reaper.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			clock.Lock()
			now += int64(10 * time.Second)
			ts := now
			clock.Unlock()
			n.Reap(ts, 50)
			time.Sleep(100 * time.Microsecond)
		}
	}()
	wg.Wait()
	close(stop)
	reaper.Wait()
	if counts(n)["nat-sessions-expired"] == 0 {
		t.Fatal("reaper never expired anything; the test did not exercise reuse")
	}
}
