package router

import "sync"

// arpLimit is the router-wide token bucket of the ARP requests it sends
// ([neighbor] request_rate per second, holding one second's worth): a scan
// of a large connected prefix makes the neighbour cache ask for every
// address, and without it the router would broadcast as fast as the scan
// arrives. It is taken only when a request is about to be sent (a miss or
// a retransmit), never per forwarded packet.
type arpLimit struct {
	mu     sync.Mutex
	tokens int64 // scaled by 1e9 (one token = 1e9)
	last   int64 // ns
	primed bool
}

// allow takes a token at time now (ns) for a bucket of rate per second; a
// rate <= 0 is unlimited.
func (l *arpLimit) allow(now int64, rate int) bool {
	if rate <= 0 {
		return true
	}
	const scale = int64(1e9)
	max := int64(rate) * scale
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.primed {
		l.tokens, l.last, l.primed = max, now, true
	}
	if el := now - l.last; el > 0 {
		if el > int64(1e9) {
			el = int64(1e9) // a full bucket at most; no overflow
		}
		l.tokens = min(max, l.tokens+el*int64(rate))
		l.last = now
	}
	if l.tokens < scale {
		return false
	}
	l.tokens -= scale
	return true
}
