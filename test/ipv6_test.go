package test

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"vrouter/internal/nstest"
	"vrouter/test/lab"
)

// The IPv6 tests run on lab.Dual (test/lab/dual.go): h1 and h2 on two
// veths (p2 with MTU 1280), a VM on a TAP configured by SLAAC from
// vrouter's advertisements, and optionally a host-routed guest.
type v6Lab struct{ *lab.DualTopo }

func newV6Lab(t *testing.T) *v6Lab { return newV6LabWith(t, false) }

// newV6LabGuest is the IPv6 lab with a host-routed guest in namespace G.
func newV6LabGuest(t *testing.T) *v6Lab { return newV6LabWith(t, true) }

func newV6LabWith(t *testing.T, guest bool) *v6Lab { return newV6LabEdit(t, "v6", guest, nil) }

// newV6LabEdit is the IPv6 lab (namespaces named after tag) with its
// configuration passed through edit (lab.DualEdit); the router's log is
// shown when the test fails.
func newV6LabEdit(t *testing.T, tag string, guest bool, edit func(cfg, prefix string) string) *v6Lab {
	t.Helper()
	needRoot(t)
	d, err := lab.DualEdit(tag, guest, edit)
	if err != nil {
		t.Fatal(err)
	}
	cleanupLab(t, d.Router, d.Close)
	return &v6Lab{d}
}

func (v *v6Lab) topo() *lab.Topo { return &lab.Topo{Lab: v.Lab, Router: v.Router} }

func TestIPv6PingTraceroute(t *testing.T) {
	v := newV6Lab(t)
	tl := v.topo()
	out := run(t, tl, v.H1, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "2001:db8:2::10")
	contains(t, out, "3 received")
	out = run(t, tl, v.H1, "ping", "-6", "-c", "1", "-W", "2", "2001:db8:1::1")
	contains(t, out, "1 received")
	out = run(t, tl, v.H1, "ping", "-6", "-c", "1", "-W", "2", "2001:db8:2::1")
	contains(t, out, "1 received")
	// The router's link-local address answers on the link.
	ll := linkLocalOf(t, v, v.R, "r-h1")
	out = run(t, tl, v.H1, "ping", "-6", "-c", "1", "-W", "2", ll+"%eth0")
	contains(t, out, "1 received")

	out = run(t, tl, v.H1, "traceroute", "-6", "-n", "-q", "1", "-w", "2", "2001:db8:2::10")
	lines := lab.Lines(out)
	if len(lines) < 3 || !strings.Contains(lines[1], "2001:db8:1::1 ") || !strings.Contains(lines[2], "2001:db8:2::10 ") {
		t.Fatalf("traceroute6: hop 1 should be the router (2001:db8:1::1), hop 2 h2:\n%s", out)
	}
	// An unreachable route answers 1/0 (traceroute prints !N).
	out, _ = v.Exec(v.H1, "traceroute", "-6", "-n", "-q", "1", "-w", "2", "-m", "3", "2001:db8:99::1")
	contains(t, out, "!N")

	s := stats(t, v.Router)
	if s.Counters["forwarded6"] == 0 || s.Counters["echo6-replies"] < 3 || s.Counters["icmpv6-errors-sent"] == 0 ||
		s.Drops["ipv6-hop-limit"] == 0 || s.Drops["unreachable-route"] == 0 {
		t.Fatalf("counters %v drops %v", s.Counters, s.Drops)
	}
	nb, err := v.Router.Console("show", "ipv6", "neighbors")
	if err != nil || !strings.Contains(nb, "2001:db8:2::10") || !strings.Contains(nb, "2001:db8:1::10") {
		t.Fatalf("show ipv6 neighbors: %v\n%s", err, nb)
	}
	rt, err := v.Router.Console("show", "ipv6", "route", "2001:db8:99::5")
	if err != nil || !strings.Contains(rt, "unreachable") {
		t.Fatalf("show ipv6 route: %v\n%s", err, rt)
	}
	// The IPv4 side still works on the same networks.
	out = run(t, tl, v.H1, "ping", "-c", "1", "-W", "2", "198.51.100.10")
	contains(t, out, "1 received")
}

