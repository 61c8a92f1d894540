package packet

import "encoding/binary"

// ICMP types and codes the router uses.
const (
	ICMPEchoReply      = 0
	ICMPUnreachable    = 3
	ICMPEchoRequest    = 8
	ICMPTimeExceeded   = 11
	ICMPParamProblem   = 12
	ICMPRedirect       = 5
	ICMPSourceQuench   = 4
	ICMPTimestamp      = 13
	ICMPTimestampReply = 14

	CodeNetUnreachable   = 0
	CodeHostUnreachable  = 1
	CodeProtoUnreachable = 2
	CodePortUnreachable  = 3
	CodeFragNeeded       = 4
	CodeAdminProhibited  = 13

	ICMPHdrLen = 8
	UDPHdrLen  = 8
	TCPMinLen  = 20
)

// Offsets of the transport header fields. TCP and UDP both begin with the
// source and destination ports.
const (
	L4SrcPortOff = 0
	L4DstPortOff = 2

	TCPSeqOff      = 4
	TCPAckOff      = 8
	TCPDataOffOff  = 12 // data offset (high nibble, in 32-bit words)
	TCPFlagsOff    = 13
	TCPWindowOff   = 14
	TCPChecksumOff = 16
	TCPOptionsOff  = 20

	UDPLengthOff   = 4
	UDPChecksumOff = 6

	ICMPTypeOff     = 0
	ICMPCodeOff     = 1
	ICMPChecksumOff = 2
	ICMPIDOff       = 4 // echo/timestamp identifier
	ICMPSeqOff      = 6
	ICMPMTUOff      = 6 // next-hop MTU of "fragmentation needed" (RFC 1191)
	ICMPQuoteOff    = 8 // errors: the quoted IP header and what follows
)

// ICMP is a view of an ICMP message:
//
//	| type | code | checksum | rest of header (4) | data...
//
// For echo and timestamp messages the rest of the header is identifier and
// sequence number; an error's data is the quoted IP header and at least
// eight bytes of what followed.
type ICMP []byte

func (m ICMP) Type() uint8 { return m[ICMPTypeOff] }
func (m ICMP) Code() uint8 { return m[ICMPCodeOff] }
func (m ICMP) Checksum() uint16 {
	return binary.BigEndian.Uint16(m[ICMPChecksumOff : ICMPChecksumOff+2])
}
func (m ICMP) SetChecksum(v uint16) {
	binary.BigEndian.PutUint16(m[ICMPChecksumOff:ICMPChecksumOff+2], v)
}
func (m ICMP) ID() uint16     { return binary.BigEndian.Uint16(m[ICMPIDOff : ICMPIDOff+2]) }
func (m ICMP) SetID(v uint16) { binary.BigEndian.PutUint16(m[ICMPIDOff:ICMPIDOff+2], v) }
func (m ICMP) Seq() uint16    { return binary.BigEndian.Uint16(m[ICMPSeqOff : ICMPSeqOff+2]) }

// Quote is the quoted packet of an ICMP error (from its IP header on; the
// caller checks the length).
func (m ICMP) Quote() IPv4 { return IPv4(m[ICMPQuoteOff:]) }

// ComputeChecksum recomputes and stores the checksum over the whole message.
func (m ICMP) ComputeChecksum() {
	m[ICMPChecksumOff], m[ICMPChecksumOff+1] = 0, 0
	m.SetChecksum(Checksum(m))
}

// IsICMPError reports the ICMP types that are error messages (RFC 1812 4.3.2.4):
// an error is never sent about one of these.
func IsICMPError(t uint8) bool {
	switch t {
	case ICMPUnreachable, ICMPSourceQuench, ICMPRedirect, ICMPTimeExceeded, ICMPParamProblem:
		return true
	}
	return false
}

// IsICMPQuery reports echo/timestamp requests and replies (identifier-bearing).
func IsICMPQuery(t uint8) bool {
	switch t {
	case ICMPEchoRequest, ICMPEchoReply, ICMPTimestamp, ICMPTimestampReply:
		return true
	}
	return false
}

