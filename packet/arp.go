package packet

import "encoding/binary"

// ARP operations.
const (
	ARPRequest = 1
	ARPReply   = 2
	ARPLen     = 28
)

// ARP is a view of an Ethernet/IPv4 ARP packet (RFC 826):
//
//	htype(2) ptype(2) hlen(1) plen(1) op(2) sha(6) spa(4) tha(6) tpa(4)
type ARP []byte

// ValidARP reports whether b is an Ethernet/IPv4 ARP packet.
func ValidARP(b []byte) bool {
	return len(b) >= ARPLen && binary.BigEndian.Uint16(b[0:2]) == 1 &&
		binary.BigEndian.Uint16(b[2:4]) == EtherTypeIPv4 && b[4] == 6 && b[5] == 4
}

func (a ARP) Op() uint16         { return binary.BigEndian.Uint16(a[6:8]) }
func (a ARP) SenderMAC() (m MAC) { copy(m[:], a[8:14]); return }
func (a ARP) SenderIP() uint32   { return binary.BigEndian.Uint32(a[14:18]) }
func (a ARP) TargetMAC() (m MAC) { copy(m[:], a[18:24]); return }
func (a ARP) TargetIP() uint32   { return binary.BigEndian.Uint32(a[24:28]) }

// PutARP writes an Ethernet/IPv4 ARP packet into b (28 bytes).
func PutARP(b []byte, op uint16, sha MAC, spa uint32, tha MAC, tpa uint32) {
	binary.BigEndian.PutUint16(b[0:2], 1)
	binary.BigEndian.PutUint16(b[2:4], EtherTypeIPv4)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:8], op)
	copy(b[8:14], sha[:])
	binary.BigEndian.PutUint32(b[14:18], spa)
	copy(b[18:24], tha[:])
	binary.BigEndian.PutUint32(b[24:28], tpa)
}
