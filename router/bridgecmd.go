package router

import (
	"fmt"
	"sort"
	"text/tabwriter"
)

// BridgeRow is one learned MAC of show bridge.
type BridgeRow struct {
	Network string `json:"network"`
	MAC     string `json:"mac"`
	Link    string `json:"link"`
	Age     int64  `json:"age_seconds"`
}

func (r *Router) cmdBridge(args []string, js bool) (string, error) {
	if len(args) > 1 {
		return "", fmt.Errorf("usage: show bridge [NETWORK]")
	}
	s := r.snap.Load()
	sec := r.clock.Now() / 1e9
	var rows []BridgeRow
	found := len(args) == 0
	for i := range s.nets {
		n := &s.nets[i]
		if !n.live || len(args) == 1 && n.name != args[0] {
			continue
		}
		found = true
		if n.bridge == nil {
			continue
		}
		for _, e := range n.bridge.entries(sec) {
			l := n.links[e.Link]
			name := s.ports[l.port].name
			if l.vid != 0 {
				name = fmt.Sprintf("%s.%d", name, l.vid)
			}
			rows = append(rows, BridgeRow{Network: n.name, MAC: e.MAC.String(), Link: name, Age: e.Age})
		}
	}
	if !found {
		return "", fmt.Errorf("no network %q", args[0])
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Network != rows[j].Network {
			return rows[i].Network < rows[j].Network
		}
		return rows[i].MAC < rows[j].MAC
	})
	if js {
		if rows == nil {
			rows = []BridgeRow{}
		}
		return toJSON(rows)
	}
	return table(func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "NETWORK\tMAC\tLINK\tAGE")
		for _, b := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%ds\n", b.Network, b.MAC, b.Link, b.Age)
		}
	}), nil
}
