package router

import (
	"vrouter/packet"
	"vrouter/router/port"
)

// l2hdrMax is the room generated packets keep in front of their payload for
// an Ethernet header with one 802.1Q tag.
const l2hdrMax = packet.EtherHdrLen + packet.VLANHdrLen

// put writes the Ethernet header for link l in front of the payload at
// buf[off:off+n] and queues the frame; m is the payload's offload metadata
// (nil when plain), settled here for a port that does not take it.
func (w *worker) put(l link, dst, src packet.MAC, buf []byte, off, n int, et uint16, m *packet.VnetHdr) {
	if m != nil && !w.snap.ports[l.port].offloads {
		w.settle(buf, off, buf[off:off+n], m, func(b []byte, o int, seg []byte) {
			w.put(l, dst, src, b, o, len(seg), et, nil)
		})
		return
	}
	h := packet.EtherLen(l.vid)
	start := off - h
	packet.PutEther(buf[start:], dst, src, l.vid, et)
	if m != nil {
		fm := *m
		fm.CsumStart += uint16(h) // counted from the frame's first byte again
		w.queueTxMeta(l.port, buf[start:off+n], fm)
		if isGSO(m) {
			w.cnt[CntGSOForwarded]++
		}
	} else {
		w.queueTx(l.port, buf[start:off+n])
	}
	lc := &w.linkCnt[l.id]
	lc.txPackets++
	lc.txBytes += uint64(h + n)
	if w.tp != nil {
		w.trTx(l.port, l.vid, h+n)
	}
}

// txTo sends the payload buf[off:off+n] (EtherType et) to dst on network
// nw, from src. On a switched network the link comes from the MAC table;
// broadcast, multicast and unknown destinations are flooded to every link
// but except (-1 for none). The payload must have l2hdrMax bytes of room
// before off; buf may be rewritten. m is the payload's offload metadata
// (nil when plain); it is settled before a switched network copies frames.
func (w *worker) txTo(nw *network, dst, src packet.MAC, buf []byte, off, n int, et uint16, except int, m *packet.VnetHdr) {
	if !nw.switched() {
		if except != 0 { // the only link is not where the frame came from
			w.put(nw.links[0], dst, src, buf, off, n, et, m)
		}
		return
	}
	if m != nil {
		w.settle(buf, off, buf[off:off+n], m, func(b []byte, o int, seg []byte) {
			w.txTo(nw, dst, src, b, o, len(seg), et, except, nil)
		})
		return
	}
	if !dst.IsMulticast() {
		if li, ok := nw.bridge.lookup(dst, w.sec()); ok {
			if li == except {
				w.drop(DropL2SameLink)
				return
			}
			w.put(nw.links[li], dst, src, buf, off, n, et, nil)
			return
		}
		w.cnt[CntL2UnknownFlood]++
	}
	last := -1
	for i := range nw.links {
		if i != except {
			last = i
		}
	}
	for i, l := range nw.links {
		if i == except || i == last {
			continue
		}
		b := w.getScratch()
		o := port.Headroom + l2hdrMax
		copy(b[o:], buf[off:off+n])
		w.put(l, dst, src, b, o, n, et, nil)
		w.cnt[CntL2Flooded]++
	}
	if last >= 0 {
		w.put(nw.links[last], dst, src, buf, off, n, et, nil)
	}
}

// sec is the batch time in seconds (for MAC ageing).
func (w *worker) sec() int64 { return w.now / 1e9 }

// switchFrame handles a frame on a switched network that is not for the
// router's MAC: learn is done by the caller; forward to the learned link or
// flood. It reports whether the router must also process the frame
// (broadcast and multicast).
func (w *worker) switchFrame(nw *network, ingress int, f []byte, buf []byte, off int, l2 packet.L2) bool {
	eth := packet.Ether(f)
	dst, src := eth.Dst(), eth.Src()
	pOff := off + l2.HdrLen
	pLen := len(f) - l2.HdrLen
	if dst.IsMulticast() {
		// Flood copies; the router then processes the original.
		for i, l := range nw.links {
			if i == ingress {
				continue
			}
			b := w.getScratch()
			o := port.Headroom + l2hdrMax
			copy(b[o:], buf[pOff:pOff+pLen])
			w.put(l, dst, src, b, o, pLen, l2.Type, nil)
			w.cnt[CntL2Flooded]++
		}
		return true
	}
	w.cnt[CntL2Switched]++
	w.txTo(nw, dst, src, buf, pOff, pLen, l2.Type, ingress, nil)
	return false
}
