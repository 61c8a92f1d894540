//go:build !linux

package router

import "net"

// ifIndex returns a device's interface index (see devindex_linux.go).
func ifIndex(name string) (int, bool) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, false
	}
	return ifi.Index, true
}
