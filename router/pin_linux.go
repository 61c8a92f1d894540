package router

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// pinToCPU locks the calling goroutine to its OS thread and that thread
// to the n-th CPU the process may use (round robin). It reports the CPU,
// or -1 when the affinity could not be set (the worker then runs unpinned).
func pinToCPU(n int) int {
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil || allowed.Count() == 0 {
		return -1
	}
	var cpus []int
	for c := 0; c < len(allowed)*64; c++ {
		if allowed.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	cpu := cpus[n%len(cpus)]
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return -1
	}
	return cpu
}
