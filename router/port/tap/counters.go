package tap

import "vrouter/internal/counter"

// CounterStage is the Desc.Stage of a TAP port's counters.
const CounterStage = "tap"

// The receive drop reasons of a TAP port. All but bad-length can only
// happen with Options.Offloads (frames with a virtio-net header).
const (
	dropBadLength = iota
	dropGSOUnsupported
	dropBadCsumOffsets
	nDropReasons
)

// The port's events follow the drop reasons.
const (
	cGSOIntact = nDropReasons + iota
	cCsumPartial
	numCounters
)

var descs = [numCounters]counter.Desc{
	dropBadLength: desc("bad-length", counter.Drop,
		"reads that returned no frame or filled a whole batch slot (a frame larger than a slot, cut short)"),
	dropGSOUnsupported: desc("gso-unsupported", counter.Drop,
		"super-frames of a GSO type not passed on (UFO, a TCP type of the other IP version) or malformed"),
	dropBadCsumOffsets: desc("bad-csum-offsets", counter.Drop, "partial-checksum offsets outside the frame"),
	cGSOIntact:         desc("gso-intact", counter.Event, "TCP/UDP super-frames (IPv4 and IPv6) handed to the router intact"),
	cCsumPartial:       desc("csum-partial", counter.Event, "frames handed to the router with a partial checksum (super-frames included)"),
}

func desc(name string, k counter.Kind, help string) counter.Desc {
	return counter.Desc{Stage: CounterStage, Name: name, Help: help, Kind: k}
}

// Descs lists a TAP port's counters, in Port.Counters order.
func Descs() []counter.Desc { return append([]counter.Desc(nil), descs[:]...) }
