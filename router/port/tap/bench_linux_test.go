package tap

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"vrouter/router/port"
	"vrouter/router/port/afpacket"
)

// BenchmarkTAP moves frames between the TAP port and a raw socket (an
// afpacket port) on the TAP's kernel side in the VM namespace.
// "vm-to-router": the VM side writes batches of 64, the TAP port reads;
// "router-to-vm": the TAP port writes batches of 64, the VM side reads.
// Reported: frames/s received.
func BenchmarkTAP(b *testing.B) {
	for _, size := range []int{64, 1500} {
		b.Run(fmt.Sprintf("vm-to-router/%dB", size), func(b *testing.B) { benchTAP(b, size, true) })
		b.Run(fmt.Sprintf("router-to-vm/%dB", size), func(b *testing.B) { benchTAP(b, size, false) })
	}
}

func benchTAP(b *testing.B, size int, toRouter bool) {
	l := newLab(b)
	p := openIn(b, l.r, "vm1", l.tap, Options{})
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
