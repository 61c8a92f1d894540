package nat

import (
	"encoding/binary"

	"vrouter/packet"
)

// Prefetch reads the conntrack index slot where the lookup of IPv4 packet
// p's flow will start, and returns it for the caller to fold into a value it
// keeps (so the read is not optimised away).
//
// The data path calls it for every packet of a batch before processing the
// batch: the index is tens of megabytes, so each lookup's first read is a
// cache miss (about a tenth of the router's CPU time in the 10k-flow
// benchmark). Issued back to back, the batch's misses overlap instead of
// being paid one packet at a time. It parses only what the key needs and
// never fails: a packet it cannot read costs nothing.
func (w *Worker) Prefetch(p []byte) uint32 {
	if len(p) < packet.IPv4MinLen || p[0]>>4 != 4 {
		return 0
	}
	ihl := int(p[0]&0x0f) * 4
	proto := p[9]
	if proto != packet.ProtoTCP && proto != packet.ProtoUDP || len(p) < ihl+4 ||
		binary.BigEndian.Uint16(p[6:8])&0x1fff != 0 {
		return 0 // not a first fragment with ports: rare, left to the lookup
	}
	a, b := keyWords(binary.BigEndian.Uint32(p[12:16]), binary.BigEndian.Uint32(p[16:20]),
		binary.BigEndian.Uint16(p[ihl:ihl+2]), binary.BigEndian.Uint16(p[ihl+2:ihl+4]), proto)
	t := w.n.t
	return t.slots[hashKey(a, b)&t.mask].Load()
}
