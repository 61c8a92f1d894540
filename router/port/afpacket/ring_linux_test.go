package afpacket

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"testing"
	"unsafe"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"vrouter/packet"
	"vrouter/router/port"
)

// These tests drive deliverV2/deliverV3 over ring memory laid out as the
// kernel writes it (tpacket headers, reserve, virtio_net_hdr, frame), in a
// plain byte slice: no socket or privilege needed.

// ringFrame is one frame as the kernel would put it into a ring.
type ringFrame struct {
	vh      packet.VnetHdr
	frame   []byte
	tci     uint16
	tagged  bool
	trunc   bool // tp_snaplen < tp_len
	badMac  bool // tp_mac without room for the headroom
	macOff  int  // tp_mac; 0: the kernel's usual offset
	nextOff int  // V3: tp_next_offset override
}

// kernelMac is tp_mac for an untagged Ethernet frame with PACKET_RESERVE
// port.Headroom and the virtio_net_hdr: TPACKET_ALIGN(hdrlen + 16) +
// reserve + 10 - 14 (af_packet.c, tpacket_rcv).
func kernelMac(hdrlen int) int { return (hdrlen+16+15)&^15 + port.Headroom + packet.VnetHdrLen - 14 }

func fakeRingPort(v3 bool, offloads bool) *Port {
	p := &Port{vnet: true, offloads: offloads, c: &shared{}}
	p.c.queues = []*Port{p}
	r := &rxRing{v3: v3, vnetLen: packet.VnetHdrLen}
	if v3 {
		r.bs, r.nb = 1<<17, 4
		r.mem = make([]byte, r.bs*r.nb)
	} else {
		r.fs, r.nf = 2048, 8
		r.mem = make([]byte, r.fs*r.nf)
	}
	p.ring = r
	return p
}

func putFrameBody(mem []byte, at, mac int, f ringFrame) (snap int) {
	f.vh.Put(mem[at+mac-packet.VnetHdrLen:])
	snap = copy(mem[at+mac:], f.frame)
	return snap
}

func frameStatus(f ringFrame) uint32 {
	st := uint32(unix.TP_STATUS_USER)
	if f.tagged {
		st |= unix.TP_STATUS_VLAN_VALID | unix.TP_STATUS_VLAN_TPID_VALID
	}
	return st
}

// fillV2 writes frames into consecutive V2 slots from slot first on.
func fillV2(p *Port, first int, frames ...ringFrame) {
	r := p.ring
	ne := binary.NativeEndian
	for i, f := range frames {
		at := ((first + i) % r.nf) * r.fs
		mac := kernelMac(52)
		if f.macOff != 0 {
			mac = f.macOff
		}
		snap := putFrameBody(r.mem, at, mac, f)
		h := r.mem[at:]
		ne.PutUint32(h[t2Len:], uint32(snap))
		if f.trunc {
			snap--
		}
		ne.PutUint32(h[t2Snaplen:], uint32(snap))
		if f.badMac {
			mac = port.Headroom
		}
		ne.PutUint16(h[t2Mac:], uint16(mac))
		ne.PutUint16(h[t2VlanTCI:], f.tci)
		ne.PutUint16(h[t2VlanTPID:], packet.EtherTypeVLAN)
		*(*uint32)(unsafe.Pointer(&h[t2Status])) = frameStatus(f)
	}
}

// fillV3 writes frames into V3 block blk and hands the block over.
func fillV3(p *Port, blk int, frames ...ringFrame) {
	r := p.ring
	ne := binary.NativeEndian
	base := blk * r.bs
	off := bdSize
	ne.PutUint32(r.mem[base+bdNumPkts:], uint32(len(frames)))
	ne.PutUint32(r.mem[base+bdFirstPkt:], uint32(off))
	for _, f := range frames {
		mac := kernelMac(68)
		snap := putFrameBody(r.mem, base+off, mac, f)
		h := r.mem[base+off:]
		next := (mac + snap + 15) &^ 15
		if f.nextOff != 0 {
			ne.PutUint32(h[t3NextOffset:], uint32(f.nextOff))
		} else {
			ne.PutUint32(h[t3NextOffset:], uint32(next))
		}
		ne.PutUint32(h[t3Len:], uint32(snap))
		if f.trunc {
			snap--
		}
		ne.PutUint32(h[t3Snaplen:], uint32(snap))
		ne.PutUint32(h[t3Status:], frameStatus(f))
		if f.badMac {
			mac = port.Headroom
		}
		ne.PutUint16(h[t3Mac:], uint16(mac))
		ne.PutUint32(h[t3VlanTCI:], uint32(f.tci))
		ne.PutUint16(h[t3VlanTPID:], packet.EtherTypeVLAN)
		off += next
	}
	*(*uint32)(unsafe.Pointer(&r.mem[base+bdBlockStatus])) = unix.TP_STATUS_USER
}

func statusOf(p *Port, i uint64) uint32 { return *p.ring.statusAt(p.ring.at(i)) }

