package tap

import "vrouter/internal/counter"

// CounterStage is the Desc.Stage of a TAP port's counters.
const CounterStage = "tap"

// The receive drop reasons of a TAP port (one today).
const (
	dropBadLength = iota
	numCounters
)

var descs = [numCounters]counter.Desc{
	dropBadLength: {Stage: CounterStage, Name: "bad-length", Kind: counter.Drop,
		Help: "reads that returned no frame or filled a whole batch slot (a frame larger than a slot, cut short)"},
}

// Descs lists a TAP port's counters, in Port.Counters order.
func Descs() []counter.Desc { return append([]counter.Desc(nil), descs[:]...) }
