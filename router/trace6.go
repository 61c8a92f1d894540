package router

import (
	"fmt"
	"net/netip"

	"vrouter/fib"
	"vrouter/fib6"
	"vrouter/packet"
)

// The IPv6 stages' trace records: one record type (stage ipv6) whose kind
// says which stage wrote it, so that the trace ring stays pointer-free.

const (
	ip6Header = iota
	ip6FIB
	ip6Neigh
	ip6ICMP
)

type ip6Record struct {
	kind     uint8
	a, b     [16]byte // header: src, dst; fib: gateway; neigh: next hop; icmp: destination
	proto    uint8    // header: next header; fib: kind; icmp: type
	hop      uint8    // header: hop limit; icmp: code
	net      uint16
	mac      packet.MAC
	param    uint32
	plen     uint16
	resolved bool
	queued   bool
	request  bool
}

func (w *worker) trIPv6(ip packet.IPv6) {
	if p := w.tp; p != nil {
		if e := p.add(tsIPv6); e != nil {
			e.ip6 = ip6Record{kind: ip6Header, a: ip.Src(), b: ip.Dst(), proto: ip.NextHeader(), hop: ip.HopLimit(), plen: uint16(ip.PayloadLen())}
		}
	}
}

func (w *worker) trFIB6(nh fib6.NextHop) {
	if p := w.tp; p != nil {
		if e := p.add(tsIPv6); e != nil {
			e.ip6 = ip6Record{kind: ip6FIB, a: nh.Gateway, proto: uint8(nh.Kind), net: nh.Network}
		}
	}
}

func (w *worker) trNeigh6(net uint16, a [16]byte, mac packet.MAC, resolved, queued, request bool) {
	if p := w.tp; p != nil {
		if e := p.add(tsIPv6); e != nil {
			e.ip6 = ip6Record{kind: ip6Neigh, a: a, net: net, mac: mac, resolved: resolved, queued: queued, request: request}
		}
	}
}

func (w *worker) trICMP6(typ, code uint8, to [16]byte, param uint32) {
	if p := w.tp; p != nil {
		if e := p.add(tsIPv6); e != nil {
			e.ip6 = ip6Record{kind: ip6ICMP, a: to, proto: typ, hop: code, param: param}
		}
	}
}

func (r *ip6Record) format(n traceNames) string {
	a, b := netip.AddrFrom16(r.a), netip.AddrFrom16(r.b)
	switch r.kind {
	case ip6Header:
		return fmt.Sprintf("%s > %s next-header %d hop-limit %d payload %d", a, b, r.proto, r.hop, r.plen)
	case ip6FIB:
		k := fib.Kind(r.proto)
		switch k {
		case fib.KindConnected:
			return fmt.Sprintf("fib6 %s network %s", k, n.net(uint32(r.net)))
		case fib.KindGateway:
			return fmt.Sprintf("fib6 %s network %s via %s", k, n.net(uint32(r.net)), a)
		}
		return "fib6 " + k.String()
	case ip6Neigh:
		if r.resolved {
			return fmt.Sprintf("neighbour %s on %s is %s", a, n.net(uint32(r.net)), r.mac)
		}
		s := fmt.Sprintf("neighbour %s on %s unresolved: ", a, n.net(uint32(r.net)))
		if r.queued {
			s += "queued"
		} else {
			s += "queue full"
		}
		if r.request {
			s += ", neighbour solicitation sent"
		}
		return s
	case ip6ICMP:
		s := fmt.Sprintf("sent icmpv6 %s to %s", icmp6Name(r.proto, r.hop), a)
		if r.proto == packet.ICMPv6PacketTooBig {
			s += fmt.Sprintf(" mtu %d", r.param)
		}
		if r.proto == packet.ICMPv6ParamProblem {
			s += fmt.Sprintf(" pointer %d", r.param)
		}
		return s
	}
	return ""
}

func icmp6Name(typ, code uint8) string {
	switch typ {
	case packet.ICMPv6DstUnreach:
		switch code {
		case packet.CodeV6NoRoute:
			return "unreachable (no route)"
		case packet.CodeV6AdminProhibited:
			return "unreachable (administratively prohibited)"
		case packet.CodeV6BeyondScope:
			return "unreachable (beyond scope of source)"
		case packet.CodeV6AddrUnreachable:
			return "unreachable (address)"
		case packet.CodeV6PortUnreachable:
			return "unreachable (port)"
		}
		return fmt.Sprintf("unreachable (code %d)", code)
	case packet.ICMPv6PacketTooBig:
		return "packet too big"
	case packet.ICMPv6TimeExceeded:
		return "time exceeded (hop limit)"
	case packet.ICMPv6ParamProblem:
		return fmt.Sprintf("parameter problem (code %d)", code)
	}
	return fmt.Sprintf("type %d code %d", typ, code)
}
