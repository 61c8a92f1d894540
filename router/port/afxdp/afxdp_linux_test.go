package afxdp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/internal/nstest"
	"vrouter/router/port"
)

func TestOpenMissingDevice(t *testing.T) {
	_, err := Open("uplink", "vr-no-such-dev9", Options{})
	if err == nil || err.Error() != `port "uplink": device "vr-no-such-dev9" not found (an afxdp port needs an existing interface: create it, or correct device in the file)` {
		t.Fatalf("got %v", err)
	}
}

// TestPingThroughPort answers ARP and ICMP echo through the port, in each
// XDP mode: ping in the peer namespace succeeds only if the program handed
// the ARP request and the echo requests to the socket (nothing reaches the
// kernel of namespace A, which has no address anyway) and WriteBatch
// delivered the answers. Close then ends the blocked reader and detaches
// the program.
func TestPingThroughPort(t *testing.T) {
	for _, mode := range []string{ModeNative, ModeGeneric} {
		t.Run(mode, func(t *testing.T) { testPing(t, mode) })
	}
}

func testPing(t *testing.T, mode string) {
	l := newLab(t)
	sh(t, "ip", "-n", l.nameB, "addr", "add", "192.0.2.1/24", "dev", "vb")
	p := openIn(t, l.a, "lan", "va", Options{Mode: mode})
	if p.Mode() != mode || xdpAttached(t, l.nameA, "va") != mode {
		t.Fatalf("mode %s, ip link says %q, want %s", p.Mode(), xdpAttached(t, l.nameA, "va"), mode)
	}
	if p.MTU() != 1500 || p.Driver() != "afxdp" || p.Name() != "lan" || p.Device() != "va" || p.Offloads() || p.Queues() != 1 {
		t.Fatalf("attributes %d %s %s %s %v %d", p.MTU(), p.Driver(), p.Name(), p.Device(), p.Offloads(), p.Queues())
	}
	t.Logf("mode %s, zero-copy %v", p.Mode(), p.ZeroCopy())
	mac := p.MAC()
	myMAC := net.HardwareAddr(mac[:])
	myIP := net.IP{192, 0, 2, 2}

	var arps, echos, bad int
	readErr := make(chan error, 1)
	go func() {
		b := port.NewBatch(port.DefaultBatch)
		for {
			n, err := p.ReadBatch(b)
			if err != nil {
				readErr <- err
				return
			}
			for i := 0; i < n; i++ {
				reply, what := nstest.Answer(t, b.Frame(i), myMAC, myIP)
				switch what {
				case nstest.AnswerARP:
					arps++
				case nstest.AnswerEcho:
					echos++
				case nstest.AnswerBad:
					bad++
				}
				if reply != nil {
					if _, err := p.WriteBatch([][]byte{reply}, nil); err != nil {
						t.Error(err)
					}
				}
			}
		}
	}()
	l.waitUp(t)
	out, err := exec.Command("ip", "netns", "exec", l.nameB, "ping", "-c", "3", "-i", "0.2", "-W", "2", "192.0.2.2").CombinedOutput()
	if err != nil {
		t.Fatalf("ping through the port failed: %v\n%s", err, out)
	}
	time.Sleep(50 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-readErr:
		if !errors.Is(err, port.ErrClosed) {
			t.Fatalf("ReadBatch after Close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock ReadBatch")
	}
	if arps < 1 || echos < 3 || bad != 0 {
		t.Fatalf("arp requests %d, echo requests %d, damaged %d", arps, echos, bad)
	}
	st := p.Stats()
	if st.RxPackets < 4 || st.TxPackets < 4 || st.TxErrors != 0 || st.RxDropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	if got := xdpAttached(t, l.nameA, "va"); got != "" {
		t.Fatalf("XDP program still attached after Close (%s)", got)
	}
	if _, err := p.WriteBatch([][]byte{make([]byte, 60)}, nil); !errors.Is(err, port.ErrClosed) {
		t.Fatalf("WriteBatch after Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestFramesBothWays moves many frames of several sizes each way between
// an afxdp port and an afpacket port on the two veth ends: they arrive
// intact and in order.
func TestFramesBothWays(t *testing.T) {
	for _, mode := range []string{ModeNative, ModeGeneric} {
		t.Run(mode, func(t *testing.T) {
			l := newLab(t)
			x := openIn(t, l.a, "fast", "va", Options{Mode: mode})
			peer := openAFP(t, l.b, "peer", "vb")
			l.waitUp(t)
			const n = 300
			var frames [][]byte
			for i := 0; i < n; i++ {
				frames = append(frames, udpFrame(t, fmt.Sprintf("%04d%s", i, strings.Repeat("x", (i*37)%1400))))
			}
			isOurs := func(f []byte) bool { return len(f) > 14 && f[12] == 0x08 && f[13] == 0x00 }
			check := func(got [][]byte) {
				t.Helper()
				for i := range got {
					if !bytes.Equal(got[i], frames[i]) {
						t.Fatalf("frame %d: got %d bytes %x...", i, len(got[i]), got[i][:min(len(got[i]), 64)])
					}
				}
			}
			// peer -> afxdp, in batches of 50 (the receiver keeps up: the
			// socket buffer of the rx ring holds 2048).
			go func() {
				for i := 0; i < n; i += 50 {
					peer.WriteBatch(frames[i:i+50], nil)
				}
			}()
			check(readUntil(t, x, n, 5*time.Second, isOurs))
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				for i := 0; i < n; i += 50 {
					if k, err := x.WriteBatch(frames[i:i+50], nil); k != 50 || err != nil {
						t.Errorf("WriteBatch: %d %v", k, err)
					}
				}
			}()
			check(readUntil(t, peer, n, 5*time.Second, isOurs))
			<-sent // the last batch's counters are updated after its frames left
			if st := x.Stats(); st.RxPackets < n || st.TxPackets != n || st.TxErrors != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestWriteRefused: a frame larger than a UMEM frame is not sent and counted.
func TestWriteRefused(t *testing.T) {
	l := newLab(t)
	x := openIn(t, l.a, "fast", "va", Options{})
	big := make([]byte, frameSize+1)
	ok := udpFrame(t, "fits")
	n, err := x.WriteBatch([][]byte{big, ok}, nil)
	if n != 1 || err != nil {
		t.Fatalf("WriteBatch: %d %v", n, err)
	}
	if st := x.Stats(); st.TxErrors != 1 || st.TxPackets != 1 {
		t.Fatalf("stats %+v", st)
	}
	if c := counterValue(x, "tx-too-big"); c != 1 {
		t.Fatalf("tx-too-big %d", c)
	}
}

func counterValue(p *Port, name string) uint64 {
	for _, v := range p.Counters() {
		if v.Name == name {
			return v.Value
		}
	}
	return 1 << 63
}

// TestBusyAndReopen: a second port on the same device cannot attach (one
// clear line), the first keeps working, and after Close the device can be
// opened again.
func TestBusyAndReopen(t *testing.T) {
	l := newLab(t)
	x := openIn(t, l.a, "fast", "va", Options{})
	fds := openFDs(t)
	var err error
	inNS(t, l.a, func() { _, err = Open("again", "va", Options{}) })
	if n := openFDs(t); n != fds {
		t.Fatalf("the failed Open leaked %d descriptors", n-fds)
	}
	if err == nil || !strings.Contains(err.Error(), `port "again"`) || !strings.Contains(err.Error(), "another XDP program is attached") {
		t.Fatalf("second Open: %v", err)
	}
	if xdpAttached(t, l.nameA, "va") != ModeNative {
		t.Fatal("the failed Open detached the first port's program")
	}
	x.Close()
	if got := xdpAttached(t, l.nameA, "va"); got != "" {
		t.Fatalf("still attached after Close: %s", got)
	}
	if n := openFDs(t); n >= fds {
		t.Fatalf("Close left descriptors open: %d before, %d after", fds, n)
	}
	y := openIn(t, l.a, "again", "va", Options{})
	if y.Mode() != ModeNative {
		t.Fatalf("reopened in %s mode", y.Mode())
	}
}

// TestMultiQueue: a veth with two rx queues gets one socket per queue, and
// frames on either queue arrive.
func TestMultiQueue(t *testing.T) {
	l := newLab(t, "numrxqueues", "2", "numtxqueues", "2")
	x := openIn(t, l.a, "fast", "va", Options{})
	if x.Queues() != 2 {
		t.Fatalf("queues %d", x.Queues())
	}
	peer := openAFP(t, l.b, "peer", "vb")
	l.waitUp(t)
	var frames [][]byte
	for i := 0; i < 64; i++ {
		// Different flows, so that the peer spreads them over its tx queues.
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 1, 0, byte(i)}, DstIP: net.IP{10, 1, 0, 2}}
		u := &layers.UDP{SrcPort: layers.UDPPort(1000 + i), DstPort: 2000}
		u.SetNetworkLayerForChecksum(ip)
		frames = append(frames, serialize(t, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 0xa}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 0xb}, EthernetType: layers.EthernetTypeIPv4},
			ip, u, gopacket.Payload("q")))
	}
	go peer.WriteBatch(frames, nil)
	got := readUntil(t, x, len(frames), 5*time.Second, func(f []byte) bool { return len(f) > 14 && f[12] == 0x08 })
	if len(got) != len(frames) {
		t.Fatalf("got %d", len(got))
	}
}

// TestPartialChecksumFromLocalSender: the peer namespace's UDP socket sends
// through a veth with checksum offload on, so the frame leaves with a
// partial checksum; ReadBatch hands it over completed (and counts it), or
// as it came with NoCsumFix.
func TestPartialChecksumFromLocalSender(t *testing.T) {
	for _, fix := range []bool{true, false} {
		t.Run(fmt.Sprintf("fix=%v", fix), func(t *testing.T) {
			l := newLab(t)
			x := openIn(t, l.a, "fast", "va", Options{NoCsumFix: !fix})
			mac := x.MAC()
			sh(t, "ip", "-n", l.nameB, "addr", "add", "192.0.2.1/24", "dev", "vb")
			sh(t, "ip", "-n", l.nameB, "neigh", "add", "192.0.2.2", "lladdr", net.HardwareAddr(mac[:]).String(), "dev", "vb")
			l.waitUp(t)
			done := make(chan struct{})
			defer close(done)
			go inNS(t, l.b, func() {
				c, err := net.Dial("udp4", "192.0.2.2:9")
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				for {
					select {
					case <-done:
						return
					case <-time.After(20 * time.Millisecond):
						c.Write([]byte("partial checksum, please"))
					}
				}
			})
			got := readUntil(t, x, 1, 3*time.Second, func(f []byte) bool { return len(f) > 34 && f[12] == 0x08 && f[23] == 17 })
			pkt := gopacket.NewPacket(got[0], layers.LayerTypeEthernet, gopacket.Default)
			ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			u := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
			ok := nstest.L4ChecksumOK(ip, append(append([]byte(nil), u.Contents...), u.Payload...))
			if ok != fix {
				t.Fatalf("checksum valid %v (fix %v); csum-completed %d", ok, fix, counterValue(x, "csum-completed"))
			}
			if c := counterValue(x, "csum-completed"); (c > 0) != fix {
				t.Fatalf("csum-completed %d", c)
			}
		})
	}
}

// TestSteadyStateNoAlloc: a batch written on one afxdp port and read on
// the other end (also afxdp) allocates nothing.
func TestSteadyStateNoAlloc(t *testing.T) {
	l := newLab(t)
	a := openIn(t, l.a, "a", "va", Options{})
	b := openIn(t, l.b, "b", "vb", Options{})
	l.waitUp(t)
	frames := make([][]byte, 32)
	for i := range frames {
		frames[i] = udpFrame(t, "steady")
	}
	batch := port.NewBatch(port.DefaultBatch)
	roundTrip := func() {
		if _, err := a.WriteBatch(frames, nil); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(frames); {
			n, err := b.ReadBatch(batch)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	}
	roundTrip()
	if allocs := testing.AllocsPerRun(200, roundTrip); allocs != 0 {
		t.Fatalf("%.1f allocations per batch", allocs)
	}
}

// TestVLANTagged: 802.1Q frames move both ways with their tag in the bytes.
func TestVLANTagged(t *testing.T) {
	l := newLab(t)
	x := openIn(t, l.a, "fast", "va", Options{})
	peer := openAFP(t, l.b, "peer", "vb")
	l.waitUp(t)
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 1, 0, 1}, DstIP: net.IP{10, 1, 0, 2}}
	u := &layers.UDP{SrcPort: 1000, DstPort: 2000}
	u.SetNetworkLayerForChecksum(ip)
	f := serialize(t, &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 0xa}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 0xb}, EthernetType: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 1234, Type: layers.EthernetTypeIPv4}, ip, u, gopacket.Payload("tagged"))
	tagged := func(b []byte) bool { return len(b) > 14 && b[12] == 0x81 && b[13] == 0x00 }
	go peer.WriteBatch([][]byte{f}, nil)
	if got := readUntil(t, x, 1, 3*time.Second, tagged); !bytes.Equal(got[0], f) {
		t.Fatalf("received %x\nwant     %x", got[0], f)
	}
	go x.WriteBatch([][]byte{f}, nil)
	if got := readUntil(t, peer, 1, 3*time.Second, tagged); !bytes.Equal(got[0], f) {
		t.Fatalf("peer received %x\nwant          %x", got[0], f)
	}
}

