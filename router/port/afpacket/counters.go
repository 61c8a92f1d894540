package afpacket

import "vrouter/internal/counter"

// CounterStage is the Desc.Stage of an afpacket port's counters.
const CounterStage = "afpacket"

// Drop reasons, counted per port (all queues of a port together).
const (
	dropTruncated = iota
	dropBadVnetHdr
	dropGSOUnsupported
	dropTooBig
	dropBadCsumOffsets
	dropRingBadFrame
	dropTxNoVnet
	dropTxRingFull
	nDropReasons
)

// The port's other counters follow the drop reasons.
const (
	cKernelDrops = nDropReasons + iota
	cGSO
	cCsum
	cGSOIntact
	cCsumIntact
	cTxGSO
	cTxCsum
	cTxGSOQdisc
	numCounters
)

var descs = [numCounters]counter.Desc{
	dropTruncated:      desc("truncated", counter.Drop, "frames larger than the receive buffer or ring block"),
	dropBadVnetHdr:     desc("bad-vnet-header", counter.Drop, "frames shorter than their virtio-net header"),
	dropGSOUnsupported: desc("gso-unsupported", counter.Drop, "super-frames of a GSO type not handled here (TCPv6, UFO) or malformed"),
	dropTooBig:         desc("too-big", counter.Drop, "frames or GSO segments larger than a batch slot"),
	dropBadCsumOffsets: desc("bad-csum-offsets", counter.Drop, "partial-checksum offsets outside the frame"),
	dropRingBadFrame:   desc("ring-bad-frame", counter.Drop, "rx ring frames with offsets outside their block (rest of the block skipped)"),
	dropTxNoVnet:       desc("tx-no-vnet", counter.Drop, "frames given offload metadata to send on a socket without the virtio-net header"),
	dropTxRingFull:     desc("tx-ring-full", counter.Drop, "frames not sent: no tx ring slot came free (the kernel still sending all of them)"),
	cKernelDrops:       desc("kernel-drops", counter.Drop, "frames the kernel dropped before the socket (receive buffer or ring full)"),
	cGSO:               desc("gso-segmented", counter.Event, "TCP/UDP super-frames segmented in software"),
	cCsum:              desc("csum-completed", counter.Event, "partial checksums completed in software"),
	cGSOIntact:         desc("gso-intact", counter.Event, "super-frames received and handed on intact with their GSO metadata"),
	cCsumIntact:        desc("csum-partial", counter.Event, "frames received and handed on with a partial checksum and its metadata"),
	cTxGSO:             desc("tx-gso", counter.Event, "super-frames sent with GSO metadata (segmented by the kernel or the peer)"),
	cTxCsum:            desc("tx-csum-partial", counter.Event, "frames sent with a partial checksum for the kernel or the peer to complete"),
	cTxGSOQdisc:        desc("tx-gso-via-qdisc", counter.Event, "super-frames the device could not take with the qdisc bypassed, sent through the qdisc to be segmented"),
}

func desc(name string, k counter.Kind, help string) counter.Desc {
	return counter.Desc{Stage: CounterStage, Name: name, Help: help, Kind: k}
}

// Descs lists an afpacket port's counters, in Port.Counters order.
func Descs() []counter.Desc { return append([]counter.Desc(nil), descs[:]...) }
