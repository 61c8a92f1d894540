package router

// A port's state for show interfaces and the metrics, found when Ports is
// called (never on the packet path):
//
//   - "lost": the port's kernel device is gone, or was deleted and created
//     again and the supervisor has not yet reopened the port on it
//     (supervise.go);
//   - otherwise the kernel's operational state of the device, as `ip link`
//     shows it, lower-cased: up, down, lowerlayerdown, dormant, notpresent,
//     testing, unknown; "admin-down" when the device is not up
//     administratively (IFF_UP off), for which the kernel also says down;
//   - "up" for a port without a kernel device (the pipe driver).
//
// The device is looked up in the namespace it is in: the router's own for
// afpacket and afxdp, and for a TAP the one its kernel device was moved to
// (the VM's), which the TAP's descriptor tells. The router holds a TAP's
// descriptor, so the TAP has carrier from the start: while it is up the
// kernel calls it unknown (ip link: "state UNKNOWN"; up only after a
// carrier change, as for a persistent TAP that was up without a reader
// when the router attached), and admin-down when the VM side set it down
// (a TAP moved into another namespace comes there down). A TAP without a
// reader, which the router never leaves while the port is open, is up
// without carrier: "down".

import "vrouter/router/port"

// Port states (PortStats.State) beside the kernel's operational states.
const (
	PortStateUp        = "up"
	PortStateUnknown   = "unknown"
	PortStateLost      = "lost"
	PortStateAdminDown = "admin-down"
)

// operStates are the kernel's operational states (IF_OPER_*, RFC 2863) by
// value, named as ip link names them, lower-cased.
var operStates = [...]string{"unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up"}

// iffUp is IFF_UP, the administrative state of a device.
const iffUp = 0x1

// linkStateName is the state of a device whose IFLA_OPERSTATE is oper
// and whose flags are flags.
func linkStateName(oper uint8, flags uint32) string {
	if flags&iffUp == 0 {
		return PortStateAdminDown
	}
	if int(oper) < len(operStates) {
		return operStates[oper]
	}
	return PortStateUnknown
}

// Up is whether the port can carry frames as far as the kernel says: its
// state is up, or unknown (a device that does not report one).
func (p *PortStats) Up() bool { return p.State == PortStateUp || p.State == PortStateUnknown }

// kernelDriver: the driver's ports sit on a kernel device.
func kernelDriver(d string) bool { return d == "afpacket" || d == "afxdp" || d == "tap" }

// linkLookup finds the kernel's state of ports' devices for one Ports call.
type linkLookup interface {
	// state is the state of p's device (linkStateName), false when there
	// is no such device.
	state(p port.Port) (string, bool)
	close()
}

// newLinkLookup makes the lookup of one Ports call (a variable for tests).
var newLinkLookup = osLinkLookup

// linkState is port p's state (see above).
func (p *portState) linkState(look linkLookup) string {
	switch {
	case p.devLost.Load():
		return PortStateLost
	case !kernelDriver(p.p.Driver()):
		return PortStateUp
	}
	st, ok := look.state(p.p)
	if !ok {
		return PortStateLost // gone; the supervisor notices soon
	}
	return st
}
