package router

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"vrouter/fib"
	"vrouter/filter"
	"vrouter/nat"
	"vrouter/packet"
)

// Tracing: `trace N` arms a counter; each worker checks it once per batch,
// and while it is positive the next packets carry a trace record that the
// stages append fixed-size events to. Text is made only by `show trace`.
// When tracing is off the cost is one nil check per stage.
//
// Every stage has its own record type (rxRecord, l2Record, ...), written by
// one recorder method of the worker (w.trRx, w.trL2, ...) and read by the
// record's format method; nothing else knows a record's fields. Records are
// fixed-size and pointer-free, so the trace ring is never scanned by the
// garbage collector and recording allocates nothing.

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
	tsFilter
	tsIPv6
	numTraceStages
)

// The names follow CONFIG.md's trace contract (rx, parse, nat, fib, arp,
// tx or drop): the frame's link-layer parse is "parse", and the next hop's
// resolution is "arp" like the handling of an ARP packet.
var traceStageNames = [numTraceStages]string{"rx", "parse", "arp", "ipv4", "local", "nat", "fib", "arp", "icmp", "tx", "drop", "filter", "ipv6"}

func (s traceStage) String() string {
	if s < numTraceStages {
		return traceStageNames[s]
	}
	return fmt.Sprintf("stage%d", uint8(s))
}

// traceEvent is one stage's record of a packet: stage says which of the
// record fields is set.
type traceEvent struct {
	stage traceStage
	rx    rxRecord
	l2    l2Record
	arp   arpRecord
	ipv4  ipv4Record
	local localRecord
	nat   natRecord
	fib   fibRecord
	neigh neighRecord
	icmp  icmpRecord
	tx    txRecord
	drop  dropRecord
	filt  filterRecord
	ip6   ip6Record // trace6.go
}

const maxTraceEvents = 24

// tracePkt is the record of one traced packet.
type tracePkt struct {
	seq  uint64
	at   int64 // wall clock when received, Unix nanoseconds
	len  int
	nev  int
	lost int       // events beyond maxTraceEvents, not recorded
	flow traceFlow // the packet as last recorded (ipv4 or nat): a NAT record's "before"
	ev   [maxTraceEvents]traceEvent
}

// start begins the record of a packet of n bytes.
func (p *tracePkt) start(seq uint64, n int) {
	*p = tracePkt{seq: seq, at: time.Now().UnixNano(), len: n}
}

// add reserves the next event for stage st; nil when the record is full.
func (p *tracePkt) add(st traceStage) *traceEvent {
	if p.nev == maxTraceEvents {
		p.lost++
		return nil
	}
	e := &p.ev[p.nev]
	p.nev++
	e.stage = st
	return e
}

type tracer struct {
	armed atomic.Bool // read once per batch by every worker
	mu    sync.Mutex
	left  int64
	seq   uint64
	buf   []tracePkt // ring of the packets of the last trace
	next  int
	full  bool
}

const traceKeep = 1024

