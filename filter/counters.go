package filter

import "sync/atomic"

// Counters is one worker's counters for the rules of one Set: a slot per
// rule and one per ruleset default, each with hits (classifications),
// packets and bytes. As with the router's other counters, the worker counts
// into plain fields during a batch and Flush, at the end of the batch, adds
// what it counted to the shared atomic fields, once per touched slot. Only
// its worker calls Hit, Add and Flush; the control plane reads every
// worker's shared fields and sums them (Set.Stats). A Set's counters start
// at zero: the router makes one block per worker when it compiles a Set.
type Counters struct {
	set     *Set
	pend    []pending // this batch, worker only
	touched []uint32  // slots with pending counts
	c       []count   // published
}

type pending struct{ hits, packets, bytes uint64 }

type count struct {
	hits, packets, bytes atomic.Uint64
}

// maxTouched bounds the slots one batch may touch before Hit or Add
// flushes on its own (so counting never allocates).
const maxTouched = 256

// NewCounters returns a zeroed counter block for one worker.
func (s *Set) NewCounters() *Counters {
	return &Counters{set: s, pend: make([]pending, s.nslots), touched: make([]uint32, 0, maxTouched), c: make([]count, s.nslots)}
}

// Set is the Set these counters count for.
func (c *Counters) Set() *Set { return c.set }

// slot is the pending counts of rule (or Default) of rs, nil when rs is not
// of this block's Set.
func (c *Counters) slot(rs *Ruleset, rule int32) *pending {
	if c == nil || rs == nil || c.set == nil || c.set.Ruleset(int(rs.id)) != rs {
		return nil // a ruleset of another Set: not counted here
	}
	i := rs.base + uint32(len(rs.actions)) // the default's slot
	if rule >= 0 && int(rule) < len(rs.actions) {
		i = rs.base + uint32(rule)
	}
	p := &c.pend[i]
	if p.packets == 0 && p.hits == 0 {
		if len(c.touched) == cap(c.touched) {
			c.Flush()
		}
		c.touched = append(c.touched, i)
	}
	return p
}

// Hit counts a classification by ruleset rs with verdict v of a packet of
// the given size: one hit, one packet, its bytes.
func (c *Counters) Hit(rs *Ruleset, v Verdict, bytes int) {
	if p := c.slot(rs, v.Rule); p != nil {
		p.hits++
		p.packets++
		p.bytes += uint64(bytes)
	}
}

// Add counts packets that a rule decided without a new classification (the
// later packets of a flow it accepted): packets and bytes, no hit.
func (c *Counters) Add(rs *Ruleset, rule int32, packets, bytes int) {
	if packets <= 0 {
		return
	}
	if p := c.slot(rs, rule); p != nil {
		p.packets += uint64(packets)
		p.bytes += uint64(bytes)
	}
}

// Flush publishes what was counted since the last Flush. The worker calls
// it at the end of each batch.
func (c *Counters) Flush() {
	if c == nil {
		return
	}
	for _, i := range c.touched {
		p, x := &c.pend[i], &c.c[i]
		x.hits.Add(p.hits)
		x.packets.Add(p.packets)
		x.bytes.Add(p.bytes)
		*p = pending{}
	}
	c.touched = c.touched[:0]
}

// Count is one counter slot's value, summed over the workers.
type Count struct {
	Hits, Packets, Bytes uint64
}

// Stats is one ruleset's counters: per rule in order, and the default's.
type Stats struct {
	Name    string
	Default Action
	Rules   []Count
	Other   Count // packets no rule matched (the default action)
}

// Stats sums the published counters of every worker (blocks of other Sets
// are skipped) per ruleset, in Set order.
func (s *Set) Stats(workers []*Counters) []Stats {
	out := make([]Stats, len(s.rulesets))
	for i, rs := range s.rulesets {
		st := Stats{Name: rs.Name(), Default: rs.def, Rules: make([]Count, len(rs.actions))}
		for _, w := range workers {
			if w == nil || w.set != s {
				continue
			}
			for r := range st.Rules {
				st.Rules[r].add(&w.c[int(rs.base)+r])
			}
			st.Other.add(&w.c[int(rs.base)+len(rs.actions)])
		}
		out[i] = st
	}
	return out
}

func (c *Count) add(x *count) {
	c.Hits += x.hits.Load()
	c.Packets += x.packets.Load()
	c.Bytes += x.bytes.Load()
}
