package nat

import "vrouter/internal/counter"

// Verdict is what the NAT did with a packet.
type Verdict uint8

const (
	// Pass: the packet is not subject to NAT in this stage; it is untouched.
	Pass Verdict = iota
	// Translated: the packet was rewritten (addresses, ports, checksums).
	Translated
	// Drop: the packet must be dropped; the Reason says why.
	Drop
	// Held: a non-first fragment that arrived before its first fragment was
	// copied into the hold buffer; the caller stops processing it (not a
	// drop). It comes back translated from Worker.Released.
	Held
)

func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Translated:
		return "translated"
	case Drop:
		return "drop"
	case Held:
		return "held"
	}
	return "verdict?"
}

// Reason is why the NAT dropped a packet. Every reason has a per-worker
// counter, summed by NAT.Counters.
type Reason uint8

const (
	ReasonNone       Reason = iota
	NoSession               // unsolicited inbound packet to a NAT address
	Filtered                // address-dependent filtering
	OutOfPorts              // no free port on the paired external address
	TableFull               // conntrack max reached
	TCPNoSession            // TCP segment other than SYN for a flow without session
	TCPBadRST               // RST outside the window
	ICMPErrNoSession        // ICMP error quoting no known session
	ICMPErrMismatch         // ICMP error whose outer dst is not the quoted src
	ICMPErrMalformed        // ICMP error with a quote too short to translate
	FragTableFull           // no room to remember a first fragment
	FragOutOfOrder          // non-first fragment before its first fragment
	Malformed               // transport header too short to translate
	UnsupportedProto        // protocol without ports cannot share an SNAT address
	TupleClash              // the new session's reply tuple belongs to another session
	HABackup                // new translated flow on an HA backup
	numReasons
)

// CounterStage is the Desc.Stage of the NAT's counters.
const CounterStage = "nat"

var reasonDescs = [numReasons]counter.Desc{
	ReasonNone:       natDesc("none", counter.Drop, "not dropped"),
	NoSession:        natDesc("nat-no-session", counter.Drop, "inbound packet to a NAT address with no session, mapping or forward (unsolicited)"),
	Filtered:         natDesc("nat-filtered", counter.Drop, "inbound packet to a mapping from a host the inside host never contacted (address-dependent filtering)"),
	OutOfPorts:       natDesc("nat-out-of-ports", counter.Drop, "new flow but no free port left on its paired external address (existing mappings kept)"),
	TableFull:        natDesc("nat-table-full", counter.Drop, "new flow but the conntrack table holds max sessions (established flows kept)"),
	TCPNoSession:     natDesc("nat-tcp-not-syn", counter.Drop, "TCP segment other than a SYN for a flow with no session"),
	TCPBadRST:        natDesc("nat-tcp-bad-rst", counter.Drop, "TCP RST outside the receiver's window (RFC 5961 style check)"),
	ICMPErrNoSession: natDesc("nat-icmp-error-no-session", counter.Drop, "ICMP error to a NAT address whose quoted packet matches no session"),
	ICMPErrMismatch:  natDesc("nat-icmp-error-mismatch", counter.Drop, "ICMP error whose outer destination is not the quoted packet's source (RFC 5508)"),
	ICMPErrMalformed: natDesc("nat-icmp-error-malformed", counter.Drop, "ICMP error whose quoted packet is too short to translate"),
	FragTableFull:    natDesc("nat-frag-table-full", counter.Drop, "first fragment of a NATed datagram but the fragment table is full"),
	FragOutOfOrder:   natDesc("nat-frag-out-of-order", counter.Drop, "non-first fragment that needs its first fragment's ports, which was not seen, and cannot be held (larger than a hold slot, or every slot awaits release)"),
	Malformed:        natDesc("nat-malformed", counter.Drop, "transport header too short to translate"),
	UnsupportedProto: natDesc("nat-unsupported-proto", counter.Drop, "protocol without ports from an SNAT source (only TCP, UDP, ICMP query can share an address)"),
	TupleClash:       natDesc("nat-tuple-clash", counter.Drop, "the new session's reply tuple is already used by another session"),
	HABackup:         natDesc("nat-ha-backup", counter.Drop, "new flow that needs a NAT session on an HA backup (only the master creates them; synced sessions still pass)"),
}

func natDesc(name string, k counter.Kind, help string) counter.Desc {
	return counter.Desc{Stage: CounterStage, Name: name, Help: help, Kind: k}
}

// String is the counter name of r.
func (r Reason) String() string {
	if r < numReasons {
		return reasonDescs[r].Name
	}
	return "nat-reason?"
}

// Description is a one-line explanation of r.
func (r Reason) Description() string {
	if r < numReasons {
		return reasonDescs[r].Help
	}
	return ""
}

