package router

import (
	"testing"

	"vrouter/fib"
	"vrouter/nat"
)

func TestTraceFormat(t *testing.T) {
	names := traceNames{
		net:  func(i uint32) string { return []string{"a", "b"}[i] },
		port: func(i uint32) string { return []string{"pa", "pb"}[i] },
	}
	a, b := uint32(0xc000020a), uint32(0xc633640a) // 192.0.2.10, 198.51.100.10
	for _, c := range []struct {
		e    traceEvent
		want string
	}{
		{traceEvent{stage: tsRx, rx: rxRecord{port: 1, vid: 10}}, "rx      port pb vlan 10"},
		{traceEvent{stage: tsARP, arp: arpRecord{op: 2, sender: a, target: b}}, "arp     reply 192.0.2.10 -> 198.51.100.10"},
		{traceEvent{stage: tsIPv4, ipv4: ipv4Record{ttl: 5, flow: traceFlow{src: a, dst: b, proto: 6, sport: 1, dport: 2, l4: 0x18, hasL4: true}}},
			"ipv4    tcp 192.0.2.10:1 -> 198.51.100.10:2 [P.] ttl 5"},
		{traceEvent{stage: tsIPv4, ipv4: ipv4Record{ttl: 5, flow: traceFlow{src: a, dst: b, proto: 17, frag: 1480 / 8}}},
			"ipv4    udp 192.0.2.10 -> 198.51.100.10 fragment offset 1480 ttl 5"},
		{traceEvent{stage: tsIPv4, ipv4: ipv4Record{ttl: 5, flow: traceFlow{src: a, dst: b, proto: 17, sport: 1, dport: 2, hasL4: true, frag: 0x2000}}},
			"ipv4    udp 192.0.2.10:1 -> 198.51.100.10:2 fragment offset 0 (more follow) ttl 5"},
		{traceEvent{stage: tsIPv4, ipv4: ipv4Record{ttl: 1, flow: traceFlow{src: a, dst: b, proto: 47}}}, "ipv4    proto 47 192.0.2.10 -> 198.51.100.10 ttl 1"},
		{traceEvent{stage: tsIPv4, ipv4: ipv4Record{ttl: 1, flow: traceFlow{src: a, dst: b, proto: 1, l4: 3, code: 4, hasL4: true}}},
			"ipv4    icmp 192.0.2.10 -> 198.51.100.10 dest-unreachable/frag-needed ttl 1"},
		{traceEvent{stage: tsNAT, nat: natRecord{stage: nat.StageIn,
			before: traceFlow{src: b, dst: 0xc6336401, proto: 17, sport: 53, dport: 1024, hasL4: true},
			after:  traceFlow{src: b, dst: a, proto: 17, sport: 53, dport: 5000, hasL4: true}}},
			"nat     in: udp 198.51.100.10:53 -> 198.51.100.1:1024 => 198.51.100.10:53 -> 192.0.2.10:5000"},
		{traceEvent{stage: tsFIB, fib: fibRecord{kind: fib.KindGateway, net: 1, gw: b}}, "fib     gateway network b via 198.51.100.10"},
		{traceEvent{stage: tsFIB, fib: fibRecord{kind: fib.KindDrop}}, "fib     blackhole"},
		{traceEvent{stage: tsNeigh, neigh: neighRecord{ip: b, net: 1}}, "arp     198.51.100.10 on b unresolved: queue full"},
		{traceEvent{stage: tsICMP, icmp: icmpRecord{typ: 11, to: a}}, "icmp    sent time-exceeded/ttl to 192.0.2.10"},
		{traceEvent{stage: tsTx, tx: txRecord{port: 0, bytes: 60}}, "tx      port pa vlan 0, 60 bytes"},
		{traceEvent{stage: tsDrop, drop: dropRecord{reason: DropTTLExceeded}}, "drop    ttl-exceeded (TTL expired in transit (ICMP 11/0 sent))"},
		{traceEvent{stage: tsDrop, drop: dropRecord{reason: DropNAT, nat: nat.OutOfPorts}},
			"drop    nat: nat-out-of-ports (new flow but no free port left on its paired external address (existing mappings kept))"},
	} {
		if got := c.e.format(names); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}

func TestTraceNames(t *testing.T) {
	for _, c := range []struct {
		typ, code uint8
		want      string
	}{
		{8, 0, "echo request"}, {0, 0, "echo reply"}, {14, 0, "timestamp reply"},
		{3, 3, "dest-unreachable/port-unreachable"}, {3, 13, "dest-unreachable/admin-prohibited"}, {3, 7, "dest-unreachable/code 7"},
		{11, 1, "time-exceeded/reassembly"}, {12, 0, "param-problem"}, {5, 1, "redirect/code 1"}, {42, 1, "type 42 code 1"},
	} {
		if got := icmpName(c.typ, c.code); got != c.want {
			t.Errorf("icmpName(%d, %d) = %q, want %q", c.typ, c.code, got, c.want)
		}
	}
	for fl, want := range map[uint8]string{0x02: "S", 0x12: "S.", 0x10: ".", 0x11: "F.", 0x04: "R", 0: "none", 0xc2: "SEW"} {
		if got := tcpFlags(fl); got != want {
			t.Errorf("tcpFlags(%#x) = %q, want %q", fl, got, want)
		}
	}
}

// A full record keeps its first events and counts the rest.
func TestTraceFull(t *testing.T) {
	var p tracePkt
	p.start(1, 60)
	for i := 0; i < maxTraceEvents+3; i++ {
		if e := p.add(tsTx); e != nil {
			e.tx = txRecord{bytes: uint32(i)}
		}
	}
	lines := p.appendLines(nil, traceNames{net: func(uint32) string { return "n" }, port: func(uint32) string { return "p" }})
	if len(lines) != 1+maxTraceEvents+1 || lines[len(lines)-1] != "  ... 3 more events not recorded" {
		t.Fatalf("%q", lines)
	}
}
