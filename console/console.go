// Package console is the router's command language: one table of commands
// (commands.go) drives dispatch, the help text, '?' and Tab completion; the
// handlers turn what the router's control API (router/api.go) returns into
// tables or JSON; metrics.go exposes the same counters to Prometheus.
//
// The table and the completion work without a router, so the interactive
// client, which only has the control socket, uses them too: it gets the
// names to complete from the hidden _names command.
package console

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"vrouter/router"
)

// Options are the console's hooks into the program around the router.
type Options struct {
	// Reload re-reads the configuration file and applies it (the reload
	// command); it returns a one-line summary. nil: reload is not available.
	Reload func() (string, error)
	// KernelStats returns the kernel route import counters shown by show ip
	// route summary (marshalled to JSON). nil: no kernel table is followed.
	KernelStats func() any
}

// Console runs commands against one router. It is safe for concurrent use.
type Console struct {
	r    *router.Router
	opts Options
}

// New returns a console for r.
func New(r *router.Router, opts Options) *Console { return &Console{r: r, opts: opts} }

// Exec runs one command (its words) and returns its output, JSON when js
// is set or when one of the words is -j (before or after the command:
// "-j show arp" and "show arp -j" are the same). Commands of the
// interactive client (help, quit) are unknown here. A command that takes no
// arguments refuses extra words rather than ignoring them.
func (c *Console) Exec(args []string, js bool) (string, error) {
	args, js = jsonFlag(args, js)
	if len(args) == 0 {
		return "", nil
	}
	cmd := lookup(args)
	if cmd == nil {
		return "", fmt.Errorf("unknown command %q (try help)", strings.Join(args, " "))
	}
	rest := args[len(cmd.Words):]
	if cmd.Args == "" && len(rest) > 0 && !cmd.Hidden() {
		return "", fmt.Errorf("usage: %s (takes no arguments; %q is extra)", strings.Join(cmd.Words, " "), strings.Join(rest, " "))
	}
	return cmd.run(c, rest, js)
}

// jsonFlag removes the -j words from args; js is then set if there was one.
// args is not modified.
func jsonFlag(args []string, js bool) ([]string, bool) {
	for i, a := range args {
		if a != "-j" {
			continue
		}
		out := append([]string(nil), args[:i]...)
		for _, a := range args[i+1:] {
			if a != "-j" {
				out = append(out, a)
			}
		}
		return out, true
	}
	return args, js
}

// lookup finds the command with the longest words that start args.
func lookup(args []string) *Command {
	var best *Command
	for i := range commands {
		cmd := &commands[i]
		if cmd.run != nil && len(args) >= len(cmd.Words) && hasPrefix(args, cmd.Words) {
			if best == nil || len(cmd.Words) > len(best.Words) {
				best = cmd
			}
		}
	}
	return best
}

// hasPrefix reports whether words starts with prefix.
func hasPrefix(words, prefix []string) bool {
	if len(prefix) > len(words) {
		return false
	}
	for i := range prefix {
		if words[i] != prefix[i] {
			return false
		}
	}
	return true
}

func toJSON(v any) (string, error) {
	// Not HTML-escaped: "10.0.0.1:40000 -> 192.0.2.1:53" stays readable.
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	err := enc.Encode(v) // ends with a newline
	return b.String(), err
}

// done is the answer of a command that acts rather than shows: its message
// as one line, or with -j one JSON object of the message and data.
func done(js bool, msg string, data map[string]any) (string, error) {
	if !js {
		return msg + "\n", nil
	}
	if data == nil {
		data = map[string]any{}
	}
	data["message"] = msg
	return toJSON(data)
}

func table(f func(tw *tabwriter.Writer)) string {
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 4, 2, ' ', 0)
	f(tw)
	tw.Flush()
	return sb.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