// Ports returns the source and destination ports of a TCP or UDP header
// (both begin with them).
func Ports(l4 []byte) (src, dst uint16) {
	return binary.BigEndian.Uint16(l4[L4SrcPortOff : L4SrcPortOff+2]), binary.BigEndian.Uint16(l4[L4DstPortOff : L4DstPortOff+2])
}

// UDP is a view of a UDP header: | sport | dport | length | checksum |.
// A checksum of 0 means none (RFC 768).
type UDP []byte

func (u UDP) SrcPort() uint16      { return binary.BigEndian.Uint16(u[L4SrcPortOff : L4SrcPortOff+2]) }
func (u UDP) DstPort() uint16      { return binary.BigEndian.Uint16(u[L4DstPortOff : L4DstPortOff+2]) }
func (u UDP) Length() int          { return int(binary.BigEndian.Uint16(u[UDPLengthOff : UDPLengthOff+2])) }
func (u UDP) Checksum() uint16     { return binary.BigEndian.Uint16(u[UDPChecksumOff : UDPChecksumOff+2]) }
func (u UDP) SetSrcPort(v uint16)  { binary.BigEndian.PutUint16(u[L4SrcPortOff:L4SrcPortOff+2], v) }
func (u UDP) SetDstPort(v uint16)  { binary.BigEndian.PutUint16(u[L4DstPortOff:L4DstPortOff+2], v) }
func (u UDP) SetLength(v int)      { binary.BigEndian.PutUint16(u[UDPLengthOff:UDPLengthOff+2], uint16(v)) }
func (u UDP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(u[UDPChecksumOff:UDPChecksumOff+2], v) }

// TCP flags.
const (
	TCPFin = 0x01
	TCPSyn = 0x02
	TCPRst = 0x04
	TCPPsh = 0x08
	TCPAck = 0x10
	TCPUrg = 0x20
)

// TCP is a view of a TCP header:
//
//	 0                   1                   2                   3
//	|          Source Port          |       Destination Port        |  0
//	|                        Sequence Number                        |  4
//	|                    Acknowledgment Number                      |  8
//	|  Off  |  Rsvd |     Flags     |            Window             | 12
//	|           Checksum            |         Urgent Pointer        | 16
//	|                           Options                             | 20
type TCP []byte

func (t TCP) SrcPort() uint16      { return binary.BigEndian.Uint16(t[L4SrcPortOff : L4SrcPortOff+2]) }
func (t TCP) DstPort() uint16      { return binary.BigEndian.Uint16(t[L4DstPortOff : L4DstPortOff+2]) }
func (t TCP) Seq() uint32          { return binary.BigEndian.Uint32(t[TCPSeqOff : TCPSeqOff+4]) }
func (t TCP) Ack() uint32          { return binary.BigEndian.Uint32(t[TCPAckOff : TCPAckOff+4]) }
func (t TCP) DataOff() int         { return int(t[TCPDataOffOff]>>4) * 4 }
func (t TCP) Flags() uint8         { return t[TCPFlagsOff] }
func (t TCP) Window() uint16       { return binary.BigEndian.Uint16(t[TCPWindowOff : TCPWindowOff+2]) }
func (t TCP) Checksum() uint16     { return binary.BigEndian.Uint16(t[TCPChecksumOff : TCPChecksumOff+2]) }
func (t TCP) SetSrcPort(v uint16)  { binary.BigEndian.PutUint16(t[L4SrcPortOff:L4SrcPortOff+2], v) }
func (t TCP) SetDstPort(v uint16)  { binary.BigEndian.PutUint16(t[L4DstPortOff:L4DstPortOff+2], v) }
func (t TCP) SetSeq(v uint32)      { binary.BigEndian.PutUint32(t[TCPSeqOff:TCPSeqOff+4], v) }
func (t TCP) SetFlags(v uint8)     { t[TCPFlagsOff] = v }
func (t TCP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(t[TCPChecksumOff:TCPChecksumOff+2], v) }

// OptionIter walks the options of t: those the data offset covers, cut at
// the end of t.
func (t TCP) OptionIter() OptionIter {
	end := t.DataOff()
	if end > len(t) {
		end = len(t)
	}
	if end <= TCPOptionsOff {
		return OptionIter{}
	}
	return OptionIter{b: t[TCPOptionsOff:end]}
}
