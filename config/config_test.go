package config

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestExample(t *testing.T) {
	c, err := Load("testdata/example.toml")
	if err != nil {
		t.Fatal(err)
	}
	mac := func(s string) net.HardwareAddr {
		m, err := net.ParseMAC(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	want := &Config{
		File: "testdata/example.toml",
		Router: Router{Name: "edge1", Console: "/run/vrouter/edge1.sock", Metrics: "127.0.0.1:9469",
			Workers: 0, Pos: Pos{3, 1}},
		Ports: []Port{
			{Name: "uplink", Driver: "afpacket", Device: "eth0", Pos: Pos{9, 1}},
			{Name: "vm1", Driver: "tap", Device: "tap-vm1", Pos: Pos{14, 1}},
			{Name: "vm2", Driver: "tap", Device: "vm2", MAC: mac("02:00:00:00:00:02"), MTU: 9000, Pos: Pos{22, 1}},
			{Name: "trunk", Driver: "afpacket", Device: "eth1", Pos: Pos{28, 1}},
			{Name: "ct101", Driver: "tap", Device: "veth101", Persist: true, Pos: Pos{33, 1}},
		},
		Networks: []Network{
			{Name: "public", Links: []Link{{Port: "uplink"}},
				Addresses: []netip.Prefix{netip.MustParsePrefix("203.0.113.1/24")}, Pos: Pos{39, 1}},
			{Name: "guest1234", Links: []Link{{"trunk", 1234}, {Port: "vm1"}, {Port: "vm2"}},
				Addresses: []netip.Prefix{netip.MustParsePrefix("10.1.1.10/24")}, FilterOut: "guest-ingress",
				Host: "vr-guest", HostPuntRate: DefaultHostPuntRate, Pos: Pos{45, 1}},
		},
		HostRoutes: []HostRoute{{Link: Link{Port: "ct101"},
			Addresses: []netip.Addr{netip.MustParseAddr("192.168.200.101")},
			Gateway:   netip.MustParseAddr("169.254.0.1"), Publish: []string{"public"}, Pos: Pos{51, 1}}},
		FIB: FIB{KernelTable: 100},
		Routes: []Route{{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("203.0.113.254"),
			Type: RouteUnicast, Pos: Pos{60, 1}}},
		ARP: []ARPEntry{{Network: "public", IP: netip.MustParseAddr("203.0.113.77"),
			MAC: mac("02:00:00:00:00:77"), Pos: Pos{64, 1}}},
		NAT: NAT{
			Filtering: "address-dependent",
			SNAT: []SNAT{{Source: netip.MustParsePrefix("10.1.1.0/24"), Out: "public",
				To:    AddrRange{netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.1")},
				Ports: PortRange{1024, 65535}, Pos: Pos{70, 1}}},
			Floating: []Floating{{External: netip.MustParseAddr("203.0.113.50"),
				Internal: netip.MustParseAddr("10.1.1.5"), Pos: Pos{76, 1}}},
			Forward: []Forward{{Proto: "tcp", External: netip.MustParseAddrPort("203.0.113.1:8080"),
				Internal: []netip.AddrPort{netip.MustParseAddrPort("10.1.1.5:80")}, Pos: Pos{80, 1}}},
		},
		Filters: []Filter{{Name: "guest-ingress", Default: FilterDrop, Pos: Pos{95, 1},
			Rules: []FilterRule{{Action: FilterAccept, Proto: ProtoTCP,
				Source:      []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
				Destination: []netip.Prefix{netip.MustParsePrefix("10.1.1.5/32")},
				DPort:       []PortRange{{22, 22}, {80, 80}, {443, 443}, {8000, 8100}}, Pos: Pos{99, 1}}}}},
		Conntrack: Conntrack{Max: 1048576, TCPEstablished: 2*time.Hour + 4*time.Minute,
			TCPTransitory: 4 * time.Minute, UDP: 5 * time.Minute, ICMP: time.Minute, FragmentTimeout: 30 * time.Second},
		ICMP: ICMP{RatePerSec: 1000, Burst: 50},
		Neighbor: Neighbor{Max: 65536, ReachableTime: 30 * time.Second, StaleTime: time.Minute,
			RetransTime: time.Second, Retries: 3, QueueLen: 3, RequestRate: 1000},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got\n%+v\nwant\n%+v", c, want)
	}
	if got := c.SocketPath(); got != "/run/vrouter/edge1.sock" {
		t.Errorf("SocketPath = %q", got)
	}
	if i := c.NetworkIndex("guest1234"); i != 1 {
		t.Errorf("NetworkIndex(guest1234) = %d", i)
	}
	if i := c.NetworkIndex("nope"); i != -1 {
		t.Errorf("NetworkIndex(nope) = %d", i)
	}
	if n := c.NetworkByName("public"); n == nil || n.Name != "public" {
		t.Errorf("NetworkByName(public) = %v", n)
	}
	if p := c.PortByName("trunk"); p == nil || p.Device != "eth1" {
		t.Errorf("PortByName(trunk) = %v", p)
	}
	if p := c.PortByName("nope"); p != nil {
		t.Errorf("PortByName(nope) = %v", p)
	}
}

// The CONFIG.md example must stay accepted apart from the ports its links
// name; testdata/example.toml is that example with those ports added.
func TestExampleMatchesConfigMD(t *testing.T) {
	data, err := os.ReadFile("testdata/example.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"[nat]", "[[nat.forward]]", "[[hostroute]]", "kernel_table", "proxy_arp", "tcp_transitory",
		"[[filter]]", "[[filter.rule]]", "filter_out", "icmp_type", "host "} {
		if !strings.Contains(string(data), key) {
			t.Errorf("example lacks %s", key)
		}
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse("min.toml", []byte(`
[router]
name = "r1"

[[port]]
name = "t0"
driver = "tap"

[[port]]
name = "a0"
driver = "afpacket"
device = "eth0"

[[network]]
name = "lan"
links = ["t0", "a0.7", "a0.8", "a0"]
addresses = ["192.168.1.1/24", "192.168.2.1/31", "192.168.3.7/32"]

[[network]]
name = "wan"
links = ["a0.9"]

[[hostroute]]
link = "a0.10"
addresses = ["10.9.9.9", "10.9.9.10/32"]

[[route]]
prefix = "10.0.0.0/8"
type = "blackhole"

[[route]]
prefix = "172.16.0.0/12"
network = "lan"

[[route]]
prefix = "172.32.0.0/12"
via = "192.168.2.0"
network = "lan"

[[arp]]
network = "lan"
ip = "192.168.1.99"
publish = true

[[nat.snat]]
source = "192.168.1.0/24"
out = "lan"

[[nat.snat]]
source = "192.168.9.0/24"
out = "wan"
to = "198.51.100.1-198.51.100.8"
ports = "2000-3000"

[[nat.forward]]
proto = "udp"
external = "192.168.1.1:53"
internal = "10.9.9.9:53"

[icmp]
rate_per_sec = 0

[neighbor]
retries = 5
request_rate = 250
stale_time = "2m"
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Router.Console != "/run/vrouter/r1.sock" || c.SocketPath() != "/run/vrouter/r1.sock" {
		t.Errorf("console %q socket %q", c.Router.Console, c.SocketPath())
	}
	if c.Ports[0].Device != "t0" {
		t.Errorf("tap device default = %q, want the port name", c.Ports[0].Device)
	}
	wantLinks := []Link{{"t0", 0}, {"a0", 7}, {"a0", 8}, {"a0", 0}}
	if !reflect.DeepEqual(c.Networks[0].Links, wantLinks) {
		t.Errorf("links %v", c.Networks[0].Links)
	}
	if c.HostRoutes[0].Gateway != netip.MustParseAddr("169.254.0.1") || c.HostRoutes[0].Link != (Link{"a0", 10}) {
		t.Errorf("hostroute %+v", c.HostRoutes[0])
	}
	if got := c.HostRoutes[0].Addresses[1]; got != netip.MustParseAddr("10.9.9.10") {
		t.Errorf("hostroute /32 address = %v", got)
	}
	if c.Routes[0].Type != RouteBlackhole || c.Routes[1].Type != RouteUnicast || c.Routes[1].Network != "lan" {
		t.Errorf("routes %+v", c.Routes)
	}
	if !c.ARP[0].Publish || c.ARP[0].MAC != nil {
		t.Errorf("arp %+v", c.ARP[0])
	}
	s := c.NAT.SNAT[0]
	if s.To.First != netip.MustParseAddr("192.168.1.1") || s.To.Last != s.To.First || s.Ports != (PortRange{1024, 65535}) {
		t.Errorf("snat defaults %+v", s)
	}
	s = c.NAT.SNAT[1]
	if s.To.First != netip.MustParseAddr("198.51.100.1") || s.To.Last != netip.MustParseAddr("198.51.100.8") || s.Ports != (PortRange{2000, 3000}) {
		t.Errorf("snat %+v", s)
	}
	if c.NAT.Filtering != "address-dependent" {
		t.Errorf("filtering %q", c.NAT.Filtering)
	}
	if len(c.NAT.Forward[0].Internal) != 1 {
		t.Errorf("forward %+v", c.NAT.Forward[0])
	}
	if c.ICMP != (ICMP{RatePerSec: 0, Burst: 50}) {
		t.Errorf("icmp %+v", c.ICMP)
	}
	wantNb := Neighbor{Max: 65536, ReachableTime: 30 * time.Second, StaleTime: 2 * time.Minute,
		RetransTime: time.Second, Retries: 5, QueueLen: 3, RequestRate: 250}
	if c.Neighbor != wantNb {
		t.Errorf("neighbor %+v", c.Neighbor)
	}
	wantCt := Conntrack{Max: 1048576, TCPEstablished: 124 * time.Minute, TCPTransitory: 4 * time.Minute,
		UDP: 5 * time.Minute, ICMP: time.Minute, FragmentTimeout: 30 * time.Second}
	if c.Conntrack != wantCt {
		t.Errorf("conntrack %+v", c.Conntrack)
	}
}

// Equivalent TOML spellings (inline tables, dotted keys, quoted keys, CRLF)
// give the same result.
func TestTOMLForms(t *testing.T) {
	a := "[router]\nname = \"r\"\n[[port]]\nname = \"p\"\ndriver = \"pipe\"\n[nat]\nfiltering = \"endpoint-independent\"\n[conntrack]\nudp = \"3m\"\n"
	b := "router = { name = \"r\" }\nport = [ { name = \"p\", driver = \"pipe\" } ]\nnat.filtering = 'endpoint-independent'\n\"conntrack\".udp = \"3m\"\n"
	c := strings.ReplaceAll(a, "\n", "\r\n")
	var got []*Config
	for _, src := range []string{a, b, c} {
		cfg, err := Parse("f", []byte(src))
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		for i := range cfg.Ports {
			cfg.Ports[i].Pos = Pos{}
		}
		cfg.Router.Pos = Pos{}
		got = append(got, cfg)
	}
	for i := 1; i < len(got); i++ {
		if !reflect.DeepEqual(got[0], got[i]) {
			t.Errorf("form %d differs:\n%+v\n%+v", i, got[0], got[i])
		}
	}
	if got[0].NAT.Filtering != "endpoint-independent" || got[0].Conntrack.UDP != 3*time.Minute {
		t.Errorf("values %+v", got[0])
	}
}

// base is valid; the bad cases below append to it. It has 12 lines, so
// appended text starts at line 13.
const base = `[router]
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
addresses = ["192.0.2.1/24"]
`

// [conntrack] fragment_timeout takes any duration from 1s to 5m.
func TestFragmentTimeout(t *testing.T) {
	for _, tt := range []struct {
		src  string
		want time.Duration
	}{{"3s", 3 * time.Second}, {"1s", time.Second}, {"5m", 5 * time.Minute}, {"90s", 90 * time.Second}} {
		c, err := Parse("t.toml", []byte(base+"[conntrack]\nfragment_timeout = \""+tt.src+"\"\n"))
		if err != nil {
			t.Fatalf("%s: %v", tt.src, err)
		}
		if c.Conntrack.FragmentTimeout != tt.want {
			t.Errorf("%s: got %v", tt.src, c.Conntrack.FragmentTimeout)
		}
	}
}

// gro is on unless a port says gro = false.
func TestPortGRO(t *testing.T) {
	c, err := Parse("t.toml", []byte(base+"[[port]]\nname = \"p3\"\ndriver = \"pipe\"\ngro = false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Ports[0].NoGRO || !c.Ports[len(c.Ports)-1].NoGRO {
		t.Fatalf("NoGRO per port: %v, %v", c.Ports[0].NoGRO, c.Ports[len(c.Ports)-1].NoGRO)
	}
}

func TestBaseValid(t *testing.T) {
	if _, err := Parse("t.toml", []byte(base)); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(base, "\n"); n != 12 {
		t.Fatalf("base has %d lines", n)
	}
}

func TestBad(t *testing.T) {
	tests := []struct {
		name string
		src  string // appended to base unless raw
		raw  bool
		want string
	}{
		{"unknown top-level key", "colour = \"red\"\n[router]\nname = \"r\"\n", true,
			`t.toml:1:1: unknown key "colour"`},
		{"unknown table", "[firewall]\n", false,
			`t.toml:13:2: unknown key "firewall"`},
		{"unknown key in array table", "[[port]]\nname = \"p3\"\ndriver = \"pipe\"\ndevic = \"x\"\n", false,
			`t.toml:16:1: unknown key "port.devic"; did you mean "port.device"?`},
		{"unknown key in nat.snat", "[[nat.snat]]\nsource = \"10.0.0.0/8\"\nout = \"n1\"\nport = \"1-2\"\n", false,
			`t.toml:16:1: unknown key "nat.snat.port"; did you mean "nat.snat.ports"?`},
		{"unknown key in router", "[router]\nname = \"r\"\nsocket = \"/x\"\n", true,
			`t.toml:3:1: unknown key "router.socket"`},
		{"wrong type mtu", "[[port]]\nname = \"p3\"\ndriver = \"pipe\"\nmtu = \"1500\"\n", false,
			`t.toml:16:7: wrong type for port.mtu: expected an integer, got a string`},
		{"wrong type workers", "[router]\nname = \"r\"\nworkers = 2.5\n", true,
			`t.toml:3:11: wrong type for router.workers: expected an integer, got a float`},
		{"wrong type pin_workers", "[router]\nname = \"r\"\npin_workers = 1\n", true,
			`t.toml:3:15: wrong type for router.pin_workers: expected a boolean (true or false), got an integer`},
		{"wrong type shared_poll", "[router]\nname = \"r\"\nshared_poll = \"yes\"\n", true,
			`t.toml:3:15: wrong type for router.shared_poll: expected a boolean (true or false), got a string`},
		{"wrong type gro", "[[port]]\nname = \"p3\"\ndriver = \"pipe\"\ngro = 0\n", false,
			`t.toml:16:7: wrong type for port.gro: expected a boolean (true or false), got an integer`},
		{"wrong type links", "[[network]]\nname = \"n2\"\nlinks = \"p2\"\n", false,
			`t.toml:15:9: wrong type for network.links: expected an array of strings, got a string`},
		{"wrong type link element", "[[network]]\nname = \"n2\"\nlinks = [\"p2\", 3]\n", false,
			`t.toml:15:16: wrong type for network.links: expected a string, got an integer`},
		{"snat as plain table", "[nat.snat]\nsource = \"10.0.0.0/8\"\n", false,
			`t.toml:13:1: wrong type for nat.snat: expected an array of tables ([[nat.snat]]), got a table`},
		{"bad CIDR", "[[network]]\nname = \"n2\"\nlinks = [\"p2\"]\naddresses = [\"10.0.0.1/33\"]\n", false,
			`t.toml:16:14: network.addresses: invalid IPv4 prefix "10.0.0.1/33" (write a.b.c.d/n)`},
		{"address without length", "[[network]]\nname = \"n2\"\nlinks = [\"p2\"]\naddresses = [\"10.0.0.1\"]\n", false,
			`t.toml:16:14: network.addresses: address "10.0.0.1" needs a prefix length (write a.b.c.d/n)`},
		{"network address", "[[network]]\nname = \"n2\"\nlinks = [\"p2\"]\naddresses = [\"10.0.0.5/30\", \"10.0.1.0/24\"]\n", false,
			`t.toml:16:29: network.addresses: address 10.0.1.0/24 is the network address of its subnet`},
		{"broadcast address", "[[network]]\nname = \"n2\"\nlinks = [\"p2\"]\naddresses = [\"10.0.1.255/24\"]\n", false,
			`t.toml:16:14: network.addresses: address 10.0.1.255/24 is the broadcast address of its subnet`},
		{"bad MAC", "[[port]]\nname = \"p3\"\ndriver = \"pipe\"\nmac = \"02:00:00:00:00\"\n", false,
			`t.toml:16:7: port.mac: invalid MAC address "02:00:00:00:00" (write 02:00:00:00:00:01)`},
		{"multicast MAC", "[[port]]\nname = \"p3\"\ndriver = \"pipe\"\nmac = \"01:00:5e:00:00:01\"\n", false,
			`t.toml:16:7: port.mac: MAC address 01:00:5e:00:00:01 is not unicast (multicast bit set)`},
		{"VLAN 5000", "[[network]]\nname = \"n2\"\nlinks = [\"p2.5000\"]\n", false,
			`t.toml:15:10: invalid link "p2.5000": VLAN ID 5000 out of range 1..4094`},
		{"VLAN not a number", "[[network]]\nname = \"n2\"\nlinks = [\"p2.x\"]\n", false,
			`t.toml:15:10: invalid link "p2.x": VLAN ID "x" is not a number`},
		{"duplicate port name", "[[port]]\nname = \"p1\"\ndriver = \"pipe\"\n", false,
			`t.toml:14:8: duplicate port name "p1" (first at line 4)`},
		{"port name with dot", "[[port]]\nname = \"p.3\"\ndriver = \"pipe\"\n", false,
			`t.toml:14:8: port.name "p.3" must not contain '.' (it separates the VLAN ID in links)`},
		{"link to unknown port", "[[network]]\nname = \"n2\"\nlinks = [\"p2\", \"nope.5\"]\n", false,
			`t.toml:15:16: link "nope.5": no port named "nope"`},
		{"link in two networks", "[[network]]\nname = \"n2\"\nlinks = [\"p1\"]\n", false,
			`t.toml:15:10: link "p1" is already used by network "n1" (line 9)`},
		{"link in network and hostroute", "[[hostroute]]\nlink = \"p1\"\naddresses = [\"10.5.5.5\"]\n", false,
			`t.toml:14:8: link "p1" is already used by network "n1" (line 9)`},
		{"duplicate network name", "[[network]]\nname = \"n1\"\nlinks = [\"p2\"]\n", false,
			`t.toml:14:8: duplicate network name "n1" (first at line 10)`},
		{"overlapping networks", "[[network]]\nname = \"n2\"\nlinks = [\"p2\"]\naddresses = [\"192.0.2.200/25\"]\n", false,
			`t.toml:16:14: overlapping addresses in two networks: 192.0.2.200/25 (network "n2") overlaps 192.0.2.1/24 (network "n1", line 12)`},
		{"duplicate address", "[[network]]\nname = \"n2\"\nlinks = [\"p2\"]\naddresses = [\"192.0.2.1/30\"]\n", false,
			`t.toml:16:14: duplicate address 192.0.2.1 (also on network "n1", line 12)`},
		{"network without links", "[[network]]\nname = \"n2\"\nlinks = []\n", false,
			`t.toml:15:9: network.links must list at least one link`},
		{"nat out not a network", "[[nat.snat]]\nsource = \"10.0.0.0/8\"\nout = \"x\"\n", false,
			`t.toml:15:7: nat out "x" is not a network`},
		{"nat out without address", "[[network]]\nname = \"n2\"\nlinks = [\"p2\"]\n[[nat.snat]]\nsource = \"10.0.0.0/8\"\nout = \"n2\"\n", false,
			`t.toml:18:7: nat out "n2" has no address; set to = "a.b.c.d"`},
		{"snat range reversed", "[[nat.snat]]\nsource = \"10.0.0.0/8\"\nout = \"n1\"\nto = \"192.0.2.9-192.0.2.3\"\n", false,
			`t.toml:16:6: nat.snat.to: invalid address range "192.0.2.9-192.0.2.3": 192.0.2.9 comes after 192.0.2.3`},
		{"snat ports", "[[nat.snat]]\nsource = \"10.0.0.0/8\"\nout = \"n1\"\nports = \"0-100\"\n", false,
			`t.toml:16:9: nat.snat.ports: invalid port range "0-100" (write lo-hi within 1-65535)`},
		{"snat source host bits", "[[nat.snat]]\nsource = \"10.0.0.1/8\"\nout = \"n1\"\n", false,
			`t.toml:14:10: nat.snat.source: source 10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?`},
		{"floating outside every network", "[[nat.floating]]\nexternal = \"198.51.100.9\"\ninternal = \"10.0.0.5\"\n", false,
			`t.toml:14:12: floating IP 198.51.100.9 is outside every network`},
		{"floating duplicate internal", "[[nat.floating]]\nexternal = \"192.0.2.9\"\ninternal = \"10.0.0.5\"\n[[nat.floating]]\nexternal = \"192.0.2.10\"\ninternal = \"10.0.0.5\"\n", false,
			`t.toml:18:12: internal address 10.0.0.5 already has floating IP 192.0.2.9 (line 13)`},
		{"forward duplicate", "[[nat.forward]]\nproto = \"tcp\"\nexternal = \"192.0.2.1:80\"\ninternal = [\"10.0.0.5:80\"]\n[[nat.forward]]\nproto = \"tcp\"\nexternal = \"192.0.2.1:80\"\ninternal = [\"10.0.0.6:80\"]\n", false,
			`t.toml:19:12: duplicate port forward tcp 192.0.2.1:80 (first at line 13)`},
		{"forward proto", "[[nat.forward]]\nproto = \"sctp\"\nexternal = \"192.0.2.1:80\"\ninternal = [\"10.0.0.5:80\"]\n", false,
			`t.toml:14:9: nat.forward.proto "sctp" is not one of tcp, udp`},
		{"forward empty internal", "[[nat.forward]]\nproto = \"tcp\"\nexternal = \"192.0.2.1:80\"\ninternal = []\n", false,
			`t.toml:16:12: nat.forward.internal must list at least one ip:port`},
		{"bad duration", "[conntrack]\nudp = \"5 minutes\"\n", false,
			`t.toml:14:7: conntrack.udp: invalid duration "5 minutes" (write e.g. "90s", "5m", "2h4m")`},
		{"udp below 2m", "[conntrack]\nudp = \"90s\"\n", false,
			`t.toml:14:7: conntrack.udp "90s" is below the minimum 2m (RFC 4787 REQ-5)`},
		{"tcp_established below minimum", "[conntrack]\ntcp_established = \"2h\"\n", false,
			`t.toml:14:19: conntrack.tcp_established "2h" is below the minimum 2h4m (RFC 5382 REQ-5)`},
		{"icmp below minimum", "[conntrack]\nicmp = \"30s\"\n", false,
			`t.toml:14:8: conntrack.icmp "30s" is below the minimum 60s (RFC 5508 REQ-2)`},
		{"fragment_timeout below 1s", "[conntrack]\nfragment_timeout = \"500ms\"\n", false,
			`t.toml:14:20: conntrack.fragment_timeout "500ms" out of range 1s..5m`},
		{"fragment_timeout over 5m", "[conntrack]\nfragment_timeout = \"5m1s\"\n", false,
			`t.toml:14:20: conntrack.fragment_timeout "5m1s" out of range 1s..5m`},
		{"fragment_timeout not a duration", "[conntrack]\nfragment_timeout = 30\n", false,
			`t.toml:14:20: wrong type for conntrack.fragment_timeout: expected a string, got an integer`},
		{"syntax error", "[[port]]\nname = \n", false,
			`t.toml:14:8: TOML syntax error: unexpected character U+000A at start of value`},
		{"syntax error unclosed header", "[router\nname = \"r\"\n", true,
			`t.toml:1:8: TOML syntax error: expected ']' to close table name`},
		{"duplicate key", "[[port]]\nname = \"p3\"\nname = \"p4\"\ndriver = \"pipe\"\n", false,
			`t.toml:15:1: duplicate key "name" (first at line 14)`},
		{"table twice", "[router]\nname = \"r\"\n[router]\nworkers = 1\n", true,
			`t.toml:3:1: table [router] defined twice (first at line 1)`},
		{"mtu out of range", "[[port]]\nname = \"p3\"\ndriver = \"pipe\"\nmtu = 10000\n", false,
			`t.toml:16:7: port.mtu 10000 out of range 68..9198`},
		{"bad driver", "[[port]]\nname = \"p3\"\ndriver = \"xdp\"\n", false,
			`t.toml:15:10: port.driver "xdp" is not one of afpacket, afxdp, tap, pipe`},
		{"afpacket without device", "[[port]]\nname = \"p3\"\ndriver = \"afpacket\"\n", false,
			`t.toml:13:1: missing required key "device" in [[port]] (driver afpacket needs an existing interface)`},
		{"afxdp without device", "[[port]]\nname = \"p3\"\ndriver = \"afxdp\"\n", false,
			`t.toml:13:1: missing required key "device" in [[port]] (driver afxdp needs an existing interface)`},
		{"device too long", "[[port]]\nname = \"p3\"\ndriver = \"afpacket\"\ndevice = \"averyveryverylong\"\n", false,
			`t.toml:16:10: port.device: device name "averyveryverylong" is longer than 15 characters (IFNAMSIZ)`},
		{"no router", "[[port]]\nname = \"p\"\ndriver = \"pipe\"\n", true,
			`t.toml: missing [router] section with name = "..."`},
		{"router without name", "[router]\nworkers = 1\n", true,
			`t.toml:1:1: missing required key "name" in [router]`},
		{"bad router name", "[router]\nname = \"edge 1\"\n", true,
			`t.toml:2:8: router.name "edge 1" is invalid: use 1 to 32 of A-Z a-z 0-9 _ . -`},
		{"negative workers", "[router]\nname = \"r\"\nworkers = -1\n", true,
			`t.toml:3:11: router.workers -1 must not be negative (0 = one per CPU)`},
		{"metrics not host:port", "[router]\nname = \"r\"\nmetrics = \"9469\"\n", true,
			`t.toml:3:11: router.metrics "9469": not host:port`},
		{"route host bits", "[[route]]\nprefix = \"10.1.1.1/24\"\nnetwork = \"n1\"\n", false,
			`t.toml:14:10: prefix 10.1.1.1/24 has host bits set; did you mean 10.1.1.0/24?`},
		{"route via off-net", "[[route]]\nprefix = \"10.0.0.0/8\"\nvia = \"198.51.100.1\"\n", false,
			`t.toml:15:7: via 198.51.100.1 is not on any network (no network address covers it)`},
		{"route via outside its network", "[[network]]\nname = \"n2\"\nlinks = [\"p2\"]\naddresses = [\"10.2.0.1/16\"]\n[[route]]\nprefix = \"10.0.0.0/8\"\nvia = \"192.0.2.7\"\nnetwork = \"n2\"\n", false,
			`t.toml:19:7: via 192.0.2.7 is not inside network "n2"`},
		{"route without next hop", "[[route]]\nprefix = \"10.0.0.0/8\"\n", false,
			`t.toml:13:1: [[route]] needs via = "a.b.c.d" or network = "..." (or a type like blackhole)`},
		{"blackhole with via", "[[route]]\nprefix = \"10.0.0.0/8\"\ntype = \"blackhole\"\nvia = \"192.0.2.7\"\n", false,
			`t.toml:16:1: a blackhole route takes no via`},
		{"bad route type", "[[route]]\nprefix = \"10.0.0.0/8\"\ntype = \"drop\"\n", false,
			`t.toml:15:8: route.type "drop" is not one of unicast, blackhole, unreachable, prohibit`},
		{"duplicate route", "[[route]]\nprefix = \"10.0.0.0/8\"\ntype = \"prohibit\"\n[[route]]\nprefix = \"10.0.0.0/8\"\nvia = \"192.0.2.7\"\n", false,
			`t.toml:17:10: duplicate route 10.0.0.0/8 (first at line 13)`},
		{"arp mac and publish", "[[arp]]\nnetwork = \"n1\"\nip = \"192.0.2.5\"\nmac = \"02:00:00:00:00:05\"\npublish = true\n", false,
			`t.toml:17:11: [[arp]] takes either mac or publish = true, not both`},
		{"arp neither", "[[arp]]\nnetwork = \"n1\"\nip = \"192.0.2.5\"\n", false,
			`t.toml:13:1: [[arp]] needs mac = "..." (static neighbour) or publish = true (proxy ARP)`},
		{"arp unknown network", "[[arp]]\nnetwork = \"n9\"\nip = \"192.0.2.5\"\npublish = true\n", false,
			`t.toml:14:11: arp network "n9" is not a network`},
		{"hostroute publish unknown", "[[hostroute]]\nlink = \"p2.7\"\naddresses = [\"10.5.5.5\"]\npublish = [\"n1\", \"n9\"]\n", false,
			`t.toml:16:18: hostroute publish "n9" is not a network`},
		{"hostroute bad address", "[[hostroute]]\nlink = \"p2\"\naddresses = [\"10.5.5.500\"]\n", false,
			`t.toml:15:14: hostroute.addresses: invalid IPv4 address "10.5.5.500"`},
		{"filtering", "[nat]\nfiltering = \"full-cone\"\n", false,
			`t.toml:14:13: nat.filtering "full-cone" is not one of address-dependent, endpoint-independent`},
		{"neighbor retries", "[neighbor]\nretries = 0\n", false,
			`t.toml:14:11: neighbor.retries 0 out of range 1..255`},
		{"icmp wrong type", "[icmp]\nburst = true\n", false,
			`t.toml:14:9: wrong type for icmp.burst: expected an integer, got a boolean`},
		{"fib negative", "[fib]\nkernel_table = -1\n", false,
			`t.toml:14:16: fib.kernel_table -1 out of range 0..4294967295`},
		{"inline table extended by header", "router = { name = \"r\" }\n[router]\nworkers = 1\n", true,
			`t.toml:2:1: cannot define table [router]: key "router" is already a table (line 1)`},
		{"dotted key into header table", "[router]\nname = \"r\"\n[nat]\nfiltering = \"address-dependent\"\n[conntrack]\nnat.filtering = \"x\"\n", true,
			`t.toml:6:1: unknown key "conntrack.nat"`},
		{"scalar extended by header", "fib = 1\n[fib.x]\n[router]\nname = \"r\"\n", true,
			`t.toml:1:7: wrong type for fib: expected a table ([fib]), got an integer
t.toml:2:2: cannot define table [fib.x]: key "fib" is already an integer (line 1)`},
		{"unknown key in inline table", "port = [ { name = \"p3\", driver = \"pipe\", speed = 10 } ]\n[router]\nname = \"r\"\n", true,
			`t.toml:1:42: unknown key "port.speed"`},
		{"array of tables after static array", "port = [ { name = \"p3\", driver = \"pipe\" } ]\n[[port]]\nname = \"p4\"\n[router]\nname = \"r\"\n", true,
			`t.toml:2:1: cannot define array of tables [[port]]: key "port" is already an array (line 1)`},
		{"integer overflow", "[router]\nname = \"r\"\nworkers = 99999999999999999999\n", true,
			`t.toml:3:11: router.workers: integer 99999999999999999999 out of range`},
		{"router is array", "[[router]]\nname = \"r\"\n", true,
			`t.toml:1:1: wrong type for router: expected a table ([router]), got an array`},
	}
	if len(tests) < 25 {
		t.Fatalf("only %d cases", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.src
			if !tt.raw {
				src = base + src
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

func TestMultipleErrorsInFileOrder(t *testing.T) {
	src := `[router]
name = "r"
workers = -3

[[port]]
name = "p1"
driver = "pipe"
mtu = 20

[[network]]
name = "n1"
links = ["p1.5000", "ghost"]
addresses = ["10.0.0.1/24"]

[[nat.floating]]
external = "198.51.100.9"
internal = "10.0.0.5"

[[nat.snat]]
source = "10.0.0.0/24"
out = "nowhere"

[conntrack]
udp = "1m"
colour = 1
`
	_, err := Parse("m.toml", []byte(src))
	want := `m.toml:3:11: router.workers -3 must not be negative (0 = one per CPU)
m.toml:8:7: port.mtu 20 out of range 68..9198
m.toml:12:10: invalid link "p1.5000": VLAN ID 5000 out of range 1..4094
m.toml:12:21: link "ghost": no port named "ghost"
m.toml:16:12: floating IP 198.51.100.9 is outside every network
m.toml:21:7: nat out "nowhere" is not a network
m.toml:24:7: conntrack.udp "1m" is below the minimum 2m (RFC 4787 REQ-5)
m.toml:25:1: unknown key "conntrack.colour"`
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
	errs := err.(Errors)
	if len(errs) != 8 || errs[0].Line != 3 || errs[0].Col != 11 || errs[0].File != "m.toml" {
		t.Errorf("errors %+v", errs)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "f", Line: 3, Col: 7, Msg: "m"}, "f:3:7: m"},
		{Error{File: "f", Line: 3, Msg: "m"}, "f:3: m"},
		{Error{File: "f", Msg: "m"}, "f: m"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.e, got, tt.want)
		}
	}
	es := Errors{tests[0].e, tests[2].e}
	if got := es.Error(); got != "f:3:7: m\nf: m" {
		t.Errorf("Errors: %q", got)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.toml")
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("got %v", err)
	}
	if want := "testdata/does-not-exist.toml: cannot read configuration: no such file or directory"; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
}

func TestParseLink(t *testing.T) {
	tests := []struct {
		in      string
		want    Link
		wantErr string
	}{
		{"vm1", Link{Port: "vm1"}, ""},
		{"trunk.1234", Link{"trunk", 1234}, ""},
		{"trunk.1", Link{"trunk", 1}, ""},
		{"trunk.4094", Link{"trunk", 4094}, ""},
		{"trunk.0", Link{}, `invalid link "trunk.0": VLAN ID 0 out of range 1..4094`},
		{"trunk.4095", Link{}, `invalid link "trunk.4095": VLAN ID 4095 out of range 1..4094`},
		{"trunk.99999999999999999999", Link{}, `invalid link "trunk.99999999999999999999": VLAN ID 99999999999999999999 out of range 1..4094`},
		{"trunk.-1", Link{}, `invalid link "trunk.-1": VLAN ID "-1" is not a number`},
		{"trunk.", Link{}, `invalid link "trunk.": missing VLAN ID after the dot`},
		{".5", Link{}, `invalid link ".5": missing port name before the dot`},
		{"", Link{}, "empty link"},
	}
	for _, tt := range tests {
		got, err := ParseLink(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ParseLink(%q) error %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseLink(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if got.String() != tt.in {
			t.Errorf("Link.String() = %q, want %q", got.String(), tt.in)
		}
	}
}

func TestSocketPathOverride(t *testing.T) {
	c, err := Parse("f", []byte("[router]\nname = \"r\"\nconsole = \"/tmp/x.sock\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.SocketPath() != "/tmp/x.sock" {
		t.Errorf("SocketPath = %q", c.SocketPath())
	}
	var z Config
	z.Router.Name = "n"
	if z.SocketPath() != "/run/vrouter/n.sock" {
		t.Errorf("zero SocketPath = %q", z.SocketPath())
	}
}

func BenchmarkParseExample(b *testing.B) {
	data, err := os.ReadFile("testdata/example.toml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("example.toml", data); err != nil {
			b.Fatal(err)
		}
	}
}

// A Config built by hand gets the defaults a parsed empty file has; set
// values stay, [icmp] rate_per_sec 0 (unlimited) too.
func TestApplyDefaults(t *testing.T) {
	c := &Config{
		Router:     Router{Name: "r1"},
		NAT:        NAT{SNAT: []SNAT{{Out: "wan"}, {Out: "wan", Ports: PortRange{2000, 3000}}}},
		HostRoutes: []HostRoute{{Link: Link{Port: "t0"}}},
		Conntrack:  Conntrack{Max: 99, UDP: 3 * time.Minute},
		Neighbor:   Neighbor{Retries: 7},
	}
	c.ApplyDefaults()
	want := &Config{
		Router: Router{Name: "r1", Console: "/run/vrouter/r1.sock"},
		NAT: NAT{Filtering: FilteringAddressDep, SNAT: []SNAT{{Out: "wan", Ports: PortRange{1024, 65535}},
			{Out: "wan", Ports: PortRange{2000, 3000}}}},
		HostRoutes: []HostRoute{{Link: Link{Port: "t0"}, Gateway: netip.MustParseAddr("169.254.0.1")}},
		Conntrack: Conntrack{Max: 99, TCPEstablished: 2*time.Hour + 4*time.Minute, TCPTransitory: 4 * time.Minute,
			UDP: 3 * time.Minute, ICMP: time.Minute, FragmentTimeout: 30 * time.Second},
		ICMP: ICMP{RatePerSec: 0, Burst: 50},
		Neighbor: Neighbor{Max: 65536, ReachableTime: 30 * time.Second, StaleTime: time.Minute,
			RetransTime: time.Second, Retries: 7, QueueLen: 3},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got\n%+v\nwant\n%+v", c, want)
	}
	// The parsed minimal file has the same defaults.
	p, err := Parse("min.toml", []byte("[router]\nname = \"r1\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want.NAT.SNAT, want.HostRoutes, want.Conntrack.Max, want.Conntrack.UDP, want.Neighbor.Retries = nil, nil, 1048576, 5*time.Minute, 3
	want.ICMP.RatePerSec, want.Neighbor.RequestRate, want.File, want.Router.Pos = 1000, 1000, "min.toml", p.Router.Pos
	if !reflect.DeepEqual(p, want) {
		t.Errorf("parsed\n%+v\nwant\n%+v", p, want)
	}
}

// The afxdp port of CONFIG.md's example is accepted.
func TestAfxdpDriver(t *testing.T) {
	c, err := Parse("x.toml", []byte("[router]\nname = \"r\"\n\n[[port]]\nname = \"fast0\"\ndriver = \"afxdp\"\ndevice = \"eth2\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.PortByName("fast0"); p == nil || p.Driver != "afxdp" || p.Device != "eth2" {
		t.Fatalf("port %+v", p)
	}
}
