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
	// Device, if set, gives the vrouter network a kernel interface stands
	// for (a network's host interface), by index and name (the name is ""
	// if the interface is gone). A route through such an interface goes to
	// that network: without a gateway (dev NAME) as a connected route, with
	// one (via GW dev NAME) through that gateway, whatever Resolve says of
	// it. Routes through other interfaces are resolved by gateway with
	// Resolve; without a gateway they are skipped and counted. Called from
	// the watcher's goroutine only; names are looked up once per interface
	// and dump (Resync looks them up again).
	Device func(ifindex int, name string) (network uint16, ok bool)
	// FlushInterval is the longest time events wait before they are
	// published as one batch (default 5 ms). Under a flood of events the
	// FIB is updated at most once per interval.
	FlushInterval time.Duration
	// MaxBatch publishes earlier when this many changes are pending
	// (default 65536).
	MaxBatch int
	// OnError, if set, is told about netlink errors (they are also counted).
	OnError func(error)

	// Table6, if set, receives the IPv6 routes of the table (a
	// *fib6.Table), with the same rules as the IPv4 ones: the kernel's
	// choice among the routes of a prefix, Device for host interfaces.
	Table6 Table6
	// Resolve6 gives the vrouter network of an IPv6 gateway that is not
	// through a Device; ifindex is the route's interface (what a
	// link-local gateway needs), 0 if none. Nil: such routes are skipped
	// and counted as unresolved.
	Resolve6 func(gw [16]byte, ifindex int) (network uint16, ok bool)
}

// KernelStats counts what the kernel import did. The counters count routes
// as they are received, in dumps and events: a resync counts the routes of
// its dump again.
type KernelStats struct {
	Imported   uint64 `json:"imported"`   // usable routes received (dump and events)
	Deleted    uint64 `json:"deleted"`    // delete events received
	Skipped    uint64 `json:"skipped"`    // routes not usable (all reasons below)
	NoGateway  uint64 `json:"no_gateway"` // unicast route without gateway (and no Device mapping)
	Unresolved uint64 `json:"unresolved"` // gateway on no vrouter network (or IPv6 gateway, encapsulation, dead next hop)
	OtherType  uint64 `json:"other_type"` // local, broadcast, multicast, ... routes
	Events     uint64 `json:"events"`     // route messages of the table received after the dump
	Errors     uint64 `json:"errors"`     // netlink errors (a lost subscription is resynced)
	Resyncs    uint64 `json:"resyncs"`    // full re-dumps (lost subscription, or Resync)
	Batches    uint64 `json:"batches"`    // publishes to the FIB
	Routes     int    `json:"routes"`     // kernel routes in the FIB now (one per prefix)
	Routes6    int    `json:"routes6"`    // kernel routes in the IPv6 FIB now (one per prefix)

	// Alternates is a gauge: usable routes held but not in the FIB because
	// a route of the same prefix comes first in the kernel's order (lower
	// metric); one of them takes over when that route goes.
	Alternates int64 `json:"alternates"`
	// Alternates6 is the same for IPv6 routes.
	Alternates6 int64 `json:"alternates6"`
	// TOS counts routes with a TOS selector, which apply to some packets
	// only (vrouter routes without regard to TOS): skipped.
	TOS uint64 `json:"tos"`
	// ViaDevice counts usable routes resolved through Device (a host
	// interface), with or without a gateway.
	ViaDevice uint64 `json:"via_device"`
	// Multipath counts usable multipath routes (ip route ... nexthop via A
	// nexthop via B): vrouter uses only the first next hop that resolves
	// (no ECMP); MultipathUnused counts their other next hops, unused.
	Multipath       uint64 `json:"multipath"`
	MultipathUnused uint64 `json:"multipath_unused"`
}

// KernelWatcher follows one kernel routing table. Create it with WatchKernel.
type KernelWatcher struct {
	t   *Table
	opt KernelOptions
	ns  netns.NsHandle
	h   *netlink.Handle

	ks    *kstate
	ks6   *kstateOf[k6, NextHop6] // nil: IPv4 only
	names map[int]string          // interface names for Device, per dump
	lh    *netlink.Handle         // for the names (h may be in the middle of a dump)

	imported, deleted, noGW, unresolved, otherType atomic.Uint64
	events, errs, resyncs, batches                 atomic.Uint64
	tos, viaDev, multipath, mpUnused               atomic.Uint64

	done   chan struct{}
	resync chan struct{}
	mu     sync.Mutex
	err    error
}

