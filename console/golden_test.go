package console_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/prometheus/common/expfmt"

	"vrouter/config"
	"vrouter/console"
	"vrouter/internal/clock"
	"vrouter/router"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite golden files")

const goldenTOML = `
[router]
name = "g"
[[port]]
name = "pa"
driver = "pipe"
[[port]]
name = "pb"
driver = "pipe"
[[port]]
name = "trunk"
driver = "pipe"
[[port]]
name = "v1"
driver = "pipe"
[[port]]
name = "ct"
driver = "pipe"
[[network]]
name = "a"
links = ["pa"]
addresses = ["192.0.2.1/24"]
proxy_arp = true
filter_in = "from-a"
[[network]]
name = "b"
links = ["pb"]
addresses = ["198.51.100.1/24", "2001:db8:b::1/64"]
[[network]]
name = "lan"
links = ["trunk.10", "v1"]
addresses = ["10.0.0.1/24"]
[[hostroute]]
link = "ct"
addresses = ["192.168.200.101"]
publish = ["b"]
[[route]]
prefix = "203.0.113.0/24"
via = "198.51.100.254"
[[route]]
prefix = "10.66.0.0/16"
type = "blackhole"
[[route]]
prefix = "2001:db8:c::/48"
via = "2001:db8:b::fe"
[[arp]]
network = "b"
ip = "198.51.100.77"
mac = "02:00:00:00:00:77"
[[arp]]
network = "b"
ip = "198.51.100.78"
publish = true
[[nat.snat]]
source = "10.0.0.0/24"
out = "b"
[[nat.floating]]
external = "198.51.100.50"
internal = "192.0.2.5"
[[nat.forward]]
proto = "tcp"
external = "198.51.100.1:8080"
internal = ["192.0.2.6:80"]
[[filter]]
name = "from-a"
default = "drop"
[[filter.rule]]
action = "accept"
proto = "udp"
source = ["192.0.2.0/24"]
dport = "2000,5000-5100"
[[filter.rule]]
action = "reject"
proto = "tcp"
dport = "23"
[[filter.rule]]
action = "accept"
proto = "icmp"
icmp_type = 8
`

type gPorts map[string]*pipe.Port

func gMAC(i byte) [6]byte { return [6]byte{2, 0, 0, 0, 0xee, i} }

func gSer(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gARPReq(t testing.TB, vid uint16, src net.HardwareAddr, spa, tpa string) []byte {
	eth := &layers.Ethernet{SrcMAC: src, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP}
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: src, SourceProtAddress: net.ParseIP(spa).To4(),
		DstHwAddress: make([]byte, 6), DstProtAddress: net.ParseIP(tpa).To4()}
	if vid != 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		return gSer(t, eth, &layers.Dot1Q{VLANIdentifier: vid, Type: layers.EthernetTypeARP}, arp)
	}
	return gSer(t, eth, arp)
}

// gNS is a neighbour solicitation from (src, srcIP) for target.
func gNS(t testing.TB, src net.HardwareAddr, srcIP, target string) []byte {
	tg := net.ParseIP(target)
	sn := net.IP{0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, tg[13], tg[14], tg[15]}
	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 255, SrcIP: net.ParseIP(srcIP), DstIP: sn}
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}
	ic.SetNetworkLayerForChecksum(ip)
	return gSer(t, &layers.Ethernet{SrcMAC: src, DstMAC: net.HardwareAddr{0x33, 0x33, 0xff, tg[13], tg[14], tg[15]}, EthernetType: layers.EthernetTypeIPv6},
		ip, ic, &layers.ICMPv6NeighborSolicitation{TargetAddress: tg, Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: src}}})
}

func gUDP(t testing.TB, src, dst net.HardwareAddr, sip, dip string, sport, dport uint16) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(sip).To4(), DstIP: net.ParseIP(dip).To4()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	udp.SetNetworkLayerForChecksum(ip)
	return gSer(t, &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload([]byte("hello")))
}

