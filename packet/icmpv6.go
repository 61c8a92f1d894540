package packet

import "encoding/binary"

// ICMPv6 (RFC 4443) and Neighbor Discovery (RFC 4861, RDNSS RFC 8106).
// Parsers are views over the message (starting at the ICMPv6 type);
// builders write into a caller's buffer and return the length. Nothing
// here allocates.

// ICMPv6 types.
const (
	ICMPv6DstUnreach    = 1
	ICMPv6PacketTooBig  = 2
	ICMPv6TimeExceeded  = 3
	ICMPv6ParamProblem  = 4
	ICMPv6EchoRequest   = 128
	ICMPv6EchoReply     = 129
	ICMPv6RouterSolicit = 133
	ICMPv6RouterAdvert  = 134
	ICMPv6NeighSolicit  = 135
	ICMPv6NeighAdvert   = 136
	ICMPv6Redirect      = 137

	ICMPv6HdrLen = 8
)

// ICMPv6 codes.
const (
	// destination unreachable
	CodeV6NoRoute         = 0
	CodeV6AdminProhibited = 1
	CodeV6BeyondScope     = 2
	CodeV6AddrUnreachable = 3
	CodeV6PortUnreachable = 4
	CodeV6RejectRoute     = 6
	// time exceeded
	CodeV6HopLimit = 0
	// parameter problem
	CodeV6BadHeader  = 0
	CodeV6BadNextHdr = 1
	CodeV6BadOption  = 2
)

// IsICMPv6Error reports whether type t is an error message (RFC 4443 2.1:
// types below 128).
func IsICMPv6Error(t uint8) bool { return t < 128 }

// ND option types.
const (
	NDOptSourceLL   = 1
	NDOptTargetLL   = 2
	NDOptPrefixInfo = 3
	NDOptRedirected = 4
	NDOptMTU        = 5
	NDOptRDNSS      = 25
)

// NDHopLimit is the hop limit every ND message has (RFC 4861: 255 proves
// it was not forwarded).
const NDHopLimit = 255

// Lengths of the fixed parts of the ND messages (ICMPv6 header included).
const (
	RSLen       = 8
	RALen       = 16
	NSLen       = 24
	NALen       = 24
	RedirectLen = 40
)

// NA flags.
const (
	NARouter    = 0x80
	NASolicited = 0x40
	NAOverride  = 0x20
)

// Prefix information flags.
const (
	PrefixOnLink     = 0x80
	PrefixAutonomous = 0x40
)

// NDOptions walks the options of an ND message (opts = the bytes after the
// fixed part). Next returns the option type and its whole bytes; ok false
// at the end. Bad reports a malformed option (length 0 or past the end),
// which makes the whole message invalid (RFC 4861 7.1).
type NDOptions struct {
	b   []byte
	bad bool
}

// NewNDOptions starts a walk over opts.
func NewNDOptions(opts []byte) NDOptions { return NDOptions{b: opts} }

func (o *NDOptions) Next() (typ uint8, opt []byte, ok bool) {
	if len(o.b) == 0 || o.bad {
		return 0, nil, false
	}
	if len(o.b) < 2 || o.b[1] == 0 || int(o.b[1])*8 > len(o.b) {
		o.bad = true
		return 0, nil, false
	}
	n := int(o.b[1]) * 8
	opt, o.b = o.b[:n], o.b[n:]
	return opt[0], opt, true
}

// Bad reports whether the walk stopped at a malformed option.
func (o *NDOptions) Bad() bool { return o.bad }

// NDOptionsValid reports whether every option of opts is well formed.
func NDOptionsValid(opts []byte) bool {
	it := NewNDOptions(opts)
	for {
		if _, _, ok := it.Next(); !ok {
			return !it.Bad()
		}
	}
}

// NDLinkLayer finds a source (NDOptSourceLL) or target (NDOptTargetLL)
// link-layer address option in opts.
func NDLinkLayer(opts []byte, typ uint8) (m MAC, ok bool) {
	it := NewNDOptions(opts)
	for {
		t, o, more := it.Next()
		if !more {
			return m, false
		}
		if t == typ && len(o) >= 8 {
			copy(m[:], o[2:8])
			return m, true
		}
	}
}