// WatchKernel imports the IPv4 routes (and, with opt.Table6, the IPv6
// routes) of kernel table opt.Table of the
// network namespace of the calling thread into t as Source Kernel and then
// follows the table's changes until ctx is done. It subscribes to route
// events before dumping the table, so no change is lost, installs the dump
// (replacing any previous kernel routes) before it returns, and then applies
// events in batches on its own goroutine. If the subscription is lost (for
// example the socket buffer overflowed) it subscribes and dumps again.
//
// Next hops: a unicast route through a host interface (Device) goes to that
// interface's network, as a connected route without a gateway, KindGateway
// with one; other unicast routes through a gateway get the network Resolve
// gives (KindGateway); blackhole, unreachable and prohibit routes become
// KindDrop, KindUnreachable and KindProhibit. Other routes are not usable
// (skipped and counted).
//
// Several routes per prefix (two daemons, a daemon and an operator's route
// at another metric): the import follows the kernel's choice. The kernel
// orders the routes of a prefix by metric, and routes of equal metric as
// ip route prepend/append/replace placed them, and uses the first; the
// import installs the first usable one and holds the others (counted as
// alternates): deleting or replacing the installed route falls back to the
// next one. Routes with a TOS selector are skipped and counted.
//
// Multipath routes (no ECMP): only the first next hop that resolves is
// used; the others are counted (multipath_unused).
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
	w := &KernelWatcher{t: t, opt: opt, ns: ns, h: h, ks: newKState(t), done: make(chan struct{}), resync: make(chan struct{}, 1)}
	if opt.Table6 != nil {
		w.ks6 = newKStateOf[k6, NextHop6](&fam6{t: opt.Table6})
	}
	ch, stop, err := w.sync(ctx)
	if err != nil {
		w.closeLinks()
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
	s.TOS, s.ViaDevice = w.tos.Load(), w.viaDev.Load()
	s.Multipath, s.MultipathUnused = w.multipath.Load(), w.mpUnused.Load()
	s.Skipped = s.NoGateway + s.Unresolved + s.OtherType + s.TOS
	s.Routes = w.t.Stats().Routes[Kernel]
	s.Alternates = w.ks.alternates.Load()
	if w.ks6 != nil {
		s.Routes6 = w.ks6.t.kernelRoutes()
		s.Alternates6 = w.ks6.alternates.Load()
	}
	return s
}

// sync subscribes, dumps the table and installs the dump.
func (w *KernelWatcher) sync(ctx context.Context) (chan netlink.RouteUpdate, chan struct{}, error) {
	ch := make(chan netlink.RouteUpdate, 8192)
	stop := make(chan struct{})
	onErr := func(err error) {
		select {
		case <-stop:
			return // the socket was closed on purpose (drop)
		default:
		}
		w.errs.Add(1)
		if w.opt.OnError != nil {
			w.opt.OnError(err)
		}
	}
	ns := w.ns
	err := netlink.RouteSubscribeWithOptions(ch, stop, netlink.RouteSubscribeOptions{
		Namespace:         &ns,
		ReceiveBufferSize: 32 << 20,
		// needs CAP_NET_ADMIN; without it the kernel caps the size and a
		// flood can overflow sooner (then we resync)
		ReceiveBufferForceSize: true,
		ErrorCallback:          onErr,
	})
	if err != nil {
		// retry without forcing the buffer size (no CAP_NET_ADMIN)
		ch = make(chan netlink.RouteUpdate, 8192)
		err = netlink.RouteSubscribeWithOptions(ch, stop, netlink.RouteSubscribeOptions{
			Namespace:         &ns,
			ReceiveBufferSize: 32 << 20,
			ErrorCallback:     onErr,
		})
	}
	if err != nil {
		return nil, nil, fmt.Errorf("fib: subscribe to route events: %w", err)
	}
	err = dumpFamily(ctx, w, netlink.FAMILY_V4, w.ks, routeKey4, w.convert4)
	if err == nil && w.ks6 != nil {
		err = dumpFamily(ctx, w, netlink.FAMILY_V6, w.ks6, routeKey6, w.convert6)
	}
	if err != nil {
		drop(ch, stop)
		return nil, nil, err
	}
	return ch, stop, nil
}

