// Package ha keeps the conntrack tables of a redundant pair of routers in
// step: the master streams its session events (package nat records them)
// to its peer over UDP, with sequence numbers, acknowledgements and
// retransmission, and a peer that starts or loses the sequence asks for the
// whole table (a bulk resync). Who is master is not decided here:
// keepalived decides and tells the router (`ha state`), which tells the
// engine (SetMaster).
//
// The design follows conntrackd's FT-FW mode and VPP's NAT HA: batched
// events, a cumulative acknowledgement with a selective bitmap, retransmit
// after a timeout, and a resync when the sequence cannot be repaired.
package ha

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"

	"vrouter/nat"
)

// The datagram (all integers big-endian):
//
//	 0  magic "VH"           2
//	 2  version              1   (Version)
//	 3  type                 1   (msgData, msgAck, msgHello, msgResync)
//	 4  sender id            4   random per process start: a new id is a new sequence
//	 8  network signature    4   hash of the network names by slot (both routers must agree)
//	12  seq                  4   data: this datagram's number; hello and ack: the next number to send
//	16  base                 4   the oldest number not yet acknowledged (where a new receiver starts)
//	20  ack                  4   the next number expected from the peer (flagAck)
//	24  sack                 8   bit i: datagram ack+1+i received (flagAck)
//	32  acked id             4   the peer's sender id the ack is about
//	36  count                2   records that follow
//	38  flags                2   flagAck, flagMaster (the sender's state)
//	40  records              count x RecordLen
//	..  HMAC-SHA256          32  over everything before it, when [ha] key is set
//
// A record (RecordLen bytes):
//
//	 0  op 1 (1 upsert, 2 delete, 3 resync request), proto 1, nat flags 2,
//	    out network slot 2, 0 2
//	 8  original tuple: src 4, dst 4, sport 2, dport 2
//	20  reply tuple: src 4, dst 4, sport 2, dport 2
//	32  protocol state 4, remaining lifetime in ms 4
//	40  TCP tracking: sequence end and window of both directions, 4 x 4
const (
	Version   = 1
	HeaderLen = 40
	RecordLen = 56
	MACLen    = sha256.Size
	// MaxRecords keeps a datagram with its MAC under 1400 bytes (no
	// fragmentation on any usual path, tunnels included).
	MaxRecords  = (1400 - HeaderLen - MACLen) / RecordLen
	MaxDatagram = HeaderLen + MaxRecords*RecordLen + MACLen
)

const (
	msgData  = 1 // records, numbered
	msgAck   = 2 // an acknowledgement only
	msgHello = 3 // every Hello interval: the sender is alive, its state and sequence
)

// opResync is a record asking the master for its whole table; it travels
// in the numbered stream, so it is retransmitted until acknowledged.
const opResync nat.SyncOp = 3

const (
	flagAck    = 1
	flagMaster = 2
)

// header is a datagram's fixed part.
type header struct {
	typ     uint8
	id      uint32
	netSig  uint32
	seq     uint32
	base    uint32
	ack     uint32
	sack    uint64
	ackedID uint32
	count   uint16
	flags   uint16
}

func putHeader(b []byte, h *header) {
	b[0], b[1], b[2], b[3] = 'V', 'H', Version, h.typ
	binary.BigEndian.PutUint32(b[4:], h.id)
	binary.BigEndian.PutUint32(b[8:], h.netSig)
	binary.BigEndian.PutUint32(b[12:], h.seq)
	binary.BigEndian.PutUint32(b[16:], h.base)
	binary.BigEndian.PutUint32(b[20:], h.ack)
	binary.BigEndian.PutUint64(b[24:], h.sack)
	binary.BigEndian.PutUint32(b[32:], h.ackedID)
	binary.BigEndian.PutUint16(b[36:], h.count)
	binary.BigEndian.PutUint16(b[38:], h.flags)
}

func putRecord(b []byte, r *nat.SyncRecord) {
	b = b[:RecordLen] // one bounds check for all the fields
	be := binary.BigEndian
	b[0], b[1] = byte(r.Op), r.Proto
	be.PutUint16(b[2:], r.Flags)
	be.PutUint16(b[4:], r.OutNet)
	be.PutUint16(b[6:], 0)
	be.PutUint32(b[8:], r.OSrc)
	be.PutUint32(b[12:], r.ODst)
	be.PutUint16(b[16:], r.OSport)
	be.PutUint16(b[18:], r.ODport)
	be.PutUint32(b[20:], r.RSrc)
	be.PutUint32(b[24:], r.RDst)
	be.PutUint16(b[28:], r.RSport)
	be.PutUint16(b[30:], r.RDport)
	be.PutUint32(b[32:], r.State)
	be.PutUint32(b[36:], r.Remaining)
	for i, v := range r.TCP {
		be.PutUint32(b[40+4*i:], v)
	}
}

func getRecord(b []byte, r *nat.SyncRecord) {
	b = b[:RecordLen]
	be := binary.BigEndian
	*r = nat.SyncRecord{Op: nat.SyncOp(b[0]), Proto: b[1], Flags: be.Uint16(b[2:]), OutNet: be.Uint16(b[4:]),
		OSrc: be.Uint32(b[8:]), ODst: be.Uint32(b[12:]), OSport: be.Uint16(b[16:]), ODport: be.Uint16(b[18:]),
		RSrc: be.Uint32(b[20:]), RDst: be.Uint32(b[24:]), RSport: be.Uint16(b[28:]), RDport: be.Uint16(b[30:]),
		State: be.Uint32(b[32:]), Remaining: be.Uint32(b[36:])}
	for i := range r.TCP {
		r.TCP[i] = be.Uint32(b[40+4*i:])
	}
}

// seal appends the MAC of b (when keyed) and returns the datagram.
func seal(b []byte, key []byte) []byte {
	if key == nil {
		return b
	}
	m := hmac.New(sha256.New, key)
	m.Write(b)
	return m.Sum(b)
}

// parse checks a datagram and fills h; it returns the records' bytes or
// the reason it is dropped.
func parse(b []byte, key []byte, h *header) ([]byte, Drop) {
	if len(b) < HeaderLen {
		return nil, DropShort
	}
	if b[0] != 'V' || b[1] != 'H' || b[2] != Version {
		return nil, DropBadVersion
	}
	n := len(b)
	if key != nil {
		if n < HeaderLen+MACLen {
			return nil, DropShort
		}
		n -= MACLen
		m := hmac.New(sha256.New, key)
		m.Write(b[:n])
		var sum [MACLen]byte
		if !hmac.Equal(m.Sum(sum[:0]), b[n:]) {
			return nil, DropBadAuth
		}
	}
	be := binary.BigEndian
	*h = header{typ: b[3], id: be.Uint32(b[4:]), netSig: be.Uint32(b[8:]), seq: be.Uint32(b[12:]),
		base: be.Uint32(b[16:]), ack: be.Uint32(b[20:]), sack: be.Uint64(b[24:]), ackedID: be.Uint32(b[32:]),
		count: be.Uint16(b[36:]), flags: be.Uint16(b[38:])}
	if h.typ < msgData || h.typ > msgHello {
		return nil, DropBadType
	}
	if HeaderLen+int(h.count)*RecordLen != n || h.count > MaxRecords {
		return nil, DropBadLength
	}
	return b[HeaderLen:n], 0
}
