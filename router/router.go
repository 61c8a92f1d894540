// Package router is the data path: it reads batches of frames from ports,
// runs each batch to completion through the pipeline (pipeline.go holds the
// stage order) and writes the results to the egress ports. api.go is the
// API the control plane (package console) reads and commands it through.
package router

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"vrouter/arp"
	"vrouter/config"
	"vrouter/fib"
	"vrouter/fib6"
	"vrouter/internal/clock"
	"vrouter/nat"
	"vrouter/packet"
	"vrouter/router/port"
)

// portState is an opened port and its counters.
type portState struct {
	idx  int
	name string
	p    port.Port
	mac  packet.MAC
	mtu  int
	// offloads: the port takes GSO super-frames and partial checksums
	// (port.Port.Offloads); others get them segmented and completed.
	offloads bool
	// queues are the port's receive queues (port.Multi), p first; each
	// has a worker, and a worker sends through the egress port's queue
	// of its own index.
	queues []port.Port

	rxPackets, rxBytes atomic.Uint64
	txPackets, txBytes atomic.Uint64
	txErrors           atomic.Uint64
	drops              atomic.Uint64

	capture atomic.Pointer[capture]

	cfg    config.Port // as configured (to tell unchanged ports on reload)
	closed atomic.Bool // removed by a reload (or stopped)
	host   *hostIf     // a network's host interface (hostif.go), nil for a configured port

	// devLost: the supervisor found the device gone, or gone and created
	// again, and has not reopened the port yet (supervise.go); Ports says
	// "lost".
	devLost atomic.Bool
}

// Options are the router's dependencies.
type Options struct {
	Clock     clock.Clock
	Logger    *slog.Logger
	BatchSize int
	// Open opens a port a reload adds or changes; nil means port changes
	// need a restart.
	Open func(config.Port) (port.Port, error)
	// Host creates the host interfaces of networks with `host` (hostif.go);
	// nil: such networks are an error.
	Host HostSystem
}

// Router is one running router instance.
type Router struct {
	opts  Options
	clock clock.Clock
	log   *slog.Logger

	mu    sync.Mutex   // serialises reload/start/stop and control-plane changes
	ports []*portState // every port ever opened (append-only; indices are stable); under mu
	snap  atomic.Pointer[snapshot]

	FIB   *fib.Table
	FIB6  *fib6.Table
	Neigh *arp.Cache // both families' neighbours
	NAT   *nat.NAT

	wmu      sync.Mutex // guards workers and qworkers (appended by reloads)
	workers  []*worker  // the worker of each port's first queue, indexed like ports
	qworkers []*worker  // the workers of ports' other queues (port.Multi)
	nworkers atomic.Int32
	ctl      *worker    // worker used by timers and the control plane
	ctlMu    sync.Mutex // guards ctl

	wg      sync.WaitGroup
	stop    chan struct{}
	stopped atomic.Bool

	reloads    atomic.Uint64
	lastReload atomic.Pointer[string]
	started    time.Time
	// workersStarted numbers the workers for pin_workers' round robin.
	workersStarted atomic.Int64
	trace          tracer
	arpLimit       arpLimit // arplimit.go

	kernelResync atomic.Pointer[func()]
	ra           raTimers      // periodic router advertisements (ndp.go)
	hostState    hostState     // under mu
	ha           haState       // high availability (ha.go)
	sp           *sharedPoller // [router] shared_poll (sharedpoll.go); nil when off
}

// New builds a router for cfg over already opened ports (keyed by port name).
// cfg has its defaults applied (config.Load does; see config.ApplyDefaults).
func New(cfg *config.Config, ports []port.Port, opts Options) (*Router, error) {
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = port.DefaultBatch
	}
	r := &Router{opts: opts, clock: opts.Clock, log: opts.Logger, FIB: fib.New(), FIB6: fib6.New(), stop: make(chan struct{})}
	for i, p := range ports {
		ps := newPortState(i, p)
		if pc := portConfig(cfg, p.Name()); pc != nil {
			ps.cfg = *pc
		}
		r.ports = append(r.ports, ps)
	}
	r.Neigh = arp.New(neighConfig(cfg))
	pl, err := compile(cfg, r.ports, nil)
	if err != nil {
		return nil, err
	}
	if pl, err = r.syncHosts(cfg, &r.ports, new([]*portState), new([]*portState), pl); err != nil {
		return nil, err
	}
	if r.NAT, err = nat.New(cfg, pl.snap.nat); err != nil {
		return nil, err
	}
	r.publish(pl)
	r.initHA(cfg)
	if cfg.Router.SharedPoll {
		if r.sp, err = newSharedPoller(); err != nil {
			return nil, fmt.Errorf("shared_poll: %w", err)
		}
	}
	r.ctl = r.newWorker(-1, 0)
	for i := range r.ports {
		r.workers = append(r.workers, r.newWorker(i, 0))
	}
	for _, p := range r.ports {
		r.addQueueWorkers(p)
	}
	r.nworkers.Store(int32(len(r.workers) + len(r.qworkers)))
	if cfg.Router.Workers > 0 {
		runtime.GOMAXPROCS(cfg.Router.Workers)
	}
	return r, nil
}