// dumpFamily dumps the routes of one family of the table and installs
// them (replacing the FIB's kernel routes of that family).
func dumpFamily[K comparable, N comparable](ctx context.Context, w *KernelWatcher, family int, ks *kstateOf[K, N],
	key func(*netlink.Route) (K, bool), conv func(*netlink.Route, bool) krouteOf[N]) error {
	var d *kdumpOf[K, N]
	// the kernel dumps IPv4 routes by address, the routes of a prefix
	// together; IPv6 routes in the order of its tree (the routes of a
	// prefix together, but not by address): group those by a map
	byMap := family == netlink.FAMILY_V6
	var err error
	for try := 0; ; try++ {
		w.names = nil
		d = newKDump(ks, byMap)
		grouped := true
		err = w.h.RouteListFilteredIter(family, &netlink.Route{Table: w.opt.Table}, netlink.RT_FILTER_TABLE,
			func(r netlink.Route) bool {
				k, ok := key(&r)
				if !ok {
					return true
				}
				if r.Tos != 0 {
					w.tos.Add(1)
					return true
				}
				e := conv(&r, true)
				grouped = d.add(k, e)
				return grouped
			})
		if err == nil && !grouped {
			// the routes of a prefix did not come one after the other:
			// dump again, grouping them by a map
			byMap = true
			continue
		}
		if err == nil || !errors.Is(err, netlink.ErrDumpInterrupted) || try == 5 || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("fib: dump of kernel table %d: %w", w.opt.Table, err)
	}
	ks.t.replace(d.end())
	w.batches.Add(1)
	return nil
}

func routeKey4(r *netlink.Route) (uint64, bool) {
	p, ok := routePrefix(r)
	return kkey(p), ok
}

func routeKey6(r *netlink.Route) (k6, bool) {
	p, ok := routePrefix6(r)
	return k6Of(p), ok
}

func (w *KernelWatcher) convert4(r *netlink.Route, count bool) kroute {
	return convertRoute(w, r, count, w.nextHop, func(k Kind) NextHop { return NextHop{Kind: k} })
}

func (w *KernelWatcher) convert6(r *netlink.Route, count bool) krouteOf[NextHop6] {
	return convertRoute(w, r, count, w.nextHop6, func(k Kind) NextHop6 { return NextHop6{Kind: k} })
}

// convertRoute turns a kernel route into the import's form; count: add
// what it is to the counters (a route received, not one deleted). nextHop
// resolves one next hop of the family; kindNH makes a next hop that only
// has a kind.
func convertRoute[N comparable](w *KernelWatcher, r *netlink.Route, count bool,
	nextHop func(gw net.IP, link int) (N, bool, bool), kindNH func(Kind) N) krouteOf[N] {
	e := krouteOf[N]{prio: uint32(r.Priority), id: routeID(r)}
	switch r.Type {
	case unix.RTN_BLACKHOLE:
		e.nh, e.ok = kindNH(KindDrop), true
	case unix.RTN_UNREACHABLE:
		e.nh, e.ok = kindNH(KindUnreachable), true
	case unix.RTN_PROHIBIT:
		e.nh, e.ok = kindNH(KindProhibit), true
	case unix.RTN_UNICAST:
		n, gws := 0, 0
		try := func(gw net.IP, link int, other bool) {
			n++
			if gw != nil || other {
				gws++
			}
			if e.ok || other {
				return
			}
			if nh, ok, dev := nextHop(gw, link); ok {
				e.nh, e.ok = nh, true
				if dev && count {
					w.viaDev.Add(1)
				}
			}
		}
		// a next hop of another family (RTA_VIA) or with an encapsulation
		// is not for vrouter; a dead one (its link is down) the kernel
		// does not use
		if len(r.MultiPath) == 0 {
			try(r.Gw, r.LinkIndex, r.Via != nil || r.Encap != nil || r.Flags&unix.RTNH_F_DEAD != 0)
		}
		for _, m := range r.MultiPath {
			try(m.Gw, m.LinkIndex, m.Via != nil || m.Encap != nil || m.Flags&unix.RTNH_F_DEAD != 0)
		}
		if !count {
			break
		}
		switch {
		case !e.ok && gws == 0:
			w.noGW.Add(1)
		case !e.ok:
			w.unresolved.Add(1)
		case n > 1:
			w.multipath.Add(1)
			w.mpUnused.Add(uint64(n - 1))
		}
	default:
		if count {
			w.otherType.Add(1)
		}
		return e
	}
	if e.ok && count {
		w.imported.Add(1)
	}
	return e
}

