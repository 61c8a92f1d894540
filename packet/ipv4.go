package packet

import "encoding/binary"

// IPv4 protocol numbers.
const (
	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17

	IPv4MinLen = 20
)

// Offsets of the IPv4 header fields (the figure below).
const (
	IPv4VerIHLOff    = 0
	IPv4TOSOff       = 1
	IPv4TotalLenOff  = 2
	IPv4IDOff        = 4
	IPv4FlagsFragOff = 6
	IPv4TTLOff       = 8
	IPv4ProtoOff     = 9
	IPv4ChecksumOff  = 10
	IPv4SrcOff       = 12
	IPv4DstOff       = 16
	IPv4OptionsOff   = 20
)

// Bits of the flags/fragment offset word (IPv4.FlagsFrag).
const (
	IPv4DF          = 0x4000 // don't fragment
	IPv4MF          = 0x2000 // more fragments
	IPv4FragOffMask = 0x1fff // fragment offset, in 8-byte units
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

func (p IPv4) Version() uint8 { return p[IPv4VerIHLOff] >> 4 }
func (p IPv4) IHL() int       { return int(p[IPv4VerIHLOff]&0x0f) * 4 }
func (p IPv4) TOS() uint8     { return p[IPv4TOSOff] }
func (p IPv4) TotalLen() int {
	return int(binary.BigEndian.Uint16(p[IPv4TotalLenOff : IPv4TotalLenOff+2]))
}
func (p IPv4) ID() uint16 { return binary.BigEndian.Uint16(p[IPv4IDOff : IPv4IDOff+2]) }
func (p IPv4) FlagsFrag() uint16 {
	return binary.BigEndian.Uint16(p[IPv4FlagsFragOff : IPv4FlagsFragOff+2])
}
func (p IPv4) DF() bool         { return p[IPv4FlagsFragOff]&(IPv4DF>>8) != 0 }
func (p IPv4) MF() bool         { return p[IPv4FlagsFragOff]&(IPv4MF>>8) != 0 }
func (p IPv4) FragOff() int     { return int(p.FlagsFrag()&IPv4FragOffMask) * 8 }
func (p IPv4) IsFragment() bool { return p.FlagsFrag()&(IPv4MF|IPv4FragOffMask) != 0 }
func (p IPv4) TTL() uint8       { return p[IPv4TTLOff] }
func (p IPv4) Proto() uint8     { return p[IPv4ProtoOff] }
func (p IPv4) Checksum() uint16 {
	return binary.BigEndian.Uint16(p[IPv4ChecksumOff : IPv4ChecksumOff+2])
}
func (p IPv4) Src() uint32     { return binary.BigEndian.Uint32(p[IPv4SrcOff : IPv4SrcOff+4]) }
func (p IPv4) Dst() uint32     { return binary.BigEndian.Uint32(p[IPv4DstOff : IPv4DstOff+4]) }
func (p IPv4) Options() []byte { return p[IPv4OptionsOff:p.IHL()] }
func (p IPv4) Payload() []byte { return p[p.IHL():p.TotalLen()] }

func (p IPv4) SetTotalLen(n int) {
	binary.BigEndian.PutUint16(p[IPv4TotalLenOff:IPv4TotalLenOff+2], uint16(n))
}
func (p IPv4) SetID(v uint16) { binary.BigEndian.PutUint16(p[IPv4IDOff:IPv4IDOff+2], v) }
func (p IPv4) SetFlagsFrag(v uint16) {
	binary.BigEndian.PutUint16(p[IPv4FlagsFragOff:IPv4FlagsFragOff+2], v)
}
func (p IPv4) SetTTL(v uint8)   { p[IPv4TTLOff] = v }
func (p IPv4) SetProto(v uint8) { p[IPv4ProtoOff] = v }
func (p IPv4) SetChecksum(v uint16) {
	binary.BigEndian.PutUint16(p[IPv4ChecksumOff:IPv4ChecksumOff+2], v)
}
func (p IPv4) SetSrc(a uint32) { binary.BigEndian.PutUint32(p[IPv4SrcOff:IPv4SrcOff+4], a) }
func (p IPv4) SetDst(a uint32) { binary.BigEndian.PutUint32(p[IPv4DstOff:IPv4DstOff+4], a) }

// IsFirstFragment reports a first fragment of several (MF set, offset 0).
func (p IPv4) IsFirstFragment() bool { return p.FlagsFrag()&(IPv4MF|IPv4FragOffMask) == IPv4MF }

// HeaderChecksumOK verifies the header checksum (the sum over the header,
// checksum included, folds to 0xffff).
func (p IPv4) HeaderChecksumOK() bool { return Fold(Sum(p[:p.IHL()], 0)) == 0xffff }

// ComputeChecksum recomputes and stores the header checksum.
func (p IPv4) ComputeChecksum() {
	p[IPv4ChecksumOff], p[IPv4ChecksumOff+1] = 0, 0
	p.SetChecksum(Checksum(p[:p.IHL()]))
}

// DecTTL decrements the TTL and updates the checksum incrementally (RFC 1624).
func (p IPv4) DecTTL() {
	old := binary.BigEndian.Uint16(p[IPv4TTLOff : IPv4TTLOff+2]) // TTL and protocol
	p[IPv4TTLOff]--
	p.SetChecksum(Update16(p.Checksum(), old, binary.BigEndian.Uint16(p[IPv4TTLOff:IPv4TTLOff+2])))
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

// HasSourceRoute reports whether the options carry LSRR (131) or SSRR (137)
// before the end of the list, malformed or not.
func (p IPv4) HasSourceRoute() bool {
	it := p.OptionIter()
	for {
		o, ok := it.Next()
		if !ok {
			o = it.Malformed()
			return len(o) > 0 && (o[0] == OptLSRR || o[0] == OptSSRR)
		}
		if o[0] == OptLSRR || o[0] == OptSSRR {
			return true
		}
	}
}

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
