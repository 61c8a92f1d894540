package config

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// fbase is base with a ruleset; appended text starts at line 16.
const fbase = base + `[[filter]]
name = "f1"
default = "drop"
`

func TestFilterBaseValid(t *testing.T) {
	if _, err := Parse("t.toml", []byte(fbase)); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(fbase, "\n"); n != 15 {
		t.Fatalf("fbase has %d lines", n)
	}
}

func TestFilterParse(t *testing.T) {
	src := `[router]
name = "r"
[[port]]
name = "p1"
driver = "pipe"
[[network]]
name = "n1"
links = ["p1"]
addresses = ["192.0.2.1/24"]
filter_in = "in"
filter_out = "out"

[[filter]]
name = "in"
default = "reject"

[[filter.rule]]
action = "accept"
proto = "tcp"
source = ["198.51.100.0/24", "203.0.113.7"]
destination = "192.0.2.0/25"
sport = "1024-65535"
dport = " 22 , 0,65535, 80-80 "

[[filter.rule]]
action = "drop"
proto = "udp"
dport = 53

[[filter.rule]]
action = "accept"
proto = "icmp"
icmp_type = "echo-request"

[[filter.rule]]
action = "accept"
proto = "icmp"
icmp_type = 11

[[filter.rule]]
action = "reject"
source = ["0.0.0.0/0"]

[[filter]]
name = "out"
default = "accept"
rule = [ { action = "drop", destination = ["10.0.0.0/8"] } ]

[[filter]]
name = "unused"
default = "drop"
`
	c, err := Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	pf := netip.MustParsePrefix
	want := []Filter{
		{Name: "in", Default: FilterReject, Pos: Pos{13, 1}, Rules: []FilterRule{
			{Action: FilterAccept, Proto: ProtoTCP, Source: []netip.Prefix{pf("198.51.100.0/24"), pf("203.0.113.7/32")},
				Destination: []netip.Prefix{pf("192.0.2.0/25")}, SPort: []PortRange{{1024, 65535}},
				DPort: []PortRange{{22, 22}, {0, 0}, {65535, 65535}, {80, 80}}, Pos: Pos{17, 1}},
			{Action: FilterDrop, Proto: ProtoUDP, DPort: []PortRange{{53, 53}}, Pos: Pos{25, 1}},
			{Action: FilterAccept, Proto: ProtoICMP, ICMPType: 8, HasICMPType: true, Pos: Pos{30, 1}},
			{Action: FilterAccept, Proto: ProtoICMP, ICMPType: 11, HasICMPType: true, Pos: Pos{35, 1}},
			{Action: FilterReject, Proto: ProtoAny, Source: []netip.Prefix{pf("0.0.0.0/0")}, Pos: Pos{40, 1}},
		}},
		{Name: "out", Default: FilterAccept, Pos: Pos{44, 1}, Rules: []FilterRule{
			{Action: FilterDrop, Proto: ProtoAny, Destination: []netip.Prefix{pf("10.0.0.0/8")}, Pos: Pos{47, 10}},
		}},
		{Name: "unused", Default: FilterDrop, Pos: Pos{49, 1}},
	}
	if !reflect.DeepEqual(c.Filters, want) {
		t.Errorf("got\n%+v\nwant\n%+v", c.Filters, want)
	}
	if n := c.Networks[0]; n.FilterIn != "in" || n.FilterOut != "out" {
		t.Errorf("network filters %q %q", n.FilterIn, n.FilterOut)
	}
	if f := c.FilterByName("out"); f == nil || f.Name != "out" {
		t.Errorf("FilterByName(out) = %v", f)
	}
	if f := c.FilterByName("nope"); f != nil {
		t.Errorf("FilterByName(nope) = %v", f)
	}
	if n := c.Filters[0].Rules[0].Entries(); n != 2*1*1*4 {
		t.Errorf("Entries = %d", n)
	}
}

