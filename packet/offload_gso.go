package packet

import "encoding/binary"

// Software GSO for both IP versions: GSOSegments and Segment take a TCP or
// UDP (GSO_UDP_L4) super-frame whose IP header, version 4 or 6, is at l3.
// IPv4 is SegmentV4; IPv6 is cut here (TCP: sequence numbers, flags and
// checksums per segment as Linux tcp_gso_segment does; UDP: SegmentUDPv6).

// gsoL4v6 finds the TCP or UDP header of an IPv6 super-frame f (IPv6 header
// at l3; hop-by-hop, routing and destination options headers stepped over)
// and the end of the IP packet.
func gsoL4v6(f []byte, l3 int, proto uint8) (l4, end int, ok bool) {
	if l3 < 0 || len(f) < l3+ipv6HdrLen || f[l3]>>4 != 6 {
		return 0, 0, false
	}
	end = len(f)
	if pl := int(binary.BigEndian.Uint16(f[l3+4:])); pl != 0 {
		if l3+ipv6HdrLen+pl > len(f) {
			return 0, 0, false
		}
		end = l3 + ipv6HdrLen + pl
	}
	nh, off := f[l3+6], l3+ipv6HdrLen
	for n := 0; n < MaxExtHeaders && (nh == ip6HopByHop || nh == ip6Routing || nh == ip6DestOpts); n++ {
		if off+2 > end {
			return 0, 0, false
		}
		nh, off = f[off], off+(int(f[off+1])+1)*8
	}
	if nh != proto {
		return 0, 0, false
	}
	switch proto {
	case ProtoTCP:
		if off+TCPMinLen > end || off+TCP(f[off:]).DataOff() > end || TCP(f[off:]).DataOff() < TCPMinLen {
			return 0, 0, false
		}
	case ProtoUDP:
		if off+UDPHdrLen > end {
			return 0, 0, false
		}
	default:
		return 0, 0, false
	}
	return off, end, true
}

// GSOSegments is GSOSegmentsV4 for a super-frame of either IP version.
func GSOSegments(f []byte, l3 int, proto uint8, mss int) int {
	if l3 < 0 || len(f) <= l3 {
		return 0
	}
	if f[l3]>>4 == 4 {
		return GSOSegmentsV4(f, l3, proto, mss)
	}
	l4, end, ok := gsoL4v6(f, l3, proto)
	if !ok || mss <= 0 {
		return 0
	}
	if proto == ProtoUDP {
		return GSOSegmentsUDPv6(f, l3, l4, mss)
	}
	p := end - l4 - TCP(f[l4:]).DataOff()
	if p == 0 {
		return 1
	}
	return (p + mss - 1) / mss
}

// Segment is SegmentV4 for a super-frame of either IP version.
func Segment(dst, f []byte, l3 int, proto uint8, mss, i int) int {
	if l3 < 0 || len(f) <= l3 {
		return 0
	}
	if f[l3]>>4 == 4 {
		return SegmentV4(dst, f, l3, proto, mss, i)
	}
	l4, end, ok := gsoL4v6(f, l3, proto)
	if !ok || mss <= 0 || i < 0 {
		return 0
	}
	if proto == ProtoUDP {
		return SegmentUDPv6(dst, f, l3, l4, mss, i)
	}
	return segmentTCPv6(dst, f, l3, l4, end, mss, i)
}

func segmentTCPv6(dst, f []byte, l3, l4, end, mss, i int) int {
	hdr := l4 + TCP(f[l4:]).DataOff()
	total := end - hdr
	start := i * mss
	p := min(total-start, mss)
	if p < 0 || (p == 0 && i > 0) {
		return 0
	}
	n := hdr + p
	if len(dst) < n {
		return 0
	}
	copy(dst[:hdr], f[:hdr])
	copy(dst[hdr:n], f[hdr+start:hdr+start+p])
	binary.BigEndian.PutUint16(dst[l3+4:], uint16(n-l3-ipv6HdrLen))
	t := TCP(dst[l4:n])
	t.SetSeq(TCP(f[l4:]).Seq() + uint32(start))
	fl := t.Flags()
	if start+p < total {
		fl &^= TCPFin | TCPPsh
	}
	if i > 0 {
		fl &^= 0x80 // CWR
	}
	t.SetFlags(fl)
	t.SetChecksum(0)
	s := Sum(dst[l3+8:l3+ipv6HdrLen], uint64(len(t))+ProtoTCP)
	t.SetChecksum(^Fold(Sum(t, s)))
	return n
}
