package config

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"vrouter/packet"
)

// decoder maps the document tree onto Config, checking key names, types and
// each value on its own. Checks that need more than one value are in
// validate.go.
type decoder struct {
	errs *errList
	c    *Config

	routerT             *table
	portT, netT, hrT    []*table
	routeT, arpT        []*table
	arp6T               []*table // the [[arp]]s of c.ARP6
	snatT, floatT, fwdT []*table
	filterT             []*table   // [[filter]]
	ruleT               [][]*table // [[filter.rule]] per [[filter]]
	haT                 *table     // [ha]
	// IPv6 (ipv6.go): the position of each network's IPv6 addresses,
	// and the tables of the IPv6 [[route]]s (c.Routes6).
	addr6Pos [][]Pos
	pending6 []Pos // the network being decoded
	route6T  []*table
}

func (d *decoder) errf(p Pos, format string, args ...any) {
	d.errs.add(p, fmt.Sprintf(format, args...))
}

// Limits of values (defaults are in defaults.go).
const (
	MinTCPEstablished = 2*time.Hour + 4*time.Minute // RFC 5382 REQ-5
	MinTCPTransitory  = 4 * time.Minute             // RFC 5382 REQ-5
	MinUDP            = 2 * time.Minute             // RFC 4787 REQ-5
	MinICMPTimeout    = 60 * time.Second            // RFC 5508 REQ-2
	MinMTU, MaxMTU    = 68, 9198
	MaxIfNameLen      = 15 // IFNAMSIZ - 1
	MaxRouterNameLen  = 32
	maxSocketPathLen  = 107 // sizeof(sun_path) - 1
	maxWorkers        = 1024
)

// Range of [conntrack] fragment_timeout (the default, 30s as Linux
// net.ipv4.ipfrag_time, is in defaults.go).
const (
	MinFragmentTimeout = time.Second
	MaxFragmentTimeout = 5 * time.Minute
)

// ---- generic helpers -------------------------------------------------------

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// each calls fn for every entry of t in file order; keys not in known are
// reported as unknown.
func (d *decoder) each(t *table, path string, known []string, fn func(e *entry, p string)) {
	if t == nil {
		return
	}
	for _, e := range t.entries {
		ok := false
		for _, k := range known {
			if k == e.key {
				ok = true
				break
			}
		}
		if !ok {
			d.unknown(e, path, known)
			continue
		}
		fn(e, join(path, e.key))
	}
}

