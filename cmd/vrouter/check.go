package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"vrouter/config"
)

// loadConfig loads FILE and prints every problem as FILE:LINE:COL: message.
func loadConfig(file string) (*config.Config, bool) {
	cfg, err := config.Load(file)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				fmt.Fprintln(os.Stderr, e.Error())
			}
		} else {
			fmt.Fprintln(os.Stderr, err)
		}
		return nil, false
	}
	return cfg, true
}

func cmdCheck(args []string) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	file := fs.String("c", "", "configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *file == "" {
		fmt.Fprintln(os.Stderr, "vrouter check: -c FILE is required")
		return 2
	}
	cfg, ok := loadConfig(*file)
	if !ok {
		return 1
	}
	fmt.Printf("%s: ok (%d ports, %d networks, %d IPv4 and %d IPv6 routes)\n", *file, len(cfg.Ports), len(cfg.Networks), len(cfg.Routes), len(cfg.Routes6))
	return 0
}
