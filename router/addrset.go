package router

// addrSet maps the router's own IPv4 addresses to their network: a small
// open-addressing table of pointer-free slots, read on every packet without
// hashing through a Go map. Address 0.0.0.0 is never an entry.
type addrSet struct {
	keys []uint32
	nets []uint16
	mask uint32
}

func newAddrSet(n int) addrSet {
	size := 8
	for size < 2*n {
		size *= 2
	}
	return addrSet{keys: make([]uint32, size), nets: make([]uint16, size), mask: uint32(size - 1)}
}

func addrHash(a uint32) uint32 { return (a * 0x9e3779b1) >> 7 }

// add inserts a (the set must have been sized for it).
func (s *addrSet) add(a uint32, net uint16) {
	for i := addrHash(a); ; i++ {
		j := i & s.mask
		if s.keys[j] == 0 || s.keys[j] == a {
			s.keys[j], s.nets[j] = a, net
			return
		}
	}
}

// get returns the network of a router address.
func (s *addrSet) get(a uint32) (uint16, bool) {
	if a == 0 {
		return 0, false
	}
	for i := addrHash(a); ; i++ {
		j := i & s.mask
		switch s.keys[j] {
		case a:
			return s.nets[j], true
		case 0:
			return 0, false
		}
	}
}
