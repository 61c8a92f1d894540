package ha

import (
	"net"
	"sync"
	"time"
)

// SinkConn is a peer that costs the sender nothing but what a real one
// costs it (benchmarks of the master's forwarding): every datagram is sent
// with a real UDP sendto to a socket on the loopback that nobody reads (the
// kernel drops what overflows it), and each data datagram is acknowledged
// at once as a perfect peer would, with a hello every Hello interval so
// that the sender takes the peer as up. The peer's receiving work (parsing,
// installing) is not done at all: on a real pair it runs on the other
// machine.
type SinkConn struct {
	out    *net.UDPConn
	sink   *net.UDPConn
	to     *net.UDPAddr
	netSig uint32
	in     chan [HeaderLen]byte
	closed chan struct{}
	once   sync.Once
	hello  *time.Ticker
	id     uint32
}

// NewSinkConn opens the two loopback sockets; netSig must be the sender's.
func NewSinkConn(netSig uint32) (*SinkConn, error) {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	out, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		sink.Close()
		return nil, err
	}
	return &SinkConn{out: out, sink: sink, to: sink.LocalAddr().(*net.UDPAddr), netSig: netSig,
		in: make(chan [HeaderLen]byte, 4096), closed: make(chan struct{}), hello: time.NewTicker(50 * time.Millisecond), id: 0x5eed}, nil
}

// Send implements Conn: the datagram goes to the unread socket, and a data
// datagram is acknowledged.
func (c *SinkConn) Send(b []byte) error {
	if _, err := c.out.WriteToUDP(b, c.to); err != nil {
		return err
	}
	if len(b) < HeaderLen || b[3] != msgData {
		return nil
	}
	be := b[4:8]
	h := header{typ: msgAck, id: c.id, netSig: c.netSig, seq: 1, base: 1, flags: flagAck,
		ack:     uint32(b[12])<<24 | uint32(b[13])<<16 | uint32(b[14])<<8 | uint32(b[15]) + 1,
		ackedID: uint32(be[0])<<24 | uint32(be[1])<<16 | uint32(be[2])<<8 | uint32(be[3])}
	var a [HeaderLen]byte
	putHeader(a[:], &h)
	select {
	case c.in <- a:
	default:
	}
	return nil
}

// Recv implements Conn: acknowledgements, and hellos in between.
func (c *SinkConn) Recv(b []byte) (int, bool, error) {
	select {
	case d := <-c.in:
		return copy(b, d[:]), true, nil
	case <-c.hello.C:
		h := header{typ: msgHello, id: c.id, netSig: c.netSig, seq: 1, base: 1}
		putHeader(b, &h)
		return HeaderLen, true, nil
	case <-c.closed:
		return 0, false, errClosed
	}
}

// Close implements Conn.
func (c *SinkConn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.hello.Stop()
		c.out.Close()
		c.sink.Close()
	})
	return nil
}
