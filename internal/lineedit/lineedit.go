// Package lineedit is a small line editor for the interactive console:
// emacs-style editing keys, history kept in a file, Tab completion and
// '?' help, in the spirit of birdc and vppctl.
//
// When the input is a terminal the editor switches it to raw mode while a
// line is being read (and only then), interprets the keys itself and
// redraws the line on a single terminal row (scrolling it horizontally when
// it is wider than the terminal). When the input is not a terminal (a pipe
// or a file) it reads plain lines without prompts or echo so that scripts
// can feed commands.
//
// Keys: printable text is inserted at the cursor; Left/Right (Ctrl-B/F),
// Home/End (Ctrl-A/E), Ctrl-Left/Right and Alt-B/F move; Backspace, Delete
// (and Ctrl-D on a non-empty line) delete; Ctrl-K/Ctrl-U kill to the end or
// the start, Ctrl-W (Alt-Backspace) and Alt-D kill a word, Ctrl-Y yanks, Ctrl-T
// transposes, Ctrl-L clears the screen; Up/Down (Ctrl-P/N) walk the history;
// Tab completes, '?' at the end of the line shows help; Enter accepts,
// Ctrl-C discards the line (ErrInterrupt), Ctrl-D on an empty line ends
// (io.EOF).
//
// Typical use:
//
//	ed, err := lineedit.New(os.Stdin, os.Stdout, lineedit.Config{Prompt: "edge1> ", ...})
//	if err != nil { ... }
//	defer ed.Close()
//	for {
//		line, err := ed.ReadLine()
//		if errors.Is(err, lineedit.ErrInterrupt) {
//			continue
//		}
//		if err != nil { // io.EOF or a terminal error
//			break
//		}
//		... run line; plain "\n" output is fine here (the terminal is cooked) ...
//	}
//
// An Editor is not safe for concurrent use.
//
// Why not a library (checked for golang.org/x/term v0.47.0 and
// github.com/chzyer/readline v1.5.1; the tests here, including the pty and
// tmux ones, pin the behaviour the console relies on):
//   - x/term's Terminal, already a dependency, returns io.EOF for Ctrl-C
//     exactly as for Ctrl-D on an empty line, so the console could not tell
//     "cancel this line" from "leave". It has no yank (Ctrl-Y), ignores
//     Alt-B/F/D and Ctrl-Left/Right, wraps a long line over several rows
//     instead of scrolling it, keeps history in memory only, and its only
//     hook is a per-key callback: '?' help and the list on a second Tab
//     would be written by us anyway, printed above the prompt by
//     Terminal.Write instead of below the line.
//   - chzyer/readline (no release since v1.5.1 of 2022) shows the candidates
//     on the first Tab and then enters a select mode in which further Tabs
//     cycle through them, where ours rings the bell, lists on the second Tab
//     and never replaces the word; '?' could only be caught with its input
//     rune filter, which runs on its own reading goroutine, and its Ctrl-C
//     leaves that completion mode instead of discarding the line.
package lineedit

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/term"
)

// ErrInterrupt is returned by ReadLine when the user presses Ctrl-C. The
// line being edited is discarded.
var ErrInterrupt = errors.New("interrupted")

// Completer returns the full candidate words for the last word of line,
// where line is the text before the cursor. Candidates that do not start
// with that last word are ignored.
type Completer func(line string) (candidates []string)

// Helper returns a text describing what can follow line (shown on '?').
type Helper func(line string) string

// Config configures an Editor.
type Config struct {
	Prompt      string
	HistoryFile string // loaded at start, appended on each accepted line; "" = no file
	Complete    Completer
	Help        Helper
}

// maxHistory is the number of history entries kept in memory and in the
// history file.
const maxHistory = 1000

// Editor reads lines from a terminal (with editing) or from a pipe.
type Editor struct {
	cfg Config
	r   *bufio.Reader
	w   io.Writer

	tty     bool
	fd      int
	orig    *term.State
	rawMode func() (restore func(), err error) // nil: no mode switching (tests)
	width   func() int                         // terminal columns

	hist      []string
	fileLines int // lines in the history file (approximate upper bound)

	// state of the line being edited
	buf     []rune
	pos     int
	off     int // first visible rune when the line is scrolled
	hidx    int // history index while walking; len(hist) = the unfinished line
	saved   []rune
	tabs    int // consecutive Tab presses
	kill    []rune
	skipLF  bool // the previous line ended with '\r'; swallow a following '\n'
	promptW int
	pending bytes.Buffer
}

