package lineedit

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// loadHistory reads the history file (a missing file is not an error) and
// keeps its last maxHistory lines. A file holding more lines than that is
// rewritten.
func (e *Editor) loadHistory() error {
	if e.cfg.HistoryFile == "" {
		return nil
	}
	f, err := os.Open(e.cfg.HistoryFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		n++
		if strings.TrimSpace(line) == "" {
			continue
		}
		if len(e.hist) > 0 && e.hist[len(e.hist)-1] == line {
			continue
		}
		e.hist = append(e.hist, line)
		if len(e.hist) >= 2*maxHistory {
			e.hist = append(e.hist[:0], e.hist[len(e.hist)-maxHistory:]...)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(e.hist) > maxHistory {
		e.hist = append(e.hist[:0], e.hist[len(e.hist)-maxHistory:]...)
	}
	e.fileLines = n
	if n > maxHistory {
		_ = e.rewriteHistory() // best effort; the in-memory history is already trimmed
	}
	return nil
}

// addHistory records an accepted line (terminal mode only). Empty lines
// and repeats of the newest entry are not recorded. File errors are
// ignored: history is a convenience and must not break the console.
func (e *Editor) addHistory(line string) {
	if strings.TrimSpace(line) == "" || strings.ContainsAny(line, "\r\n") {
		return
	}
	if len(e.hist) > 0 && e.hist[len(e.hist)-1] == line {
		return
	}
	e.hist = append(e.hist, line)
	if len(e.hist) > maxHistory {
		e.hist = append(e.hist[:0], e.hist[len(e.hist)-maxHistory:]...)
	}
	if e.cfg.HistoryFile == "" {
		return
	}
	if e.fileLines >= maxHistory {
		_ = e.rewriteHistory()
		return
	}
	if err := appendHistory(e.cfg.HistoryFile, line); err == nil {
		e.fileLines++
	}
}

func appendHistory(path, line string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// rewriteHistory replaces the history file with the in-memory history
// (at most maxHistory entries), atomically via a temporary file.
func (e *Editor) rewriteHistory() error {
	path := e.cfg.HistoryFile
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, h := range e.hist {
		b.WriteString(h)
		b.WriteByte('\n')
	}
	_, err = f.WriteString(b.String())
	if err == nil {
		err = f.Chmod(0o600)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	e.fileLines = len(e.hist)
	return nil
}