func (d *decoder) unknown(e *entry, path string, known []string) {
	msg := fmt.Sprintf("unknown key %q", join(path, e.key))
	// suggest a known key within a small edit distance
	best, bestD := "", max(1, len(e.key)/3)+1
	for _, k := range known {
		if dist := editDistance(strings.ToLower(e.key), k); dist < bestD {
			best, bestD = k, dist
		}
	}
	if best != "" {
		msg += fmt.Sprintf("; did you mean %q?", join(path, best))
	}
	d.errs.add(e.keyPos, msg)
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (d *decoder) wrongType(v *value, path string, want string) {
	d.errf(v.pos, "wrong type for %s: expected %s, got %s", path, want, v.kind)
}

func (d *decoder) str(v *value, path string) (string, bool) {
	if v.kind != kString {
		d.wrongType(v, path, "a string")
		return "", false
	}
	return v.s, true
}

func (d *decoder) integer(v *value, path string) (int64, bool) {
	if v.kind != kInt {
		d.wrongType(v, path, "an integer")
		return 0, false
	}
	n, err := strconv.ParseInt(v.s, 0, 64)
	if err != nil {
		d.errf(v.pos, "%s: integer %s out of range", path, v.s)
		return 0, false
	}
	return n, true
}

// intIn decodes an integer that must lie in lo..hi.
func (d *decoder) intIn(v *value, path string, lo, hi int64) (int, bool) {
	n, ok := d.integer(v, path)
	if !ok {
		return 0, false
	}
	if n < lo || n > hi {
		d.errf(v.pos, "%s %d out of range %d..%d", path, n, lo, hi)
		return 0, false
	}
	return int(n), true
}

func (d *decoder) boolean(v *value, path string) (bool, bool) {
	if v.kind != kBool {
		d.wrongType(v, path, "a boolean (true or false)")
		return false, false
	}
	return v.s == "true", true
}

// strings decodes an array of strings; elements of the wrong type are
// reported and left out (the returned values keep their positions).
func (d *decoder) strArray(v *value, path string) ([]*value, bool) {
	if v.kind != kArray || v.aot {
		d.wrongType(v, path, "an array of strings")
		return nil, false
	}
	out := make([]*value, 0, len(v.arr))
	ok := true
	for _, ev := range v.arr {
		if ev.kind != kString {
			d.errf(ev.pos, "wrong type for element of %s: expected a string, got %s", path, ev.kind)
			ok = false
			continue
		}
		out = append(out, ev)
	}
	return out, ok
}

func (d *decoder) duration(v *value, path string) (time.Duration, bool) {
	s, ok := d.str(v, path)
	if !ok {
		return 0, false
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		d.errf(v.pos, "%s: invalid duration %q (write e.g. \"90s\", \"5m\", \"2h4m\")", path, s)
		return 0, false
	}
	if dur <= 0 {
		d.errf(v.pos, "%s: duration %q must be positive", path, s)
		return 0, false
	}
	return dur, true
}

func (d *decoder) table(v *value, path string) (*table, bool) {
	if v.kind != kTable {
		d.wrongType(v, path, "a table (["+path+"])")
		return nil, false
	}
	return v.tbl, true
}

func (d *decoder) tableList(v *value, path string) ([]*table, bool) {
	if v.kind != kArray {
		d.wrongType(v, path, "an array of tables ([["+path+"]])")
		return nil, false
	}
	out := make([]*table, 0, len(v.arr))
	for _, ev := range v.arr {
		if ev.kind != kTable {
			d.errf(ev.pos, "wrong type for element of %s: expected a table, got %s", path, ev.kind)
			continue
		}
		out = append(out, ev.tbl)
	}
	return out, true
}

// vpos is the position of key's value in t, or t's own position.
func vpos(t *table, key string) Pos {
	if e := t.get(key); e != nil {
		return e.val.pos
	}
	return t.pos
}

// epos is the position of element i of key's array value in t.
func epos(t *table, key string, i int) Pos {
	if e := t.get(key); e != nil {
		if e.val.kind == kArray && i >= 0 && i < len(e.val.arr) {
			return e.val.arr[i].pos
		}
		return e.val.pos
	}
	return t.pos
}

func (d *decoder) required(t *table, section string, keys ...string) {
	for _, k := range keys {
		if t.get(k) == nil {
			d.errf(t.pos, "missing required key %q in %s", k, section)
		}
	}
}

// ---- value parsers -----------------------------------------------------------

func parseAddr4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("invalid IPv4 address %q", s)
	}
	return a, nil
}

func parsePrefix4(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("invalid IPv4 prefix %q (write a.b.c.d/n)", s)
	}
	return p, nil
}

// parseNetPrefix parses a prefix that must be in masked form.
func parseNetPrefix(what, s string) (netip.Prefix, error) {
	p, err := parsePrefix4(s)
	if err != nil {
		return p, err
	}
	if m := p.Masked(); m != p {
		return m, fmt.Errorf("%s %s has host bits set; did you mean %s?", what, s, m)
	}
	return p, nil
}

func parseAddrPort4(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil || !ap.Addr().Is4() {
		return netip.AddrPort{}, fmt.Errorf("invalid address %q (write a.b.c.d:port)", s)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("invalid address %q: port 0", s)
	}
	return ap, nil
}

func parseMAC(s string) (net.HardwareAddr, error) {
	m, err := packet.ParseMAC(s)
	if err != nil {
		return nil, fmt.Errorf("invalid MAC address %q (write 02:00:00:00:00:01)", s)
	}
	if m.IsMulticast() {
		return nil, fmt.Errorf("MAC address %s is not unicast (multicast bit set)", m)
	}
	if m.IsZero() {
		return nil, fmt.Errorf("MAC address %s is all zeros", m)
	}
	return net.HardwareAddr(m[:]), nil
}

// parseRange4 parses "a.b.c.d" or "a.b.c.d-a.b.c.e".
func parseRange4(s string) (AddrRange, error) {
	first, last, isRange := strings.Cut(s, "-")
	a, err := parseAddr4(strings.TrimSpace(first))
	if err != nil {
		return AddrRange{}, fmt.Errorf("invalid address range %q (write a.b.c.d or a.b.c.d-a.b.c.e)", s)
	}
	if !isRange {
		return AddrRange{First: a, Last: a}, nil
	}
	b, err := parseAddr4(strings.TrimSpace(last))
	if err != nil {
		return AddrRange{}, fmt.Errorf("invalid address range %q (write a.b.c.d or a.b.c.d-a.b.c.e)", s)
	}
	if b.Less(a) {
		return AddrRange{}, fmt.Errorf("invalid address range %q: %s comes after %s", s, a, b)
	}
	return AddrRange{First: a, Last: b}, nil
}

