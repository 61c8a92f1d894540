package ha

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// UDPConn is the sync's socket: bound to [ha] local:port, sending to
// peer:port, accepting datagrams from the peer's address only. It is an
// ordinary socket of the router's namespace: the kernel holds local on the
// host interface of its network, so the datagrams travel through the
// router's own data path like any other packet of the host interface.
type UDPConn struct {
	c    *net.UDPConn
	peer *net.UDPAddr
	pa   netip.Addr
}

// ListenUDP opens the sync socket. It binds with IP_FREEBIND (where the
// platform has it) so that it can start before the host interface holds
// the address.
func ListenUDP(local, peer netip.Addr, port int) (*UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = freebind(fd) })
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", netip.AddrPortFrom(local, uint16(port)).String())
	if err != nil {
		return nil, fmt.Errorf("ha: sync socket on %s:%d: %w", local, port, err)
	}
	uc := pc.(*net.UDPConn)
	// Room for a burst of a bulk resync (the kernel caps it at rmem_max).
	uc.SetReadBuffer(4 << 20)
	uc.SetWriteBuffer(4 << 20)
	return &UDPConn{c: uc, peer: net.UDPAddrFromAddrPort(netip.AddrPortFrom(peer, uint16(port))), pa: peer}, nil
}

// Send implements Conn.
func (u *UDPConn) Send(b []byte) error {
	_, err := u.c.WriteToUDP(b, u.peer)
	return err
}

// Recv implements Conn.
func (u *UDPConn) Recv(b []byte) (int, bool, error) {
	n, from, err := u.c.ReadFromUDPAddrPort(b)
	if err != nil {
		return 0, false, err
	}
	return n, from.Addr().Unmap() == u.pa, nil
}

// Close implements Conn.
func (u *UDPConn) Close() error { return u.c.Close() }
