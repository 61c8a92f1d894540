package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"

	"vrouter/config"
	"vrouter/console"
	"vrouter/control"
	"vrouter/ha"
	"vrouter/router"
	"vrouter/router/port"
)

var filepathGlob = filepath.Glob

func cmdRun(args []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	file := fs.String("c", "", "configuration file")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (pprof) to this file until the router stops")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *file == "" {
		fmt.Fprintln(os.Stderr, "vrouter run: -c FILE is required")
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "vrouter run: bad -log-level:", *logLevel)
		return 2
	}
	hopts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, hopts)
	if *logFormat == "json" {
		h = slog.NewJSONHandler(os.Stderr, hopts)
	} else if *logFormat != "text" {
		fmt.Fprintln(os.Stderr, "vrouter run: bad -log-format:", *logFormat)
		return 2
	}
	log := slog.New(h)
	slog.SetDefault(log)

	cfg, ok := loadConfig(*file)
	if !ok {
		return 1
	}
	ports, err := openPorts(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vrouter:", err)
		return 1
	}
	r, err := router.New(cfg, ports, router.Options{Logger: log.With("router", cfg.Router.Name), Open: func(pc config.Port) (port.Port, error) { return openPortQueues(pc, cfg.Router.Workers) },
		Host: hostSystem(cfg, log)})
	if err != nil {
		closePorts(ports)
		fmt.Fprintln(os.Stderr, "vrouter:", err)
		return 1
	}
	reload := func() (string, error) {
		ncfg, err := config.Load(*file)
		if err != nil {
			r.ReloadFailed(err)
			log.Error("reload rejected; the running configuration is unchanged", "err", err)
			return "", fmt.Errorf("reload rejected, running configuration unchanged:\n%v", err)
		}
		sum, err := r.Reconfigure(ncfg)
		if err != nil {
			log.Error("reload failed; the running configuration is unchanged", "err", err)
			return "", fmt.Errorf("reload failed, running configuration unchanged: %v", err)
		}
		log.Info("reloaded", "file", *file, "changes", sum)
		return "reloaded " + *file + ": " + sum, nil
	}
	stopKernel, kernelStats, err := startKernelImport(cfg, r, log)
	if err != nil {
		r.Stop()
		fmt.Fprintln(os.Stderr, "vrouter:", err)
		return 1
	}
	stop := func() {
		if stopKernel != nil {
			stopKernel()
		}
		r.Stop()
	}
	con := console.New(r, console.Options{Reload: reload, KernelStats: kernelStats})
	sock := cfg.SocketPath()
	ctl, err := control.Listen(sock, con.Exec)
	if err != nil {
		stop()
		fmt.Fprintln(os.Stderr, "vrouter:", err)
		return 1
	}
	defer ctl.Close()
	if cfg.Router.Metrics != "" {
		ms, err := console.ServeMetrics(cfg.Router.Metrics, r)
		if err != nil {
			stop()
			fmt.Fprintln(os.Stderr, "vrouter:", err)
			return 1
		}
		defer ms.Close()
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			log.Error("cpu profile", "err", err)
		} else {
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	r.Start()
	if cfg.HA.Enabled() {
		// Session sync: a UDP socket on [ha] local, which the kernel holds
		// on the host interface of its network (config checks there is one).
		conn, err := ha.ListenUDP(cfg.HA.Local, cfg.HA.Peer, cfg.HA.Port)
		if err == nil {
			err = r.StartHA(conn)
		}
		if err != nil {
			ctl.Close()
			stop()
			fmt.Fprintln(os.Stderr, "vrouter:", err)
			return 1
		}
		log.Info("ha: session sync", "local", cfg.HA.Local, "peer", cfg.HA.Peer, "port", cfg.HA.Port, "state", r.HA().State)
	}
	log.Info("running", "ports", len(ports), "networks", len(cfg.Networks), "console", sock)

	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	for s := range sig {
		if s == syscall.SIGHUP {
			reload()
			continue
		}
		log.Info("stopping", "signal", s.String())
		break
	}
	ctl.Close()
	stop()
	return 0
}

func closePorts(ps []port.Port) {
	for _, p := range ps {
		p.Close()
	}
}
