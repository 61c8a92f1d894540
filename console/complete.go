package console

import (
	"fmt"
	"sort"
	"strings"
)

// Names are what the arguments of commands complete to, as the hidden
// _names command sends them to the interactive client.
type Names struct {
	Router    string   `json:"router"`
	Ports     []string `json:"ports"`
	Networks  []string `json:"networks"`
	Addresses []string `json:"addresses"` // router addresses and neighbours
	Runtime   []string `json:"runtime_routes"`
	Filters   []string `json:"filters,omitempty"`
}

func (c *Console) cmdNames(args []string, js bool) (string, error) {
	n := c.r.Names()
	if n.RuntimeRoutes == nil {
		n.RuntimeRoutes = []string{} // [] rather than null
	}
	return toJSON(Names{Router: n.Router, Ports: n.Ports, Networks: n.Networks, Addresses: n.Addresses, Runtime: n.RuntimeRoutes,
		Filters: n.Filters})
}

// of returns the names of kind k.
func (n *Names) of(k NameKind) []string {
	switch k {
	case PortNames:
		return n.Ports
	case NetworkNames:
		return n.Networks
	case AddressNames:
		return n.Addresses
	case RuntimeNames:
		return n.Runtime
	case FilterNames:
		return n.Filters
	case CommandNames:
		var out []string
		for i := range commands {
			if !commands[i].Hidden() {
				out = append(out, commands[i].Words[0])
			}
		}
		return out
	}
	return nil
}

// next lists what can follow the complete words typed so far (sorted,
// without duplicates), with a help text for each; the argument synopsis of a
// command typed in full is a help key of its own, "<ARGS>".
func (n *Names) next(words []string) (cands []string, help map[string]string) {
	help = map[string]string{}
	add := func(w, h string) {
		if _, ok := help[w]; !ok {
			cands = append(cands, w)
			help[w] = h
		}
	}
	for i := range commands {
		cmd := &commands[i]
		if cmd.Hidden() {
			continue
		}
		if len(words) < len(cmd.Words) && hasPrefix(cmd.Words, words) {
			if len(cmd.Words) == len(words)+1 {
				add(cmd.Words[len(words)], cmd.Help)
			} else {
				add(cmd.Words[len(words)], "...")
			}
		}
		if len(words) == len(cmd.Words) && hasPrefix(words, cmd.Words) {
			for _, name := range n.of(cmd.Names) {
				add(name, "")
			}
			if cmd.Args != "" {
				help["<"+cmd.Args+">"] = cmd.Help
			}
		}
	}
	sort.Strings(cands)
	return cands, help
}

// commandWords drops a leading -j and, unless line ends in a space, the
// partial last word (returned separately).
func commandWords(line string) (words []string, partial string) {
	words = strings.Fields(line)
	if len(words) > 0 && words[0] == "-j" {
		words = words[1:]
	}
	if !strings.HasSuffix(line, " ") && len(words) > 0 {
		partial = words[len(words)-1]
		words = words[:len(words)-1]
	}
	return words, partial
}

// Complete returns the candidates for the last word of line (Tab): command
// words, or the names an argument takes.
func (n *Names) Complete(line string) []string {
	words, _ := commandWords(line)
	cands, _ := n.next(words)
	return cands
}

// Help describes what can follow line ('?'): each candidate starting with
// the partial last word with its help, and the argument synopsis of a
// command typed in full; "<cr>" when nothing can follow.
func (n *Names) Help(line string) string {
	words, partial := commandWords(line)
	cands, help := n.next(words)
	var sb strings.Builder
	for _, w := range cands {
		if strings.HasPrefix(w, partial) {
			fmt.Fprintf(&sb, "  %-22s %s\n", w, help[w])
		}
	}
	var syn []string
	for k := range help {
		if strings.HasPrefix(k, "<") {
			syn = append(syn, k)
		}
	}
	sort.Strings(syn)
	for _, k := range syn {
		fmt.Fprintf(&sb, "  %-22s %s\n", k, help[k])
	}
	if sb.Len() == 0 {
		return "  <cr>\n"
	}
	return sb.String()
}

// HelpText is the text of the help command: every command, or those that
// start with words.
func HelpText(words []string) string {
	var sb strings.Builder
	for i := range commands {
		cmd := &commands[i]
		if cmd.Hidden() || len(words) > 0 && !hasPrefix(cmd.Words, words[:min(len(words), len(cmd.Words))]) {
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
		sb.WriteString("Add -j to a command (before or after it) for JSON. Tab completes, ? lists what can follow.\n")
	}
	return sb.String()
}