// New returns an editor reading from in and writing prompts and echo to out.
// If in is not a terminal the editor works in plain line mode: no prompt,
// no echo handling, no raw mode and no history recording.
func New(in *os.File, out io.Writer, cfg Config) (*Editor, error) {
	var r io.Reader
	if in != nil {
		r = in
	}
	e := newEditor(r, out, cfg)
	if in != nil {
		fd := int(in.Fd())
		if term.IsTerminal(fd) {
			st, err := term.GetState(fd)
			if err != nil {
				return nil, err
			}
			e.tty, e.fd, e.orig = true, fd, st
			e.rawMode = func() (func(), error) {
				old, err := term.MakeRaw(fd)
				if err != nil {
					return nil, err
				}
				return func() { _ = term.Restore(fd, old) }, nil
			}
			e.width = func() int {
				w, _, err := term.GetSize(fd)
				if err != nil || w <= 0 {
					return 80
				}
				return w
			}
		}
	}
	if err := e.loadHistory(); err != nil {
		return nil, err
	}
	return e, nil
}

func newEditor(in io.Reader, out io.Writer, cfg Config) *Editor {
	if in == nil {
		in = strings.NewReader("")
	}
	return &Editor{
		cfg:   cfg,
		r:     bufio.NewReader(in),
		w:     out,
		width: func() int { return 80 },
	}
}

// Close restores the terminal to the state it had when New was called.
// It does not close the input or output.
func (e *Editor) Close() error {
	if e.tty && e.orig != nil {
		return term.Restore(e.fd, e.orig)
	}
	return nil
}

// ReadLine reads one line and returns it without the line terminator.
// It returns io.EOF on Ctrl-D on an empty line or at the end of the input,
// and ErrInterrupt on Ctrl-C.
func (e *Editor) ReadLine() (string, error) {
	if !e.tty {
		return e.readPlain()
	}
	if e.rawMode != nil {
		restore, err := e.rawMode()
		if err != nil {
			return "", err
		}
		defer restore()
	}
	return e.edit()
}

func (e *Editor) readPlain() (string, error) {
	s, err := e.r.ReadString('\n')
	if err != nil {
		if err == io.EOF && s != "" {
			return strings.TrimSuffix(s, "\r"), nil
		}
		return "", err
	}
	s = strings.TrimSuffix(s, "\n")
	return strings.TrimSuffix(s, "\r"), nil
}

// keys produced by readKey
type key int

const (
	kNone key = iota
	kRune
	kEnter
	kInterrupt
	kEOF // Ctrl-D
	kLeft
	kRight
	kWordLeft
	kWordRight
	kHome
	kEnd
	kUp
	kDown
	kBackspace
	kDelete
	kKillEnd
	kKillStart
	kKillWordBack
	kKillWordFwd
	kYank
	kTranspose
	kClear
	kTab
)

func (e *Editor) readKey() (key, rune, error) {
	r, _, err := e.r.ReadRune()
	if err != nil {
		return kNone, 0, err
	}
	if e.skipLF {
		e.skipLF = false
		if r == '\n' {
			return kNone, 0, nil
		}
	}
	switch r {
	case '\r':
		e.skipLF = true
		return kEnter, 0, nil
	case '\n':
		return kEnter, 0, nil
	case 1:
		return kHome, 0, nil
	case 2:
		return kLeft, 0, nil
	case 3:
		return kInterrupt, 0, nil
	case 4:
		return kEOF, 0, nil
	case 5:
		return kEnd, 0, nil
	case 6:
		return kRight, 0, nil
	case 8, 127:
		return kBackspace, 0, nil
	case '\t':
		return kTab, 0, nil
	case 11:
		return kKillEnd, 0, nil
	case 12:
		return kClear, 0, nil
	case 14:
		return kDown, 0, nil
	case 16:
		return kUp, 0, nil
	case 20:
		return kTranspose, 0, nil
	case 21:
		return kKillStart, 0, nil
	case 23:
		return kKillWordBack, 0, nil
	case 25:
		return kYank, 0, nil
	case 27:
		return e.readEscape()
	}
	if r == utf8.RuneError || !unicode.IsPrint(r) {
		return kNone, 0, nil
	}
	return kRune, r, nil
}