// gScenario starts a router over pipe ports and drives a few packets through
// it: neighbours learned, MACs learned on a switched network, one SNAT
// session, one forwarded and one dropped packet. exec runs console commands.
func gScenario(t *testing.T, exec func(r *router.Router) func([]string, bool) (string, error)) (func([]string, bool) (string, error), *router.Router) {
	cfg, err := config.Parse("g.toml", []byte(goldenTOML))
	if err != nil {
		t.Fatal(err)
	}
	ps := gPorts{}
	var list []port.Port
	for i, pc := range cfg.Ports {
		p := pipe.New(pc.Name, gMAC(byte(i+1)), 1500)
		ps[pc.Name] = p
		list = append(list, p)
	}
	r, err := router.New(cfg, list, router.Options{Clock: clock.NewManual()})
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	t.Cleanup(r.Stop)
	ex := exec(r)
	injected := uint64(0)
	send := func(p string, frame []byte) {
		t.Helper()
		ps[p].Inject(frame)
		injected++
		deadline := time.Now().Add(5 * time.Second)
		for r.Counters()[router.CntRxFrames] < injected {
			if time.Now().After(deadline) {
				t.Fatalf("frame on %s not processed", p)
			}
			time.Sleep(time.Millisecond)
		}
	}
	hostA := net.HardwareAddr{2, 0xaa, 0, 0, 0, 1}
	hostB := net.HardwareAddr{2, 0xbb, 0, 0, 0, 1}
	m1 := net.HardwareAddr{2, 0xcc, 0, 0, 0, 1}
	m2 := net.HardwareAddr{2, 0xcc, 0, 0, 0, 2}
	if out, err := ex([]string{"trace", "9"}, false); err != nil {
		t.Fatal(out, err)
	}
	send("pa", gARPReq(t, 0, hostA, "192.0.2.10", "192.0.2.1"))
	send("pb", gARPReq(t, 0, hostB, "198.51.100.10", "198.51.100.1"))
	send("v1", gARPReq(t, 0, m1, "10.0.0.11", "10.0.0.1"))
	send("trunk", gARPReq(t, 10, m2, "10.0.0.12", "10.0.0.1"))
	ma, ml := gMAC(1), gMAC(3)
	ra := net.HardwareAddr(ma[:])
	rlan := net.HardwareAddr(ml[:])
	send("pa", gUDP(t, hostA, ra, "192.0.2.10", "198.51.100.10", 1000, 2000))
	send("v1", gUDP(t, m1, rlan, "10.0.0.11", "198.51.100.10", 40000, 53))
	send("pa", gUDP(t, hostA, ra, "192.0.2.10", "10.66.0.1", 1000, 2000))
	send("pa", gUDP(t, hostA, ra, "192.0.2.10", "203.0.113.9", 1000, 2000))
	send("pa", gUDP(t, hostA, ra, "192.0.2.10", "198.51.100.10", 1000, 3000)) // refused by from-a's default
	send("pb", gNS(t, hostB, "2001:db8:b::10", "2001:db8:b::1"))
	return ex, r
}

var goldenCommands = [][]string{
	{"show", "interfaces"},
	{"show", "ip", "route"},
	{"show", "ip", "route", "summary"},
	{"show", "ip", "route", "198.51.100.77"},
	{"show", "ip", "route", "203.0.113.0/24"},
	{"show", "ip", "route", "203.0.114.0/24"},
	{"show", "ip", "route", "bogus"},
	{"show", "arp"},
	{"show", "ipv6", "route"},
	{"show", "ipv6", "route", "summary"},
	{"show", "ipv6", "route", "2001:db8:c::1"},
	{"show", "ipv6", "route", "2001:db8:b::/64"},
	{"show", "ipv6", "route", "2001:db9::1"},
	{"show", "ipv6", "neighbors"},
	{"ip", "route", "add", "2001:db8:77::/48", "via", "2001:db8:b::10"},
	{"show", "ipv6", "route", "2001:db8:77::1"},
	{"ip", "route", "del", "2001:db8:77::/48"},
	{"show", "proxy-arp"},
	{"show", "bridge"},
	{"show", "bridge", "lan"},
	{"show", "bridge", "nope"},
	{"show", "stats"},
	{"show", "conntrack"},
	{"show", "conntrack", "10.0.0.11"},
	{"show", "conntrack", "bad"},
	{"show", "nat"},
	{"show", "ha"},
	{"ha", "state", "master"},
	{"show", "filter"},
	{"show", "filter", "from-a"},
	{"show", "filter", "nope"},
	{"show", "trace"},
	{"_names"},
	{"ip", "route", "add", "10.77.0.0/16", "via", "198.51.100.10"},
	{"ip", "route", "add", "10.78.0.0/16", "via", "172.16.0.1"},
	{"ip", "route", "add", "10.78.0.0/16"},
	{"show", "ip", "route", "10.77.1.1"},
	{"_names"},
	{"ip", "route", "del", "10.77.0.0/16"},
	{"ip", "route", "del", "10.77.0.0/16"},
	{"trace", "0"},
	{"trace", "x", "y"},
	{"capture", "nope", "/tmp/x"},
	{"capture", "pa"},
	{"capture", "pa", "stop"},
	{"reload"},
	{"show", "bogus"},
	{"show", "arp", "-j"},                    // -j after the command is -j
	{"-j", "show", "ip", "route", "summary"}, // and before it
	{"show", "arp", "192.0.2.10"},            // extra words are refused, not ignored
	{"show", "ip", "route", "summary", "x"},
	{"clear", "stats", "now"},
	{"clear", "conntrack", "10.0.0.11"},
	{"clear", "arp"},
	{"clear", "stats"},
	{"show", "arp"},
	{"show", "stats"},
}

