package packet

import (
	"bytes"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
)

func walk(b []byte) (opts [][]byte, bad []byte) {
	it := NewOptionIter(b)
	for {
		o, ok := it.Next()
		if !ok {
			return opts, it.Malformed()
		}
		opts = append(opts, o)
	}
}

func TestOptionIter(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
		want [][]byte
		bad  []byte
	}{
		{"empty", nil, nil, nil},
		{"eol", []byte{0, 131, 3, 4}, nil, nil},
		{"nops", []byte{1, 1, 1, 1}, [][]byte{{1}, {1}, {1}, {1}}, nil},
		{"lsrr", []byte{1, 131, 7, 4, 1, 2, 3, 4, 0}, [][]byte{{1}, {131, 7, 4, 1, 2, 3, 4}}, nil},
		{"two", []byte{0x94, 4, 0, 0, 7, 3, 4, 0}, [][]byte{{0x94, 4, 0, 0}, {7, 3, 4}}, nil},
		{"exact end", []byte{130, 4, 0, 0}, [][]byte{{130, 4, 0, 0}}, nil},
		{"type only", []byte{1, 131}, [][]byte{{1}}, []byte{131}},
		{"length 0", []byte{68, 0, 1, 1}, nil, []byte{68, 0, 1, 1}},
		{"length 1", []byte{1, 68, 1, 0, 0}, [][]byte{{1}}, []byte{68, 1, 0, 0}},
		{"past end", []byte{130, 4, 0, 0, 137, 9, 4, 0}, [][]byte{{130, 4, 0, 0}}, []byte{137, 9, 4, 0}},
	} {
		got, bad := walk(c.b)
		if len(got) != len(c.want) || !bytes.Equal(bad, c.bad) {
			t.Fatalf("%s: %v, malformed %v", c.name, got, bad)
		}
		for i := range got {
			if !bytes.Equal(got[i], c.want[i]) {
				t.Fatalf("%s: option %d %v want %v", c.name, i, got[i], c.want[i])
			}
		}
	}
}

// hasSourceRouteRef is the option walk HasSourceRoute did before the
// iterator: a source route option counts even when its length is bad.
func hasSourceRouteRef(o []byte) bool {
	for len(o) > 0 {
		switch o[0] {
		case 0:
			return false
		case 1:
			o = o[1:]
			continue
		case 131, 137:
			return true
		}
		if len(o) < 2 || int(o[1]) < 2 || int(o[1]) > len(o) {
			return false
		}
		o = o[o[1]:]
	}
	return false
}

// copiedRef is the copy-bit selection fragmentation did by hand before.
func copiedRef(o []byte) []byte {
	var out []byte
	for i := 0; i < len(o); {
		t := o[i]
		if t == 0 {
			break
		}
		if t == 1 {
			i++
			continue
		}
		if i+1 >= len(o) || int(o[i+1]) < 2 || i+int(o[i+1]) > len(o) {
			break
		}
		l := int(o[i+1])
		if t&0x80 != 0 {
			out = append(out, o[i:i+l]...)
		}
		i += l
	}
	return out
}

func TestOptionIterMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	types := []byte{0, 1, 7, 68, 130, 131, 137, 148}
	for n := 0; n < 200000; n++ {
		b := make([]byte, rng.IntN(41))
		for i := range b {
			if rng.IntN(3) == 0 {
				b[i] = types[rng.IntN(len(types))]
			} else {
				b[i] = byte(rng.IntN(12))
			}
		}
		hdr := make([]byte, 20+(len(b)+3)&^3)
		hdr[0] = 0x40 | byte(len(hdr)/4)
		copy(hdr[20:], b)
		if got, want := IPv4(hdr).HasSourceRoute(), hasSourceRouteRef(hdr[20:]); got != want {
			t.Fatalf("% x: source route %v want %v", b, got, want)
		}
		var cp []byte
		opts, _ := walk(b)
		for _, o := range opts {
			if o[0]&OptCopied != 0 {
				cp = append(cp, o...)
			}
		}
		if want := copiedRef(b); !bytes.Equal(cp, want) {
			t.Fatalf("% x: copied % x want % x", b, cp, want)
		}
	}
}

func TestTCPOptionIter(t *testing.T) {
	seg := make([]byte, 32)
	seg[TCPDataOffOff] = 8 << 4
	copy(seg[TCPOptionsOff:], []byte{2, 4, 5, 0xb4, 1, 3, 3, 7})
	opts, bad := walk(TCP(seg).OptionIter().b)
	if len(opts) != 3 || opts[2][0] != TCPOptWindowScale || opts[2][2] != 7 || bad != nil {
		t.Fatalf("%v %v", opts, bad)
	}
	// A data offset past the segment is cut; one below 20 has no options.
	it := TCP(seg[:24]).OptionIter()
	if o, ok := it.Next(); !ok || len(o) != 4 {
		t.Fatal(o)
	}
	if _, ok := it.Next(); ok || it.Malformed() != nil {
		t.Fatal("cut options")
	}
	seg[TCPDataOffOff] = 4 << 4
	if it := TCP(seg).OptionIter(); it.b != nil {
		t.Fatal("options below 20")
	}
}

func TestAddrConversions(t *testing.T) {
	for _, s := range []string{"0.0.0.0", "10.1.2.3", "203.0.113.255", "255.255.255.255"} {
		a := netip.MustParseAddr(s)
		v := U32(a)
		if Addr(v) != a || AddrTo4(v) != a.As4() || AddrFrom4(a.As4()) != v {
			t.Fatalf("%s: %08x", s, v)
		}
	}
	if U32(netip.MustParseAddr("10.1.2.3")) != 0x0a010203 || U32(netip.MustParseAddr("::ffff:10.1.2.3")) != 0x0a010203 {
		t.Fatal("byte order")
	}
}

func TestParseMAC(t *testing.T) {
	for _, s := range []string{"02:00:5e:10:00:01", "02-00-5E-10-0A-fF", "0200.5e10.00a1", "ff:ff:ff:ff:ff:ff",
		"02:00:5e:10:00", "02:00:5e:10:00:01:02", "02:00-5e:10:00:01", "02:00:5g:10:00:01", "0200.5e10:00a1",
		"02005e100001", "", "02:00:5e:10:00:1", "0000.0000.0000.0000", "00:00:5e:00:53:01:00:00"} {
		m, err := ParseMAC(s)
		ref, rerr := net.ParseMAC(s)
		ok := rerr == nil && len(ref) == 6
		if (err == nil) != ok || ok && !bytes.Equal(m[:], ref) {
			t.Fatalf("%q: %v %v, net.ParseMAC %v %v", s, m, err, ref, rerr)
		}
		if ok && (m.String() != ref.String() || MACFromUint64(m.Uint64()) != m) {
			t.Fatalf("%q: %s", s, m)
		}
	}
}

// FuzzParseMAC: ParseMAC accepts exactly the 48-bit addresses net.ParseMAC
// accepts, with the same bytes.
func FuzzParseMAC(f *testing.F) {
	f.Add("02:00:5e:10:00:01")
	f.Add("0200.5e10.0001")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMAC(s)
		ref, rerr := net.ParseMAC(s)
		ok := rerr == nil && len(ref) == 6
		if (err == nil) != ok || ok && !bytes.Equal(m[:], ref) {
			t.Fatalf("%q: %v %v, net.ParseMAC %v %v", s, m, err, ref, rerr)
		}
	})
}
