package packet

// Coalescing TCP segments (generic receive offload in software, what Linux
// GRO and VPP's gro-coalesce do): consecutive TCP segments of one flow, as
// the router is about to send them, become one super-frame with a
// virtio-net header (GSO TCPv4 or TCPv6, partial checksum), so that the
// kernel and the receiving host handle one packet instead of dozens.
// Segmenting the result (Segment, or the kernel's tcp_gso_segment) gives
// back the original segments byte for byte.
//
// A segment joins the super-frame being built when it continues it exactly:
// the same link-layer header; IPv4 without options and not a fragment, with
// the same addresses, TOS, TTL and DF and the next IP ID, or IPv6 with TCP
// right after its header (no extension header) and the same addresses,
// traffic class, flow label and hop limit; the same ports, the next
// sequence number, the same acknowledgment, window, flags and TCP options
// (timestamps included), and at most as much payload as the first segment
// (the MSS). Flags other than ACK, PSH and ECE keep a segment out (SYN,
// FIN, RST, URG, CWR); a segment with PSH, or shorter than the first,
// closes the super-frame (Linux's rules in inet_gro_receive and
// tcp_gro_receive, without the fixed-ID case a virtio-net header cannot
// express).

// groFlagsOK are the TCP flags a coalesced segment may carry.
const groFlagsOK = TCPAck | TCPPsh | 0x40 // ECE

// TCPCoalescer builds one TCP super-frame (IPv4 or IPv6). Start it with a candidate
// segment (nothing is copied yet), offer the following segments with
// Append, and take the result with Finish. Its buffer is the caller's,
// reused; nothing allocates.
type TCPCoalescer struct {
	buf   []byte // destination of the super-frame (at least MaxCoalesced bytes)
	first []byte // the first segment while it is alone (not yet copied)
	n     int    // bytes in buf (once copied)

	l3, l4, hdr int // offsets of the IP header, the TCP header and the payload
	mss         int // payload of the first segment
	nextSeq     uint32
	nextID      uint16
	segs        int
	v6          bool
	closed      bool  // nothing may be appended any more
	psh         bool  // a later segment had PSH
	flags       uint8 // the first segment's flags
}

// MaxCoalesced is the size of a TCPCoalescer's buffer: the largest IP
// packet whose length fits the 16-bit field (an IPv6 payload of 64 KB)
// behind a link-layer header of up to 26 bytes.
const MaxCoalesced = 1<<16 + IPv6HdrLen + 26

// ipTCP returns the IP header length and the IP packet length of frame f
// (IP header at l3) when it is a TCP segment that may be coalesced: IPv4
// without options and not a fragment, or IPv6 with TCP as its next header.
func ipTCP(f []byte, l3 int) (ihl, tl int, v6, ok bool) {
	if l3 < 0 || len(f) < l3+IPv6HdrLen {
		return 0, 0, false, false
	}
	switch f[l3] >> 4 {
	case 4:
		ip := IPv4(f[l3:])
		if f[l3] != 0x45 || ip.Proto() != ProtoTCP || ip.IsFragment() {
			return 0, 0, false, false
		}
		ihl, tl = IPv4MinLen, ip.TotalLen()
	case 6:
		ip := IPv6(f[l3:])
		if ip.NextHeader() != ProtoTCP {
			return 0, 0, false, false
		}
		ihl, tl, v6 = IPv6HdrLen, IPv6HdrLen+ip.PayloadLen(), true
	default:
		return 0, 0, false, false
	}
	if tl > len(f)-l3 || tl < ihl+TCPMinLen {
		return 0, 0, false, false
	}
	return ihl, tl, v6, true
}

// sameIP reports whether the IP headers a and b (at l3) agree in
// everything but the length, the IPv4 ID and header checksum.
func sameIP(a, b []byte, l3 int, v6 bool) bool {
	if v6 { // version, traffic class, flow label; next header, hop limit, addresses
		return string(a[l3:l3+4]) == string(b[l3:l3+4]) && string(a[l3+6:l3+IPv6HdrLen]) == string(b[l3+6:l3+IPv6HdrLen])
	}
	return a[l3] == b[l3] && a[l3+IPv4TOSOff] == b[l3+IPv4TOSOff] &&
		string(a[l3+IPv4FlagsFragOff:l3+IPv4ChecksumOff]) == string(b[l3+IPv4FlagsFragOff:l3+IPv4ChecksumOff]) && // flags, offset, TTL, protocol
		string(a[l3+IPv4SrcOff:l3+IPv4MinLen]) == string(b[l3+IPv4SrcOff:l3+IPv4MinLen])
}

// maxIP is the largest IP packet length a super-frame may reach.
func (c *TCPCoalescer) maxIP() int {
	if c.v6 {
		return IPv6HdrLen + 0xffff
	}
	return 0xffff
}

