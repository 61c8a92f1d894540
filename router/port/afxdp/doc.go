// Package afxdp is a port.Port on an existing kernel interface read and
// written through AF_XDP sockets (config: driver = "afxdp"). Linux only; the
// other files build everywhere so that the module builds with
// CGO_ENABLED=0 on any platform.
//
// # How it works
//
// Open loads a five-instruction XDP program (written with cilium/ebpf's asm
// package: no C compiler at build time) and an XSKMAP:
//
//	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
//
// Every frame of every queue goes to the socket of its queue; ARP, LLDP and
// everything else included, nothing is left to the kernel. The XDP_PASS
// fallback applies only to a queue without a socket (frames arriving while
// Open is still binding). The program is attached as a BPF link, so the
// kernel detaches it when the link is closed (Close, a failed Open) and
// also when the process dies without closing anything.
//
// Mode: native (XDP_FLAGS_DRV_MODE) is tried first, generic (SKB) after it;
// NativeError says why native was refused, and vrouter logs it as a
// warning. Options.Mode forces one. Where neither attaches (another XDP
// program already on the device, no privilege) Open fails with one line
// naming the port, the mode and the fix.
//
// Sockets: one per rx queue of the device (IFLA_NUM_RX_QUEUES; queues past
// the active count are skipped), each with its own UMEM of Options.Frames
// 4 KB frames (default 4096 = 16 MB), shared by that socket's rx and tx:
// the first half circulates through the fill ring, the kernel and the rx
// ring, the second half through a free list, the tx ring and the
// completion ring. Each socket is bound zero-copy (XDP_ZEROCOPY) when the
// program runs native and the driver supports it, otherwise in copy mode
// (ZeroCopy reports which), always with XDP_USE_NEED_WAKEUP. ReadBatch takes
// the queues in turn and hands each frame over in place: Batch.Bufs[i]
// points into the UMEM (the frame with port.Headroom bytes of the kernel's
// 256-byte XDP headroom in front of it, nothing after it), and the frames go
// back to the fill ring at the start of the next ReadBatch. As with an
// afpacket ring, a Batch read from this port must not be given to another
// port's ReadBatch, and nothing may keep a frame past the next read (the
// router copies what it holds); Close leaves the UMEM mapped for the
// reader's last batch, and the reader unmaps it when it sees the close.
// Options.RxCopy copies into the batch instead (the UMEM frame goes back at
// once). With every rx ring empty ReadBatch looks again for Options.Spin
// (default 50 µs) before it blocks in poll(2) on all sockets and an eventfd
// that Close signals (poll is also the fill ring wakeup a zero-copy driver
// may ask for): under load a frame then costs no sleep and wakeup, and the
// reader is not moved by the scheduler onto the CPU that delivers to it.
// WriteBatch copies frames into free tx frames of queue 0's socket,
// publishes them with one tx producer update, and calls sendto(MSG_DONTWAIT)
// to start transmission: always in copy mode (the kernel transmits only
// then), in zero-copy mode only when the driver set need_wakeup. One sendto
// transmits up to 512 frames (XDP_MAX_TX_SKB_BUDGET, Linux 6.17+; older
// kernels send 32 per call and the kick repeats while the ring drains).
// Completed frames return to the free list in batches when the list runs
// short. Steady state allocates nothing.
//
// Transmit still copies (a frame forwarded from another port's UMEM, or a
// batch slot, into this socket's tx frames).
//
// # On veth (this project's test machine, kernel 6.18)
//
//   - The program attaches in native mode; veth has no AF_XDP zero-copy, so
//     the sockets are bound in copy mode.
//   - Nothing is needed on the peer for this port: frames the peer sends
//     reach the native program through the veth's NAPI (enabled by the
//     program itself), and AF_XDP copy-mode transmit goes out as an
//     ordinary skb. (An XDP program or GRO on the peer is only needed for
//     frames *redirected* into a veth by XDP, which this port never does.)
//   - A native program makes the kernel turn off software GSO on the peer
//     and cap the peer's MTU at about 3.5 KB; a larger MTU makes native
//     attach fail (ERANGE) and Open falls back to generic mode, where frames
//     larger than a UMEM frame (4096 minus the 256-byte XDP headroom) and GSO
//     super-frames are dropped (counter rx-dropped).
//   - A sender in the same host with checksum offload (the default on veth)
//     leaves TCP/UDP checksums partial, and AF_XDP frames carry no metadata
//     saying so. ReadBatch completes an IPv4 TCP/UDP checksum whose field
//     equals the pseudo-header sum (see completePartial; counter
//     csum-completed). Without that, TCP through the router fails.
//   - An 802.1Q tag in the frame bytes passes both ways. A tag the sender
//     keeps in skb metadata (a Linux VLAN device on the peer, a NIC's
//     rx-vlan-offload) is not in the bytes XDP sees: on a NIC, turn it off
//     (ethtool -K DEV rxvlan off).
//
// Offloads is false: AF_XDP frames carry no GSO metadata, so the router
// segments super-frames for this port, and only plain frames are sent.
//
// # Counters
//
// The kernel's per-socket statistics (XDP_STATISTICS, summed over the
// port's sockets: rx-dropped, rx-ring-full, rx-invalid-descs,
// tx-invalid-descs, fill-ring-empty, tx-ring-empty) and the driver's own
// (tx-too-big, tx-ring-full, csum-completed, tx-kicks, tx-kick-errors,
// rx-polls, rx-no-headroom); see Descs.
package afxdp
