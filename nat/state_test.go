package nat

import (
	"net/netip"
	"testing"
	"time"
)

// conn drives one SNAT TCP connection 10.1.1.10:40000 <-> 198.51.100.7:80.
type conn struct {
	t *testing.T
	n *NAT
	w *Worker
}

// o sends from the inside host, r from the server; both return the verdict.
func (c *conn) o(flags uint8, seq, ackn uint32, now int64) (Verdict, Reason) {
	p := build(c.t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: tcp, sport: 40000, dport: 80, flags: flags, seq: seq, ack: ackn})
	if v, r := c.w.In(p, nInside, now); v == Drop {
		return v, r
	}
	return c.w.Out(p, nInside, nPublic, now)
}

func (c *conn) r(flags uint8, seq, ackn uint32, now int64) (Verdict, Reason) {
	p := build(c.t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: tcp, sport: 80, dport: 40000, flags: flags, seq: seq, ack: ackn})
	return c.w.In(p, nPublic, now)
}

func (c *conn) state() string {
	ss := c.n.Sessions(netip.Addr{})
	if len(ss) == 0 {
		return "-"
	}
	return ss[0].State
}

func TestTCPTransitions(t *testing.T) {
	type step struct {
		from  byte // 'o' inside host, 'r' server
		flags uint8
		seq   uint32
		ack   uint32
		want  Verdict
		why   Reason
		state string
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"handshake", []step{
			{'o', syn, 100, 0, Translated, 0, "SYN_SENT"},
			{'r', syn | ack, 900, 101, Translated, 0, "SYN_RCVD"},
			{'o', ack, 101, 901, Translated, 0, "ESTABLISHED"},
		}},
		{"simultaneous open", []step{
			{'o', syn, 100, 0, Translated, 0, "SYN_SENT"},
			{'r', syn, 900, 0, Translated, 0, "SYN_RCVD"},
			{'o', syn | ack, 100, 901, Translated, 0, "SYN_RCVD"},
			{'r', syn | ack, 900, 101, Translated, 0, "SYN_RCVD"},
			{'o', ack, 101, 901, Translated, 0, "ESTABLISHED"},
		}},
		{"close by inside", []step{
			{'o', syn, 100, 0, Translated, 0, "SYN_SENT"},
			{'r', syn | ack, 900, 101, Translated, 0, "SYN_RCVD"},
			{'o', ack, 101, 901, Translated, 0, "ESTABLISHED"},
			{'o', fin | ack, 101, 901, Translated, 0, "FIN_WAIT"},
			{'r', ack, 901, 102, Translated, 0, "FIN_WAIT"},
			{'r', fin | ack, 901, 102, Translated, 0, "TIME_WAIT"},
			{'o', ack, 102, 902, Translated, 0, "TIME_WAIT"},
			// Reopen with a new SYN.
			{'o', syn, 5000, 0, Translated, 0, "SYN_SENT"},
			{'r', syn | ack, 7000, 5001, Translated, 0, "SYN_RCVD"},
		}},
		{"close by server", []step{
			{'o', syn, 100, 0, Translated, 0, "SYN_SENT"},
			{'r', syn | ack, 900, 101, Translated, 0, "SYN_RCVD"},
			{'o', ack, 101, 901, Translated, 0, "ESTABLISHED"},
			{'r', fin | ack, 901, 101, Translated, 0, "CLOSE_WAIT"},
			{'o', fin | ack, 101, 902, Translated, 0, "TIME_WAIT"},
		}},
		{"rst in window", []step{
			{'o', syn, 100, 0, Translated, 0, "SYN_SENT"},
			{'r', syn | ack, 900, 101, Translated, 0, "SYN_RCVD"},
			{'o', ack, 101, 901, Translated, 0, "ESTABLISHED"},
			{'r', rst, 901 + 70000, 0, Drop, TCPBadRST, "ESTABLISHED"},
			{'r', rst, 1<<32 - 70000, 0, Drop, TCPBadRST, "ESTABLISHED"},
			{'o', rst, 101 + 1<<30, 0, Drop, TCPBadRST, "ESTABLISHED"},
			{'r', rst, 901 + 10, 0, Translated, 0, "CLOSE"},
			// Reopen after RST.
			{'o', syn, 9000, 0, Translated, 0, "SYN_SENT"},
		}},
		{"reopen with a lower server ISN, then an RST of the new connection", []step{
			// The old connection's server side ended far above the new
			// ISN (a long transfer; ISNs only grow with time): the new
			// SYN-ACK must restart the server's sequence space, or its
			// RST would be judged against the old one and dropped.
			{'o', syn, 100, 0, Translated, 0, "SYN_SENT"},
			{'r', syn | ack, 3_000_000_000, 101, Translated, 0, "SYN_RCVD"},
			{'o', ack, 101, 3_000_000_001, Translated, 0, "ESTABLISHED"},
			{'r', fin | ack, 3_000_000_001, 101, Translated, 0, "CLOSE_WAIT"},
			{'o', fin | ack, 101, 3_000_000_002, Translated, 0, "TIME_WAIT"},
			{'o', syn, 5000, 0, Translated, 0, "SYN_SENT"},
			{'r', syn | ack, 2_000_000_000, 5001, Translated, 0, "SYN_RCVD"},
			{'o', ack, 5001, 2_000_000_001, Translated, 0, "ESTABLISHED"},
			{'r', rst, 2_000_000_001, 0, Translated, 0, "CLOSE"},
		}},
		{"rst refusing the syn", []step{
			{'o', syn, 100, 0, Translated, 0, "SYN_SENT"},
			{'r', rst | ack, 0, 555, Drop, TCPBadRST, "SYN_SENT"},
			{'r', rst | ack, 0, 101, Translated, 0, "CLOSE"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, w := newNAT(t, testConfig())
			c := &conn{t, n, w}
			for i, s := range tc.steps {
				var v Verdict
				var r Reason
				if s.from == 'o' {
					v, r = c.o(s.flags, s.seq, s.ack, sec)
				} else {
					v, r = c.r(s.flags, s.seq, s.ack, sec)
				}
				if v != s.want || r != s.why {
					t.Fatalf("step %d: %v %v, want %v %v", i, v, r, s.want, s.why)
				}
				if got := c.state(); got != s.state {
					t.Fatalf("step %d: state %s, want %s", i, got, s.state)
				}
			}
			if s := tc.steps[len(tc.steps)-1]; s.why != 0 && counts(n)[s.why.String()] == 0 {
				t.Fatal("drop not counted")
			}
		})
	}
}