// TestJumboFallsBackToGeneric: native XDP on a veth refuses a peer MTU
// above about 3.5 KB, so Open falls back to generic mode and says why;
// frames larger than a UMEM frame are then dropped and counted.
func TestJumboFallsBackToGeneric(t *testing.T) {
	l := newLab(t, "mtu", "9000")
	x := openIn(t, l.a, "fast", "va", Options{})
	if x.Mode() != ModeGeneric || x.NativeError() == nil || xdpAttached(t, l.nameA, "va") != ModeGeneric {
		t.Fatalf("mode %s, native error %v", x.Mode(), x.NativeError())
	}
	t.Logf("native refused: %v", x.NativeError())
	var err error
	inNS(t, l.a, func() { _, err = Open("strict", "va", Options{Mode: ModeNative}) })
	if err == nil || !strings.Contains(err.Error(), "native mode") {
		t.Fatalf("forced native mode: %v", err)
	}
	peer := openAFP(t, l.b, "peer", "vb")
	l.waitUp(t)
	big := udpFrame(t, strings.Repeat("j", 5000))
	small := udpFrame(t, "after the jumbo")
	go peer.WriteBatch([][]byte{big, small}, nil)
	got := readUntil(t, x, 1, 3*time.Second, func(f []byte) bool { return len(f) > 14 && f[12] == 0x08 })
	if !bytes.Equal(got[0], small) {
		t.Fatalf("got %d bytes", len(got[0]))
	}
	if d := counterValue(x, "rx-dropped"); d != 1 {
		t.Fatalf("rx-dropped %d", d)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
