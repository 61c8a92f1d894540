package afpacket

import (
	"errors"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"vrouter/packet"
	"vrouter/router/port"
)

// doWrite runs under the runtime poller with txMu held: it sends the
// prepared messages, skipping those the kernel refuses, and returns false to
// wait for room in the socket buffer.
func (p *Port) doWrite(fd uintptr) bool {
	for p.txDone < p.txK {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&p.txMsgs[p.txDone])),
			uintptr(p.txK-p.txDone), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			p.txDone += int(n)
			p.txOK += int(n)
			continue
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		case unix.ENETDOWN:
			if !p.txRetried {
				// Maybe the error a link flap left pending on the socket
				// (the ring receive path never collects it): once more.
				p.txRetried = true
				continue
			}
		case unix.ENOBUFS:
			// With the qdisc bypassed the kernel drops a super-frame it
			// would have to segment in software (a device without TSO):
			// send it through the qdisc, which segments.
			if p.bypass && p.txVnet[p.txDone*packet.VnetHdrLen+1] != packet.GSONone {
				switch p.sendViaQdisc(fd) {
				case 0:
					p.txDone++
					p.txOK++
					p.txViaQdisc++
					continue
				case unix.EAGAIN:
					return false
				}
			}
		}
		// The first pending message was refused (too big, link down, bad
		// offload metadata, driver queue full with the qdisc bypassed, ...).
		p.txFailBytes += p.txIov[2*p.txDone+1].Len
		p.txDone++
		p.txFail++
	}
	return true
}

// sendViaQdisc sends message txDone with PACKET_QDISC_BYPASS off.
func (p *Port) sendViaQdisc(fd uintptr) unix.Errno {
	if unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 0) != nil {
		return unix.EINVAL
	}
	var e unix.Errno
	for {
		_, _, e = unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&p.txMsgs[p.txDone])), 1, unix.MSG_DONTWAIT, 0, 0)
		if e != unix.EINTR {
			break
		}
	}
	_ = unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1)
	return e
}

// WriteBatch sends frames and returns how many the kernel accepted; refused
// frames are counted in Stats.TxErrors. meta is nil or holds each frame's
// offload metadata (port.Port): it goes into the frame's virtio_net_hdr, so
// the kernel segments a super-frame or completes a partial checksum where
// the device cannot. Safe for concurrent callers (they take turns on the
// port's prepared sendmmsg arrays).
func (p *Port) WriteBatch(frames [][]byte, meta []packet.VnetHdr) (int, error) {
	if p.closed.Load() {
		return 0, port.ErrClosed
	}
	p.txMu.Lock()
	defer p.txMu.Unlock()
	if p.txr != nil {
		return p.writeRing(frames, meta)
	}
	return p.writeMmsg(frames, meta, p.rc)
}

// writeMmsg sends frames with sendmmsg on rc (txMu held).
func (p *Port) writeMmsg(frames [][]byte, meta []packet.VnetHdr, rc syscall.RawConn) (int, error) {
	sent, failed := 0, 0
	var bytes uint64
	var noVnet, gso, csum, viaQdisc uint64
	var err error
	for off := 0; off < len(frames); {
		k := 0
		var kBytes uint64
		for ; off < len(frames) && k < len(p.txMsgs); off++ {
			f := frames[off]
			var m packet.VnetHdr
			if off < len(meta) {
				m = meta[off]
			}
			if m != (packet.VnetHdr{}) {
				if !p.vnet {
					noVnet++
					continue
				}
				if m.GSOType != packet.GSONone {
					gso++
				} else if m.Flags&packet.VnetNeedsCsum != 0 {
					csum++
				}
			}
			if p.vnet {
				m.Put(p.txVnet[k*packet.VnetHdrLen:])
			}
			iov := &p.txIov[2*k+1]
			if len(f) == 0 {
				iov.Base = &p.txEmpty[0]
			} else {
				iov.Base = &f[0]
			}
			iov.SetLen(len(f))
			kBytes += uint64(len(f))
			k++
		}
		if k == 0 {
			continue
		}
		p.txK, p.txDone, p.txOK, p.txFail, p.txFailBytes, p.txRetried, p.txViaQdisc = k, 0, 0, 0, 0, false, 0
		err = rc.Write(p.writeFn)
		sent += p.txOK
		viaQdisc += uint64(p.txViaQdisc)
		failed += p.txFail
		kBytes -= p.txFailBytes
		if err != nil {
			failed += k - p.txDone
			for i := p.txDone; i < k; i++ {
				kBytes -= p.txIov[2*i+1].Len
			}
		}
		for i := 0; i < k; i++ {
			p.txIov[2*i+1].Base = nil // do not retain the caller's buffers
		}
		bytes += kBytes
		if err != nil {
			break
		}
	}
	c := p.c
	c.txPackets.Add(uint64(sent))
	c.txBytes.Add(bytes)
	if failed != 0 || noVnet != 0 {
		c.txErrors.Add(uint64(failed) + noVnet)
	}
	if noVnet != 0 {
		c.c[dropTxNoVnet].Add(noVnet)
	}
	if gso != 0 {
		c.c[cTxGSO].Add(gso)
	}
	if csum != 0 {
		c.c[cTxCsum].Add(csum)
	}
	if viaQdisc != 0 {
		c.c[cTxGSOQdisc].Add(viaQdisc)
	}
	if err != nil {
		if p.closed.Load() || errors.Is(err, os.ErrClosed) {
			return sent, port.ErrClosed
		}
		return sent, err
	}
	return sent, nil
}
