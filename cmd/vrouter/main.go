// Command vrouter is the userspace IPv4 router: run, check, console, version.
package main

import (
	"fmt"
	"os"
)

const usage = `usage:
  vrouter run -c FILE [-log-format text|json] [-log-level debug|info|warn|error]
  vrouter check -c FILE
  vrouter console [-s SOCKET] [-c FILE] [-j] [COMMAND...]
  vrouter version
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var code int
	switch os.Args[1] {
	case "run":
		code = cmdRun(os.Args[2:])
	case "check":
		code = cmdCheck(os.Args[2:])
	case "console":
		code = cmdConsole(os.Args[2:])
	case "version", "-v", "--version":
		code = cmdVersion()
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "vrouter: unknown command %q\n%s", os.Args[1], usage)
		code = 2
	}
	os.Exit(code)
}
