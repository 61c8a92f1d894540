// Package prefixfile reads a gzipped list of prefixes, one per line, such
// as the full routing table of fib/testdata that the fib and fib6 tests
// and benchmarks load.
package prefixfile

import (
	"bufio"
	"compress/gzip"
	"net/netip"
	"os"
)

// Read returns the prefixes of the gzipped file path for which keep
// reports true, in file order.
func Read(path string, keep func(netip.Prefix) bool) ([]netip.Prefix, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	sc := bufio.NewScanner(z)
	for sc.Scan() {
		p, err := netip.ParsePrefix(sc.Text())
		if err != nil {
			return nil, err
		}
		if keep(p) {
			out = append(out, p)
		}
	}
	return out, sc.Err()
}
