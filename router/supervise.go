package router

// Port supervision: a port opened on an existing kernel device (afpacket,
// afxdp) whose device is deleted goes on reading a dead socket. The
// supervisor looks at every such port's device by name a few times a
// second; when the device is gone it logs it and counts it, and when a
// device of that name is there again (a new interface index) it opens the
// port anew and swaps it in, as a reload swaps a changed port, with a
// back-off while opening fails. The other ports never stop. TAP ports are
// the router's own devices (their VM side going away is a read error the
// worker retries) and are not supervised.

import (
	"errors"
	"time"
)

// superviseEvery is how often the devices are looked at.
const superviseEvery = 250 * time.Millisecond

// deviceIndex returns the interface index of a device of the router's
// namespace, false when there is none (a variable for tests).
var deviceIndex = ifIndex

// indexedPort is a port that knows the index of the device it was opened
// on (afpacket, afxdp): the supervisor compares against that, so a device
// recreated before its first look is noticed too.
type indexedPort interface{ Ifindex() int }

// watched is one supervised port: the index of the device it was opened on.
type watched struct {
	ifindex int
	gone    bool      // the device was missing at the last look
	next    time.Time // no reopen attempt before (back-off)
	backoff time.Duration
}

// supervisedDriver: ports opened on an existing kernel device.
func supervisedDriver(d string) bool { return d == "afpacket" || d == "afxdp" }

// supervise runs until Stop.
func (r *Router) supervise() {
	seen := map[*portState]*watched{}
	r.every(superviseEvery, func() bool {
		r.superviseOnce(seen, time.Now())
		return true
	})
}

// superviseOnce looks at each supervised port's device once.
func (r *Router) superviseOnce(seen map[*portState]*watched, now time.Time) {
	for p := range seen {
		if p.closed.Load() {
			delete(seen, p) // reopened, or removed by a reload
		}
	}
	for _, p := range r.snap.Load().ports {
		if p.closed.Load() || p.host != nil || !supervisedDriver(p.p.Driver()) {
			continue
		}
		dev := p.p.Device()
		w := seen[p]
		idx, ok := deviceIndex(dev)
		if w == nil {
			w = &watched{ifindex: idx}
			if ip, isIdx := p.p.(indexedPort); isIdx && ip.Ifindex() > 0 {
				w.ifindex = ip.Ifindex()
			} else if !ok {
				continue // nothing to compare with until the device is seen
			}
			seen[p] = w
		}
		p.devLost.Store(!ok || idx != w.ifindex) // show interfaces: "lost"
		switch {
		case !ok:
			if !w.gone {
				w.gone = true
				r.ctlCount(CntPortDeviceLost)
				r.log.Warn("port device is gone; the port is down until it comes back", "port", p.name, "device", dev)
			}
		case idx != w.ifindex:
			if now.Before(w.next) {
				continue
			}
			if err := r.reopenPort(p); err != nil {
				if w.backoff == 0 {
					w.backoff = superviseEvery
				} else if w.backoff < 8*time.Second {
					w.backoff *= 2
				}
				w.next = now.Add(w.backoff)
				r.log.Warn("port device is back but the port does not open; retrying", "port", p.name, "device", dev, "err", err, "retry_in", w.backoff)
				continue
			}
			r.ctlCount(CntPortReopened)
			r.log.Info("port device is back; port reopened", "port", p.name, "device", dev, "ifindex", idx)
		case w.gone:
			// Back with the same index: the device was only moved out and
			// in again; the socket still works.
			w.gone = false
		}
	}
}

// ctlCount counts an event of the control plane (the control worker's
// counters, summed with the workers' in show stats).
func (r *Router) ctlCount(c Counter) { r.ctl.scnt[c].Add(1) }

// reopenPort opens port p again on its device (recreated) and puts the new
// port in its place: the networks, routes, runtime routes, neighbours and
// sessions stay; only p's workers and socket are new.
func (r *Router) reopenPort(old *portState) error {
	if r.opts.Open == nil {
		return errNoOpen
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old.closed.Load() || r.stopped.Load() {
		return nil // a reload or Stop got there first
	}
	cfg := r.snap.Load().cfg
	// The old socket is bound to the deleted device: the new one does
	// not conflict with it, so it is opened first and nothing changes if
	// that fails.
	np, err := r.opts.Open(old.cfg)
	if err != nil {
		return err
	}
	ps := newPortState(len(r.ports), np)
	ps.cfg = old.cfg
	carryCounters(old, ps)
	old.closed.Store(true)
	all := append(append([]*portState(nil), r.ports...), ps)
	opened, removed := []*portState{ps}, []*portState{old}
	pl, err := compile(cfg, all, r.snap.Load())
	if err == nil {
		pl, err = r.syncHosts(cfg, &all, &opened, &removed, pl)
	}
	if err != nil {
		old.closed.Store(false)
		np.Close()
		return err
	}
	r.ports = all
	pl.keepRuntime = true
	r.publish(pl)
	w := r.newWorker(ps.idx, 0)
	r.wmu.Lock()
	r.workers = append(r.workers, w)
	r.wmu.Unlock()
	qws := r.addQueueWorkers(ps)
	r.nworkers.Store(int32(len(r.workers) + len(r.qworkers)))
	r.startWorker(w, ps)
	for _, qw := range qws {
		r.startWorker(qw, ps)
	}
	old.p.Close()
	r.announceLocked()
	return nil
}

var errNoOpen = errors.New("this router cannot open ports at run time")

// carryCounters moves the counters of a port to the port that replaces it.
func carryCounters(from, to *portState) {
	to.rxPackets.Store(from.rxPackets.Load())
	to.rxBytes.Store(from.rxBytes.Load())
	to.txPackets.Store(from.txPackets.Load())
	to.txBytes.Store(from.txBytes.Load())
	to.txErrors.Store(from.txErrors.Load())
	to.drops.Store(from.drops.Load())
}
