package filter

import "sync/atomic"

// Counters is one worker's counters for the rules of one Set: a slot per
// rule and one per ruleset default, each with hits (classifications),
// packets and bytes. Only its worker writes it (a load and a store, no
// locked instruction is needed for a single writer); the control plane
// reads every worker's and sums them (Set.Stats). A Set's counters start at
// zero: the router makes one per worker when it compiles a Set.
type Counters struct {
	set *Set
	c   []count
}

type count struct {
	hits, packets, bytes atomic.Uint64
}

func add(x *atomic.Uint64, n uint64) { x.Store(x.Load() + n) }

// NewCounters returns a zeroed counter block for one worker.
func (s *Set) NewCounters() *Counters {
	return &Counters{set: s, c: make([]count, s.nslots)}
}

// Set is the Set these counters count for.
func (c *Counters) Set() *Set { return c.set }

func (c *Counters) slot(rs *Ruleset, rule int32) *count {
	if c == nil || rs == nil || c.set == nil || c.set.Ruleset(int(rs.id)) != rs {
		return nil // a ruleset of another Set: not counted here
	}
	i := int(rs.base) + len(rs.actions) // the default's slot
	if rule >= 0 && int(rule) < len(rs.actions) {
		i = int(rs.base) + int(rule)
	}
	return &c.c[i]
}

// Hit counts a classification by ruleset rs with verdict v of a packet of
// the given size: one hit, one packet, its bytes.
func (c *Counters) Hit(rs *Ruleset, v Verdict, bytes int) {
	if x := c.slot(rs, v.Rule); x != nil {
		add(&x.hits, 1)
		add(&x.packets, 1)
		add(&x.bytes, uint64(bytes))
	}
}

// Add counts packets that a rule decided without a new classification (the
// later packets of a flow it accepted): packets and bytes, no hit.
func (c *Counters) Add(rs *Ruleset, rule int32, packets, bytes int) {
	if x := c.slot(rs, rule); x != nil {
		add(&x.packets, uint64(packets))
		add(&x.bytes, uint64(bytes))
	}
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

// Stats sums the counters of every worker (blocks of other Sets are
// skipped) per ruleset, in Set order.
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
