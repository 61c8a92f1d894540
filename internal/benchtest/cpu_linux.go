package benchtest

import "golang.org/x/sys/unix"

// ThreadCPU returns the CPU time of the calling OS thread in nanoseconds.
func ThreadCPU() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}
