package nat

import "math/bits"

// pool is the port bitmap of one external address for one protocol (an ICMP
// query identifier counts as a port). Kept under NAT.mu.
type pool struct {
	used      [1024]uint64
	inUse     int
	exhausted uint64 // new flows refused for lack of a port
}

func poolKey(ip uint32, proto uint8) uint64 { return uint64(ip)<<8 | uint64(proto) }

func (n *NAT) pool(ip uint32, proto uint8) *pool {
	k := poolKey(ip, proto)
	p := n.pools[k]
	if p == nil {
		p = &pool{}
		n.pools[k] = p
	}
	return p
}

func (p *pool) isUsed(port uint16) bool { return p.used[port>>6]&(1<<(port&63)) != 0 }
func (p *pool) set(port uint16)         { p.used[port>>6] |= 1 << (port & 63); p.inUse++ }

// reserve marks port used unless it is (a synced session's mapping).
func (p *pool) reserve(port uint16) {
	if !p.isUsed(port) {
		p.set(port)
	}
}

func (p *pool) clear(port uint16) {
	if p.isUsed(port) {
		p.used[port>>6] &^= 1 << (port & 63)
		p.inUse--
	}
}

// portRange is where a mapping for inside port ip may come from: ports below
// 1024 stay below 1024 (RFC 4787 REQ-?/NAT-PT practice), others use the
// rule's range.
func (r *snatRule) portRange(port uint16) (lo, hi uint16) {
	if port < 1024 {
		lo, hi = 1, 1023
		if r.lo < 1024 && r.lo > lo {
			lo = r.lo
		}
		return lo, hi
	}
	lo, hi = r.lo, r.hi
	if lo < 1024 {
		lo = 1024
	}
	return lo, hi
}

// allocPort picks a free port on ext for an inside endpoint (caller holds
// NAT.mu): the inside port itself when free (port preservation), otherwise
// the first free one from a hash-chosen start. Forwarded ports are skipped.
// ok is false when the range is exhausted.
func (n *NAT) allocPort(r *Rules, sr *snatRule, ext uint32, proto uint8, inIP uint32, inPort uint16) (uint16, bool) {
	p := n.pool(ext, proto)
	lo, hi := sr.portRange(inPort)
	if lo > hi {
		p.exhausted++
		return 0, false
	}
	free := func(x uint16) bool { return !p.isUsed(x) && !r.isFwdPort(proto, ext, x) }
	if inPort >= lo && inPort <= hi && free(inPort) {
		p.set(inPort)
		return inPort, true
	}
	span := uint32(hi) - uint32(lo) + 1
	start := uint32(lo) + uint32(hashKey(uint64(inIP), uint64(inPort))%uint64(span))
	x := start
	for scanned := uint32(0); scanned < span; {
		// Skip whole used words quickly.
		if x&63 == 0 && x+63 <= uint32(hi) && p.used[x>>6] == ^uint64(0) {
			scanned += 64
			x += 64
		} else {
			if free(uint16(x)) {
				p.set(uint16(x))
				return uint16(x), true
			}
			scanned++
			x++
		}
		if x > uint32(hi) {
			x = uint32(lo)
		}
	}
	p.exhausted++
	return 0, false
}

func (p *pool) count() int {
	c := 0
	for _, w := range p.used {
		c += bits.OnesCount64(w)
	}
	return c
}