// neighConfig maps [neighbor] to the cache's settings (config fills the
// defaults; see config.ApplyDefaults).
func neighConfig(cfg *config.Config) arp.Config {
	n := cfg.Neighbor
	return arp.Config{Max: n.Max, ReachableTime: n.ReachableTime, StaleTime: n.StaleTime,
		RetransTime: n.RetransTime, Retries: n.Retries, QueueLen: n.QueueLen}
}

// publish makes a compiled plan the running configuration, in an order
// that workers can never observe half done: first the snapshot (networks,
// memberships, addresses and NAT rules, one atomic store), then the FIB's
// connected and static routes (one batch), static neighbours, forgetting
// the neighbours of removed networks, and the NAT's sessions that the new
// rules no longer allow. Networks keep their slots (see snapshot), so a
// packet that meets the new snapshot and a route of the old FIB, or the
// reverse, still reaches the network the route was made for (or is dropped
// as route-stale when that network is gone). The filter rulesets travel in
// the snapshot; the counters of unchanged rulesets carry over. It returns
// what the NAT flushed and the sessions the new filters no longer accept
// ("" when nothing).
func (r *Router) publish(pl *plan) string {
	old := r.snap.Load()
	r.snap.Store(pl.snap)
	if old != nil && !pl.keepRuntime {
		// Runtime routes (ip route add) last until the next reload (CONFIG.md).
		pl.routes[fib.Runtime] = nil
		pl.routes6[fib.Runtime] = nil
	}
	r.FIB.ReplaceSources(pl.routes)
	r.FIB6.ReplaceSources(pl.routes6)
	r.Neigh.SetStatic(pl.statics)
	for _, slot := range pl.removed {
		r.Neigh.FlushNetwork(slot)
	}
	if old == nil {
		return ""
	}
	pl.snap.filters.link(old.filters)
	_, why := r.NAT.Commit(pl.snap.nat)
	if fw := r.flushFiltered(pl.snap); fw != "" {
		if why != "" {
			why += "; "
		}
		why += fw
	}
	return why
}

// ReloadFailed records a reload that was rejected before it reached the
// router (an invalid file), for the metrics.
func (r *Router) ReloadFailed(err error) {
	msg := err.Error()
	r.reloads.Add(1)
	r.lastReload.Store(&msg)
}

// Start runs one receive worker per port and the timer loop.
func (r *Router) Start() {
	r.started = time.Now()
	for i, w := range r.workers {
		r.startWorker(w, r.ports[i])
	}
	for _, w := range r.qworkers {
		r.startWorker(w, r.ports[w.id])
	}
	if r.sp != nil {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if r.snap.Load().cfg.Router.PinWorkers {
				pinToCPU(int(r.workersStarted.Add(1) - 1))
			}
			r.runSharedPoll(r.sp)
		}()
	}
	r.wg.Add(3)
	go func() {
		defer r.wg.Done()
		r.timers()
	}()
	go func() {
		defer r.wg.Done()
		r.paceGC() // gcpace.go
	}()
	go func() {
		defer r.wg.Done()
		r.supervise() // supervise.go
	}()
	r.announce()
	r.startHosts()
}

// Stop stops the workers and closes the ports.
func (r *Router) Stop() {
	if r.stopped.Swap(true) {
		return
	}
	close(r.stop)
	if r.sp != nil {
		r.sp.wake()
	}
	r.stopHA()
	r.stopHosts()
	r.mu.Lock()
	ports := r.ports
	r.mu.Unlock()
	for _, p := range ports {
		if p.closed.Swap(true) {
			continue
		}
		if err := p.p.Close(); err != nil {
			r.log.Warn("closing port", "port", p.name, "err", err)
		}
	}
	r.wg.Wait()
	if r.sp != nil {
		r.sp.close()
	}
}