// linkLocalOf is the EUI-64 link-local address vrouter uses on a port,
// from the device's MAC.
func linkLocalOf(t *testing.T, v *v6Lab, ns, dev string) string {
	t.Helper()
	m, err := v.MAC(ns, dev)
	if err != nil {
		t.Fatal(err)
	}
	hw, err := net.ParseMAC(strings.TrimSpace(m))
	if err != nil {
		t.Fatal(err)
	}
	a := [16]byte{0xfe, 0x80, 8: hw[0] ^ 2, 9: hw[1], 10: hw[2], 11: 0xff, 12: 0xfe, 13: hw[3], 14: hw[4], 15: hw[5]}
	return netip.AddrFrom16(a).String()
}

func TestIPv6PacketTooBig(t *testing.T) {
	v := newV6Lab(t)
	tl := v.topo()
	run(t, tl, v.H1, "ping", "-6", "-c", "1", "-W", "2", "2001:db8:2::10") // resolve both sides
	out, _ := v.Exec(v.H1, "ping", "-6", "-M", "do", "-s", "1400", "-c", "2", "-i", "0.3", "-W", "2", "2001:db8:2::10")
	if !regexp.MustCompile(`(?i)too big.*mtu\s*=\s*1280|mtu\s*=\s*1280`).MatchString(out) {
		t.Fatalf("ping -M do -s 1400 does not report mtu 1280:\n%s", out)
	}
	run(t, tl, v.H1, "ip", "-6", "route", "flush", "cache")
	out, _ = v.Exec(v.H1, "tracepath", "-6", "-n", "-l", "1452", "2001:db8:2::10")
	contains(t, out, "pmtu 1280")
	// A packet that fits goes through.
	out = run(t, tl, v.H1, "ping", "-6", "-M", "do", "-s", "1200", "-c", "1", "-W", "2", "2001:db8:2::10")
	contains(t, out, "1 received")
	if s := stats(t, v.Router); s.Drops["ipv6-too-big"] == 0 {
		t.Fatalf("ipv6-too-big not counted: %v", s.Drops)
	}
}

func TestIPv6SLAAC(t *testing.T) {
	v := newV6Lab(t)
	tl := v.topo()
	tap := v.TapDev
	var addrs, routes string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		addrs = run(t, tl, v.VM, "ip", "-6", "addr", "show", "dev", tap, "scope", "global")
		routes = run(t, tl, v.VM, "ip", "-6", "route", "show", "default")
		if strings.Contains(addrs, "2001:db8:3:") && strings.Contains(routes, "via fe80::") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(addrs, "2001:db8:3:") || !strings.Contains(addrs, "dynamic") {
		t.Fatalf("no SLAAC address from the RA:\n%s", addrs)
	}
	if !strings.Contains(routes, "via fe80::") || !strings.Contains(routes, "proto ra") {
		t.Fatalf("no default route from the RA:\n%s", routes)
	}
	// The RA's MTU option reached the host (the TAP's MTU, 1500).
	mtu := run(t, tl, v.VM, "sysctl", "-n", "net.ipv6.conf."+tap+".mtu")
	if strings.TrimSpace(mtu) != "1500" {
		t.Fatalf("IPv6 MTU %q", mtu)
	}
	// The VM reaches h1 through the router with its SLAAC address.
	out := run(t, tl, v.VM, "ping", "-6", "-c", "2", "-i", "0.3", "-W", "2", "2001:db8:1::10")
	contains(t, out, "2 received")
	if s := stats(t, v.Router); s.Counters["nd-ra-sent"] == 0 || s.Counters["nd-dad-sent"] == 0 {
		t.Fatalf("RA/DAD not counted: %v", s.Counters)
	}
}

// rawSender sends crafted frames on a namespace's eth0 and collects the
// ICMPv6 messages the router sends back.
type rawSender struct {
	t                  *testing.T
	ns                 netns.NsHandle
	fd                 int
	ifidx              int
	hostMAC, routerMAC net.HardwareAddr
}

func newRawSender(t *testing.T, nsName string, routerMAC net.HardwareAddr) *rawSender {
	t.Helper()
	h, err := netns.GetFromName(nsName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	s := &rawSender{t: t, ns: h, fd: -1, routerMAC: routerMAC}
	nstest.In(t, h, func() {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			t.Error(err)
			return
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			t.Error(err)
			return
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			t.Error(err)
			return
		}
		tv := unix.Timeval{Usec: 100000}
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		s.fd, s.ifidx, s.hostMAC = fd, ifi.Index, ifi.HardwareAddr
	})
	if s.fd < 0 {
		t.FailNow()
	}
	t.Cleanup(func() { unix.Close(s.fd) })
	return s
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (s *rawSender) send(frame []byte) {
	s.t.Helper()
	if err := unix.Sendto(s.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: s.ifidx}); err != nil {
		s.t.Fatal(err)
	}
}

