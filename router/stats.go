package router

import "vrouter/router/port"

// PortStats are the counters of one port as the router sees them.
type PortStats struct {
	Name        string     `json:"name"`
	Driver      string     `json:"driver"`
	Device      string     `json:"device"`
	MAC         string     `json:"mac"`
	MTU         int        `json:"mtu"`
	RxPackets   uint64     `json:"rx_packets"`
	RxBytes     uint64     `json:"rx_bytes"`
	TxPackets   uint64     `json:"tx_packets"`
	TxBytes     uint64     `json:"tx_bytes"`
	Drops       uint64     `json:"drops"`
	TxErrors    uint64     `json:"tx_errors"`
	DeviceStats port.Stats `json:"device_stats"`
}

// Drops returns the drop counters summed over workers.
func (r *Router) Drops() [NumDropReasons]uint64 {
	var out [NumDropReasons]uint64
	for _, w := range r.allWorkers() {
		for i := range out {
			out[i] += w.sdrops[i].Load()
		}
	}
	return out
}

// Counters returns the other counters summed over workers.
func (r *Router) Counters() [NumCounters]uint64 {
	var out [NumCounters]uint64
	for _, w := range r.allWorkers() {
		for i := range out {
			out[i] += w.scnt[i].Load()
		}
	}
	return out
}

// ClearStats zeroes the router's counters.
func (r *Router) ClearStats() {
	for _, w := range r.allWorkers() {
		for i := range w.sdrops {
			w.sdrops[i].Store(0)
		}
		for i := range w.scnt {
			w.scnt[i].Store(0)
		}
	}
	for _, p := range r.snap.Load().ports {
		p.rxPackets.Store(0)
		p.rxBytes.Store(0)
		p.txPackets.Store(0)
		p.txBytes.Store(0)
		p.txErrors.Store(0)
		p.drops.Store(0)
	}
}

func (r *Router) allWorkers() []*worker {
	r.wmu.Lock()
	ws := append([]*worker{}, r.workers...)
	r.wmu.Unlock()
	if r.ctl != nil {
		ws = append(ws, r.ctl)
	}
	return ws
}

// Ports returns the per-port counters.
func (r *Router) Ports() []PortStats {
	var out []PortStats
	for _, p := range r.snap.Load().ports {
		if p.closed.Load() {
			continue
		}
		m := p.mac.String()
		out = append(out, PortStats{Name: p.name, Driver: p.p.Driver(), Device: p.p.Device(), MAC: m, MTU: p.mtu,
			RxPackets: p.rxPackets.Load(), RxBytes: p.rxBytes.Load(), TxPackets: p.txPackets.Load(),
			TxBytes: p.txBytes.Load(), Drops: p.drops.Load(), TxErrors: p.txErrors.Load(), DeviceStats: p.p.Stats()})
	}
	return out
}
