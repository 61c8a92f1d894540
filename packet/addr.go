package packet

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Addresses: the data path keeps IPv4 addresses as uint32 in host order
// (a.b.c.d = a<<24 | b<<16 | c<<8 | d); the control plane uses netip.Addr.
// These are the only conversions between the two (and [4]byte).

// AddrFrom4 packs four bytes into a uint32.
func AddrFrom4(b [4]byte) uint32 { return binary.BigEndian.Uint32(b[:]) }

// AddrTo4 is the inverse of AddrFrom4.
func AddrTo4(a uint32) [4]byte { return [4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)} }

// U32 is a (IPv4, or IPv4-mapped IPv6) as a uint32. It panics on other
// addresses, as netip.Addr.As4 does; callers pass validated IPv4 addresses.
func U32(a netip.Addr) uint32 { return AddrFrom4(a.As4()) }

// Addr is the netip.Addr of a.
func Addr(a uint32) netip.Addr { return netip.AddrFrom4(AddrTo4(a)) }

// ParseMAC parses an Ethernet address in one of the forms net.ParseMAC
// accepts for 48-bit addresses: 02:00:5e:10:00:01, 02-00-5E-10-00-01,
// 0200.5e10.0001 or 02005e100001.
func ParseMAC(s string) (MAC, error) {
	if m, ok := parseMAC(s); ok {
		return m, nil
	}
	return MAC{}, fmt.Errorf("invalid MAC address %q", s)
}

func parseMAC(s string) (m MAC, ok bool) {
	hexByte := func(i int) (byte, bool) {
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		return hi<<4 | lo, ok1 && ok2
	}
	switch {
	case len(s) == 17 && (s[2] == ':' || s[2] == '-'):
		for i := range m {
			if i > 0 && s[i*3-1] != s[2] {
				return MAC{}, false
			}
			b, ok := hexByte(i * 3)
			if !ok {
				return MAC{}, false
			}
			m[i] = b
		}
	case len(s) == 14 && s[4] == '.' && s[9] == '.':
		for i := range m {
			b, ok := hexByte(i/2*5 + i%2*2)
			if !ok {
				return MAC{}, false
			}
			m[i] = b
		}
	case len(s) == 12 && s[2] != ':' && s[2] != '-' && s[4] != '.':
		for i := range m {
			b, ok := hexByte(i * 2)
			if !ok {
				return MAC{}, false
			}
			m[i] = b
		}
	default:
		return MAC{}, false
	}
	return m, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
