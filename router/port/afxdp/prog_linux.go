package afxdp

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Modes an XDP program runs in.
const (
	ModeNative  = "native"  // in the driver (XDP_FLAGS_DRV_MODE)
	ModeGeneric = "generic" // on the kernel's skb path (XDP_FLAGS_SKB_MODE)
)

// offRxQueueIndex is the offset of rx_queue_index in struct xdp_md.
const offRxQueueIndex = 16

// xdpProgram is the XDP program and its XSKMAP.
type xdpProgram struct {
	xsks *ebpf.Map
	prog *ebpf.Program
	link link.Link
	mode string
}

// loadProgram creates an XSKMAP of n entries and the program that hands
// every frame to the socket of its rx queue:
//
//	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
//
// The low bits of the flags argument are the action when the queue has no
// socket in the map (XDP_PASS: the kernel gets the frame). Written with the
// asm package so that building needs no C compiler.
func loadProgram(n int) (*xdpProgram, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       "vrouter_xsks",
		Type:       ebpf.XSKMap,
		KeySize:    4,
		ValueSize:  4,
		MaxEntries: uint32(n),
	})
	if err != nil {
		return nil, fmt.Errorf("creating the XSKMAP: %w", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "vrouter_xsk",
		Type: ebpf.XDP,
		Instructions: asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, offRxQueueIndex, asm.Word),
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Imm(asm.R3, 2), // XDP_PASS
			asm.FnRedirectMap.Call(),
			asm.Return(),
		},
		License: "Dual MIT/GPL",
	})
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("loading the XDP program: %w", err)
	}
	return &xdpProgram{xsks: m, prog: prog}, nil
}

// attach links the program to the interface (a BPF link: it goes away with
// the process, whatever happens). mode "" tries native, then generic.
func (x *xdpProgram) attach(ifindex int, mode string) (nativeErr error, err error) {
	if mode == "" || mode == ModeNative {
		l, err := link.AttachXDP(link.XDPOptions{Program: x.prog, Interface: ifindex, Flags: link.XDPDriverMode})
		if err == nil {
			x.link, x.mode = l, ModeNative
			return nil, nil
		}
		if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST) || mode == ModeNative {
			return nil, attachError(ModeNative, err)
		}
		nativeErr = attachError(ModeNative, err)
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: x.prog, Interface: ifindex, Flags: link.XDPGenericMode})
	if err != nil {
		return nativeErr, attachError(ModeGeneric, err)
	}
	x.link, x.mode = l, ModeGeneric
	return nativeErr, nil
}

func attachError(mode string, err error) error {
	switch {
	case errors.Is(err, unix.EBUSY), errors.Is(err, unix.EEXIST):
		return fmt.Errorf("attaching the XDP program (%s mode): another XDP program is attached to the device (see `ip link show`; remove it with `ip link set dev DEV xdp off`): %w", mode, err)
	case errors.Is(err, unix.ERANGE):
		return fmt.Errorf("attaching the XDP program (%s mode): the MTU is too large for it (a veth, or its peer, allows about 3.5 KB in native mode): %w", mode, err)
	case errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("attaching the XDP program (%s mode): the driver does not support it: %w", mode, err)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("attaching the XDP program (%s mode) needs CAP_NET_ADMIN and CAP_BPF (run as root): %w", mode, err)
	}
	return fmt.Errorf("attaching the XDP program (%s mode): %w", mode, err)
}

// close detaches and releases everything.
func (x *xdpProgram) close() error {
	var err error
	if x.link != nil {
		err = x.link.Close()
		x.link = nil
	}
	if x.prog != nil {
		x.prog.Close()
		x.prog = nil
	}
	if x.xsks != nil {
		x.xsks.Close()
		x.xsks = nil
	}
	return err
}
