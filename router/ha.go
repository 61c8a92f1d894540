package router

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"vrouter/config"
	"vrouter/ha"
	"vrouter/internal/counter"
)

// High availability: the state keepalived gives the router (`ha state`),
// what it changes in the data path, and the session sync engine (package
// ha).
//
//   - master: answers ARP for the NAT addresses that are not its own
//     (floating IPs, SNAT and forward addresses: snapshot.haShared), creates
//     NAT sessions, and sends its sessions to the peer. Becoming master
//     announces every address with gratuitous ARP at once (its own, the
//     shared ones and the VIPs keepalived added on host interfaces), so the
//     neighbours move to this router's MAC.
//   - backup and fault: silent for the shared addresses (counted as
//     ha-backup-arp), no new NAT sessions (nat-ha-backup), but sessions
//     synced from the master still translate, so traffic that arrives
//     early during a takeover passes.
//
// Without [ha] the router is standalone and behaves as a master that syncs
// with nobody.

// HA states.
const (
	haStandalone uint32 = iota
	haMaster
	haBackup
	haFault
)

var haNames = [...]string{"standalone", config.HAMaster, config.HABackup, config.HAFault}

// haState is the router's HA bookkeeping.
type haState struct {
	state  atomic.Uint32
	engine atomic.Pointer[ha.Engine]
	cfg    config.HA

	mu          sync.Mutex // transitions
	since       time.Time
	prev, cause string
	transitions uint64
	garpTimer   *time.Timer
}

// initHA sets the initial state from [ha] (New).
func (r *Router) initHA(cfg *config.Config) {
	h := &r.ha
	h.since = time.Now()
	if !cfg.HA.Enabled() {
		return
	}
	h.cfg = cfg.HA
	r.NAT.EnableSync()
	st := haBackup
	switch cfg.HA.Initial {
	case config.HAMaster:
		st = haMaster
	case config.HAFault:
		st = haFault
	}
	h.state.Store(st)
	h.cause = "initial state ([ha] initial)"
	r.NAT.SetPassive(st != haMaster)
}

// haSilent reports whether the router must not answer ARP for ip on
// network slot: a shared NAT address while it is not the master.
func (r *Router) haSilent(s *snapshot, slot uint16, ip uint32) bool {
	st := r.ha.state.Load()
	if st == haStandalone || st == haMaster {
		return false
	}
	_, shared := s.haShared[uint64(slot)<<32|uint64(ip)]
	return shared
}

// SetHAState sets the HA state ("master", "backup" or "fault"); cause says
// who asked (shown by show ha). Setting the current state again changes
// nothing but is not an error (keepalived repeats itself).
func (r *Router) SetHAState(state, cause string) error {
	h := &r.ha
	if !h.cfg.Enabled() {
		return fmt.Errorf("high availability is off: the configuration has no [ha] section")
	}
	name, err := config.ParseHAState(state)
	if err != nil {
		return err
	}
	var st uint32
	for i, n := range haNames {
		if n == name {
			st = uint32(i)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.state.Load()
	if old == st {
		return nil
	}
	// Order matters when taking over: sessions may translate and new
	// ones be made before the neighbours learn the new MAC.
	r.NAT.SetPassive(st != haMaster)
	h.state.Store(st)
	if e := h.engine.Load(); e != nil {
		e.SetMaster(st == haMaster)
	}
	h.prev, h.cause, h.since = haNames[old], cause, time.Now()
	h.transitions++
	r.log.Info("ha: state change", "from", haNames[old], "to", name, "cause", cause)
	if st == haMaster && !r.started.IsZero() && !r.stopped.Load() {
		r.announce()
		// Once more a moment later: a single gratuitous ARP may be lost.
		if h.garpTimer != nil {
			h.garpTimer.Stop()
		}
		h.garpTimer = time.AfterFunc(300*time.Millisecond, func() {
			if r.ha.state.Load() == haMaster && !r.stopped.Load() {
				r.announce()
			}
		})
	}
	return nil
}

// StartHA runs the session sync over conn (a UDP socket on [ha] local, or
// an in-memory link in tests). The router must have [ha].
func (r *Router) StartHA(conn ha.Conn) error {
	h := &r.ha
	if !h.cfg.Enabled() {
		return fmt.Errorf("high availability is off: the configuration has no [ha] section")
	}
	e := ha.New(r.NAT, conn, ha.Options{Key: h.cfg.Key, NetSig: r.netSignature(), Clock: r.clock, Logger: r.log})
	h.mu.Lock()
	e.SetMaster(h.state.Load() == haMaster)
	if !h.engine.CompareAndSwap(nil, e) {
		h.mu.Unlock()
		return fmt.Errorf("ha: sync already running")
	}
	h.mu.Unlock()
	e.Start()
	return nil
}

func (r *Router) stopHA() {
	if e := r.ha.engine.Swap(nil); e != nil {
		e.Stop()
	}
	r.ha.mu.Lock()
	if r.ha.garpTimer != nil {
		r.ha.garpTimer.Stop()
	}
	r.ha.mu.Unlock()
}

// netSignature hashes the network names by slot: both routers of a pair
// must number their networks alike, since sessions name networks by slot.
func (r *Router) netSignature() uint32 {
	s := r.snap.Load()
	names := make([]string, 0, len(s.slots))
	for n := range s.slots {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return s.slots[names[i]] < s.slots[names[j]] })
	f := fnv.New32a()
	for _, n := range names {
		fmt.Fprintf(f, "%d=%s;", s.slots[n], n)
	}
	return f.Sum32()
}

func (r *Router) haCounters() []counter.Value {
	if e := r.ha.engine.Load(); e != nil {
		return e.Counters()
	}
	return ha.Zero()
}

// HAInfo is what show ha reports.
type HAInfo struct {
	Enabled       bool
	State         string // standalone, master, backup, fault
	Since         time.Time
	Previous      string // the state before the last transition ("" if none)
	Cause         string // who set the state
	Transitions   uint64
	Local, Peer   netip.Addr
	Port          int
	Authenticated bool // [ha] key is set
	Sessions      int  // in the conntrack table now
	Syncing       bool // the sync engine runs
	Sync          ha.Stats
	QueueFull     uint64
}

// HA returns the HA state and the sync's counters.
func (r *Router) HA() HAInfo {
	h := &r.ha
	h.mu.Lock()
	info := HAInfo{Enabled: h.cfg.Enabled(), State: haNames[h.state.Load()], Since: h.since, Previous: h.prev,
		Cause: h.cause, Transitions: h.transitions, Local: h.cfg.Local, Peer: h.cfg.Peer, Port: h.cfg.Port,
		Authenticated: h.cfg.Key != nil, Sessions: r.NAT.Len()}
	h.mu.Unlock()
	if e := h.engine.Load(); e != nil {
		info.Syncing, info.Sync = true, e.Stats()
	}
	info.QueueFull = r.NAT.SyncQueueFull()
	return info
}
