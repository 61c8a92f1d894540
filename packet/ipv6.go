package packet

import "encoding/binary"

// IPv6 (RFC 8200). Like the IPv4 view, an IPv6 is a byte slice starting at
// the fixed header; nothing here allocates.

// IPv6 next-header values the router knows.
const (
	ProtoHopByHop  = 0
	ProtoIPv6Route = 43
	ProtoFragment  = 44
	ProtoESP       = 50
	ProtoAH        = 51
	ProtoICMPv6    = 58
	ProtoNoNext    = 59
	ProtoDestOpts  = 60
	ProtoMobility  = 135
	ProtoHIP       = 139
	ProtoShim6     = 140

	IPv6HdrLen = 40
	// IPv6MinMTU is the smallest link MTU IPv6 allows (RFC 8200 5).
	IPv6MinMTU = 1280
)

// Offsets of the IPv6 header fields.
const (
	IPv6PayloadLenOff = 4
	IPv6NextHdrOff    = 6
	IPv6HopLimitOff   = 7
	IPv6SrcOff        = 8
	IPv6DstOff        = 24
)

// IPv6 is a view of an IPv6 header and what follows:
//
//	 0                   1                   2                   3
//	|Version| Traffic Class |           Flow Label                  |  0
//	|         Payload Length        |  Next Header  |   Hop Limit   |  4
//	|                         Source Address (16)                   |  8
//	|                      Destination Address (16)                 | 24
type IPv6 []byte

func (p IPv6) Version() uint8      { return p[0] >> 4 }
func (p IPv6) TrafficClass() uint8 { return p[0]<<4 | p[1]>>4 }
func (p IPv6) FlowLabel() uint32   { return binary.BigEndian.Uint32(p[0:4]) & 0xfffff }
func (p IPv6) PayloadLen() int {
	return int(binary.BigEndian.Uint16(p[IPv6PayloadLenOff:]))
}
func (p IPv6) NextHeader() uint8 { return p[IPv6NextHdrOff] }
func (p IPv6) HopLimit() uint8   { return p[IPv6HopLimitOff] }
func (p IPv6) Src() (a [16]byte) { copy(a[:], p[IPv6SrcOff:IPv6SrcOff+16]); return }
func (p IPv6) Dst() (a [16]byte) { copy(a[:], p[IPv6DstOff:IPv6DstOff+16]); return }
func (p IPv6) Payload() []byte   { return p[IPv6HdrLen : IPv6HdrLen+p.PayloadLen()] }

func (p IPv6) SetPayloadLen(n int) {
	binary.BigEndian.PutUint16(p[IPv6PayloadLenOff:], uint16(n))
}
func (p IPv6) SetNextHeader(v uint8) { p[IPv6NextHdrOff] = v }
func (p IPv6) SetHopLimit(v uint8)   { p[IPv6HopLimitOff] = v }
func (p IPv6) SetSrc(a [16]byte)     { copy(p[IPv6SrcOff:], a[:]) }
func (p IPv6) SetDst(a [16]byte)     { copy(p[IPv6DstOff:], a[:]) }

// PutIPv6Header writes a fixed header (traffic class and flow label 0).
func PutIPv6Header(b []byte, payloadLen int, next, hopLimit uint8, src, dst [16]byte) {
	binary.BigEndian.PutUint32(b[0:4], 6<<28)
	binary.BigEndian.PutUint16(b[4:6], uint16(payloadLen))
	b[6], b[7] = next, hopLimit
	copy(b[8:24], src[:])
	copy(b[24:40], dst[:])
}

// IPv6Err is the outcome of CheckIPv6.
type IPv6Err uint8

const (
	IPv6OK IPv6Err = iota
	IPv6TooShort
	IPv6BadVersion
	IPv6BadPayloadLen // longer than the bytes received, or 0 (jumbograms are not supported)
)

// CheckIPv6 validates the fixed header of b and returns the view trimmed
// to the payload length (link-layer padding removed).
func CheckIPv6(b []byte) (IPv6, IPv6Err) {
	if len(b) < IPv6HdrLen {
		return nil, IPv6TooShort
	}
	if b[0]>>4 != 6 {
		return nil, IPv6BadVersion
	}
	pl := int(binary.BigEndian.Uint16(b[IPv6PayloadLenOff:]))
	if IPv6HdrLen+pl > len(b) || (pl == 0 && b[IPv6NextHdrOff] == ProtoHopByHop) {
		return nil, IPv6BadPayloadLen
	}
	return IPv6(b[:IPv6HdrLen+pl]), IPv6OK
}

