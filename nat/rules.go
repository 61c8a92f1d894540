package nat

import (
	"fmt"
	"net/netip"
	"strings"

	"vrouter/config"
	"vrouter/packet"
)

// The compiled NAT rules (Compile), their lookups, and Commit, which makes
// new rules those of record and flushes the sessions they no longer allow.

type snatRule struct {
	spec        config.SNAT
	base, mask  uint32
	out         uint16
	first, last uint32
	lo, hi      uint16
}

func (r *snatRule) contains(a uint32) bool { return a&r.mask == r.base }

// pair gives the external address of inside host a (paired pooling: always
// the same address for a host, chosen by hash).
func (r *snatRule) pair(a uint32) uint32 {
	n := uint64(r.last - r.first + 1)
	h := hashKey(uint64(a), 0x5eed)
	return r.first + uint32(h%n)
}

type floatRule struct {
	spec     config.Floating
	ext, int uint32
	extNet   uint16 // network holding ext (Local when none)
}

type fwdRule struct {
	spec     config.Forward
	proto    uint8
	ext      uint32
	port     uint16
	backends []uint64 // ip<<16 | port
	net      uint16
}

// Address kinds in rules.addrs.
const (
	aSNAT  = 1
	aFloat = 2
	aFwd   = 4
)

// Rules is one compiled NAT configuration, immutable once compiled. The
// router holds the Rules of each of its snapshots and hands them to its
// workers with Worker.Use; the NAT keeps the committed ones (Commit) for the
// control plane (Reap, show nat, flushes).
type Rules struct {
	eif        bool // endpoint-independent filtering
	snat       []snatRule
	floats     []floatRule
	floatByExt map[uint32]int32
	floatByInt map[uint32]int32
	fwds       []fwdRule
	fwdByExt   map[uint64]int32 // proto<<48 | ip<<16 | port
	backends   map[uint32]bool
	addrs      map[uint32]uint8 // every NAT external address
	own        map[uint32]bool  // the router's own addresses
	// hostOwn: the router's addresses on networks with a host interface;
	// a packet to one of them that no mapping takes is the kernel's (Pass).
	hostOwn map[uint32]bool
	ext     []ExternalAddr
	max     int // cfg.Conntrack.Max (only New uses it; Commit notes a change)

	tcpEst, tcpTrans, udp, icmp int64
	frag                        int64 // [conntrack] fragment_timeout (New and Commit give it to the fragment tables)
}

// Active reports whether r has any SNAT, floating or forward rule (the
// router skips the NAT stages otherwise).
func (r *Rules) Active() bool {
	return len(r.snat)+len(r.floats)+len(r.fwds) > 0
}

// ExternalAddrs lists every address the router must answer ARP for on
// behalf of NAT (SNAT `to` addresses, floating externals, forward externals)
// with the network slot of each (Local when no network holds it).
func (r *Rules) ExternalAddrs() []ExternalAddr {
	return append([]ExternalAddr(nil), r.ext...)
}

// ExternalAddr is an address the router must answer ARP for on behalf of
// NAT, on network Net (the slot Compile's netIndex gave).
type ExternalAddr struct {
	Addr netip.Addr
	Net  uint16
	Kind string // "snat" | "floating" | "forward"
}

func (r *Rules) fwdKey(proto uint8, ip uint32, port uint16) uint64 {
	return uint64(proto)<<48 | uint64(ip)<<16 | uint64(port)
}

// isFwdPort reports whether ip:port/proto is a forward's external port
// (never handed out by the dynamic pool).
func (r *Rules) isFwdPort(proto uint8, ip uint32, port uint16) bool {
	_, ok := r.fwdByExt[r.fwdKey(proto, ip, port)]
	return ok
}

// insideSNAT returns the first SNAT rule whose source holds a (any out network).
func (r *Rules) insideSNAT(a uint32) *snatRule {
	for i := range r.snat {
		if r.snat[i].contains(a) {
			return &r.snat[i]
		}
	}
	return nil
}

