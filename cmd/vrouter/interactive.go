package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/term"

	"vrouter/internal/lineedit"
	"vrouter/router"
)

// console is the interactive session: the command tree comes from
// router.Commands(), names (ports, networks, addresses) from the router.
type console struct {
	cl    *client
	names names
	out   io.Writer
}

// names is the answer of the router's _names command.
type names struct {
	Router    string   `json:"router"`
	Ports     []string `json:"ports"`
	Networks  []string `json:"networks"`
	Addresses []string `json:"addresses"`
	Runtime   []string `json:"runtime_routes"`
}

func (c *console) refreshNames() {
	if s, err := c.cl.do([]string{"_names"}, true); err == nil {
		json.Unmarshal([]byte(s), &c.names)
	}
}

func visible() []router.Command {
	var out []router.Command
	for _, cmd := range router.Commands() {
		if !strings.HasPrefix(cmd.Words[0], "_") {
			out = append(out, cmd)
		}
	}
	return out
}

// argNames gives the names an argument of cmd can take.
func (c *console) argNames(words []string) []string {
	key := strings.Join(words, " ")
	switch key {
	case "capture":
		return c.names.Ports
	case "show bridge":
		return c.names.Networks
	case "show ip route", "show conntrack", "clear conntrack":
		if key == "show ip route" {
			return append([]string{"summary"}, c.names.Addresses...)
		}
		return c.names.Addresses
	case "ip route del":
		return c.names.Runtime
	}
	return nil
}

// next lists what can follow the complete words typed so far.
func (c *console) next(words []string) (cands []string, help map[string]string) {
	help = map[string]string{}
	for _, cmd := range append(visible(), router.Command{Words: []string{"help"}, Help: "list commands; help COMMAND for one"},
		router.Command{Words: []string{"quit"}, Help: "leave the console"}) {
		if len(words) < len(cmd.Words) && prefixWords(cmd.Words, words) {
			w := cmd.Words[len(words)]
			if _, ok := help[w]; !ok {
				cands = append(cands, w)
				if len(cmd.Words) == len(words)+1 {
					help[w] = cmd.Help
				} else {
					help[w] = "..."
				}
			}
		}
		if len(words) >= len(cmd.Words) && prefixWords(words, cmd.Words) && len(words) == len(cmd.Words) {
			for _, n := range c.argNames(cmd.Words) {
				cands = append(cands, n)
				help[n] = ""
			}
			if cmd.Args != "" {
				help["<"+cmd.Args+">"] = cmd.Help
			}
		}
	}
	if len(words) > 0 && words[0] == "help" && len(words) == 1 {
		for _, cmd := range visible() {
			cands = append(cands, cmd.Words[0])
		}
	}
	sort.Strings(cands)
	return cands, help
}

func prefixWords(long, short []string) bool {
	for i := range short {
		if long[i] != short[i] {
			return false
		}
	}
	return true
}

func (c *console) complete(line string) []string {
	words := strings.Fields(line)
	if len(words) > 0 && words[0] == "-j" {
		words = words[1:]
	}
	if !strings.HasSuffix(line, " ") && len(words) > 0 {
		words = words[:len(words)-1]
	}
	cands, _ := c.next(words)
	return cands
}

func (c *console) help(line string) string {
	words := strings.Fields(line)
	if len(words) > 0 && words[0] == "-j" {
		words = words[1:]
	}
	partial := ""
	if !strings.HasSuffix(line, " ") && len(words) > 0 {
		partial = words[len(words)-1]
		words = words[:len(words)-1]
	}
	cands, help := c.next(words)
	var sb strings.Builder
	for _, w := range cands {
		if strings.HasPrefix(w, partial) {
			fmt.Fprintf(&sb, "  %-22s %s\n", w, help[w])
		}
	}
	for k, v := range help {
		if strings.HasPrefix(k, "<") {
			fmt.Fprintf(&sb, "  %-22s %s\n", k, v)
		}
	}
	if sb.Len() == 0 {
		return "  <cr>\n"
	}
	return sb.String()
}

func (c *console) helpText(words []string) string {
	var sb strings.Builder
	for _, cmd := range visible() {
		if len(words) > 0 && !prefixWords(cmd.Words, words[:min(len(words), len(cmd.Words))]) {
			continue
		}
		syn := strings.Join(cmd.Words, " ")
		if cmd.Args != "" {
			syn += " " + cmd.Args
		}
		fmt.Fprintf(&sb, "  %-34s %s\n", syn, cmd.Help)
	}
	if sb.Len() == 0 {
		return fmt.Sprintf("no command %q\n", strings.Join(words, " "))
	}
	if len(words) == 0 {
		sb.WriteString("  help [COMMAND]                     this list\n  quit                               leave (also Ctrl-D)\n" +
			"Put -j before a show command for JSON. Tab completes, ? lists what can follow.\n")
	}
	return sb.String()
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
func interactive(cl *client, in *os.File, out io.Writer) int {
	c := &console{cl: cl, out: out}
	c.refreshNames()
	tty := term.IsTerminal(int(in.Fd()))
	name := c.names.Router
	if name == "" {
		name = "vrouter"
	}
	ed, err := lineedit.New(in, out, lineedit.Config{Prompt: name + "> ", HistoryFile: historyFile(),
		Complete: c.complete, Help: c.help})
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
			fmt.Fprint(out, c.helpText(words[1:]))
			continue
		}
		js := false
		if words[0] == "-j" {
			js, words = true, words[1:]
		}
		res, err := cl.do(words, js)
		fmt.Fprint(out, res)
		if err != nil {
			fmt.Fprintln(out, "error:", err)
		}
		c.refreshNames()
	}
}
