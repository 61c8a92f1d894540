package afpacket

import (
	"vrouter/packet"
	"vrouter/router/port"
)

// What the receive paths share: one received frame is classified (drop,
// hand on with or without metadata, or cut into segments) and placed into
// a batch slot by take; segment continues a super-frame across batches.

// segState is a super-frame being cut into segments (software GSO).
type segState struct {
	n, i   int    // segments, next segment; n == 0: none in progress
	src    []byte // the super-frame (stays put until it is done)
	l3     int
	proto  uint8
	mss    int
	tci    uint16
	tpid   uint16
	tagged bool
}

// rxCount is a batch's local counts, added to the shared counters once.
type rxCount struct {
	ev    [numCounters]uint64
	bytes uint64
}

// place records frame n of b, written at Bufs[n][Headroom:Headroom+l], and
// puts the stripped tag back in front of the EtherType when there is one.
func place(b *port.Batch, n, l int, tci, tpid uint16, tagged bool) {
	if !tagged {
		b.Off[n], b.Len[n] = port.Headroom, l
		return
	}
	s := b.Bufs[n]
	o := port.Headroom - packet.VLANHdrLen
	copy(s[o:o+12], s[port.Headroom:port.Headroom+12])
	s[o+12], s[o+13] = byte(tpid>>8), byte(tpid)
	s[o+14], s[o+15] = byte(tci>>8), byte(tci)
	b.Off[n], b.Len[n] = o, l+packet.VLANHdrLen
}

// setMeta stores frame n's metadata when b has room for it.
func setMeta(b *port.Batch, n int, m packet.VnetHdr) {
	if n < len(b.Meta) {
		b.Meta[n] = m
		if m.Flags|m.GSOType != 0 {
			b.HasMeta = true
		}
	}
}

// Receive decisions (classify).
const (
	actDeliver = iota // hand the frame on (with rxDecision.meta)
	actSegment        // cut the super-frame into segments (p.seg set up)
	actDrop           // dropped and counted
)

type rxDecision struct {
	act  uint8
	meta packet.VnetHdr
}

// classify decides what to do with the received frame f (without the tag
// the kernel stripped, tagLen bytes when there was one) described by vh.
// intact says whether super-frames and partial checksums may be handed on
// with their metadata (the caller counts them when it delivers them);
// otherwise partial checksums are completed in f and a super-frame's
// segmentation is prepared in p.seg. Drops and events go to c.
func (p *Port) classify(f []byte, vh packet.VnetHdr, tagLen int, intact bool, c *rxCount) rxDecision {
	drop := func(r int) rxDecision {
		c.ev[r]++
		return rxDecision{act: actDrop}
	}
	if g := vh.GSOType &^ packet.GSOECNBit; g != packet.GSONone {
		proto := uint8(packet.ProtoTCP)
		if g == packet.GSOUDPL4 {
			proto = packet.ProtoUDP
		}
		l3, et, ok := packet.L3Offset(f)
		v4 := et == packet.EtherTypeIPv4 && (g == packet.GSOTCPv4 || g == packet.GSOUDPL4)
		// IPv6 super-frames are always cut here: the router takes IPv6
		// only as plain packets.
		v6 := et == packet.EtherTypeIPv6 && (g == packet.GSOTCPv6 || g == packet.GSOUDPL4)
		if !ok || !(v4 || v6) {
			return drop(dropGSOUnsupported)
		}
		segs := packet.GSOSegments(f, l3, proto, int(vh.GSOSize))
		if segs == 0 {
			return drop(dropGSOUnsupported)
		}
		if !intact || v6 {
			p.seg = segState{n: segs, src: f, l3: l3, proto: proto, mss: int(vh.GSOSize)}
			return rxDecision{act: actSegment}
		}
		l4, hdrLen, _ := packet.GSOHeadersV4(f, l3, proto)
		csumOff := 16
		if proto == packet.ProtoUDP {
			csumOff = 6
		}
		if vh.Flags&packet.VnetNeedsCsum == 0 || int(vh.CsumStart) != l4 || int(vh.CsumOffset) != csumOff {
			return drop(dropBadCsumOffsets)
		}
		if len(f)+tagLen > port.MaxSuper {
			return drop(dropTooBig)
		}
		return rxDecision{act: actDeliver, meta: packet.VnetHdr{
			Flags:      packet.VnetNeedsCsum,
			GSOType:    vh.GSOType,
			HdrLen:     uint16(hdrLen + tagLen),
			GSOSize:    vh.GSOSize,
			CsumStart:  vh.CsumStart + uint16(tagLen),
			CsumOffset: vh.CsumOffset,
		}}
	}
	if len(f) > port.MaxFrame {
		return drop(dropTooBig)
	}
	var d rxDecision
	if vh.Flags&packet.VnetNeedsCsum != 0 {
		if intact {
			if int(vh.CsumStart)+int(vh.CsumOffset)+2 > len(f) {
				return drop(dropBadCsumOffsets)
			}
			d.meta = packet.VnetHdr{Flags: packet.VnetNeedsCsum, CsumStart: vh.CsumStart + uint16(tagLen), CsumOffset: vh.CsumOffset}
		} else {
			end := len(f)
			if l3, et, ok := packet.L3Offset(f); ok && et == packet.EtherTypeIPv4 && len(f) >= l3+packet.IPv4MinLen {
				if tl := packet.IPv4(f[l3:]).TotalLen(); tl >= packet.IPv4MinLen && l3+tl <= end {
					end = l3 + tl // leave Ethernet padding out of the sum
				}
			}
			if !packet.CompleteChecksum(f[:end], int(vh.CsumStart), int(vh.CsumOffset)) {
				return drop(dropBadCsumOffsets)
			}
			c.ev[cCsum]++
		}
	}
	return d
}

