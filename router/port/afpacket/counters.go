package afpacket

import "vrouter/internal/counter"

// CounterStage is the Desc.Stage of an afpacket port's counters.
const CounterStage = "afpacket"

// Receive drop reasons, counted per port.
const (
	dropTruncated = iota
	dropBadVnetHdr
	dropGSOUnsupported
	dropTooBig
	dropBadCsumOffsets
	nDropReasons
)

// The port's other counters follow the drop reasons.
const (
	cKernelDrops = nDropReasons + iota
	cGSO
	cCsum
	numCounters
)

var descs = [numCounters]counter.Desc{
	dropTruncated:      desc("truncated", counter.Drop, "frames larger than the 64 KB receive buffer (MSG_TRUNC)"),
	dropBadVnetHdr:     desc("bad-vnet-header", counter.Drop, "frames shorter than their virtio-net header"),
	dropGSOUnsupported: desc("gso-unsupported", counter.Drop, "super-frames of a GSO type not segmented here (TCPv6, UFO) or malformed"),
	dropTooBig:         desc("too-big", counter.Drop, "frames or GSO segments larger than a batch slot"),
	dropBadCsumOffsets: desc("bad-csum-offsets", counter.Drop, "partial-checksum offsets outside the frame"),
	cKernelDrops:       desc("kernel-drops", counter.Drop, "frames the kernel dropped before the socket (receive buffer full)"),
	cGSO:               desc("gso-segmented", counter.Event, "TCP/UDP super-frames segmented in software"),
	cCsum:              desc("csum-completed", counter.Event, "partial checksums completed in software"),
}

func desc(name string, k counter.Kind, help string) counter.Desc {
	return counter.Desc{Stage: CounterStage, Name: name, Help: help, Kind: k}
}

// Descs lists an afpacket port's counters, in Port.Counters order.
func Descs() []counter.Desc { return append([]counter.Desc(nil), descs[:]...) }
