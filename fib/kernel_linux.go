package fib

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// KernelOptions configures WatchKernel.
type KernelOptions struct {
	// Table is the kernel routing table to import (e.g. 100).
	Table int
	// Resolve gives the vrouter network a gateway address (IPv4, host order)
	// is on. A route whose gateway is on no network is skipped and counted.
	// Called from the watcher's goroutine only.
	Resolve func(gw uint32) (network uint16, ok bool)
	// Device, if set, gives the vrouter network of a kernel interface (by
	// index) for routes without a gateway, which are then installed as
	// connected routes; if nil such routes are skipped and counted.
	Device func(ifindex int) (network uint16, ok bool)
	// FlushInterval is the longest time events wait before they are
	// published as one batch (default 5 ms). Under a flood of events the
	// FIB is updated at most once per interval.
	FlushInterval time.Duration
	// MaxBatch publishes earlier when this many changes are pending
	// (default 65536).
	MaxBatch int
	// OnError, if set, is told about netlink errors (they are also counted).
	OnError func(error)
}

// KernelStats counts what the kernel import did.
type KernelStats struct {
	Imported   uint64 `json:"imported"`   // routes installed or replaced (dump and events)
	Deleted    uint64 `json:"deleted"`    // delete events received
	Skipped    uint64 `json:"skipped"`    // routes not installed (all reasons below)
	NoGateway  uint64 `json:"no_gateway"` // unicast route without gateway (and no Device mapping)
	Unresolved uint64 `json:"unresolved"` // gateway on no vrouter network
	OtherType  uint64 `json:"other_type"` // local, broadcast, multicast, ... routes
	Events     uint64 `json:"events"`     // route messages of the table received after the dump
	Errors     uint64 `json:"errors"`     // netlink errors (a lost subscription is resynced)
	Resyncs    uint64 `json:"resyncs"`    // full re-dumps (lost subscription, or Resync)
	Batches    uint64 `json:"batches"`    // publishes to the FIB
	Routes     int    `json:"routes"`     // kernel routes in the FIB now
}

// KernelWatcher follows one kernel routing table. Create it with WatchKernel.
type KernelWatcher struct {
	t   *Table
	opt KernelOptions
	ns  netns.NsHandle
	h   *netlink.Handle

	imported, deleted, noGW, unresolved, otherType atomic.Uint64
	events, errs, resyncs, batches                 atomic.Uint64

	done   chan struct{}
	resync chan struct{}
	mu     sync.Mutex
	err    error
}

// WatchKernel imports the IPv4 routes of kernel table opt.Table of the
// network namespace of the calling thread into t as Source Kernel and then
// follows the table's changes until ctx is done. It subscribes to route
// events before dumping the table, so no change is lost, installs the dump
// (replacing any previous kernel routes) before it returns, and then applies
// events in batches on its own goroutine. If the subscription is lost (for
// example the socket buffer overflowed) it subscribes and dumps again.
//
// Next hops: unicast routes through a gateway get the network Resolve gives
// (KindGateway); blackhole, unreachable and prohibit routes become
// KindDrop, KindUnreachable and KindProhibit. For a multipath route the
// first next hop that resolves is used. One route per prefix is kept: the
// last one added or replaced; deleting a route of the prefix removes it.
func WatchKernel(ctx context.Context, t *Table, opt KernelOptions) (*KernelWatcher, error) {
	if opt.Resolve == nil {
		return nil, errors.New("fib: WatchKernel needs a Resolve function")
	}
	if opt.Table <= 0 {
		return nil, fmt.Errorf("fib: invalid kernel table %d", opt.Table)
	}
	if opt.FlushInterval <= 0 {
		opt.FlushInterval = 5 * time.Millisecond
	}
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = 65536
	}
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("fib: current network namespace: %w", err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("fib: netlink: %w", err)
	}
	w := &KernelWatcher{t: t, opt: opt, ns: ns, h: h, done: make(chan struct{}), resync: make(chan struct{}, 1)}
	ch, stop, err := w.sync(ctx)
	if err != nil {
		h.Close()
		ns.Close()
		return nil, err
	}
	go w.run(ctx, ch, stop)
	return w, nil
}

// Resync makes the watcher dump the table again and replace all kernel
// routes with the result, resolving every gateway anew (call it after the
// router's networks changed, e.g. on reload). It returns at once.
func (w *KernelWatcher) Resync() {
	select {
	case w.resync <- struct{}{}:
	default:
	}
}

// Done is closed when the watcher has stopped.
func (w *KernelWatcher) Done() <-chan struct{} { return w.done }