// parsePortRange parses "lo-hi" or a single port, 1..65535.
func parsePortRange(s string) (PortRange, error) {
	bad := fmt.Errorf("invalid port range %q (write lo-hi within 1-65535)", s)
	los, his, isRange := strings.Cut(s, "-")
	if !isRange {
		his = los
	}
	lo, err1 := strconv.ParseUint(strings.TrimSpace(los), 10, 16)
	hi, err2 := strconv.ParseUint(strings.TrimSpace(his), 10, 16)
	if err1 != nil || err2 != nil || lo == 0 || hi == 0 {
		return PortRange{}, bad
	}
	if hi < lo {
		return PortRange{}, fmt.Errorf("invalid port range %q: %d is above %d", s, lo, hi)
	}
	return PortRange{Lo: uint16(lo), Hi: uint16(hi)}, nil
}

func validRouterName(s string) bool {
	if len(s) < 1 || len(s) > MaxRouterNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// validIfName reports whether s can be a Linux interface name.
func validIfName(s string) error {
	if s == "" {
		return fmt.Errorf("empty device name")
	}
	if len(s) > MaxIfNameLen {
		return fmt.Errorf("device name %q is longer than %d characters (IFNAMSIZ)", s, MaxIfNameLen)
	}
	if s == "." || s == ".." {
		return fmt.Errorf("invalid device name %q", s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '/' || c == ':' || c <= ' ' || c >= 0x7f {
			return fmt.Errorf("invalid device name %q: no '/', ':', blanks or control characters", s)
		}
	}
	return nil
}

// ---- sections ----------------------------------------------------------------

var rootKeys = []string{"router", "port", "network", "hostroute", "fib", "route", "arp", "nat", "conntrack", "icmp", "neighbor", "filter", "ha"}

func (d *decoder) decode(root *table) *Config {
	d.c = defaults()
	d.each(root, "", rootKeys, func(e *entry, p string) {
		switch e.key {
		case "router":
			if t, ok := d.table(e.val, p); ok {
				d.router(t)
			}
		case "fib":
			if t, ok := d.table(e.val, p); ok {
				d.fib(t)
			}
		case "nat":
			if t, ok := d.table(e.val, p); ok {
				d.nat(t)
			}
		case "conntrack":
			if t, ok := d.table(e.val, p); ok {
				d.conntrack(t)
			}
		case "icmp":
			if t, ok := d.table(e.val, p); ok {
				d.icmp(t)
			}
		case "neighbor":
			if t, ok := d.table(e.val, p); ok {
				d.neighbor(t)
			}
		case "filter":
			d.filters(e.val, p)
		case "ha":
			if t, ok := d.table(e.val, p); ok {
				d.ha(t)
			}
		default:
			ts, ok := d.tableList(e.val, p)
			if !ok {
				return
			}
			for _, t := range ts {
				switch e.key {
				case "port":
					d.port(t)
				case "network":
					d.network(t)
				case "hostroute":
					d.hostroute(t)
				case "route":
					d.route(t)
				case "arp":
					d.arp(t)
				}
			}
		}
	})
	if root.get("router") == nil {
		d.errf(Pos{}, "missing [router] section with name = \"...\"")
	}
	d.validate()
	d.validate6()
	d.compactAddresses()
	d.c.ApplyDefaults()
	return d.c
}

func (d *decoder) router(t *table) {
	d.routerT = t
	r := &d.c.Router
	r.Pos = t.pos
	d.each(t, "router", []string{"name", "console", "metrics", "workers", "pin_workers", "shared_poll"}, func(e *entry, p string) {
		v := e.val
		switch e.key {
		case "name":
			if s, ok := d.str(v, p); ok {
				if !validRouterName(s) {
					d.errf(v.pos, "router.name %q is invalid: use 1 to %d of A-Z a-z 0-9 _ . -", s, MaxRouterNameLen)
				} else {
					r.Name = s
				}
			}
		case "console":
			if s, ok := d.str(v, p); ok {
				switch {
				case s == "":
					d.errf(v.pos, "router.console must not be empty (leave it out for the default)")
				case len(s) > maxSocketPathLen:
					d.errf(v.pos, "router.console %q is longer than %d bytes (unix socket path limit)", s, maxSocketPathLen)
				default:
					r.Console = s
				}
			}
		case "metrics":
			if s, ok := d.str(v, p); ok {
				if err := checkHostPort(s); err != nil {
					d.errf(v.pos, "router.metrics %q: %v", s, err)
				} else {
					r.Metrics = s
				}
			}
		case "workers":
			if n, ok := d.integer(v, p); ok {
				switch {
				case n < 0:
					d.errf(v.pos, "router.workers %d must not be negative (0 = one per CPU)", n)
				case n > maxWorkers:
					d.errf(v.pos, "router.workers %d is more than %d", n, maxWorkers)
				default:
					r.Workers = int(n)
				}
			}
		case "pin_workers":
			if b, ok := d.boolean(v, p); ok {
				r.PinWorkers = b
			}
		case "shared_poll":
			if b, ok := d.boolean(v, p); ok {
				r.SharedPoll = b
			}
		}
	})
	if t.get("name") == nil {
		d.errf(t.pos, "missing required key \"name\" in [router]")
	}
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("not host:port")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return fmt.Errorf("invalid port %q", port)
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; c <= ' ' || c >= 0x7f || c == '/' {
			return fmt.Errorf("invalid host %q", host)
		}
	}
	return nil
}

var drivers = []string{"afpacket", "afxdp", "tap", "pipe"}

func (d *decoder) port(t *table) {
	var pt Port
	pt.Pos = t.pos
	d.each(t, "port", []string{"name", "driver", "device", "persist", "mac", "mtu", "offloads", "gro"}, func(e *entry, p string) {
		v := e.val
		switch e.key {
		case "name":
			if s, ok := d.str(v, p); ok {
				switch {
				case s == "":
					d.errf(v.pos, "port.name must not be empty")
				case strings.ContainsRune(s, '.'):
					d.errf(v.pos, "port.name %q must not contain '.' (it separates the VLAN ID in links)", s)
				case strings.ContainsAny(s, " \t\"'"):
					d.errf(v.pos, "port.name %q must not contain blanks or quotes", s)
				default:
					pt.Name = s
				}
			}
		case "driver":
			if s, ok := d.str(v, p); ok {
				if !slices.Contains(drivers, s) {
					d.errf(v.pos, "port.driver %q is not one of %s", s, strings.Join(drivers, ", "))
				} else {
					pt.Driver = s
				}
			}
		case "device":
			if s, ok := d.str(v, p); ok {
				if err := validIfName(s); err != nil {
					d.errf(v.pos, "port.device: %v", err)
				} else {
					pt.Device = s
				}
			}
		case "persist":
			pt.Persist, _ = d.boolean(v, p)
		case "offloads":
			if b, ok := d.boolean(v, p); ok {
				pt.NoOffloads = !b
			}
		case "gro":
			if b, ok := d.boolean(v, p); ok {
				pt.NoGRO = !b
			}
		case "mac":
			if s, ok := d.str(v, p); ok {
				if m, err := parseMAC(s); err != nil {
					d.errf(v.pos, "port.mac: %v", err)
				} else {
					pt.MAC = m
				}
			}
		case "mtu":
			pt.MTU, _ = d.intIn(v, p, MinMTU, MaxMTU)
		}
	})
	d.required(t, "[[port]]", "name", "driver")
	if (pt.Driver == "afpacket" || pt.Driver == "afxdp") && t.get("device") == nil {
		d.errf(t.pos, "missing required key \"device\" in [[port]] (driver %s needs an existing interface)", pt.Driver)
	}
	if pt.Device == "" && pt.Driver == "tap" && pt.Name != "" {
		if err := validIfName(pt.Name); err != nil {
			d.errf(vpos(t, "name"), "port %q: set device: the port name is not usable as the TAP device name: %v", pt.Name, err)
		} else {
			pt.Device = pt.Name
		}
	}
	d.c.Ports = append(d.c.Ports, pt)
	d.portT = append(d.portT, t)
}

// links parses an array of link strings; invalid ones become zero Links so
// indexes match the array.
func (d *decoder) link(v *value, p string) (Link, bool) {
	s, ok := d.str(v, p)
	if !ok {
		return Link{}, false
	}
	l, err := ParseLink(s)
	if err != nil {
		d.errf(v.pos, "%v", err)
		return Link{}, false
	}
	return l, true
}

func (d *decoder) network(t *table) {
	var n Network
	n.Pos = t.pos
	d.each(t, "network", []string{"name", "links", "addresses", "proxy_arp", "mac", "filter_in", "filter_out", "host", "host_punt_rate", "ra", "dns", "link_local"}, func(e *entry, p string) {
		v := e.val
		switch e.key {
		case "name":
			if s, ok := d.str(v, p); ok {
				if s == "" || strings.ContainsAny(s, " \t\"'") {
					d.errf(v.pos, "network.name %q must be non-empty without blanks or quotes", s)
				} else {
					n.Name = s
				}
			}
		case "links":
			if v.kind != kArray || v.aot {
				d.wrongType(v, p, "an array of strings")
				return
			}
			if len(v.arr) == 0 {
				d.errf(v.pos, "network.links must list at least one link")
			}
			n.Links = make([]Link, len(v.arr))
			for i, ev := range v.arr {
				n.Links[i], _ = d.link(ev, p)
			}
		case "addresses":
			if v.kind != kArray || v.aot {
				d.wrongType(v, p, "an array of strings")
				return
			}
			n.Addresses = make([]netip.Prefix, len(v.arr))
			for i, ev := range v.arr {
				s, ok := d.str(ev, p)
				if !ok {
					continue
				}
				if isIPv6(s) {
					// Kept apart (Addresses6); the IPv4 slot stays empty
					// until validation is done (compactAddresses).
					d.ifAddr6(&n, s, ev.pos, p)
					continue
				}
				a, err := parseIfAddr(s)
				if err != nil {
					d.errf(ev.pos, "network.addresses: %v", err)
					continue
				}
				n.Addresses[i] = a
			}
		case "proxy_arp":
			n.ProxyARP, _ = d.boolean(v, p)
		case "mac":
			if s, ok := d.str(v, p); ok {
				if m, err := parseMAC(s); err != nil {
					d.errf(v.pos, "network.mac: %v", err)
				} else {
					n.MAC = m
				}
			}
		case "host", "host_punt_rate":
			d.hostKey(&n, e.key, v, p)
		case "ra", "dns", "link_local":
			d.network6Key(&n, e.key, v, p)
		case "filter_in", "filter_out":
			if s, ok := d.str(v, p); ok {
				if s == "" {
					d.errf(v.pos, "%s must not be empty (leave it out for no filter)", p)
				} else if e.key == "filter_in" {
					n.FilterIn = s
				} else {
					n.FilterOut = s
				}
			}
		}
	})
	d.required(t, "[[network]]", "name", "links")
	d.c.Networks = append(d.c.Networks, n)
	d.netT = append(d.netT, t)
	d.addr6Pos = append(d.addr6Pos, d.pending6)
	d.pending6 = nil
}

// parseIfAddr parses an interface address a.b.c.d/n.
func parseIfAddr(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		return netip.Prefix{}, fmt.Errorf("address %q needs a prefix length (write a.b.c.d/n)", s)
	}
	p, err := parsePrefix4(s)
	if err != nil {
		return p, err
	}
	a, bits := p.Addr(), p.Bits()
	switch {
	case bits == 0:
		return p, fmt.Errorf("address %s: prefix length /0 is not an interface address", s)
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return p, fmt.Errorf("address %s is not a usable unicast address", s)
	}
	if bits <= 30 {
		if a == p.Masked().Addr() {
			return p, fmt.Errorf("address %s is the network address of its subnet", s)
		}
		if a == lastAddr(p) {
			return p, fmt.Errorf("address %s is the broadcast address of its subnet", s)
		}
	}
	return p, nil
}

