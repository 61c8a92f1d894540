package router

import (
	"fmt"
	"sort"
	"text/tabwriter"
	"time"
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
	name := ""
	if len(args) == 1 {
		name = args[0]
	}
	es, err := r.BridgeEntries(name)
	if err != nil {
		return "", err
	}
	var rows []BridgeRow
	for _, e := range es {
		rows = append(rows, BridgeRow{Network: e.Network, MAC: e.MAC.String(), Link: e.Link, Age: int64(e.Age / time.Second)})
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
