//go:build !linux

package router

import "vrouter/router/port"

// noLinks: the kernel's state of a device is not looked up here; a port on
// one is "unknown" (unless lost).
type noLinks struct{}

func osLinkLookup() linkLookup { return noLinks{} }

func (noLinks) state(port.Port) (string, bool) { return PortStateUnknown, true }
func (noLinks) close()                         {}
