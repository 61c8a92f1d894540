package router

import (
	"net"

	"golang.org/x/sys/unix"
)

// ifIndex asks the kernel for one device's index (SIOCGIFINDEX): the
// supervisor does this for every supervised port four times a second, and
// net.InterfaceByName dumps every interface of the namespace to find one
// (on a host with many interfaces, work and garbage in proportion; in the
// UDP soak it was the router's only steady allocation, about 230 KB/s).
func ifIndex(name string) (int, bool) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil { // no socket to ask with: not a sign that the device is gone
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return 0, false
		}
		return ifi.Index, true
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, false
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, false
	}
	return int(ifr.Uint32()), true
}
