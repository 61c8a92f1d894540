//go:build !linux

package filter

func threadCPU() int64 { return 0 }