// IsExtHeader reports whether next-header value nh is an extension header
// that the walk steps over (RFC 8200 4; RFC 7045's list).
func IsExtHeader(nh uint8) bool {
	switch nh {
	case ProtoHopByHop, ProtoIPv6Route, ProtoFragment, ProtoDestOpts, ProtoAH, ProtoMobility, ProtoHIP, ProtoShim6:
		return true
	}
	return false
}

// MaxExtHeaders bounds the extension-header walk: a chain longer than this
// is refused (ExtTooMany) rather than walked to the end.
const MaxExtHeaders = 8

// ExtErr is the outcome of WalkExt.
type ExtErr uint8

const (
	ExtOK                   ExtErr = iota
	ExtTruncated                   // a header runs past the packet
	ExtTooMany                     // more than MaxExtHeaders headers
	ExtHopByHopNotFirst            // hop-by-hop header other than right after the fixed header
	ExtBadOption                   // hop-by-hop option whose action says discard (Ptr: the option)
	ExtBadOptionNoICMP             // as ExtBadOption, but without ICMP (action 01)
	ExtBadOptionUnlessMcast        // as ExtBadOption, but ICMP only for non-multicast destinations (action 11)
)

// ExtInfo is what WalkExt learnt of a packet's extension headers. Offsets
// count from the start of the IPv6 header.
type ExtInfo struct {
	Proto    uint8 // the upper-layer protocol (or ProtoNoNext, ProtoESP, or a value the walk does not know)
	Off      int   // offset of the upper-layer header (the end of the chain)
	ProtoPtr int   // offset of the next-header field that names Proto (for parameter problem 4/1)
	N        int   // extension headers walked

	HopByHop     bool
	RouterAlert  bool // hop-by-hop Router Alert option (RFC 2711)
	Routing      bool
	RoutingType  uint8
	SegmentsLeft uint8
	RoutingOff   int // offset of the routing header
	Fragment     bool
	FragOff      int // fragment offset in bytes
	MF           bool

	// Ptr is the offset of the offending field for ICMPv6 parameter
	// problem (ExtHopByHopNotFirst, ExtBadOption*); for those errors
	// NextHdrPtr tells whether it points at a next-header field (code 1)
	// or at an option (code 2).
	Ptr        int
	NextHdrPtr bool
}

// WalkExt walks p's extension headers, bounded by MaxExtHeaders. A
// non-first fragment (FragOff > 0) ends the walk at the fragment header:
// what follows is not a header. Hop-by-hop options are checked against
// their action bits (RFC 8200 4.2); other headers are only stepped over,
// as a router does (their options concern the destination).
func WalkExt(p IPv6) (ExtInfo, ExtErr) {
	var x ExtInfo
	nh := p.NextHeader()
	off := IPv6HdrLen
	prevNH := IPv6NextHdrOff // offset of the field that named the current header
	for IsExtHeader(nh) {
		if x.N == MaxExtHeaders {
			x.Proto, x.Off = nh, off
			return x, ExtTooMany
		}
		if nh == ProtoHopByHop && off != IPv6HdrLen {
			x.Proto, x.Off, x.Ptr, x.NextHdrPtr = nh, off, prevNH, true
			return x, ExtHopByHopNotFirst
		}
		if off+8 > len(p) {
			x.Proto, x.Off = nh, off
			return x, ExtTruncated
		}
		var hl int
		switch nh {
		case ProtoFragment:
			hl = 8
		case ProtoAH:
			hl = (int(p[off+1]) + 2) * 4
		default:
			hl = (int(p[off+1]) + 1) * 8
		}
		if off+hl > len(p) {
			x.Proto, x.Off = nh, off
			return x, ExtTruncated
		}
		x.N++
		switch nh {
		case ProtoHopByHop:
			x.HopByHop = true
			if e := hopOptions(p, off, hl, &x); e != ExtOK {
				x.Proto, x.Off = nh, off
				return x, e
			}
		case ProtoIPv6Route:
			x.Routing, x.RoutingOff = true, off
			x.RoutingType, x.SegmentsLeft = p[off+2], p[off+3]
		case ProtoFragment:
			fo := binary.BigEndian.Uint16(p[off+2:])
			x.Fragment, x.FragOff, x.MF = true, int(fo&^7), fo&1 != 0
			if x.FragOff != 0 {
				x.Proto, x.Off, x.ProtoPtr = p[off], off+hl, off
				return x, ExtOK
			}
		}
		prevNH = off
		nh = p[off]
		off += hl
	}
	x.Proto, x.Off, x.ProtoPtr = nh, off, prevNH
	return x, ExtOK
}

