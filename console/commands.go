package console

// Command is one console command.
type Command struct {
	Words []string // fixed words, e.g. {"show", "ip", "route"}
	Args  string   // argument synopsis, e.g. "[ADDR | PREFIX]"
	Help  string   // one line
	Names NameKind // what the arguments complete to
	// run executes the command on the router; nil for the commands of the
	// interactive client itself (help, quit).
	run func(c *Console, args []string, js bool) (string, error)
}

// Hidden reports whether the command is left out of help and completion
// (its first word starts with '_': commands for the client's own use).
func (cmd *Command) Hidden() bool { return cmd.Words[0][0] == '_' }

// Local reports whether the interactive client runs the command itself.
func (cmd *Command) Local() bool { return cmd.run == nil }

// NameKind is the kind of names a command's arguments complete to.
type NameKind uint8

const (
	NoNames      NameKind = iota
	PortNames             // the router's ports
	NetworkNames          // its networks
	AddressNames          // its addresses and its neighbours'
	RuntimeNames          // runtime routes (ip route add)
	CommandNames          // the first words of the commands
	FilterNames           // filter rulesets
)

// commands is the command table. Adding a command means adding a line here
// (and its handler): dispatch, help, '?' and Tab completion all read it.
// Where several commands start with the same words, the longest match runs.
var commands = []Command{
	{Words: []string{"show", "interfaces"}, Help: "ports and networks: driver, device, MAC, MTU, VLAN, state, counters", run: (*Console).cmdInterfaces},
	{Words: []string{"show", "ip", "route", "summary"}, Help: "route counts by source and prefix length, FIB memory", run: (*Console).cmdRouteSummary},
	{Words: []string{"show", "ip", "route"}, Args: "[ADDR | PREFIX]", Names: AddressNames, Help: "the FIB; with an address, the route it matches", run: (*Console).cmdRoute},
	{Words: []string{"show", "arp"}, Help: "neighbour cache", run: (*Console).cmdARP},
	{Words: []string{"show", "ipv6", "route", "summary"}, Help: "IPv6 route counts by source and prefix length, FIB6 memory", run: (*Console).cmdRoute6Summary},
	{Words: []string{"show", "ipv6", "route"}, Args: "[ADDR | PREFIX]", Names: AddressNames, Help: "the IPv6 FIB; with an address, the route it matches", run: (*Console).cmdRoute6},
	{Words: []string{"show", "ipv6", "neighbors"}, Help: "IPv6 neighbour cache (neighbour discovery)", run: (*Console).cmdNeighbors6},
	{Words: []string{"show", "proxy-arp"}, Help: "addresses answered on behalf of others", run: (*Console).cmdProxyARP},
	{Words: []string{"show", "bridge"}, Args: "[NETWORK]", Names: NetworkNames, Help: "MAC addresses learned on multi-link networks", run: (*Console).cmdBridge},
	{Words: []string{"show", "host-interfaces"}, Help: "each network's host interface: kernel name, addresses (static and kernel-added), punted/injected packets", run: (*Console).cmdHostInterfaces},
	{Words: []string{"show", "stats"}, Help: "global counters and drop reasons", run: (*Console).cmdStats},
	{Words: []string{"clear", "stats"}, Help: "zero the counters", run: (*Console).cmdClearStats},
	{Words: []string{"clear", "arp"}, Help: "forget learned neighbours (static entries stay)", run: (*Console).cmdClearARP},
	{Words: []string{"ip", "route", "add"}, Args: "PREFIX via ADDR", Help: "add a runtime route (lost on reload unless in the file)", run: (*Console).cmdRouteAdd},
	{Words: []string{"ip", "route", "del"}, Args: "PREFIX", Names: RuntimeNames, Help: "delete a runtime route", run: (*Console).cmdRouteDel},
	{Words: []string{"show", "conntrack"}, Args: "[ADDR]", Names: AddressNames, Help: "sessions: tuples, state, NAT, timeout, counters", run: (*Console).cmdConntrack},
	{Words: []string{"show", "nat"}, Help: "SNAT rules, floating IPs, port forwards, port-pool use", run: (*Console).cmdShowNAT},
	{Words: []string{"show", "filter"}, Args: "[NAME]", Names: FilterNames, Help: "filter rulesets: rules in order with hit, packet and byte counters, default action", run: (*Console).cmdFilter},
	{Words: []string{"clear", "conntrack"}, Args: "[ADDR]", Names: AddressNames, Help: "delete sessions (of ADDR)", run: (*Console).cmdClearConntrack},
	{Words: []string{"trace"}, Args: "N", Help: "record the next N packets as they pass each stage", run: (*Console).cmdTrace},
	{Words: []string{"show", "trace"}, Help: "the packets recorded by trace", run: (*Console).cmdShowTrace},
	{Words: []string{"capture"}, Args: "PORT FILE [N]", Names: PortNames, Help: "write the next N frames (default 100) of a port, in and out, to a pcap file", run: (*Console).cmdCapture},
	{Words: []string{"show", "ha"}, Help: "HA state, peer, last transition, session sync counters", run: (*Console).cmdShowHA},
	{Words: []string{"ha", "state"}, Args: "master|backup|fault", Help: "set the HA state (keepalived's notify scripts call it)", run: (*Console).cmdHAState},
	{Words: []string{"reload"}, Help: "re-read the configuration file and apply it", run: (*Console).cmdReload},
	{Words: []string{"help"}, Args: "[COMMAND]", Names: CommandNames, Help: "list commands; help COMMAND for one"},
	{Words: []string{"quit"}, Help: "leave the console (also Ctrl-D)"},
	{Words: []string{"_names"}, run: (*Console).cmdNames}, // the names the client completes
}

// Commands returns the command table (help, completion).
func Commands() []Command { return append([]Command(nil), commands...) }