// arm traces the next n (1..traceKeep) packets, forgetting earlier ones.
func (t *tracer) arm(n int) {
	t.mu.Lock()
	t.left = int64(n)
	t.armed.Store(true)
	t.buf = make([]tracePkt, min(max(n, 1), traceKeep))
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

// traceNames gives the names of the port and network indices in records,
// and of a filter rule (ruleset index, rule index or filter.Default).
type traceNames struct {
	net, port func(uint32) string
	rule      func(set uint32, rule int32) string
}

// --- the stages: record, recorder, formatter ---

// rx: the port and VLAN a frame came in on.
type rxRecord struct{ port, vid uint16 }

func (w *worker) trRx(port int, vid uint16) {
	if p := w.tp; p != nil {
		if e := p.add(tsRx); e != nil {
			e.rx = rxRecord{port: uint16(port), vid: vid}
		}
	}
}

func (r *rxRecord) format(n traceNames) string {
	return fmt.Sprintf("port %s vlan %d", n.port(uint32(r.port)), r.vid)
}

// l2: the network the (port, VLAN) maps to, the EtherType and source MAC.
type l2Record struct {
	net, etherType uint16
	src            packet.MAC
}

func (w *worker) trL2(net uint16, etherType uint16, src packet.MAC) {
	if p := w.tp; p != nil {
		if e := p.add(tsL2); e != nil {
			e.l2 = l2Record{net: net, etherType: etherType, src: src}
		}
	}
}

func (r *l2Record) format(n traceNames) string {
	return fmt.Sprintf("network %s ethertype 0x%04x src %s", n.net(uint32(r.net)), r.etherType, r.src)
}

// arp: a received ARP packet that passed the checks.
type arpRecord struct {
	op             uint16
	sender, target uint32
}

func (w *worker) trARP(op uint16, sender, target uint32) {
	if p := w.tp; p != nil {
		if e := p.add(tsARP); e != nil {
			e.arp = arpRecord{op: op, sender: sender, target: target}
		}
	}
}

func (r *arpRecord) format(traceNames) string {
	op := fmt.Sprintf("op %d", r.op)
	switch r.op {
	case packet.ARPRequest:
		op = "request"
	case packet.ARPReply:
		op = "reply"
	}
	return fmt.Sprintf("%s %s -> %s", op, packet.Addr(r.sender), packet.Addr(r.target))
}

// ipv4: a received IPv4 packet that passed the header checks.
type ipv4Record struct {
	flow traceFlow
	ttl  uint8
}

func (w *worker) trIPv4(ip packet.IPv4) {
	if p := w.tp; p != nil {
		p.addIPv4(ip)
	}
}

func (p *tracePkt) addIPv4(ip packet.IPv4) {
	p.flow = flowOf(ip)
	if e := p.add(tsIPv4); e != nil {
		e.ipv4 = ipv4Record{flow: p.flow, ttl: ip.TTL()}
	}
}

func (r *ipv4Record) format(traceNames) string {
	return fmt.Sprintf("%s ttl %d", r.flow.String(), r.ttl)
}

// local: a packet for the router itself.
type localRecord struct{ echo bool }

func (w *worker) trLocal(echo bool) {
	if p := w.tp; p != nil {
		if e := p.add(tsLocal); e != nil {
			e.local = localRecord{echo: echo}
		}
	}
}

func (r *localRecord) format(traceNames) string {
	if r.echo {
		return "for the router (echo request answered)"
	}
	return "for the router"
}

// nat: a translation by the NAT's In or Out stage, the packet before and
// after it.
type natRecord struct {
	stage         nat.Stage
	before, after traceFlow
}

// trNAT records that the NAT stage st translated ip (already rewritten).
func (w *worker) trNAT(st nat.Stage, ip packet.IPv4) {
	if p := w.tp; p != nil {
		p.addNAT(st, ip)
	}
}

func (p *tracePkt) addNAT(st nat.Stage, ip packet.IPv4) {
	before := p.flow
	p.flow = flowOf(ip)
	if e := p.add(tsNAT); e != nil {
		e.nat = natRecord{stage: st, before: before, after: p.flow}
	}
}

func (r *natRecord) format(traceNames) string {
	return fmt.Sprintf("%s: %s %s => %s", r.stage, r.before.protoName(), r.before.endpoints(), r.after.endpoints())
}

// fib: the route a destination matched.
type fibRecord struct {
	kind fib.Kind
	net  uint16
	gw   uint32
}

func (w *worker) trFIB(nh fib.NextHop) {
	if p := w.tp; p != nil {
		if e := p.add(tsFIB); e != nil {
			e.fib = fibRecord{kind: nh.Kind, net: nh.Network, gw: nh.Gateway}
		}
	}
}

func (r *fibRecord) format(n traceNames) string {
	switch r.kind {
	case fib.KindConnected:
		return fmt.Sprintf("%s network %s", r.kind, n.net(uint32(r.net)))
	case fib.KindGateway:
		return fmt.Sprintf("%s network %s via %s", r.kind, n.net(uint32(r.net)), packet.Addr(r.gw))
	}
	return r.kind.String()
}

// neigh: the next hop's resolution on the egress network.
type neighRecord struct {
	ip       uint32
	net      uint16
	mac      packet.MAC
	resolved bool
	queued   bool // unresolved: the packet waits (else the queue was full)
	request  bool // unresolved: an ARP request was sent
}

func (w *worker) trNeigh(net uint16, ip uint32, mac packet.MAC, resolved, queued, request bool) {
	if p := w.tp; p != nil {
		if e := p.add(tsNeigh); e != nil {
			e.neigh = neighRecord{ip: ip, net: net, mac: mac, resolved: resolved, queued: queued, request: request}
		}
	}
}

func (r *neighRecord) format(n traceNames) string {
	if r.resolved {
		return fmt.Sprintf("%s on %s is %s", packet.Addr(r.ip), n.net(uint32(r.net)), r.mac)
	}
	s := fmt.Sprintf("%s on %s unresolved: ", packet.Addr(r.ip), n.net(uint32(r.net)))
	if r.queued {
		s += "queued"
	} else {
		s += "queue full"
	}
	if r.request {
		s += ", ARP request sent"
	}
	return s
}

// icmp: an ICMP error the router sends.
type icmpRecord struct {
	typ, code uint8
	mtu       uint16 // frag-needed
	to        uint32
}

func (w *worker) trICMP(typ, code uint8, to uint32, mtu int) {
	if p := w.tp; p != nil {
		if e := p.add(tsICMP); e != nil {
			e.icmp = icmpRecord{typ: typ, code: code, mtu: uint16(mtu), to: to}
		}
	}
}

func (r *icmpRecord) format(traceNames) string {
	s := fmt.Sprintf("sent %s to %s", icmpName(r.typ, r.code), packet.Addr(r.to))
	if r.typ == packet.ICMPUnreachable && r.code == packet.CodeFragNeeded {
		s += fmt.Sprintf(" mtu %d", r.mtu)
	}
	return s
}

// tx: a frame queued on a port.
type txRecord struct {
	port, vid uint16
	bytes     uint32
}

func (w *worker) trTx(port int, vid uint16, bytes int) {
	if p := w.tp; p != nil {
		if e := p.add(tsTx); e != nil {
			e.tx = txRecord{port: uint16(port), vid: vid, bytes: uint32(bytes)}
		}
	}
}

func (r *txRecord) format(n traceNames) string {
	return fmt.Sprintf("port %s vlan %d, %d bytes", n.port(uint32(r.port)), r.vid, r.bytes)
}

// drop: the reason a stage dropped the packet; for DropNAT the NAT's own
// reason.
type dropRecord struct {
	reason DropReason
	nat    nat.Reason
}

func (w *worker) trDrop(r DropReason) {
	if p := w.tp; p != nil {
		if e := p.add(tsDrop); e != nil {
			e.drop = dropRecord{reason: r}
		}
	}
}

func (w *worker) trNATDrop(why nat.Reason) {
	if p := w.tp; p != nil {
		if e := p.add(tsDrop); e != nil {
			e.drop = dropRecord{reason: DropNAT, nat: why}
		}
	}
}

func (r *dropRecord) format(traceNames) string {
	if r.reason == DropNAT && r.nat != nat.ReasonNone {
		return fmt.Sprintf("nat: %s (%s)", r.nat, r.nat.Description())
	}
	return fmt.Sprintf("%s (%s)", r.reason, r.reason.Description())
}

// filter: a filter stage's view of the packet: the rule (or default) that
// decided a first packet, or what the conntrack table said of a packet that
// was not classified (established, related, fragment, invalid), or the RST
// a reject sent.
type filterRecord struct {
	side   uint8 // sideIn, sideOut
	kind   uint8 // frClassified, frState, frReset
	state  nat.FlowState
	why    nat.Reason // frState, invalid
	action filter.Action
	set    uint16 // frClassified: the ruleset's index in its Set
	rule   int32  // frClassified: rule index or filter.Default
	to     uint32 // frReset: the RST's destination and port
	port   uint16
}

const (
	frClassified = iota
	frState
	frReset
	frReset6 // the RST's destination in the event's ip6.a
)

var sideNames = [2]string{"in", "out"}

func (w *worker) trFilter(side uint8, rs *filter.Ruleset, v filter.Verdict) {
	if p := w.tp; p != nil {
		if e := p.add(tsFilter); e != nil {
			e.filt = filterRecord{side: side, kind: frClassified, action: v.Action, set: uint16(rs.Index()), rule: v.Rule}
		}
	}
}

func (w *worker) trFilterState(side uint8, st nat.FlowState, why nat.Reason) {
	if p := w.tp; p != nil {
		if e := p.add(tsFilter); e != nil {
			e.filt = filterRecord{side: side, kind: frState, state: st, why: why}
		}
	}
}

func (w *worker) trFilterReset(to uint32, port uint16) {
	if p := w.tp; p != nil {
		if e := p.add(tsFilter); e != nil {
			e.filt = filterRecord{kind: frReset, to: to, port: port}
		}
	}
}

func (r *filterRecord) format(n traceNames) string {
	switch r.kind {
	case frClassified:
		return fmt.Sprintf("%s %s: %s", sideNames[r.side&1], n.rule(uint32(r.set), r.rule), r.action)
	case frReset:
		return fmt.Sprintf("reject: sent tcp reset to %s:%d", packet.Addr(r.to), r.port)
	}
	if r.state == nat.FlowInvalid {
		return fmt.Sprintf("%s invalid: %s (%s)", sideNames[r.side&1], r.why, r.why.Description())
	}
	return fmt.Sprintf("%s %s", sideNames[r.side&1], r.state)
}

// format renders the event as its stage's name and its record.
func (e *traceEvent) format(n traceNames) string {
	var s string
	switch e.stage {
	case tsRx:
		s = e.rx.format(n)
	case tsL2:
		s = e.l2.format(n)
	case tsARP:
		s = e.arp.format(n)
	case tsIPv4:
		s = e.ipv4.format(n)
	case tsLocal:
		s = e.local.format(n)
	case tsNAT:
		s = e.nat.format(n)
	case tsFIB:
		s = e.fib.format(n)
	case tsNeigh:
		s = e.neigh.format(n)
	case tsICMP:
		s = e.icmp.format(n)
	case tsTx:
		s = e.tx.format(n)
	case tsDrop:
		s = e.drop.format(n)
	case tsFilter:
		if e.filt.kind == frReset6 {
			s = formatReset6(e.ip6.a, e.filt.port)
		} else {
			s = e.filt.format(n)
		}
	case tsIPv6:
		s = e.ip6.format(n)
	}
	return fmt.Sprintf("%-7s %s", e.stage, s)
}

// --- flows: what the trace shows of an IPv4 packet ---

// traceFlow is an IPv4 packet's addresses, protocol and the transport
// fields that identify its flow.
type traceFlow struct {
	src, dst     uint32
	sport, dport uint16 // TCP/UDP ports; ICMP: identifier and sequence number
	frag         uint16 // the MF bit and fragment offset of the IPv4 header
	proto        uint8
	l4           uint8 // TCP flags; ICMP type
	code         uint8 // ICMP code
	hasL4        bool  // the transport header was read (not a later fragment, not truncated)
}

func flowOf(ip packet.IPv4) traceFlow {
	f := traceFlow{src: ip.Src(), dst: ip.Dst(), proto: ip.Proto(), frag: ip.FlagsFrag() & 0x3fff}
	if ip.FragOff() != 0 {
		return f
	}
	pl := ip.Payload()
	switch f.proto {
	case packet.ProtoTCP:
		if len(pl) >= 14 {
			t := packet.TCP(pl)
			f.sport, f.dport, f.l4, f.hasL4 = t.SrcPort(), t.DstPort(), t.Flags(), true
		}
	case packet.ProtoUDP:
		if len(pl) >= 4 {
			u := packet.UDP(pl)
			f.sport, f.dport, f.hasL4 = u.SrcPort(), u.DstPort(), true
		}
	case packet.ProtoICMP:
		if len(pl) >= packet.ICMPHdrLen {
			m := packet.ICMP(pl)
			f.l4, f.code, f.sport, f.dport, f.hasL4 = m.Type(), m.Code(), m.ID(), m.Seq(), true
		}
	}
	return f
}

func (f *traceFlow) protoName() string {
	switch f.proto {
	case packet.ProtoTCP:
		return "tcp"
	case packet.ProtoUDP:
		return "udp"
	case packet.ProtoICMP:
		return "icmp"
	}
	return fmt.Sprintf("proto %d", f.proto)
}

func (f *traceFlow) ports() bool {
	return f.hasL4 && (f.proto == packet.ProtoTCP || f.proto == packet.ProtoUDP)
}

func (f *traceFlow) icmpQuery() bool {
	return f.hasL4 && f.proto == packet.ProtoICMP && packet.IsICMPQuery(f.l4)
}

// endpoints is "src:port -> dst:port" (TCP, UDP), "src -> dst id N" (ICMP
// queries) or "src -> dst".
func (f *traceFlow) endpoints() string {
	switch {
	case f.ports():
		return fmt.Sprintf("%s:%d -> %s:%d", packet.Addr(f.src), f.sport, packet.Addr(f.dst), f.dport)
	case f.icmpQuery():
		return fmt.Sprintf("%s -> %s id %d", packet.Addr(f.src), packet.Addr(f.dst), f.sport)
	}
	return fmt.Sprintf("%s -> %s", packet.Addr(f.src), packet.Addr(f.dst))
}

// String is the flow as the ipv4 line shows it, e.g.
// "tcp 192.0.2.10:40000 -> 198.51.100.10:80 [S]" or
// "icmp 192.0.2.10 -> 192.0.2.1 echo request id 9 seq 1".
func (f *traceFlow) String() string {
	var b strings.Builder
	b.WriteString(f.protoName())
	b.WriteByte(' ')
	switch {
	case f.ports():
		b.WriteString(f.endpoints())
		if f.proto == packet.ProtoTCP {
			b.WriteString(" [" + tcpFlags(f.l4) + "]")
		}
	case f.hasL4 && f.proto == packet.ProtoICMP:
		fmt.Fprintf(&b, "%s -> %s %s", packet.Addr(f.src), packet.Addr(f.dst), icmpName(f.l4, f.code))
		if packet.IsICMPQuery(f.l4) {
			fmt.Fprintf(&b, " id %d seq %d", f.sport, f.dport)
		}
	default:
		b.WriteString(f.endpoints())
	}
	if f.frag != 0 {
		fmt.Fprintf(&b, " fragment offset %d", int(f.frag&0x1fff)*8)
		if f.frag&0x2000 != 0 {
			b.WriteString(" (more follow)")
		}
	}
	return b.String()
}

// tcpFlags writes TCP flags as tcpdump does: S F R P U E W, "." for ACK.
func tcpFlags(fl uint8) string {
	var b []byte
	for _, x := range [...]struct {
		bit uint8
		c   byte
	}{{packet.TCPSyn, 'S'}, {packet.TCPFin, 'F'}, {packet.TCPRst, 'R'}, {packet.TCPPsh, 'P'}, {packet.TCPUrg, 'U'},
		{0x40, 'E'}, {0x80, 'W'}, {packet.TCPAck, '.'}} {
		if fl&x.bit != 0 {
			b = append(b, x.c)
		}
	}
	if len(b) == 0 {
		return "none"
	}
	return string(b)
}

var icmpUnreachCodes = map[uint8]string{
	packet.CodeNetUnreachable:   "net-unreachable",
	packet.CodeHostUnreachable:  "host-unreachable",
	packet.CodeProtoUnreachable: "proto-unreachable",
	packet.CodePortUnreachable:  "port-unreachable",
	packet.CodeFragNeeded:       "frag-needed",
	5:                           "source-route-failed",
	9:                           "net-prohibited",
	10:                          "host-prohibited",
	packet.CodeAdminProhibited:  "admin-prohibited",
}

var icmpTimeCodes = map[uint8]string{0: "ttl", 1: "reassembly"}

// icmpName names an ICMP type and code: "echo request",
// "dest-unreachable/frag-needed", "time-exceeded/ttl", "type 42 code 0".
func icmpName(typ, code uint8) string {
	var name string
	var codes map[uint8]string
	switch typ {
	case packet.ICMPEchoReply:
		name = "echo reply"
	case packet.ICMPEchoRequest:
		name = "echo request"
	case packet.ICMPTimestamp:
		name = "timestamp request"
	case packet.ICMPTimestampReply:
		name = "timestamp reply"
	case packet.ICMPUnreachable:
		name, codes = "dest-unreachable", icmpUnreachCodes
	case packet.ICMPTimeExceeded:
		name, codes = "time-exceeded", icmpTimeCodes
	case packet.ICMPParamProblem:
		name = "param-problem"
	case packet.ICMPRedirect:
		name = "redirect"
	case packet.ICMPSourceQuench:
		name = "source-quench"
	default:
		return fmt.Sprintf("type %d code %d", typ, code)
	}
	if c, ok := codes[code]; ok {
		return name + "/" + c
	}
	if codes != nil || code != 0 {
		return fmt.Sprintf("%s/code %d", name, code)
	}
	return name
}

// --- rendering ---

// appendLines renders the packet: a line for the packet, then an indented
// line per stage event. n names networks, ports and filter rules.
func (p *tracePkt) appendLines(out []string, n traceNames) []string {
	out = append(out, fmt.Sprintf("packet %d at %s: %d bytes", p.seq, time.Unix(0, p.at).Format("15:04:05.000000"), p.len))
	for i := range p.ev[:p.nev] {
		out = append(out, "  "+p.ev[i].format(n))
	}
	if p.lost > 0 {
		out = append(out, fmt.Sprintf("  ... %d more events not recorded", p.lost))
	}
	return out
}