// take handles the received frame buf[start:start+l], the kernel's
// virtio_net_hdr (when the socket has it) in the VnetHdrLen bytes before
// it, and tci/tpid the tag the kernel stripped (tagged). It drops the frame,
// puts it into slot n of b, or starts cutting it into segments from slot n
// on (p.seg), and returns the new n. With inPlace the slot becomes buf
// itself, from port.Headroom bytes before the frame to its end (buf must
// have them and be the port's to rewrite until the next ReadBatch);
// otherwise the frame is copied into b.Bufs[n]. p.seg.n != 0 afterwards
// means b filled up before the last segment.
func (p *Port) take(b *port.Batch, n int, buf []byte, start, l int, tci, tpid uint16, tagged, intact, inPlace bool, c *rxCount) int {
	f := buf[start : start+l : start+l]
	var vh packet.VnetHdr
	if p.vnet {
		vh = packet.ParseVnetHdr(buf[start-packet.VnetHdrLen : start])
	}
	tagLen := 0
	if tagged {
		tagLen = packet.VLANHdrLen
	}
	d := p.classify(f, vh, tagLen, intact, c)
	switch d.act {
	case actDrop:
		return n
	case actSegment:
		p.seg.tci, p.seg.tpid, p.seg.tagged = tci, tpid, tagged
		return p.segment(b, n, c)
	}
	if inPlace {
		b.Bufs[n] = buf[start-port.Headroom : start+l : start+l]
	} else {
		s := b.Bufs[n]
		if len(s) < port.Headroom+l {
			c.ev[dropTooBig]++ // a slot smaller than port.SlotSize
			return n
		}
		copy(s[port.Headroom:], f)
	}
	place(b, n, l, tci, tpid, tagged)
	setMeta(b, n, d.meta)
	if d.meta.GSOType != packet.GSONone {
		c.ev[cGSOIntact]++
	} else if d.meta.Flags != 0 {
		c.ev[cCsumIntact]++
	}
	c.bytes += uint64(b.Len[n])
	return n + 1
}

// segment writes the next segments of the super-frame p.seg.src into the
// slots of b from n on and returns the new n. A ring port uses its own
// segment buffers for the slots (b.Bufs point into the ring), the mmsg
// path b's buffers. The super-frame is done when p.seg.n is 0 again.
func (p *Port) segment(b *port.Batch, n int, c *rxCount) int {
	s := &p.seg
	room := b.Cap()
	own := p.ring != nil
	if own && len(p.segBufs) < room {
		p.growSegBufs(room)
	}
	for s.i < s.n && n < room {
		if own {
			b.Bufs[n] = p.segBufs[n]
		}
		l := 0
		if len(b.Bufs[n]) > port.Headroom {
			l = packet.Segment(b.Bufs[n][port.Headroom:], s.src, s.l3, s.proto, s.mss, s.i)
		}
		s.i++
		if l == 0 {
			c.ev[dropTooBig]++ // segment larger than a slot
			continue
		}
		place(b, n, l, s.tci, s.tpid, s.tagged)
		setMeta(b, n, packet.VnetHdr{})
		c.bytes += uint64(b.Len[n])
		n++
	}
	if s.i >= s.n {
		c.ev[cGSO]++
		*s = segState{}
	}
	return n
}

// growSegBufs allocates slots for software segments (ring modes without
// Options.Offloads): one per batch slot, each for a frame up to
// port.MaxFrame. Done once, at the first super-frame.
func (p *Port) growSegBufs(n int) {
	const size = port.Headroom + port.MaxFrame
	mem := make([]byte, n*size)
	p.segBufs = make([][]byte, n)
	for i := range p.segBufs {
		p.segBufs[i] = mem[i*size : (i+1)*size : (i+1)*size]
	}
}

// flush adds a batch's counts to the port's.
func (p *Port) flush(n int, c *rxCount) {
	p.c.rxPackets.Add(uint64(n))
	p.c.rxBytes.Add(c.bytes)
	p.c.add(&c.ev)
}
