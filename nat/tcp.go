package nat

import (
	"sync/atomic"

	"vrouter/packet"
)

// TCP states (RFC 5382, RFC 7857 section 2). The opener is the side that sent
// the first SYN; either direction may open (an inbound SYN through an
// endpoint-independent mapping, or a reopen after close).
const (
	tcpNone        = iota
	tcpSynSent     // SYN from the opener
	tcpSynRcvd     // SYN seen both ways (SYN/ACK or simultaneous open)
	tcpEstablished // handshake completed
	tcpFinWait     // the opener sent FIN
	tcpCloseWait   // the other side sent FIN
	tcpTimeWait    // FIN both ways
	tcpClose       // RST seen (held 4 minutes, RFC 7857 2.2)
)

var tcpStateNames = [...]string{"NONE", "SYN_SENT", "SYN_RCVD", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "TIME_WAIT", "CLOSE"}

// tcpStep is the state machine: the new low state bits after a segment with
// flags from direction dir (0 original, 1 reply). RST validity is checked by
// the caller before.
func tcpStep(st uint32, dir int, flags uint8) uint32 {
	state := st & stStateMask
	fromOpener := (dir == 1) == (st&stOpener1 != 0)
	set := func(s uint32) uint32 { return st&^stStateMask | s }
	if flags&packet.TCPRst != 0 {
		return set(tcpClose)
	}
	syn := flags&packet.TCPSyn != 0
	ack := flags&packet.TCPAck != 0
	fin := flags&packet.TCPFin != 0
	switch {
	case syn && !ack:
		switch state {
		case tcpNone, tcpTimeWait, tcpClose:
			// New connection or reopen: forget the old one.
			st &^= stOpener1 | stFin0 | stFin1 | stSeen0 | stSeen1 | stWS0 | stWS1 | 0xff<<stWS0Shift
			if dir == 1 {
				st |= stOpener1
			}
			return set(tcpSynSent)
		case tcpSynSent:
			if !fromOpener {
				return set(tcpSynRcvd) // simultaneous open
			}
		}
		return st
	case syn && ack:
		if state == tcpSynSent && !fromOpener {
			return set(tcpSynRcvd)
		}
		return st
	}
	switch state {
	case tcpSynRcvd:
		if fin {
			return finStep(set(tcpEstablished), dir, fromOpener)
		}
		if ack {
			return set(tcpEstablished)
		}
	case tcpEstablished, tcpFinWait, tcpCloseWait:
		if fin {
			return finStep(st, dir, fromOpener)
		}
	}
	return st
}

func finStep(st uint32, dir int, fromOpener bool) uint32 {
	if dir == 0 {
		st |= stFin0
	} else {
		st |= stFin1
	}
	s := uint32(tcpCloseWait)
	if fromOpener {
		s = tcpFinWait
	}
	if st&(stFin0|stFin1) == stFin0|stFin1 {
		s = tcpTimeWait
	}
	return st&^stStateMask | s
}

// seqGT reports a > b in sequence space.
func seqGT(a, b uint32) bool { return int32(a-b) > 0 }

// wscale returns the window scale option of a SYN segment (-1 when absent,
// or after the end of the options or a malformed one).
func wscale(t packet.TCP) int {
	for it := t.OptionIter(); ; {
		o, ok := it.Next()
		if !ok {
			return -1
		}
		if o[0] == packet.TCPOptWindowScale && len(o) == 3 {
			return min(int(o[2]), 14)
		}
	}
}

// tcpTrack checks and applies one TCP segment to a session of either
// family, given by its state word and its sequence words (end0, win0,
// end1, win1). It returns the drop reason (TCPBadRST) or 0, the timeout
// that applies afterwards, and whether the segment changed the TCP state
// (an event for the HA sync).
func tcpTrack(state *atomic.Uint64, seqs *[4]atomic.Uint32, gen uint64, dir int, t packet.TCP, payload int, r *Rules) (why Reason, to int64, changed bool) {
	flags, seq, ack, win := t.Flags(), t.Seq(), t.Ack(), uint32(t.Window())
	var st uint64
	for {
		st = state.Load()
		if st>>32 != gen || st&stLive == 0 {
			return 0, r.tcpTrans, false // gone meanwhile: translate this one, nothing to track
		}
		lo := uint32(st)
		if flags&packet.TCPRst != 0 && !rstOK(seqs, lo, dir, seq, ack, flags) {
			return TCPBadRST, 0, false
		}
		nl := tcpStep(lo, dir, flags)
		if flags&packet.TCPSyn != 0 {
			if ws := wscale(t); ws >= 0 {
				if dir == 0 {
					nl = nl&^(0xf<<stWS0Shift) | uint32(ws)<<stWS0Shift | stWS0
				} else {
					nl = nl&^(0xf<<stWS1Shift) | uint32(ws)<<stWS1Shift | stWS1
				}
			}
		}
		if dir == 0 {
			nl |= stSeen0
		} else {
			nl |= stSeen1 | stReplied
		}
		if nl == lo || state.CompareAndSwap(st, st&^0xffffffff|uint64(nl)) {
			changed = (nl^lo)&stStateMask != 0
			st = st&^0xffffffff | uint64(nl)
			break
		}
	}
	lo := uint32(st)
	// Sequence tracking for the RST window check.
	end := seq + uint32(payload)
	if flags&(packet.TCPSyn) != 0 {
		end++
	}
	if flags&packet.TCPFin != 0 {
		end++
	}
	// A SYN starts its sender's sequence space afresh: a pure SYN always
	// (a new connection or a reopen), a SYN-ACK while the handshake is on
	// (on a reopen the new ISN may lie below the old connection's end; a
	// late duplicate SYN-ACK of an established connection changes nothing).
	e := &seqs[dir*2]
	restart := flags&packet.TCPSyn != 0 && (flags&packet.TCPAck == 0 || lo&stStateMask == tcpSynRcvd)
	if old := e.Load(); old == 0 || restart || seqGT(end, old) {
		e.Store(end)
	}
	if flags&packet.TCPSyn == 0 && lo&(stWS0|stWS1) == stWS0|stWS1 {
		sh := (lo >> stWS0Shift) & 0xf
		if dir == 1 {
			sh = (lo >> stWS1Shift) & 0xf
		}
		win <<= sh
	}
	wp := &seqs[dir*2+1]
	if win > wp.Load() || flags&packet.TCPSyn != 0 {
		wp.Store(win)
	}
	if lo&stStateMask == tcpEstablished {
		return 0, r.tcpEst, changed
	}
	return 0, r.tcpTrans, changed
}

// rstOK: an RST is accepted when its sequence number is within the window
// the receiver advertised around what the sender has sent; an RST from a
// side that sent nothing yet must acknowledge the other side's SYN.
func rstOK(seqs *[4]atomic.Uint32, st uint32, dir int, seq, ack uint32, flags uint8) bool {
	other := 1 - dir
	seenDir := st&stSeen0 != 0
	seenOther := st&stSeen1 != 0
	if dir == 1 {
		seenDir, seenOther = seenOther, seenDir
	}
	if !seenDir {
		return flags&packet.TCPAck != 0 && seenOther && ack == seqs[other*2].Load()
	}
	end := seqs[dir*2].Load()
	w := seqs[other*2+1].Load()
	if w < 1024 {
		w = 1024
	}
	d := int64(int32(seq - end))
	return d >= -int64(w) && d <= int64(w)
}