var goldenVolatile = []*regexp.Regexp{
	regexp.MustCompile(`(uptime"?:?\s+"?)[0-9a-zµ.]+`),
	regexp.MustCompile(`("since": ")[0-9TZ:.-]+`),
	regexp.MustCompile(`(packet \d+ at )[0-9:.]+`),
	regexp.MustCompile(`(memory"?\s+)\d+`),
	regexp.MustCompile(`("(memory|rib)_bytes": )\d+`),
}

func goldenText(ex func([]string, bool) (string, error)) string {
	var sb strings.Builder
	for _, c := range goldenCommands {
		for _, js := range []bool{false, true} {
			out, err := ex(c, js)
			fmt.Fprintf(&sb, "=== %s (json=%v)\n%s", strings.Join(c, " "), js, out)
			if err != nil {
				fmt.Fprintf(&sb, "--- error: %v\n", err)
			}
		}
	}
	s := sb.String()
	for _, re := range goldenVolatile {
		s = re.ReplaceAllString(s, "${1}X")
	}
	return s
}

func consoleExec(r *router.Router) func([]string, bool) (string, error) {
	return console.New(r, console.Options{}).Exec
}

func TestGoldenOutput(t *testing.T) {
	ex, _ := gScenario(t, consoleExec)
	got := goldenText(ex)
	path := filepath.Join("testdata", "console.golden")
	if *updateGolden {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("output differs from %s", path)
	}
}

// TestJSONKeys: every key of every -j output is lower case (snake_case
// field names; counter, port and network names as they are), so no Go
// struct is marshalled with its field names.
func TestJSONKeys(t *testing.T) {
	ex, _ := gScenario(t, consoleExec)
	var walk func(cmd, path string, v any)
	walk = func(cmd, path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if strings.ToLower(k) != k || strings.Contains(k, " ") {
					t.Errorf("%s: key %q at %s", cmd, k, path)
				}
				walk(cmd, path+"."+k, e)
			}
		case []any:
			for i, e := range v {
				walk(cmd, fmt.Sprintf("%s[%d]", path, i), e)
			}
		}
	}
	for _, c := range goldenCommands {
		out, err := ex(c, true)
		if err != nil {
			continue
		}
		cmd := strings.Join(c, " ")
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Errorf("%s -j: not JSON: %v\n%s", cmd, err, out)
			continue
		}
		walk(cmd, "", v)
	}
}

// goldenMetrics lists every sample of a Prometheus text exposition as
// "name{labels} TYPE value", sorted, with the volatile ones blanked.
func goldenMetrics(t *testing.T, text string) string {
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, text)
	}
	var lines []string
	for name, f := range fams {
		if !strings.HasPrefix(name, "vrouter_") {
			t.Errorf("metric %s lacks the vrouter_ prefix", name)
		}
		for _, m := range f.Metric {
			var ls []string
			for _, l := range m.Label {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(ls)
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			val := fmt.Sprint(v)
			if name == "vrouter_uptime_seconds" || name == "vrouter_fib_memory_bytes" || name == "vrouter_goroutines" || name == "vrouter_gomaxprocs" ||
				name == "vrouter_ha_last_transition_seconds" || name == "vrouter_heap_bytes" ||
				name == "vrouter_heap_allocated_bytes_total" || name == "vrouter_gc_cycles_total" {
				val = "X"
			}
			lines = append(lines, fmt.Sprintf("%s{%s} %s %s", name, strings.Join(ls, ","), f.GetType(), val))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

func TestGoldenMetrics(t *testing.T) {
	_, r := gScenario(t, consoleExec)
	srv := httptest.NewServer(console.MetricsHandler(r))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %v %s", err, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("content type %q", ct)
	}
	got := goldenMetrics(t, string(body))
	path := filepath.Join("testdata", "metrics.golden")
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("metrics differ from %s:\n%s", path, got)
	}
}