// isInside reports whether a may originate NATed traffic.
func (r *Rules) isInside(a uint32) bool {
	if _, ok := r.floatByInt[a]; ok {
		return true
	}
	return r.backends[a] || r.insideSNAT(a) != nil
}

// floatOut returns the floating rule that applies to traffic from src
// leaving via outNet.
func (r *Rules) floatOut(src uint32, inNet, outNet uint16) *floatRule {
	fi, ok := r.floatByInt[src]
	if !ok {
		return nil
	}
	fl := &r.floats[fi]
	if fl.extNet == outNet || fl.extNet == Local && outNet != inNet {
		return fl
	}
	return nil
}

func (r *Rules) snatOut(src uint32, outNet uint16) *snatRule {
	for i := range r.snat {
		sr := &r.snat[i]
		if sr.out == outNet && sr.contains(src) {
			return sr
		}
	}
	return nil
}

// Compile compiles cfg's NAT rules, off the data path; nothing changes in
// any NAT. netIndex gives the network slot of a network by name (false when
// unknown). An error means the configuration must be refused. cfg has its
// defaults filled (config.Parse does it; hand-built configurations call
// config.Config.ApplyDefaults): Compile substitutes none.
func Compile(cfg *config.Config, netIndex func(name string) (uint16, bool)) (*Rules, error) {
	r := &Rules{
		eif:        cfg.NAT.Filtering == config.FilteringEndpointIndep,
		floatByExt: map[uint32]int32{},
		floatByInt: map[uint32]int32{},
		fwdByExt:   map[uint64]int32{},
		backends:   map[uint32]bool{},
		addrs:      map[uint32]uint8{},
		own:        map[uint32]bool{},
		hostOwn:    map[uint32]bool{},
		max:        cfg.Conntrack.Max,
	}
	ct := cfg.Conntrack
	if ct.Max <= 0 || ct.TCPEstablished <= 0 || ct.TCPTransitory <= 0 || ct.UDP <= 0 || ct.ICMP <= 0 || ct.FragmentTimeout <= 0 {
		return nil, fmt.Errorf("nat: conntrack settings unset (max %d, timeouts %v %v %v %v, fragments %v): defaults not applied",
			ct.Max, ct.TCPEstablished, ct.TCPTransitory, ct.UDP, ct.ICMP, ct.FragmentTimeout)
	}
	r.tcpEst, r.tcpTrans, r.udp, r.icmp = int64(ct.TCPEstablished), int64(ct.TCPTransitory), int64(ct.UDP), int64(ct.ICMP)
	r.frag = int64(ct.FragmentTimeout)
	for _, nw := range cfg.Networks {
		for _, p := range nw.Addresses {
			if p.Addr().Is4() {
				r.own[packet.U32(p.Addr())] = true
				if nw.Host != "" {
					r.hostOwn[packet.U32(p.Addr())] = true
				}
			}
		}
	}
	// slot maps a network name to its slot; a network of cfg that netIndex
	// does not know is an error of the caller.
	slot := func(name string) (uint16, error) {
		if i, ok := netIndex(name); ok {
			return i, nil
		}
		return 0, fmt.Errorf("nat: network %q has no slot", name)
	}
	// netOf gives the slot of the first network (in cfg order) holding a,
	// Local when none does.
	netOf := func(a netip.Addr) (uint16, error) {
		for _, nw := range cfg.Networks {
			for _, p := range nw.Addresses {
				if p.Contains(a) {
					return slot(nw.Name)
				}
			}
		}
		return Local, nil
	}
	for _, s := range cfg.NAT.SNAT {
		nw := cfg.NetworkByName(s.Out)
		out, ok := netIndex(s.Out)
		if nw == nil || !ok {
			return nil, fmt.Errorf("nat: snat out network %q does not exist", s.Out)
		}
		if !s.Source.Addr().Is4() {
			return nil, fmt.Errorf("nat: snat source %v is not IPv4", s.Source)
		}
		to := s.To
		if !to.First.IsValid() {
			if len(nw.Addresses) == 0 {
				return nil, fmt.Errorf("nat: snat to network %q: no address", s.Out)
			}
			to = config.AddrRange{First: nw.Addresses[0].Addr(), Last: nw.Addresses[0].Addr()}
		}
		if !to.Last.IsValid() {
			to.Last = to.First
		}
		lo, hi := s.Ports.Lo, s.Ports.Hi
		if lo == 0 || hi < lo {
			return nil, fmt.Errorf("nat: snat ports %d-%d", lo, hi)
		}
		p := s.Source.Masked()
		mask := ^uint32(0)
		if p.Bits() < 32 {
			mask = ^(^uint32(0) >> p.Bits())
		}
		if p.Bits() == 0 {
			mask = 0
		}
		sr := snatRule{spec: s, base: packet.U32(p.Addr()) & mask, mask: mask, out: out,
			first: packet.U32(to.First), last: packet.U32(to.Last), lo: lo, hi: hi}
		if sr.last < sr.first {
			return nil, fmt.Errorf("nat: snat range %v-%v is empty", to.First, to.Last)
		}
		r.snat = append(r.snat, sr)
		for a := sr.first; ; a++ {
			if r.addrs[a]&aSNAT == 0 {
				r.ext = append(r.ext, ExternalAddr{packet.Addr(a), out, "snat"})
			}
			r.addrs[a] |= aSNAT
			if a == sr.last {
				break
			}
		}
	}
	for _, f := range cfg.NAT.Floating {
		if !f.External.Is4() || !f.Internal.Is4() {
			return nil, fmt.Errorf("nat: floating %v -> %v is not IPv4", f.External, f.Internal)
		}
		extNet, err := netOf(f.External)
		if err != nil {
			return nil, err
		}
		fr := floatRule{spec: f, ext: packet.U32(f.External), int: packet.U32(f.Internal), extNet: extNet}
		if _, dup := r.floatByExt[fr.ext]; dup {
			return nil, fmt.Errorf("nat: floating IP %v given twice", f.External)
		}
		if _, dup := r.floatByInt[fr.int]; dup {
			return nil, fmt.Errorf("nat: internal address %v has two floating IPs", f.Internal)
		}
		r.floatByExt[fr.ext] = int32(len(r.floats))
		r.floatByInt[fr.int] = int32(len(r.floats))
		r.floats = append(r.floats, fr)
		r.addrs[fr.ext] |= aFloat
		r.ext = append(r.ext, ExternalAddr{f.External, fr.extNet, "floating"})
	}
	for _, f := range cfg.NAT.Forward {
		var proto uint8
		switch f.Proto {
		case "tcp":
			proto = packet.ProtoTCP
		case "udp":
			proto = packet.ProtoUDP
		default:
			return nil, fmt.Errorf("nat: forward proto %q (tcp or udp)", f.Proto)
		}
		if len(f.Internal) == 0 {
			return nil, fmt.Errorf("nat: forward %v has no internal address", f.External)
		}
		extNet, err := netOf(f.External.Addr())
		if err != nil {
			return nil, err
		}
		fr := fwdRule{spec: f, proto: proto, ext: packet.U32(f.External.Addr()), port: f.External.Port(), net: extNet}
		for _, in := range f.Internal {
			fr.backends = append(fr.backends, uint64(packet.U32(in.Addr()))<<16|uint64(in.Port()))
			r.backends[packet.U32(in.Addr())] = true
		}
		k := r.fwdKey(proto, fr.ext, fr.port)
		if _, dup := r.fwdByExt[k]; dup {
			return nil, fmt.Errorf("nat: forward %s %v given twice", f.Proto, f.External)
		}
		if _, fl := r.floatByExt[fr.ext]; fl {
			return nil, fmt.Errorf("nat: forward %v uses floating IP %v", f.External, f.External.Addr())
		}
		if fr.net == Local {
			for _, s := range r.snat {
				if fr.ext >= s.first && fr.ext <= s.last {
					fr.net = s.out
				}
			}
		}
		r.fwdByExt[k] = int32(len(r.fwds))
		r.fwds = append(r.fwds, fr)
		if r.addrs[fr.ext]&(aFwd|aSNAT) == 0 {
			r.ext = append(r.ext, ExternalAddr{f.External.Addr(), fr.net, "forward"})
		}
		r.addrs[fr.ext] |= aFwd
	}
	return r, nil
}

