package tap

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/internal/nstest"
	"vrouter/router/port"
	"vrouter/router/port/afpacket"
)

var (
	serialize = nstest.Serialize
	csumOK    = nstest.ChecksumOK
	l4OK      = nstest.L4ChecksumOK
)

var routerIP = net.IP{192, 0, 2, 1}

// answer replies to ARP requests and ICMP echo requests for routerIP and
// hands every other frame to other (may be nil).
func answer(t testing.TB, p port.Port, other func(pkt gopacket.Packet, f []byte)) (arps, echos int, err error) {
	mac := p.MAC()
	myMAC := net.HardwareAddr(mac[:])
	b := port.NewBatch(port.DefaultBatch)
	for {
		n, err := p.ReadBatch(b)
		if err != nil {
			return arps, echos, err
		}
		for i := 0; i < n; i++ {
			pkt := gopacket.NewPacket(b.Frame(i), layers.LayerTypeEthernet, gopacket.Default)
			eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			if eth == nil {
				continue
			}
			if a, ok := pkt.Layer(layers.LayerTypeARP).(*layers.ARP); ok && a.Operation == layers.ARPRequest && net.IP(a.DstProtAddress).Equal(routerIP) {
				arps++
				p.WriteBatch([][]byte{serialize(t, &layers.Ethernet{SrcMAC: myMAC, DstMAC: eth.SrcMAC, EthernetType: layers.EthernetTypeARP},
					&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
						Operation: layers.ARPReply, SourceHwAddress: myMAC, SourceProtAddress: routerIP,
						DstHwAddress: a.SourceHwAddress, DstProtAddress: a.SourceProtAddress})}, nil)
				continue
			}
			ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			ic, _ := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			if ip != nil && ic != nil && ic.TypeCode.Type() == layers.ICMPv4TypeEchoRequest && ip.DstIP.Equal(routerIP) &&
				csumOK(nil, ip.Contents) && csumOK(nil, append(ic.Contents, ic.Payload...)) {
				echos++
				p.WriteBatch([][]byte{serialize(t, &layers.Ethernet{SrcMAC: myMAC, DstMAC: eth.SrcMAC, EthernetType: layers.EthernetTypeIPv4},
					&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: routerIP, DstIP: ip.SrcIP},
					&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoReply, 0), Id: ic.Id, Seq: ic.Seq},
					gopacket.Payload(ic.Payload))}, nil)
				continue
			}
			if other != nil {
				other(pkt, b.Frame(i))
			}
		}
	}
}

