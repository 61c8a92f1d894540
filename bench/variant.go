package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// variant is one vrouter under test as -drivers names it:
//
//	[LABEL=]DRIVER[:wN][:cCPUS][:s][@BIN]
//
// DRIVER is the ports' driver, :wN sets [router] workers = N, :cCPUS runs
// the process on those CPUs only (taskset -c CPUS, a list like 1 or 0-1)
// with [router] pin_workers (a core of its own, as a VPP worker gets one;
// trafgen runs on CPU 0), :s sets [router] shared_poll (one worker serves
// every afxdp port), @BIN runs
// another vrouter binary (an A/B comparison of two builds in one run).
// LABEL names it in the report (default DRIVER[:wN]; give one when two
// variants differ by their binary only).
type variant struct {
	label, driver, bin string
	workers            int
	cpus               string // taskset CPU list; "" = unrestricted
	sharedPoll         bool
}

func parseVariant(spec string) (variant, error) {
	var v variant
	s := spec
	if l, rest, ok := strings.Cut(s, "="); ok {
		v.label, s = l, rest
	}
	if d, bin, ok := strings.Cut(s, "@"); ok {
		if _, err := os.Stat(bin); err != nil {
			return v, fmt.Errorf("-drivers %q: %v", spec, err)
		}
		v.bin, s = bin, d
	}
	parts := strings.Split(s, ":")
	v.driver = parts[0]
	for _, opt := range parts[1:] {
		if opt == "s" {
			v.sharedPoll = true
			continue
		}
		if c, ok := strings.CutPrefix(opt, "c"); ok {
			if c == "" || strings.Trim(c, "0123456789,-") != "" {
				return v, fmt.Errorf("-drivers %q: option %q: want cCPUS (a CPU list as taskset -c takes, e.g. c1)", spec, opt)
			}
			v.cpus = c
			continue
		}
		n, err := strconv.Atoi(strings.TrimPrefix(opt, "w"))
		if !strings.HasPrefix(opt, "w") || err != nil || n < 1 || n > 64 {
			return v, fmt.Errorf("-drivers %q: option %q: want wN (workers, 1..64), cCPUS or s", spec, opt)
		}
		v.workers = n
	}
	switch v.driver {
	case "afpacket", "afxdp":
	default:
		return v, fmt.Errorf("-drivers %q: driver %q: want afpacket or afxdp", spec, v.driver)
	}
	if v.label == "" {
		v.label = s
	}
	if strings.ContainsAny(v.label, "/ \t") {
		return v, fmt.Errorf("-drivers %q: label %q: no slashes or spaces", spec, v.label)
	}
	return v, nil
}
