package router

import (
	"vrouter/packet"
	"vrouter/router/port"
)

// Offloads: a port whose Offloads is true may deliver TCP/UDP GSO
// super-frames (up to 64 KB, one IP header for many segments) and packets
// whose L4 checksum is partial, described by a virtio-net header. Such a
// packet is routed and translated once, as one packet, and leaves intact
// (headers rewritten, checksum still partial) through a port that takes
// offloads too, so the kernel or the peer segments it only if it must. The
// metadata (m, *packet.VnetHdr, nil for a plain packet) travels with the
// packet down the pipeline with CsumStart counted from the IPv4 header, and
// is turned back into a frame offset by put.
//
// Where a packet with metadata cannot go on as it is, it is settled in
// software: super-frames are cut into segments of GSO size (each with full
// checksums) and partial checksums completed. That happens on ingress for
// switched networks (frames are copied and flooded there) and for frames
// that are not IPv4; and on egress for a port without offloads, and before
// the packet is queued for ARP or fragmented.

// isGSO reports whether m describes a super-frame.
func isGSO(m *packet.VnetHdr) bool { return m != nil && m.GSOType&^packet.GSOECNBit != packet.GSONone }

// gsoProto is the transport protocol of super-frame m, 0 when the router
// cannot segment it (TCPv6, UFO).
func gsoProto(m *packet.VnetHdr) uint8 {
	switch m.GSOType &^ packet.GSOECNBit {
	case packet.GSOTCPv4:
		return packet.ProtoTCP
	case packet.GSOUDPL4:
		return packet.ProtoUDP
	}
	return 0
}

// segmentLen is the IP length of the largest segment of super-frame ip.
func segmentLen(ip packet.IPv4, m *packet.VnetHdr) int {
	l4 := int(m.CsumStart)
	if l4 < packet.IPv4MinLen || l4 >= len(ip) {
		return len(ip)
	}
	h := packet.UDPHdrLen
	if gsoProto(m) == packet.ProtoTCP && l4+packet.TCPMinLen <= len(ip) {
		h = packet.TCP(ip[l4:]).DataOff()
	}
	return min(len(ip), l4+h+int(m.GSOSize))
}

// settle makes ip (at buf[off:], metadata m) a plain packet in software and
// hands each result to next: a super-frame is cut into segments written to
// scratch buffers (ip itself is left as it was), a partial checksum is
// completed in place. It reports false, counting the drop, when the
// metadata does not fit the packet.
func (w *worker) settle(buf []byte, off int, ip packet.IPv4, m *packet.VnetHdr, next func(b []byte, o int, seg packet.IPv4)) bool {
	if !isGSO(m) {
		if m.Flags&packet.VnetNeedsCsum != 0 {
			if !packet.CompleteChecksum(ip, int(m.CsumStart), int(m.CsumOffset)) {
				w.drop(DropOffloadBad)
				return false
			}
			w.cnt[CntCsumCompleted]++
		}
		next(buf, off, ip)
		return true
	}
	proto, mss := gsoProto(m), int(m.GSOSize)
	segs := 0
	if proto != 0 {
		segs = packet.GSOSegmentsV4(ip, 0, proto, mss)
	}
	if segs == 0 {
		w.drop(DropOffloadBad)
		return false
	}
	w.cnt[CntGSOSegmented]++
	for i := 0; i < segs; i++ {
		b := w.getScratch()
		o := port.Headroom + l2hdrMax
		n := packet.SegmentV4(b[o:], ip, 0, proto, mss, i)
		if n == 0 {
			w.drop(DropOffloadBad)
			continue
		}
		next(b, o, packet.IPv4(b[o:o+n]))
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
	w.settle(buf, off+hdr, packet.IPv4(buf[off+hdr:off+n]), &lm, func(b []byte, o int, seg packet.IPv4) {
		copy(b[o-hdr:o], buf[off:off+hdr]) // the frame's own L2 header (in place for a completed checksum)
		w.frame(p, b, o-hdr, hdr+len(seg), nil)
	})
}

// noNext is a settle continuation that does nothing (the caller goes on
// with the packet settled in place).
func (w *worker) noNext([]byte, int, packet.IPv4) {}
