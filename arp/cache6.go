package arp

import (
	"encoding/binary"
	"runtime"

	"vrouter/packet"
)

// IPv6 neighbours (RFC 4861) share the table, slab, queue pool, timers and
// counters of the IPv4 ones; only the key differs. An IPv6 key word is
// keyLive | key6Bit | network<<32 | fold(address), and the full address is
// checked in addr6 after the key word matched, so that the IPv4 path reads
// the same single word per probe as before.

// key6Bit marks an IPv6 key (bit 62: IPv4 keys use bits 0-47 and keyLive).
const key6Bit = uint64(1) << 62

func split6(a [16]byte) (hi, lo uint64) {
	return binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
}

func join6(hi, lo uint64) (a [16]byte) {
	binary.BigEndian.PutUint64(a[:8], hi)
	binary.BigEndian.PutUint64(a[8:], lo)
	return
}

// key6 is the key word of an IPv6 neighbour (without keyLive).
func key6(net uint16, hi, lo uint64) uint64 {
	f := (hi ^ (lo<<31 | lo>>33)) * hashMul
	return key6Bit | uint64(net)<<32 | (f>>32 ^ lo&0xffffffff)
}

// probe6 is probe for an IPv6 key: a slot matches when its key word and
// its full address do.
func (c *Cache) probe6(sk, hi, lo uint64) (i, v uint64, ok bool) {
	slots, addr6, mask := c.slots, c.addr6, c.mask
	for {
		s := c.seq.Load()
		if s&1 != 0 {
			runtime.Gosched()
			continue
		}
		i = c.home(sk)
		ok = false
		for n := uint64(0); n <= mask; n++ {
			j := i & mask
			k := slots[j].key.Load()
			if k == sk && addr6[j].hi.Load() == hi && addr6[j].lo.Load() == lo {
				v = slots[j].val.Load()
				ok = true
				break
			}
			if k == 0 {
				break
			}
			i = (i + 1) & mask
		}
		if c.seq.Load() == s {
			return i & mask, v, ok
		}
	}
}

// Lookup6 is Lookup for an IPv6 neighbour: lock-free, allocation-free.
func (c *Cache) Lookup6(net uint16, a [16]byte) (packet.MAC, bool) {
	hi, lo := split6(a)
	i, v, ok := c.probe6(keyLive|key6(net, hi, lo), hi, lo)
	if !ok {
		return packet.MAC{}, false
	}
	st := State((v & stateMask) >> stateShift)
	if !st.usable() {
		return packet.MAC{}, false
	}
	if st == Stale && v&usedBit == 0 {
		c.slots[i].val.Or(usedBit)
	}
	return packet.MACFromUint64(v), true
}

// Has6 is Has for an IPv6 neighbour.
func (c *Cache) Has6(net uint16, a [16]byte) bool {
	hi, lo := split6(a)
	_, _, ok := c.probe6(keyLive|key6(net, hi, lo), hi, lo)
	return ok
}

// Resolve6 is Resolve for an IPv6 neighbour: sendReq asks the caller to
// send a neighbour solicitation now (to the solicited-node group).
func (c *Cache) Resolve6(net uint16, a [16]byte, pkt []byte, now int64) (mac packet.MAC, ok, sendReq, queued bool) {
	if mac, ok = c.Lookup6(net, a); ok {
		return mac, true, false, false
	}
	hi, lo := split6(a)
	c.mu.Lock()
	mac, ok, sendReq, queued = c.missKey(key6(net, hi, lo), hi, lo, pkt, now, false)
	c.mu.Unlock()
	return
}

// Update6 records a -> mac learned from a neighbour advertisement or the
// source link-layer option of a solicitation, as how says (RFC 4861
// 7.2.3-7.2.5). Queued packets are handed to flush as in Update.
func (c *Cache) Update6(net uint16, a [16]byte, mac packet.MAC, how Learn, now int64, flush func(pkt []byte)) {
	hi, lo := split6(a)
	c.update(key6(net, hi, lo), hi, lo, mac, how, now, flush)
}