// Err returns why the watcher stopped (nil before it stops, ctx.Err() after
// a normal stop).
func (w *KernelWatcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Stats returns the counters.
func (w *KernelWatcher) Stats() KernelStats {
	s := KernelStats{
		Imported: w.imported.Load(), Deleted: w.deleted.Load(),
		NoGateway: w.noGW.Load(), Unresolved: w.unresolved.Load(), OtherType: w.otherType.Load(),
		Events: w.events.Load(), Errors: w.errs.Load(), Resyncs: w.resyncs.Load(), Batches: w.batches.Load(),
	}
	s.Skipped = s.NoGateway + s.Unresolved + s.OtherType
	s.Routes = w.t.Stats().Routes[Kernel]
	return s
}

// sync subscribes, dumps the table and installs the dump.
func (w *KernelWatcher) sync(ctx context.Context) (chan netlink.RouteUpdate, chan struct{}, error) {
	ch := make(chan netlink.RouteUpdate, 8192)
	stop := make(chan struct{})
	ns := w.ns
	err := netlink.RouteSubscribeWithOptions(ch, stop, netlink.RouteSubscribeOptions{
		Namespace:         &ns,
		ReceiveBufferSize: 32 << 20,
		// needs CAP_NET_ADMIN; without it the kernel caps the size and a
		// flood can overflow sooner (then we resync)
		ReceiveBufferForceSize: true,
		ErrorCallback: func(err error) {
			w.errs.Add(1)
			if w.opt.OnError != nil {
				w.opt.OnError(err)
			}
		},
	})
	if err != nil {
		// retry without forcing the buffer size (no CAP_NET_ADMIN)
		ch = make(chan netlink.RouteUpdate, 8192)
		err = netlink.RouteSubscribeWithOptions(ch, stop, netlink.RouteSubscribeOptions{
			Namespace:         &ns,
			ReceiveBufferSize: 32 << 20,
			ErrorCallback: func(err error) {
				w.errs.Add(1)
				if w.opt.OnError != nil {
					w.opt.OnError(err)
				}
			},
		})
	}
	if err != nil {
		return nil, nil, fmt.Errorf("fib: subscribe to route events: %w", err)
	}
	var routes []Route
	for try := 0; ; try++ {
		routes = routes[:0]
		err = w.h.RouteListFilteredIter(netlink.FAMILY_V4, &netlink.Route{Table: w.opt.Table}, netlink.RT_FILTER_TABLE,
			func(r netlink.Route) bool {
				if rt, ok := w.convert(&r); ok {
					routes = append(routes, rt)
				}
				return true
			})
		if err == nil || !errors.Is(err, netlink.ErrDumpInterrupted) || try == 5 || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		drop(ch, stop)
		return nil, nil, fmt.Errorf("fib: dump of kernel table %d: %w", w.opt.Table, err)
	}
	w.t.ReplaceSource(Kernel, routes)
	w.imported.Add(uint64(len(routes)))
	w.batches.Add(1)
	return ch, stop, nil
}

// convert turns a kernel route into a FIB route; false if it is skipped
// (and counted).
func (w *KernelWatcher) convert(r *netlink.Route) (Route, bool) {
	p, ok := routePrefix(r)
	if !ok {
		return Route{}, false
	}
	rt := Route{Prefix: p, Source: Kernel}
	switch r.Type {
	case unix.RTN_BLACKHOLE:
		rt.NH = NextHop{Kind: KindDrop}
	case unix.RTN_UNREACHABLE:
		rt.NH = NextHop{Kind: KindUnreachable}
	case unix.RTN_PROHIBIT:
		rt.NH = NextHop{Kind: KindProhibit}
	case unix.RTN_UNICAST:
		gws := make([]net.IP, 0, 1+len(r.MultiPath))
		links := []int{r.LinkIndex}
		if r.Gw != nil {
			gws = append(gws, r.Gw)
		}
		for _, m := range r.MultiPath {
			if m.Gw != nil {
				gws = append(gws, m.Gw)
			}
			links = append(links, m.LinkIndex)
		}
		if len(gws) == 0 {
			if w.opt.Device != nil {
				for _, l := range links {
					if l == 0 {
						continue
					}
					if n, ok := w.opt.Device(l); ok {
						rt.NH = NextHop{Kind: KindConnected, Network: n}
						return rt, true
					}
				}
			}
			w.noGW.Add(1)
			return Route{}, false
		}
		for _, g := range gws {
			g4 := g.To4()
			if g4 == nil {
				continue
			}
			a := uint32(g4[0])<<24 | uint32(g4[1])<<16 | uint32(g4[2])<<8 | uint32(g4[3])
			if n, ok := w.opt.Resolve(a); ok {
				rt.NH = NextHop{Kind: KindGateway, Network: n, Gateway: a}
				return rt, true
			}
		}
		w.unresolved.Add(1)
		return Route{}, false
	default:
		w.otherType.Add(1)
		return Route{}, false
	}
	return rt, true
}

// routePrefix returns the IPv4 destination of r (nil Dst: the default route).
func routePrefix(r *netlink.Route) (netip.Prefix, bool) {
	if r.Family != 0 && r.Family != netlink.FAMILY_V4 {
		return netip.Prefix{}, false
	}
	if r.Dst == nil {
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0), true
	}
	ip4 := r.Dst.IP.To4()
	ones, bits := r.Dst.Mask.Size()
	if ip4 == nil || bits != 32 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte(ip4)), ones).Masked(), true
}