// icmp6From waits up to d for an ICMPv6 message of type typ from the
// router (sent to the host) and returns it (nil if none came).
func (s *rawSender) icmp6From(typ uint8, d time.Duration) *layers.ICMPv6 {
	buf := make([]byte, 2048)
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		n, from, err := unix.Recvfrom(s.fd, buf, 0)
		if err != nil {
			continue
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		p := gopacket.NewPacket(append([]byte(nil), buf[:n]...), layers.LayerTypeEthernet, gopacket.Default)
		eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		ic, _ := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
		if eth != nil && ic != nil && eth.SrcMAC.String() == s.routerMAC.String() && ic.TypeCode.Type() == typ {
			return ic
		}
	}
	return nil
}

func (s *rawSender) frame(src, dst string, hop uint8, next layers.IPProtocol, ls ...gopacket.SerializableLayer) []byte {
	ip := &layers.IPv6{Version: 6, NextHeader: next, HopLimit: hop, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
	for _, l := range ls {
		if ic, ok := l.(*layers.ICMPv6); ok {
			ic.SetNetworkLayerForChecksum(ip)
		}
	}
	all := append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: s.hostMAC, DstMAC: s.routerMAC, EthernetType: layers.EthernetTypeIPv6}, ip}, ls...)
	return nstest.Serialize(s.t, all...)
}

func (s *rawSender) echo(src, dst string, hop uint8) []byte {
	return s.frame(src, dst, hop, layers.IPProtocolICMPv6,
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)},
		&layers.ICMPv6Echo{Identifier: 0x77, SeqNumber: 1}, gopacket.Payload("vrouter-ipv6-malformed"))
}

func TestIPv6Malformed(t *testing.T) {
	v := newV6Lab(t)
	tl := v.topo()
	run(t, tl, v.H1, "ping", "-6", "-c", "1", "-W", "2", "2001:db8:2::10") // the router knows both hosts
	m, err := v.MAC(v.R, "r-h1")
	if err != nil {
		t.Fatal(err)
	}
	rmac, _ := net.ParseMAC(strings.TrimSpace(m))
	s := newRawSender(t, v.H1, rmac)
	h1LL := linkLocalOf(t, v, v.H1, "eth0") // the error goes back to it on the link
	const h1, h2, r1 = "2001:db8:1::10", "2001:db8:2::10", "2001:db8:1::1"
	good := s.echo(h1, h2, 64)
	rh0 := &layers.IPv6Routing{RoutingType: 0, SegmentsLeft: 1, Reserved: []byte{0, 0, 0, 0}, SourceRoutingIPs: []net.IP{net.ParseIP(h2)}}
	rh0.NextHeader = layers.IPProtocolICMPv6
	cases := []struct {
		name  string
		frame []byte
		drop  string
		reply uint8 // ICMPv6 type expected back (0: none)
		code  uint8
	}{
		{"truncated header", good[:14+24], "ipv6-too-short", 0, 0},
		{"bad payload length", func() []byte {
			b := append([]byte(nil), good...)
			binary.BigEndian.PutUint16(b[14+4:], 900)
			return b
		}(), "ipv6-bad-length", 0, 0},
		{"type 0 routing header", s.frame(h1, r1, 64, layers.IPProtocolIPv6Routing, rh0,
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}, &layers.ICMPv6Echo{}),
			"ipv6-routing-header-0", layers.ICMPv6TypeParameterProblem, 0},
		{"type 0 routing header forwarded", s.frame(h1, h2, 64, layers.IPProtocolIPv6Routing, rh0,
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}, &layers.ICMPv6Echo{}),
			"ipv6-routing-header-0", 0, 0},
		{"hop limit 0", s.echo(h1, h2, 0), "ipv6-hop-limit", layers.ICMPv6TypeTimeExceeded, 0},
		{"hop limit 1", s.echo(h1, h2, 1), "ipv6-hop-limit", layers.ICMPv6TypeTimeExceeded, 0},
		{"link-local source to be forwarded", s.echo(h1LL, h2, 64), "ipv6-link-local", layers.ICMPv6TypeDestinationUnreachable, 2},
		{"unknown next header", s.frame(h1, r1, 64, 253, gopacket.Payload("12345678")), "ipv6-unknown-next-header",
			layers.ICMPv6TypeParameterProblem, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := stats(t, v.Router).Drops[tc.drop]
			s.send(tc.frame)
			var got *layers.ICMPv6
			if tc.reply != 0 {
				got = s.icmp6From(tc.reply, 2*time.Second)
			} else {
				time.Sleep(300 * time.Millisecond)
			}
			after := stats(t, v.Router).Drops[tc.drop]
			if after != before+1 {
				t.Fatalf("%s: %d -> %d", tc.drop, before, after)
			}
			if tc.reply != 0 && (got == nil || got.TypeCode.Code() != tc.code) {
				t.Fatalf("want ICMPv6 %d/%d back, got %v", tc.reply, tc.code, got)
			}
		})
	}
	// Nothing of these reached h2 as a forwarded echo.
	if s2 := stats(t, v.Router); s2.Counters["forwarded6"] > 4 {
		t.Fatalf("forwarded6 = %d: malformed packets forwarded", s2.Counters["forwarded6"])
	}
}