// readEscape decodes the rest of an escape sequence (ESC already read).
func (e *Editor) readEscape() (key, rune, error) {
	r, _, err := e.r.ReadRune()
	if err != nil {
		return kNone, 0, err
	}
	switch r {
	case '[':
		return e.readCSI()
	case 'O': // SS3
		r, _, err := e.r.ReadRune()
		if err != nil {
			return kNone, 0, err
		}
		return finalKey(r, ""), 0, nil
	case 'b', 'B':
		return kWordLeft, 0, nil
	case 'f', 'F':
		return kWordRight, 0, nil
	case 'd', 'D':
		return kKillWordFwd, 0, nil
	case 127, 8:
		return kKillWordBack, 0, nil
	}
	return kNone, 0, nil
}

func (e *Editor) readCSI() (key, rune, error) {
	var params []byte
	for i := 0; ; i++ {
		c, err := e.r.ReadByte()
		if err != nil {
			return kNone, 0, err
		}
		if c >= 0x40 && c <= 0x7e {
			return finalKey(rune(c), string(params)), 0, nil
		}
		if c < 0x20 || c > 0x3f || i > 16 {
			// not a valid CSI sequence; drop it
			return kNone, 0, nil
		}
		params = append(params, c)
	}
}

// finalKey maps the final byte and parameters of a CSI/SS3 sequence to a key.
func finalKey(final rune, params string) key {
	first, mod, _ := strings.Cut(params, ";")
	word := mod == "3" || mod == "5" // Alt or Ctrl modifier
	switch final {
	case 'A':
		return kUp
	case 'B':
		return kDown
	case 'C':
		if word {
			return kWordRight
		}
		return kRight
	case 'D':
		if word {
			return kWordLeft
		}
		return kLeft
	case 'H':
		return kHome
	case 'F':
		return kEnd
	case '~':
		n, _ := strconv.Atoi(first)
		switch n {
		case 1, 7:
			return kHome
		case 4, 8:
			return kEnd
		case 3:
			return kDelete
		}
	}
	return kNone
}

// edit runs the editor on one line (terminal mode).
func (e *Editor) edit() (string, error) {
	e.buf = e.buf[:0]
	e.pos, e.off, e.tabs = 0, 0, 0
	e.hidx = len(e.hist)
	e.saved = nil
	e.promptW = displayWidth(e.cfg.Prompt)
	e.refresh()
	if err := e.flush(); err != nil {
		return "", err
	}
	dirty := false
	for {
		k, r, err := e.readKey()
		if err != nil {
			if dirty {
				e.refresh()
			}
			e.pending.WriteString("\r\n")
			_ = e.flush()
			return "", err
		}
		if k == kTab {
			e.tabs++
		} else if k != kNone {
			e.tabs = 0
		}
		switch k {
		case kEnter:
			line := string(e.buf)
			e.pos = len(e.buf)
			e.refresh()
			e.pending.WriteString("\r\n")
			e.addHistory(line)
			return line, e.flush()
		case kInterrupt:
			e.pos = len(e.buf)
			e.refresh()
			e.pending.WriteString("^C\r\n")
			if err := e.flush(); err != nil {
				return "", err
			}
			return "", ErrInterrupt
		case kEOF:
			if len(e.buf) == 0 {
				e.refresh()
				e.pending.WriteString("\r\n")
				if err := e.flush(); err != nil {
					return "", err
				}
				return "", io.EOF
			}
			e.deleteAt(e.pos)
		case kRune:
			if r == '?' && e.pos == len(e.buf) && e.cfg.Help != nil {
				e.help()
			} else {
				e.insert([]rune{r})
			}
		case kLeft:
			if e.pos > 0 {
				e.pos--
			}
		case kRight:
			if e.pos < len(e.buf) {
				e.pos++
			}
		case kWordLeft:
			e.pos = e.wordStart(e.pos)
		case kWordRight:
			e.pos = e.wordEnd(e.pos)
		case kHome:
			e.pos = 0
		case kEnd:
			e.pos = len(e.buf)
		case kBackspace:
			if e.pos > 0 {
				e.pos--
				e.deleteAt(e.pos)
			}
		case kDelete:
			e.deleteAt(e.pos)
		case kKillEnd:
			e.cut(e.pos, len(e.buf))
		case kKillStart:
			e.cut(0, e.pos)
		case kKillWordBack:
			e.cut(e.wordStart(e.pos), e.pos)
		case kKillWordFwd:
			e.cut(e.pos, e.wordEnd(e.pos))
		case kYank:
			e.insert(e.kill)
		case kTranspose:
			e.transpose()
		case kClear:
			e.pending.WriteString("\x1b[H\x1b[2J")
		case kUp:
			e.historyMove(-1)
		case kDown:
			e.historyMove(+1)
		case kTab:
			e.complete()
		}
		// Redraw once the keys that arrived together (a paste, or a
		// sequence sent by a program) are all handled.
		if k != kNone {
			dirty = true
		}
		if dirty && e.r.Buffered() == 0 {
			e.refresh()
			dirty = false
		}
		if err := e.flush(); err != nil {
			return "", err
		}
	}
}

