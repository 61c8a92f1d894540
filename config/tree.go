package config

import (
	"errors"
	"sort"

	"github.com/pelletier/go-toml/v2/unstable"
)

// This file turns the go-toml/v2 unstable AST into a small document tree that
// keeps the position of every key and value. The TOML semantic rules the
// low-level parser leaves out (duplicate keys, tables defined twice, extending
// inline tables, ...) are checked here.

type kind uint8

const (
	kString kind = iota + 1
	kInt
	kFloat
	kBool
	kDate
	kArray
	kTable
)

func (k kind) String() string {
	switch k {
	case kString:
		return "a string"
	case kInt:
		return "an integer"
	case kFloat:
		return "a float"
	case kBool:
		return "a boolean"
	case kDate:
		return "a date/time"
	case kArray:
		return "an array"
	case kTable:
		return "a table"
	}
	return "nothing"
}

// origin says how a table came into being; it decides whether a later header
// or dotted key may add to it.
type origin uint8

const (
	originImplicit origin = iota // created as the parent of a [a.b] header
	originHeader                 // [a] header
	originArray                  // one element of [[a]]
	originDotted                 // created by a dotted key a.b = 1
	originInline                 // inline table { ... } (closed)
	originRoot
)

type value struct {
	kind kind
	pos  Pos
	s    string   // string contents; raw text for other scalars
	arr  []*value // kArray
	tbl  *table   // kTable
	aot  bool     // kArray made of [[...]] headers
}

type entry struct {
	key    string
	keyPos Pos
	val    *value
}

type table struct {
	pos     Pos
	origin  origin
	entries []*entry
	byKey   map[string]*entry
}

func newTable(pos Pos, o origin) *table {
	return &table{pos: pos, origin: o, byKey: map[string]*entry{}}
}

func (t *table) get(key string) *entry {
	if t == nil {
		return nil
	}
	return t.byKey[key]
}

func (t *table) add(key string, keyPos Pos, v *value) *entry {
	e := &entry{key: key, keyPos: keyPos, val: v}
	t.entries = append(t.entries, e)
	t.byKey[key] = e
	return e
}

type treeBuilder struct {
	p     *unstable.Parser
	data  []byte
	lines []int // offsets of line starts
	root  *table
	cur   *table
	errs  *errList
}

type errList struct {
	file string
	list []Error
}

func (l *errList) add(p Pos, msg string) {
	l.list = append(l.list, Error{File: l.file, Line: p.Line, Col: p.Col, Msg: msg})
}

func (l *errList) sorted() Errors {
	out := make(Errors, len(l.list))
	copy(out, l.list)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Line != out[j].Line {
			return out[i].Line < out[j].Line
		}
		return out[i].Col < out[j].Col
	})
	return out
}

func (b *treeBuilder) posAt(off int) Pos {
	if off < 0 {
		return Pos{}
	}
	if off > len(b.data) {
		off = len(b.data)
	}
	i := sort.Search(len(b.lines), func(i int) bool { return b.lines[i] > off }) - 1
	if i < 0 {
		i = 0
	}
	return Pos{Line: i + 1, Col: off - b.lines[i] + 1}
}

// parseTree parses data into a document tree. A syntax error stops parsing and
// is returned as the only error; semantic TOML errors are added to errs and
// parsing goes on.
func parseTree(data []byte, errs *errList) (*table, bool) {
	b := &treeBuilder{p: &unstable.Parser{}, data: data, errs: errs}
	b.lines = append(b.lines, 0)
	for i, c := range data {
		if c == '\n' {
			b.lines = append(b.lines, i+1)
		}
	}
	b.root = newTable(Pos{}, originRoot)
	b.cur = b.root
	b.p.Reset(data)
	for b.p.NextExpression() {
		n := b.p.Expression()
		switch n.Kind {
		case unstable.KeyValue:
			b.keyValue(b.cur, n)
		case unstable.Table:
			b.cur = b.header(n, false)
		case unstable.ArrayTable:
			b.cur = b.header(n, true)
		}
	}
	if err := b.p.Error(); err != nil {
		var perr *unstable.ParserError
		pos := Pos{}
		msg := err.Error()
		if errors.As(err, &perr) {
			off := cap(data) - cap(perr.Highlight)
			if perr.Highlight != nil && off >= 0 && off+len(perr.Highlight) <= len(data) {
				pos = b.posAt(off)
			} else {
				pos = b.posAt(len(data))
			}
			msg = perr.Message
		}
		errs.list = errs.list[:0]
		errs.add(pos, "TOML syntax error: "+msg)
		return nil, false
	}
	return b.root, true
}

type keyPart struct {
	name string
	pos  Pos
	off  int // offset of the raw key
	end  int // offset just past the raw key
}

func (b *treeBuilder) keys(n *unstable.Node) []keyPart {
	var parts []keyPart
	it := n.Key()
	for it.Next() {
		k := it.Node()
		off := int(k.Raw.Offset)
		parts = append(parts, keyPart{name: string(k.Data), pos: b.posAt(off), off: off, end: off + int(k.Raw.Length)})
	}
	return parts
}

func dotted(parts []keyPart, n int) string {
	s := ""
	for i := 0; i < n && i < len(parts); i++ {
		if i > 0 {
			s += "."
		}
		s += parts[i].name
	}
	return s
}

