package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// variant is one vrouter under test as -drivers names it:
//
//	[LABEL=]DRIVER[:wN][@BIN]
//
// DRIVER is the ports' driver, :wN sets [router] workers = N, @BIN runs
// another vrouter binary (an A/B comparison of two builds in one run).
// LABEL names it in the report (default DRIVER[:wN]; give one when two
// variants differ by their binary only).
type variant struct {
	label, driver, bin string
	workers            int
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
		n, err := strconv.Atoi(strings.TrimPrefix(opt, "w"))
		if !strings.HasPrefix(opt, "w") || err != nil || n < 1 || n > 64 {
			return v, fmt.Errorf("-drivers %q: option %q: want wN (workers, 1..64)", spec, opt)
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
