package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"vrouter/config"
	"vrouter/console"
	"vrouter/control"
)

// dial connects to the control socket of a running router.
func dial(path string) (*control.Client, error) {
	cl, err := control.Dial(path)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the router at %s: %v (is it running? use -s SOCKET)", path, err)
	}
	return cl, nil
}

func socketPath(sock, file string) (string, error) {
	if sock != "" {
		return sock, nil
	}
	if file != "" {
		cfg, err := config.Load(file)
		if err != nil {
			return "", err
		}
		return cfg.SocketPath(), nil
	}
	// The only socket in /run/vrouter, if there is exactly one.
	m, _ := filepathGlob("/run/vrouter/*.sock")
	if len(m) == 1 {
		return m[0], nil
	}
	if len(m) == 0 {
		return "", errors.New("no router socket in /run/vrouter (is vrouter running? use -s SOCKET)")
	}
	return "", fmt.Errorf("several routers are running (%s): choose one with -s SOCKET", strings.Join(m, ", "))
}

func cmdConsole(args []string) int {
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	sock := fs.String("s", "", "control socket (default: /run/vrouter/NAME.sock)")
	file := fs.String("c", "", "configuration file (to find the socket)")
	js := fs.Bool("j", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	path, err := socketPath(*sock, *file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vrouter console:", err)
		return 1
	}
	cl, err := dial(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vrouter console:", err)
		return 1
	}
	defer cl.Close()
	if fs.NArg() > 0 {
		cmd := fs.Args()
		if len(cmd) == 1 && strings.Contains(cmd[0], " ") {
			cmd = strings.Fields(cmd[0])
		}
		if cmd[0] == "help" {
			fmt.Print(console.HelpText(cmd[1:]))
			return 0
		}
		out, err := cl.Do(cmd, *js)
		fmt.Print(out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			return 1
		}
		return 0
	}
	return interactive(cl, os.Stdin, os.Stdout)
}
