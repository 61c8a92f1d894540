package router

import (
	"vrouter/packet"
	"vrouter/router/port"
)

// prefetchBatch touches, for every IPv4 frame of batch b, its headers and
// the conntrack index slot its NAT lookup will read first, before the batch
// is processed. Both are cache misses (the frame was written by the kernel
// on another CPU, the index is tens of megabytes); read back to back they
// overlap, where the pipeline would wait for each in turn. What it reads is
// folded into w.touched only so that the loads are kept.
func (w *worker) prefetchBatch(b *port.Batch) {
	// First the frames' headers alone (a short loop, so that many misses
	// are in flight at once), then the slots, whose addresses need them.
	var sum uint32
	for i := 0; i < b.N; i++ {
		if b.Len[i] > 38 {
			f := b.Bufs[i][b.Off[i]:]
			sum += uint32(f[12]) + uint32(f[38]) // the lines of Ethernet, IPv4 and port headers
		}
	}
	for i := 0; i < b.N; i++ {
		f := b.Bufs[i][b.Off[i] : b.Off[i]+b.Len[i]]
		if l3, et, ok := packet.L3Offset(f); ok && et == packet.EtherTypeIPv4 {
			sum ^= w.nat.Prefetch(f[l3:])
		}
	}
	w.touched = sum
}
