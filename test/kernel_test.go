package test

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func loadPrefixes(t *testing.T) []netip.Prefix {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "fib", "testdata", "prefixes.txt.gz"))
	if err != nil {
		t.Fatalf("full table missing (fib/testdata/prefixes.txt.gz): %v", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Prefix
	sc := bufio.NewScanner(gz)
	for sc.Scan() {
		p, err := netip.ParsePrefix(strings.TrimSpace(sc.Text()))
		if err == nil && p.Addr().Is4() {
			out = append(out, p.Masked())
		}
	}
	return out
}

type routeSummary struct {
	Routes int `json:"routes"`
	Kernel struct {
		Routes  int    `json:"routes"`
		Skipped uint64 `json:"skipped"`
	} `json:"kernel"`
	MemoryBytes int64 `json:"memory_bytes"`
}

func summary(t *testing.T, l interface {
	Console(...string) (string, error)
}) routeSummary {
	t.Helper()
	out, err := l.Console("-j", "show", "ip", "route", "summary")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var s routeSummary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return s
}

func rssKB(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:"))
		}
	}
	return "?"
}

// TestKernelTableFullImport loads a full Internet table into kernel table
// 100 of the router's namespace with ip -batch while traffic flows, and
// checks that vrouter follows it.
func TestKernelTableFullImport(t *testing.T) {
	if testing.Short() {
		t.Skip("full-table import is not a -short test")
	}
	l := standard(t, "\n[fib]\nkernel_table = 100\n")
	prefixes := loadPrefixes(t)
	if len(prefixes) != 901899 {
		t.Fatalf("want 901899 IPv4 prefixes, got %d", len(prefixes))
	}
	rssBefore := rssKB(l.Router.Cmd.Process.Pid)
	batch := filepath.Join(l.Dir, "routes.batch")
	f, err := os.Create(batch)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for _, p := range prefixes {
		fmt.Fprintf(w, "route add %s via 198.51.100.10 dev r-h2 onlink table 100\n", p)
	}
	w.Flush()
	f.Close()

	// Forwarding keeps working while the table loads.
	pingDone := make(chan string, 1)
	go func() {
		out, _ := l.ExecTimeout(l.H1, 60*time.Second, "ping", "-c", "40", "-i", "0.25", "-W", "2", "192.0.2.1")
		pingDone <- out
	}()
	pingDone2 := make(chan string, 1)
	go func() {
		out, _ := l.ExecTimeout(l.H1, 60*time.Second, "ping", "-c", "40", "-i", "0.25", "-W", "2", "198.51.100.10")
		pingDone2 <- out
	}()
	start := time.Now()
	if out, err := l.ExecTimeout(l.R, 5*time.Minute, "ip", "-batch", batch); err != nil {
		t.Fatalf("ip -batch: %v\n%.2000s", err, out)
	}
	loaded := time.Since(start)
	var s routeSummary
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if s = summary(t, l.Router); s.Kernel.Routes == len(prefixes) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	followed := time.Since(start)
	if s.Kernel.Routes != len(prefixes) || s.Routes < len(prefixes) {
		t.Fatalf("vrouter has %d kernel routes (%d total), want %d", s.Kernel.Routes, s.Routes, len(prefixes))
	}
	for _, ch := range []chan string{pingDone, pingDone2} {
		if out := <-ch; !strings.Contains(out, " 0% packet loss") {
			t.Fatalf("forwarding suffered while the table loaded:\n%s", out)
		}
	}
	t.Logf("ip -batch of %d routes: %v; vrouter had them all after %v; FIB %d bytes; router RSS %s before, %s with the full table",
		len(prefixes), loaded.Round(time.Millisecond), followed.Round(time.Millisecond), s.MemoryBytes, rssBefore, rssKB(l.Router.Cmd.Process.Pid))

	// Lookups agree with the kernel's table: read it back and compare the
	// longest match for random addresses, 70% inside routed space.
	out, err := l.ExecTimeout(l.R, 2*time.Minute, "ip", "route", "show", "table", "100")
	if err != nil {
		t.Fatal(err)
	}
	kernel := map[netip.Prefix]bool{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.Contains(f[0], "/") {
			f[0] += "/32"
		}
		if p, err := netip.ParsePrefix(f[0]); err == nil {
			kernel[p] = true
		}
	}
	if len(kernel) != len(prefixes) {
		t.Fatalf("kernel table 100 holds %d routes, want %d", len(kernel), len(prefixes))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		var a netip.Addr
		if i%10 < 7 {
			p := prefixes[rng.IntN(len(prefixes))]
			b := p.Addr().As4()
			host := rng.Uint32() & (1<<(32-p.Bits()) - 1)
			v := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) | host
			a = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		} else {
			a = netip.AddrFrom4([4]byte{byte(rng.IntN(224)), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
		}
		want := ""
		for bits := 32; bits >= 0; bits-- {
			p, _ := a.Prefix(bits)
			if kernel[p] {
				want = p.String()
				break
			}
		}
		got, err := l.Router.Console("-j", "show", "ip", "route", a.String())
		var rows []struct {
			Prefix string `json:"prefix"`
			Source string `json:"source"`
		}
		json.Unmarshal([]byte(got), &rows)
		gotPrefix := ""
		if err == nil && len(rows) == 1 {
			gotPrefix = rows[0].Prefix
			if rows[0].Source == "connected" {
				gotPrefix = "" // the lab's own networks are not in table 100
			}
		}
		if gotPrefix != want {
			t.Fatalf("lookup %s: vrouter %q, kernel table %q", a, gotPrefix, want)
		}
	}
	// A deletion is followed too.
	victim := prefixes[12345]
	run(t, l, l.R, "ip", "route", "del", victim.String(), "table", "100")
	time.Sleep(200 * time.Millisecond)
	if out, err := l.Router.Console("show", "ip", "route", victim.String()); err == nil {
		t.Fatalf("deleted route %s still in vrouter:\n%s", victim, out)
	}
}
