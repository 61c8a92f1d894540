package router

import (
	"vrouter/packet"
	"vrouter/router/port"
)

// Offloads: a port whose Offloads is true may deliver TCP/UDP GSO
// super-frames (up to 64 KB, one IP header for many segments) and packets
// whose L4 checksum is partial, described by a virtio-net header. Such a
// packet, IPv4 or IPv6, is routed (and, IPv4, translated) once, as one
// packet, and leaves intact (headers rewritten, checksum still partial)
// through a port that takes offloads too, so the kernel or the peer
// segments it only if it must. The metadata (m, *packet.VnetHdr, nil for a
// plain packet) travels with the packet down the pipeline with CsumStart
// counted from the IP header, and is turned back into a frame offset by
// put. Neither the TTL or hop limit nor the NAT's address rewrite touch a
// partial checksum's validity: the IPv4 header checksum is recomputed as
// for any packet, and the NAT adjusts the partial L4 sum (the pseudo-header
// part) instead of the full one; IPv6 has no header checksum.
//
// Where a packet with metadata cannot go on as it is, it is settled in
// software: super-frames are cut into segments of GSO size (each with full
// checksums) and partial checksums completed. That happens on ingress for
// switched networks (frames are copied and flooded there), for frames that
// are neither IPv4 nor IPv6 and for IPv6 the router itself takes (its
// addresses, multicast); and on egress for a port without offloads, and
// before the packet is queued for address resolution or fragmented.

// isGSO reports whether m describes a super-frame.
func isGSO(m *packet.VnetHdr) bool { return m != nil && m.GSOType&^packet.GSOECNBit != packet.GSONone }

// gsoProto is the transport protocol of super-frame m, 0 when the router
// cannot segment it (UFO).
func gsoProto(m *packet.VnetHdr) uint8 {
	switch m.GSOType &^ packet.GSOECNBit {
	case packet.GSOTCPv4, packet.GSOTCPv6:
		return packet.ProtoTCP
	case packet.GSOUDPL4:
		return packet.ProtoUDP
	}
	return 0
}

// segmentLen is the IP length of the largest segment of super-frame pkt
// (either IP version: CsumStart is the L4 header, after any IPv6 extension
// headers).
func segmentLen(pkt []byte, m *packet.VnetHdr) int {
	l4 := int(m.CsumStart)
	if l4 < packet.IPv4MinLen || l4 >= len(pkt) {
		return len(pkt)
	}
	h := packet.UDPHdrLen
	if gsoProto(m) == packet.ProtoTCP && l4+packet.TCPMinLen <= len(pkt) {
		h = packet.TCP(pkt[l4:]).DataOff()
	}
	return min(len(pkt), l4+h+int(m.GSOSize))
}

// settle makes the IP packet pkt (at buf[off:], either version, metadata
// m) a plain packet in software and hands each result to next: a
// super-frame is cut into segments written to scratch buffers (pkt itself
// is left as it was), a partial checksum is completed in place. It reports
// false, counting the drop, when the metadata does not fit the packet.
func (w *worker) settle(buf []byte, off int, pkt []byte, m *packet.VnetHdr, next func(b []byte, o int, pkt []byte)) bool {
	if !isGSO(m) {
		if m.Flags&packet.VnetNeedsCsum != 0 {
			if !packet.CompleteChecksum(pkt, int(m.CsumStart), int(m.CsumOffset)) {
				w.drop(DropOffloadBad)
				return false
			}
			w.cnt[CntCsumCompleted]++
		}
		next(buf, off, pkt)
		return true
	}
	proto, mss := gsoProto(m), int(m.GSOSize)
	segs := 0
	if proto != 0 {
		segs = packet.GSOSegments(pkt, 0, proto, mss)
	}
	if segs == 0 {
		w.drop(DropOffloadBad)
		return false
	}
	w.cnt[CntGSOSegmented]++
	for i := 0; i < segs; i++ {
		b := w.getScratch()
		o := port.Headroom + l2hdrMax
		n := packet.Segment(b[o:], pkt, 0, proto, mss, i)
		if n == 0 {
			w.drop(DropOffloadBad)
			continue
		}
		next(b, o, b[o:o+n])
	}
	return true
}

// settleFrame settles a received frame (its L2 header is hdr bytes) that
// cannot go on with its metadata, and runs each plain result through the
// pipeline from the start.
func (w *worker) settleFrame(p *portState, buf []byte, off, n, hdr int, m *packet.VnetHdr) {
	if int(m.CsumStart) < hdr {
		w.drop(DropOffloadBad)
		return
	}
	lm := *m
	lm.CsumStart -= uint16(hdr)
	w.settle(buf, off+hdr, buf[off+hdr:off+n], &lm, func(b []byte, o int, seg []byte) {
		copy(b[o-hdr:o], buf[off:off+hdr]) // the frame's own L2 header (in place for a completed checksum)
		w.frame(p, b, o-hdr, hdr+len(seg), nil)
	})
}

// noNext is a settle continuation that does nothing (the caller goes on
// with the packet settled in place).
func (w *worker) noNext([]byte, int, []byte) {}
