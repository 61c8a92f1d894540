package packet

import "encoding/binary"

// IPv4 protocol numbers.
const (
	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17

	IPv4MinLen = 20
)

// IPv4 is a view of an IPv4 header and what follows:
//
//	 0                   1                   2                   3
//	|Version|  IHL  |Type of Service|          Total Length         |  0
//	|         Identification        |Flags|      Fragment Offset    |  4
//	|  Time to Live |    Protocol   |         Header Checksum       |  8
//	|                       Source Address                          | 12
//	|                    Destination Address                        | 16
//	|                    Options                    |    Padding    | 20
type IPv4 []byte

func (p IPv4) Version() uint8        { return p[0] >> 4 }
func (p IPv4) IHL() int              { return int(p[0]&0x0f) * 4 }
func (p IPv4) TOS() uint8            { return p[1] }
func (p IPv4) TotalLen() int         { return int(binary.BigEndian.Uint16(p[2:4])) }
func (p IPv4) ID() uint16            { return binary.BigEndian.Uint16(p[4:6]) }
func (p IPv4) FlagsFrag() uint16     { return binary.BigEndian.Uint16(p[6:8]) }
func (p IPv4) DF() bool              { return p[6]&0x40 != 0 }
func (p IPv4) MF() bool              { return p[6]&0x20 != 0 }
func (p IPv4) FragOff() int          { return int(binary.BigEndian.Uint16(p[6:8])&0x1fff) * 8 }
func (p IPv4) IsFragment() bool      { return binary.BigEndian.Uint16(p[6:8])&0x3fff != 0 }
func (p IPv4) TTL() uint8            { return p[8] }
func (p IPv4) Proto() uint8          { return p[9] }
func (p IPv4) Checksum() uint16      { return binary.BigEndian.Uint16(p[10:12]) }
func (p IPv4) Src() uint32           { return binary.BigEndian.Uint32(p[12:16]) }
func (p IPv4) Dst() uint32           { return binary.BigEndian.Uint32(p[16:20]) }
func (p IPv4) Options() []byte       { return p[20:p.IHL()] }
func (p IPv4) Payload() []byte       { return p[p.IHL():p.TotalLen()] }
func (p IPv4) SetTotalLen(n int)     { binary.BigEndian.PutUint16(p[2:4], uint16(n)) }
func (p IPv4) SetID(v uint16)        { binary.BigEndian.PutUint16(p[4:6], v) }
func (p IPv4) SetFlagsFrag(v uint16) { binary.BigEndian.PutUint16(p[6:8], v) }
func (p IPv4) SetTTL(v uint8)        { p[8] = v }
func (p IPv4) SetProto(v uint8)      { p[9] = v }
func (p IPv4) SetChecksum(v uint16)  { binary.BigEndian.PutUint16(p[10:12], v) }
func (p IPv4) SetSrc(a uint32)       { binary.BigEndian.PutUint32(p[12:16], a) }
func (p IPv4) SetDst(a uint32)       { binary.BigEndian.PutUint32(p[16:20], a) }

// HeaderChecksumOK verifies the header checksum (the sum over the header,
// checksum included, folds to 0xffff).
func (p IPv4) HeaderChecksumOK() bool { return Fold(Sum(p[:p.IHL()], 0)) == 0xffff }

// ComputeChecksum recomputes and stores the header checksum.
func (p IPv4) ComputeChecksum() {
	p[10], p[11] = 0, 0
	p.SetChecksum(Checksum(p[:p.IHL()]))
}

// DecTTL decrements the TTL and updates the checksum incrementally (RFC 1624).
func (p IPv4) DecTTL() {
	old := binary.BigEndian.Uint16(p[8:10])
	p[8]--
	p.SetChecksum(Update16(p.Checksum(), old, binary.BigEndian.Uint16(p[8:10])))
}

// IPv4Error says why an IPv4 header is invalid.
type IPv4Error uint8

const (
	IPv4OK          IPv4Error = iota
	IPv4TooShort              // fewer than 20 bytes
	IPv4BadVersion            // version != 4
	IPv4BadIHL                // IHL < 5 or header longer than the packet
	IPv4BadTotalLen           // total length < IHL*4
	IPv4Truncated             // total length larger than the bytes received
	IPv4BadChecksum           // header checksum wrong
)

// CheckIPv4 validates the header of b per RFC 1812 5.2.2 and returns the
// packet trimmed to its total length (Ethernet padding removed).
func CheckIPv4(b []byte) (IPv4, IPv4Error) {
	if len(b) < IPv4MinLen {
		return nil, IPv4TooShort
	}
	p := IPv4(b)
	if p.Version() != 4 {
		return nil, IPv4BadVersion
	}
	ihl := p.IHL()
	if ihl < IPv4MinLen || ihl > len(b) {
		return nil, IPv4BadIHL
	}
	tl := p.TotalLen()
	if tl < ihl {
		return nil, IPv4BadTotalLen
	}
	if tl > len(b) {
		return nil, IPv4Truncated
	}
	if Fold(Sum(b[:ihl], 0)) != 0xffff {
		return nil, IPv4BadChecksum
	}
	return p[:tl], IPv4OK
}

// HasSourceRoute reports whether the options carry LSRR (131) or SSRR (137).
func (p IPv4) HasSourceRoute() bool {
	o := p.Options()
	for len(o) > 0 {
		switch o[0] {
		case 0: // end of options
			return false
		case 1: // no-op
			o = o[1:]
			continue
		case 131, 137:
			return true
		}
		if len(o) < 2 || int(o[1]) < 2 || int(o[1]) > len(o) {
			return false
		}
		o = o[o[1]:]
	}
	return false
}

// Addr helpers: addresses are uint32 in host order (a.b.c.d = a<<24|...).

// AddrFrom4 packs four bytes into a uint32.
func AddrFrom4(b [4]byte) uint32 { return binary.BigEndian.Uint32(b[:]) }

// IsMartianSource reports sources that are never forwarded (RFC 1812 5.3.7):
// 0/8, 127/8, 224/4 (multicast) and 240/4 incl. limited broadcast.
func IsMartianSource(a uint32) bool {
	switch a >> 24 {
	case 0, 127:
		return true
	}
	return a>>28 >= 0xe
}

// IsMulticast reports 224.0.0.0/4.
func IsMulticast(a uint32) bool { return a>>28 == 0xe }