// NDMsg is a view of an ND message (from the ICMPv6 type on).
type NDMsg []byte

func (m NDMsg) Type() uint8 { return m[0] }
func (m NDMsg) Code() uint8 { return m[1] }

// Target is the target address of an NS, NA or redirect.
func (m NDMsg) Target() (a [16]byte) { copy(a[:], m[8:24]); return }

// NAFlags are the R, S and O bits of an NA.
func (m NDMsg) NAFlags() uint8 { return m[4] }

// Options are the options after the fixed part of the message.
func (m NDMsg) Options() []byte {
	switch m[0] {
	case ICMPv6RouterSolicit:
		return m[RSLen:]
	case ICMPv6RouterAdvert:
		return m[RALen:]
	case ICMPv6NeighSolicit, ICMPv6NeighAdvert:
		return m[NSLen:]
	case ICMPv6Redirect:
		return m[RedirectLen:]
	}
	return nil
}

// NDErr is the outcome of CheckND.
type NDErr uint8

const (
	NDOK             NDErr = iota
	NDBadHopLimit          // not 255: the message was forwarded
	NDBadCode              // code not 0
	NDTooShort             // shorter than the message's fixed part
	NDBadChecksum          // ICMPv6 checksum wrong
	NDBadOption            // an option of length 0 or past the end
	NDBadTarget            // multicast target (NS/NA)
	NDBadSource            // unspecified source with a link-layer option, or NS from :: not to a solicited-node group, RA from a non-link-local source
	NDSolicitedMcast       // NA to a multicast destination with the S flag
	NDNotND                // not an ND message type
)

// CheckND validates an ND message m carried in ip (RFC 4861 6.1, 7.1).
func CheckND(ip IPv6, m []byte) NDErr {
	if len(m) < ICMPv6HdrLen {
		return NDTooShort
	}
	var min int
	switch m[0] {
	case ICMPv6RouterSolicit:
		min = RSLen
	case ICMPv6RouterAdvert:
		min = RALen
	case ICMPv6NeighSolicit:
		min = NSLen
	case ICMPv6NeighAdvert:
		min = NALen
	case ICMPv6Redirect:
		min = RedirectLen
	default:
		return NDNotND
	}
	if ip.HopLimit() != NDHopLimit {
		return NDBadHopLimit
	}
	if m[1] != 0 {
		return NDBadCode
	}
	if len(m) < min {
		return NDTooShort
	}
	src, dst := ip.Src(), ip.Dst()
	if !ICMPv6ChecksumOK(src, dst, m) {
		return NDBadChecksum
	}
	msg := NDMsg(m)
	opts := msg.Options()
	if !NDOptionsValid(opts) {
		return NDBadOption
	}
	unspec := IsUnspecified6(src)
	switch m[0] {
	case ICMPv6RouterSolicit:
		if _, has := NDLinkLayer(opts, NDOptSourceLL); unspec && has {
			return NDBadSource
		}
	case ICMPv6RouterAdvert, ICMPv6Redirect:
		if !IsLinkLocal6(src) {
			return NDBadSource
		}
	case ICMPv6NeighSolicit:
		if IsMulticast6(msg.Target()) {
			return NDBadTarget
		}
		if unspec {
			if !IsSolicitedNode(dst) {
				return NDBadSource
			}
			if _, has := NDLinkLayer(opts, NDOptSourceLL); has {
				return NDBadSource
			}
		}
	case ICMPv6NeighAdvert:
		if IsMulticast6(msg.Target()) {
			return NDBadTarget
		}
		if IsMulticast6(dst) && msg.NAFlags()&NASolicited != 0 {
			return NDSolicitedMcast
		}
	}
	return NDOK
}

