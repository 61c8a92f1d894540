package filter

import (
	"fmt"

	"vrouter/config"
)

// Action is what a rule, or a ruleset's default, does with the first packet
// of a flow.
type Action uint8

const (
	Accept Action = iota
	Drop          // silently, counted
	Reject        // TCP RST, otherwise ICMP 3/13
)

var actionNames = [...]string{Accept: "accept", Drop: "drop", Reject: "reject"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "action?"
}

func parseAction(a config.FilterAction) (Action, bool) {
	switch a {
	case config.FilterAccept:
		return Accept, true
	case config.FilterDrop:
		return Drop, true
	case config.FilterReject:
		return Reject, true
	}
	return 0, false
}

// IP protocol numbers the rules name.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// Key is what the classifier looks at in a packet. Addresses are in host
// order (packet.U32). HasPorts says the L4 header is there: TCP or UDP
// ports, or the ICMP type. It is false for non-first fragments (and for
// other protocols); a rule with sport, dport or icmp_type never matches a
// packet without it, a rule without them does.
type Key struct {
	Src, Dst     uint32
	SPort, DPort uint16 // TCP, UDP
	Proto        uint8
	ICMPType     uint8 // ICMP
	HasPorts     bool
}

// Default is Verdict.Rule when no rule matched and the ruleset's default
// action applies.
const Default = -1

// Verdict is the result of Classify: the index of the first matching rule
// (in file order, from 0) or Default, and the action to take.
type Verdict struct {
	Rule   int32
	Action Action
}

// Set is the compiled form of every [[filter]] of one configuration. It is
// immutable once compiled: the router compiles it at reload, off the data
// path, and publishes it with the rest of its snapshot.
type Set struct {
	rulesets []*Ruleset
	byName   map[string]int // control plane only
	nslots   int            // counter slots: rules + 1 per ruleset
}

// Compile compiles the rulesets of a configuration (config.Config.Filters).
// A validated configuration always compiles; errors are for configurations
// built by hand.
func Compile(fs []config.Filter) (*Set, error) {
	s := &Set{byName: make(map[string]int, len(fs))}
	for i := range fs {
		f := &fs[i]
		if _, dup := s.byName[f.Name]; dup {
			return nil, fmt.Errorf("filter: duplicate ruleset name %q", f.Name)
		}
		rs, err := compileRuleset(f)
		if err != nil {
			return nil, err
		}
		rs.id = uint32(i)
		rs.base = uint32(s.nslots)
		s.nslots += len(f.Rules) + 1
		s.byName[f.Name] = i
		s.rulesets = append(s.rulesets, rs)
	}
	return s, nil
}

// Len is the number of rulesets.
func (s *Set) Len() int { return len(s.rulesets) }

// Ruleset is the ruleset of index i (file order), or nil.
func (s *Set) Ruleset(i int) *Ruleset {
	if i < 0 || i >= len(s.rulesets) {
		return nil
	}
	return s.rulesets[i]
}

// Lookup is the ruleset called name, or nil (the network keys filter_in
// and filter_out name them).
func (s *Set) Lookup(name string) *Ruleset {
	if i, ok := s.byName[name]; ok {
		return s.rulesets[i]
	}
	return nil
}

// ranges holds the range buckets of one address family's tables.
type ranges struct {
	buckets []bucket     // range buckets (val with rangeFlag)
	rents   []rangeEntry // bucket entries, by rule index
	bounds  []uint16     // interval starts of indexed buckets
	ivs     []span       // per interval: its entries in ivEnts
	ivEnts  []rangeEntry // interval entries, by rule index
}

func (r *ranges) bytes() int {
	return len(r.buckets)*sizeofBucket + (len(r.rents)+len(r.ivEnts))*sizeofRangeEntry + len(r.bounds)*2 + len(r.ivs)*sizeofSpan
}

// Ruleset is one compiled [[filter]]. Its lookup tables are slices of
// pointer-free structs indexed by uint32; Classify reads nothing else.
type Ruleset struct {
	// lookup path
	tables  []table  // sorted by min (lowest rule index first)
	tags    []uint64 // hash lines: a tag word per line, a run per table
	slots   []slot   // lineSlots per line
	ranges           // the range buckets of these tables
	actions []Action // per rule
	def     Action
	six     tables6 // the IPv6 tables (Classify6)

	// control plane
	id, base uint32 // index in its Set, first counter slot
	cfg      config.Filter
	entries  int
}

// Name is the ruleset's name.
func (rs *Ruleset) Name() string { return rs.cfg.Name }

// Index is the ruleset's index in its Set (file order).
func (rs *Ruleset) Index() int { return int(rs.id) }

// DefaultAction is the action when no rule matches.
func (rs *Ruleset) DefaultAction() Action { return rs.def }

// Len is the number of rules.
func (rs *Ruleset) Len() int { return len(rs.actions) }

// Action is the action of rule i, or the default for Default.
func (rs *Ruleset) Action(rule int32) Action {
	if rule < 0 || int(rule) >= len(rs.actions) {
		return rs.def
	}
	return rs.actions[rule]
}

// Config is the ruleset as configured (rules in order, with their
// positions in the file), for show filter. The caller must not change it.
func (rs *Ruleset) Config() *config.Filter { return &rs.cfg }

// Info describes the compiled structure, for tests, benchmarks and show
// filter -j.
type Info struct {
	Rules   int // rules
	Entries int // (source, destination, sport item, dport item) combinations
	Tables  int // distinct shapes: hash tables a packet may probe
	Slots   int // hash slots over all tables
	Probe   int // most hash lines a lookup may read in one table
	Ranged  int // range buckets (keys whose rules have port ranges)
	Indexed int // of them, with an interval index
	Scanned int // of them, longer than linearMax without one (scanned)
	Bytes   int // memory of the lookup tables

	// The same for the IPv6 tables (the fields above are the IPv4 ones;
	// a rule without addresses and of a protocol of both families is in
	// both).
	Entries6, Tables6, Slots6, Bytes6 int
}

// Info describes the compiled ruleset.
func (rs *Ruleset) Info() Info {
	in := Info{Rules: len(rs.actions), Entries: rs.entries, Tables: len(rs.tables), Slots: len(rs.slots), Ranged: len(rs.buckets)}
	for _, t := range rs.tables {
		in.Probe = max(in.Probe, int(t.probe))
	}
	for _, b := range rs.buckets {
		if b.ivN > 0 {
			in.Indexed++
		} else if b.n > linearMax {
			in.Scanned++
		}
	}
	in.Bytes = len(rs.tables)*sizeofTable + len(rs.slots)*sizeofSlot + len(rs.tags)*8 + rs.ranges.bytes() + len(rs.actions)
	x := &rs.six
	in.Entries6, in.Tables6, in.Slots6 = x.entries, len(x.tables), len(x.slots)
	in.Bytes6 = len(x.tables)*sizeofTable6 + len(x.slots)*sizeofSlot6 + len(x.tags)*8 + x.ranges.bytes()
	return in
}