func TestFilterBad(t *testing.T) {
	tests := []struct {
		name string
		src  string // appended to fbase (line 16 on) unless raw
		raw  bool
		want string
	}{
		{"unknown ruleset in", "[[network]]\nname = \"n2\"\nlinks = [\"p2\"]\nfilter_in = \"nope\"\n", false,
			`t.toml:19:13: network filter_in "nope" is not a filter (no [[filter]] with that name)`},
		{"unknown ruleset out", "[[network]]\nname = \"n2\"\nlinks = [\"p2\"]\nfilter_out = \"f2\"\n", false,
			`t.toml:19:14: network filter_out "f2" is not a filter (no [[filter]] with that name)`},
		{"empty filter_in", "[[network]]\nname = \"n2\"\nlinks = [\"p2\"]\nfilter_in = \"\"\n", false,
			`t.toml:19:13: network.filter_in must not be empty (leave it out for no filter)`},
		{"filter_in wrong type", "[[network]]\nname = \"n2\"\nlinks = [\"p2\"]\nfilter_in = [\"f1\"]\n", false,
			`t.toml:19:13: wrong type for network.filter_in: expected a string, got an array`},
		{"duplicate ruleset", "[[filter]]\nname = \"f1\"\ndefault = \"accept\"\n", false,
			`t.toml:17:8: duplicate filter name "f1" (first at line 14)`},
		{"ruleset without name", "[[filter]]\ndefault = \"accept\"\n", false,
			`t.toml:16:1: missing required key "name" in [[filter]]`},
		{"ruleset without default", "[[filter]]\nname = \"f2\"\n", false,
			`t.toml:16:1: missing required key "default" in [[filter]]`},
		{"bad default", "[[filter]]\nname = \"f2\"\ndefault = \"deny\"\n", false,
			`t.toml:18:11: filter.default "deny" is not one of accept, drop, reject`},
		{"bad ruleset name", "[[filter]]\nname = \"a b\"\ndefault = \"drop\"\n", false,
			`t.toml:17:8: filter.name "a b" must be non-empty without blanks or quotes`},
		{"unknown ruleset key", "[[filter]]\nname = \"f2\"\ndefault = \"drop\"\nrules = []\n", false,
			`t.toml:19:1: unknown key "filter.rules"; did you mean "filter.rule"?`},
		{"rule as plain table", "[filter.rule]\naction = \"drop\"\n[router]\nname = \"r\"\n", true,
			`t.toml:1:1: [[filter.rule]] must follow the [[filter]] it belongs to`},
		{"rule before any filter", "[[filter.rule]]\naction = \"drop\"\n[router]\nname = \"r\"\n", true,
			`t.toml:1:1: [[filter.rule]] must follow the [[filter]] it belongs to`},
		{"rule without action", "[[filter.rule]]\nproto = \"tcp\"\n", false,
			`t.toml:16:1: missing required key "action" in [[filter.rule]]`},
		{"bad action", "[[filter.rule]]\naction = \"allow\"\n", false,
			`t.toml:17:10: filter.rule.action "allow" is not one of accept, drop, reject`},
		{"bad proto", "[[filter.rule]]\naction = \"drop\"\nproto = \"sctp\"\n", false,
			`t.toml:18:9: filter.rule.proto "sctp" is not one of tcp, udp, icmp, icmpv6, any`},
		{"unknown rule key", "[[filter.rule]]\naction = \"drop\"\nport = \"22\"\n", false,
			`t.toml:18:1: unknown key "filter.rule.port"; did you mean "filter.rule.sport"?`},
		{"port range reversed", "[[filter.rule]]\naction = \"drop\"\nproto = \"tcp\"\ndport = \"22,90-80\"\n", false,
			`t.toml:19:9: filter.rule.dport: invalid port range "90-80": 90 is above 80`},
		{"port out of range", "[[filter.rule]]\naction = \"drop\"\nproto = \"udp\"\nsport = \"1-65536\"\n", false,
			`t.toml:19:9: filter.rule.sport: port list "1-65536": port 65536 out of range 0..65535`},
		{"port integer out of range", "[[filter.rule]]\naction = \"drop\"\nproto = \"udp\"\ndport = 70000\n", false,
			`t.toml:19:9: filter.rule.dport 70000 out of range 0..65535`},
		{"port not a number", "[[filter.rule]]\naction = \"drop\"\nproto = \"tcp\"\ndport = \"22,http\"\n", false,
			`t.toml:19:9: filter.rule.dport: port list "22,http": "http" is not a port number`},
		{"port negative", "[[filter.rule]]\naction = \"drop\"\nproto = \"tcp\"\ndport = \"-5\"\n", false,
			`t.toml:19:9: filter.rule.dport: port list "-5": missing port number`},
		{"port list empty item", "[[filter.rule]]\naction = \"drop\"\nproto = \"tcp\"\ndport = \"22,,80\"\n", false,
			`t.toml:19:9: filter.rule.dport: port list "22,,80" has an empty item`},
		{"port list empty", "[[filter.rule]]\naction = \"drop\"\nproto = \"tcp\"\ndport = \"\"\n", false,
			`t.toml:19:9: filter.rule.dport: empty port list (write e.g. "22,80,8000-8100")`},
		{"port wrong type", "[[filter.rule]]\naction = \"drop\"\nproto = \"tcp\"\ndport = [22]\n", false,
			`t.toml:19:9: wrong type for filter.rule.dport: expected a string, got an array`},
		{"dport with proto icmp", "[[filter.rule]]\naction = \"drop\"\nproto = \"icmp\"\ndport = \"22\"\n", false,
			`t.toml:19:1: filter.rule.dport needs proto = "tcp" or "udp" (this rule's proto is "icmp")`},
		{"sport with proto any", "[[filter.rule]]\naction = \"drop\"\nsport = \"53\"\n", false,
			`t.toml:18:1: filter.rule.sport needs proto = "tcp" or "udp" (this rule's proto is "any")`},
		{"icmp_type with proto tcp", "[[filter.rule]]\naction = \"drop\"\nproto = \"tcp\"\nicmp_type = 8\n", false,
			`t.toml:19:1: filter.rule.icmp_type needs proto = "icmp" or "icmpv6" (this rule's proto is "tcp")`},
		{"icmp_type without proto", "[[filter.rule]]\naction = \"drop\"\nicmp_type = 8\n", false,
			`t.toml:18:1: filter.rule.icmp_type needs proto = "icmp" or "icmpv6" (this rule's proto is "any")`},
		{"icmp_type out of range", "[[filter.rule]]\naction = \"drop\"\nproto = \"icmp\"\nicmp_type = 256\n", false,
			`t.toml:19:13: filter.rule.icmp_type 256 out of range 0..255`},
		{"icmp_type unknown name", "[[filter.rule]]\naction = \"drop\"\nproto = \"icmp\"\nicmp_type = \"ping\"\n", false,
			`t.toml:19:13: filter.rule.icmp_type "ping" is not an ICMP type name (use a number 0..255 or e.g. "echo-request")`},
		{"bad prefix", "[[filter.rule]]\naction = \"drop\"\nsource = [\"10.0.0.0/8\", \"10.0.0.0/33\"]\n", false,
			`t.toml:18:25: filter.rule.source: invalid address or prefix "10.0.0.0/33" (write a.b.c.d, a.b.c.d/n, an IPv6 address or an IPv6 prefix)`},
		{"bad address", "[[filter.rule]]\naction = \"drop\"\ndestination = [\"10.0.0.256\"]\n", false,
			`t.toml:18:16: filter.rule.destination: invalid address or prefix "10.0.0.256" (write a.b.c.d, a.b.c.d/n, an IPv6 address or an IPv6 prefix)`},
		{"ipv6 address with proto icmp", "[[filter.rule]]\naction = \"drop\"\nproto = \"icmp\"\ndestination = \"2001:db8::1\"\n", false,
			`t.toml:19:15: filter.rule.destination 2001:db8::1/128 is IPv6, but the rule has proto icmp (IPv4; IPv6 rules use icmpv6): write one rule per address family`},
		{"ipv4 prefix with proto icmpv6", "[[filter.rule]]\naction = \"drop\"\nproto = \"icmpv6\"\nsource = [\"10.0.0.0/8\"]\n", false,
			`t.toml:19:10: filter.rule.source 10.0.0.0/8 is IPv4, but the rule has proto icmpv6 (IPv6; IPv4 rules use icmp): write one rule per address family`},
		{"mixed families", "[[filter.rule]]\naction = \"drop\"\nsource = [\"10.0.0.0/8\"]\ndestination = \"2001:db8::/32\"\n", false,
			`t.toml:19:15: filter.rule.destination 2001:db8::/32 is IPv6, but the rule has IPv4 prefix 10.0.0.0/8: write one rule per address family`},
		{"ipv4-mapped", "[[filter.rule]]\naction = \"drop\"\nsource = \"::ffff:10.0.0.1\"\n", false,
			`t.toml:18:10: filter.rule.source: source ::ffff:10.0.0.1 is IPv4-mapped: write the IPv4 address or prefix`},
		{"ipv6 zone", "[[filter.rule]]\naction = \"drop\"\nsource = \"fe80::1%eth0\"\n", false,
			`t.toml:18:10: filter.rule.source: source fe80::1%eth0 has a zone: a filter matches addresses on any link; leave it out`},
		{"ipv6 host bits", "[[filter.rule]]\naction = \"drop\"\ndestination = [\"2001:db8::1/64\"]\n", false,
			`t.toml:18:16: filter.rule.destination: destination 2001:db8::1/64 has host bits set; did you mean 2001:db8::/64?`},
		{"icmpv6 type unknown name", "[[filter.rule]]\naction = \"drop\"\nproto = \"icmpv6\"\nicmp_type = \"timestamp-request\"\n", false,
			`t.toml:19:13: filter.rule.icmp_type "timestamp-request" is not an ICMPv6 type name (use a number 0..255 or e.g. "echo-request")`},
		{"prefix host bits", "[[filter.rule]]\naction = \"drop\"\nsource = [\"198.51.100.7/24\"]\n", false,
			`t.toml:18:11: filter.rule.source: source 198.51.100.7/24 has host bits set; did you mean 198.51.100.0/24?`},
		{"empty source list", "[[filter.rule]]\naction = \"drop\"\nsource = []\n", false,
			`t.toml:18:10: filter.rule.source must list at least one address or prefix (leave it out for any)`},
		{"source wrong element", "[[filter.rule]]\naction = \"drop\"\nsource = [\"10.0.0.0/8\", 7]\n", false,
			`t.toml:18:25: wrong type for filter.rule.source: expected a string, got an integer`},
		{"rule wrong type", "rule = 5\n", false,
			`t.toml:16:8: wrong type for filter.rule: expected an array of tables ([[filter.rule]]), got an integer`},
		{"filter as table", "[filter]\nname = \"x\"\n[router]\nname = \"r\"\n", true,
			`t.toml:1:1: wrong type for filter: expected an array of tables ([[filter]]), got a table`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.src
			if !tt.raw {
				src = fbase + src
			}
			c, err := Parse("t.toml", []byte(src))
			if err == nil {
				t.Fatalf("no error, want %s", tt.want)
			}
			if c != nil {
				t.Errorf("config returned with error")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want Errors", err)
			}
			if err.Error() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", err, tt.want)
			}
		})
	}
}

