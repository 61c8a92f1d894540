package fib

import (
	"flag"
	"os"
	"testing"
)

// TestMain keeps TestKernelRSSChild, the entry point of the child process
// TestKernelFullTable starts, out of ordinary runs (where it would have
// nothing to do), instead of letting it report itself as skipped.
func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv("VRFIB_RSS_CHILD") == "" {
		skip := "^TestKernelRSSChild$"
		if f := flag.Lookup("test.skip"); f != nil {
			if cur := f.Value.String(); cur != "" {
				skip = cur + "|" + skip
			}
			f.Value.Set(skip)
		}
	}
	os.Exit(m.Run())
}
