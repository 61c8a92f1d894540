package router

// namesJSON is the answer of _names: what the console completes.
type namesJSON struct {
	Router    string   `json:"router"`
	Ports     []string `json:"ports"`
	Networks  []string `json:"networks"`
	Addresses []string `json:"addresses"` // router addresses and neighbours
	Runtime   []string `json:"runtime_routes"`
}

func (r *Router) cmdNames(args []string, js bool) (string, error) {
	n := r.Names()
	return toJSON(namesJSON{Router: n.Router, Ports: n.Ports, Networks: n.Networks, Addresses: n.Addresses, Runtime: n.RuntimeRoutes})
}