// lastAddr is the highest address of p's subnet.
func lastAddr(p netip.Prefix) netip.Addr {
	v := packet.U32(p.Masked().Addr())
	v |= ^uint32(0) >> uint(p.Bits())
	if p.Bits() == 0 {
		v = ^uint32(0)
	}
	return packet.Addr(v)
}

func (d *decoder) hostroute(t *table) {
	h := HostRoute{Pos: t.pos, Gateway: DefaultHostRouteGateway}
	d.each(t, "hostroute", []string{"link", "addresses", "gateway", "gateway6", "publish"}, func(e *entry, p string) {
		v := e.val
		switch e.key {
		case "link":
			h.Link, _ = d.link(v, p)
		case "addresses":
			if v.kind != kArray || v.aot {
				d.wrongType(v, p, "an array of strings")
				return
			}
			if len(v.arr) == 0 {
				d.errf(v.pos, "hostroute.addresses must list at least one address")
			}
			h.Addresses = make([]netip.Addr, len(v.arr))
			for i, ev := range v.arr {
				s, ok := d.str(ev, p)
				if !ok {
					continue
				}
				if isIPv6(s) {
					d.hostAddr6(&h, s, ev.pos) // Addresses6; this slot stays empty (compactAddresses)
					continue
				}
				s = strings.TrimSuffix(s, "/32")
				a, err := parseAddr4(s)
				if err != nil {
					d.errf(ev.pos, "hostroute.addresses: %v", err)
					continue
				}
				if a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
					d.errf(ev.pos, "hostroute.addresses: %s is not a usable unicast address", a)
					continue
				}
				h.Addresses[i] = a
			}
		case "gateway":
			if s, ok := d.str(v, p); ok {
				if a, err := parseAddr4(s); err != nil {
					d.errf(v.pos, "hostroute.gateway: %v", err)
				} else {
					h.Gateway = a
				}
			}
		case "gateway6":
			d.hostGateway6(&h, v, p)
		case "publish":
			vs, _ := d.strArray(v, p)
			for _, ev := range vs {
				h.Publish = append(h.Publish, ev.s)
			}
		}
	})
	d.required(t, "[[hostroute]]", "link", "addresses")
	d.c.HostRoutes = append(d.c.HostRoutes, h)
	d.hrT = append(d.hrT, t)
}

