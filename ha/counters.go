package ha

import "vrouter/internal/counter"

// CounterStage is the Desc.Stage of the sync's counters.
const CounterStage = "ha"

// Drop is why a received datagram was dropped.
type Drop uint8

const (
	DropNone       Drop = iota
	DropShort           // shorter than a header (or header and MAC)
	DropBadVersion      // not "VH" version 1
	DropBadType         // unknown message type
	DropBadLength       // length does not match the record count
	DropBadAuth         // HMAC-SHA256 does not match [ha] key (or a key is missing on one side)
	DropWrongPeer       // from an address that is not [ha] peer
	DropWrongNet        // the peer numbers its networks differently
	DropOwn             // our own datagram looped back
	numDrops
)

// Events (and gauges) of the sync, after the drops in the counter array.
const (
	cRecordsSent = int(numDrops) + iota
	cDatagramsSent
	cRecordsAcked
	cRetransmits
	cRecordsLost
	cRecordsReceived
	cDatagramsReceived
	cInstalled
	cUpdated
	cRemoved
	cRefused
	cDuplicates
	cOutOfOrder
	cResyncsRequested
	cResyncsServed
	cRefreshes
	cSendErrors
	cTransitions
	numCounters
)

func desc(name string, k counter.Kind, help string) counter.Desc {
	return counter.Desc{Stage: CounterStage, Name: name, Help: help, Kind: k}
}

var descs = [numCounters]counter.Desc{
	DropShort:          desc("ha-short", counter.Drop, "sync datagrams shorter than a header"),
	DropBadVersion:     desc("ha-bad-version", counter.Drop, "sync datagrams of another protocol or version"),
	DropBadType:        desc("ha-bad-type", counter.Drop, "sync datagrams of an unknown message type"),
	DropBadLength:      desc("ha-bad-length", counter.Drop, "sync datagrams whose length does not match their record count"),
	DropBadAuth:        desc("ha-bad-auth", counter.Drop, "sync datagrams whose HMAC-SHA256 does not match [ha] key"),
	DropWrongPeer:      desc("ha-wrong-peer", counter.Drop, "sync datagrams from an address other than [ha] peer"),
	DropWrongNet:       desc("ha-wrong-networks", counter.Drop, "sync datagrams from a peer whose networks differ (both routers must declare the same networks)"),
	DropOwn:            desc("ha-own", counter.Drop, "sync datagrams of this router that came back to it"),
	cRecordsSent:       desc("ha-sessions-sent", counter.Event, "session records sent to the peer (first transmissions)"),
	cDatagramsSent:     desc("ha-datagrams-sent", counter.Event, "sync data datagrams sent (first transmissions)"),
	cRecordsAcked:      desc("ha-sessions-acked", counter.Event, "session records the peer acknowledged"),
	cRetransmits:       desc("ha-retransmits", counter.Event, "sync data datagrams sent again (not acknowledged in time)"),
	cRecordsLost:       desc("ha-sessions-lost", counter.Event, "session records given up unacknowledged (the peer was gone; it resyncs when it comes back)"),
	cRecordsReceived:   desc("ha-sessions-received", counter.Event, "session records received from the peer and applied"),
	cDatagramsReceived: desc("ha-datagrams-received", counter.Event, "valid sync datagrams received"),
	cInstalled:         desc("ha-sessions-installed", counter.Event, "sessions installed from the peer's records"),
	cUpdated:           desc("ha-sessions-updated", counter.Event, "installed sessions brought up to date by the peer's records"),
	cRemoved:           desc("ha-sessions-removed", counter.Event, "sessions removed because the peer deleted them"),
	cRefused:           desc("ha-sessions-refused", counter.Event, "session records that could not be installed (table full)"),
	cDuplicates:        desc("ha-duplicates", counter.Event, "data datagrams received again (a retransmission of one already applied)"),
	cOutOfOrder:        desc("ha-out-of-order", counter.Event, "data datagrams received ahead of a missing one and held until it came"),
	cResyncsRequested:  desc("ha-resyncs-requested", counter.Event, "bulk resyncs this router asked for (it started, or lost the peer's sequence)"),
	cResyncsServed:     desc("ha-resyncs-served", counter.Event, "bulk resyncs this router sent (the whole table) at the peer's request"),
	cRefreshes:         desc("ha-refreshes", counter.Event, "periodic walks of the whole table sent to the peer (keeps long-lived sessions alive there)"),
	cSendErrors:        desc("ha-send-errors", counter.Event, "sync datagrams the socket refused to send"),
	cTransitions:       desc("ha-transitions", counter.Event, "changes between master and not master seen by the sync"),
}

// extraDescs are the counters read from elsewhere when shown.
var (
	descQueueFull = desc("ha-queue-full", counter.Drop, "session events lost because a worker's sync ring was full (a resync to the peer repairs them)")
	descUnacked   = desc("ha-unacked", counter.Gauge, "sync datagrams sent and not yet acknowledged")
	descMaster    = desc("ha-master", counter.Gauge, "1 when this router is the HA master")
)

// Descs lists the sync's counters in Counters order.
func Descs() []counter.Desc {
	out := append([]counter.Desc(nil), descs[DropNone+1:]...)
	return append(out, descQueueFull, descUnacked, descMaster)
}

func (d Drop) String() string {
	if d < numDrops && d != DropNone {
		return descs[d].Name
	}
	return "none"
}

// Zero gives every counter at zero (a router without [ha] still shows them).
func Zero() []counter.Value {
	ds := Descs()
	out := make([]counter.Value, len(ds))
	for i, d := range ds {
		out[i] = counter.Value{Desc: d}
	}
	return out
}