// TestPingFromVM: the TAP is created in R, its kernel side moved into V;
// ping from V reaches the router's answers and Close ends the reader.
func TestPingFromVM(t *testing.T) {
	l := newLab(t)
	p := openIn(t, l.r, "vm1", l.tap, Options{MTU: 1400})
	if p.Device() != l.tap || p.Driver() != "tap" || p.MTU() != 1400 {
		t.Fatalf("attributes %s %s %d", p.Device(), p.Driver(), p.MTU())
	}
	if out := sh(t, "ip", "-n", l.nameR, "link", "show", l.tap); !strings.Contains(out, "mtu 1400") || !strings.Contains(out, "UP") {
		t.Fatalf("MTU/up not applied: %s", out)
	}
	l.moveToVM(t, "192.0.2.10/24")
	type res struct {
		arps, echos int
		err         error
	}
	done := make(chan res, 1)
	go func() {
		a, e, err := answer(t, p, nil)
		done <- res{a, e, err}
	}()
	out, err := exec.Command("ip", "netns", "exec", l.nameV, "ping", "-c", "3", "-i", "0.2", "-W", "2", "192.0.2.1").CombinedOutput()
	if err != nil {
		t.Fatalf("ping from the VM side failed: %v\n%s", err, out)
	}
	p.Close()
	select {
	case r := <-done:
		if !errors.Is(r.err, port.ErrClosed) || r.arps < 1 || r.echos < 3 {
			t.Fatalf("reader: %+v", r)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock ReadBatch")
	}
	// The device goes away with the port (not persistent).
	if err := exec.Command("ip", "-n", l.nameV, "link", "show", l.tap).Run(); err == nil {
		t.Fatal("TAP still exists after Close")
	}
	if st := p.Stats(); st.RxPackets < 4 || st.TxPackets < 4 || st.TxErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestFramesBothWays: frames written on the VM side (a raw socket there)
// are read intact from the TAP and vice versa, 802.1Q tags included, and the
// steady state allocates nothing.
func TestFramesBothWays(t *testing.T) {
	l := newLab(t)
	p := openIn(t, l.r, "vm1", l.tap, Options{})
	l.moveToVM(t, "")
	var vm *afpacket.Port
	var err error
	inNS(t, l.v, func() { vm, err = afpacket.Open("vm", l.tap, afpacket.Options{}) })
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()

	mk := func(tag bool, payload string) []byte {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 1, 1, 1, 1, 1}, DstMAC: net.HardwareAddr{2, 2, 2, 2, 2, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
		u := &layers.UDP{SrcPort: 1, DstPort: 2}
		u.SetNetworkLayerForChecksum(ip)
		if tag {
			eth.EthernetType = layers.EthernetTypeDot1Q
			return serialize(t, eth, &layers.Dot1Q{VLANIdentifier: 33, Priority: 2, Type: layers.EthernetTypeIPv4}, ip, u, gopacket.Payload(payload))
		}
		return serialize(t, eth, ip, u, gopacket.Payload(payload))
	}
	frames := [][]byte{mk(false, "one"), mk(true, "two"), mk(false, strings.Repeat("x", 1400)), mk(true, "four")}
	// One batch per port: after an afpacket ring port's ReadBatch the
	// batch's buffers point into that port's ring.
	b, vb := port.NewBatch(port.DefaultBatch), port.NewBatch(port.DefaultBatch)
	readAll := func(pp port.Port, b *port.Batch, want int) [][]byte {
		var got [][]byte
		for len(got) < want {
			n, err := pp.ReadBatch(b)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				got = append(got, append([]byte(nil), b.Frame(i)...))
			}
		}
		return got
	}
	if n, err := vm.WriteBatch(frames, nil); n != len(frames) || err != nil {
		t.Fatalf("VM write %d %v", n, err)
	}
	for i, f := range readAll(p, b, len(frames)) {
		if !bytes.Equal(f, frames[i]) {
			t.Errorf("VM->router frame %d:\n got %x\nwant %x", i, f, frames[i])
		}
	}
	if n, err := p.WriteBatch(frames, nil); n != len(frames) || err != nil {
		t.Fatalf("router write %d %v", n, err)
	}
	for i, f := range readAll(vm, vb, len(frames)) {
		if !bytes.Equal(f, frames[i]) {
			t.Errorf("router->VM frame %d:\n got %x\nwant %x", i, f, frames[i])
		}
	}
	round := func() {
		vm.WriteBatch(frames, nil)
		for got := 0; got < len(frames); {
			n, err := p.ReadBatch(b)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
		p.WriteBatch(frames, nil)
		for got := 0; got < len(frames); {
			n, err := vm.ReadBatch(vb)
			if err != nil {
				t.Fatal(err)
			}
			got += n
		}
	}
	if a := testing.AllocsPerRun(100, round); a != 0 {
		t.Fatalf("%v allocations per round", a)
	}
}

// TestKernelSegments checks the claim of the package comment: without
// IFF_VNET_HDR the kernel segments and checksums before the frames reach the
// descriptor. A TCP client in V sends bulk data to the router's address; the
// test plays the TCP peer just enough (SYN-ACK, cumulative ACKs) and checks
// every data frame: at most MTU+14 bytes, valid IPv4 and TCP checksums.
func TestKernelSegments(t *testing.T) {
	l := newLab(t)
	p := openIn(t, l.r, "vm1", l.tap, Options{})
	l.moveToVM(t, "192.0.2.10/24")
	mac := p.MAC()
	myMAC := net.HardwareAddr(mac[:])
	sh(t, "ip", "-n", l.nameV, "neigh", "add", "192.0.2.1", "lladdr", myMAC.String(), "dev", l.tap)

	const want = 200000
	var mu sync.Mutex
	var payload, frames, big, bad int
	const iss = 1000
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		answer(t, p, func(pkt gopacket.Packet, f []byte) {
			eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			tc, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if ip == nil || tc == nil || tc.DstPort != 5001 {
				return
			}
			mu.Lock()
			frames++
			if len(f) > 14+1500 {
				big++
			}
			if !csumOK(nil, ip.Contents) || !l4OK(ip, ip.Payload) {
				bad++
			}
			mu.Unlock()
			reply := &layers.TCP{SrcPort: 5001, DstPort: tc.SrcPort, ACK: true, Window: 65535}
			switch {
			case tc.SYN:
				reply.SYN, reply.Seq, reply.Ack = true, iss, tc.Seq+1
				reply.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}}
			case len(tc.Payload) > 0:
				mu.Lock()
				payload += len(tc.Payload)
				mu.Unlock()
				reply.Seq, reply.Ack = iss+1, tc.Seq+uint32(len(tc.Payload))
			default:
				return
			}
			rip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: routerIP, DstIP: ip.SrcIP}
			reply.SetNetworkLayerForChecksum(rip)
			p.WriteBatch([][]byte{serialize(t, &layers.Ethernet{SrcMAC: myMAC, DstMAC: eth.SrcMAC, EthernetType: layers.EthernetTypeIPv4}, rip, reply)}, nil)
		})
	}()
	go inNS(t, l.v, func() {
		c, err := net.DialTimeout("tcp4", "192.0.2.1:5001", 3*time.Second)
		if err != nil {
			t.Error(err)
			return
		}
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		c.Write(make([]byte, 4*want))
		c.Close()
	})
	deadline := time.Now().Add(8 * time.Second)
	for {
		mu.Lock()
		got := payload
		mu.Unlock()
		if got >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Close()
	<-readDone
	t.Logf("TCP frames %d, payload %d bytes", frames, payload)
	if payload < want {
		t.Fatalf("only %d payload bytes arrived", payload)
	}
	if big != 0 || bad != 0 {
		t.Fatalf("%d frames over the MTU, %d with bad checksums (the kernel did not segment/checksum)", big, bad)
	}
}