func TestIPv6HostRouted(t *testing.T) {
	v := newV6LabGuest(t)
	tl := v.topo()
	// h1 finds the guest on its own /64 by proxy NDP; the guest answers
	// through its gateway fe80::1.
	out := run(t, tl, v.H1, "ping", "-6", "-c", "2", "-i", "0.3", "-W", "2", "2001:db8:1::77")
	contains(t, out, "2 received")
	nb := run(t, tl, v.H1, "ip", "-6", "neigh", "show", "2001:db8:1::77")
	m, err := v.MAC(v.R, "r-h1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(nb, strings.TrimSpace(m)) {
		t.Fatalf("h1's neighbour entry for the guest is not the router's MAC %s:\n%s", m, nb)
	}
	// The guest reaches h2 on another network.
	out = run(t, tl, v.G, "ping", "-6", "-c", "1", "-W", "2", "2001:db8:2::10")
	contains(t, out, "1 received")
	// A source the guest does not own is dropped.
	before := stats(t, v.Router).Drops["spoofed"]
	run(t, tl, v.G, "ip", "-6", "addr", "add", "2001:db8:1::78/128", "dev", "eth0", "nodad")
	if out, err := v.Exec(v.G, "ping", "-6", "-c", "2", "-i", "0.3", "-W", "1", "-I", "2001:db8:1::78", "2001:db8:2::10"); err == nil {
		t.Fatalf("spoofed ping answered:\n%s", out)
	}
	if after := stats(t, v.Router).Drops["spoofed"]; after < before+2 {
		t.Fatalf("spoofed: %d -> %d", before, after)
	}
}

// TestIPv6TCP: iperf3 over IPv6 through the router with the hosts'
// offloads on: their TCPv6 super-frames are routed whole and leave with
// their virtio-net header (gso-forwarded), nothing is cut in software.
func TestIPv6TCP(t *testing.T) {
	v := newV6Lab(t)
	iperfServer(t, v.Lab, v.H2, "5201")
	time.Sleep(300 * time.Millisecond)
	out, err := v.ExecTimeout(v.H1, 30*time.Second, "iperf3", "-6", "-c", "2001:db8:2::10", "-p", "5201", "-t", "2", "-f", "m")
	if err != nil {
		t.Fatalf("iperf3 -6: %v", err)
	}
	m := iperfRate.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no iperf3 result in:\n%s", out)
	}
	rate, _ := strconv.ParseFloat(m[1], 64)
	if m[2] == "G" {
		rate *= 1000
	}
	t.Logf("iperf3 -6 TCP through vrouter: %.0f Mbit/s", rate)
	if rate < 50 {
		t.Fatalf("IPv6 TCP at %.1f Mbit/s", rate)
	}
	s := stats(t, v.Router)
	t.Logf("gso-forwarded %d gso-segmented %d forwarded6 %d", s.Counters["gso-forwarded"], s.Counters["gso-segmented"], s.Counters["forwarded6"])
	if s.Counters["gso-forwarded"] == 0 || s.Counters["gso-segmented"] != 0 {
		t.Fatalf("super-frames not forwarded whole: counters %v", s.Counters)
	}
}