// Start makes f (its IP header at l3) the first segment of a new
// super-frame to be written into buf, and reports whether it can be one: a
// TCP segment with payload and coalescible flags (ipTCP). f is not copied
// until a second segment joins.
func (c *TCPCoalescer) Start(buf, f []byte, l3 int) bool {
	*c = TCPCoalescer{buf: buf}
	ihl, tl, v6, ok := ipTCP(f, l3)
	if !ok || l3+tl > len(buf) {
		return false
	}
	t := TCP(f[l3+ihl:])
	doff := t.DataOff()
	fl := t.Flags()
	if doff < TCPMinLen || ihl+doff >= tl || fl&^groFlagsOK != 0 || fl&TCPAck == 0 || fl&TCPPsh != 0 {
		return false
	}
	c.first = f[:l3+tl]
	c.v6 = v6
	c.l3, c.l4, c.hdr = l3, l3+ihl, l3+ihl+doff
	c.mss = l3 + tl - c.hdr
	c.nextSeq = t.Seq() + uint32(c.mss)
	if !v6 {
		c.nextID = IPv4(f[l3:]).ID() + 1
	}
	c.segs = 1
	c.flags = fl
	return true
}

// Segments is the number of segments in the super-frame so far.
func (c *TCPCoalescer) Segments() int { return c.segs }

// Append adds f to the super-frame if it continues it (see above) and
// reports whether it did; f is left as it was either way.
func (c *TCPCoalescer) Append(f []byte) bool {
	if c.segs == 0 || c.closed {
		return false
	}
	h := c.header()
	l3, l4, hdr := c.l3, c.l4, c.hdr
	if len(f) < hdr || f[l3]>>4 != h[l3]>>4 {
		return false
	}
	ihl, tl, _, ok := ipTCP(f, l3)
	if !ok || l3+ihl != l4 {
		return false
	}
	p := l3 + tl - hdr
	n := c.n0()
	if p <= 0 || p > c.mss || n+p > len(c.buf) || n-l3+p > c.maxIP() {
		return false
	}
	t, ht := TCP(f[l4:]), TCP(h[l4:])
	fl := t.Flags()
	if t.Seq() != c.nextSeq || fl&^TCPPsh != c.flags ||
		(!c.v6 && IPv4(f[l3:]).ID() != c.nextID) ||
		string(f[:l3]) != string(h[:l3]) || // link-layer header
		!sameIP(f, h, l3, c.v6) ||
		string(f[l4:l4+TCPSeqOff]) != string(h[l4:l4+TCPSeqOff]) || // ports
		t.Ack() != ht.Ack() ||
		f[l4+TCPDataOffOff] != h[l4+TCPDataOffOff] ||
		t.Window() != ht.Window() ||
		string(f[l4+TCPMinLen:hdr]) != string(h[l4+TCPMinLen:hdr]) { // options
		return false
	}
	if c.first != nil { // a second segment: the first goes into the buffer now
		c.n = copy(c.buf, c.first)
		c.first = nil
	}
	c.n += copy(c.buf[c.n:], f[hdr:hdr+p])
	c.segs++
	c.nextSeq += uint32(p)
	c.nextID++
	if fl&TCPPsh != 0 || p < c.mss {
		c.psh = fl&TCPPsh != 0
		c.closed = true
	}
	if c.n+c.mss > len(c.buf) || c.n-l3+c.mss > c.maxIP() { // no room for another full segment
		c.closed = true
	}
	return true
}

// n0 is the length of the super-frame so far.
func (c *TCPCoalescer) n0() int {
	if c.first != nil {
		return len(c.first)
	}
	return c.n
}

// header is the first segment's headers (in the buffer once copied).
func (c *TCPCoalescer) header() []byte {
	if c.first != nil {
		return c.first
	}
	return c.buf[:c.n]
}

// Finish completes the super-frame and returns it with its virtio-net
// header (CsumStart counted from the frame's first byte). With a single
// segment it returns that segment as it was and ok false: it needs no
// metadata.
func (c *TCPCoalescer) Finish() (frame []byte, m VnetHdr, ok bool) {
	if c.segs < 2 {
		return c.first, VnetHdr{}, false
	}
	f := c.buf[:c.n]
	t := TCP(f[c.l4:])
	if c.psh {
		t.SetFlags(t.Flags() | TCPPsh)
	}
	// A partial checksum holds the pseudo-header sum, not complemented
	// (what Linux's tcp_v4_send_check and tcp_v6_send_check leave for the
	// segmenter).
	gso := uint8(GSOTCPv4)
	if c.v6 {
		ip := IPv6(f[c.l3:])
		ip.SetPayloadLen(c.n - c.l4)
		t.SetChecksum(Fold(PseudoSum6(ip.Src(), ip.Dst(), ProtoTCP, c.n-c.l4)))
		gso = GSOTCPv6
	} else {
		ip := IPv4(f[c.l3:])
		ip.SetTotalLen(c.n - c.l3)
		ip.ComputeChecksum()
		t.SetChecksum(Fold(PseudoSum(ip.Src(), ip.Dst(), ProtoTCP, c.n-c.l4)))
	}
	m = VnetHdr{Flags: VnetNeedsCsum, GSOType: gso, HdrLen: uint16(c.hdr), GSOSize: uint16(c.mss),
		CsumStart: uint16(c.l4), CsumOffset: TCPChecksumOff}
	return f, m, true
}
