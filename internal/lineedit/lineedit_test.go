package lineedit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

type result struct {
	line string
	err  error
}

// newTerm returns an editor in terminal mode (without touching a real
// terminal) reading input and drawing on a vt of the given width.
func newTerm(cfg Config, width int, input string) (*Editor, *vt, *bytes.Buffer) {
	v := newVT(width)
	var raw bytes.Buffer
	e := newEditor(strings.NewReader(input), io.MultiWriter(v, &raw), cfg)
	e.tty = true
	e.width = func() int { return width }
	return e, v, &raw
}

// readAll calls ReadLine until the input is exhausted.
func readAll(t *testing.T, e *Editor) []result {
	t.Helper()
	var out []result
	for i := 0; i < 100; i++ {
		line, err := e.ReadLine()
		if err == io.EOF {
			return out
		}
		out = append(out, result{line, err})
	}
	t.Fatal("ReadLine did not reach EOF")
	return nil
}

// lines runs input through a fresh terminal editor and returns the lines
// read; any error other than EOF fails the test.
func lines(t *testing.T, cfg Config, input string) []string {
	t.Helper()
	e, v, _ := newTerm(cfg, 80, input)
	var out []string
	for _, r := range readAll(t, e) {
		if r.err != nil {
			t.Fatalf("input %q: unexpected error %v", input, r.err)
		}
		out = append(out, r.line)
	}
	if len(v.unknown) > 0 {
		t.Errorf("input %q: unknown output sequences %q", input, v.unknown)
	}
	return out
}

func TestEditingKeys(t *testing.T) {
	const (
		left  = "\x1b[D"
		right = "\x1b[C"
	)
	tests := []struct {
		name, in, want string
	}{
		{"plain", "hello\r", "hello"},
		{"lf enter", "hello\n", "hello"},
		{"insert at cursor", "helo" + left + "l\r", "hello"},
		{"ss3 left", "ac\x1bODb\r", "abc"},
		{"ss3 right", "ac\x1bOD\x1bOCb\r", "acb"},
		{"csi right at end no-op", "ab" + right + right + "c\r", "abc"},
		{"left at start no-op", "a" + left + left + left + "b\r", "ba"},
		{"ctrl-b ctrl-f", "ac\x02b\x06d\r", "abcd"},
		{"ctrl-a", "abc\x01X\r", "Xabc"},
		{"ctrl-e", "abc\x01\x05X\r", "abcX"},
		{"home CSI H", "abc\x1b[HX\r", "Xabc"},
		{"home CSI 1~", "abc\x1b[1~X\r", "Xabc"},
		{"home CSI 7~", "abc\x1b[7~X\r", "Xabc"},
		{"home SS3 H", "abc\x1bOHX\r", "Xabc"},
		{"end CSI F", "abc\x01\x1b[FX\r", "abcX"},
		{"end CSI 4~", "abc\x01\x1b[4~X\r", "abcX"},
		{"end CSI 8~", "abc\x01\x1b[8~X\r", "abcX"},
		{"end SS3 F", "abc\x01\x1bOFX\r", "abcX"},
		{"backspace DEL", "abc\x7f\r", "ab"},
		{"backspace BS", "abc\x08\r", "ab"},
		{"backspace mid", "abc" + left + "\x7f\r", "ac"},
		{"backspace at start", "\x7fa\x01\x7f\r", "a"},
		{"delete", "abc\x01\x1b[3~\r", "bc"},
		{"delete at end", "abc\x1b[3~\r", "abc"},
		{"ctrl-d deletes on non-empty line", "abc\x01\x04\r", "bc"},
		{"ctrl-k", "hello world\x01" + right + right + "\x0b\r", "he"},
		{"ctrl-u", "hello world" + left + left + "\x15\r", "ld"},
		{"ctrl-w", "show ip route\x17\r", "show ip "},
		{"ctrl-w spaces", "show ip   \x17\r", "show "},
		{"ctrl-w mid", "show ip route" + left + left + left + left + left + left + "\x17\r", "show  route"},
		{"ctrl-y yanks", "show ip\x17\x19\x19\r", "show ipip"},
		{"alt-b", "show ip\x1bbX\r", "show Xip"},
		{"alt-f", "show ip\x01\x1bfX\r", "showX ip"},
		{"ctrl-left", "show ip\x1b[1;5DX\r", "show Xip"},
		{"ctrl-right", "show ip\x01\x1b[1;5CX\r", "showX ip"},
		{"alt-backspace", "show ip\x1b\x7f\r", "show "},
		{"alt-d", "show ip\x01\x1bd\r", " ip"},
		{"ctrl-t", "ab\x14\r", "ba"},
		{"ctrl-t mid", "abc\x02\x14\r", "acb"},
		{"utf8", "grüße\x7f\r", "grüß"},
		{"utf8 cursor", "grße\x1b[D\x1b[Dü\r", "grüße"},
		{"unknown CSI ignored", "a\x1b[99~b\r", "ab"},
		{"unknown CSI final ignored", "a\x1b[Zb\r", "ab"},
		{"bracketed paste markers ignored", "\x1b[200~ab\x1b[201~\r", "ab"},
		{"control chars ignored", "a\x00\x07\x1ab\r", "ab"},
		{"ctrl-l keeps line", "ab\x0cc\r", "abc"},
		{"empty line", "\r", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := lines(t, Config{Prompt: "> "}, tc.in)
			if len(got) != 1 || got[0] != tc.want {
				t.Fatalf("input %q: got %q, want [%q]", tc.in, got, tc.want)
			}
		})
	}
}