// TestIPv6HostInterfaceBGP: net2 has a host interface; BIRD in the
// router's namespace peers over IPv6 (2001:db8:2::1) with BIRD on h2
// (2001:db8:2::10) through vrouter's punt and inject paths, and learns
// h2's IPv6 prefix.
func TestIPv6HostInterfaceBGP(t *testing.T) {
	needRoot(t)
	for _, tool := range []string{"bird", "birdc", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s missing (make deps)", tool)
		}
	}
	d := newV6LabEdit(t, "v6", false, func(cfg, prefix string) string {
		line := `addresses = ["198.51.100.1/24", "2001:db8:2::1/64"]`
		return strings.Replace(cfg, line, line+"\nhost = \""+prefix+"-n2\"", 1) + "\n[fib]\nkernel_table = 100\n"
	}).DualTopo
	t.Cleanup(func() { // before the lab's cleanup removes d.Dir
		if t.Failed() {
			for _, f := range []string{"bird-r.log", "bird-up.log"} {
				if b, err := os.ReadFile(filepath.Join(d.Dir, f)); err == nil {
					t.Logf("%s:\n%s", f, b)
				}
			}
		}
	})
	dev := d.Prefix + "-n2"
	addrs := run(t, &lab.Topo{Lab: d.Lab}, d.R, "ip", "-6", "addr", "show", "dev", dev)
	if !strings.Contains(addrs, "2001:db8:2::1/64") {
		t.Fatalf("host interface lacks the IPv6 address:\n%s", addrs)
	}
	conf := func(name, local, peer string, as, peerAS int, channel string, extra string) string {
		return fmt.Sprintf(`log "%s" all;
router id 198.51.100.%d;
protocol device { scan time 10; }
%s
protocol bgp peer6 {
	local %s as %d;
	neighbor %s as %d;
	hold time 9;
	keepalive time 3;
	connect retry time 1;
	ipv6 { %s };
}
`, filepath.Join(d.Dir, name+".log"), as-65000, extra, local, as, peer, peerAS, channel)
	}
	socks := map[string]string{}
	for _, b := range []struct{ ns, name, conf string }{
		// the router's BIRD writes what it learns to kernel table 100,
		// which vrouter imports into its FIB6
		{d.R, "bird-r", conf("bird-r", "2001:db8:2::1", "2001:db8:2::10", 65001, 65002, "import all; export none;",
			"ipv6 table master6;\nprotocol kernel k100 { kernel table 100; ipv6 { import none; export all; }; }")},
		{d.H2, "bird-up", conf("bird-up", "2001:db8:2::10", "2001:db8:2::1", 65002, 65001, "import none; export all;",
			"protocol static announce6 { ipv6; route 2001:db8:200::/48 blackhole; }")},
	} {
		path := filepath.Join(d.Dir, b.name+".conf")
		if err := os.WriteFile(path, []byte(b.conf), 0o644); err != nil {
			t.Fatal(err)
		}
		socks[b.name] = filepath.Join(d.Dir, b.name+".ctl")
		if _, err := d.Start(b.ns, b.name+".out", "bird", "-f", "-c", path, "-s", socks[b.name], "-P", filepath.Join(d.Dir, b.name+".pid")); err != nil {
			t.Fatal(err)
		}
	}
	var out string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out, _ = d.Exec(d.R, "birdc", "-s", socks["bird-r"], "show", "route", "2001:db8:200::/48")
		if strings.Contains(out, "2001:db8:200::/48") {
			break
		}
	}
	if !strings.Contains(out, "2001:db8:200::/48") {
		p, _ := d.Exec(d.R, "birdc", "-s", socks["bird-r"], "show", "protocols", "all")
		t.Fatalf("BIRD in the router's namespace did not learn h2's prefix over IPv6:\n%s\n%s", out, p)
	}
	hi, err := d.Router.Console("-j", "show", "host-interfaces")
	if err != nil || !strings.Contains(hi, "2001:db8:2::1/64") {
		t.Fatalf("show host-interfaces: %v\n%s", err, hi)
	}
	// The learned prefix reaches vrouter's FIB6 through kernel table 100
	// and traffic to it is forwarded to h2.
	run(t, &lab.Topo{Lab: d.Lab}, d.H2, "ip", "-6", "addr", "add", "2001:db8:200::1/128", "dev", "lo")
	var rt string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		rt, _ = d.Router.Console("show", "ipv6", "route", "2001:db8:200::1")
		if strings.Contains(rt, "kernel") {
			break
		}
	}
	if !strings.Contains(rt, "2001:db8:200::/48") || !strings.Contains(rt, "kernel") {
		t.Fatalf("the BGP route did not reach the FIB6 through kernel table 100:\n%s", rt)
	}
	t.Logf("show ipv6 route 2001:db8:200::1:\n%s", rt)
	if out, err := d.Exec(d.H1, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "2001:db8:200::1"); err != nil {
		t.Fatalf("ping6 to the BGP-learned prefix: %v\n%s", err, out)
	}
}

