package main

import (
	"log/slog"

	"vrouter/config"
	"vrouter/router"
	"vrouter/router/hostif"
)

// hostSystem is what creates the networks' host interfaces (TAPs in the
// router's namespace, their addresses, the netlink watch); nil with a
// warning when netlink cannot be opened (host interfaces then fail to open
// with a clear error).
func hostSystem(cfg *config.Config, log *slog.Logger) router.HostSystem {
	hs, err := hostif.New(hostif.Options{Name: cfg.Router.Name, Logger: log})
	if err != nil {
		log.Warn("host interfaces unavailable", "err", err)
		return nil
	}
	return hs
}
