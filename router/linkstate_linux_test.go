package router

import (
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"vrouter/internal/nstest"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
	"vrouter/router/port/tap"
)

// nlMsg is a netlink message of type typ and sequence seq around body.
func nlMsg(typ uint16, seq uint32, body []byte) []byte {
	ne := binary.NativeEndian
	b := ne.AppendUint32(nil, uint32(unix.SizeofNlMsghdr+len(body)))
	b = ne.AppendUint16(b, typ)
	b = ne.AppendUint16(b, 0)
	b = ne.AppendUint32(b, seq)
	b = ne.AppendUint32(b, 0)
	b = append(b, body...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// rtAttr is a route attribute.
func rtAttr(typ uint16, data []byte) []byte {
	ne := binary.NativeEndian
	b := ne.AppendUint16(nil, uint16(unix.SizeofRtAttr+len(data)))
	b = ne.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// newLink is the body of an RTM_NEWLINK with flags and attrs.
func newLink(flags uint32, attrs ...[]byte) []byte {
	ne := binary.NativeEndian
	b := make([]byte, 8, unix.SizeofIfInfomsg)
	b = ne.AppendUint32(b, flags)
	b = ne.AppendUint32(b, 0)
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

// The answers to RTM_GETLINK: the device's IFLA_OPERSTATE and flags, no
// device (ENODEV), another error, a message of another request, a broken
// one.
func TestParseLinkReply(t *testing.T) {
	ne := binary.NativeEndian
	errMsg := func(errno unix.Errno) []byte { return ne.AppendUint32(nil, uint32(-int32(errno))) }
	ifname := rtAttr(unix.IFLA_IFNAME, []byte("eth0\x00"))
	for _, c := range []struct {
		name             string
		b                []byte
		oper             uint8
		flags            uint32
		found, done, err bool
	}{
		{"up", nlMsg(unix.RTM_NEWLINK, 7, newLink(0x11043, ifname, rtAttr(unix.IFLA_MTU, []byte{0xdc, 5, 0, 0}), rtAttr(unix.IFLA_OPERSTATE, []byte{6}))),
			6, 0x11043, true, true, false},
		{"nested flag on the type", nlMsg(unix.RTM_NEWLINK, 7, newLink(0x1003, rtAttr(unix.IFLA_OPERSTATE|unix.NLA_F_NESTED, []byte{2}))),
			2, 0x1003, true, true, false},
		{"no operstate", nlMsg(unix.RTM_NEWLINK, 7, newLink(0x1003, ifname)), 0, 0x1003, true, true, false},
		{"no device", nlMsg(unix.NLMSG_ERROR, 7, errMsg(unix.ENODEV)), 0, 0, false, true, false},
		{"error", nlMsg(unix.NLMSG_ERROR, 7, errMsg(unix.EPERM)), 0, 0, false, true, true},
		{"another request's, then ours", append(nlMsg(unix.RTM_NEWLINK, 6, newLink(0x1002, rtAttr(unix.IFLA_OPERSTATE, []byte{2}))),
			nlMsg(unix.RTM_NEWLINK, 7, newLink(0x1003, rtAttr(unix.IFLA_OPERSTATE, []byte{6})))...), 6, 0x1003, true, true, false},
		{"only another request's", nlMsg(unix.RTM_NEWLINK, 6, newLink(0x1003)), 0, 0, false, false, false},
		{"length beyond the datagram", nlMsg(unix.RTM_NEWLINK, 7, newLink(0x1003))[:20], 0, 0, false, true, true},
		{"short ifinfomsg", nlMsg(unix.RTM_NEWLINK, 7, []byte{0, 0, 0, 0}), 0, 0, false, true, true},
		{"broken attribute", nlMsg(unix.RTM_NEWLINK, 7, append(newLink(0x1003), 0xff, 0, 16, 0)), 0, 0, false, true, true},
	} {
		oper, flags, found, done, err := parseLinkReply(c.b, 7)
		if oper != c.oper || flags != c.flags || found != c.found || done != c.done || (err != nil) != c.err {
			t.Errorf("%s: oper %d flags %#x found %v done %v err %v", c.name, oper, flags, found, done, err)
		}
	}
	// The request: header, ifinfomsg, IFLA_IFNAME, IFLA_EXT_MASK.
	req := linkRequest(nil, 9, "r-h1")
	if len(req) != 16+16+12+8 || ne.Uint32(req) != uint32(len(req)) || ne.Uint16(req[4:]) != unix.RTM_GETLINK || ne.Uint32(req[8:]) != 9 ||
		string(req[36:41]) != "r-h1\x00" || ne.Uint16(req[46:]) != unix.IFLA_EXT_MASK {
		t.Errorf("request % x", req)
	}
}

// The real lookup, in a namespace of the test's own: a veth with both ends
// down, one end up, both up, a device that is not there, and a TAP port
// (up with carrier from the start, which the kernel calls unknown) whose
// device is moved into another namespace (down there until set up) and
// renamed there.
func TestLinkLookup(t *testing.T) {
	nstest.NeedRoot(t)
	nsA, nsB := nstest.Name("lsa"), nstest.Name("lsb")
	a := nstest.NS(t, nsA)
	nstest.NS(t, nsB)
	va, vb, tp := nstest.Name("va"), nstest.Name("vb"), nstest.Name("tp")
	nstest.Sh(t, "ip", "-n", nsA, "link", "add", va, "type", "veth", "peer", "name", vb)
	nstest.In(t, a, func() {
		look := osLinkLookup()
		defer look.close()
		// The kernel updates the operational state shortly after a
		// change (linkwatch): the lookup is repeated for a while.
		want := func(p port.Port, st string, found bool) {
			t.Helper()
			deadline := time.Now().Add(3 * time.Second)
			for {
				got, ok := look.state(p)
				if got == st && ok == found {
					return
				}
				if time.Now().After(deadline) {
					t.Errorf("%s: %q %v, want %q %v", p.Device(), got, ok, st, found)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		want(onDevice(va), "admin-down", true)
		nstest.Sh(t, "ip", "-n", nsA, "link", "set", va, "up")
		want(onDevice(va), "lowerlayerdown", true) // its peer is down
		nstest.Sh(t, "ip", "-n", nsA, "link", "set", vb, "up")
		want(onDevice(va), "up", true)
		want(onDevice("nosuchdev0"), "", false)

		p, err := tap.Open("vm", tp, tap.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		want(p, "unknown", true) // up, carrier from the start: the kernel says UNKNOWN
		nstest.Sh(t, "ip", "-n", nsA, "link", "set", tp, "netns", nsB)
		want(p, "admin-down", true)
		nstest.Sh(t, "ip", "-n", nsB, "link", "set", tp, "name", "eth9", "up")
		want(p, "unknown", true)
		want(onDevice(tp), "", false) // no device of that name where the router is
	})
}

// onDevice is a port on kernel device d (a pipe underneath).
func onDevice(d string) port.Port { return namedDevPort{devPort{pipe.New("x", macA, 1500)}, d} }

type namedDevPort struct {
	devPort
	dev string
}

func (p namedDevPort) Device() string { return p.dev }
