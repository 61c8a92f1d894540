package packet

import "encoding/binary"

// EtherType values the router knows.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeVLAN = 0x8100
	EtherTypeIPv6 = 0x86DD
	EtherTypeQinQ = 0x88A8

	EtherHdrLen = 14
	VLANHdrLen  = 4
)

// MAC is an Ethernet address as a value type (comparable, no allocation).
type MAC [6]byte

// Broadcast is ff:ff:ff:ff:ff:ff.
var Broadcast = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// IsBroadcast reports whether m is ff:ff:ff:ff:ff:ff.
func (m MAC) IsBroadcast() bool { return m == Broadcast }

// IsMulticast reports whether the group bit is set (includes broadcast).
func (m MAC) IsMulticast() bool { return m[0]&1 == 1 }

// IsZero reports whether m is 00:00:00:00:00:00.
func (m MAC) IsZero() bool { return m == MAC{} }

// String formats m as aa:bb:cc:dd:ee:ff. It allocates; not for the data path.
func (m MAC) String() string {
	const hexd = "0123456789abcdef"
	b := make([]byte, 17)
	for i, x := range m {
		b[i*3] = hexd[x>>4]
		b[i*3+1] = hexd[x&15]
		if i < 5 {
			b[i*3+2] = ':'
		}
	}
	return string(b)
}

// Uint64 packs m into the low 48 bits of a uint64.
func (m MAC) Uint64() uint64 {
	return uint64(m[0])<<40 | uint64(m[1])<<32 | uint64(m[2])<<24 | uint64(m[3])<<16 | uint64(m[4])<<8 | uint64(m[5])
}

// MACFromUint64 is the inverse of MAC.Uint64.
func MACFromUint64(v uint64) MAC {
	return MAC{byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

// Ether is a view of an Ethernet II header (without any 802.1Q tag):
//
//	0      6      12   14
//	| dst  | src  |type|
type Ether []byte

func (e Ether) Dst() (m MAC)         { copy(m[:], e[0:6]); return }
func (e Ether) Src() (m MAC)         { copy(m[:], e[6:12]); return }
func (e Ether) Type() uint16         { return binary.BigEndian.Uint16(e[12:14]) }
func (e Ether) SetDst(m MAC)         { copy(e[0:6], m[:]) }
func (e Ether) SetSrc(m MAC)         { copy(e[6:12], m[:]) }
func (e Ether) SetType(t uint16)     { binary.BigEndian.PutUint16(e[12:14], t) }
func (e Ether) DstIsMulticast() bool { return e[0]&1 == 1 }

// L2 is the result of parsing the link layer of a frame.
type L2 struct {
	VID    uint16 // 802.1Q VLAN ID, 0 when untagged
	Tagged bool
	Type   uint16 // EtherType of the payload
	HdrLen int    // bytes before the payload: 14 or 18
}

// ParseL2 parses the Ethernet header and at most one 802.1Q tag. ok is false
// for frames shorter than their headers. A second tag (QinQ) is reported as
// Type 0x8100/0x88a8 and left to the caller to drop.
func ParseL2(f []byte) (l L2, ok bool) {
	if len(f) < EtherHdrLen {
		return l, false
	}
	t := binary.BigEndian.Uint16(f[12:14])
	if t == EtherTypeVLAN {
		if len(f) < EtherHdrLen+VLANHdrLen {
			return l, false
		}
		l.Tagged = true
		l.VID = binary.BigEndian.Uint16(f[14:16]) & 0x0fff
		l.Type = binary.BigEndian.Uint16(f[16:18])
		l.HdrLen = 18
		return l, true
	}
	l.Type = t
	l.HdrLen = EtherHdrLen
	return l, true
}

// PutEther writes an Ethernet header (and an 802.1Q tag when vid != 0) into
// b, which must have room for 14 or 18 bytes, and returns the bytes written.
func PutEther(b []byte, dst, src MAC, vid uint16, etherType uint16) int {
	copy(b[0:6], dst[:])
	copy(b[6:12], src[:])
	if vid != 0 {
		binary.BigEndian.PutUint16(b[12:14], EtherTypeVLAN)
		binary.BigEndian.PutUint16(b[14:16], vid&0x0fff)
		binary.BigEndian.PutUint16(b[16:18], etherType)
		return 18
	}
	binary.BigEndian.PutUint16(b[12:14], etherType)
	return 14
}

// EtherLen is the header length PutEther writes for vid.
func EtherLen(vid uint16) int {
	if vid != 0 {
		return 18
	}
	return 14
}