func (r *Router) timers() {
	r.every(100*time.Millisecond, func() bool { r.Tick(); return true })
}

// every calls f every d until Stop, or until f returns false. The router's
// background loops (timers, supervise, paceGC) run on it.
func (r *Router) every(d time.Duration, f func() bool) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			if !f() {
				return
			}
		}
	}
}

// Tick runs the timers once (neighbour retransmits and ageing). Tests call
// it with a manual clock.
func (r *Router) Tick() {
	r.ctlMu.Lock()
	defer r.ctlMu.Unlock()
	w := r.ctl
	w.begin()
	r.Neigh.TickAll(w.now, arp.Handlers{Request: w.sendARPRequest, Unreachable: w.neighFailed,
		Request6: w.sendNS, Unreachable6: w.neighFailed6})
	r.raTick(w)
	r.NAT.Reap(w.now, 20000)
	w.end()
}

// announce sends gratuitous ARP for every router address and published
// address on every link of its network, except the HA-shared NAT addresses
// while the router is not the master (haSilent): a backup that starts or
// reloads must not pull the master's traffic to itself.
func (r *Router) announce() { r.announceLocked() }

func (r *Router) announceLocked() {
	r.ctlMu.Lock()
	defer r.ctlMu.Unlock()
	w := r.ctl
	w.begin()
	s := w.snap
	s.eachNetwork(func(n *network) {
		for _, a := range n.addrs {
			w.sendGARP(n, a.addr)
		}
	})
	for k := range s.published {
		if n := s.net(uint16(k >> 32)); n != nil && !r.haSilent(s, n.idx, uint32(k)) {
			w.sendGARP(n, uint32(k))
		}
	}
	r.announce6(w)
	w.end()
}

// ErrNoPort is returned for an unknown port name.
var ErrNoPort = errors.New("no such port")

func (r *Router) portByName(name string) (*portState, error) {
	for _, p := range r.snap.Load().ports {
		if p.name == name && !p.closed.Load() {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrNoPort, name)
}

func portConfig(cfg *config.Config, name string) *config.Port {
	for i := range cfg.Ports {
		if cfg.Ports[i].Name == name {
			return &cfg.Ports[i]
		}
	}
	return nil
}

func samePort(a, b config.Port) bool {
	a.Pos, b.Pos = config.Pos{}, config.Pos{}
	return reflect.DeepEqual(a, b)
}

// newPortState wraps an opened port (index idx in Router.ports).
func newPortState(idx int, p port.Port) *portState {
	ps := &portState{idx: idx, name: p.Name(), p: p, mac: p.MAC(), mtu: p.MTU(), offloads: p.Offloads(),
		queues: []port.Port{p}}
	if m, ok := p.(port.Multi); ok {
		if qs := m.Queues(); len(qs) > 0 {
			ps.queues = qs
		}
	}
	return ps
}

// addQueueWorkers makes the workers of p's queues after the first.
func (r *Router) addQueueWorkers(p *portState) []*worker {
	var ws []*worker
	for q := 1; q < len(p.queues); q++ {
		ws = append(ws, r.newWorker(p.idx, q))
	}
	r.wmu.Lock()
	r.qworkers = append(r.qworkers, ws...)
	r.wmu.Unlock()
	return ws
}

func (r *Router) startWorker(w *worker, p *portState) {
	if r.sp != nil && r.sp.add(w, p) {
		r.log.Info("port served by the shared worker", "port", p.name, "queue", w.q)
		return
	}
	pin := r.snap.Load().cfg.Router.PinWorkers
	n := int(r.workersStarted.Add(1) - 1)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if pin {
			// [router] pin_workers: one CPU per worker, round robin.
			if cpu := pinToCPU(n); cpu >= 0 {
				r.log.Debug("worker pinned", "port", p.name, "queue", w.q, "cpu", cpu)
			} else {
				r.log.Warn("worker could not be pinned to a CPU; running unpinned", "port", p.name, "queue", w.q)
			}
		}
		w.run(p)
	}()
}

// Reconfigure applies a new, validated configuration: ports that did not
// change are kept as they are (no reopen, no packet loss), new or changed
// ports are opened with Options.Open, removed ones are closed; then the
// networks, routes, neighbours and NAT rules are swapped. If a port cannot
// be opened nothing changes. It returns a summary of what changed.
func (r *Router) Reconfigure(cfg *config.Config) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	summary, err := r.reconfigure(cfg)
	msg := "ok"
	if err != nil {
		msg = err.Error()
	}
	r.reloads.Add(1)
	r.lastReload.Store(&msg)
	return summary, err
}

