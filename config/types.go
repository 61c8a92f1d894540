// Package config parses and validates the router's TOML file (see CONFIG.md
// of the project). Parsing is strict: unknown keys, wrong types and invalid
// values are errors, each reported as FILE:LINE:COL: message. The result is a
// Config of typed values; defaults are filled in.
package config

import (
	"net"
	"net/netip"
	"time"
)

// Config is one validated configuration file.
type Config struct {
	File string // path it was loaded from

	Router     Router
	Ports      []Port
	Networks   []Network
	HostRoutes []HostRoute
	FIB        FIB
	Routes     []Route
	Routes6    []Route // the IPv6 [[route]]s (config/ipv6.go)
	ARP        []ARPEntry
	ARP6       []ARPEntry // the [[arp]]s whose ip is IPv6: static neighbours and proxy NDP
	NAT        NAT
	Filters    []Filter // [[filter]] rulesets, in file order (filter.go)
	Conntrack  Conntrack
	ICMP       ICMP
	Neighbor   Neighbor
	HA         HA // [ha] (ha.go)
}

// Pos is a position in the file (1-based); zero when unknown.
type Pos struct{ Line, Col int }

// Router is [router].
type Router struct {
	Name    string
	Console string // control socket path; default /run/vrouter/NAME.sock
	Metrics string // host:port for Prometheus /metrics; empty = off
	Workers int    // 0 = one per CPU
	// PinWorkers locks each data-path worker to one CPU (round robin over
	// the CPUs the process may use).
	PinWorkers bool
	// SharedPoll serves every port that can be polled without blocking
	// (afxdp) from one worker that sleeps in one poll over all of them,
	// instead of a worker per port: the reply to a busy port's traffic is
	// handled by the thread already running. Read at start.
	SharedPoll bool
	Pos        Pos
}

// Port is one [[port]].
type Port struct {
	Name    string
	Driver  string // "afpacket" | "afxdp" | "tap" | "pipe" (pipe: tests only)
	Device  string
	Persist bool             // tap: keep the device after exit
	MAC     net.HardwareAddr // nil = device's own (tap: generated, stable per name)
	MTU     int              // 0 = the device's MTU
	// NoOffloads is `offloads = false`: GSO super-frames and partial
	// checksums are segmented/completed at the port (afpacket, tap) instead
	// of passing through the router intact.
	NoOffloads bool
	// NoGRO is `gro = false`: TCP segments leaving through the port are
	// not coalesced into super-frames.
	NoGRO bool
	Pos   Pos
}

// Link is one element of a network's links: a port, untagged (VID 0) or one
// VLAN of a trunk port ("trunk.1234").
type Link struct {
	Port string
	VID  uint16
}

// String gives the link as written in the file ("trunk.1234" or "vm1").
func (l Link) String() string {
	if l.VID == 0 {
		return l.Port
	}
	return l.Port + "." + itoa(int(l.VID))
}

// Network is one [[network]] (an L2 segment).
type Network struct {
	Name      string
	Links     []Link
	Addresses []netip.Prefix // router's own addresses (address + prefix length)
	ProxyARP  bool
	MAC       net.HardwareAddr // optional; default: the first link's port MAC
	FilterIn  string           // [[filter]] name for packets received from it; "" = none
	FilterOut string           // [[filter]] name for packets sent into it; "" = none
	// Host is the kernel name of the network's host interface ("" = none);
	// HostPuntRate its punt limit in packets/s (config/host.go).
	Host         string
	HostPuntRate int
	// IPv6 (config/ipv6.go): the router's IPv6 addresses (from
	// `addresses`), `ra`, `dns` (RDNSS in the advertisements) and
	// `link_local` (default: EUI-64 from the network's MAC).
	Addresses6 []netip.Prefix
	RA         bool
	DNS        []netip.Addr
	LinkLocal  netip.Addr
	Pos        Pos
}

