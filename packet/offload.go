package packet

import "encoding/binary"

// Offloads: what a Linux device hands over when segmentation and checksums
// are left to "hardware" (veth and TAP peers do this by default). The kernel
// describes such a frame with a virtio_net_hdr (PACKET_VNET_HDR on AF_PACKET
// sockets, IFF_VNET_HDR on TAP devices). The functions below finish the job in
// software: they complete partial checksums and cut TCP/UDP super-frames into
// wire-sized frames. None of them allocates.

// VnetHdrLen is the size of struct virtio_net_hdr (without num_buffers).
const VnetHdrLen = 10

// virtio_net_hdr flags and GSO types (include/uapi/linux/virtio_net.h).
const (
	VnetNeedsCsum = 0x1 // the checksum at CsumStart+CsumOffset is partial
	VnetDataValid = 0x2 // the checksum was verified already

	GSONone   = 0
	GSOTCPv4  = 1
	GSOUDP    = 3 // UFO (IP fragmentation); not handled
	GSOTCPv6  = 4
	GSOUDPL4  = 5
	GSOECNBit = 0x80 // TCP ECN: CWR belongs to the first segment only
)

// VnetHdr is a decoded virtio_net_hdr. The kernel writes its fields in host
// byte order for AF_PACKET and legacy TAP (little-endian on every
// architecture this router runs on; we decode with NativeEndian).
type VnetHdr struct {
	Flags      uint8
	GSOType    uint8 // GSO* constant, possibly with GSOECNBit
	HdrLen     uint16
	GSOSize    uint16 // payload bytes per segment (the MSS for TCP)
	CsumStart  uint16 // offset of the L4 header from the start of the frame
	CsumOffset uint16 // offset of the checksum field from CsumStart
}

// ParseVnetHdr decodes the first VnetHdrLen bytes of b.
func ParseVnetHdr(b []byte) VnetHdr {
	_ = b[VnetHdrLen-1]
	return VnetHdr{
		Flags:      b[0],
		GSOType:    b[1],
		HdrLen:     binary.NativeEndian.Uint16(b[2:4]),
		GSOSize:    binary.NativeEndian.Uint16(b[4:6]),
		CsumStart:  binary.NativeEndian.Uint16(b[6:8]),
		CsumOffset: binary.NativeEndian.Uint16(b[8:10]),
	}
}

// Put encodes h into the first VnetHdrLen bytes of b.
func (h VnetHdr) Put(b []byte) {
	_ = b[VnetHdrLen-1]
	b[0], b[1] = h.Flags, h.GSOType
	binary.NativeEndian.PutUint16(b[2:4], h.HdrLen)
	binary.NativeEndian.PutUint16(b[4:6], h.GSOSize)
	binary.NativeEndian.PutUint16(b[6:8], h.CsumStart)
	binary.NativeEndian.PutUint16(b[8:10], h.CsumOffset)
}

// L3Offset skips the Ethernet header and any 802.1Q/802.1ad tags of frame f
// and returns the offset of the network header and its EtherType.
func L3Offset(f []byte) (off int, etherType uint16, ok bool) {
	off = 12
	for {
		if len(f) < off+2 {
			return 0, 0, false
		}
		t := binary.BigEndian.Uint16(f[off : off+2])
		if t != EtherTypeVLAN && t != EtherTypeQinQ {
			return off + 2, t, true
		}
		off += 4
	}
}

// CompleteChecksum finishes a CHECKSUM_PARTIAL frame: the 16-bit field at
// start+off holds the folded pseudo-header sum, and the checksum covers
// f[start:] (the caller trims f to the end of the L4 data). It reports false
// when the offsets do not fit f. A result of zero is stored as 0xffff (the
// same value in one's complement; zero would mean "no checksum" for UDP).
func CompleteChecksum(f []byte, start, off int) bool {
	if start < 0 || off < 0 || start+off+2 > len(f) {
		return false
	}
	c := ^Fold(Sum(f[start:], 0))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(f[start+off:], c)
	return true
}

// gsoLayout is the parsed shape of an IPv4 TCP or UDP super-frame.
type gsoLayout struct {
	l3, ihl, l4hl int // network header offset, IPv4 header length, L4 header length
	payload       int // L4 payload bytes in the super-frame
}

