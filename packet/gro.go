package packet

// Coalescing TCP segments (generic receive offload in software, what Linux
// GRO and VPP's gro-coalesce do): consecutive IPv4 TCP segments of one
// flow, as the router is about to send them, become one super-frame with a
// virtio-net header (GSO TCPv4, partial checksum), so that the kernel and
// the receiving host handle one packet instead of dozens. Segmenting the
// result (SegmentV4, or the kernel's tcp_gso_segment) gives back the
// original segments byte for byte.
//
// A segment joins the super-frame being built when it continues it exactly:
// the same link-layer header, IPv4 without options and not a fragment, the
// same addresses, TOS, TTL and DF, the next IP ID, the same ports, the next
// sequence number, the same acknowledgment, window, flags and TCP options
// (timestamps included), and at most as much payload as the first segment
// (the MSS). Flags other than ACK, PSH and ECE keep a segment out (SYN,
// FIN, RST, URG, CWR); a segment with PSH, or shorter than the first,
// closes the super-frame (Linux's rules in inet_gro_receive and
// tcp_gro_receive, without the fixed-ID case a virtio-net header cannot
// express).

// groFlagsOK are the TCP flags a coalesced segment may carry.
const groFlagsOK = TCPAck | TCPPsh | 0x40 // ECE

// TCPCoalescer builds one IPv4 TCP super-frame. Start it with a candidate
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
	closed      bool  // nothing may be appended any more
	psh         bool  // a later segment had PSH
	flags       uint8 // the first segment's flags
}

// MaxCoalesced is the largest super-frame a TCPCoalescer builds: an IPv4
// packet of 64 KB (less one MSS's slack, its total length must fit 16 bits)
// behind a link-layer header of up to 26 bytes.
const MaxCoalesced = 1<<16 + 26

// Start makes f (its IPv4 header at l3) the first segment of a new
// super-frame to be written into buf, and reports whether it can be one:
// an IPv4 TCP segment with payload, coalescible flags and no IP options.
// f is not copied until a second segment joins.
func (c *TCPCoalescer) Start(buf, f []byte, l3 int) bool {
	*c = TCPCoalescer{buf: buf}
	if l3 < 0 || len(f) < l3+IPv4MinLen+TCPMinLen {
		return false
	}
	ip := IPv4(f[l3:])
	if ip[IPv4VerIHLOff] != 0x45 || ip.Proto() != ProtoTCP || ip.IsFragment() {
		return false
	}
	tl := ip.TotalLen()
	if tl > len(f)-l3 || tl < IPv4MinLen+TCPMinLen {
		return false
	}
	t := TCP(f[l3+IPv4MinLen:])
	doff := t.DataOff()
	fl := t.Flags()
	if doff < TCPMinLen || IPv4MinLen+doff >= tl || fl&^groFlagsOK != 0 || fl&TCPAck == 0 || fl&TCPPsh != 0 {
		return false
	}
	c.first = f[:l3+tl]
	c.l3, c.l4, c.hdr = l3, l3+IPv4MinLen, l3+IPv4MinLen+doff
	c.mss = l3 + tl - c.hdr
	if c.l3+tl > len(buf) {
		return false
	}
	c.nextSeq = t.Seq() + uint32(c.mss)
	c.nextID = ip.ID() + 1
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
	if len(f) < hdr {
		return false
	}
	ip, t := IPv4(f[l3:]), TCP(f[l4:])
	tl := ip.TotalLen()
	p := l3 + tl - hdr
	if tl > len(f)-l3 || p <= 0 || p > c.mss || c.n0()+p > len(c.buf) || c.n0()-l3+p > 0xffff {
		return false
	}
	fl := t.Flags()
	hip, ht := IPv4(h[l3:]), TCP(h[l4:])
	if ip[IPv4VerIHLOff] != 0x45 || ip.ID() != c.nextID || t.Seq() != c.nextSeq ||
		fl&^TCPPsh != c.flags ||
		string(f[:l3]) != string(h[:l3]) || // link-layer header
		ip[IPv4TOSOff] != hip[IPv4TOSOff] ||
		string(f[l3+IPv4FlagsFragOff:l3+IPv4ChecksumOff]) != string(h[l3+IPv4FlagsFragOff:l3+IPv4ChecksumOff]) || // flags, offset, TTL, protocol
		string(f[l3+IPv4SrcOff:l4+TCPSeqOff]) != string(h[l3+IPv4SrcOff:l4+TCPSeqOff]) || // addresses, ports
		t.Ack() != ht.Ack() ||
		string(f[l4+TCPDataOffOff:l4+TCPFlagsOff]) != string(h[l4+TCPDataOffOff:l4+TCPFlagsOff]) ||
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
	if c.n+c.mss > len(c.buf) || c.n-l3+c.mss > 0xffff { // no room for another full segment
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
	ip := IPv4(f[c.l3:])
	ip.SetTotalLen(c.n - c.l3)
	ip.ComputeChecksum()
	t := TCP(f[c.l4:])
	if c.psh {
		t.SetFlags(t.Flags() | TCPPsh)
	}
	// A partial checksum holds the pseudo-header sum, not complemented
	// (what Linux's tcp_v4_send_check leaves for the segmenter).
	t.SetChecksum(Fold(PseudoSum(ip.Src(), ip.Dst(), ProtoTCP, c.n-c.l4)))
	m = VnetHdr{Flags: VnetNeedsCsum, GSOType: GSOTCPv4, HdrLen: uint16(c.hdr), GSOSize: uint16(c.mss),
		CsumStart: uint16(c.l4), CsumOffset: TCPChecksumOff}
	return f, m, true
}