// nextHop resolves one next hop of a unicast route: through the network
// of its device (Device), else through its gateway (Resolve).
func (w *KernelWatcher) nextHop(gw net.IP, link int) (nh NextHop, ok, viaDev bool) {
	var a uint32
	g4 := gw.To4()
	if gw != nil && g4 == nil {
		return NextHop{}, false, false // an IPv6 gateway (RFC 5549): not for vrouter
	}
	if g4 != nil {
		a = uint32(g4[0])<<24 | uint32(g4[1])<<16 | uint32(g4[2])<<8 | uint32(g4[3])
	}
	if w.opt.Device != nil && link > 0 {
		if n, ok := w.opt.Device(link, w.linkName(link)); ok {
			if g4 == nil {
				return NextHop{Kind: KindConnected, Network: n}, true, true
			}
			return NextHop{Kind: KindGateway, Network: n, Gateway: a}, true, true
		}
	}
	if g4 == nil {
		return NextHop{}, false, false
	}
	if n, ok := w.opt.Resolve(a); ok {
		return NextHop{Kind: KindGateway, Network: n, Gateway: a}, true, false
	}
	return NextHop{}, false, false
}

// nextHop6 resolves one next hop of an IPv6 unicast route: through the
// network of its device (Device), else through its gateway (Resolve6).
func (w *KernelWatcher) nextHop6(gw net.IP, link int) (nh NextHop6, ok, viaDev bool) {
	if gw != nil && (len(gw) != net.IPv6len || gw.To4() != nil) {
		return NextHop6{}, false, false
	}
	var a [16]byte
	if gw != nil {
		a = [16]byte(gw)
	}
	if w.opt.Device != nil && link > 0 {
		if n, ok := w.opt.Device(link, w.linkName(link)); ok {
			if gw == nil {
				return NextHop6{Kind: KindConnected, Network: n}, true, true
			}
			return NextHop6{Kind: KindGateway, Network: n, Gateway: a}, true, true
		}
	}
	if gw == nil || w.opt.Resolve6 == nil {
		return NextHop6{}, false, false
	}
	if n, ok := w.opt.Resolve6(a, link); ok {
		return NextHop6{Kind: KindGateway, Network: n, Gateway: a}, true, false
	}
	return NextHop6{}, false, false
}

// linkName returns the name of interface index (cached per dump; "" if it
// is gone).
func (w *KernelWatcher) linkName(index int) string {
	if name, ok := w.names[index]; ok {
		return name
	}
	name := ""
	if w.lh == nil {
		if h, err := netlink.NewHandleAt(w.ns, unix.NETLINK_ROUTE); err == nil {
			w.lh = h
		}
	}
	if w.lh != nil {
		if l, err := w.lh.LinkByIndex(index); err == nil {
			name = l.Attrs().Name
		}
	}
	if w.names == nil {
		w.names = map[int]string{}
	}
	w.names[index] = name
	return name
}

func (w *KernelWatcher) closeLinks() {
	if w.lh != nil {
		w.lh.Close()
		w.lh = nil
	}
}