// putLLOption writes a link-layer address option (8 bytes).
func putLLOption(b []byte, typ uint8, m MAC) int {
	b[0], b[1] = typ, 1
	copy(b[2:8], m[:])
	return 8
}

// PutNS writes a neighbour solicitation for target (checksum zero; see
// FinishICMPv6) with a source link-layer option unless sll is zero (DAD).
func PutNS(b []byte, target [16]byte, sll MAC) int {
	b[0], b[1] = ICMPv6NeighSolicit, 0
	clear(b[2:8])
	copy(b[8:24], target[:])
	n := NSLen
	if !sll.IsZero() {
		n += putLLOption(b[n:], NDOptSourceLL, sll)
	}
	return n
}

// PutNA writes a neighbour advertisement for target with flags (NARouter,
// NASolicited, NAOverride) and a target link-layer option.
func PutNA(b []byte, target [16]byte, flags uint8, tll MAC) int {
	b[0], b[1] = ICMPv6NeighAdvert, 0
	clear(b[2:8])
	b[4] = flags
	copy(b[8:24], target[:])
	return NALen + putLLOption(b[NALen:], NDOptTargetLL, tll)
}

// RA is the content of a router advertisement.
type RA struct {
	HopLimit      uint8
	Lifetime      uint16 // seconds as default router; 0 = not a default router
	ReachableTime uint32 // ms; 0 = unspecified
	RetransTimer  uint32 // ms; 0 = unspecified
	SourceLL      MAC
	MTU           uint32 // 0: no MTU option
	Prefixes      [][16]byte
	PrefixLens    []uint8
	ValidLife     uint32
	PreferredLife uint32
	DNS           [][16]byte
	DNSLifetime   uint32
}

// RALenOf is the length of the RA PutRA writes for r.
func RALenOf(r *RA) int {
	n := RALen + 8 + len(r.Prefixes)*32
	if r.MTU != 0 {
		n += 8
	}
	if len(r.DNS) > 0 {
		n += 8 + 16*len(r.DNS)
	}
	return n
}

// PutRA writes a router advertisement (b must hold RALenOf(r) bytes).
func PutRA(b []byte, r *RA) int {
	b[0], b[1] = ICMPv6RouterAdvert, 0
	b[2], b[3] = 0, 0
	b[4], b[5] = r.HopLimit, 0
	binary.BigEndian.PutUint16(b[6:], r.Lifetime)
	binary.BigEndian.PutUint32(b[8:], r.ReachableTime)
	binary.BigEndian.PutUint32(b[12:], r.RetransTimer)
	n := RALen
	n += putLLOption(b[n:], NDOptSourceLL, r.SourceLL)
	if r.MTU != 0 {
		b[n], b[n+1], b[n+2], b[n+3] = NDOptMTU, 1, 0, 0
		binary.BigEndian.PutUint32(b[n+4:], r.MTU)
		n += 8
	}
	for i, p := range r.Prefixes {
		o := b[n : n+32]
		o[0], o[1], o[2], o[3] = NDOptPrefixInfo, 4, r.PrefixLens[i], PrefixOnLink|PrefixAutonomous
		binary.BigEndian.PutUint32(o[4:], r.ValidLife)
		binary.BigEndian.PutUint32(o[8:], r.PreferredLife)
		clear(o[12:16])
		copy(o[16:32], p[:])
		n += 32
	}
	if len(r.DNS) > 0 {
		o := b[n:]
		o[0], o[1], o[2], o[3] = NDOptRDNSS, byte(1+2*len(r.DNS)), 0, 0
		binary.BigEndian.PutUint32(o[4:], r.DNSLifetime)
		for i, a := range r.DNS {
			copy(o[8+16*i:], a[:])
		}
		n += 8 + 16*len(r.DNS)
	}
	return n
}

// FinishICMPv6 computes and stores the checksum of message m sent from src
// to dst.
func FinishICMPv6(src, dst [16]byte, m []byte) {
	m[2], m[3] = 0, 0
	binary.BigEndian.PutUint16(m[2:4], ICMPv6Checksum(src, dst, m))
}
