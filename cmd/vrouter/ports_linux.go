package main

import (
	"context"
	"fmt"
	"log/slog"

	"vrouter/config"
	"vrouter/fib"
	"vrouter/router"
	"vrouter/router/port"
	"vrouter/router/port/afpacket"
	"vrouter/router/port/afxdp"
	"vrouter/router/port/tap"
)

// openPorts opens every [[port]]; on error the ones already open are closed.
// With [router] workers > 1 an afpacket port gets that many receive queues
// (PACKET_FANOUT), each read by a worker of its own.
func openPorts(cfg *config.Config) ([]port.Port, error) {
	var out []port.Port
	for _, pc := range cfg.Ports {
		p, err := openPortQueues(pc, cfg.Router.Workers)
		if err != nil {
			closePorts(out)
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// openPortQueues opens a port with n receive queues where the driver has
// them (afpacket fanout); n <= 1 is one queue.
func openPortQueues(pc config.Port, n int) (port.Port, error) {
	if pc.Driver != "afpacket" || n <= 1 {
		return openPort(pc)
	}
	qs, err := afpacket.OpenQueues(pc.Name, pc.Device, n, afpacketOptions(pc))
	if err != nil {
		return nil, err
	}
	ps := make([]port.Port, len(qs))
	for i, q := range qs {
		ps[i] = q
	}
	return port.Queues(ps), nil
}

func afpacketOptions(pc config.Port) afpacket.Options {
	var mac [6]byte
	copy(mac[:], pc.MAC)
	return afpacket.Options{MAC: mac, MTU: pc.MTU, Offloads: !pc.NoOffloads}
}

func openPort(pc config.Port) (port.Port, error) {
	var mac [6]byte
	copy(mac[:], pc.MAC)
	switch pc.Driver {
	case "afpacket":
		return afpacket.Open(pc.Name, pc.Device, afpacketOptions(pc))
	case "afxdp":
		p, err := afxdp.Open(pc.Name, pc.Device, afxdp.Options{MAC: mac, MTU: pc.MTU})
		if err != nil {
			return nil, err
		}
		bind := "copy"
		if p.ZeroCopy() {
			bind = "zero-copy"
		}
		if err := p.NativeError(); err != nil {
			slog.Warn("afxdp: native XDP unavailable on the device, using generic (skb) mode: slower, and frames larger than a UMEM frame (GSO super-frames) are dropped",
				"port", pc.Name, "device", pc.Device, "native-error", err)
		}
		slog.Info("afxdp port open", "port", pc.Name, "device", pc.Device, "xdp-mode", p.Mode(), "bind", bind, "queues", p.Queues())
		return p, nil
	case "tap":
		return tap.Open(pc.Name, pc.Device, tap.Options{MAC: mac, MTU: pc.MTU, Persist: pc.Persist, Offloads: !pc.NoOffloads})
	case "pipe":
		return nil, fmt.Errorf("port %q: driver \"pipe\" exists only in tests and benchmarks", pc.Name)
	default:
		return nil, fmt.Errorf("port %q: driver %q is not available", pc.Name, pc.Driver)
	}
}

// startKernelImport follows kernel routing table [fib] kernel_table (of the
// router's network namespace) into the FIB. It returns the function that
// stops it and the source of its counters (for show ip route summary); both
// nil when no table is followed.
func startKernelImport(cfg *config.Config, r *router.Router, log *slog.Logger) (stop func(), stats func() any, err error) {
	if cfg.FIB.KernelTable <= 0 {
		return nil, nil, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := fib.WatchKernel(ctx, r.FIB, fib.KernelOptions{
		Table:    cfg.FIB.KernelTable,
		Resolve:  r.ResolveGateway,
		Table6:   r.FIB6,
		Resolve6: r.ResolveGateway6,
		// Routes through a host interface ("dev NAME", no gateway) are
		// connected routes of its network.
		Device:  r.ResolveDevice,
		OnError: func(err error) { log.Warn("kernel route import", "table", cfg.FIB.KernelTable, "err", err) },
	})
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("[fib] kernel_table %d: %v", cfg.FIB.KernelTable, err)
	}
	r.SetKernelResync(w.Resync)
	st := w.Stats()
	log.Info("importing kernel routes", "table", cfg.FIB.KernelTable, "routes", st.Routes, "skipped", st.Skipped)
	return func() { cancel(); <-w.Done() }, func() any { return w.Stats() }, nil
}