func parseGSOv4(f []byte, l3 int, proto uint8) (g gsoLayout, ok bool) {
	if l3 < 0 || len(f) < l3+IPv4MinLen {
		return g, false
	}
	ip := IPv4(f[l3:])
	ihl := ip.IHL()
	if ip.Version() != 4 || ihl < IPv4MinLen || ip.Proto() != proto || ip.IsFragment() {
		return g, false
	}
	tl := ip.TotalLen()
	if tl > len(f)-l3 {
		return g, false
	}
	if tl == 0 || tl < ihl {
		// A super-frame longer than 64 KB (BIG TCP) carries total length 0;
		// take the length from the frame.
		if tl != 0 {
			return g, false
		}
		tl = len(f) - l3
	}
	var l4hl int
	switch proto {
	case ProtoTCP:
		if tl < ihl+TCPMinLen {
			return g, false
		}
		l4hl = TCP(f[l3+ihl:]).DataOff()
		if l4hl < TCPMinLen || ihl+l4hl > tl {
			return g, false
		}
	case ProtoUDP:
		if tl < ihl+UDPHdrLen {
			return g, false
		}
		l4hl = UDPHdrLen
	default:
		return g, false
	}
	return gsoLayout{l3: l3, ihl: ihl, l4hl: l4hl, payload: tl - ihl - l4hl}, true
}

// GSOSegmentsV4 validates an IPv4 super-frame (f starts with the Ethernet
// header, l3 is the offset of the IPv4 header, proto is ProtoTCP or ProtoUDP)
// and returns how many segments of at most mss payload bytes it makes, or 0
// when it cannot be segmented.
func GSOSegmentsV4(f []byte, l3 int, proto uint8, mss int) int {
	if mss <= 0 {
		return 0
	}
	g, ok := parseGSOv4(f, l3, proto)
	if !ok {
		return 0
	}
	if g.payload == 0 {
		return 1
	}
	return (g.payload + mss - 1) / mss
}

// SegmentLenV4 is the length of segment i as SegmentV4 writes it.
func SegmentLenV4(f []byte, l3 int, proto uint8, mss, i int) int {
	g, ok := parseGSOv4(f, l3, proto)
	if !ok || mss <= 0 || i < 0 {
		return 0
	}
	p := g.payload - i*mss
	if p > mss {
		p = mss
	}
	if p < 0 || (p == 0 && i > 0) {
		return 0
	}
	return g.l3 + g.ihl + g.l4hl + p
}

// SegmentV4 writes segment i (0-based) of the IPv4 TCP or UDP super-frame f
// into dst and returns its length, or 0 when f is not a valid super-frame, i
// is out of range or dst is too small. Each segment gets the link-layer and
// IP headers of f with total length, identification (ID of f plus i) and
// header checksum fixed, and a complete L4 checksum:
//
//   - TCP: sequence number advanced by i*mss; FIN and PSH only on the last
//     segment, CWR only on the first (what Linux tcp_gso_segment does);
//   - UDP (GSO_UDP_L4): every segment is a datagram of its own with its own
//     UDP length.
//
// The L4 checksum of f is ignored (it is partial in a super-frame).
func SegmentV4(dst, f []byte, l3 int, proto uint8, mss, i int) int {
	g, ok := parseGSOv4(f, l3, proto)
	if !ok || mss <= 0 || i < 0 {
		return 0
	}
	hdr := g.l3 + g.ihl + g.l4hl
	start := i * mss
	p := g.payload - start
	if p > mss {
		p = mss
	}
	if p < 0 || (p == 0 && i > 0) {
		return 0
	}
	n := hdr + p
	if len(dst) < n {
		return 0
	}
	copy(dst[:hdr], f[:hdr])
	copy(dst[hdr:n], f[hdr+start:hdr+start+p])
	last := start+p >= g.payload

	ip := IPv4(dst[g.l3:n])
	ip.SetTotalLen(g.ihl + g.l4hl + p)
	ip.SetID(IPv4(f[g.l3:]).ID() + uint16(i))
	ip.ComputeChecksum()
	l4 := dst[g.l3+g.ihl : n]
	switch proto {
	case ProtoTCP:
		t := TCP(l4)
		t.SetSeq(TCP(f[g.l3+g.ihl:]).Seq() + uint32(start))
		fl := t.Flags()
		if !last {
			fl &^= TCPFin | TCPPsh
		}
		if i > 0 {
			fl &^= 0x80 // CWR
		}
		t.SetFlags(fl)
		t.SetChecksum(0)
		t.SetChecksum(L4Checksum(ip.Src(), ip.Dst(), ProtoTCP, l4))
	case ProtoUDP:
		u := UDP(l4)
		u.SetLength(len(l4))
		u.SetChecksum(0)
		c := L4Checksum(ip.Src(), ip.Dst(), ProtoUDP, l4)
		if c == 0 {
			c = 0xffff
		}
		u.SetChecksum(c)
	}
	return n
}

// GSOHeadersV4 returns the offsets of the L4 header and of the L4 payload
// of the IPv4 TCP or UDP super-frame f (l3 and proto as for GSOSegmentsV4),
// or ok false when f is not a valid super-frame. The payload offset is the
// length of the headers every segment repeats (virtio_net_hdr hdr_len).
func GSOHeadersV4(f []byte, l3 int, proto uint8) (l4, payload int, ok bool) {
	g, ok := parseGSOv4(f, l3, proto)
	if !ok {
		return 0, 0, false
	}
	return g.l3 + g.ihl, g.l3 + g.ihl + g.l4hl, true
}
