package control

import (
	"bufio"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// echo answers "echo WORDS..." with the words, "fail" with an error after
// some output; it records whether JSON was asked for.
func echo(args []string, js bool) (string, error) {
	if len(args) > 0 && args[0] == "fail" {
		return "partial\n", errors.New("it failed")
	}
	out := strings.Join(args, " ")
	if js {
		out = "json:" + out
	}
	return out + "\n", nil
}

func listen(t *testing.T, h Handler) (*Server, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "r.sock") // the directory is created
	s, err := Listen(path, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestRoundTrip(t *testing.T) {
	_, path := listen(t, echo)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v, want a socket with 0660", st.Mode())
	}
	cl, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Several requests on one connection.
	for _, c := range []struct {
		args []string
		js   bool
		want string
	}{
		{[]string{"show", "arp"}, false, "show arp\n"},
		{[]string{"show", "arp"}, true, "json:show arp\n"},
		{nil, false, "\n"},
		{[]string{strings.Repeat("x", 200<<10)}, false, strings.Repeat("x", 200<<10) + "\n"},
	} {
		out, err := cl.Do(c.args, c.js)
		if err != nil || out != c.want {
			t.Fatalf("Do(%.20q, %v) = %.40q, %v; want %.40q", c.args, c.js, out, err, c.want)
		}
	}
	out, err := cl.Do([]string{"fail"}, false)
	if err == nil || err.Error() != "it failed" || out != "partial\n" {
		t.Fatalf("failing command: %q, %v", out, err)
	}
}

// TestWire pins the JSON field names that outside scripts use.
func TestWire(t *testing.T) {
	_, path := listen(t, echo)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rd := bufio.NewReader(c)
	for _, x := range []struct{ req, resp string }{
		{`{"args":["a","b"],"json":true}`, `{"ok":true,"output":"json:a b\n"}`},
		{`{"args":["fail"]}`, `{"ok":false,"output":"partial\n","error":"it failed"}`},
		{`{"args":`, `{"ok":false,"error":"bad request: unexpected end of JSON input"}`},
		{`[1,2]`, `{"ok":false,"error":"bad request: json: cannot unmarshal array into Go value of type control.Request"}`},
		{`{"args":["still","served"]}`, `{"ok":true,"output":"still served\n"}`},
	} {
		if _, err := c.Write([]byte(x.req + "\n")); err != nil {
			t.Fatal(err)
		}
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSuffix(line, "\n") != x.resp {
			t.Errorf("request %s:\n got %s\nwant %s", x.req, strings.TrimSuffix(line, "\n"), x.resp)
		}
	}
}

func TestInUse(t *testing.T) {
	s, path := listen(t, echo)
	if _, err := Listen(path, echo); err == nil || !strings.Contains(err.Error(), "in use by another router") {
		t.Fatalf("second Listen on a live socket: %v", err)
	}
	// The first server is unharmed.
	cl, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cl.Do([]string{"x"}, false); err != nil || out != "x\n" {
		t.Fatalf("%q %v", out, err)
	}
	cl.Close()
	s.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file left after Close: %v", err)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.sock")
	// A socket file nobody listens on (a router that was killed).
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	s, err := Listen(path, echo)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	defer s.Close()
	cl, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if out, err := cl.Do([]string{"y"}, false); err != nil || out != "y\n" {
		t.Fatalf("%q %v", out, err)
	}
}

func TestCloseEndsConnections(t *testing.T) {
	s, path := listen(t, echo)
	cl, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.Do([]string{"a"}, false); err != nil {
		t.Fatal(err)
	}
	s.Close() // returns although the client keeps its connection open
	if _, err := cl.Do([]string{"a"}, false); err == nil {
		t.Fatal("request answered after Close")
	}
	if _, err := Dial(path); err == nil {
		t.Fatal("dial succeeded after Close")
	}
}

func TestConcurrentClients(t *testing.T) {
	_, path := listen(t, echo)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := Dial(path)
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			for j := 0; j < 50; j++ {
				if out, err := cl.Do([]string{"ping"}, false); err != nil || out != "ping\n" {
					t.Errorf("%q %v", out, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestDialNoServer(t *testing.T) {
	if _, err := Dial(filepath.Join(t.TempDir(), "none.sock")); err == nil {
		t.Fatal("Dial of a missing socket succeeded")
	}
}

// A flood of connections is bounded: past MaxConns open ones, a new
// connection is told the socket is busy and closed; once one closes, a new
// one is served again.
func TestConnectionLimit(t *testing.T) {
	s, path := listen(t, echo)
	var held []*Client
	for i := 0; i < MaxConns; i++ {
		c, err := Dial(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Do([]string{"x"}, false); err != nil { // served: it holds a slot
			t.Fatal(err)
		}
		held = append(held, c)
	}
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do([]string{"x"}, false); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("connection %d: %v, want busy", MaxConns+1, err)
	}
	c.Close()
	if open, refused := s.Conns(); open != MaxConns || refused != 1 {
		t.Fatalf("open %d refused %d", open, refused)
	}
	held[0].Close()
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := Dial(path)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Do([]string{"y"}, false)
		c.Close()
		if err == nil && out == "y\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot after one closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range held[1:] {
		c.Close()
	}
}
