// Package counter is the vocabulary the router's stages use to describe
// their counters: drop reasons, events and gauges. A stage declares a table
// of Desc keyed by its own constants and reports its values as a list of
// Value; the console and /metrics render any stage from that list. There is
// no registry: each stage owns its table and the router gathers the lists
// when they are read. Nothing here is on the per-packet path.
package counter

import "fmt"

// Kind says what a counter counts.
type Kind uint8

const (
	// Drop: packets (or frames) lost, with the reason in Desc.Name; only
	// ever increases.
	Drop Kind = iota
	// Event: something that happened (a packet forwarded, a request sent);
	// only ever increases.
	Event
	// Gauge: a level now (entries in a table); goes up and down.
	Gauge
	NumKinds
)

var kindNames = [NumKinds]string{Drop: "drop", Event: "event", Gauge: "gauge"}

func (k Kind) String() string {
	if k < NumKinds {
		return kindNames[k]
	}
	return "kind?"
}

// Desc describes one counter of a stage.
type Desc struct {
	Stage string // the stage that keeps it: "router", "nat", "arp", or a port driver ("afpacket", "tap")
	Name  string // unique within the stage, lower-case words joined by '-' ("no-route")
	Help  string // one line, for show stats and the metric's help
	Kind  Kind
}

// Value is one counter's value as read. Port names the port a port
// driver's counter belongs to ("" for the other stages).
type Value struct {
	Desc
	Port  string
	Value uint64
}

// Check reports the first problem of a stage's table: an entry left out of
// a keyed table (empty Name or Help), another stage's name, or a name given
// twice. Each stage's tests call it on its table.
func Check(stage string, descs []Desc) error {
	seen := make(map[string]int, len(descs))
	for i, d := range descs {
		switch {
		case d.Name == "" || d.Help == "":
			return fmt.Errorf("%s counter %d (%q) has no name or help", stage, i, d.Name)
		case d.Stage != stage:
			return fmt.Errorf("%s counter %d (%q) says stage %q", stage, i, d.Name, d.Stage)
		case d.Kind >= NumKinds:
			return fmt.Errorf("%s counter %q has kind %d", stage, d.Name, d.Kind)
		}
		if j, dup := seen[d.Name]; dup {
			return fmt.Errorf("%s counters %d and %d are both named %q", stage, j, i, d.Name)
		}
		seen[d.Name] = i
	}
	return nil
}