// TestIPv6HostInterfaceVIP: an IPv6 address added to net2's host interface
// (as keepalived adds a VIP) becomes vrouter's on net2: h2 reaches it (ND
// answered by vrouter, echo answered); deleted, it is gone again.
func TestIPv6HostInterfaceVIP(t *testing.T) {
	d := newV6LabEdit(t, "v6", false, func(cfg, prefix string) string {
		line := `addresses = ["198.51.100.1/24", "2001:db8:2::1/64"]`
		return strings.Replace(cfg, line, line+"\nhost = \""+prefix+"-n2\"", 1)
	}).DualTopo
	tl := &lab.Topo{Lab: d.Lab, Router: d.Router}
	dev := d.Prefix + "-n2"
	const vip = "2001:db8:2::50"
	run(t, tl, d.R, "ip", "-6", "addr", "add", vip+"/128", "dev", dev, "nodad")
	var out string
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err = d.Exec(d.H2, "ping", "-6", "-c", "1", "-W", "1", vip)
		if err == nil && strings.Contains(out, "1 received") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("VIP %s not reachable from h2: %v\n%s", vip, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	hif, err := d.Router.Console("show", "host-interfaces")
	if err != nil || !strings.Contains(hif, vip+"/128") {
		t.Fatalf("show host-interfaces lacks the VIP (%v):\n%s", err, hif)
	}
	run(t, tl, d.R, "ip", "-6", "addr", "del", vip+"/128", "dev", dev)
	run(t, tl, d.H2, "ip", "-6", "neigh", "flush", "dev", "eth0")
	time.Sleep(300 * time.Millisecond)
	if out, err := d.Exec(d.H2, "ping", "-6", "-c", "1", "-W", "1", vip); err == nil {
		t.Fatalf("deleted VIP still answers:\n%s", out)
	}
}

// TestIPv6Drivers: IPv6 forwarding (ping6 and an iperf3 -6 stream, the
// hosts' offloads on) over each port driver of the matrix.
func TestIPv6Drivers(t *testing.T) {
	forDrivers(t, func(t *testing.T, driver string) {
		needRoot(t)
		d, err := lab.DualEdit("v6", false, func(cfg, _ string) string {
			return strings.ReplaceAll(cfg, `driver = "afpacket"`, `driver = "`+driver+`"`)
		})
		if err != nil {
			t.Fatal(err)
		}
		cleanupLab(t, d.Router, d.Close)
		v := &v6Lab{d}
		out := run(t, v.topo(), v.H1, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "2001:db8:2::10")
		contains(t, out, "3 received")
		iperfServer(t, v.Lab, v.H2, "5201")
		time.Sleep(300 * time.Millisecond)
		out, err = v.ExecTimeout(v.H1, 30*time.Second, "iperf3", "-6", "-c", "2001:db8:2::10", "-p", "5201", "-t", "2", "-f", "m")
		if err != nil {
			t.Fatalf("iperf3 -6 over %s: %v\n%s", driver, err, out)
		}
		m := iperfRate.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no iperf3 result in:\n%s", out)
		}
		rate, _ := strconv.ParseFloat(m[1], 64)
		if m[2] == "G" {
			rate *= 1000
		}
		t.Logf("iperf3 -6 TCP through vrouter over %s: %.0f Mbit/s", driver, rate)
		if rate < 50 {
			t.Fatalf("IPv6 TCP over %s at %.1f Mbit/s", driver, rate)
		}
	})
}
