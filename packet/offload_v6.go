package packet

import "encoding/binary"

// IPv6 UDP super-frames (GSO_UDP_L4 over IPv6). The router does not route
// IPv6, but a device that offers USO to the kernel (a TAP with TUN_F_USO4
// must also take TUN_F_USO6) receives them and has to cut them into
// datagrams before they go anywhere. Like the IPv4 functions, these do not
// allocate.

// ipv6HdrLen is the fixed IPv6 header.
const ipv6HdrLen = 40

// IPv6 extension headers that may sit between the fixed header and UDP in a
// super-frame (a fragment header may not: that would be UFO).
const (
	ip6HopByHop = 0
	ip6Routing  = 43
	ip6DestOpts = 60
)

// udpGSOv6 checks an IPv6 UDP super-frame whose IPv6 header is at l3 and UDP
// header at l4 (the virtio header's csum_start, after any extension
// headers) and returns the end of the IP packet in f.
func udpGSOv6(f []byte, l3, l4 int) (end int, ok bool) {
	if l3 < 0 || l4 < l3+ipv6HdrLen || len(f) < l4+UDPHdrLen || f[l3]>>4 != 6 {
		return 0, false
	}
	end = len(f)
	if pl := int(binary.BigEndian.Uint16(f[l3+4:])); pl != 0 {
		// Zero is a jumbogram (length in a hop-by-hop option): use the frame.
		if l3+ipv6HdrLen+pl > len(f) {
			return 0, false
		}
		end = l3 + ipv6HdrLen + pl
	}
	if end < l4+UDPHdrLen {
		return 0, false
	}
	nh, off := f[l3+6], l3+ipv6HdrLen
	for off < l4 && (nh == ip6HopByHop || nh == ip6Routing || nh == ip6DestOpts) {
		if off+2 > l4 {
			return 0, false
		}
		nh, off = f[off], off+(int(f[off+1])+1)*8
	}
	if off != l4 || nh != ProtoUDP {
		return 0, false
	}
	return end, true
}

// GSOSegmentsUDPv6 validates an IPv6 UDP super-frame (f starts with the
// Ethernet header; l3 is the offset of the IPv6 header, l4 that of the UDP
// header) and returns how many datagrams of at most mss payload bytes it
// makes, or 0 when it cannot be segmented.
func GSOSegmentsUDPv6(f []byte, l3, l4, mss int) int {
	end, ok := udpGSOv6(f, l3, l4)
	if !ok || mss <= 0 {
		return 0
	}
	p := end - l4 - UDPHdrLen
	if p == 0 {
		return 1
	}
	return (p + mss - 1) / mss
}

// SegmentUDPv6 writes datagram i (0-based) of the IPv6 UDP super-frame f
// into dst and returns its length, or 0 when f is not a valid super-frame, i
// is out of range or dst is too small. Each datagram gets the headers of f
// (link layer, IPv6, extension headers, UDP) with the IPv6 payload length,
// the UDP length and a complete UDP checksum of its own; the checksum of f
// is ignored (it is partial in a super-frame).
func SegmentUDPv6(dst, f []byte, l3, l4, mss, i int) int {
	end, ok := udpGSOv6(f, l3, l4)
	if !ok || mss <= 0 || i < 0 {
		return 0
	}
	hdr := l4 + UDPHdrLen
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
	u := UDP(dst[l4:n])
	u.SetLength(len(u))
	u.SetChecksum(0)
	// Pseudo header: source and destination addresses, upper-layer length,
	// next header (RFC 8200 section 8.1).
	s := Sum(dst[l3+8:l3+ipv6HdrLen], uint64(len(u))+ProtoUDP)
	c := ^Fold(Sum(u, s))
	if c == 0 {
		c = 0xffff
	}
	u.SetChecksum(c)
	return n
}
