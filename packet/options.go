package packet

// IPv4 option types (RFC 791) used by the router. The high bit of the type
// says the option is copied into every fragment.
const (
	OptEOL    = 0   // end of option list
	OptNOP    = 1   // no operation (padding)
	OptLSRR   = 131 // loose source route
	OptSSRR   = 137 // strict source route
	OptCopied = 0x80
)

// TCP option kinds (RFC 9293, 7323) the NAT reads.
const (
	TCPOptWindowScale = 3
)

// OptionIter walks a list of type-length-value options: IPv4 options
// (RFC 791 3.1) and TCP options (RFC 9293 3.1) share the encoding — a
// one-byte end of list (0) and no-operation (1), every other option a type
// byte and a length byte counting the whole option. The walk ends at the end
// of the list, at the end of the bytes, or at a malformed option (length
// below 2 or past the end; Malformed then returns it). It does not allocate.
type OptionIter struct {
	b   []byte
	bad []byte
}

// NewOptionIter walks the options in b.
func NewOptionIter(b []byte) OptionIter { return OptionIter{b: b} }

// OptionIter walks the options of p's header.
func (p IPv4) OptionIter() OptionIter { return OptionIter{b: p.Options()} }

// Next returns the next option, whole (its type is o[0]; a no-operation
// option is one byte, any other at least two: type, length, data), or false
// at the end of the walk. The end-of-list option is never returned.
func (it *OptionIter) Next() (o []byte, ok bool) {
	b := it.b
	if len(b) == 0 || b[0] == OptEOL {
		it.b = nil
		return nil, false
	}
	if b[0] == OptNOP {
		it.b = b[1:]
		return b[:1], true
	}
	if len(b) < 2 || int(b[1]) < 2 || int(b[1]) > len(b) {
		it.b, it.bad = nil, b
		return nil, false
	}
	l := int(b[1])
	it.b = b[l:]
	return b[:l:l], true
}

// Malformed returns, when the walk stopped at a malformed option, the bytes
// from that option to the end of the list (its type is the first); nil
// otherwise.
func (it *OptionIter) Malformed() []byte { return it.bad }
