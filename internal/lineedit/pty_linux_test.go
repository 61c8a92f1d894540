package lineedit

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// openPTY returns the master and slave ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 40}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// screenLog collects what the program writes to the terminal.
type screenLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *screenLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *screenLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *screenLog) waitFor(t *testing.T, sub string, count int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(s.String(), sub) < count {
		if time.Now().After(deadline) {
			t.Fatalf("timeout waiting for %d× %q; output so far %q", count, sub, s.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func canonical(t *testing.T, f *os.File) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&unix.ICANON != 0 && tio.Lflag&unix.ECHO != 0
}

func TestPTY(t *testing.T) {
	master, slave := openPTY(t)
	var scr screenLog
	go io.Copy(&scr, master)

	var calls []string
	e, err := New(slave, slave, Config{Prompt: "pty> ", Complete: testCompleter(&calls)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if !e.tty {
		t.Fatal("a pty must be treated as a terminal")
	}
	if w := e.width(); w != 40 {
		t.Fatalf("width %d, want 40", w)
	}

	type res struct {
		line string
		err  error
	}
	results := make(chan res)
	next := func() {
		go func() {
			l, err := e.ReadLine()
			results <- res{l, err}
		}()
	}
	get := func() res {
		t.Helper()
		select {
		case r := <-results:
			return r
		case <-time.After(5 * time.Second):
			t.Fatalf("ReadLine did not return; output %q", scr.String())
			return res{}
		}
	}

	// The first draw of an empty line; it is written after raw mode is
	// on, so keys sent after it are not seen by the cooked terminal.
	// (Every redraw repeats the prompt, so the prompt alone is no signal.)
	const fresh = "\rpty> \x1b[K\r\x1b[5C"
	next()
	scr.waitFor(t, fresh, 1)
	if canonical(t, slave) {
		t.Fatal("terminal not in raw mode while reading")
	}
	io.WriteString(master, "sho ip\x1b[D\x1b[Dx\x01\x1b[C\x1b[C\x1b[C\tZ\x1b[D\x1b[3~\r")
	if r := get(); r.err != nil || r.line != "show xip" {
		t.Fatalf("got %q, %v", r.line, r.err)
	}
	if !canonical(t, slave) {
		t.Fatal("terminal not restored after ReadLine")
	}
	// output between lines goes through the normal (cooked) terminal
	io.WriteString(slave, "out\n")
	scr.waitFor(t, "out\r\n", 1)

	next()
	scr.waitFor(t, fresh, 2)
	io.WriteString(master, "abc\x03")
	if r := get(); !errors.Is(r.err, ErrInterrupt) {
		t.Fatalf("Ctrl-C: %q %v", r.line, r.err)
	}
	scr.waitFor(t, "^C\r\n", 1)

	next()
	scr.waitFor(t, fresh, 3)
	io.WriteString(master, "\x1b[A\r")
	if r := get(); r.err != nil || r.line != "show xip" {
		t.Fatalf("history: %q %v", r.line, r.err)
	}

	next()
	scr.waitFor(t, fresh, 4)
	io.WriteString(master, "\x04")
	if r := get(); r.err != io.EOF {
		t.Fatalf("Ctrl-D: %q %v", r.line, r.err)
	}
	if !canonical(t, slave) {
		t.Fatal("terminal not restored after EOF")
	}

	// Close restores the state New found, even if something left the
	// terminal raw.
	if _, err := term.MakeRaw(int(slave.Fd())); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if !canonical(t, slave) {
		t.Fatal("Close did not restore the terminal")
	}
}