// maxLine is the longest line, in runes, the editor accepts in terminal
// mode; further input is refused with a bell.
const maxLine = 4096

func (e *Editor) insert(rs []rune) {
	if room := maxLine - len(e.buf); len(rs) > room {
		rs = rs[:max(0, room)]
		e.pending.WriteString("\a")
	}
	if len(rs) == 0 {
		return
	}
	e.buf = append(e.buf[:e.pos], append(append([]rune(nil), rs...), e.buf[e.pos:]...)...)
	e.pos += len(rs)
}

func (e *Editor) deleteAt(i int) {
	if i < 0 || i >= len(e.buf) {
		return
	}
	e.buf = append(e.buf[:i], e.buf[i+1:]...)
}

// cut removes buf[from:to], keeps it for Ctrl-Y and leaves the cursor at from.
func (e *Editor) cut(from, to int) {
	if from >= to {
		return
	}
	e.kill = append(e.kill[:0], e.buf[from:to]...)
	e.buf = append(e.buf[:from], e.buf[to:]...)
	e.pos = from
}

func (e *Editor) transpose() {
	if len(e.buf) < 2 || e.pos == 0 {
		return
	}
	i := e.pos
	if i == len(e.buf) {
		i--
	}
	e.buf[i-1], e.buf[i] = e.buf[i], e.buf[i-1]
	e.pos = i + 1
}

// wordStart is the start of the word before p (skipping spaces first).
func (e *Editor) wordStart(p int) int {
	for p > 0 && unicode.IsSpace(e.buf[p-1]) {
		p--
	}
	for p > 0 && !unicode.IsSpace(e.buf[p-1]) {
		p--
	}
	return p
}

// wordEnd is the end of the word at or after p.
func (e *Editor) wordEnd(p int) int {
	for p < len(e.buf) && unicode.IsSpace(e.buf[p]) {
		p++
	}
	for p < len(e.buf) && !unicode.IsSpace(e.buf[p]) {
		p++
	}
	return p
}

func (e *Editor) historyMove(d int) {
	n := e.hidx + d
	if n < 0 || n > len(e.hist) {
		return
	}
	if e.hidx == len(e.hist) {
		e.saved = append(e.saved[:0], e.buf...)
	}
	e.hidx = n
	if n == len(e.hist) {
		e.buf = append(e.buf[:0], e.saved...)
	} else {
		e.buf = append(e.buf[:0], []rune(e.hist[n])...)
	}
	e.pos = len(e.buf)
}

// help shows Help(line) below the line and then redraws the line.
func (e *Editor) help() {
	text := e.cfg.Help(string(e.buf))
	e.pos = len(e.buf)
	e.refresh()
	e.pending.WriteString("?")
	e.printBelow(text)
}

// printBelow writes text on the lines below the current one; the caller
// redraws the prompt and line afterwards.
func (e *Editor) printBelow(text string) {
	e.pending.WriteString("\r\n")
	text = strings.TrimRight(text, "\n")
	if text != "" {
		e.pending.WriteString(strings.ReplaceAll(text, "\n", "\r\n"))
		e.pending.WriteString("\r\n")
	}
}

