package nat

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"vrouter/config"
	"vrouter/packet"
)

// Tuple is one direction of a session as shown to users. For ICMP queries
// the identifier is shown as the port of the side that chose it.
type Tuple struct {
	Src, Dst netip.AddrPort
}

func (t Tuple) String() string { return t.Src.String() + " -> " + t.Dst.String() }

// SessionInfo describes one session for `show conntrack`.
type SessionInfo struct {
	Proto   uint8
	Orig    Tuple // as the initiator's packets arrive
	Reply   Tuple // as the responder's packets arrive
	State   string
	NAT     string // "snat", "dnat", "snat+dnat" or "none" (tracking only: a filter accepted the flow)
	Timeout time.Duration
	Packets uint64
	Bytes   uint64
}

func protoName(p uint8) string {
	switch p {
	case packet.ProtoTCP:
		return "tcp"
	case packet.ProtoUDP:
		return "udp"
	case packet.ProtoICMP:
		return "icmp"
	case packet.ProtoICMPv6:
		return "icmpv6"
	}
	return fmt.Sprint(p)
}

func (s SessionInfo) String() string {
	return fmt.Sprintf("%-4s %s  reply %s  %s %s timeout %s packets %d bytes %d",
		protoName(s.Proto), s.Orig, s.Reply, s.State, s.NAT, s.Timeout.Truncate(time.Second), s.Packets, s.Bytes)
}

func (w *words) touches(a uint32) bool {
	return w.oSrc() == a || w.oDst() == a || w.rSrc() == a || w.rDst() == a
}

// scan calls f for every live session below hwm (each read consistently;
// no lock needed, but the caller holds n.mu when f deletes).
func (n *NAT) scan(hwm uint32, f func(idx uint32, s *session, w *words, st uint64)) {
	t := n.t
	var w words
	for idx := uint32(0); idx < hwm; idx++ {
		st, ok, _ := t.read(idx, &w)
		if ok {
			f(idx, &t.slab[idx], &w, st)
		}
	}
}

func ap(a uint32, p uint16) netip.AddrPort { return netip.AddrPortFrom(packet.Addr(a), p) }

// Sessions lists the sessions that involve addr in any of their four
// addresses (all sessions when addr is the zero Addr). Timeouts are relative
// to the time last passed to Reap or of the last session creation.
func (n *NAT) Sessions(filter netip.Addr) []SessionInfo {
	var fa uint32
	if filter.IsValid() && filter.Unmap().Is4() {
		fa = packet.U32(filter.Unmap())
	}
	now := n.lastNow.Load()
	var out []SessionInfo
	v6 := filter.IsValid() && !filter.Unmap().Is4()
	n.scan(n.hwm(), func(_ uint32, s *session, w *words, st uint64) {
		if v6 || filter.IsValid() && !w.touches(fa) {
			return
		}
		si := SessionInfo{
			Proto:   w.proto(),
			Orig:    Tuple{ap(w.oSrc(), w.oSport()), ap(w.oDst(), w.oDport())},
			Reply:   Tuple{ap(w.rSrc(), w.rSport()), ap(w.rDst(), w.rDport())},
			Timeout: time.Duration(s.expires.Load() - now),
			Packets: s.pkts.Load(),
			Bytes:   s.bytes.Load(),
		}
		if si.Timeout < 0 {
			si.Timeout = 0
		}
		snat := w.oSrc() != w.rDst() || w.oSport() != w.rDport()
		dnat := w.oDst() != w.rSrc() || w.oDport() != w.rSport()
		switch {
		case w.origin() == oTrack:
			si.NAT = "none"
		case snat && dnat:
			si.NAT = "snat+dnat"
		case dnat:
			si.NAT = "dnat"
		default:
			si.NAT = "snat"
		}
		if w.proto() == packet.ProtoTCP {
			si.State = tcpStateNames[st&stStateMask]
		} else if st&stReplied != 0 {
			si.State = "REPLIED"
		} else {
			si.State = "UNREPLIED"
		}
		out = append(out, si)
	})
	if !filter.IsValid() || v6 {
		out = n.sessions6(filter, now, out)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Orig, out[j].Orig
		if a.Src != b.Src {
			return a.Src.Addr().Less(b.Src.Addr()) || a.Src.Addr() == b.Src.Addr() && a.Src.Port() < b.Src.Port()
		}
		return a.Dst.Addr().Less(b.Dst.Addr()) || a.Dst.Addr() == b.Dst.Addr() && a.Dst.Port() < b.Dst.Port()
	})
	return out
}

// Clear deletes the sessions that involve addr (all when addr is the zero
// Addr) and returns how many.
func (n *NAT) Clear(filter netip.Addr) int {
	var fa uint32
	if filter.IsValid() && filter.Unmap().Is4() {
		fa = packet.U32(filter.Unmap())
	}
	c := 0
	if !filter.IsValid() || filter.Unmap().Is4() {
		n.mu.Lock()
		n.scan(n.t.hwm, func(idx uint32, _ *session, w *words, _ uint64) {
			if !filter.IsValid() || w.touches(fa) {
				n.destroy(idx)
				c++
			}
		})
		n.mu.Unlock()
	}
	if !filter.IsValid() || !filter.Unmap().Is4() {
		c += n.clear6(filter)
	}
	n.flushed.Add(uint64(c))
	return c
}