// A ruleset whose rules expand to more than MaxFilterEntries entries is an
// error at the rule that crosses the limit.
func TestFilterTooLarge(t *testing.T) {
	var b strings.Builder
	b.WriteString(fbase)
	// 256 sources x 256 destinations x 16 dports = 2^20 entries: exactly the limit.
	list := func(n int, f func(i int) string) string {
		s := make([]string, n)
		for i := range s {
			s[i] = f(i)
		}
		return strings.Join(s, ", ")
	}
	src := "[" + list(256, func(i int) string { return `"10.0.` + itoa(i) + `.0/24"` }) + "]"
	dst := "[" + list(256, func(i int) string { return `"10.1.` + itoa(i) + `.1"` }) + "]"
	ports := `"` + list(16, func(i int) string { return itoa(i + 1) }) + `"`
	b.WriteString("[[filter.rule]]\naction = \"accept\"\nproto = \"tcp\"\nsource = " + src + "\ndestination = " + dst + "\ndport = " + ports + "\n")
	if _, err := Parse("t.toml", []byte(b.String())); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	b.WriteString("[[filter.rule]]\naction = \"drop\"\n")
	_, err := Parse("t.toml", []byte(b.String()))
	want := `t.toml:22:1: filter "f1" is too large: with this rule its rules expand to more than 1048576 entries (sources x destinations x sport items x dport items per rule); split the lists or use wider prefixes`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	r := FilterRule{Source: make([]netip.Prefix, 1<<11), Destination: make([]netip.Prefix, 1<<11), DPort: make([]PortRange, 1<<11)}
	if n := r.Entries(); n != MaxFilterEntries+1 {
		t.Errorf("saturated Entries = %d", n)
	}
}

