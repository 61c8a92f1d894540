package afxdp

import (
	"encoding/binary"

	"vrouter/packet"
)

// completePartial completes the TCP or UDP checksum of an IPv4 or IPv6
// frame that a sender on the same host left partial (checksum offload: the
// field holds the folded pseudo-header sum and the device was to finish
// it). AF_XDP frames carry no metadata saying so: an XDP program on a veth
// sees the bytes as the peer's stack left them. A field equal to the
// pseudo-header sum is taken as partial and the checksum computed over the
// segment. For a frame whose checksum was already right this changes
// nothing (the result is the field's own value), so only frames whose
// checksum was wrong and happened to equal the pseudo-header sum are
// altered. IPv4 fragments and IPv6 packets with extension headers are left
// alone. It reports whether it completed a checksum.
func completePartial(f []byte) bool {
	l3, et, ok := packet.L3Offset(f)
	if !ok {
		return false
	}
	var l4, seg int
	var proto uint8
	var pseudo uint64
	switch et {
	case packet.EtherTypeIPv4:
		if len(f) < l3+packet.IPv4MinLen {
			return false
		}
		ip := packet.IPv4(f[l3:])
		proto = ip.Proto()
		ihl, tl := ip.IHL(), ip.TotalLen()
		if ip.Version() != 4 || ihl < packet.IPv4MinLen || tl < ihl || l3+tl > len(f) || ip.IsFragment() {
			return false
		}
		l4, seg = l3+ihl, tl-ihl
		pseudo = packet.PseudoSum(ip.Src(), ip.Dst(), proto, seg)
	case packet.EtherTypeIPv6:
		if len(f) < l3+packet.IPv6HdrLen {
			return false
		}
		ip := packet.IPv6(f[l3:])
		proto = ip.NextHeader()
		seg = ip.PayloadLen()
		if ip.Version() != 6 || l3+packet.IPv6HdrLen+seg > len(f) {
			return false
		}
		l4 = l3 + packet.IPv6HdrLen
		pseudo = packet.PseudoSum6(ip.Src(), ip.Dst(), proto, seg)
	default:
		return false
	}
	if proto != packet.ProtoTCP && proto != packet.ProtoUDP {
		return false
	}
	off := 16 // TCP checksum
	if proto == packet.ProtoUDP {
		off = 6
	}
	if seg < off+2 {
		return false
	}
	field := binary.BigEndian.Uint16(f[l4+off:])
	if field == 0 || field != packet.Fold(pseudo) {
		return false
	}
	return packet.CompleteChecksum(f[:l4+seg], l4, off)
}