func (d *decoder) fib(t *table) {
	d.each(t, "fib", []string{"kernel_table"}, func(e *entry, p string) {
		d.c.FIB.KernelTable, _ = d.intIn(e.val, p, 0, 1<<32-1)
	})
}

func (d *decoder) route(t *table) {
	r := Route{Pos: t.pos, Type: RouteUnicast}
	d.each(t, "route", []string{"prefix", "via", "network", "type"}, func(e *entry, p string) {
		v := e.val
		switch e.key {
		case "prefix":
			if s, ok := d.str(v, p); ok {
				parse := parseNetPrefix
				if isIPv6(s) {
					parse = parseNetPrefix6
				}
				pf, err := parse("prefix", s)
				if err != nil {
					d.errf(v.pos, "%v", err)
				} else {
					r.Prefix = pf
				}
			}
		case "via":
			if s, ok := d.str(v, p); ok {
				parse := parseAddr4
				if isIPv6(s) {
					parse = parseAddr6
				}
				if a, err := parse(s); err != nil {
					d.errf(v.pos, "route.via: %v", err)
				} else {
					r.Via = a
				}
			}
		case "network":
			if s, ok := d.str(v, p); ok {
				r.Network = s
			}
		case "type":
			r.Type = ""
			if s, ok := d.str(v, p); ok {
				switch RouteType(s) {
				case RouteUnicast, RouteBlackhole, RouteUnreachable, RouteProhibit:
					r.Type = RouteType(s)
				default:
					r.Type = ""
					d.errf(v.pos, "route.type %q is not one of unicast, blackhole, unreachable, prohibit", s)
				}
			}
		}
	})
	d.required(t, "[[route]]", "prefix")
	if r.Prefix.Addr().Is6() || (!r.Prefix.IsValid() && r.Via.Is6()) {
		d.c.Routes6 = append(d.c.Routes6, r)
		d.route6T = append(d.route6T, t)
		return
	}
	d.c.Routes = append(d.c.Routes, r)
	d.routeT = append(d.routeT, t)
}

