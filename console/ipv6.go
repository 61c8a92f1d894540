package console

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"vrouter/arp"
	"vrouter/fib"
	"vrouter/fib6"
)

// show ipv6 route and show ipv6 neighbors: the IPv6 FIB and neighbours,
// in the forms of show ip route and show arp.

func (c *Console) route6Info(rt fib6.Route) routeJSON {
	ri := routeJSON{Prefix: rt.Prefix.String(), Source: rt.Source.String(), Type: rt.NH.Kind.String()}
	if rt.NH.Kind == fib.KindConnected || rt.NH.Kind == fib.KindGateway {
		ri.Network = c.r.NetworkName(rt.NH.Network)
	}
	if rt.NH.Kind == fib.KindGateway {
		ri.Via = netip.AddrFrom16(rt.NH.Gateway).String()
	}
	return ri
}

func (c *Console) cmdRoute6(args []string, js bool) (string, error) {
	if len(args) > 1 {
		return "", errors.New("usage: show ipv6 route [ADDR | PREFIX]")
	}
	if len(args) == 1 {
		if strings.Contains(args[0], "/") {
			p, err := netip.ParsePrefix(args[0])
			if err != nil || !p.Addr().Is6() {
				return "", fmt.Errorf("bad prefix %q", args[0])
			}
			rt, ok := c.r.FIB6.Get(p)
			if !ok {
				return "", fmt.Errorf("no route for %s", p.Masked())
			}
			return c.renderRoutes([]routeJSON{c.route6Info(rt)}, js)
		}
		a, err := netip.ParseAddr(args[0])
		if err != nil || !a.Is6() || a.Is4In6() {
			return "", fmt.Errorf("bad address %q", args[0])
		}
		rt, ok := c.r.FIB6.Match(a)
		if !ok {
			return "", fmt.Errorf("no route to %s", a)
		}
		return c.renderRoutes([]routeJSON{c.route6Info(rt)}, js)
	}
	all := c.r.FIB6.Routes()
	rs := make([]routeJSON, 0, min(len(all), maxRouteRows))
	for i, rt := range all {
		if i == maxRouteRows && !js {
			break
		}
		rs = append(rs, c.route6Info(rt))
	}
	if js && rs == nil {
		rs = []routeJSON{}
	}
	out, err := c.renderRoutes(rs, js)
	if !js && len(all) > maxRouteRows {
		out += fmt.Sprintf("... %d more routes (use -j for all)\n", len(all)-maxRouteRows)
	}
	return out, err
}

func (c *Console) cmdNeighbors6(args []string, js bool) (string, error) {
	out := []neighJSON{}
	for _, n := range c.r.Neighbours6() {
		nj := neighJSON{IP: n.IP.String(), Network: n.Network, State: n.State.String(), Age: n.Age.Truncate(time.Second).String(), Queued: n.Queued}
		if n.State != arp.Incomplete {
			nj.MAC = n.MAC.String()
		}
		out = append(out, nj)
	}
	if js {
		return toJSON(out)
	}
	return table(func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "IPV6\tMAC\tNETWORK\tSTATE\tAGE")
		for _, n := range out {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.IP, dash(n.MAC), n.Network, n.State, n.Age)
		}
	}), nil
}
