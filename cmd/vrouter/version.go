package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set with -ldflags "-X main.version=..." by the Makefile.
var version = "dev"

func cmdVersion() int {
	fmt.Printf("vrouter %s\n", version)
	fmt.Printf("go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision", "vcs.time", "vcs.modified", "CGO_ENABLED", "-tags":
				fmt.Printf("%s: %s\n", s.Key, s.Value)
			}
		}
	}
	return 0
}
