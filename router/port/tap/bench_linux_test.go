package tap

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/packet"
	"vrouter/router/port"
	"vrouter/router/port/afpacket"
)

// BenchmarkTAP moves frames between the TAP port and a raw socket (an
// afpacket port) on the TAP's kernel side in the VM namespace.
// "vm-to-router": the VM side writes batches of 64, the TAP port reads;
// "router-to-vm": the TAP port writes batches of 64, the VM side reads.
// Reported: frames/s received.
// "offloads" runs the same with Options.Offloads (a virtio header per frame).
func BenchmarkTAP(b *testing.B) {
	for _, off := range []bool{false, true} {
		name := ""
		if off {
			name = "offloads/"
		}
		for _, size := range []int{64, 1500} {
			b.Run(fmt.Sprintf("%svm-to-router/%dB", name, size), func(b *testing.B) { benchTAP(b, size, true, off) })
			b.Run(fmt.Sprintf("%srouter-to-vm/%dB", name, size), func(b *testing.B) { benchTAP(b, size, false, off) })
		}
	}
}

func benchTAP(b *testing.B, size int, toRouter, offloads bool) {
	l := newLab(b)
	p := openIn(b, l.r, "vm1", l.tap, Options{Offloads: offloads})
	l.moveToVM(b, "")
	var vm *afpacket.Port
	var err error
	inNS(b, l.v, func() { vm, err = afpacket.Open("vm", l.tap, afpacket.Options{}) })
	if err != nil {
		b.Fatal(err)
	}
	defer vm.Close()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 1, 1, 1, 1, 1}, DstMAC: net.HardwareAddr{2, 2, 2, 2, 2, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
	u := &layers.UDP{SrcPort: 1, DstPort: 2}
	u.SetNetworkLayerForChecksum(ip)
	f := serialize(b, eth, ip, u, gopacket.Payload(strings.Repeat("p", max(size-42, 18))))
	frames := make([][]byte, port.DefaultBatch)
	for i := range frames {
		frames[i] = f
	}
	var src, dst port.Port = vm, p
	if !toRouter {
		src, dst = p, vm
	}
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			if _, err := src.WriteBatch(frames, nil); err != nil {
				return
			}
		}
	}()
	batch := port.NewBatch(port.DefaultBatch)
	b.ReportAllocs()
	b.ResetTimer()
	for got := 0; got < b.N; {
		n, err := dst.ReadBatch(batch)
		if err != nil {
			b.Fatal(err)
		}
		got += n
	}
	b.StopTimer()
	stop.Store(true)
	<-done
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkTAPTCP: one TCP stream from a socket in the VM namespace to the
// router side, which acknowledges every batch it reads (cumulative ACK,
// window 8 MB), without and with Options.Offloads. Reported: the stream's
// throughput, the frames the port read per MB and their average size.
func BenchmarkTAPTCP(b *testing.B) {
	for _, off := range []bool{false, true} {
		b.Run(fmt.Sprintf("offloads=%v", off), func(b *testing.B) { benchTCP(b, off) })
	}
}

func benchTCP(b *testing.B, offloads bool) {
	l := newLab(b)
	p := openIn(b, l.r, "vm1", l.tap, Options{Offloads: offloads})
	l.moveToVM(b, "192.0.2.10/24")
	mac := p.MAC()
	myMAC := net.HardwareAddr(mac[:])
	sh(b, "ip", "-n", l.nameV, "neigh", "add", "192.0.2.1", "lladdr", myMAC.String(), "dev", l.tap)
	const mb = 1 << 20
	var got, frames atomic.Int64
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		batch := port.NewBatch(port.DefaultBatch)
		var ack []byte // template ACK, built at the SYN
		var expect uint32
		for {
			n, err := p.ReadBatch(batch)
			if err != nil {
				return
			}
			for i := 0; i < n; i++ {
				f := batch.Frame(i)
				if len(f) < 54 || binary.BigEndian.Uint16(f[12:]) != packet.EtherTypeIPv4 || f[23] != packet.ProtoTCP {
					continue
				}
				ip := packet.IPv4(f[14:])
				tc := packet.TCP(f[14+ip.IHL():])
				if tc.Flags()&packet.TCPSyn != 0 {
					expect = tc.Seq() + 1
					rip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: routerIP, DstIP: net.IP(f[26:30])}
					syn := &layers.TCP{SrcPort: 5001, DstPort: layers.TCPPort(tc.SrcPort()), SYN: true, ACK: true, Seq: 1, Ack: expect, Window: 65535,
						Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
							{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}}}}
					syn.SetNetworkLayerForChecksum(rip)
					eth := &layers.Ethernet{SrcMAC: myMAC, DstMAC: net.HardwareAddr(f[6:12]), EthernetType: layers.EthernetTypeIPv4}
					p.WriteBatch([][]byte{serialize(b, eth, rip, syn)}, nil)
					a := &layers.TCP{SrcPort: 5001, DstPort: layers.TCPPort(tc.SrcPort()), ACK: true, Seq: 2, Ack: expect, Window: 65535}
					a.SetNetworkLayerForChecksum(rip)
					ack = serialize(b, eth, rip, a)[:54]
					continue
				}
				frames.Add(1)
				if pl := ip.TotalLen() - ip.IHL() - tc.DataOff(); tc.Seq() == expect && pl > 0 {
					expect += uint32(pl)
					got.Add(int64(pl))
				}
			}
			if ack != nil {
				t := packet.TCP(ack[34:])
				old := binary.BigEndian.Uint32(ack[34+packet.TCPAckOff:])
				binary.BigEndian.PutUint32(ack[34+packet.TCPAckOff:], expect)
				t.SetChecksum(packet.Update32(t.Checksum(), old, expect))
				p.WriteBatch([][]byte{ack}, nil)
			}
		}
	}()
	buf := make([]byte, mb)
	conn := make(chan net.Conn, 1)
	go inNS(b, l.v, func() {
		c, err := net.DialTimeout("tcp4", "192.0.2.1:5001", 3*time.Second)
		if err != nil {
			b.Error(err)
		}
		conn <- c
	})
	c := <-conn
	if c == nil {
		b.FailNow()
	}
	defer c.Close()
	b.SetBytes(mb)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	want := int64(b.N) * mb
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	p.Close()
	<-readDone
	if got.Load() < want {
		b.Fatalf("%d of %d bytes arrived", got.Load(), want)
	}
	b.ReportMetric(float64(frames.Load())/float64(b.N), "frames/MB")
	b.ReportMetric(float64(got.Load())/float64(frames.Load()), "B/frame")
}
