package packet

import "encoding/binary"

// Sum adds b to the running one's-complement sum s (not folded). Use Fold to
// finish. Odd-length input is padded with a zero byte, as RFC 1071 says.
func Sum(b []byte, s uint64) uint64 {
	for len(b) >= 8 {
		v := binary.BigEndian.Uint64(b)
		s += v >> 32
		s += v & 0xffffffff
		b = b[8:]
	}
	if len(b) >= 4 {
		s += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	return s
}

// Fold folds s to 16 bits (not complemented).
func Fold(s uint64) uint16 {
	for s>>16 != 0 {
		s = (s & 0xffff) + (s >> 16)
	}
	return uint16(s)
}

// Checksum is the Internet checksum of b (RFC 1071), complemented, ready to store.
func Checksum(b []byte) uint16 { return ^Fold(Sum(b, 0)) }

// PseudoSum is the sum of the IPv4 pseudo header (RFC 768/793).
func PseudoSum(src, dst uint32, proto uint8, length int) uint64 {
	return uint64(src>>16) + uint64(src&0xffff) + uint64(dst>>16) + uint64(dst&0xffff) +
		uint64(proto) + uint64(length)
}

// L4Checksum computes the TCP/UDP checksum of seg (header + payload, with the
// checksum field zeroed by the caller) for the given addresses.
func L4Checksum(src, dst uint32, proto uint8, seg []byte) uint16 {
	return ^Fold(Sum(seg, PseudoSum(src, dst, proto, len(seg))))
}

// Update16 returns the checksum hc updated for a 16-bit field that changed
// from old to new, per RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). It never
// produces the 0xFFFF/-0 error of the older RFC 1141 formula.
func Update16(hc, old, new uint16) uint16 {
	s := uint32(^hc) + uint32(^old) + uint32(new)
	s = (s & 0xffff) + (s >> 16)
	s = (s & 0xffff) + (s >> 16)
	return ^uint16(s)
}

// Update32 is Update16 for a 32-bit field (an IPv4 address).
func Update32(hc uint16, old, new uint32) uint16 {
	hc = Update16(hc, uint16(old>>16), uint16(new>>16))
	return Update16(hc, uint16(old), uint16(new))
}
