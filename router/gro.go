package router

import "vrouter/packet"

// GRO: a port with gro (and offloads) sends the consecutive TCP segments
// (IPv4 or IPv6) of a flow that one batch queues for it as one super-frame
// with a virtio-net header (packet.TCPCoalescer), as Linux GRO does on
// receive and VPP's gro-coalesce on a tap's transmit side. The kernel then
// takes one packet where it took dozens, and the receiving host's TCP too;
// where the path needs wire-sized frames again the kernel or the peer cuts
// the super-frame back into exactly the segments it was built from. Only
// frames next to each other in the queue are joined: one batch of a bulk
// flow arrives in order and leaves in order.

// groBufs is how many super-frames a worker builds per port and batch at
// most (each in a buffer of its own).
const groBufs = 8

// coalesce joins runs of TCP segments in frames (a port's tx queue;
// meta its dense metadata, nil when every frame is plain) and returns the
// shortened queue and its metadata, nil when still all plain. The queue is
// rewritten in place; super-frames are built in the worker's gro buffers,
// which stay valid until the next call.
func (w *worker) coalesce(frames [][]byte, meta []packet.VnetHdr) ([][]byte, []packet.VnetHdr) {
	var c packet.TCPCoalescer
	open, built, out := -1, 0, 0
	closeRun := func() {
		f, m, ok := c.Finish()
		if !ok {
			return
		}
		if meta == nil { // every frame so far was plain
			meta = w.plainMeta(len(frames))
		}
		frames[open], meta[open] = f, m
		built++
		w.cnt[CntGROFrames]++
		w.cnt[CntGROSegments] += uint64(c.Segments())
	}
	for i, f := range frames {
		plain := meta == nil || meta[i] == (packet.VnetHdr{}) || partialTCP(f, &meta[i])
		if open >= 0 {
			if plain && c.Append(f) {
				continue
			}
			closeRun()
			open = -1
		}
		frames[out] = f
		if meta != nil {
			meta[out] = meta[i]
		}
		if plain && built < groBufs {
			if l3, et, ok := packet.L3Offset(f); ok && (et == packet.EtherTypeIPv4 || et == packet.EtherTypeIPv6) && c.Start(w.groBuf(built), f, l3) {
				open = out
			}
		}
		out++
	}
	if open >= 0 {
		closeRun()
	}
	if meta != nil {
		meta = meta[:out]
	}
	return frames[:out], meta
}

// partialTCP reports whether m says only that frame f's TCP checksum is
// partial (a sender with checksum offload but no TSO): such a segment
// joins a super-frame like a plain one, whose checksum is made partial
// anyway. The L4 offset is checked for the headers TCPCoalescer takes
// (IPv4 without options, IPv6 without extension headers).
func partialTCP(f []byte, m *packet.VnetHdr) bool {
	if m.GSOType != packet.GSONone || m.Flags != packet.VnetNeedsCsum || m.CsumOffset != packet.TCPChecksumOff {
		return false
	}
	l3, et, ok := packet.L3Offset(f)
	switch {
	case !ok:
		return false
	case et == packet.EtherTypeIPv4:
		return int(m.CsumStart) == l3+packet.IPv4MinLen
	case et == packet.EtherTypeIPv6:
		return int(m.CsumStart) == l3+packet.IPv6HdrLen
	}
	return false
}

// groBuf is the worker's i-th super-frame buffer (made on first use).
func (w *worker) groBuf(i int) []byte {
	for len(w.gro) <= i {
		w.gro = append(w.gro, make([]byte, packet.MaxCoalesced))
	}
	return w.gro[i]
}