// Hop-by-hop option types the walk knows.
const (
	OptPad1        = 0
	OptPadN        = 1
	OptRouterAlert = 5
)

// hopOptions checks the options of the hop-by-hop header at off (length hl).
func hopOptions(p IPv6, off, hl int, x *ExtInfo) ExtErr {
	end := off + hl
	for i := off + 2; i < end; {
		t := p[i]
		if t == OptPad1 {
			i++
			continue
		}
		if i+2 > end || i+2+int(p[i+1]) > end {
			return ExtTruncated
		}
		switch t {
		case OptPadN:
		case OptRouterAlert:
			x.RouterAlert = true
		default:
			x.Ptr = i
			switch t >> 6 {
			case 1:
				return ExtBadOptionNoICMP
			case 2:
				return ExtBadOption
			case 3:
				return ExtBadOptionUnlessMcast
			}
		}
		i += 2 + int(p[i+1])
	}
	return ExtOK
}

// IPv6 address helpers. Addresses on the data path are [16]byte.

// IsMulticast6 reports ff00::/8.
func IsMulticast6(a [16]byte) bool { return a[0] == 0xff }

// IsLinkLocal6 reports fe80::/10.
func IsLinkLocal6(a [16]byte) bool { return a[0] == 0xfe && a[1]&0xc0 == 0x80 }

// IsUnspecified6 reports ::.
func IsUnspecified6(a [16]byte) bool { return a == [16]byte{} }

// IsLoopback6 reports ::1.
func IsLoopback6(a [16]byte) bool { return a == [16]byte{15: 1} }

// IsMartianSource6 reports sources a router never forwards from: ::, ::1,
// multicast, and IPv4-mapped addresses (RFC 4291 2.5.5.2).
func IsMartianSource6(a [16]byte) bool {
	if IsUnspecified6(a) || IsLoopback6(a) || IsMulticast6(a) {
		return true
	}
	return a[0]|a[1]|a[2]|a[3]|a[4]|a[5]|a[6]|a[7]|a[8]|a[9] == 0 && a[10] == 0xff && a[11] == 0xff
}

// SolicitedNode is the solicited-node multicast address of a (RFC 4291
// 2.7.1): ff02::1:ff00:0/104 with a's low 24 bits.
func SolicitedNode(a [16]byte) [16]byte {
	return [16]byte{0xff, 0x02, 11: 0x01, 12: 0xff, 13: a[13], 14: a[14], 15: a[15]}
}

// IsSolicitedNode reports whether a is a solicited-node multicast address.
func IsSolicitedNode(a [16]byte) bool {
	return a[0] == 0xff && a[1] == 0x02 && a[2]|a[3]|a[4]|a[5]|a[6]|a[7]|a[8]|a[9]|a[10] == 0 &&
		a[11] == 1 && a[12] == 0xff
}

// AllNodes is ff02::1, AllRouters ff02::2.
var (
	AllNodes   = [16]byte{0xff, 0x02, 15: 1}
	AllRouters = [16]byte{0xff, 0x02, 15: 2}
)

// MulticastMAC6 is the Ethernet address of an IPv6 multicast group (RFC 2464 7).
func MulticastMAC6(a [16]byte) MAC { return MAC{0x33, 0x33, a[12], a[13], a[14], a[15]} }

// LinkLocalEUI64 is the link-local address fe80::/64 with the modified
// EUI-64 interface identifier of m (RFC 4291 2.5.1, appendix A).
func LinkLocalEUI64(m MAC) [16]byte {
	return [16]byte{0xfe, 0x80, 8: m[0] ^ 0x02, 9: m[1], 10: m[2], 11: 0xff, 12: 0xfe, 13: m[3], 14: m[4], 15: m[5]}
}

// PseudoSum6 is the sum of the IPv6 pseudo header (RFC 8200 8.1).
func PseudoSum6(src, dst [16]byte, proto uint8, length int) uint64 {
	s := Sum(src[:], 0)
	s = Sum(dst[:], s)
	return s + uint64(length>>16) + uint64(length&0xffff) + uint64(proto)
}

// ICMPv6Checksum is the checksum of the ICMPv6 message m (its checksum
// field zeroed by the caller) between src and dst.
func ICMPv6Checksum(src, dst [16]byte, m []byte) uint16 {
	return ^Fold(Sum(m, PseudoSum6(src, dst, ProtoICMPv6, len(m))))
}

// ICMPv6ChecksumOK verifies the checksum of message m between src and dst.
func ICMPv6ChecksumOK(src, dst [16]byte, m []byte) bool {
	return Fold(Sum(m, PseudoSum6(src, dst, ProtoICMPv6, len(m)))) == 0xffff
}