// Reasons lists every drop reason (for documentation and stats output).
func Reasons() []Reason {
	rs := make([]Reason, 0, numReasons-1)
	for r := Reason(1); r < numReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}

// The per-worker events follow the reasons in a Worker's counter array.
const (
	cTranslatedIn = int(numReasons) + iota
	cTranslatedOut
	cSessionsCreated
	cHairpin
	cICMPErrTranslated
	cFragTranslated
	cStateless
	cTracking
	cAborted
	numCounters
)

// The NAT's own counters (not per worker), and its gauges.
const (
	sExpired = iota
	sFlushed
	sEvicted
	sFragHeld
	sFragReleased
	sFragHoldExpired
	sFragHoldEvicted
	sFragHoldDiscarded
	gSessions
	gSessionsMax
	gFragEntries
	gFragHolding
	numShared
)

var workerDescs = [numCounters - int(numReasons)]counter.Desc{
	cTranslatedIn - int(numReasons):      natDesc("nat-translated-in", counter.Event, "packets translated by the NAT stage before the route lookup (destination: DNAT, replies to SNAT)"),
	cTranslatedOut - int(numReasons):     natDesc("nat-translated-out", counter.Event, "packets translated by the NAT stage after the route lookup (source: SNAT, replies from DNAT)"),
	cSessionsCreated - int(numReasons):   natDesc("nat-sessions-created", counter.Event, "conntrack sessions created"),
	cHairpin - int(numReasons):           natDesc("nat-hairpin-sessions", counter.Event, "sessions created for an inside host reaching another through a NAT address (hairpin)"),
	cICMPErrTranslated - int(numReasons): natDesc("nat-icmp-errors-translated", counter.Event, "ICMP errors translated together with the packet they quote (RFC 5508)"),
	cFragTranslated - int(numReasons):    natDesc("nat-fragments-translated", counter.Event, "non-first fragments translated with the ports of their first fragment"),
	cStateless - int(numReasons):         natDesc("nat-stateless-1to1", counter.Event, "packets of a floating IP translated 1:1 without a session (TCP other than SYN, ICMP errors)"),
	cTracking - int(numReasons):          natDesc("nat-tracking-sessions", counter.Event, "tracking-only sessions created for flows a filter accepted that no NAT rule translates"),
	cAborted - int(numReasons):           natDesc("nat-sessions-aborted", counter.Event, "sessions a NAT rule created for a first packet that was then dropped before it left (a filter refused it), removed again"),
}

var sharedDescs = [numShared]counter.Desc{
	sExpired:           natDesc("nat-sessions-expired", counter.Event, "sessions removed by their idle timeout"),
	sFlushed:           natDesc("nat-sessions-flushed", counter.Event, "sessions removed by clear conntrack or by a reload whose rules no longer allow them"),
	sEvicted:           natDesc("nat-sessions-evicted", counter.Event, "unanswered idle sessions removed to make room for a new flow in a full table"),
	sFragHeld:          natDesc("nat-frag-held", counter.Event, "non-first fragments held until their first fragment comes"),
	sFragReleased:      natDesc("nat-frag-released", counter.Event, "held fragments released, translated, after their first fragment came"),
	sFragHoldExpired:   natDesc("nat-frag-hold-expired", counter.Drop, "held fragments dropped because their first fragment did not come in time"),
	sFragHoldEvicted:   natDesc("nat-frag-hold-evicted", counter.Drop, "held fragments dropped to make room in the full hold buffer (the oldest goes)"),
	sFragHoldDiscarded: natDesc("nat-frag-hold-discarded", counter.Drop, "held fragments dropped because their first fragment was dropped"),
	gSessions:          natDesc("nat-sessions", counter.Gauge, "sessions in the conntrack table"),
	gSessionsMax:       natDesc("nat-sessions-max", counter.Gauge, "capacity of the conntrack table ([conntrack] max)"),
	gFragEntries:       natDesc("nat-frag-entries", counter.Gauge, "first fragments remembered for translating their later fragments"),
	gFragHolding:       natDesc("nat-frag-holding", counter.Gauge, "non-first fragments held now"),
}

// Descs lists every counter of the NAT stage, in Counters order: the drop
// reasons (without ReasonNone), the per-worker events, then the table's
// own counters and gauges.
func Descs() []counter.Desc {
	out := make([]counter.Desc, 0, numCounters-1+numShared)
	out = append(out, reasonDescs[ReasonNone+1:]...)
	out = append(out, workerDescs[:]...)
	return append(out, sharedDescs[:]...)
}

// reasonGone is internal: the session was claimed by the reaper while a
// worker used it; the packet is untouched and is looked up again.
const reasonGone Reason = 255

// expDying marks a session's expiry while the reaper deletes it.
const expDying int64 = -1 << 63