// header handles [a.b] and [[a.b]] and returns the table that following keys
// go into.
func (b *treeBuilder) header(n *unstable.Node, array bool) *table {
	parts := b.keys(n)
	if len(parts) == 0 {
		return newTable(Pos{}, originHeader)
	}
	// position of the opening bracket(s)
	off := parts[0].off
	for off > 0 && (b.data[off-1] == ' ' || b.data[off-1] == '\t') {
		off--
	}
	for i := 0; i < 2 && off > 0 && b.data[off-1] == '['; i++ {
		off--
		if !array {
			break
		}
	}
	hpos := b.posAt(off)
	detached := newTable(hpos, originHeader)

	t := b.root
	for i, k := range parts[:len(parts)-1] {
		e := t.get(k.name)
		if e == nil {
			nt := newTable(k.pos, originImplicit)
			t.add(k.name, k.pos, &value{kind: kTable, pos: k.pos, tbl: nt})
			t = nt
			continue
		}
		v := e.val
		switch {
		case v.kind == kTable && v.tbl.origin != originInline:
			t = v.tbl
		case v.kind == kArray && v.aot && len(v.arr) > 0:
			t = v.arr[len(v.arr)-1].tbl
		default:
			b.errs.add(k.pos, "cannot define table "+bracket(dotted(parts, len(parts)), array)+": key \""+dotted(parts, i+1)+"\" is already "+v.kind.String()+" (line "+itoa(e.keyPos.Line)+")")
			return detached
		}
	}
	last := parts[len(parts)-1]
	name := dotted(parts, len(parts))
	e := t.get(last.name)
	if array {
		nt := newTable(hpos, originArray)
		if e == nil {
			t.add(last.name, last.pos, &value{kind: kArray, pos: hpos, aot: true, arr: []*value{{kind: kTable, pos: hpos, tbl: nt}}})
			return nt
		}
		if e.val.kind == kArray && e.val.aot {
			e.val.arr = append(e.val.arr, &value{kind: kTable, pos: hpos, tbl: nt})
			return nt
		}
		b.errs.add(hpos, "cannot define array of tables [["+name+"]]: key \""+name+"\" is already "+e.val.kind.String()+" (line "+itoa(e.keyPos.Line)+")")
		return detached
	}
	if e == nil {
		nt := newTable(hpos, originHeader)
		t.add(last.name, last.pos, &value{kind: kTable, pos: hpos, tbl: nt})
		return nt
	}
	if e.val.kind == kTable && e.val.tbl.origin == originImplicit {
		e.val.tbl.origin = originHeader
		e.val.tbl.pos = hpos
		e.val.pos = hpos
		e.keyPos = last.pos
		return e.val.tbl
	}
	if e.val.kind == kTable && e.val.tbl.origin == originHeader {
		b.errs.add(hpos, "table ["+name+"] defined twice (first at line "+itoa(e.val.pos.Line)+")")
	} else {
		b.errs.add(hpos, "cannot define table ["+name+"]: key \""+name+"\" is already "+e.val.kind.String()+" (line "+itoa(e.keyPos.Line)+")")
	}
	return detached
}

func bracket(name string, array bool) string {
	if array {
		return "[[" + name + "]]"
	}
	return "[" + name + "]"
}

// keyValue adds a (possibly dotted) key = value to t.
func (b *treeBuilder) keyValue(t *table, n *unstable.Node) {
	parts := b.keys(n)
	if len(parts) == 0 {
		return
	}
	// start of the value: after the last key, blanks, '=', blanks
	off := parts[len(parts)-1].end
	for off < len(b.data) && (b.data[off] == ' ' || b.data[off] == '\t' || b.data[off] == '=') {
		off++
	}
	v := b.value(n.Value(), b.posAt(off))
	for i, k := range parts[:len(parts)-1] {
		e := t.get(k.name)
		if e == nil {
			nt := newTable(k.pos, originDotted)
			t.add(k.name, k.pos, &value{kind: kTable, pos: k.pos, tbl: nt})
			t = nt
			continue
		}
		if e.val.kind == kTable && e.val.tbl.origin == originDotted {
			t = e.val.tbl
			continue
		}
		b.errs.add(k.pos, "cannot set key \""+dotted(parts, len(parts))+"\": key \""+dotted(parts, i+1)+"\" is already "+e.val.kind.String()+" (line "+itoa(e.keyPos.Line)+")")
		return
	}
	last := parts[len(parts)-1]
	if e := t.get(last.name); e != nil {
		b.errs.add(last.pos, "duplicate key \""+dotted(parts, len(parts))+"\" (first at line "+itoa(e.keyPos.Line)+")")
		return
	}
	t.add(last.name, last.pos, v)
}

// value converts an AST value. fallback is used where the AST has no
// position (arrays).
func (b *treeBuilder) value(n *unstable.Node, fallback Pos) *value {
	pos := fallback
	if n.Raw.Length > 0 {
		pos = b.posAt(int(n.Raw.Offset))
	}
	switch n.Kind {
	case unstable.String:
		return &value{kind: kString, pos: pos, s: string(n.Data)}
	case unstable.Integer:
		return &value{kind: kInt, pos: pos, s: string(n.Data)}
	case unstable.Float:
		return &value{kind: kFloat, pos: pos, s: string(n.Data)}
	case unstable.Bool:
		return &value{kind: kBool, pos: pos, s: string(n.Data)}
	case unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		return &value{kind: kDate, pos: pos, s: string(n.Data)}
	case unstable.Array:
		v := &value{kind: kArray, pos: pos}
		it := n.Children()
		for it.Next() {
			c := it.Node()
			if c.Kind == unstable.Comment {
				continue
			}
			v.arr = append(v.arr, b.value(c, pos))
		}
		return v
	case unstable.InlineTable:
		t := newTable(pos, originInline)
		it := n.Children()
		for it.Next() {
			c := it.Node()
			if c.Kind == unstable.KeyValue {
				b.keyValue(t, c)
			}
		}
		return &value{kind: kTable, pos: pos, tbl: t}
	}
	return &value{pos: pos}
}