func TestMaxLine(t *testing.T) {
	// Ctrl-U and repeated Ctrl-Y would double the line each round
	in := "abcdefgh" + strings.Repeat("\x15\x19\x19\x19", 20) + "\r"
	got := lines(t, Config{}, in)
	if len(got) != 1 || len([]rune(got[0])) != maxLine {
		t.Fatalf("got a line of %d runes, want %d", len(got[0]), maxLine)
	}
	got = lines(t, Config{}, strings.Repeat("x", maxLine+10)+"\r")
	if len(got) != 1 || len(got[0]) != maxLine {
		t.Fatalf("got a line of %d runes, want %d", len(got[0]), maxLine)
	}
}

func TestCRLFIsOneEnter(t *testing.T) {
	got := lines(t, Config{}, "a\r\nb\r\n\r\rc\n\n")
	want := []string{"a", "b", "", "", "c", ""}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestClearScreen(t *testing.T) {
	e, v, raw := newTerm(Config{Prompt: "r1> "}, 40, "x\rab\x0cc")
	if l, err := e.ReadLine(); l != "x" || err != nil {
		t.Fatalf("got %q %v", l, err)
	}
	if _, err := e.ReadLine(); err != io.EOF {
		t.Fatalf("want EOF at end of input, got %v", err)
	}
	if !strings.Contains(raw.String(), "\x1b[H\x1b[2J") {
		t.Fatalf("no clear sequence in %q", raw.String())
	}
	// After the clear the screen shows only the redrawn line (then the
	// newline written at the end of the input).
	if got := v.screen(); !reflect.DeepEqual(got, []string{"r1> abc"}) {
		t.Fatalf("screen %q", got)
	}
}

func TestHistoryWalk(t *testing.T) {
	up, down := "\x1b[A", "\x1b[B"
	in := "one\rtwo\rtwo\r\r   \r" + // dup and empty lines are not recorded
		"thr" + up + up + up + down + down + down + "\r" + // back to the unfinished line
		up + up + "!\r" + // edit a recalled entry
		"\x10\x10\x10\x0e\r" + // Ctrl-P Ctrl-P Ctrl-P Ctrl-N
		"\x1bOA\r" // SS3 up
	got := lines(t, Config{Prompt: "> "}, in)
	want := []string{"one", "two", "two", "", "   ", "thr", "two!", "thr", "thr"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestHistoryUnfinishedLineKept(t *testing.T) {
	e, v, _ := newTerm(Config{Prompt: "> "}, 40, "a\rb\rpartial\x1b[A\x1b[A\x1b[B\x1b[B")
	readAll(t, e)
	if got := e.hist; !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatalf("history %q", got)
	}
	// the screen shows the last state of the line before EOF
	scr := v.screen()
	if len(scr) < 3 || scr[2] != "> partial" {
		t.Fatalf("screen %q", scr)
	}
}

func TestHistoryEditDoesNotChangeEntry(t *testing.T) {
	got := lines(t, Config{}, "abc\r\x1b[A\x7f\x7f\r\x1b[A\x1b[A\r")
	want := []string{"abc", "a", "abc"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func readLinesFile(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestHistoryFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "history")
	cfg := Config{Prompt: "> ", HistoryFile: path}

	// missing file and directory: fine, created on the first line
	e, _, _ := newTerm(cfg, 80, "show arp\r\rshow arp\rshow nat\r")
	if err := e.loadHistory(); err != nil {
		t.Fatal(err)
	}
	readAll(t, e)
	if got := readLinesFile(t, path); !reflect.DeepEqual(got, []string{"show arp", "show nat"}) {
		t.Fatalf("file %q", got)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("history file mode %v", fi.Mode().Perm())
	}

	// a new editor loads it: Up gives the newest entry
	e2, _, _ := newTerm(cfg, 80, "\x1b[A\r\x1b[A\x1b[A\x1b[A\r")
	if err := e2.loadHistory(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range readAll(t, e2) {
		got = append(got, r.line)
	}
	if want := []string{"show nat", "show arp"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("lines %q, want %q", got, want)
	}
	// recalled repeats of the newest entry are not appended again
	if got := readLinesFile(t, path); !reflect.DeepEqual(got, []string{"show arp", "show nat", "show arp"}) {
		t.Fatalf("file %q", got)
	}
}

func TestHistoryFileViaNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h")
	if err := os.WriteFile(path, []byte("a\n\nb\r\nb\nc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w.Close()
	e, err := New(r, io.Discard, Config{HistoryFile: path})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(e.hist, want) {
		t.Fatalf("history %q, want %q", e.hist, want)
	}
	// a directory as history file is an error
	if _, err := New(r, io.Discard, Config{HistoryFile: t.TempDir()}); err == nil {
		t.Fatal("want error for a directory as history file")
	}
}

func TestHistoryLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h")
	var b strings.Builder
	for i := 0; i < 2500; i++ {
		fmt.Fprintf(&b, "cmd %d\n", i)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	e, _, _ := newTerm(Config{HistoryFile: path}, 80, "new 1\rnew 2\rnew 3\r")
	if err := e.loadHistory(); err != nil {
		t.Fatal(err)
	}
	if len(e.hist) != maxHistory || e.hist[0] != "cmd 1500" || e.hist[maxHistory-1] != "cmd 2499" {
		t.Fatalf("history has %d entries, first %q last %q", len(e.hist), e.hist[0], e.hist[len(e.hist)-1])
	}
	f := readLinesFile(t, path)
	if len(f) != maxHistory || f[0] != "cmd 1500" {
		t.Fatalf("file not trimmed on load: %d lines, first %q", len(f), f[0])
	}
	readAll(t, e)
	f = readLinesFile(t, path)
	if len(f) != maxHistory || f[0] != "cmd 1503" || f[maxHistory-1] != "new 3" {
		t.Fatalf("file after appends: %d lines, first %q, last %q", len(f), f[0], f[len(f)-1])
	}
	if !reflect.DeepEqual(f, e.hist) {
		t.Fatal("file and memory history differ")
	}
	// below the limit the file is only appended to
	path2 := filepath.Join(t.TempDir(), "h2")
	e2, _, _ := newTerm(Config{HistoryFile: path2}, 80, "")
	for i := 0; i < maxHistory+10; i++ {
		e2.addHistory(fmt.Sprintf("l%d", i))
	}
	f = readLinesFile(t, path2)
	if len(f) != maxHistory || f[0] != "l10" || len(e2.hist) != maxHistory {
		t.Fatalf("file %d lines first %q, memory %d", len(f), f[0], len(e2.hist))
	}
}

// testCompleter completes a two-level command tree.
func testCompleter(calls *[]string) Completer {
	tree := map[string][]string{
		"":     {"show", "shutdown", "quit", "clear", "trace"},
		"show": {"interfaces", "ip", "arp", "nat", "stats", "conntrack"},
	}
	return func(line string) []string {
		*calls = append(*calls, line)
		f := strings.Fields(line)
		if !strings.HasSuffix(line, " ") && len(f) > 0 {
			f = f[:len(f)-1]
		}
		cands := tree[strings.Join(f, " ")]
		if !strings.HasSuffix(line, " ") && line != "" {
			cands = append(cands, "zzz-not-matching") // must be filtered out
		}
		return cands
	}
}

func TestCompletion(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"single", "q\t\r", "quit "},
		{"single second level", "show a\t\r", "show arp "},
		{"common prefix", "s\t\r", "sh"},
		{"common prefix then single", "s\to\t\r", "show "},
		{"nothing matches", "x\t\r", "x"},
		{"exact word gets space", "quit\t\r", "quit "},
		{"ambiguous no insert", "show \t\r", "show "},
		{"mid line existing space", "q arp\x01\x1b[C\t\r", "quit arp"},
		{"mid line", "qarp\x01\x1b[C\t\r", "quit arp"},
		{"completion then typing", "show i\tp\r", "show ip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls []string
			got := lines(t, Config{Prompt: "> ", Complete: testCompleter(&calls)}, tc.in)
			if len(got) != 1 || got[0] != tc.want {
				t.Fatalf("input %q: got %q, want [%q]", tc.in, got, tc.want)
			}
			if len(calls) == 0 {
				t.Fatal("completer not called")
			}
		})
	}
}

func TestCompleterGetsTextBeforeCursor(t *testing.T) {
	var calls []string
	lines(t, Config{Complete: testCompleter(&calls)}, "show ip route\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\x1b[D\t\r")
	if want := []string{"show ip"}; !reflect.DeepEqual(calls, want) {
		t.Fatalf("calls %q, want %q", calls, want)
	}
}

func TestCompletionListing(t *testing.T) {
	var calls []string
	cfg := Config{Prompt: "edge1> ", Complete: testCompleter(&calls)}

	// first Tab inserts the common prefix and lists nothing
	e, v, _ := newTerm(cfg, 40, "s\t")
	readAll(t, e)
	if got := v.screen(); !reflect.DeepEqual(got, []string{"edge1> sh"}) {
		t.Fatalf("after one Tab: %q", got)
	}

	// the second Tab in a row lists the candidates and redraws the line
	e, v, _ = newTerm(cfg, 40, "s\t\t")
	readAll(t, e)
	want := []string{"edge1> sh", "show      shutdown", "edge1> sh"}
	if got := v.screen(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after two Tabs:\n%q\nwant\n%q", got, want)
	}

	// a key between the Tabs resets the count
	e, v, _ = newTerm(cfg, 40, "show \t\x01\x05\t")
	readAll(t, e)
	if got := v.screen(); !reflect.DeepEqual(got, []string{"edge1> show"}) {
		t.Fatalf("Tab, keys, Tab: %q", got)
	}

	// columns, column-major, in a narrow terminal; the line stays usable
	e, v, _ = newTerm(cfg, 30, "show \t\tarp\r")
	res := readAll(t, e)
	if len(res) != 1 || res[0].line != "show arp" {
		t.Fatalf("result %v", res)
	}
	want = []string{
		"edge1> show",
		"arp         ip",
		"conntrack   nat",
		"interfaces  stats",
		"edge1> show arp",
		"edge1>",
	}
	if got := v.screen(); !reflect.DeepEqual(got, want) {
		t.Fatalf("listing:\n%q\nwant\n%q", got, want)
	}
}

func TestCompletionNoCompleter(t *testing.T) {
	got := lines(t, Config{}, "ab\t\tc\r")
	if len(got) != 1 || got[0] != "abc" {
		t.Fatalf("got %q", got)
	}
}

func TestColumns(t *testing.T) {
	tests := []struct {
		items []string
		width int
		want  string
	}{
		{[]string{"a", "b", "c"}, 80, "a  b  c\n"},
		{[]string{"a", "b", "c"}, 5, "a  c\nb\n"},
		{[]string{"a", "b", "c"}, 4, "a\nb\nc\n"},
		{[]string{"a", "b", "c"}, 3, "a\nb\nc\n"},
		{[]string{"aaaa", "b", "c", "d", "e"}, 17, "aaaa  c     e\nb     d\n"},
		{[]string{"aaaa", "b", "c", "d", "e"}, 16, "aaaa  d\nb     e\nc\n"},
		{[]string{"long-word"}, 3, "long-word\n"},
	}
	for _, tc := range tests {
		if got := columns(tc.items, tc.width); got != tc.want {
			t.Errorf("columns(%q, %d) = %q, want %q", tc.items, tc.width, got, tc.want)
		}
	}
}

func TestCommonPrefixAndFilter(t *testing.T) {
	if got := commonPrefix([]string{"grüne", "grün", "grüß"}); got != "grü" {
		t.Errorf("got %q", got)
	}
	// "é" and "è" share their first UTF-8 byte; the prefix must not split it
	if got := commonPrefix([]string{"xé", "xè"}); got != "x" {
		t.Errorf("got %q", got)
	}
	got := filterCandidates([]string{"b", "a", "ab", "b", "x"}, "")
	if want := []string{"a", "ab", "b", "x"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q", got)
	}
}

func TestHelp(t *testing.T) {
	var asked []string
	help := func(line string) string {
		asked = append(asked, line)
		return "interfaces   show ports and networks\nip           IPv4 tables\n"
	}
	e, v, _ := newTerm(Config{Prompt: "r> ", Help: help}, 60, "show ?ip\r")
	res := readAll(t, e)
	if len(res) != 1 || res[0].line != "show ip" || res[0].err != nil {
		t.Fatalf("result %v", res)
	}
	if !reflect.DeepEqual(asked, []string{"show "}) {
		t.Fatalf("help asked for %q", asked)
	}
	want := []string{
		"r> show ?",
		"interfaces   show ports and networks",
		"ip           IPv4 tables",
		"r> show ip",
		"r>", // the next ReadLine's prompt, which then met the end of input
	}
	if got := v.screen(); !reflect.DeepEqual(got, want) {
		t.Fatalf("screen:\n%q\nwant\n%q", got, want)
	}

	// '?' not at the end of the line, or without a Helper, is inserted
	got := lines(t, Config{Help: help}, "ab\x1b[D?\r")
	if len(got) != 1 || got[0] != "a?b" {
		t.Fatalf("got %q", got)
	}
	got = lines(t, Config{}, "ab?\r")
	if len(got) != 1 || got[0] != "ab?" {
		t.Fatalf("got %q", got)
	}
	// empty help text just redraws
	e, v, _ = newTerm(Config{Prompt: "r> ", Help: func(string) string { return "" }}, 60, "x?")
	readAll(t, e)
	if got := v.screen(); !reflect.DeepEqual(got, []string{"r> x?", "r> x"}) {
		t.Fatalf("screen %q", got)
	}
}

func TestInterrupt(t *testing.T) {
	e, v, raw := newTerm(Config{Prompt: "> "}, 40, "abc\x01\x03def\r")
	l, err := e.ReadLine()
	if !errors.Is(err, ErrInterrupt) || l != "" {
		t.Fatalf("got %q, %v; want ErrInterrupt", l, err)
	}
	if !strings.HasSuffix(raw.String(), "^C\r\n") {
		t.Fatalf("output %q does not end with ^C CRLF", raw.String())
	}
	l, err = e.ReadLine()
	if err != nil || l != "def" {
		t.Fatalf("line after interrupt: %q, %v", l, err)
	}
	want := []string{"> abc^C", "> def"}
	if got := v.screen(); !reflect.DeepEqual(got, want) {
		t.Fatalf("screen %q", got)
	}
}

func TestEOF(t *testing.T) {
	e, _, raw := newTerm(Config{Prompt: "> "}, 40, "\x04")
	if _, err := e.ReadLine(); err != io.EOF {
		t.Fatalf("Ctrl-D on empty line: %v", err)
	}
	if !strings.HasSuffix(raw.String(), "\r\n") {
		t.Fatalf("no newline after Ctrl-D: %q", raw.String())
	}
	// Ctrl-D on an emptied line also ends
	e, _, _ = newTerm(Config{}, 40, "ab\x7f\x7f\x04more\r")
	if _, err := e.ReadLine(); err != io.EOF {
		t.Fatalf("Ctrl-D on emptied line: %v", err)
	}
	// end of input in the middle of a line: the partial line is discarded
	e, _, _ = newTerm(Config{}, 40, "partial")
	if l, err := e.ReadLine(); err != io.EOF || l != "" {
		t.Fatalf("end of input: %q %v", l, err)
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("broken") }

func TestWriteError(t *testing.T) {
	e := newEditor(strings.NewReader("abc\r"), errWriter{}, Config{Prompt: "> "})
	e.tty = true
	if _, err := e.ReadLine(); err == nil || err.Error() != "broken" {
		t.Fatalf("got %v", err)
	}
}

func TestPlainModePipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		io.WriteString(w, "show arp\nquit\r\n\nlast")
		w.Close()
	}()
	path := filepath.Join(t.TempDir(), "h")
	var out bytes.Buffer
	e, err := New(r, &out, Config{Prompt: "> ", HistoryFile: path})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.tty {
		t.Fatal("a pipe must not be treated as a terminal")
	}
	var got []string
	for {
		l, err := e.ReadLine()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, l)
	}
	if want := []string{"show arp", "quit", "", "last"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if out.Len() != 0 {
		t.Fatalf("plain mode wrote %q", out.String())
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("plain mode must not record history (stat: %v)", err)
	}
	if _, err := e.ReadLine(); err != io.EOF {
		t.Fatalf("repeated EOF: %v", err)
	}
}

func TestNilInput(t *testing.T) {
	e, err := New(nil, io.Discard, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ReadLine(); err != io.EOF {
		t.Fatalf("got %v, want EOF", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLongLineScrolls(t *testing.T) {
	const width = 20 // prompt 2 + 17 visible runes + cursor column
	long := "abcdefghijklmnopqrstuvwxyz0123"
	check := func(input, wantRow string, wantCol int) {
		t.Helper()
		e, v, _ := newTerm(Config{Prompt: "> "}, width, input)
		line, err := e.edit()
		if err != io.EOF || line != "" {
			t.Fatalf("edit: %q %v", line, err)
		}
		// edit wrote a final CRLF at EOF; look at the row above it
		scr := v.screen()
		if len(scr) != 1 || scr[0] != wantRow {
			t.Fatalf("input %q: screen %q, want %q", input, scr, wantRow)
		}
		if v.wrapped {
			t.Fatalf("input %q: output wrapped past the right margin", input)
		}
		if v.lastCol != wantCol {
			t.Fatalf("input %q: cursor column %d, want %d", input, v.lastCol, wantCol)
		}
	}
	check(long, "> nopqrstuvwxyz0123", 19)
	check(long+"\x01", "> abcdefghijklmnopq", 2)
	check(long+"\x01\x05", "> nopqrstuvwxyz0123", 19)
	// deleting from the end shows more of the start again
	check(long+strings.Repeat("\x7f", 10), "> defghijklmnopqrst", 19)
}

// TestCursorPosition checks the cursor column after redraws, including a
// prompt with colour escapes.
func TestCursorPosition(t *testing.T) {
	tests := []struct {
		prompt, in string
		width, col int
		row        string
	}{
		{"> ", "abc", 40, 5, "> abc"},
		{"> ", "abc\x1b[D", 40, 4, "> abc"},
		{"> ", "abc\x01", 40, 2, "> abc"},
		{"\x1b[1mr1\x1b[0m> ", "ab", 40, 6, "r1> ab"},
		{"> ", "grüße\x1b[D\x1b[D", 40, 5, "> grüße"},
		{"> ", strings.Repeat("x", 30), 20, 19, "> " + strings.Repeat("x", 17)},
		{"> ", strings.Repeat("x", 30) + "\x01", 20, 2, "> " + strings.Repeat("x", 17)},
	}
	for _, tc := range tests {
		v := newVT(tc.width)
		e := newEditor(strings.NewReader(tc.in), v, Config{Prompt: tc.prompt})
		e.tty = true
		e.width = func() int { return tc.width }
		// feed the keys without hitting EOF: run edit on the input, but
		// capture the state before the final CRLF via a reader that stops.
		e.r.Reset(io.MultiReader(strings.NewReader(tc.in), blockingEOF{}))
		_, _ = e.edit()
		// blockingEOF returns an error other than EOF: edit wrote CRLF;
		// the cursor column before that was recorded by the vt.
		if got := v.screen(); len(got) == 0 || got[0] != tc.row {
			t.Errorf("%q/%q: screen %q, want %q", tc.prompt, tc.in, got, tc.row)
		}
		if v.lastCol != tc.col {
			t.Errorf("%q/%q: cursor column %d, want %d", tc.prompt, tc.in, v.lastCol, tc.col)
		}
	}
}

type blockingEOF struct{}

func (blockingEOF) Read([]byte) (int, error) { return 0, errors.New("stop") }

// TestRandomAgainstModel applies random editing keys to the editor and to a
// naive model of the line (a string and a cursor index) and compares.
func TestRandomAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("ab ü-")
	for iter := 0; iter < 2000; iter++ {
		var in strings.Builder
		var line []rune
		pos := 0
		var kill []rune
		for n := rng.IntN(40); n > 0; n-- {
			switch rng.IntN(13) {
			case 0, 1, 2, 3:
				r := alphabet[rng.IntN(len(alphabet))]
				in.WriteRune(r)
				line = append(line[:pos], append([]rune{r}, line[pos:]...)...)
				pos++
			case 4:
				in.WriteString("\x1b[D")
				pos = max(0, pos-1)
			case 5:
				in.WriteString("\x1bOC")
				pos = min(len(line), pos+1)
			case 6:
				in.WriteString("\x01")
				pos = 0
			case 7:
				in.WriteString("\x1b[F")
				pos = len(line)
			case 8:
				in.WriteString("\x7f")
				if pos > 0 {
					line = append(line[:pos-1], line[pos:]...)
					pos--
				}
			case 9:
				in.WriteString("\x1b[3~")
				if pos < len(line) {
					line = append(line[:pos], line[pos+1:]...)
				}
			case 10:
				in.WriteString("\x0b")
				if pos < len(line) {
					kill = append([]rune(nil), line[pos:]...)
					line = line[:pos]
				}
			case 11:
				in.WriteString("\x15")
				if pos > 0 {
					kill = append([]rune(nil), line[:pos]...)
					line = line[pos:]
					pos = 0
				}
			case 12:
				in.WriteString("\x19")
				line = append(line[:pos], append(append([]rune(nil), kill...), line[pos:]...)...)
				pos += len(kill)
			}
		}
		// mark the cursor position, then accept
		in.WriteString("|\r")
		line = append(line[:pos], append([]rune{'|'}, line[pos:]...)...)
		got := lines(t, Config{Prompt: "$ "}, in.String())
		if len(got) != 1 || got[0] != string(line) {
			t.Fatalf("input %q: got %q, model %q", in.String(), got, string(line))
		}
	}
}

func FuzzEditor(f *testing.F) {
	f.Add("show ip\x1b[D\x1b[Dx\t\t?\r\x1b[A\r")
	f.Add("\x1b[1;5C\x1bO\x1b[\x1b")
	f.Add("grüße\x17\x19\x14\x0b\x15\x03abc\x04")
	f.Add("\xff\xfe\x1b[999999999999~\x1b[;;;;;;;;;;;;;;;;;;;;;;;;;A")
	f.Fuzz(func(t *testing.T, in string) {
		var calls []string
		cfg := Config{
			Prompt:   "> ",
			Complete: testCompleter(&calls),
			Help:     func(line string) string { return "help for " + line },
		}
		e, v, _ := newTerm(cfg, 24, in)
		for i := 0; i < len(in)+2; i++ {
			line, err := e.ReadLine()
			if err == io.EOF {
				break
			}
			if err != nil && err != ErrInterrupt {
				t.Fatalf("unexpected error %v", err)
			}
			for _, r := range line {
				if r < 0x20 || r == 0x7f {
					t.Fatalf("control character %q in line %q", r, line)
				}
			}
			if e.pos < 0 || e.pos > len(e.buf) || e.off < 0 || e.off > e.pos {
				t.Fatalf("bad state pos %d off %d len %d", e.pos, e.off, len(e.buf))
			}
		}
		if v.wrapped {
			// only the listing and help output may be wider than the
			// terminal; the edited line itself never is
			for _, row := range v.screen() {
				if strings.HasPrefix(row, "> ") && len([]rune(row)) > 24 {
					t.Fatalf("line row wider than the terminal: %q", row)
				}
			}
		}
		if len(e.hist) > maxHistory {
			t.Fatal("history too long")
		}
	})
}

func TestPasteRedrawsOnce(t *testing.T) {
	in := strings.Repeat("x", 200) + "\r" + "abc\x7f\x7f\x7f\x04"
	e, v, raw := newTerm(Config{Prompt: "> "}, 40, in)
	res := readAll(t, e)
	if len(res) != 1 || len(res[0].line) != 200 {
		t.Fatalf("result %v", res)
	}
	// each line: the initial draw and one draw when it ends (Enter or
	// Ctrl-D); nothing per key while the pasted keys are still buffered
	if n := strings.Count(raw.String(), "\r> "); n != 4 {
		t.Fatalf("%d redraws, want 4: %q", n, raw.String())
	}
	want := []string{"> " + strings.Repeat("x", 37), ">"}
	if got := v.screen(); !reflect.DeepEqual(got, want) {
		t.Fatalf("screen %q, want %q", got, want)
	}
}

// BenchmarkTypeLine measures handling a typed line with some editing keys
// (one ReadLine, terminal mode, output to a buffer).
func BenchmarkTypeLine(b *testing.B) {
	in := "show ip route 203.0.113.0/24\x1b[D\x1b[D\x7f4\x01\x1b[C\x05 extra\x17\r"
	var out bytes.Buffer
	e := newEditor(strings.NewReader(in), &out, Config{Prompt: "edge1> "})
	e.tty = true
	b.ReportAllocs()
	for b.Loop() {
		e.r.Reset(strings.NewReader(in))
		out.Reset()
		if _, err := e.ReadLine(); err != nil {
			b.Fatal(err)
		}
	}
}