func (w *KernelWatcher) run(ctx context.Context, ch chan netlink.RouteUpdate, stop chan struct{}) {
	defer close(w.done)
	defer w.h.Close()
	defer w.ns.Close()
	var pending []Update
	last := time.Now()
	var timer *time.Timer
	var timerC <-chan time.Time
	flush := func() {
		if timer != nil {
			timer.Stop()
			timerC = nil
		}
		if len(pending) > 0 {
			w.t.Apply(pending)
			w.batches.Add(1)
			clear(pending)
			pending = pending[:0]
		}
		last = time.Now()
	}
	// handle queues one event; it reports false when the channel closed.
	handle := func(u netlink.RouteUpdate, ok bool) bool {
		if !ok {
			return false
		}
		if u.Table != w.opt.Table {
			return true
		}
		p, pok := routePrefix(&u.Route)
		if !pok {
			return true
		}
		w.events.Add(1)
		switch u.Type {
		case unix.RTM_NEWROUTE:
			if rt, ok := w.convert(&u.Route); ok {
				pending = append(pending, Update{Route: rt})
				w.imported.Add(1)
			} else {
				// a replace by a route we cannot use removes the old one
				pending = append(pending, Update{Route: Route{Prefix: p, Source: Kernel}, Delete: true})
			}
		case unix.RTM_DELROUTE:
			pending = append(pending, Update{Route: Route{Prefix: p, Source: Kernel}, Delete: true})
			w.deleted.Add(1)
		}
		return true
	}
	for {
		select {
		case <-ctx.Done():
			drop(ch, stop)
			flush()
			w.setErr(ctx.Err())
			return
		case <-timerC:
			timerC = nil
			flush()
		case <-w.resync:
			drop(ch, stop)
			flush()
			if !w.resubscribe(ctx, &ch, &stop) {
				return
			}
			last = time.Now()
		case u, ok := <-ch:
			alive := handle(u, ok)
		drain:
			for alive && len(pending) < w.opt.MaxBatch {
				select {
				case u, ok := <-ch:
					alive = handle(u, ok)
				default:
					break drain
				}
			}
			if !alive {
				// subscription lost: apply what we have, then start over
				drop(ch, stop)
				flush()
				if !w.resubscribe(ctx, &ch, &stop) {
					return
				}
				last = time.Now()
				continue
			}
			if since := time.Since(last); since >= w.opt.FlushInterval || len(pending) >= w.opt.MaxBatch {
				flush()
			} else if timerC == nil {
				if timer == nil {
					timer = time.NewTimer(w.opt.FlushInterval - since)
				} else {
					timer.Reset(w.opt.FlushInterval - since)
				}
				timerC = timer.C
			}
		}
	}
}

// drop ends a subscription: it closes its socket and drains its channel so
// that its goroutine, if blocked on a send, can exit.
func drop(ch chan netlink.RouteUpdate, stop chan struct{}) {
	close(stop)
	go func() {
		for range ch {
		}
	}()
}

// resubscribe subscribes and dumps again until it works or ctx is done
// (then it records the error and reports false).
func (w *KernelWatcher) resubscribe(ctx context.Context, ch *chan netlink.RouteUpdate, stop *chan struct{}) bool {
	w.resyncs.Add(1)
	for {
		c, s, err := w.sync(ctx)
		if err == nil {
			*ch, *stop = c, s
			return true
		}
		w.errs.Add(1)
		if w.opt.OnError != nil {
			w.opt.OnError(err)
		}
		select {
		case <-ctx.Done():
			w.setErr(ctx.Err())
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (w *KernelWatcher) setErr(err error) {
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
}