// Commit makes nr the rules of record (Reap, show nat, Sessions) and flushes
// the sessions they no longer allow (a removed floating IP, SNAT rule or
// forward, an external address or port that left its pool, a dynamic port
// that became a forward). It returns how many sessions were flushed and why,
// in one line ("" when there is nothing to report). The table size
// (conntrack max) is fixed at New; a different max in nr's configuration is
// noted. Workers apply nr once they Use it.
func (n *NAT) Commit(nr *Rules) (flushed int, why string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	old := n.rules.Load()
	n.rules.Store(nr)
	n.setFragTimeout(nr.frag)
	counts := map[string]int{}
	var order []string
	n.scan(n.t.hwm, func(idx uint32, _ *session, w *words, _ uint64) {
		if r := invalid(old, nr, w); r != "" {
			if counts[r] == 0 {
				order = append(order, r)
			}
			counts[r]++
			n.destroy(idx)
			flushed++
		}
	})
	n.flushed.Add(uint64(flushed))
	var b strings.Builder
	b.WriteString(flushSummary(flushed, order, counts))
	if nr.max > 0 && nr.max != int(n.t.max) {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "conntrack max stays %d until restart", n.t.max)
	}
	return flushed, b.String()
}

// invalid says why the new rules no longer allow session w ("" when they do).
func invalid(old, nr *Rules, w *words) string {
	snatOK := func(src, ext uint32, port, inPort uint16) string {
		var sr *snatRule
		for i := range nr.snat {
			if nr.snat[i].out == w.outNet() && nr.snat[i].contains(src) {
				sr = &nr.snat[i]
				break
			}
		}
		if sr == nil {
			for i := range old.snat {
				if old.snat[i].out == w.outNet() && old.snat[i].contains(src) {
					return "SNAT rule " + old.snat[i].spec.Source.String() + " -> " + old.snat[i].spec.Out + " removed"
				}
			}
			return "SNAT rule for " + packet.Addr(src).String() + " removed"
		}
		if ext < sr.first || ext > sr.last {
			return "SNAT address " + packet.Addr(ext).String() + " left the pool"
		}
		if lo, hi := sr.portRange(inPort); w.proto() != packet.ProtoICMP && (port < lo || port > hi) {
			return "SNAT port range of " + packet.Addr(ext).String() + " changed"
		}
		if nr.isFwdPort(w.proto(), ext, port) {
			return fmt.Sprintf("forward %s:%d/%s shadows a dynamic mapping", packet.Addr(ext), port, protoName(w.proto()))
		}
		return ""
	}
	floatOK := func(ext, in uint32) string {
		if fi, ok := nr.floatByExt[ext]; ok && nr.floats[fi].int == in {
			return ""
		}
		return "floating IP " + packet.Addr(ext).String() + " removed"
	}
	switch w.origin() {
	case oSNAT, oSNATIn:
		if s := snatOK(w.oSrc(), w.rDst(), w.rDport(), w.oSport()); s != "" {
			return s
		}
	case oFloatOut:
		if s := floatOK(w.rDst(), w.oSrc()); s != "" {
			return s
		}
	case oFloatIn:
		if s := floatOK(w.oDst(), w.rSrc()); s != "" {
			return s
		}
	case oForward:
		fi, ok := nr.fwdByExt[nr.fwdKey(w.proto(), w.oDst(), w.oDport())]
		be := uint64(w.rSrc())<<16 | uint64(w.rSport())
		found := false
		if ok {
			for _, b := range nr.fwds[fi].backends {
				found = found || b == be
			}
		}
		if !found {
			return fmt.Sprintf("forward %s:%d/%s removed", packet.Addr(w.oDst()), w.oDport(), protoName(w.proto()))
		}
	}
	if w.hairpin() {
		if w.hairFloat() {
			return floatOK(w.rDst(), w.oSrc())
		}
		return snatOK(w.oSrc(), w.rDst(), w.rDport(), w.oSport())
	}
	return ""
}
