package afxdp

import "vrouter/internal/counter"

// CounterStage is the Desc.Stage of an afxdp port's counters.
const CounterStage = "afxdp"

// Counters of a port, in Port.Counters order. The kernel's (XDP_STATISTICS,
// summed over the port's sockets) come first, then the driver's own.
const (
	cRxDropped = iota
	cRxRingFull
	cRxInvalidDescs
	cTxInvalidDescs
	cTxTooBig
	cTxRingFull
	cFillRingEmpty
	cTxRingEmpty
	cCsum
	cTxKicks
	cTxKickErrors
	cRxPolls
	cRxNoHeadroom
	numCounters
)

var descs = [numCounters]counter.Desc{
	cRxDropped:      desc("rx-dropped", counter.Drop, "frames the kernel dropped before the socket (larger than a UMEM frame, or no fill-ring frame to put them in)"),
	cRxRingFull:     desc("rx-ring-full", counter.Drop, "frames the kernel dropped because the rx ring was full (the router did not keep up)"),
	cRxInvalidDescs: desc("rx-invalid-descs", counter.Drop, "fill-ring entries the kernel rejected"),
	cTxInvalidDescs: desc("tx-invalid-descs", counter.Drop, "tx descriptors the kernel rejected (frames not sent)"),
	cTxTooBig:       desc("tx-too-big", counter.Drop, "frames not sent: larger than a UMEM frame"),
	cTxRingFull:     desc("tx-ring-full", counter.Drop, "frames not sent: every UMEM tx frame was still waiting for the kernel"),
	cFillRingEmpty:  desc("fill-ring-empty", counter.Event, "times the kernel found the fill ring empty (rx frames starved)"),
	cTxRingEmpty:    desc("tx-ring-empty", counter.Event, "times the kernel found the tx ring empty (normally once at the end of each wakeup that drained it)"),
	cCsum:           desc("csum-completed", counter.Event, "partial TCP/UDP checksums (a local sender's offload) completed in software"),
	cTxKicks:        desc("tx-kicks", counter.Event, "sendto wakeups for the tx ring"),
	cTxKickErrors:   desc("tx-kick-errors", counter.Event, "sendto wakeups that failed with an error other than busy"),
	cRxPolls:        desc("rx-polls", counter.Event, "poll calls made with every rx ring empty (after the spin)"),
	cRxNoHeadroom:   desc("rx-no-headroom", counter.Drop, "frames dropped: the kernel left less than the router's headroom in front of them in the UMEM frame"),
}

func desc(name string, k counter.Kind, help string) counter.Desc {
	return counter.Desc{Stage: CounterStage, Name: name, Help: help, Kind: k}
}

// Descs lists an afxdp port's counters, in Port.Counters order.
func Descs() []counter.Desc { return append([]counter.Desc(nil), descs[:]...) }