// routeID identifies a route among the routes of its prefix and metric by
// the attributes that tell two such routes apart (never 0).
func routeID(r *netlink.Route) uint64 {
	h := uint64(0x9e3779b97f4a7c15)
	mix := func(v uint64) {
		h = (h ^ v) * 0xbf58476d1ce4e5b9
		h ^= h >> 31
	}
	ipv := func(a net.IP) uint64 {
		if a4 := a.To4(); a4 != nil {
			return 1<<32 | uint64(a4[0])<<24 | uint64(a4[1])<<16 | uint64(a4[2])<<8 | uint64(a4[3])
		}
		v := uint64(len(a)) << 56
		for _, b := range a {
			v = v*31 + uint64(b)
		}
		return v
	}
	mix(uint64(r.Type)<<32 | uint64(r.Protocol)<<8 | uint64(r.Scope))
	mix(ipv(r.Src))
	mix(ipv(r.Gw))
	mix(uint64(r.LinkIndex))
	for _, m := range r.MultiPath {
		mix(ipv(m.Gw))
		mix(uint64(m.LinkIndex)<<8 | uint64(m.Hops))
	}
	if h == 0 {
		h = 1
	}
	return h
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

// routePrefix6 returns the IPv6 destination of r (nil Dst: the default route).
func routePrefix6(r *netlink.Route) (netip.Prefix, bool) {
	if r.Family != netlink.FAMILY_V6 {
		return netip.Prefix{}, false
	}
	if r.Dst == nil {
		return netip.PrefixFrom(netip.IPv6Unspecified(), 0), true
	}
	ones, bits := r.Dst.Mask.Size()
	if len(r.Dst.IP) != net.IPv6len || bits != 128 {
		return netip.Prefix{}, false
	}
	a := netip.AddrFrom16([16]byte(r.Dst.IP))
	if a.Is4In6() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones).Masked(), true
}

// event applies one route notification of a family to its state.
func event[K comparable, N comparable](w *KernelWatcher, ks *kstateOf[K, N], k K, u *netlink.RouteUpdate,
	conv func(*netlink.Route, bool) krouteOf[N]) {
	w.events.Add(1)
	switch u.Type {
	case unix.RTM_NEWROUTE:
		if u.Tos != 0 {
			w.tos.Add(1)
			break
		}
		place := kFirst
		switch {
		case u.NlFlags&unix.NLM_F_REPLACE != 0:
			place = kReplace
		case u.NlFlags&unix.NLM_F_EXCL != 0:
			place = kOnly
		case u.NlFlags&unix.NLM_F_APPEND != 0:
			place = kLast
		}
		ks.add(k, conv(&u.Route, true), place)
	case unix.RTM_DELROUTE:
		w.deleted.Add(1)
		if u.Tos == 0 {
			ks.del(k, conv(&u.Route, false))
		}
	}
}

func (w *KernelWatcher) run(ctx context.Context, ch chan netlink.RouteUpdate, stop chan struct{}) {
	defer close(w.done)
	defer w.closeLinks()
	defer w.h.Close()
	defer w.ns.Close()
	ks := w.ks
	last := time.Now()
	var timer *time.Timer
	var timerC <-chan time.Time
	flush := func() {
		if timer != nil {
			timer.Stop()
			timerC = nil
		}
		if len(ks.pending) > 0 {
			ks.t.apply(ks.pending)
			w.batches.Add(1)
		}
		ks.applied()
		if k6 := w.ks6; k6 != nil {
			if len(k6.pending) > 0 {
				k6.t.apply(k6.pending)
				w.batches.Add(1)
			}
			k6.applied()
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
		if u.Family == netlink.FAMILY_V6 {
			if k, ok := routeKey6(&u.Route); ok && w.ks6 != nil {
				event(w, w.ks6, k, &u, w.convert6)
			}
			return true
		}
		if k, ok := routeKey4(&u.Route); ok {
			event(w, ks, k, &u, w.convert4)
		}
		return true
	}
	pending := func() int {
		n := len(ks.pending)
		if w.ks6 != nil {
			n += len(w.ks6.pending)
		}
		return n
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
			for alive && pending() < w.opt.MaxBatch {
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
			if since := time.Since(last); since >= w.opt.FlushInterval || pending() >= w.opt.MaxBatch {
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
