package router

// The kernel's state of a port's device (linkstate.go), asked over
// rtnetlink (github.com/vishvananda/netlink, RTM_GETLINK by name as ip link
// does) rather than read from /sys/class/net: a netlink socket is in the
// namespace it was made in, while /sys shows the namespace of whoever
// mounted it, which is not the router's when it was put into its namespace
// by setns (nsenter) without a new mount.

import (
	"errors"
	"net"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"vrouter/router/port"
)

// linkTimeout bounds an answer: a show never hangs on it.
const linkTimeout = time.Second

// nsDevice is a port whose device may live in another namespace than the
// router's (tap.Port: the VM's).
type nsDevice interface {
	DeviceNetNS() (nsfd int, name string, err error)
}

// osLinks is the lookup of one Ports call: one rtnetlink handle in the
// router's namespace, opened on first use, and one for each TAP whose
// device is elsewhere.
type osLinks struct {
	own    *netlink.Handle
	ownErr error
}

func osLinkLookup() linkLookup { return &osLinks{} }

func (o *osLinks) close() {
	if o.own != nil {
		o.own.Close()
	}
}

func (o *osLinks) state(p port.Port) (string, bool) {
	if d, ok := p.(nsDevice); ok {
		nsfd, name, err := d.DeviceNetNS()
		if err == nil {
			defer unix.Close(nsfd)
			if cur, err := netns.Get(); err == nil {
				same := netns.NsHandle(nsfd).Equal(cur)
				cur.Close()
				if !same {
					h, err := netlink.NewHandleAt(netns.NsHandle(nsfd), unix.NETLINK_ROUTE)
					if err != nil {
						return PortStateUnknown, true
					}
					defer h.Close()
					if h.SetSocketTimeout(linkTimeout) != nil {
						return PortStateUnknown, true
					}
					return handleState(h, name)
				}
			}
			return o.ownState(name)
		}
		// A kernel before 5.2 (no TUNGETDEVNETNS): where the router is.
	}
	return o.ownState(p.Device())
}

func (o *osLinks) ownState(name string) (string, bool) {
	if o.own == nil && o.ownErr == nil {
		o.own, o.ownErr = netlink.NewHandle(unix.NETLINK_ROUTE)
		if o.ownErr == nil {
			o.ownErr = o.own.SetSocketTimeout(linkTimeout)
		}
	}
	if o.ownErr != nil {
		return PortStateUnknown, true
	}
	return handleState(o.own, name)
}

// handleState is the state of device name in h's namespace, false when
// there is none.
func handleState(h *netlink.Handle, name string) (string, bool) {
	l, err := h.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound) || errors.Is(err, unix.ENODEV):
		return "", false
	case err != nil:
		return PortStateUnknown, true
	}
	a := l.Attrs()
	var flags uint32
	if a.Flags&net.FlagUp != 0 {
		flags |= iffUp
	}
	return linkStateName(uint8(a.OperState), flags), true
}
