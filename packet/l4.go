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

// ICMP is a view of an ICMP message:
//
//	| type | code | checksum | rest of header (4) | data...
type ICMP []byte

func (m ICMP) Type() uint8          { return m[0] }
func (m ICMP) Code() uint8          { return m[1] }
func (m ICMP) Checksum() uint16     { return binary.BigEndian.Uint16(m[2:4]) }
func (m ICMP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(m[2:4], v) }
func (m ICMP) ID() uint16           { return binary.BigEndian.Uint16(m[4:6]) }
func (m ICMP) SetID(v uint16)       { binary.BigEndian.PutUint16(m[4:6], v) }
func (m ICMP) Seq() uint16          { return binary.BigEndian.Uint16(m[6:8]) }
func (m ICMP) ComputeChecksum() {
	m[2], m[3] = 0, 0
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

// UDP is a view of a UDP header: | sport | dport | length | checksum |.
type UDP []byte

func (u UDP) SrcPort() uint16      { return binary.BigEndian.Uint16(u[0:2]) }
func (u UDP) DstPort() uint16      { return binary.BigEndian.Uint16(u[2:4]) }
func (u UDP) Length() int          { return int(binary.BigEndian.Uint16(u[4:6])) }
func (u UDP) Checksum() uint16     { return binary.BigEndian.Uint16(u[6:8]) }
func (u UDP) SetSrcPort(v uint16)  { binary.BigEndian.PutUint16(u[0:2], v) }
func (u UDP) SetDstPort(v uint16)  { binary.BigEndian.PutUint16(u[2:4], v) }
func (u UDP) SetLength(v int)      { binary.BigEndian.PutUint16(u[4:6], uint16(v)) }
func (u UDP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(u[6:8], v) }

// TCP flags.
const (
	TCPFin = 0x01
	TCPSyn = 0x02
	TCPRst = 0x04
	TCPPsh = 0x08
	TCPAck = 0x10
	TCPUrg = 0x20
)

// TCP is a view of a TCP header.
type TCP []byte

func (t TCP) SrcPort() uint16      { return binary.BigEndian.Uint16(t[0:2]) }
func (t TCP) DstPort() uint16      { return binary.BigEndian.Uint16(t[2:4]) }
func (t TCP) Seq() uint32          { return binary.BigEndian.Uint32(t[4:8]) }
func (t TCP) Ack() uint32          { return binary.BigEndian.Uint32(t[8:12]) }
func (t TCP) DataOff() int         { return int(t[12]>>4) * 4 }
func (t TCP) Flags() uint8         { return t[13] }
func (t TCP) Window() uint16       { return binary.BigEndian.Uint16(t[14:16]) }
func (t TCP) Checksum() uint16     { return binary.BigEndian.Uint16(t[16:18]) }
func (t TCP) SetSrcPort(v uint16)  { binary.BigEndian.PutUint16(t[0:2], v) }
func (t TCP) SetDstPort(v uint16)  { binary.BigEndian.PutUint16(t[2:4], v) }
func (t TCP) SetSeq(v uint32)      { binary.BigEndian.PutUint32(t[4:8], v) }
func (t TCP) SetFlags(v uint8)     { t[13] = v }
func (t TCP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(t[16:18], v) }
