package afpacket

import (
	"encoding/binary"
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"vrouter/packet"
	"vrouter/router/port"
)

// The recvmmsg receive path (RxMmsg): messages land in internal 64 KB
// buffers with a PACKET_AUXDATA control message each, and deliver copies
// (or segments) them into the batch slots.

// doRead runs under the runtime poller: it returns false to wait for
// readability when nothing is queued.
func (p *Port) doRead(fd uintptr) bool {
	for i := range p.rxMsgs {
		p.rxMsgs[i].Hdr.SetControllen(ctlSize)
		p.rxMsgs[i].Hdr.Flags = 0
		p.rxMsgs[i].Len = 0
	}
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&p.rxMsgs[0])),
			uintptr(len(p.rxMsgs)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			p.rxCount = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		p.rxErr = e
		return true
	}
}

func (p *Port) readMmsg(b *port.Batch) (int, error) {
	b.N, b.HasMeta = 0, false
	for {
		if p.closed.Load() {
			return 0, port.ErrClosed
		}
		if p.rxNext < p.rxCount {
			if n := p.deliver(b); n > 0 {
				b.N = n
				return n, nil
			}
			continue
		}
		p.rxCount, p.rxNext, p.rxErr = 0, 0, nil
		if err := p.rc.Read(p.readFn); err != nil {
			if p.closed.Load() || errors.Is(err, os.ErrClosed) {
				return 0, port.ErrClosed
			}
			return 0, err
		}
		if p.rxErr != nil {
			if p.rxErr == unix.ENETDOWN {
				// The link went down (reported once); frames follow when it is up again.
				continue
			}
			return 0, p.rxErr
		}
	}
}

// auxVLAN returns the tag the kernel stripped from message i.
func (p *Port) auxVLAN(i int) (tci, tpid uint16, ok bool) {
	h := &p.rxMsgs[i].Hdr
	ctl := p.rxCtl[i*ctlSize : i*ctlSize+int(h.Controllen)]
	for len(ctl) >= unix.SizeofCmsghdr {
		l := int(binary.NativeEndian.Uint64(ctl[0:8]))
		level := int32(binary.NativeEndian.Uint32(ctl[8:12]))
		typ := int32(binary.NativeEndian.Uint32(ctl[12:16]))
		if l < unix.SizeofCmsghdr || l > len(ctl) {
			return 0, 0, false
		}
		if level == unix.SOL_PACKET && typ == unix.PACKET_AUXDATA && l >= unix.SizeofCmsghdr+sizeofAuxdata {
			d := ctl[unix.SizeofCmsghdr:]
			status := binary.NativeEndian.Uint32(d[0:4])
			if status&unix.TP_STATUS_VLAN_VALID == 0 {
				return 0, 0, false
			}
			tci = binary.NativeEndian.Uint16(d[16:18])
			tpid = packet.EtherTypeVLAN
			if status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
				tpid = binary.NativeEndian.Uint16(d[18:20])
			}
			return tci, tpid, true
		}
		l = (l + 7) &^ 7
		if l > len(ctl) {
			break
		}
		ctl = ctl[l:]
	}
	return 0, 0, false
}

// deliver moves received messages into b (from slot 0) and returns the
// number of frames. It stops when b is full; the rest stays pending.
func (p *Port) deliver(b *port.Batch) int {
	n, room := 0, b.Cap()
	intact := p.offloads && len(b.Meta) >= room
	var c rxCount
	for p.rxNext < p.rxCount && n < room {
		if p.seg.n != 0 {
			if n = p.segment(b, n, &c); p.seg.n != 0 {
				break // batch full; continue this super-frame next time
			}
			p.rxNext++
			continue
		}
		i := p.rxNext
		m := &p.rxMsgs[i]
		l := int(m.Len)
		start := 0
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			c.ev[dropTruncated]++
			p.rxNext++
			continue
		}
		if p.vnet {
			if l < packet.VnetHdrLen {
				c.ev[dropBadVnetHdr]++
				p.rxNext++
				continue
			}
			start = packet.VnetHdrLen
			l -= start
		}
		tci, tpid, tagged := p.auxVLAN(i)
		n = p.take(b, n, p.rxBufs[i], start, l, tci, tpid, tagged, intact, false, &c)
		if p.seg.n != 0 {
			break
		}
		p.rxNext++
	}
	p.flush(n, &c)
	return n
}