func (r *Router) reconfigure(cfg *config.Config) (string, error) {
	live := map[string]*portState{}
	for _, p := range r.ports {
		if !p.closed.Load() && p.host == nil { // host interfaces: syncHosts
			live[p.name] = p
		}
	}
	// Compile once against the ports as they will be named, before any
	// port is touched: a configuration error must never cost a port.
	var planned []*portState
	for _, pc := range cfg.Ports {
		if p := live[pc.Name]; p != nil {
			planned = append(planned, p)
		} else {
			mtu := pc.MTU
			if mtu == 0 {
				mtu = 1500
			}
			planned = append(planned, &portState{name: pc.Name, mtu: mtu})
		}
	}
	if _, err := compile(cfg, planned, r.snap.Load()); err != nil {
		return "", err
	}
	var opened, removed []*portState
	undo := func() {
		for _, p := range opened {
			p.closed.Store(true)
			p.p.Close()
		}
		for _, p := range removed {
			p.closed.Store(false)
		}
	}
	kept := 0
	for _, pc := range cfg.Ports {
		old := live[pc.Name]
		if old != nil && samePort(old.cfg, pc) {
			kept++
			continue
		}
		if r.opts.Open == nil {
			undo()
			return "", fmt.Errorf("port %q added or changed: this router cannot open ports at run time (restart it)", pc.Name)
		}
		if old != nil {
			// A changed port is closed first: its device may be reused.
			old.closed.Store(true)
			removed = append(removed, old)
			old.p.Close()
		}
		p, err := r.opts.Open(pc)
		if err != nil {
			undo()
			return "", err
		}
		ps := newPortState(len(r.ports)+len(opened), p)
		ps.cfg = pc
		opened = append(opened, ps)
	}
	for name, p := range live {
		if portConfig(cfg, name) == nil {
			p.closed.Store(true)
			removed = append(removed, p)
		}
	}
	all := append(append([]*portState(nil), r.ports...), opened...)
	pl, err := compile(cfg, all, r.snap.Load())
	if err == nil {
		pl, err = r.syncHosts(cfg, &all, &opened, &removed, pl)
	}
	if err != nil {
		undo()
		return "", err
	}
	r.ports = all
	natMsg := r.publish(pl)
	for _, p := range opened {
		w := r.newWorker(p.idx, 0)
		r.wmu.Lock()
		r.workers = append(r.workers, w)
		r.wmu.Unlock()
		qws := r.addQueueWorkers(p)
		r.nworkers.Store(int32(len(r.workers) + len(r.qworkers)))
		if !r.started.IsZero() {
			r.startWorker(w, p)
			for _, qw := range qws {
				r.startWorker(qw, p)
			}
		}
	}
	var names []string
	for _, p := range removed {
		if !containsPort(opened, p.name) {
			names = append(names, "-"+p.name)
		} else {
			names = append(names, "~"+p.name)
		}
		p.p.Close() // a second Close of a changed port is harmless
	}
	for _, p := range opened {
		if !containsPort(removed, p.name) {
			names = append(names, "+"+p.name)
		}
	}
	sum := fmt.Sprintf("ports: %d unchanged", kept)
	if len(names) > 0 {
		sum += ", " + strings.Join(names, " ")
	}
	if natMsg != "" {
		sum += "; " + natMsg
	}
	if haMsg := r.haReloadNote(cfg); haMsg != "" {
		sum += "; " + haMsg
	}
	if on := cfg.Router.SharedPoll; on != (r.sp != nil) {
		msg := fmt.Sprintf("[router] shared_poll = %v: not applied, needs a restart", on)
		r.log.Warn("reload: " + msg)
		sum += "; " + msg
	}
	if !r.started.IsZero() {
		r.announceLocked()
	}
	if f := r.kernelResync.Load(); f != nil {
		(*f)()
	}
	return sum, nil
}

func containsPort(ps []*portState, name string) bool {
	for _, p := range ps {
		if p.name == name {
			return true
		}
	}
	return false
}

// ResolveGateway gives the network a gateway address is on (for routes
// imported from the kernel).
func (r *Router) ResolveGateway(gw uint32) (uint16, bool) {
	ni := r.snap.Load().networkContaining(gw)
	return uint16(ni), ni >= 0
}

// SetKernelResync installs what a reload calls so that imported kernel
// routes are resolved again against the new networks.
func (r *Router) SetKernelResync(f func()) { r.kernelResync.Store(&f) }