// expiresAt reaps just before and at the timeout and checks the session
// disappears exactly then.
func expiresAt(t *testing.T, n *NAT, last int64, timeout time.Duration) {
	t.Helper()
	if n.Reap(last+int64(timeout)-1, 100) != 0 || n.Len() == 0 {
		t.Fatalf("expired before %v", timeout)
	}
	if got := n.Reap(last+int64(timeout), 100); got != 1 || n.Len() != 0 {
		t.Fatalf("not expired after %v (reaped %d, left %d)", timeout, got, n.Len())
	}
}

func TestTimeouts(t *testing.T) {
	cfg := testConfig()
	cfg.Conntrack.TCPEstablished = 3 * time.Hour
	cfg.Conntrack.TCPTransitory = 5 * time.Minute
	cfg.Conntrack.UDP = 2 * time.Minute
	cfg.Conntrack.ICMP = 90 * time.Second
	ct := cfg.Conntrack
	t.Run("syn_sent", func(t *testing.T) {
		n, w := newNAT(t, cfg)
		c := &conn{t, n, w}
		c.o(syn, 1, 0, 10*sec)
		expiresAt(t, n, 10*sec, ct.TCPTransitory)
	})
	t.Run("syn_rcvd", func(t *testing.T) {
		n, w := newNAT(t, cfg)
		c := &conn{t, n, w}
		c.o(syn, 1, 0, sec)
		c.r(syn|ack, 9, 2, 6*sec)
		if c.state() != "SYN_RCVD" {
			t.Fatal(c.state())
		}
		expiresAt(t, n, 6*sec, ct.TCPTransitory)
	})
	t.Run("close_wait", func(t *testing.T) {
		n, w := newNAT(t, cfg)
		c := &conn{t, n, w}
		c.o(syn, 1, 0, sec)
		c.r(syn|ack, 9, 2, sec)
		c.o(ack, 2, 10, sec)
		c.r(fin|ack, 10, 2, 9*sec)
		if c.state() != "CLOSE_WAIT" {
			t.Fatal(c.state())
		}
		expiresAt(t, n, 9*sec, ct.TCPTransitory)
	})
	t.Run("established", func(t *testing.T) {
		n, w := newNAT(t, cfg)
		c := &conn{t, n, w}
		c.o(syn, 1, 0, sec)
		c.r(syn|ack, 9, 2, sec)
		c.o(ack, 2, 10, 2*sec)
		// Idle longer than transitory: still there.
		expiresAt(t, n, 2*sec, ct.TCPEstablished)
	})
	t.Run("established refreshed", func(t *testing.T) {
		n, w := newNAT(t, cfg)
		c := &conn{t, n, w}
		c.o(syn, 1, 0, sec)
		c.r(syn|ack, 9, 2, sec)
		c.o(ack, 2, 10, sec)
		later := sec + int64(2*time.Hour)
		c.r(ack, 10, 2, later) // inbound TCP refreshes too
		expiresAt(t, n, later, ct.TCPEstablished)
	})
	t.Run("fin_wait", func(t *testing.T) {
		n, w := newNAT(t, cfg)
		c := &conn{t, n, w}
		c.o(syn, 1, 0, sec)
		c.r(syn|ack, 9, 2, sec)
		c.o(ack, 2, 10, sec)
		c.o(fin|ack, 2, 10, 3*sec)
		expiresAt(t, n, 3*sec, ct.TCPTransitory)
	})
	t.Run("time_wait", func(t *testing.T) {
		n, w := newNAT(t, cfg)
		c := &conn{t, n, w}
		c.o(syn, 1, 0, sec)
		c.r(syn|ack, 9, 2, sec)
		c.o(ack, 2, 10, sec)
		c.o(fin|ack, 2, 10, sec)
		c.r(fin|ack, 10, 3, 4*sec)
		if c.state() != "TIME_WAIT" {
			t.Fatal(c.state())
		}
		expiresAt(t, n, 4*sec, ct.TCPTransitory)
	})
	t.Run("close after rst", func(t *testing.T) {
		n, w := newNAT(t, cfg)
		c := &conn{t, n, w}
		c.o(syn, 1, 0, sec)
		c.r(syn|ack, 9, 2, sec)
		c.o(ack, 2, 10, sec)
		c.r(rst, 10, 0, 5*sec)
		if c.state() != "CLOSE" {
			t.Fatal(c.state())
		}
		expiresAt(t, n, 5*sec, ct.TCPTransitory)
	})
	t.Run("udp outbound refreshes, inbound does not", func(t *testing.T) {
		n, w := newNAT(t, cfg)
		out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53}), sec, Translated)
		out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53}), 50*sec, Translated)
		in(t, w, build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: udp, sport: 53, dport: 5000}), 100*sec, Translated)
		expiresAt(t, n, 50*sec, ct.UDP)
	})
	t.Run("udp to floating refreshed both ways", func(t *testing.T) {
		n, w := newNAT(t, cfg)
		in(t, w, build(t, pk{src: "198.51.100.7", dst: "203.0.113.50", proto: udp, sport: 5000, dport: 53}), sec, Translated)
		in(t, w, build(t, pk{src: "198.51.100.7", dst: "203.0.113.50", proto: udp, sport: 5000, dport: 53}), 30*sec, Translated)
		expiresAt(t, n, 30*sec, ct.UDP)
	})
	t.Run("icmp query", func(t *testing.T) {
		n, w := newNAT(t, cfg)
		out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: icmp, icmpType: 8, id: 3}), 7*sec, Translated)
		expiresAt(t, n, 7*sec, ct.ICMP)
	})
	t.Run("icmp error does not refresh", func(t *testing.T) {
		n, w := newNAT(t, cfg)
		p := build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: 5000, dport: 53})
		out(t, w, p, sec, Translated)
		e := icmpErr(t, "192.0.2.1", "203.0.113.1", 3, 3, p, 0)
		in(t, w, e, 100*sec, Translated)
		expiresAt(t, n, sec, ct.UDP)
	})
}

func TestReapBudget(t *testing.T) {
	n, w := newNAT(t, testConfig())
	for i := 0; i < 50; i++ {
		out(t, w, build(t, pk{src: "10.1.1.10", dst: "198.51.100.7", proto: udp, sport: uint16(2000 + i), dport: 53}), sec, Translated)
	}
	late := sec + int64(time.Hour)
	if got := n.Reap(late, 20); got != 20 || n.Len() != 30 {
		t.Fatalf("reaped %d, left %d", got, n.Len())
	}
	n.Reap(late, 20)
	n.Reap(late, 20)
	if n.Len() != 0 || counts(n)["nat-sessions-expired"] != 50 {
		t.Fatal(n.Len())
	}
	// Slots are reused and everything still works.
	for i := 0; i < 50; i++ {
		out(t, w, build(t, pk{src: "10.1.1.11", dst: "198.51.100.7", proto: udp, sport: uint16(2000 + i), dport: 53}), late, Translated)
		in(t, w, build(t, pk{src: "198.51.100.7", dst: "203.0.113.1", proto: udp, sport: 53, dport: uint16(2000 + i)}), late, Translated)
	}
}
