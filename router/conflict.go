package router

import (
	"sync"
	"time"

	"vrouter/packet"
)

var conflictLog struct {
	sync.Mutex
	last time.Time
}

// conflict logs (at most every 10 s) that another MAC claims our address.
func (r *Router) conflict(network string, ip uint32, mac packet.MAC) {
	conflictLog.Lock()
	defer conflictLog.Unlock()
	if time.Since(conflictLog.last) < 10*time.Second {
		return
	}
	conflictLog.last = time.Now()
	r.log.Warn("address conflict: another host claims a router address",
		"network", network, "ip", packet.Addr(ip).String(), "mac", mac.String())
}
