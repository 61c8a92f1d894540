package nat

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
	numReasons
)

var reasonInfo = [numReasons][2]string{
	ReasonNone:       {"none", "not dropped"},
	NoSession:        {"nat-no-session", "inbound packet to a NAT address with no session, mapping or forward (unsolicited)"},
	Filtered:         {"nat-filtered", "inbound packet to a mapping from a host the inside host never contacted (address-dependent filtering)"},
	OutOfPorts:       {"nat-out-of-ports", "new flow but no free port left on its paired external address (existing mappings kept)"},
	TableFull:        {"nat-table-full", "new flow but the conntrack table holds max sessions (established flows kept)"},
	TCPNoSession:     {"nat-tcp-not-syn", "TCP segment other than a SYN for a flow with no session"},
	TCPBadRST:        {"nat-tcp-bad-rst", "TCP RST outside the receiver's window (RFC 5961 style check)"},
	ICMPErrNoSession: {"nat-icmp-error-no-session", "ICMP error to a NAT address whose quoted packet matches no session"},
	ICMPErrMismatch:  {"nat-icmp-error-mismatch", "ICMP error whose outer destination is not the quoted packet's source (RFC 5508)"},
	ICMPErrMalformed: {"nat-icmp-error-malformed", "ICMP error whose quoted packet is too short to translate"},
	FragTableFull:    {"nat-frag-table-full", "first fragment of a NATed datagram but the fragment table is full"},
	FragOutOfOrder:   {"nat-frag-out-of-order", "non-first fragment that needs its first fragment's ports, which was not seen, and cannot be held (larger than a hold slot, or every slot awaits release)"},
	Malformed:        {"nat-malformed", "transport header too short to translate"},
	UnsupportedProto: {"nat-unsupported-proto", "protocol without ports from an SNAT source (only TCP, UDP, ICMP query can share an address)"},
	TupleClash:       {"nat-tuple-clash", "the new session's reply tuple is already used by another session"},
}

// String is the counter name of r.
func (r Reason) String() string {
	if r < numReasons {
		return reasonInfo[r][0]
	}
	return "nat-reason?"
}

// Description is a one-line explanation of r.
func (r Reason) Description() string {
	if r < numReasons {
		return reasonInfo[r][1]
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

// Other (non-drop) per-worker counters follow the reasons in the counter array.
const (
	cTranslatedIn = int(numReasons) + iota
	cTranslatedOut
	cSessionsCreated
	cHairpin
	cICMPErrTranslated
	cFragTranslated
	cStateless
	numCounters
)

var counterNames = [numCounters]string{
	cTranslatedIn:      "nat-translated-in",
	cTranslatedOut:     "nat-translated-out",
	cSessionsCreated:   "nat-sessions-created",
	cHairpin:           "nat-hairpin-sessions",
	cICMPErrTranslated: "nat-icmp-errors-translated",
	cFragTranslated:    "nat-fragments-translated",
	cStateless:         "nat-stateless-1to1",
}

func counterName(i int) string {
	if i < int(numReasons) {
		return Reason(i).String()
	}
	return counterNames[i]
}

// reasonGone is internal: the session was claimed by the reaper while a
// worker used it; the packet is untouched and is looked up again.
const reasonGone Reason = 255

// expDying marks a session's expiry while the reaper deletes it.
const expDying int64 = -1 << 63