func (d *decoder) arp(t *table) {
	a := ARPEntry{Pos: t.pos}
	d.each(t, "arp", []string{"network", "ip", "mac", "publish"}, func(e *entry, p string) {
		v := e.val
		switch e.key {
		case "network":
			a.Network, _ = d.str(v, p)
		case "ip":
			if s, ok := d.str(v, p); ok {
				parse := parseAddr4
				if isIPv6(s) {
					parse = parseAddr6
				}
				if ip, err := parse(s); err != nil {
					d.errf(v.pos, "arp.ip: %v", err)
				} else {
					a.IP = ip
				}
			}
		case "mac":
			if s, ok := d.str(v, p); ok {
				if m, err := parseMAC(s); err != nil {
					d.errf(v.pos, "arp.mac: %v", err)
				} else {
					a.MAC = m
				}
			}
		case "publish":
			a.Publish, _ = d.boolean(v, p)
		}
	})
	d.required(t, "[[arp]]", "network", "ip")
	hasMAC := t.get("mac") != nil
	switch {
	case hasMAC && a.Publish:
		d.errf(vpos(t, "publish"), "[[arp]] takes either mac or publish = true, not both")
	case !hasMAC && !a.Publish:
		d.errf(t.pos, "[[arp]] needs mac = \"...\" (static neighbour) or publish = true (proxy ARP)")
	}
	if a.IP.Is6() {
		d.c.ARP6 = append(d.c.ARP6, a)
		d.arp6T = append(d.arp6T, t)
		return
	}
	d.c.ARP = append(d.c.ARP, a)
	d.arpT = append(d.arpT, t)
}