// PoolUse is the port use of one external address.
type PoolUse struct {
	Addr      netip.Addr
	Proto     string
	Used      int // ports held by mappings
	Size      int // ports of the dynamic range (1024 and above)
	Exhausted uint64
}

// SNATInfo is one [[nat.snat]] rule.
type SNATInfo struct {
	Rule     config.SNAT
	Sessions int
	Pools    []PoolUse
}

// FloatingInfo is one [[nat.floating]].
type FloatingInfo struct {
	Rule     config.Floating
	Sessions int
}

// ForwardInfo is one [[nat.forward]].
type ForwardInfo struct {
	Rule     config.Forward
	Sessions int
	Backends []int // sessions per internal address
}

// RulesInfo is the content of `show nat`.
type RulesInfo struct {
	Filtering string
	SNAT      []SNATInfo
	Floating  []FloatingInfo
	Forward   []ForwardInfo
	Sessions  int
	Max       int
}

// Rules describes the NAT rules with their session counts and port use.
func (n *NAT) Rules() RulesInfo {
	r := n.rules.Load()
	ri := RulesInfo{Filtering: config.FilteringAddressDep, Max: int(n.t.max)}
	if r.eif {
		ri.Filtering = config.FilteringEndpointIndep
	}
	ri.SNAT = make([]SNATInfo, len(r.snat))
	ri.Floating = make([]FloatingInfo, len(r.floats))
	ri.Forward = make([]ForwardInfo, len(r.fwds))
	for i := range r.fwds {
		ri.Forward[i] = ForwardInfo{Rule: r.fwds[i].spec, Backends: make([]int, len(r.fwds[i].backends))}
	}
	n.scan(n.hwm(), func(_ uint32, _ *session, w *words, _ uint64) {
		ri.Sessions++
		switch w.origin() {
		case oSNAT, oSNATIn:
			for i := range r.snat {
				if r.snat[i].out == w.outNet() && r.snat[i].contains(w.oSrc()) {
					ri.SNAT[i].Sessions++
					break
				}
			}
		case oFloatOut:
			if fi, ok := r.floatByInt[w.oSrc()]; ok {
				ri.Floating[fi].Sessions++
			}
		case oFloatIn:
			if fi, ok := r.floatByExt[w.oDst()]; ok {
				ri.Floating[fi].Sessions++
			}
		case oForward:
			if fi, ok := r.fwdByExt[r.fwdKey(w.proto(), w.oDst(), w.oDport())]; ok {
				ri.Forward[fi].Sessions++
				be := uint64(w.rSrc())<<16 | uint64(w.rSport())
				for j, b := range r.fwds[fi].backends {
					if b == be {
						ri.Forward[fi].Backends[j]++
					}
				}
			}
		}
	})
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := range r.snat {
		sr := &r.snat[i]
		ri.SNAT[i].Rule = sr.spec
		lo, hi := sr.portRange(1024)
		for a := sr.first; ; a++ {
			for _, proto := range []uint8{packet.ProtoTCP, packet.ProtoUDP, packet.ProtoICMP} {
				pu := PoolUse{Addr: packet.Addr(a), Proto: protoName(proto), Size: int(hi) - int(lo) + 1}
				if p := n.pools[poolKey(a, proto)]; p != nil {
					pu.Used, pu.Exhausted = p.inUse, p.exhausted
				}
				ri.SNAT[i].Pools = append(ri.SNAT[i].Pools, pu)
			}
			if a == sr.last || len(ri.SNAT[i].Pools) >= 3*256 {
				break
			}
		}
	}
	for i := range r.floats {
		ri.Floating[i].Rule = r.floats[i].spec
	}
	return ri
}

// String renders ri as the text of `show nat`.
func (ri RulesInfo) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sessions %d of %d, filtering %s\n", ri.Sessions, ri.Max, ri.Filtering)
	for _, s := range ri.SNAT {
		fmt.Fprintf(&b, "snat %s -> %s to %s-%s ports %d-%d: %d sessions\n", s.Rule.Source, s.Rule.Out,
			s.Rule.To.First, s.Rule.To.Last, s.Rule.Ports.Lo, s.Rule.Ports.Hi, s.Sessions)
		for _, p := range s.Pools {
			if p.Used == 0 && p.Exhausted == 0 {
				continue
			}
			fmt.Fprintf(&b, "  %s/%s: %d of %d ports used, %d refused (out of ports)\n", p.Addr, p.Proto, p.Used, p.Size, p.Exhausted)
		}
	}
	for _, f := range ri.Floating {
		fmt.Fprintf(&b, "floating %s <-> %s: %d sessions\n", f.Rule.External, f.Rule.Internal, f.Sessions)
	}
	for _, f := range ri.Forward {
		fmt.Fprintf(&b, "forward %s %s ->", f.Rule.Proto, f.Rule.External)
		for i, in := range f.Rule.Internal {
			fmt.Fprintf(&b, " %s (%d)", in, f.Backends[i])
		}
		fmt.Fprintf(&b, ": %d sessions\n", f.Sessions)
	}
	return b.String()
}

// hwm is the number of slab slots ever used.
func (n *NAT) hwm() uint32 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.t.hwm
}
