//go:build !linux

package benchtest

// ThreadCPU is 0 where the thread CPU clock is not read.
func ThreadCPU() int64 { return 0 }
