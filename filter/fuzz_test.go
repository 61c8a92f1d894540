package filter

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"testing"

	"vrouter/config"
	"vrouter/packet"
)

// ruleText turns fuzz bytes into [[filter.rule]] tables: a byte for the
// action and protocol, then lists of prefixes and ports whose values come
// from the next bytes, biased towards nesting prefixes and range edges.
func ruleText(data []byte) string {
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	bases := []uint32{0x0a000000, 0x0a000100, 0xc0000200, 0xffffffff, 0}
	var b strings.Builder
	for n := int(next() % 12); n > 0; n-- {
		h := next()
		fmt.Fprintf(&b, "[[filter.rule]]\naction = %q\n", []string{"accept", "drop", "reject"}[h%3])
		proto := []string{"", "tcp", "udp", "icmp", "any"}[h>>2%5]
		if proto != "" {
			fmt.Fprintf(&b, "proto = %q\n", proto)
		}
		for _, key := range []string{"source", "destination"} {
			c := next()
			if c%4 == 0 {
				continue
			}
			var items []string
			for range c % 4 {
				a := bases[next()%5] ^ uint32(next())<<uint(next()%32)
				bits := int(next() % 33)
				p, _ := packet.Addr(a).Prefix(bits)
				items = append(items, fmt.Sprintf("%q", p.String()))
			}
			fmt.Fprintf(&b, "%s = [%s]\n", key, strings.Join(items, ", "))
		}
		if proto == "tcp" || proto == "udp" {
			for _, key := range []string{"sport", "dport"} {
				c := next()
				if c%3 == 0 {
					continue
				}
				var items []string
				for range c % 4 {
					lo := []uint16{0, 1, 22, 80, 1024, 65535}[next()%6] + uint16(next()%4)
					hi := lo + uint16(next()%3)*uint16(next())
					if hi < lo {
						hi = 65535
					}
					if lo == hi {
						items = append(items, fmt.Sprint(lo))
					} else {
						items = append(items, fmt.Sprintf("%d-%d", lo, hi))
					}
				}
				fmt.Fprintf(&b, "%s = %q\n", key, strings.Join(items, ","))
			}
		}
		if proto == "icmp" && next()%2 == 0 {
			fmt.Fprintf(&b, "icmp_type = %d\n", next())
		}
	}
	return b.String()
}

// tomlSafe reports whether s can go between double quotes as it is.
func tomlSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// FuzzCompile: rule text from the fuzzer, with a raw string as a port list
// and as an address, goes through the configuration parser and the
// compiler; whatever the parser accepts must compile and classify as the
// first-match scan does. Nothing may panic.
func FuzzCompile(f *testing.F) {
	f.Add([]byte{3, 0x05, 1, 1, 2, 24, 2, 0, 3, 32, 1, 3, 1, 0, 2, 5}, "22,80-90", "10.0.0.0/8")
	f.Add([]byte{11, 0xff, 3, 0, 0, 0, 0, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7}, "0-65535", "0.0.0.0/0")
	f.Add([]byte{5, 0x0c, 0, 0, 0x08, 2, 0x10, 1, 1, 0x11}, "90-80", "10.0.0.1/8")
	f.Add([]byte{}, "", "")
	f.Add([]byte{1, 2, 3}, " 1 , 2-3 ,65535", "192.0.2.7")
	f.Fuzz(func(t *testing.T, data []byte, portList, addr string) {
		var b strings.Builder
		b.WriteString("[router]\nname = \"r\"\n[[filter]]\nname = \"f\"\ndefault = \"reject\"\n")
		b.WriteString(ruleText(data))
		if tomlSafe(portList) && tomlSafe(addr) {
			fmt.Fprintf(&b, "[[filter.rule]]\naction = \"accept\"\nproto = \"udp\"\ndport = \"%s\"\nsource = [\"%s\"]\n", portList, addr)
		}
		b.WriteString(ruleText(data[len(data)/2:]))
		c, err := config.Parse("f.toml", []byte(b.String()))
		if err != nil {
			var errs config.Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("parse error %T %v", err, err)
			}
			return
		}
		s, err := Compile(c.Filters)
		if err != nil {
			t.Fatalf("a valid configuration does not compile: %v\n%s", err, b.String())
		}
		fl := &c.Filters[0]
		rs := s.Ruleset(0)
		h := fnv.New64a()
		h.Write(data)
		h.Write([]byte(portList))
		g := newGen(h.Sum64(), false)
		for range 64 {
			k := g.key(fl)
			if got, want := rs.Classify(k), naive(fl, k); got != want {
				t.Fatalf("%+v: got %+v, want %+v\n%s", k, got, want, b.String())
			}
		}
	})
}
