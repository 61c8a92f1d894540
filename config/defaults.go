package config

import (
	"net/netip"
	"time"
)

// Defaults: the one place that says what an unset setting means (CONFIG.md
// lists them). Parse starts from them and ApplyDefaults fills what is still
// unset, so the packages that read a Config (router, nat, arp) never
// substitute defaults of their own.
const (
	DefaultConntrackMax      = 1048576
	DefaultTCPEstablished    = 2*time.Hour + 4*time.Minute
	DefaultTCPTransitory     = 4 * time.Minute
	DefaultUDP               = 5 * time.Minute
	DefaultICMPTimeout       = 60 * time.Second
	DefaultFragmentTimeout   = 30 * time.Second // Linux net.ipv4.ipfrag_time
	DefaultICMPRatePerSec    = 1000
	DefaultICMPBurst         = 50
	DefaultNeighborMax       = 65536
	DefaultNeighborReachable = 30 * time.Second
	DefaultNeighborStale     = 60 * time.Second
	DefaultNeighborRetrans   = time.Second
	DefaultNeighborRetries   = 3
	DefaultNeighborQueueLen  = 3
	DefaultNeighborReqRate   = 1000
	DefaultSNATPortLo        = 1024
	DefaultSNATPortHi        = 65535
	DefaultFiltering         = FilteringAddressDep

	defaultHostRouteGatewayStr = "169.254.0.1"
)

// Values of [nat] filtering (RFC 4787 REQ-8).
const (
	FilteringAddressDep    = "address-dependent"
	FilteringEndpointIndep = "endpoint-independent"
)

// DefaultHostRouteGateway is the default [[hostroute]] gateway.
var DefaultHostRouteGateway = netip.MustParseAddr(defaultHostRouteGatewayStr)

// DefaultHostRouteGateway6 is the [[hostroute]] gateway6 the router uses
// when none is given (Gateway6 stays invalid then): the link-local address
// it answers on the guest's link.
var DefaultHostRouteGateway6 = netip.MustParseAddr("fe80::1")

// defaults is the configuration of an empty file: what Parse starts from.
func defaults() *Config {
	c := &Config{ICMP: ICMP{RatePerSec: DefaultICMPRatePerSec}, Neighbor: Neighbor{RequestRate: DefaultNeighborReqRate}}
	c.ApplyDefaults()
	return c
}

// ApplyDefaults sets every unset (zero) setting of c that has a default to
// that default: [router] console (when the name is set), [nat] filtering,
// the ports of each [[nat.snat]], the gateway of each [[hostroute]], the
// proto of each [[filter.rule]] (any), [conntrack], [icmp] burst and
// [neighbor]. [icmp] rate_per_sec and [neighbor] request_rate are left
// alone (0 means unlimited; an empty file gets their defaults from defaults). Parse and Load call it; code that builds a
// Config by hand (tests) calls it too.
func (c *Config) ApplyDefaults() {
	if c.Router.Console == "" && c.Router.Name != "" {
		c.Router.Console = DefaultSocketDir + "/" + c.Router.Name + ".sock"
	}
	if c.NAT.Filtering == "" {
		c.NAT.Filtering = DefaultFiltering
	}
	for i := range c.NAT.SNAT {
		if p := &c.NAT.SNAT[i].Ports; p.Lo == 0 && p.Hi == 0 {
			*p = PortRange{Lo: DefaultSNATPortLo, Hi: DefaultSNATPortHi}
		}
	}
	for i := range c.HostRoutes {
		if h := &c.HostRoutes[i]; !h.Gateway.IsValid() {
			h.Gateway = DefaultHostRouteGateway
		}
	}
	for i := range c.Filters {
		for j := range c.Filters[i].Rules {
			if r := &c.Filters[i].Rules[j]; r.Proto == "" {
				r.Proto = ProtoAny
			}
		}
	}
	c.applyHostDefaults()
	c.applyHADefaults()
	setInt(&c.Conntrack.Max, DefaultConntrackMax)
	setDur(&c.Conntrack.TCPEstablished, DefaultTCPEstablished)
	setDur(&c.Conntrack.TCPTransitory, DefaultTCPTransitory)
	setDur(&c.Conntrack.UDP, DefaultUDP)
	setDur(&c.Conntrack.ICMP, DefaultICMPTimeout)
	setDur(&c.Conntrack.FragmentTimeout, DefaultFragmentTimeout)
	setInt(&c.ICMP.Burst, DefaultICMPBurst)
	n := &c.Neighbor
	setInt(&n.Max, DefaultNeighborMax)
	setDur(&n.ReachableTime, DefaultNeighborReachable)
	setDur(&n.StaleTime, DefaultNeighborStale)
	setDur(&n.RetransTime, DefaultNeighborRetrans)
	setInt(&n.Retries, DefaultNeighborRetries)
	setInt(&n.QueueLen, DefaultNeighborQueueLen)
}

func setInt(v *int, def int) {
	if *v <= 0 {
		*v = def
	}
}

func setDur(v *time.Duration, def time.Duration) {
	if *v <= 0 {
		*v = def
	}
}
