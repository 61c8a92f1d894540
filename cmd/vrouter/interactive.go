package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"vrouter/console"
	"vrouter/control"
	"vrouter/internal/lineedit"
)

// session is the interactive console: the commands, their help and their
// completion come from the console package's table, the names to complete
// (ports, networks, addresses) from the router.
type session struct {
	cl    *control.Client
	names console.Names
}

func (c *session) refreshNames() {
	if s, err := c.cl.Do([]string{"_names"}, true); err == nil {
		var n console.Names
		if json.Unmarshal([]byte(s), &n) == nil {
			c.names = n
		}
	}
}

func historyFile() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "vrouter", "history")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".vrouter_history")
	}
	return ""
}

// interactive runs the console until quit or Ctrl-D.
func interactive(cl *control.Client, in *os.File, out io.Writer) int {
	c := &session{cl: cl}
	c.refreshNames()
	tty := term.IsTerminal(int(in.Fd()))
	name := c.names.Router
	if name == "" {
		name = "vrouter"
	}
	ed, err := lineedit.New(in, out, lineedit.Config{Prompt: name + "> ", HistoryFile: historyFile(),
		Complete: func(line string) []string { return c.names.Complete(line) },
		Help:     func(line string) string { return c.names.Help(line) }})
	if err != nil {
		fmt.Fprintln(os.Stderr, "vrouter console:", err)
		return 1
	}
	defer ed.Close()
	if tty {
		fmt.Fprintf(out, "vrouter console on %s: help lists commands, Tab completes, ? shows what can follow, quit leaves\n", name)
		// Ctrl-C while a command runs must not kill the console.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt)
		defer signal.Stop(sig)
	}
	for {
		line, err := ed.ReadLine()
		if errors.Is(err, lineedit.ErrInterrupt) {
			continue
		}
		if err != nil {
			if tty {
				fmt.Fprintln(out)
			}
			return 0
		}
		words := strings.Fields(line)
		if len(words) == 0 {
			continue
		}
		switch words[0] {
		case "quit", "exit":
			return 0
		case "help":
			fmt.Fprint(out, console.HelpText(words[1:]))
			continue
		}
		js := false
		if words[0] == "-j" {
			js, words = true, words[1:]
		}
		res, err := cl.Do(words, js)
		fmt.Fprint(out, res)
		if err != nil {
			fmt.Fprintln(out, "error:", err)
		}
		c.refreshNames()
	}
}
