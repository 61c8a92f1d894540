package arp

import (
	"sync"
	"time"

	"vrouter/packet"
)

// refCache is the original mutex+map neighbour cache, kept as the baseline
// for benchmarks and as a naive model in randomized tests.
type refCache struct {
	cfg Config
	mu  sync.Mutex
	m   map[uint64]*refEntry
	st  Stats
}

type refEntry struct {
	mac       packet.MAC
	state     State
	confirmed int64
	lastReq   int64
	tries     int
	queue     [][]byte
}

// newRef makes a reference cache.
func newRef(cfg Config) *refCache { return &refCache{cfg: cfg, m: map[uint64]*refEntry{}} }

// Lookup returns a usable MAC (reachable, stale or static).
func (c *refCache) Lookup(net uint16, ip uint32) (packet.MAC, bool) {
	c.mu.Lock()
	e := c.m[key(net, ip)]
	c.mu.Unlock()
	if e == nil || (e.state != Reachable && e.state != Stale && e.state != Static) {
		return packet.MAC{}, false
	}
	return e.mac, true
}

// Miss queues a copy of pkt (an IPv4 packet) for (net, ip). sendReq says the
// caller should broadcast an ARP request now; queued is false when the
// packet was dropped (queue or table full).
func (c *refCache) Miss(net uint16, ip uint32, pkt []byte, now int64) (sendReq, queued bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := key(net, ip)
	e := c.m[k]
	if e == nil {
		if len(c.m) >= c.cfg.Max {
			c.st.TableFull++
			return false, false
		}
		e = &refEntry{state: Incomplete}
		c.m[k] = e
	}
	if e.state == Failed {
		e.state, e.tries = Incomplete, 0
	}
	if len(e.queue) < c.cfg.QueueLen {
		e.queue = append(e.queue, append([]byte(nil), pkt...))
		c.st.Queued++
		queued = true
	} else {
		c.st.QueueDrops++
	}
	// One change from the original: it also sent requests here beyond
	// Retries, so continuous traffic kept an unanswered entry from ever
	// failing; now Tick fails it after Retries requests.
	if e.tries == 0 || (e.tries < c.cfg.Retries && now-e.lastReq >= int64(c.cfg.RetransTime)) {
		e.tries++
		e.lastReq = now
		c.st.Requests++
		sendReq = true
	}
	return sendReq, queued
}

// Update records ip -> mac learned from ARP. create says whether a missing
// entry may be created (we were the target, RFC 826); otherwise only an
// existing entry is updated. Packets queued for the neighbour are handed to
// flush (the slice is valid only during the call). Static entries are never
// changed.
func (c *refCache) Update(net uint16, ip uint32, mac packet.MAC, create bool, now int64, flush func(pkt []byte)) {
	c.mu.Lock()
	k := key(net, ip)
	e := c.m[k]
	if e == nil {
		if !create || len(c.m) >= c.cfg.Max {
			c.mu.Unlock()
			return
		}
		e = &refEntry{}
		c.m[k] = e
	}
	if e.state == Static {
		c.mu.Unlock()
		return
	}
	e.mac, e.state, e.confirmed, e.tries = mac, Reachable, now, 0
	q := e.queue
	e.queue = nil
	c.mu.Unlock()
	for _, p := range q {
		flush(p)
	}
}

// Tick runs the timers: retransmits requests (req with a zero MAC means
// broadcast), fails entries after Retries (unreachable is called once with
// the first queued packet, the rest are dropped), ages reachable entries to
// stale and removes stale ones unused for StaleTime.
func (c *refCache) Tick(now int64, req func(net uint16, ip uint32, mac packet.MAC), unreachable func(net uint16, ip uint32, pkt []byte)) {
	type fail struct {
		net uint16
		ip  uint32
		pkt []byte
	}
	type rq struct {
		net uint16
		ip  uint32
	}
	var fails []fail
	var reqs []rq
	c.mu.Lock()
	for k, e := range c.m {
		net, ip := uint16(k>>32), uint32(k)
		switch e.state {
		case Incomplete:
			if now-e.lastReq >= int64(c.cfg.RetransTime) {
				if e.tries >= c.cfg.Retries {
					e.state = Failed
					e.confirmed = now
					c.st.Failed++
					if len(e.queue) > 0 {
						fails = append(fails, fail{net, ip, e.queue[0]})
						c.st.FailedDrops += uint64(len(e.queue) - 1)
					}
					e.queue = nil
					continue
				}
				e.tries++
				e.lastReq = now
				c.st.Requests++
				reqs = append(reqs, rq{net, ip})
			}
		case Reachable:
			if now-e.confirmed >= int64(c.cfg.ReachableTime) {
				e.state = Stale
			}
		case Stale, Failed:
			if now-e.confirmed >= int64(c.cfg.ReachableTime+c.cfg.StaleTime) {
				delete(c.m, k)
			}
		}
	}
	c.mu.Unlock()
	for _, r := range reqs {
		req(r.net, r.ip, packet.MAC{})
	}
	for _, f := range fails {
		unreachable(f.net, f.ip, f.pkt)
	}
}

// SetStatic replaces the set of static entries with list.
func (c *refCache) SetStatic(list []StaticEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if e.state == Static {
			delete(c.m, k)
		}
	}
	for _, s := range list {
		c.m[key(s.Network, s.IP)] = &refEntry{mac: s.MAC, state: Static}
	}
}

// Flush removes every entry that is not static.
func (c *refCache) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if e.state != Static {
			delete(c.m, k)
		}
	}
}

// FlushNetwork removes every entry of a network (used when a network is
// removed or renumbered on reload).
func (c *refCache) FlushNetwork(net uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if uint16(k>>32) == net {
			delete(c.m, k)
		}
	}
}

// Entries lists the cache.
func (c *refCache) Entries(now int64) []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Entry, 0, len(c.m))
	for k, e := range c.m {
		out = append(out, Entry{Network: uint16(k >> 32), IP: uint32(k), MAC: e.mac, State: e.state,
			Age: time.Duration(now - e.confirmed), Queued: len(e.queue)})
	}
	return out
}

// Stats returns the counters.
func (c *refCache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.st
	s.Entries = len(c.m)
	return s
}
