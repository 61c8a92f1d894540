package console

import (
	"reflect"
	"strings"
	"testing"
)

var testNames = Names{
	Router:    "edge1",
	Ports:     []string{"p1", "p2", "vm"},
	Networks:  []string{"net1", "net2"},
	Addresses: []string{"192.0.2.1", "198.51.100.10"},
	Runtime:   []string{"10.77.0.0/16"},
}

func TestComplete(t *testing.T) {
	n := testNames
	for _, c := range []struct {
		line string
		want []string
	}{
		{"", []string{"capture", "clear", "ha", "help", "ip", "quit", "reload", "show", "trace"}},
		{"sh", []string{"capture", "clear", "ha", "help", "ip", "quit", "reload", "show", "trace"}}, // the editor filters by prefix
		{"show ", []string{"arp", "bridge", "conntrack", "filter", "ha", "host-interfaces", "interfaces", "ip", "ipv6", "nat", "proxy-arp", "stats", "trace"}},
		{"-j show ", []string{"arp", "bridge", "conntrack", "filter", "ha", "host-interfaces", "interfaces", "ip", "ipv6", "nat", "proxy-arp", "stats", "trace"}},
		{"show ip ", []string{"route"}},
		{"show ip route ", []string{"192.0.2.1", "198.51.100.10", "summary"}},
		{"show ip route summary ", nil},
		{"show ipv6 route summary ", nil},
		{"show bridge ", []string{"net1", "net2"}},
		{"capture ", []string{"p1", "p2", "vm"}},
		{"capture p", []string{"p1", "p2", "vm"}},
		{"show conntrack ", []string{"192.0.2.1", "198.51.100.10"}},
		{"clear conntrack ", []string{"192.0.2.1", "198.51.100.10"}},
		{"clear ", []string{"arp", "conntrack", "stats"}},
		{"ip route del ", []string{"10.77.0.0/16"}},
		{"ip route add ", nil},
		{"help ", []string{"capture", "clear", "ha", "help", "ip", "quit", "reload", "show", "trace"}},
		{"_names ", nil},
		{"bogus ", nil},
	} {
		if got := n.Complete(c.line); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Complete(%q) = %q, want %q", c.line, got, c.want)
		}
	}
	var none Names // before the names arrived: commands still complete
	if got := none.Complete("capture "); got != nil {
		t.Errorf("no names: %q", got)
	}
	if got := none.Complete("clear "); len(got) != 3 {
		t.Errorf("no names: %q", got)
	}
}

func TestHelp(t *testing.T) {
	n := testNames
	h := n.Help("show ip route ")
	for _, want := range []string{"<[ADDR | PREFIX]>      the FIB", "summary                route counts", "192.0.2.1"} {
		if !strings.Contains(h, want) {
			t.Errorf("help for 'show ip route ' lacks %q:\n%s", want, h)
		}
	}
	if strings.Count(h, "summary") != 1 {
		t.Errorf("summary listed twice:\n%s", h)
	}
	h = n.Help("show in")
	if h != "  interfaces             ports and networks: driver, device, MAC, MTU, VLAN, state, counters\n" {
		t.Errorf("help for 'show in': %q", h)
	}
	if h = n.Help("show "); !strings.Contains(h, "  ip                     ...\n") {
		t.Errorf("a word that needs more words is shown with ...:\n%s", h)
	}
	if h = n.Help("show interfaces "); h != "  <cr>\n" {
		t.Errorf("help after a complete command: %q", h)
	}
	if h = n.Help(""); strings.Contains(h, "_names") || !strings.Contains(h, "quit") {
		t.Errorf("top-level help:\n%s", h)
	}
	if h = n.Help("help "); strings.Count(h, "  show ") != 1 || !strings.Contains(h, "<[COMMAND]>") {
		t.Errorf("help for 'help ':\n%s", h)
	}
}

func TestHelpText(t *testing.T) {
	all := HelpText(nil)
	for _, cmd := range commands {
		syn := strings.Join(cmd.Words, " ")
		if cmd.Hidden() {
			if strings.Contains(all, syn) {
				t.Errorf("hidden command %q in help", syn)
			}
			continue
		}
		if cmd.Args != "" {
			syn += " " + cmd.Args
		}
		if !strings.Contains(all, "  "+syn+" ") || !strings.Contains(all, cmd.Help) {
			t.Errorf("help lacks %q", syn)
		}
	}
	if !strings.Contains(all, "Add -j to a command (before or after it) for JSON") {
		t.Error("help lacks the -j hint")
	}
	ip := HelpText([]string{"show", "ip"})
	if !strings.Contains(ip, "show ip route summary") || !strings.Contains(ip, "show ip route [ADDR | PREFIX]") || strings.Contains(ip, "show arp") {
		t.Errorf("help show ip:\n%s", ip)
	}
	if got := HelpText([]string{"frobnicate"}); got != "no command \"frobnicate\"\n" {
		t.Errorf("help of an unknown command: %q", got)
	}
}

// TestTable checks the table's invariants: words are unique, every command
// the router runs has a handler, only help and quit are the client's own.
func TestTable(t *testing.T) {
	seen := map[string]bool{}
	for _, cmd := range Commands() {
		key := strings.Join(cmd.Words, " ")
		if seen[key] {
			t.Errorf("command %q twice", key)
		}
		seen[key] = true
		if cmd.Local() != (key == "help" || key == "quit") {
			t.Errorf("command %q: local = %v", key, cmd.Local())
		}
		if !cmd.Hidden() && cmd.Help == "" {
			t.Errorf("command %q has no help", key)
		}
		if cmd.Names != NoNames && cmd.Args == "" {
			t.Errorf("command %q completes arguments it does not take", key)
		}
	}
}

func TestLookup(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"show", "ip", "route"}, "show ip route"},
		{[]string{"show", "ip", "route", "summary"}, "show ip route summary"},
		{[]string{"show", "ipv6", "route", "summary"}, "show ipv6 route summary"},
		{[]string{"show", "ip", "route", "192.0.2.1"}, "show ip route"},
		{[]string{"show", "ip"}, ""},
		{[]string{"help"}, ""}, // the client's own
		{[]string{"quit"}, ""},
		{[]string{"_names"}, "_names"},
	} {
		got := ""
		if cmd := lookup(c.args); cmd != nil {
			got = strings.Join(cmd.Words, " ")
		}
		if got != c.want {
			t.Errorf("lookup(%q) = %q, want %q", c.args, got, c.want)
		}
	}
	var con Console
	if _, err := con.Exec([]string{"show", "bogus"}, false); err == nil || err.Error() != `unknown command "show bogus" (try help)` {
		t.Errorf("unknown command: %v", err)
	}
	if out, err := con.Exec(nil, false); out != "" || err != nil {
		t.Errorf("empty command: %q %v", out, err)
	}
}