// HostRoute is one [[hostroute]] (host-routed guest, Virtuozzo venet style).
type HostRoute struct {
	Link      Link
	Addresses []netip.Addr
	Gateway   netip.Addr // default 169.254.0.1
	Publish   []string   // network names
	// IPv6 (config/ipv6.go): the guest's IPv6 addresses (from
	// `addresses`) and its IPv6 gateway (`gateway6`; invalid when not
	// given: DefaultHostRouteGateway6).
	Addresses6 []netip.Addr
	Gateway6   netip.Addr
	Pos        Pos
}

// FIB is [fib].
type FIB struct {
	KernelTable int // 0 = off
}

// RouteType is the `type` of a [[route]].
type RouteType string

const (
	RouteUnicast     RouteType = "unicast"
	RouteBlackhole   RouteType = "blackhole"   // silently dropped (counted)
	RouteUnreachable RouteType = "unreachable" // ICMP 3/1
	RouteProhibit    RouteType = "prohibit"    // ICMP 3/13
)

// Route is one [[route]].
type Route struct {
	Prefix  netip.Prefix
	Via     netip.Addr // invalid when not given
	Network string     // empty unless given
	Type    RouteType  // default unicast
	Pos     Pos
}

// ARPEntry is one [[arp]]: a static neighbour (MAC) or a published address
// (proxy ARP; for an IPv6 address, in Config.ARP6, proxy NDP).
type ARPEntry struct {
	Network string
	IP      netip.Addr
	MAC     net.HardwareAddr // nil when Publish
	Publish bool
	Pos     Pos
}

// NAT is [nat] with its [[nat.snat]], [[nat.floating]], [[nat.forward]].
type NAT struct {
	Filtering string // "address-dependent" (default) | "endpoint-independent"
	SNAT      []SNAT
	Floating  []Floating
	Forward   []Forward
}

// AddrRange is an inclusive IPv4 range.
type AddrRange struct{ First, Last netip.Addr }

// PortRange is an inclusive port range.
type PortRange struct{ Lo, Hi uint16 }

// SNAT is one [[nat.snat]].
type SNAT struct {
	Source netip.Prefix
	Out    string    // network name
	To     AddrRange // default: first address of Out
	Ports  PortRange // default 1024-65535
	Pos    Pos
}

// Floating is one [[nat.floating]].
type Floating struct {
	External netip.Addr
	Internal netip.Addr
	Pos      Pos
}

// Forward is one [[nat.forward]].
type Forward struct {
	Proto    string // "tcp" | "udp"
	External netip.AddrPort
	Internal []netip.AddrPort
	Pos      Pos
}

// Conntrack is [conntrack].
type Conntrack struct {
	Max            int           // default 1048576
	TCPEstablished time.Duration // default 2h4m, minimum 2h4m (RFC 5382 REQ-5)
	TCPTransitory  time.Duration // default 4m, minimum 4m
	UDP            time.Duration // default 5m, minimum 2m (RFC 4787 REQ-5)
	ICMP           time.Duration // default 60s, minimum 60s (RFC 5508 REQ-2)
	// FragmentTimeout: how long the NAT remembers a first fragment and holds
	// a non-first fragment waiting for its first one (like Linux
	// net.ipv4.ipfrag_time); default 30s, 1s..5m.
	FragmentTimeout time.Duration
}

// ICMP is [icmp]: output rate limiting of ICMP messages the router sends
// (like Linux net.ipv4.icmp_msgs_per_sec / icmp_msgs_burst).
type ICMP struct {
	RatePerSec int // default 1000; 0 = unlimited
	Burst      int // default 50
}

// Neighbor is [neighbor]: ARP cache settings (Linux neigh sysctls).
type Neighbor struct {
	Max           int           // entries; default 65536
	ReachableTime time.Duration // default 30s
	StaleTime     time.Duration // removed when unused this long; default 60s
	RetransTime   time.Duration // between requests; default 1s (at most one per second)
	Retries       int           // requests before failed; default 3
	QueueLen      int           // packets held per unresolved neighbour; default 3
	RequestRate   int           // ARP requests sent per second in all (token bucket); default 1000; 0 = unlimited
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}