func (d *decoder) nat(t *table) {
	d.each(t, "nat", []string{"filtering", "snat", "floating", "forward"}, func(e *entry, p string) {
		v := e.val
		switch e.key {
		case "filtering":
			if s, ok := d.str(v, p); ok {
				if s != FilteringAddressDep && s != FilteringEndpointIndep {
					d.errf(v.pos, "nat.filtering %q is not one of %s, %s", s, FilteringAddressDep, FilteringEndpointIndep)
				} else {
					d.c.NAT.Filtering = s
				}
			}
		default:
			ts, ok := d.tableList(v, p)
			if !ok {
				return
			}
			for _, st := range ts {
				switch e.key {
				case "snat":
					d.snat(st)
				case "floating":
					d.floating(st)
				case "forward":
					d.forward(st)
				}
			}
		}
	})
}

func (d *decoder) snat(t *table) {
	s := SNAT{Pos: t.pos, Ports: PortRange{Lo: DefaultSNATPortLo, Hi: DefaultSNATPortHi}}
	d.each(t, "nat.snat", []string{"source", "out", "to", "ports"}, func(e *entry, p string) {
		v := e.val
		switch e.key {
		case "source":
			if str, ok := d.str(v, p); ok {
				pf, err := parseNetPrefix("source", str)
				if err != nil {
					d.errf(v.pos, "nat.snat.source: %v", err)
				} else {
					s.Source = pf
				}
			}
		case "out":
			s.Out, _ = d.str(v, p)
		case "to":
			if str, ok := d.str(v, p); ok {
				r, err := parseRange4(str)
				if err != nil {
					d.errf(v.pos, "nat.snat.to: %v", err)
				} else {
					s.To = r
				}
			}
		case "ports":
			if str, ok := d.str(v, p); ok {
				r, err := parsePortRange(str)
				if err != nil {
					d.errf(v.pos, "nat.snat.ports: %v", err)
				} else {
					s.Ports = r
				}
			}
		}
	})
	d.required(t, "[[nat.snat]]", "source", "out")
	d.c.NAT.SNAT = append(d.c.NAT.SNAT, s)
	d.snatT = append(d.snatT, t)
}

func (d *decoder) floating(t *table) {
	f := Floating{Pos: t.pos}
	d.each(t, "nat.floating", []string{"external", "internal"}, func(e *entry, p string) {
		v := e.val
		s, ok := d.str(v, p)
		if !ok {
			return
		}
		a, err := parseAddr4(s)
		if err != nil {
			d.errf(v.pos, "%s: %v", p, err)
			return
		}
		if e.key == "external" {
			f.External = a
		} else {
			f.Internal = a
		}
	})
	d.required(t, "[[nat.floating]]", "external", "internal")
	d.c.NAT.Floating = append(d.c.NAT.Floating, f)
	d.floatT = append(d.floatT, t)
}

