package config

import (
	"net/netip"
	"reflect"
	"testing"
)

const base6 = `[router]
name = "r"
[[port]]
name = "p1"
driver = "pipe"
[[port]]
name = "p2"
driver = "pipe"
[[network]]
name = "n1"
links = ["p1"]
addresses = ["2001:db8:1::1/64", "192.0.2.1/24"]
ra = true
dns = ["2001:db8::53"]
[[network]]
name = "n2"
links = ["p2"]
addresses = ["198.51.100.1/24", "2001:db8:2::1/64"]
link_local = "fe80::1"
`

func TestIPv6Config(t *testing.T) {
	src := base6 + `[[route]]
prefix = "::/0"
via = "2001:db8:2::fe"
[[route]]
prefix = "2001:db8:100::/48"
via = "fe80::99"
network = "n2"
[[route]]
prefix = "2001:db8:200::/48"
type = "unreachable"
[[route]]
prefix = "10.9.0.0/16"
via = "198.51.100.9"
`
	c, err := Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	n1, n2 := c.Networks[0], c.Networks[1]
	if !reflect.DeepEqual(n1.Addresses, []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}) ||
		!reflect.DeepEqual(n1.Addresses6, []netip.Prefix{netip.MustParsePrefix("2001:db8:1::1/64")}) ||
		!n1.RA || !reflect.DeepEqual(n1.DNS, []netip.Addr{netip.MustParseAddr("2001:db8::53")}) {
		t.Fatalf("n1 %+v", n1)
	}
	if !reflect.DeepEqual(n2.Addresses, []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")}) ||
		n2.LinkLocal != netip.MustParseAddr("fe80::1") || n2.RA {
		t.Fatalf("n2 %+v", n2)
	}
	if len(c.Routes) != 1 || c.Routes[0].Prefix != netip.MustParsePrefix("10.9.0.0/16") {
		t.Fatalf("routes %+v", c.Routes)
	}
	want6 := []Route{
		{Prefix: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("2001:db8:2::fe"), Type: RouteUnicast, Pos: Pos{20, 1}},
		{Prefix: netip.MustParsePrefix("2001:db8:100::/48"), Via: netip.MustParseAddr("fe80::99"), Network: "n2", Type: RouteUnicast, Pos: Pos{23, 1}},
		{Prefix: netip.MustParsePrefix("2001:db8:200::/48"), Type: RouteUnreachable, Pos: Pos{27, 1}},
	}
	if !reflect.DeepEqual(c.Routes6, want6) {
		t.Fatalf("routes6 %+v", c.Routes6)
	}
}

func TestIPv6ConfigErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"bad prefix", "[[network]]\nname = \"n3\"\nlinks = [\"p1.5\"]\naddresses = [\"2001:db8::1/129\"]\n",
			`t.toml:23:14: network.addresses: invalid IPv6 prefix "2001:db8::1/129" (write 2001:db8::/n)`},
		{"link-local in addresses", "[[network]]\nname = \"n3\"\nlinks = [\"p1.5\"]\naddresses = [\"fe80::5/64\"]\n",
			`t.toml:23:14: network.addresses: address fe80::5/64 is link-local; set it with link_local = "fe80::5" (the router has one per network)`},
		{"overlap", "[[network]]\nname = \"n3\"\nlinks = [\"p1.5\"]\naddresses = [\"192.0.2.200/32\", \"2001:db8:1::2/64\"]\n",
			`t.toml:23:14: overlapping addresses in two networks: 192.0.2.200/32 (network "n3") overlaps 192.0.2.1/24 (network "n1", line 12)` + "\n" +
				`t.toml:23:32: overlapping addresses in two networks: 2001:db8:1::2/64 (network "n3") overlaps 2001:db8:1::1/64 (network "n1", line 12)`},
		{"ra without v6", "[[network]]\nname = \"n3\"\nlinks = [\"p1.5\"]\naddresses = [\"10.0.0.1/24\"]\nra = true\n",
			`t.toml:24:6: ra = true needs an IPv6 address in the network's addresses (its /64 is what the advertisements carry)`},
		{"dns v4", "[[network]]\nname = \"n3\"\nlinks = [\"p1.5\"]\naddresses = [\"2001:db8:3::1/64\"]\nra = true\ndns = [\"192.0.2.53\"]\n",
			`t.toml:25:8: network.dns: invalid IPv6 address "192.0.2.53" (RDNSS takes IPv6 servers)`},
		{"via off-link", "[[route]]\nprefix = \"::/0\"\nvia = \"2001:db8:9::1\"\n",
			`t.toml:22:7: via 2001:db8:9::1 is not on any network (no network address covers it)`},
		{"via link-local without network", "[[route]]\nprefix = \"::/0\"\nvia = \"fe80::1:2\"\n",
			`t.toml:22:7: via fe80::1:2 is link-local: name its network with network = "..."`},
		{"mixed families", "[[route]]\nprefix = \"2001:db8:7::/48\"\nvia = \"192.0.2.9\"\n",
			`t.toml:22:7: route.via 192.0.2.9 is IPv4 but the prefix is IPv6`},
		{"host bits", "[[route]]\nprefix = \"2001:db8:7::1/48\"\nnetwork = \"n1\"\n",
			`t.toml:21:10: prefix 2001:db8:7::1/48 has host bits set; did you mean 2001:db8:7::/48?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.toml", []byte(base6+tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", err, tt.want)
			}
		})
	}
}

func TestHostRouteIPv6Config(t *testing.T) {
	src := base6 + `[[port]]
name = "ct"
driver = "pipe"
[[hostroute]]
link = "ct"
addresses = ["192.168.200.101", "2001:db8:1::77/128", "2001:db8:1::78"]
publish = ["n1"]
`
	c, err := Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	h := c.HostRoutes[0]
	if !reflect.DeepEqual(h.Addresses, []netip.Addr{netip.MustParseAddr("192.168.200.101")}) ||
		!reflect.DeepEqual(h.Addresses6, []netip.Addr{netip.MustParseAddr("2001:db8:1::77"), netip.MustParseAddr("2001:db8:1::78")}) ||
		h.Gateway6.IsValid() {
		t.Fatalf("%+v", h)
	}
	bad := base6 + `[[port]]
name = "ct"
driver = "pipe"
[[hostroute]]
link = "ct"
addresses = ["fe80::5"]
gateway6 = "2001:db8::1"
`
	_, err = Parse("t.toml", []byte(bad))
	want := `t.toml:25:14: hostroute.addresses: fe80::5 is not a usable global unicast address` + "\n" +
		`t.toml:26:12: hostroute.gateway6: 2001:db8::1 is not a link-local address (fe80::/10)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}
