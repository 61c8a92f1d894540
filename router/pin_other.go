//go:build !linux

package router

// pinToCPU is not available here: workers run unpinned.
func pinToCPU(int) int { return -1 }
