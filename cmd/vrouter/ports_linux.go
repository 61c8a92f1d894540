package main

import (
	"fmt"
	"log/slog"

	"vrouter/config"
	"vrouter/router"
	"vrouter/router/port"
)

// openPorts opens every [[port]]; on error the ones already open are closed.
func openPorts(cfg *config.Config) ([]port.Port, error) {
	var out []port.Port
	for _, pc := range cfg.Ports {
		p, err := openPort(pc)
		if err != nil {
			closePorts(out)
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func openPort(pc config.Port) (port.Port, error) {
	switch pc.Driver {
	default:
		return nil, fmt.Errorf("port %q: driver %q is not available", pc.Name, pc.Driver)
	}
}

func startKernelImport(cfg *config.Config, r *router.Router, log *slog.Logger) (func(), error) {
	return nil, nil
}
