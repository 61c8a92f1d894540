// Package filter compiles the filter rulesets of the configuration and
// classifies the first packet of a flow against them. It keeps no flow
// state: the filter is stateful because the router gives every flow a
// filter accepts a conntrack session, whose later packets, replies and
// related ICMP errors are not classified again.
//
// # API (what the router calls)
//
// At start and at each reload, off the data path:
//
//	set, err := filter.Compile(cfg.Filters) // *Set: every ruleset, immutable
//	rs := set.Lookup(network.FilterIn)      // *Ruleset, nil for "" (no filter)
//	c := set.NewCounters()                  // one per worker, zeroed
//
// The Set and the rulesets travel in the router's snapshot; a worker takes
// them with the snapshot once per batch, with the counter block of the same
// Set. Per first packet of a flow (no session yet):
//
//	v := rs.Classify(filter.Key{Src: src, Dst: dst, Proto: proto,
//		SPort: sport, DPort: dport, ICMPType: typ, HasPorts: l4})
//	c.Hit(rs, v, len(pkt)) // v.Rule: rule index or filter.Default; v.Action
//
// or, for an IPv6 packet, rs.Classify6(filter.Key6{...}) with 16-byte
// addresses (Proto the upper-layer protocol, ICMPType the ICMPv6 type),
// and, if the router counts the later packets of a flow against the rule
// that accepted it, c.Add(rs, rule, packets, bytes). At the end of each
// batch the worker calls c.Flush(), which publishes its counts. The control
// plane reads set.Stats(countersOfAllWorkers) (hits, packets and bytes per
// rule and for the default), rs.Config() (the rules as written, with their
// file positions) and rs.Info() (the compiled structure) for show filter
// and /metrics. Classify and the counters allocate nothing and take no
// lock.
//
// # Semantics
//
// Rules are tried in file order; the first that matches decides; none:
// the default. proto any matches every protocol. A rule with sport, dport
// or icmp_type needs the packet's L4 header (Key.HasPorts): a non-first
// fragment, which has none, never matches it; rules without them match
// fragments too. The configuration allows ports only with tcp and udp and
// icmp_type only with icmp, so a port rule is never meant for "any".
//
// Address families: a rule's prefixes are all IPv4 or all IPv6 and it
// applies to packets of that family; proto icmp is IPv4's, icmpv6 IPv6's
// (icmp_type then names an ICMPv6 type); a rule with neither prefixes nor
// such a protocol applies to both. Rule indices are shared, so a verdict
// and its counters mean the same rule in both families. The IPv6 side
// (six.go) is the same structure as below with IPv6 keys: its own shapes
// (lengths up to 128), 40-byte slots and range buckets.
//
// # Data structure: tuple space search
//
// A rule's lists are first normalized (prefixes inside another of the same
// list dropped, overlapping port items merged), then expanded into entries:
// one per (source, destination, sport item, dport item). Each entry has a
// shape: source prefix length, destination prefix length, whether the
// protocol is part of the match, and per port the kind of its item (any;
// one port; a range), plus whether ports are needed. An ICMP type is a
// one-port dport. Every shape gets one hash table keyed by the packet
// fields under the shape's mask: src&smask, dst&dmask, the exact ports,
// the protocol. The value of a key is the lowest rule index among its
// entries; for shapes with a port range, the key leads to a bucket of
// (rule, sport range, dport range) sorted by rule, scanned while its rule
// can still win; a bucket longer than 8 gets an interval index over its
// range dimension (elementary intervals, binary search), with the best
// entry per interval when only one port is a range, or each interval's
// covering entries when both are (within a size budget; else scanned).
//
// Hash tables are lines of four 16-byte slots with one 64-bit tag word per
// line (16 bits of the key's hash per slot, 0 = free), at most half full.
// A key lives in the first free slot of its line or of the lines after it;
// a lookup reads tag words until one with a free slot, compares the tag
// in all four lanes at once, and reads a slot only where the tag is the
// key's. A lookup that misses (most of them) reads 8 bytes per table and
// takes no data-dependent branch.
//
// Tables are sorted by the lowest rule they hold. Classify walks them in
// that order and stops at the first table whose lowest rule is not below
// the best match so far: the result is the first matching rule, as a
// first-match scan would give (TestAgainstNaive checks it over 150,000
// random cases). Everything Classify reads is in slices of pointer-free
// structs indexed by uint32 (tags, slots, tables, buckets, bucket entries,
// interval bounds): the garbage collector does not scan them.
//
// # Cost per packet
//
// For each shape until the early exit: two masks, one hash (three
// multiplies), one tag word; on a tag match one slot compare; for a range
// shape the bucket scan (short) or a binary search. The cost depends on
// the number of shapes, not of rules: a CloudStack-like zone (per public
// address a /32 destination, ssh from an admin /24, http/https from
// anywhere, a partner range, a UDP range, ping) has 5 shapes whether it
// has 10 or 10,000 rules. What grows with the rules is the memory the
// tables take (665 KB for those 10,000 rules, 12,449 keys) and with it
// cache misses. Rules with many distinct prefix-length combinations make
// many shapes: 300 random rules (random prefix lengths, protocols and
// port kinds) give 419 tables, and a packet may then probe all of them.
// Merging shapes (TupleMerge: store a /27 in the /24 table and check the
// rest in the bucket) would bound that; it is not done, and Info.Tables
// shows the number for a ruleset. A bit-vector design (nftables' pipapo)
// was not chosen: its AND of per-field rule bitmaps costs rules/64 words
// per field step, so it grows with the rule count.
//
// Figures (go test -bench . -count=3 ./filter; shared 2-core VM, Intel
// Xeon, other jobs running: load average 4-6 on 2 cores). Times are thread
// CPU ns per classification; waiting for a core does not inflate them,
// sharing caches with the other jobs does. The interleaved benchmark
// (BenchmarkClassifyScaling: rounds of 65,536 packets of each size in turn
// on one locked thread) is the fair comparison of the sizes; separate runs
// of one size move by up to 1.5x from run to run here. "mixed" is half
// hits (a random rule's flow), half a scan of the public addresses (random
// source, protocol and port: nearly all get the default).
//
//	CloudStack-shaped rules     10        1,000     10,000    10,000 / 10
//	interleaved, mixed          63-84     81-105    95-119    1.42-1.55
//	separate, mixed             51-70     66-71     61-83
//	separate, hit only          50-57     72-99     66-91
//	separate, miss only         51-77     90-93     52-57
//	first-match scan (wall ns)  103-136   6,000-8,800
//
// Compile: 0.7 ms for 1,000 rules, 10 ms for 10,000 (5.7 MB allocated,
// 665 KB kept). Classify and counting allocate nothing (TestZeroAlloc);
// counting is three plain additions per packet and three atomic adds per
// touched slot per batch (BenchmarkClassifyCount: 107-130 ns wall for
// classify and count with 10,000 rules, in the same run).
//
// # Counters
//
// Per worker, per rule and per ruleset default: hits (classifications),
// packets and bytes, in one Counters block per Set (slot = ruleset base +
// rule). As with the router's other counters, the worker adds to plain
// fields and remembers the slots it touched; Flush, once per batch, adds
// them to the block's atomic fields (and Hit flushes by itself when one
// batch touches more than 256 slots). Set.Stats sums all workers' blocks
// when read. A new Set (reload) starts from zero; carrying the counts of
// unchanged rulesets over is the router's choice (rs.Config() compares).
package filter
