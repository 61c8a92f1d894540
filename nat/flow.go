package nat

import (
	"encoding/binary"

	"vrouter/packet"
)

// Port kinds of a flow.
const (
	ptNone    = iota // no ports (other protocols, ICMP other than query)
	ptPorts          // TCP / UDP
	ptICMPReq        // ICMP echo/timestamp request: the id is the source port
	ptICMPRep        // ICMP echo/timestamp reply: the id is the destination port
)

// flow is the NAT view of a packet (first fragment or unfragmented).
type flow struct {
	src, dst     uint32
	sport, dport uint16
	proto        uint8
	pt           uint8
	l4           []byte
}

func (f *flow) key() (a, b uint64) { return keyWords(f.src, f.dst, f.sport, f.dport, f.proto) }
func (f *flow) rkey() (a, b uint64) {
	return keyWords(f.dst, f.src, f.dport, f.sport, f.proto)
}

// parseFlow fills f from p (not a non-first fragment). It fails only when a
// TCP/UDP/ICMP query header is too short to translate.
func parseFlow(p packet.IPv4, f *flow) bool {
	f.src, f.dst, f.proto = p.Src(), p.Dst(), p.Proto()
	f.sport, f.dport, f.pt = 0, 0, ptNone
	ihl := p.IHL()
	if ihl > len(p) {
		return false
	}
	f.l4 = p[ihl:]
	switch f.proto {
	case packet.ProtoTCP:
		if len(f.l4) < packet.TCPMinLen {
			return false
		}
		f.pt = ptPorts
	case packet.ProtoUDP:
		if len(f.l4) < packet.UDPHdrLen {
			return false
		}
		f.pt = ptPorts
	case packet.ProtoICMP:
		if len(f.l4) < packet.ICMPHdrLen {
			return len(f.l4) >= 1 && !packet.IsICMPQuery(f.l4[0])
		}
		id := binary.BigEndian.Uint16(f.l4[4:6])
		switch f.l4[0] {
		case packet.ICMPEchoRequest, packet.ICMPTimestamp:
			f.pt, f.sport = ptICMPReq, id
		case packet.ICMPEchoReply, packet.ICMPTimestampReply:
			f.pt, f.dport = ptICMPRep, id
		}
		return true
	default:
		return true
	}
	f.sport = binary.BigEndian.Uint16(f.l4[0:2])
	f.dport = binary.BigEndian.Uint16(f.l4[2:4])
	return true
}

func isSYN(f *flow) bool {
	return f.l4[13]&(packet.TCPSyn|packet.TCPAck|packet.TCPRst) == packet.TCPSyn
}

// setAddr rewrites the IPv4 address at off (12 src, 16 dst) with checksums:
// the header's, and the TCP/UDP pseudo-header sum when l4 holds the header
// (nil for non-first fragments). A UDP checksum of 0 stays 0.
func setAddr(p packet.IPv4, proto uint8, l4 []byte, off int, ip uint32) {
	old := binary.BigEndian.Uint32(p[off:])
	if old == ip {
		return
	}
	binary.BigEndian.PutUint32(p[off:], ip)
	p.SetChecksum(packet.Update32(p.Checksum(), old, ip))
	if l4 == nil {
		return
	}
	switch proto {
	case packet.ProtoTCP:
		if len(l4) >= 18 {
			c := binary.BigEndian.Uint16(l4[16:])
			binary.BigEndian.PutUint16(l4[16:], packet.Update32(c, old, ip))
		}
	case packet.ProtoUDP:
		if len(l4) >= 8 {
			if c := binary.BigEndian.Uint16(l4[6:]); c != 0 {
				c = packet.Update32(c, old, ip)
				if c == 0 {
					c = 0xffff
				}
				binary.BigEndian.PutUint16(l4[6:], c)
			}
		}
	}
}

// setPort rewrites the source (dst=false) or destination port of f's packet;
// for ICMP queries the identifier when it plays that role.
func setPort(f *flow, dst bool, port uint16) {
	l4 := f.l4
	switch f.pt {
	case ptPorts:
		off := 0
		if dst {
			off = 2
		}
		old := binary.BigEndian.Uint16(l4[off:])
		if old == port {
			return
		}
		binary.BigEndian.PutUint16(l4[off:], port)
		if f.proto == packet.ProtoTCP {
			c := binary.BigEndian.Uint16(l4[16:])
			binary.BigEndian.PutUint16(l4[16:], packet.Update16(c, old, port))
		} else if c := binary.BigEndian.Uint16(l4[6:]); c != 0 {
			c = packet.Update16(c, old, port)
			if c == 0 {
				c = 0xffff
			}
			binary.BigEndian.PutUint16(l4[6:], c)
		}
	case ptICMPReq, ptICMPRep:
		if (f.pt == ptICMPRep) != dst {
			return
		}
		old := binary.BigEndian.Uint16(l4[4:])
		if old == port {
			return
		}
		binary.BigEndian.PutUint16(l4[4:], port)
		c := binary.BigEndian.Uint16(l4[2:])
		binary.BigEndian.PutUint16(l4[2:], packet.Update16(c, old, port))
	}
}

func setDst(p packet.IPv4, f *flow, ip uint32, port uint16) {
	setAddr(p, f.proto, f.l4, 16, ip)
	setPort(f, true, port)
}

func setSrc(p packet.IPv4, f *flow, ip uint32, port uint16) {
	setAddr(p, f.proto, f.l4, 12, ip)
	setPort(f, false, port)
}
