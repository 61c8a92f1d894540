package nat

import (
	"encoding/binary"

	"vrouter/packet"
)

// The NAT's view of a packet (flow) and the header rewrites with their
// incremental checksum updates (RFC 1624).

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
	// partial: the TCP/UDP checksum field holds only the pseudo-header sum
	// (CHECKSUM_PARTIAL: a GSO super-frame or an offloaded checksum that
	// the kernel or the peer completes). Address rewrites then update it
	// as a plain sum, and port rewrites leave it alone: the ports are
	// summed with the rest of the segment when the checksum is completed.
	partial bool
}

func (f *flow) key() (a, b uint64) { return keyWords(f.src, f.dst, f.sport, f.dport, f.proto) }
func (f *flow) rkey() (a, b uint64) {
	return keyWords(f.dst, f.src, f.dport, f.sport, f.proto)
}

// parseFlow fills f from p (not a non-first fragment). It fails only when a
// TCP/UDP/ICMP query header is too short to translate.
func parseFlow(p packet.IPv4, f *flow) bool {
	f.src, f.dst, f.proto = p.Src(), p.Dst(), p.Proto()
	f.sport, f.dport, f.pt, f.partial = 0, 0, ptNone, false
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
	case packet.ProtoUDP:
		if len(f.l4) < packet.UDPHdrLen {
			return false
		}
	case packet.ProtoICMP:
		m := packet.ICMP(f.l4)
		if len(m) < packet.ICMPHdrLen {
			return len(m) >= 1 && !packet.IsICMPQuery(m.Type())
		}
		switch m.Type() {
		case packet.ICMPEchoRequest, packet.ICMPTimestamp:
			f.pt, f.sport = ptICMPReq, m.ID()
		case packet.ICMPEchoReply, packet.ICMPTimestampReply:
			f.pt, f.dport = ptICMPRep, m.ID()
		}
		return true
	default:
		return true
	}
	f.pt = ptPorts
	f.sport, f.dport = packet.Ports(f.l4)
	return true
}

// isICMPError reports whether p (not a non-first fragment) is an ICMP
// error with at least its header.
func isICMPError(p packet.IPv4) bool {
	ihl := p.IHL()
	return p.Proto() == packet.ProtoICMP && len(p) >= ihl+packet.ICMPHdrLen && packet.IsICMPError(packet.ICMP(p[ihl:]).Type())
}

// isSYN reports a TCP segment that opens a connection (SYN without ACK/RST).
func isSYN(f *flow) bool {
	return packet.TCP(f.l4).Flags()&(packet.TCPSyn|packet.TCPAck|packet.TCPRst) == packet.TCPSyn
}

// udpSum is a UDP checksum after an incremental update: 0 means "no
// checksum" on the wire, so a computed 0 is sent as 0xffff (RFC 768).
func udpSum(c uint16) uint16 {
	if c == 0 {
		return 0xffff
	}
	return c
}

// setAddr rewrites the IPv4 address at off (packet.IPv4SrcOff or
// packet.IPv4DstOff) with checksums: the header's, and the TCP/UDP
// pseudo-header sum when l4 holds the header (nil for non-first fragments).
// A UDP checksum of 0 stays 0. With partial (see flow.partial) the L4 field
// is a plain pseudo-header sum: it gets new-old where a checksum gets old-new.
func setAddr(p packet.IPv4, proto uint8, l4 []byte, off int, ip uint32, partial bool) {
	old := binary.BigEndian.Uint32(p[off:])
	if old == ip {
		return
	}
	binary.BigEndian.PutUint32(p[off:], ip)
	p.SetChecksum(packet.Update32(p.Checksum(), old, ip))
	if l4 == nil {
		return
	}
	if partial {
		if proto == packet.ProtoTCP || proto == packet.ProtoUDP {
			o := packet.TCPChecksumOff
			if proto == packet.ProtoUDP {
				o = packet.UDPChecksumOff
			}
			if len(l4) >= o+2 {
				c := binary.BigEndian.Uint16(l4[o:])
				binary.BigEndian.PutUint16(l4[o:], packet.Update32(c, ip, old))
			}
		}
		return
	}
	switch proto {
	case packet.ProtoTCP:
		if t := packet.TCP(l4); len(t) >= packet.TCPChecksumOff+2 {
			t.SetChecksum(packet.Update32(t.Checksum(), old, ip))
		}
	case packet.ProtoUDP:
		if u := packet.UDP(l4); len(u) >= packet.UDPHdrLen {
			if c := u.Checksum(); c != 0 {
				u.SetChecksum(udpSum(packet.Update32(c, old, ip)))
			}
		}
	}
}

// setPort rewrites the source (dst=false) or destination port of f's packet;
// for ICMP queries the identifier when it plays that role.
func setPort(f *flow, dst bool, port uint16) {
	switch f.pt {
	case ptPorts:
		off := packet.L4SrcPortOff
		if dst {
			off = packet.L4DstPortOff
		}
		l4 := f.l4
		old := binary.BigEndian.Uint16(l4[off:])
		if old == port {
			return
		}
		binary.BigEndian.PutUint16(l4[off:], port)
		if f.partial {
			return // the port is summed when the checksum is completed
		}
		if f.proto == packet.ProtoTCP {
			t := packet.TCP(l4)
			t.SetChecksum(packet.Update16(t.Checksum(), old, port))
		} else if u := packet.UDP(l4); u.Checksum() != 0 {
			u.SetChecksum(udpSum(packet.Update16(u.Checksum(), old, port)))
		}
	case ptICMPReq, ptICMPRep:
		if (f.pt == ptICMPRep) != dst {
			return
		}
		m := packet.ICMP(f.l4)
		old := m.ID()
		if old == port {
			return
		}
		m.SetID(port)
		m.SetChecksum(packet.Update16(m.Checksum(), old, port))
	}
}

func setDst(p packet.IPv4, f *flow, ip uint32, port uint16) {
	setAddr(p, f.proto, f.l4, packet.IPv4DstOff, ip, f.partial)
	setPort(f, true, port)
}

func setSrc(p packet.IPv4, f *flow, ip uint32, port uint16) {
	setAddr(p, f.proto, f.l4, packet.IPv4SrcOff, ip, f.partial)
	setPort(f, false, port)
}