func counters(p *Port) map[string]uint64 {
	p.closed.Store(true) // no socket to poll
	defer p.closed.Store(false)
	c := map[string]uint64{}
	for _, v := range p.Counters() {
		if v.Value != 0 {
			c[v.Name] = v.Value
		}
	}
	return c
}

// inRing reports whether frame i of b lies in the ring's memory.
func inRing(p *Port, b *port.Batch, i int) bool {
	m := p.ring.mem
	a := uintptr(unsafe.Pointer(&b.Bufs[i][b.Off[i]]))
	lo := uintptr(unsafe.Pointer(&m[0]))
	return a >= lo && a < lo+uintptr(len(m))
}

func TestRingV2Deliver(t *testing.T) {
	p := fakeRingPort(false, false)
	plain := udpFrame(t, nil, layers.EthernetTypeIPv4, "plain")
	tagged := udpFrame(t, nil, layers.EthernetTypeIPv4, "tagged frame, long enough not to be padded")
	wantTagged := udpFrame(t, []layers.Dot1Q{{VLANIdentifier: 5, Priority: 1, Type: layers.EthernetTypeIPv4}}, layers.EthernetTypeDot1Q, "tagged frame, long enough not to be padded")
	fillV2(p, 0,
		ringFrame{frame: plain},
		ringFrame{frame: tagged, tagged: true, tci: 0x2005},
		ringFrame{frame: plain, trunc: true},
		ringFrame{frame: plain, badMac: true},
		ringFrame{frame: plain},
	)
	b := port.NewBatch(2)
	if n := p.deliverV2(b); n != 2 || !bytes.Equal(b.Frame(0), plain) || !bytes.Equal(b.Frame(1), wantTagged) {
		t.Fatalf("first batch: %d frames", n)
	}
	if !inRing(p, b, 0) || !inRing(p, b, 1) || b.Off[0] != port.Headroom || b.Off[1] != port.Headroom-4 || len(b.Bufs[0]) != port.Headroom+len(plain) {
		t.Fatal("frames not handed over in place with the headroom in front")
	}
	if p.ring.cur != 2 || statusOf(p, 0)&unix.TP_STATUS_USER == 0 {
		t.Fatal("slots given back before the next batch")
	}
	if n := p.deliverV2(b); n != 1 || !bytes.Equal(b.Frame(0), plain) || p.ring.cur != 5 {
		t.Fatalf("second batch: %d frames, cur %d", n, p.ring.cur)
	}
	p.ring.release()
	for i := uint64(0); i < 5; i++ {
		if statusOf(p, i) != unix.TP_STATUS_KERNEL {
			t.Fatalf("slot %d not given back", i)
		}
	}
	if n := p.deliverV2(b); n != 0 {
		t.Fatalf("%d frames from an empty ring", n)
	}
	if c := counters(p); c["truncated"] != 1 || c["ring-bad-frame"] != 1 || len(c) != 2 {
		t.Fatalf("counters %v", c)
	}
	p.closed.Store(true) // no socket to poll
	st := p.Stats()
	p.closed.Store(false)
	if st.RxPackets != 3 || st.RxDropped != 2 {
		t.Fatalf("stats %+v", st)
	}
	// The ring wraps: slots 5..7, then 0 and 1 again.
	fillV2(p, 5, ringFrame{frame: plain}, ringFrame{frame: plain}, ringFrame{frame: plain}, ringFrame{frame: tagged, tagged: true, tci: 0x2005}, ringFrame{frame: plain})
	got := 0
	for {
		n := p.deliverV2(b)
		if n == 0 {
			break
		}
		got += n
		p.ring.release()
	}
	if got != 5 || p.ring.cur != 10 || p.ring.head != 10 {
		t.Fatalf("after the wrap: %d frames, cur %d head %d", got, p.ring.cur, p.ring.head)
	}
}