func (e *Editor) complete() {
	if e.cfg.Complete == nil {
		e.pending.WriteString("\a")
		return
	}
	start := e.pos
	for start > 0 && !unicode.IsSpace(e.buf[start-1]) {
		start--
	}
	word := string(e.buf[start:e.pos])
	cands := filterCandidates(e.cfg.Complete(string(e.buf[:e.pos])), word)
	switch len(cands) {
	case 0:
		e.pending.WriteString("\a")
	case 1:
		e.insert([]rune(cands[0][len(word):]))
		if e.pos < len(e.buf) && e.buf[e.pos] == ' ' {
			e.pos++
		} else {
			e.insert([]rune{' '})
		}
	default:
		lcp := commonPrefix(cands)
		if len(lcp) > len(word) {
			e.insert([]rune(lcp[len(word):]))
			return
		}
		if e.tabs < 2 {
			e.pending.WriteString("\a")
			return
		}
		e.refresh()
		e.printBelow(columns(cands, e.width()))
	}
}

// filterCandidates keeps the candidates starting with word, sorted and
// without duplicates.
func filterCandidates(cands []string, word string) []string {
	out := make([]string, 0, len(cands))
	for _, c := range cands {
		if strings.HasPrefix(c, word) && utf8.ValidString(c) {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	n := 0
	for i, c := range out {
		if i == 0 || c != out[n-1] {
			out[n] = c
			n++
		}
	}
	return out[:n]
}

// commonPrefix is the longest common prefix of ss (on rune boundaries).
func commonPrefix(ss []string) string {
	p := ss[0]
	for _, s := range ss[1:] {
		i := 0
		for i < len(p) && i < len(s) && p[i] == s[i] {
			i++
		}
		p = p[:i]
	}
	for !utf8.ValidString(p) {
		p = p[:len(p)-1]
	}
	return p
}

// columns lays items out in columns (column-major, like ls) for a
// terminal of the given width.
func columns(items []string, width int) string {
	maxw := 0
	for _, s := range items {
		maxw = max(maxw, utf8.RuneCountInString(s))
	}
	colw := maxw + 2
	ncol := max(1, (width-1+2)/colw) // the last column needs no gap
	nrow := (len(items) + ncol - 1) / ncol
	var b strings.Builder
	for r := 0; r < nrow; r++ {
		var row strings.Builder
		for c := 0; c < ncol; c++ {
			i := c*nrow + r
			if i >= len(items) {
				break
			}
			row.WriteString(items[i])
			row.WriteString(strings.Repeat(" ", colw-utf8.RuneCountInString(items[i])))
		}
		b.WriteString(strings.TrimRight(row.String(), " "))
		b.WriteByte('\n')
	}
	return b.String()
}

// refresh redraws prompt and line on the current terminal row, scrolling
// the line horizontally if it does not fit.
func (e *Editor) refresh() {
	avail := e.width() - e.promptW - 1
	if avail < 1 {
		avail = 1
	}
	if e.pos < e.off {
		e.off = e.pos
	}
	if e.pos-e.off > avail {
		e.off = e.pos - avail
	}
	if len(e.buf)-e.off < avail { // show as much as fits after deletions
		e.off = max(0, min(e.pos, len(e.buf)-avail))
	}
	end := min(len(e.buf), e.off+avail)
	b := &e.pending
	b.WriteByte('\r')
	b.WriteString(e.cfg.Prompt)
	b.WriteString(string(e.buf[e.off:end]))
	b.WriteString("\x1b[K\r")
	if col := e.promptW + e.pos - e.off; col > 0 {
		b.WriteString("\x1b[")
		b.WriteString(strconv.Itoa(col))
		b.WriteByte('C')
	}
}

func (e *Editor) flush() error {
	if e.pending.Len() == 0 {
		return nil
	}
	_, err := e.w.Write(e.pending.Bytes())
	e.pending.Reset()
	return err
}

// displayWidth counts the columns of s, ignoring CSI escape sequences
// (so that a coloured prompt is measured correctly).
func displayWidth(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			i += 2
			for i < len(s) && (s[i] < 0x40 || s[i] > 0x7e) {
				i++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if unicode.IsPrint(r) {
			n++
		}
	}
	return n
}