func (d *decoder) forward(t *table) {
	f := Forward{Pos: t.pos}
	d.each(t, "nat.forward", []string{"proto", "external", "internal"}, func(e *entry, p string) {
		v := e.val
		switch e.key {
		case "proto":
			if s, ok := d.str(v, p); ok {
				if s != "tcp" && s != "udp" {
					d.errf(v.pos, "nat.forward.proto %q is not one of tcp, udp", s)
				} else {
					f.Proto = s
				}
			}
		case "external":
			if s, ok := d.str(v, p); ok {
				ap, err := parseAddrPort4(s)
				if err != nil {
					d.errf(v.pos, "nat.forward.external: %v", err)
				} else {
					f.External = ap
				}
			}
		case "internal":
			// a single "ip:port" string is accepted as a one-element list
			if v.kind == kString {
				if ap, err := parseAddrPort4(v.s); err != nil {
					d.errf(v.pos, "nat.forward.internal: %v", err)
				} else {
					f.Internal = []netip.AddrPort{ap}
				}
				return
			}
			vs, _ := d.strArray(v, p)
			if v.kind == kArray && len(v.arr) == 0 {
				d.errf(v.pos, "nat.forward.internal must list at least one ip:port")
			}
			for _, ev := range vs {
				ap, err := parseAddrPort4(ev.s)
				if err != nil {
					d.errf(ev.pos, "nat.forward.internal: %v", err)
					continue
				}
				f.Internal = append(f.Internal, ap)
			}
		}
	})
	d.required(t, "[[nat.forward]]", "proto", "external", "internal")
	d.c.NAT.Forward = append(d.c.NAT.Forward, f)
	d.fwdT = append(d.fwdT, t)
}

func (d *decoder) minDuration(v *value, p string, got, minimum time.Duration, minText, rfc string) time.Duration {
	if got < minimum {
		d.errf(v.pos, "%s %q is below the minimum %s (%s)", p, v.s, minText, rfc)
		return minimum
	}
	return got
}

func (d *decoder) conntrack(t *table) {
	ct := &d.c.Conntrack
	d.each(t, "conntrack", []string{"max", "tcp_established", "tcp_transitory", "udp", "icmp", "fragment_timeout"}, func(e *entry, p string) {
		v := e.val
		if e.key == "max" {
			if n, ok := d.intIn(v, p, 1, 1<<31-1); ok {
				ct.Max = n
			}
			return
		}
		dur, ok := d.duration(v, p)
		if !ok {
			return
		}
		switch e.key {
		case "tcp_established":
			ct.TCPEstablished = d.minDuration(v, p, dur, MinTCPEstablished, "2h4m", "RFC 5382 REQ-5")
		case "tcp_transitory":
			ct.TCPTransitory = d.minDuration(v, p, dur, MinTCPTransitory, "4m", "RFC 5382 REQ-5")
		case "udp":
			ct.UDP = d.minDuration(v, p, dur, MinUDP, "2m", "RFC 4787 REQ-5")
		case "icmp":
			ct.ICMP = d.minDuration(v, p, dur, MinICMPTimeout, "60s", "RFC 5508 REQ-2")
		case "fragment_timeout":
			if dur < MinFragmentTimeout || dur > MaxFragmentTimeout {
				d.errf(v.pos, "%s %q out of range 1s..5m", p, v.s)
				return
			}
			ct.FragmentTimeout = dur
		}
	})
}

func (d *decoder) icmp(t *table) {
	ic := &d.c.ICMP
	d.each(t, "icmp", []string{"rate_per_sec", "burst"}, func(e *entry, p string) {
		switch e.key {
		case "rate_per_sec":
			if n, ok := d.intIn(e.val, p, 0, 1<<31-1); ok {
				ic.RatePerSec = n
			}
		case "burst":
			if n, ok := d.intIn(e.val, p, 1, 1<<31-1); ok {
				ic.Burst = n
			}
		}
	})
}

func (d *decoder) neighbor(t *table) {
	nb := &d.c.Neighbor
	d.each(t, "neighbor", []string{"max", "reachable_time", "stale_time", "retrans_time", "retries", "queue_len", "request_rate"}, func(e *entry, p string) {
		v := e.val
		switch e.key {
		case "max":
			if n, ok := d.intIn(v, p, 1, 1<<31-1); ok {
				nb.Max = n
			}
		case "retries":
			if n, ok := d.intIn(v, p, 1, 255); ok {
				nb.Retries = n
			}
		case "queue_len":
			if n, ok := d.intIn(v, p, 0, 1<<16); ok {
				nb.QueueLen = n
			}
		case "request_rate":
			if n, ok := d.intIn(v, p, 0, 1<<24); ok {
				nb.RequestRate = n
			}
		case "reachable_time":
			if dur, ok := d.duration(v, p); ok {
				nb.ReachableTime = dur
			}
		case "stale_time":
			if dur, ok := d.duration(v, p); ok {
				nb.StaleTime = dur
			}
		case "retrans_time":
			if dur, ok := d.duration(v, p); ok {
				nb.RetransTime = dur
			}
		}
	})
}
