package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vrouter/test/lab"
)

func TestPingBothWays(t *testing.T) {
	forDrivers(t, func(t *testing.T, driver string) {
		l := standardDriver(t, driver, "")
		contains(t, run(t, l, l.H1, "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.51.100.10"), " 0% packet loss")
		contains(t, run(t, l, l.H2, "ping", "-c", "3", "-i", "0.2", "-W", "2", "192.0.2.10"), " 0% packet loss")
		// Through the TAP port, both ways.
		contains(t, run(t, l, l.H1, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.10.0.10"), " 0% packet loss")
		contains(t, run(t, l, l.VM, "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.51.100.10"), " 0% packet loss")
		// The router's own addresses answer.
		contains(t, run(t, l, l.H1, "ping", "-c", "2", "-i", "0.2", "-W", "2", "192.0.2.1"), " 0% packet loss")
		contains(t, run(t, l, l.VM, "ping", "-c", "2", "-i", "0.2", "-W", "2", "10.10.0.1"), " 0% packet loss")
		s := stats(t, l.Router)
		if s.Counters["forwarded"] < 12 || s.Counters["echo-replies"] < 4 {
			t.Fatalf("counters: %v", s.Counters)
		}
		out, err := l.Router.Console("show", "arp")
		if err != nil {
			t.Fatal(err)
		}
		for _, ip := range []string{"192.0.2.10", "198.51.100.10", "10.10.0.10"} {
			contains(t, out, ip)
		}
		contains(t, out, "reachable")
	})
}

func TestTraceroute(t *testing.T) {
	forDrivers(t, func(t *testing.T, driver string) {
		l := standardDriver(t, driver, "")
		out := run(t, l, l.H1, "traceroute", "-n", "-q", "1", "-w", "2", "198.51.100.10")
		lines := lab.Lines(out)
		if len(lines) < 3 {
			t.Fatalf("traceroute:\n%s", out)
		}
		if f := strings.Fields(lines[1]); len(f) < 2 || f[0] != "1" || f[1] != "192.0.2.1" {
			t.Fatalf("hop 1 is not the router:\n%s", out)
		}
		if f := strings.Fields(lines[2]); len(f) < 2 || f[0] != "2" || f[1] != "198.51.100.10" {
			t.Fatalf("hop 2 is not h2:\n%s", out)
		}
		if stats(t, l.Router).Drops["ttl-exceeded"] == 0 {
			t.Fatal("ttl-exceeded not counted")
		}
	})
}

func TestUnreachables(t *testing.T) {
	forDrivers(t, func(t *testing.T, driver string) {
		l := standardDriver(t, driver, "")
		out, _ := l.Exec(l.H1, "ping", "-c", "1", "-W", "2", "10.99.0.1")
		contains(t, out, "Destination Net Unreachable")
		out, _ = l.ExecTimeout(l.H1, 20*time.Second, "ping", "-c", "5", "-i", "1", "-W", "6", "203.0.113.5")
		contains(t, out, "Destination Host Unreachable")
		s := stats(t, l.Router)
		if s.Drops["no-route"] == 0 || s.Drops["arp-failed"] == 0 {
			t.Fatalf("drops: %v", s.Drops)
		}
	})
}

func TestPathMTU(t *testing.T) {
	forDrivers(t, func(t *testing.T, driver string) {
		l := standardDriver(t, driver, "")
		// Without DF the router fragments (h1 has no path MTU yet) and h2 answers.
		contains(t, run(t, l, l.H1, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-M", "dont", "-s", "1450", "198.51.100.10"), " 0% packet loss")
		out, _ := l.Exec(l.H1, "ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1450", "198.51.100.10")
		if !strings.Contains(out, "mtu = 1400") && !strings.Contains(out, "mtu=1400") {
			t.Fatalf("no frag-needed with mtu 1400:\n%s", out)
		}
		s := stats(t, l.Router)
		if s.Drops["frag-needed"] == 0 || s.Counters["fragments-created"] < 6 {
			t.Fatalf("stats: drops %v counters %v", s.Drops, s.Counters)
		}
		// tracepath from h1 discovers the 1400 MTU of p2 (after h1 forgets the cached one).
		run(t, l, l.H1, "ip", "route", "flush", "cache")
		out, _ = l.Exec(l.H1, "tracepath", "-n", "198.51.100.10")
		contains(t, out, "pmtu 1400")
	})
}

func TestIperfOffloads(t *testing.T) {
	forDrivers(t, func(t *testing.T, driver string) {
		l := standardDriver(t, driver, "")
		on := iperf(t, l)
		// From the VM over the TAP (super-frames from the VM's stack).
		vm := iperfFrom(t, l, l.VM)
		t.Logf("iperf3 TCP vm->h2 (TAP in, %s out): %.0f Mbit/s", driver, vm)
		if vm <= 0 {
			t.Fatal("no throughput from the VM")
		}
		for _, ns := range []string{l.H1, l.H2} {
			run(t, l, ns, "ethtool", "-K", "eth0", "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off")
		}
		run(t, l, l.R, "ethtool", "-K", "r-h1", "gro", "off", "tx", "off", "rx", "off")
		run(t, l, l.R, "ethtool", "-K", "r-h2", "gro", "off", "tx", "off", "rx", "off")
		before := stats(t, l.Router)
		off := iperf(t, l)
		t.Logf("iperf3 TCP h1->h2 through vrouter: offloads on %.0f Mbit/s, offloads off %.0f Mbit/s", on, off)
		if on <= 0 || off <= 0 {
			t.Fatal("no throughput")
		}
		// The hosts now send plain segments: an afpacket port (gro on by
		// default) sends them on coalesced, and the kernel of r-h2 (checksum
		// offload off, so no TSO) cuts them again. The bytes must arrive as sent.
		transferIntact(t, l)
		after := stats(t, l.Router)
		frames := after.Counters["gro-superframes"] - before.Counters["gro-superframes"]
		segs := after.Counters["gro-segments"] - before.Counters["gro-segments"]
		t.Logf("gro: %d super-frames of %d segments (%.1f per super-frame)", frames, segs, float64(segs)/max(1, float64(frames)))
		if driver == "afpacket" && frames == 0 {
			t.Fatal("afpacket with gro built no super-frame from the hosts' plain segments")
		}
		out, _ := l.Router.Console("-j", "show", "interfaces")
		t.Logf("interfaces after iperf3: %s", out)
	})
}

// transferIntact sends 32 MB of pseudo-random bytes over TCP from h1 to h2
// and checks that h2 received exactly them (SHA-256).
func transferIntact(t *testing.T, l *lab.Topo) {
	t.Helper()
	const server = `
import socket, hashlib
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", 5301))
l.listen(1)
l.settimeout(20)
c, _ = l.accept()
h, n = hashlib.sha256(), 0
while True:
    b = c.recv(1 << 20)
    if not b:
        break
    h.update(b)
    n += len(b)
print(n, h.hexdigest())
`
	const client = `
import socket, random, hashlib, time
d = random.Random(7).randbytes(32 << 20)
for i in range(50):
    try:
        s = socket.create_connection(("198.51.100.10", 5301), timeout=5)
        break
    except OSError:
        time.sleep(0.1)
s.sendall(d)
s.close()
print(len(d), hashlib.sha256(d).hexdigest())
`
	got := make(chan string, 1)
	go func() {
		out, err := l.ExecTimeout(l.H2, 30*time.Second, "/usr/bin/python3", "-c", server)
		if err != nil {
			out += err.Error()
		}
		got <- strings.TrimSpace(out)
	}()
	sent, err := l.ExecTimeout(l.H1, 30*time.Second, "/usr/bin/python3", "-c", client)
	if err != nil {
		t.Fatalf("sender: %v\n%s", err, sent)
	}
	if recv := <-got; recv != strings.TrimSpace(sent) {
		t.Fatalf("received %q, sent %q", recv, strings.TrimSpace(sent))
	}
}

// scapy sends crafted frames from h1 to the router's MAC.
func scapy(t *testing.T, l *lab.Topo, ns, script string) {
	t.Helper()
	path := filepath.Join(l.Dir, "craft.py")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := l.Exec(ns, "/usr/bin/python3", path); err != nil {
		t.Fatalf("scapy: %v\n%s", err, out)
	}
}

func TestMalformedNotForwarded(t *testing.T) {
	l := standard(t, "")
	// Resolve the router's MAC and h2 so that a good packet would be forwarded.
	run(t, l, l.H1, "ping", "-c", "1", "-W", "2", "198.51.100.10")
	before := stats(t, l.Router)
	scapy(t, l, l.H1, `
import logging
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import *
conf.verb = 0
rmac = getmacbyip("192.0.2.1")
e = Ether(dst=rmac)
good = IP(src="192.0.2.10", dst="198.51.100.10")/UDP(sport=1000, dport=9)/Raw(b"x"*20)
raw_good = bytes(good)
bad_csum = bytearray(raw_good); bad_csum[10] ^= 0xff
bad_ihl = bytearray(raw_good); bad_ihl[0] = 0x44
bad_ver = bytearray(raw_good); bad_ver[0] = 0x65
trunc = bytearray(raw_good); trunc[2:4] = (200).to_bytes(2, "big")
frames = [e/Raw(bytes(bad_csum)), e/Raw(bytes(bad_ihl)), e/Raw(bytes(bad_ver)), e/Raw(bytes(trunc)),
          e/IP(src="127.0.0.1", dst="198.51.100.10")/UDP(dport=9),
          e/IP(src="0.1.2.3", dst="198.51.100.10")/UDP(dport=9),
          e/IP(src="224.1.1.1", dst="198.51.100.10")/UDP(dport=9)]
for f in frames:
    f.type = 0x0800
    sendp(f, iface="eth0")
`)
	time.Sleep(300 * time.Millisecond)
	after := stats(t, l.Router)
	for reason, want := range map[string]uint64{"ip-checksum": 1, "ip-bad-ihl": 1, "ip-version": 1, "ip-truncated": 1, "martian-source": 3} {
		if got := after.Drops[reason] - before.Drops[reason]; got != want {
			t.Errorf("drop %s: +%d, want +%d", reason, got, want)
		}
	}
	if f := after.Counters["forwarded"] - before.Counters["forwarded"]; f != 0 {
		t.Errorf("%d malformed packets forwarded", f)
	}
}

func TestBadConfigAndMissingDevice(t *testing.T) {
	needRoot(t)
	bin, _ := lab.Binary()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[router]\nname = \"x\"\nbogus = 1\n\n[[port]]\nname = \"p\"\ndriver = \"afpacket\"\ndevice = \"eth0\"\nmtu = \"big\"\n"), 0o644)
	for _, sub := range []string{"check", "run"} {
		out, err := exec.Command(bin, sub, "-c", bad).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("%s: want exit 1, got %v\n%s", sub, err, out)
		}
		contains(t, string(out), bad+":3:1:")
		contains(t, string(out), bad+":9:")
	}
	// A missing device: one clear line naming the port, exit 1 (in a namespace of our own).
	l, err := lab.New("m")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ns, err := l.NS("r")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "missing.toml")
	os.WriteFile(cfg, []byte("[router]\nname = \"m\"\nconsole = \""+filepath.Join(dir, "m.sock")+"\"\n\n[[port]]\nname = \"uplink\"\ndriver = \"afpacket\"\ndevice = \"nosuchdev0\"\n\n[[network]]\nname = \"n\"\nlinks = [\"uplink\"]\naddresses = [\"192.0.2.1/24\"]\n"), 0o644)
	out, err := l.Exec(ns, bin, "run", "-c", cfg)
	if err == nil {
		t.Fatal("router ran without its device")
	}
	lines := lab.Lines(out)
	if len(lines) != 1 || !strings.Contains(lines[0], `"uplink"`) || !strings.Contains(lines[0], "nosuchdev0") ||
		!strings.Contains(lines[0], "create it, or correct device in the file") {
		t.Fatalf("want one line naming the port and the fix, got:\n%s", out)
	}
}