func TestRingV3Deliver(t *testing.T) {
	for _, offloads := range []bool{false, true} {
		p := fakeRingPort(true, offloads)
		rng := rand.New(rand.NewSource(1))
		payload := make([]byte, 6000)
		rng.Read(payload)
		super := superTCP(t, 0, payload, 100)
		superMeta := packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv4, HdrLen: 54, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}
		plain := udpFrame(t, nil, layers.EthernetTypeIPv4, "plain")
		fillV3(p, 0,
			ringFrame{frame: plain},
			ringFrame{frame: super, vh: superMeta, tagged: true, tci: 9},
			ringFrame{frame: plain, trunc: true},
			ringFrame{frame: plain},
		)
		fillV3(p, 1,
			ringFrame{frame: plain},
			ringFrame{frame: plain, nextOff: 1 << 20}, // a broken chain: the rest of the block is skipped
			ringFrame{frame: plain},
		)
		b := port.NewBatch(3)
		var frames [][]byte
		var metas []packet.VnetHdr
		for calls := 0; calls < 10; calls++ {
			n := p.deliverV3(b)
			if n == 0 {
				break
			}
			for i := 0; i < n; i++ {
				frames = append(frames, append([]byte(nil), b.Frame(i)...))
				metas = append(metas, b.Meta[i])
				if inRing(p, b, i) != (offloads || len(b.Frame(i)) == len(plain)) {
					t.Fatalf("offloads %v: frame %d (%d bytes) in the ring: %v", offloads, len(frames)-1, len(b.Frame(i)), inRing(p, b, i))
				}
			}
			if p.ring.cur > 0 && p.ring.head == 0 && statusOf(p, 0) != unix.TP_STATUS_USER {
				t.Fatal("block 0 given back early")
			}
			p.ring.release()
		}
		segs := 1
		if !offloads {
			segs = 5 // 6000 bytes at 1448 per segment
		}
		if len(frames) != 1+segs+1+2 {
			t.Fatalf("offloads %v: %d frames", offloads, len(frames))
		}
		if offloads {
			want := superMeta
			want.CsumStart, want.HdrLen = 38, 58
			if metas[1] != want || len(frames[1]) != len(super)+4 {
				t.Fatalf("super-frame: %d bytes, meta %+v", len(frames[1]), metas[1])
			}
		} else {
			var re []byte
			for _, f := range frames[1 : 1+segs] {
				pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
				ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				tc, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
				q, _ := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
				if q == nil || q.VLANIdentifier != 9 || ip == nil || tc == nil || !l4OK(ip, ip.Payload) {
					t.Fatalf("segment: %v", pkt)
				}
				re = append(re, tc.Payload...)
			}
			if !bytes.Equal(re, payload) {
				t.Fatal("segments do not add up to the super-frame")
			}
		}
		if p.ring.cur != 2 || p.ring.head != 2 || statusOf(p, 0) != unix.TP_STATUS_KERNEL || statusOf(p, 1) != unix.TP_STATUS_KERNEL {
			t.Fatalf("blocks: cur %d head %d", p.ring.cur, p.ring.head)
		}
		c := counters(p)
		if c["truncated"] != 1 || c["ring-bad-frame"] != 1 {
			t.Fatalf("counters %v", c)
		}
		if offloads && c["gso-intact"] != 1 || !offloads && c["gso-segmented"] != 1 {
			t.Fatalf("offloads %v: counters %v", offloads, c)
		}
	}
}

func TestRingDeliverNoAlloc(t *testing.T) {
	super := superTCP(t, 0, make([]byte, 20000), 1)
	superMeta := packet.VnetHdr{Flags: packet.VnetNeedsCsum, GSOType: packet.GSOTCPv4, HdrLen: 54, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}
	plain := udpFrame(t, nil, layers.EthernetTypeIPv4, "plain")
	b := port.NewBatch(port.DefaultBatch)
	for _, v3 := range []bool{false, true} {
		for _, offloads := range []bool{false, true} {
			p := fakeRingPort(v3, offloads)
			round := func() {
				if v3 {
					fillV3(p, int(p.ring.cur%uint64(p.ring.nb)), ringFrame{frame: plain, tagged: true, tci: 3}, ringFrame{frame: super, vh: superMeta})
				} else {
					fillV2(p, int(p.ring.cur%uint64(p.ring.nf)), ringFrame{frame: plain, tagged: true, tci: 3}, ringFrame{frame: plain})
				}
				for p.deliverV3orV2(b, v3) > 0 {
				}
				p.ring.release()
			}
			if a := testing.AllocsPerRun(50, round); a != 0 {
				t.Fatalf("v3 %v offloads %v: %v allocations", v3, offloads, a)
			}
		}
	}
}

func (p *Port) deliverV3orV2(b *port.Batch, v3 bool) int {
	if v3 {
		return p.deliverV3(b)
	}
	return p.deliverV2(b)
}

// TestRingV2BigSlots: slots larger than 64 KB do not cross the 1 MB blocks
// the kernel allocates; the offsets skip each block's unused end.
func TestRingV2BigSlots(t *testing.T) {
	fpb := v2BigBlockSize / SuperFrameSize
	r := &rxRing{fs: SuperFrameSize, fpb: fpb, bs: v2BigBlockSize, nf: 3 * fpb, gap: v2BigBlockSize - fpb*SuperFrameSize}
	if fpb != 15 || r.gap <= 0 {
		t.Fatalf("%d slots of %d bytes per block, gap %d", fpb, SuperFrameSize, r.gap)
	}
	for i, want := range map[uint64]int{0: 0, 1: SuperFrameSize, uint64(fpb - 1): (fpb - 1) * SuperFrameSize,
		uint64(fpb): v2BigBlockSize, uint64(2*fpb + 1): 2*v2BigBlockSize + SuperFrameSize, uint64(3 * fpb): 0} {
		if got := r.at(i); got != want {
			t.Errorf("slot %d at %d, want %d", i, got, want)
		}
		if got := r.at(i); got%v2BigBlockSize+SuperFrameSize > v2BigBlockSize {
			t.Errorf("slot %d crosses its block", i)
		}
	}
}
