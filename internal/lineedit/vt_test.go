package lineedit

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// vt is a minimal terminal emulator used to check what the editor's output
// looks like on screen. It understands exactly the sequences a terminal
// would interpret from the editor: CR, LF, BEL, printable runes (with
// auto-wrap at the right margin), ESC[K, ESC[nC, ESC[nD, ESC[H, ESC[2J.
type vt struct {
	w       int
	rows    [][]rune
	r, c    int
	wrapped bool // a printable rune was written past the right margin
	lastCol int  // cursor column just before the last CR
	unknown []string
}

func newVT(w int) *vt { return &vt{w: w, rows: [][]rune{nil}} }

func (v *vt) row() []rune {
	for len(v.rows) <= v.r {
		v.rows = append(v.rows, nil)
	}
	for len(v.rows[v.r]) < v.w {
		v.rows[v.r] = append(v.rows[v.r], ' ')
	}
	return v.rows[v.r]
}

func (v *vt) Write(p []byte) (int, error) {
	s := string(p)
	for i := 0; i < len(s); {
		ch := s[i]
		switch {
		case ch == '\r':
			v.lastCol = v.c
			v.c = 0
			i++
		case ch == '\n':
			v.r++
			v.row()
			i++
		case ch == '\a':
			i++
		case ch == 0x1b && i+1 < len(s) && s[i+1] == '[':
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			if j >= len(s) {
				v.unknown = append(v.unknown, s[i:])
				return len(p), nil
			}
			param, final := s[i+2:j], s[j]
			n, err := strconv.Atoi(param)
			if err != nil {
				n = 1
			}
			switch {
			case final == 'K' && param == "":
				row := v.row()
				for k := v.c; k < v.w; k++ {
					row[k] = ' '
				}
			case final == 'C':
				v.c = min(v.w-1, v.c+n)
			case final == 'D':
				v.c = max(0, v.c-n)
			case final == 'H' && param == "":
				v.r, v.c = 0, 0
			case final == 'J' && param == "2":
				v.rows = [][]rune{nil}
			default:
				v.unknown = append(v.unknown, s[i:j+1])
			}
			i = j + 1
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			i += size
			if v.c >= v.w {
				v.wrapped = true
				v.c = 0
				v.r++
			}
			v.row()[v.c] = r
			v.c++
		}
	}
	return len(p), nil
}

// screen returns the rows with trailing blanks removed and trailing empty
// rows dropped.
func (v *vt) screen() []string {
	var out []string
	for _, r := range v.rows {
		out = append(out, strings.TrimRight(string(r), " "))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}
