package router

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"vrouter/fib"
	"vrouter/nat"
	"vrouter/packet"
)

// Tracing: `trace N` arms a counter; each worker checks it once per batch,
// and while it is positive the next packets carry a trace record that the
// stages append fixed-size events to. Text is made only by `show trace`.
// When tracing is off the cost is one nil check per stage.

type traceStage uint8

const (
	tsRx traceStage = iota
	tsL2
	tsARP
	tsIPv4
	tsLocal
	tsNAT
	tsFIB
	tsNeigh
	tsICMP
	tsTx
	tsDrop
)

type traceEvent struct {
	stage   traceStage
	reason  DropReason
	a, b, c uint32
	mac     packet.MAC
}

const maxTraceEvents = 24

type tracePkt struct {
	seq  uint64
	at   time.Time
	port int
	len  int
	ev   [maxTraceEvents]traceEvent
	nev  int
}

type tracer struct {
	armed atomic.Bool // read once per batch by every worker
	mu    sync.Mutex
	left  int64
	seq   uint64
	buf   []tracePkt // ring of the last traceKeep packets
	next  int
	full  bool
}

const traceKeep = 1024

func (t *tracer) arm(n int) {
	t.mu.Lock()
	t.left = int64(n)
	t.armed.Store(true)
	t.buf = make([]tracePkt, traceKeep)
	t.next, t.full = 0, false
	t.mu.Unlock()
}

// take reserves one traced packet; false when tracing is off.
func (t *tracer) take() (uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.left <= 0 {
		t.armed.Store(false)
		return 0, false
	}
	t.left--
	t.seq++
	return t.seq, true
}

func (t *tracer) store(p *tracePkt) {
	t.mu.Lock()
	if t.buf != nil {
		t.buf[t.next] = *p
		t.next++
		if t.next == len(t.buf) {
			t.next, t.full = 0, true
		}
	}
	t.mu.Unlock()
}

func (t *tracer) packets() []tracePkt {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []tracePkt
	if t.full {
		out = append(out, t.buf[t.next:]...)
	}
	return append(out, t.buf[:t.next]...)
}

// tr appends an event to the packet being traced (if any).
func (w *worker) tr(st traceStage, a, b, c uint32) {
	if p := w.tp; p != nil && p.nev < maxTraceEvents {
		p.ev[p.nev] = traceEvent{stage: st, a: a, b: b, c: c}
		p.nev++
	}
}

func (w *worker) trMAC(st traceStage, a uint32, m packet.MAC) {
	if p := w.tp; p != nil && p.nev < maxTraceEvents {
		p.ev[p.nev] = traceEvent{stage: st, a: a, mac: m}
		p.nev++
	}
}

func (w *worker) trDrop(r DropReason) {
	if p := w.tp; p != nil && p.nev < maxTraceEvents {
		p.ev[p.nev] = traceEvent{stage: tsDrop, reason: r}
		p.nev++
	}
}

// appendLines renders the packet: a line for the packet, then an indented
// line per stage event. netName and portName give the names of network and
// port indices.
func (p *tracePkt) appendLines(out []string, netName, portName func(uint32) string) []string {
	out = append(out, fmt.Sprintf("packet %d at %s: %d bytes", p.seq, p.at.Format("15:04:05.000000"), p.len))
	for _, e := range p.ev[:p.nev] {
		var line string
		switch e.stage {
		case tsRx:
			line = fmt.Sprintf("rx      port %s vlan %d", portName(e.a), e.b)
		case tsL2:
			line = fmt.Sprintf("l2      network %s ethertype 0x%04x src %s", netName(e.a), e.b, e.mac)
		case tsARP:
			op := map[uint32]string{1: "request", 2: "reply"}[e.a]
			line = fmt.Sprintf("arp     %s %s -> %s", op, addrOf(e.b), addrOf(e.c))
		case tsIPv4:
			line = fmt.Sprintf("ipv4    %s -> %s proto %d ttl %d", addrOf(e.a), addrOf(e.b), e.c>>8, e.c&0xff)
		case tsLocal:
			line = "local   for the router (echo request answered)"
			if e.a == 0 {
				line = "local   for the router"
			}
		case tsNAT:
			line = fmt.Sprintf("nat     %s: now %s -> %s", map[uint32]string{0: "in", 1: "out"}[e.c], addrOf(e.a), addrOf(e.b))
		case tsFIB:
			line = fmt.Sprintf("fib     %s network %s via %s", fib.Kind(e.a), netName(e.b), addrOf(e.c))
		case tsNeigh:
			if e.b == 1 {
				line = fmt.Sprintf("neigh   %s is %s", addrOf(e.a), e.mac)
			} else {
				line = fmt.Sprintf("neigh   %s unresolved: queued, ARP request", addrOf(e.a))
			}
		case tsICMP:
			line = fmt.Sprintf("icmp    sent type %d code %d to %s", e.a, e.b, addrOf(e.c))
		case tsTx:
			line = fmt.Sprintf("tx      port %s vlan %d, %d bytes", portName(e.a), e.b, e.c)
		case tsDrop:
			line = fmt.Sprintf("drop    %s (%s)", e.reason, e.reason.Description())
			if e.reason == DropNAT {
				line = fmt.Sprintf("drop    nat: %s (%s)", nat.Reason(e.a), nat.Reason(e.a).Description())
			}
		}
		out = append(out, "  "+line)
	}
	return out
}
