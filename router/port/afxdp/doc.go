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
// the queues in turn, copies each frame into the batch slot at
// port.Headroom and gives the UMEM frame straight back to the fill ring (one
// producer update per batch); with every rx ring empty it blocks in poll(2)
// on all sockets and an eventfd that Close signals (poll is also the fill
// ring wakeup a zero-copy driver may ask for). WriteBatch copies frames into
// free tx frames of queue 0's socket, publishes them with one tx producer
// update, and calls sendto(MSG_DONTWAIT) to start transmission: always in
// copy mode (the kernel transmits only then, a few dozen frames per call, so
// it repeats while the ring drains), in zero-copy mode only when the driver
// set need_wakeup. Completed frames return to the free list in batches when
// the list runs short. Steady state allocates nothing.
//
// Frames are copied into the batch rather than handed over in place: a
// batch slot pointing into UMEM would have to stay valid until the router
// is done with the batch and must never be filled by another port, which
// port.Batch cannot express today. Measured on veth (BenchmarkVeth,
// 1500-byte frames) the receive copy is about a quarter of the reader's
// CPU and 6% of the whole (the transmit copy as much again); a zero-copy
// hand-over needs a Batch that knows whose buffers it holds.
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
// rx-polls); see Descs.
package afxdp