func TestParsePortList(t *testing.T) {
	tests := []struct {
		in      string
		want    []PortRange
		wantErr string
	}{
		{"22", []PortRange{{22, 22}}, ""},
		{"0", []PortRange{{0, 0}}, ""},
		{"65535", []PortRange{{65535, 65535}}, ""},
		{"0-65535", []PortRange{{0, 65535}}, ""},
		{"22,80,443,8000-8100", []PortRange{{22, 22}, {80, 80}, {443, 443}, {8000, 8100}}, ""},
		{" 1 - 2 ,3", []PortRange{{1, 2}, {3, 3}}, ""},
		{"90-80", nil, `invalid port range "90-80": 90 is above 80`},
		{"65536", nil, `port list "65536": port 65536 out of range 0..65535`},
		{"99999999999999999999", nil, `port list "99999999999999999999": port 99999999999999999999 out of range 0..65535`},
		{"1-2-3", nil, `port list "1-2-3": "2-3" is not a port number`},
		{"+5", nil, `port list "+5": "+5" is not a port number`},
		{"22,", nil, `port list "22," has an empty item`},
		{" ", nil, `empty port list (write e.g. "22,80,8000-8100")`},
	}
	for _, tt := range tests {
		got, err := ParsePortList(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ParsePortList(%q) error %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParsePortList(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestApplyDefaultsFilterProto(t *testing.T) {
	c := &Config{Filters: []Filter{{Name: "f", Default: FilterDrop, Rules: []FilterRule{{Action: FilterAccept}, {Action: FilterDrop, Proto: ProtoTCP}}}}}
	c.ApplyDefaults()
	if p0, p1 := c.Filters[0].Rules[0].Proto, c.Filters[0].Rules[1].Proto; p0 != ProtoAny || p1 != ProtoTCP {
		t.Errorf("protos %q %q", p0, p1)
	}
}

// IPv6 rules: addresses and prefixes, icmpv6 with its type names (the same
// name gives another number than for icmp), rules of both families.
func TestFilterParseIPv6(t *testing.T) {
	src := fbase + `[[filter.rule]]
action = "accept"
proto = "tcp"
source = ["2001:db8:1::/48", "2001:db8:2::7"]
dport = 22

[[filter.rule]]
action = "accept"
icmp_type = "echo-request"
proto = "icmpv6"

[[filter.rule]]
action = "accept"
proto = "icmpv6"
icmp_type = "nd-neighbor-solicit"
destination = "fe80::/10"

[[filter.rule]]
action = "accept"
proto = "icmp"
icmp_type = "echo-request"

[[filter.rule]]
action = "drop"
proto = "udp"
`
	c, err := Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	rs := c.Filters[0].Rules
	if want := []netip.Prefix{netip.MustParsePrefix("2001:db8:1::/48"), netip.MustParsePrefix("2001:db8:2::7/128")}; !reflect.DeepEqual(rs[0].Source, want) {
		t.Errorf("source %v, want %v", rs[0].Source, want)
	}
	for i, want := range []struct {
		proto string
		typ   uint8
		has   bool
	}{{ProtoTCP, 0, false}, {ProtoICMPv6, 128, true}, {ProtoICMPv6, 135, true}, {ProtoICMP, 8, true}, {ProtoUDP, 0, false}} {
		if rs[i].Proto != want.proto || rs[i].ICMPType != want.typ || rs[i].HasICMPType != want.has {
			t.Errorf("rule %d: %+v, want %+v", i+1, rs[i], want)
		}
	}
}
