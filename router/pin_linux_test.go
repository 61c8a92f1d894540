package router

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// pin_workers: a pinned worker's thread may run on exactly one CPU.
func TestPinToCPU(t *testing.T) {
	done := make(chan int)
	go func() {
		defer runtime.UnlockOSThread()
		cpu := pinToCPU(1)
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &set); err != nil || cpu < 0 || set.Count() != 1 || !set.IsSet(cpu) {
			t.Errorf("pinned to %d: affinity %v (err %v)", cpu, set, err)
		}
		done <- cpu
	}()
	<-done
}