// TestPersist: a persistent TAP survives Close; attaching to it again
// without Persist removes it on Close.
func TestPersist(t *testing.T) {
	l := newLab(t)
	p := openIn(t, l.r, "vm1", l.tap, Options{Persist: true})
	p.Close()
	sh(t, "ip", "-n", l.nameR, "link", "show", l.tap)
	q := openIn(t, l.r, "vm1", l.tap, Options{})
	q.Close()
	if err := exec.Command("ip", "-n", l.nameR, "link", "show", l.tap).Run(); err == nil {
		t.Fatal("TAP still exists after Close without Persist")
	}
}

// TestRouterMAC: the router's MAC is stable per name, locally administered
// unicast, and not the device's MAC.
func TestRouterMAC(t *testing.T) {
	a, b := RouterMAC("vm1"), RouterMAC("vm1")
	if a != b || a[0] != 0x02 || RouterMAC("vm2") == a {
		t.Fatalf("RouterMAC %x %x %x", a, b, RouterMAC("vm2"))
	}
	l := newLab(t)
	p := openIn(t, l.r, "vm1", l.tap, Options{})
	if p.MAC() != a {
		t.Fatalf("MAC %x want %x", p.MAC(), a)
	}
	dev := net.HardwareAddr(a[:]).String()
	if out := sh(t, "ip", "-n", l.nameR, "link", "show", l.tap); strings.Contains(out, dev) {
		t.Fatalf("device MAC equals the router MAC: %s", out)
	}
	mac := [6]byte{2, 9, 9, 9, 9, 9}
	q := openIn(t, l.r, "vm2", "vrq"+l.tap, Options{MAC: mac})
	if q.MAC() != mac {
		t.Fatalf("MAC option ignored: %x", q.MAC())
	}
}

func TestOpenErrors(t *testing.T) {
	if os.Getenv("VR_TAP_NOPRIV") == "1" {
		_, err := Open("vm1", "vrnopriv0", Options{})
		if err == nil {
			t.Fatal("created a TAP without privilege")
		}
		os.Stdout.WriteString("ERR: " + err.Error() + "\n")
		return
	}
	l := newLab(t)
	var err error
	inNS(t, l.r, func() { _, err = Open("vm1", "lo", Options{}) })
	if err == nil || err.Error() != `port "vm1": device "lo" exists and is not a TAP device (choose another device for the port, or driver = "afpacket" to use that interface)` {
		t.Fatalf("got %v", err)
	}
	p := openIn(t, l.r, "vm1", l.tap, Options{})
	inNS(t, l.r, func() { _, err = Open("vm2", l.tap, Options{}) })
	if err == nil || err.Error() != `port "vm2": TAP "`+l.tap+`" is in use by another process (stop it, or choose another device for the port)` {
		t.Fatalf("got %v", err)
	}
	p.Close()

	cmd := exec.Command("setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-net_admin",
		os.Args[0], "-test.run=^TestOpenErrors$", "-test.v")
	cmd.Env = append(os.Environ(), "VR_TAP_NOPRIV=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if w := `ERR: port "vm1": creating TAP "vrnopriv0" needs CAP_NET_ADMIN (run as root)`; !strings.Contains(string(out), w+"\n") {
		t.Fatalf("want %q in\n%s", w, out)
	}
}
