package arp

import "vrouter/internal/counter"

// CounterStage is the Desc.Stage of the neighbour cache's counters.
const CounterStage = "arp"

// The counters of Stats, one constant per field.
const (
	cEntries = iota
	cRequests
	cQueued
	cQueueDrops
	cFailed
	cFailedDrops
	cTableFull
	cTooBig
	cPoolDrops
	cFlushDrops
	cMissResolved
	cRefreshes
	cRefreshFailed
	cExpired
	numCounters
)

var descs = [numCounters]counter.Desc{
	cEntries:       arpDesc("entries", counter.Gauge, "entries in the neighbour cache (every state, static ones included)"),
	cRequests:      arpDesc("requests", counter.Event, "ARP requests asked for (first misses, retransmits and unicast refreshes)"),
	cQueued:        arpDesc("queued", counter.Event, "packets queued while their next hop was resolved"),
	cQueueDrops:    arpDesc("queue-drops", counter.Drop, "packets not queued: the next hop's queue was full"),
	cFailed:        arpDesc("failed", counter.Event, "resolutions that got no answer (the entry becomes failed)"),
	cFailedDrops:   arpDesc("failed-drops", counter.Drop, "queued packets dropped when their resolution failed (the first one gets an ICMP error instead)"),
	cTableFull:     arpDesc("table-full", counter.Event, "new entries refused because the cache holds its maximum"),
	cTooBig:        arpDesc("too-big", counter.Drop, "packets not queued: larger than a pending-queue buffer"),
	cPoolDrops:     arpDesc("pool-drops", counter.Drop, "packets not queued: every pending-queue buffer in use"),
	cFlushDrops:    arpDesc("flush-drops", counter.Drop, "queued packets discarded when their entry was cleared or replaced (clear arp, reload, static entry)"),
	cMissResolved:  arpDesc("miss-resolved", counter.Event, "misses that found the neighbour resolved meanwhile (the packet was sent, not queued)"),
	cRefreshes:     arpDesc("refreshes", counter.Event, "unicast refreshes started for stale entries in use"),
	cRefreshFailed: arpDesc("refresh-failed", counter.Event, "stale entries removed because their refresh got no answer"),
	cExpired:       arpDesc("expired", counter.Event, "stale or failed entries removed after the stale time unused"),
}

func arpDesc(name string, k counter.Kind, help string) counter.Desc {
	return counter.Desc{Stage: CounterStage, Name: name, Help: help, Kind: k}
}

// Descs lists the neighbour cache's counters, in Counters order.
func Descs() []counter.Desc { return append([]counter.Desc(nil), descs[:]...) }

// values are s's fields keyed by their counter constants.
func (s Stats) values() [numCounters]uint64 {
	return [numCounters]uint64{
		cEntries:       uint64(s.Entries),
		cRequests:      s.Requests,
		cQueued:        s.Queued,
		cQueueDrops:    s.QueueDrops,
		cFailed:        s.Failed,
		cFailedDrops:   s.FailedDrops,
		cTableFull:     s.TableFull,
		cTooBig:        s.TooBig,
		cPoolDrops:     s.PoolDrops,
		cFlushDrops:    s.FlushDrops,
		cMissResolved:  s.MissResolved,
		cRefreshes:     s.Refreshes,
		cRefreshFailed: s.RefreshFailed,
		cExpired:       s.Expired,
	}
}

// Counters returns every field of Stats as a counter, in Descs order.
func (c *Cache) Counters() []counter.Value {
	vs := c.Stats().values()
	out := make([]counter.Value, numCounters)
	for i := range out {
		out[i] = counter.Value{Desc: descs[i], Value: vs[i]}
	}
	return out
}
