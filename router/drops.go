package router

import "vrouter/internal/counter"

// DropReason names why the router did not forward a frame. Every drop on
// the data path has one, with a counter per worker summed when read.
type DropReason uint8

// Drop reasons; dropDescs names and describes each.
const (
	DropNone DropReason = iota
	DropL2Short
	DropUnknownVLAN
	DropNotForUs
	DropQinQ
	DropEtherType
	DropARPMalformed
	DropARPBadSender
	DropARPNotOurs
	DropARPConflict
	DropIPTooShort
	DropIPVersion
	DropIPBadIHL
	DropIPBadTotalLen
	DropIPTruncated
	DropIPChecksum
	DropSourceRoute
	DropMartianSource
	DropL2BcastUnicastIP
	DropMulticast
	DropBroadcast
	DropDirectedBroadcast
	DropNoRoute
	DropRouteStale
	DropBlackhole
	DropUnreachableRoute
	DropProhibitedRoute
	DropTTLExceeded
	DropFragNeeded
	DropLocalProto
	DropLocalFragment
	DropARPQueued
	DropARPQueueFull
	DropARPFailed
	DropTxError
	DropNAT
	DropSpoofed
	DropL2SameLink
	DropOffloadBad
	DropHostPuntLimit
	DropHostTagged
	DropHostStale
	DropFilter
	DropFilterInvalid
	DropHABackupARP
	// IPv6 (ipv6.go, ndp.go)
	DropIPv6Off
	DropIPv6TooShort
	DropIPv6Version
	DropIPv6BadLength
	DropIPv6BadExt
	DropIPv6BadOption
	DropIPv6RH0
	DropIPv6MartianSource
	DropIPv6LinkLocal
	DropIPv6Multicast
	DropIPv6HopLimit
	DropIPv6TooBig
	DropIPv6UnknownNext
	DropIPv6Filtered
	DropICMPv6Bad
	DropNDInvalid
	DropNDNotOurs
	DropNDConflict
	DropNDIgnored
	DropNDQueued
	DropNDQueueFull
	DropNDFailed
	NumDropReasons
)

var dropDescs = [NumDropReasons]counter.Desc{
	DropNone:              dropDesc("none", "not dropped"),
	DropL2Short:           dropDesc("l2-short", "frame shorter than its Ethernet/802.1Q header"),
	DropUnknownVLAN:       dropDesc("unknown-vlan", "frame on a port/VLAN that belongs to no network (unlisted VID or untagged link not configured)"),
	DropNotForUs:          dropDesc("not-for-us", "unicast frame for another host's MAC on a routed (single-link) network"),
	DropQinQ:              dropDesc("qinq", "double-tagged (QinQ) frame"),
	DropEtherType:         dropDesc("ethertype", "EtherType neither IPv4, ARP nor IPv6"),
	DropARPMalformed:      dropDesc("arp-malformed", "ARP packet that is not Ethernet/IPv4 or is truncated"),
	DropARPBadSender:      dropDesc("arp-bad-sender", "ARP with a broadcast/multicast sender MAC or a sender outside the segment"),
	DropARPNotOurs:        dropDesc("arp-not-ours", "ARP request for an address the router does not answer for (counted, not an error)"),
	DropARPConflict:       dropDesc("arp-conflict", "ARP from another MAC claiming one of the router's addresses"),
	DropIPTooShort:        dropDesc("ip-too-short", "IPv4 packet shorter than 20 bytes"),
	DropIPVersion:         dropDesc("ip-version", "IP version field is not 4"),
	DropIPBadIHL:          dropDesc("ip-bad-ihl", "IPv4 IHL < 5 or header longer than the packet"),
	DropIPBadTotalLen:     dropDesc("ip-bad-total-length", "IPv4 total length smaller than the header"),
	DropIPTruncated:       dropDesc("ip-truncated", "IPv4 total length larger than the bytes received"),
	DropIPChecksum:        dropDesc("ip-checksum", "IPv4 header checksum is wrong"),
	DropSourceRoute:       dropDesc("source-route", "IPv4 packet with a source-route option (LSRR/SSRR)"),
	DropMartianSource:     dropDesc("martian-source", "source address 0/8, 127/8, multicast or reserved (RFC 1812 5.3.7)"),
	DropL2BcastUnicastIP:  dropDesc("l2-broadcast-unicast-ip", "unicast IPv4 destination in a link-layer broadcast/multicast frame"),
	DropMulticast:         dropDesc("multicast", "IPv4 multicast destination (not routed)"),
	DropBroadcast:         dropDesc("broadcast", "IPv4 broadcast for the local segment (not forwarded)"),
	DropDirectedBroadcast: dropDesc("directed-broadcast", "directed broadcast to a connected subnet (not forwarded, RFC 2644)"),
	DropNoRoute:           dropDesc("no-route", "no route to the destination (ICMP 3/0 sent)"),
	DropRouteStale:        dropDesc("route-stale", "route to a network that the reload being applied has just removed (the FIB catches up within the reload)"),
	DropBlackhole:         dropDesc("blackhole", "route of type blackhole"),
	DropUnreachableRoute:  dropDesc("unreachable-route", "route of type unreachable (ICMP 3/1 sent)"),
	DropProhibitedRoute:   dropDesc("prohibited-route", "route of type prohibit (ICMP 3/13 sent)"),
	DropTTLExceeded:       dropDesc("ttl-exceeded", "TTL expired in transit (ICMP 11/0 sent)"),
	DropFragNeeded:        dropDesc("frag-needed", "larger than the egress MTU with DF set (ICMP 3/4 sent)"),
	DropLocalProto:        dropDesc("local-protocol", "packet for a router address with no service (ICMP echo is the only one)"),
	DropLocalFragment:     dropDesc("local-fragment", "fragment addressed to the router (no local reassembly)"),
	DropARPQueued:         dropDesc("arp-queued", "held while the next hop is resolved (sent later, not lost)"),
	DropARPQueueFull:      dropDesc("arp-queue-full", "next hop unresolved and its queue is full"),
	DropARPFailed:         dropDesc("arp-failed", "next hop did not answer ARP (ICMP 3/1 sent once)"),
	DropTxError:           dropDesc("tx-error", "the port refused the frame"),
	DropNAT:               dropDesc("nat", "dropped by NAT/conntrack (see show nat for the reason)"),
	DropSpoofed:           dropDesc("spoofed", "source address not owned by the host-routed guest"),
	DropL2SameLink:        dropDesc("l2-same-link", "switched frame whose destination MAC is on the link it came from"),
	DropOffloadBad:        dropDesc("offload-bad", "GSO super-frame or partial checksum whose metadata does not fit the packet, or a GSO type the router cannot segment"),
	DropHostPuntLimit:     dropDesc("host-punt-limit", "packet for a network's host interface over its host_punt_rate"),
	DropHostTagged:        dropDesc("host-tagged", "802.1Q-tagged frame written by the kernel on a host interface (VLAN subinterfaces of a host interface are not supported)"),
	DropHostStale:         dropDesc("host-stale", "frame from a host interface whose network a reload has just removed"),
	DropFilter:            dropDesc("filter", "first packet of a flow refused by a filter ruleset: a rule or the default said drop or reject (show filter; trace names the rule)"),
	DropFilterInvalid:     dropDesc("filter-invalid", "packet on a filtered network that belongs to no session and cannot start one (TCP other than a SYN, a truncated header), or that its session refuses (an RST outside the window)"),
	DropHABackupARP:       dropDesc("ha-backup-arp", "ARP request for a floating IP or NAT address left unanswered because this router is not the HA master"),
	DropIPv6Off:           dropDesc("ipv6-off", "IPv6 frame on a network without an IPv6 address (IPv6 is routed only where addresses has one)"),
	DropIPv6TooShort:      dropDesc("ipv6-too-short", "IPv6 packet shorter than its 40-byte header"),
	DropIPv6Version:       dropDesc("ipv6-version", "EtherType IPv6 but the version field is not 6"),
	DropIPv6BadLength:     dropDesc("ipv6-bad-length", "IPv6 payload length larger than the bytes received, or 0 (jumbograms are not supported)"),
	DropIPv6BadExt:        dropDesc("ipv6-bad-extension", "IPv6 extension headers truncated, more than 8 of them, or a hop-by-hop header not first (ICMPv6 parameter problem for the latter)"),
	DropIPv6BadOption:     dropDesc("ipv6-bad-option", "hop-by-hop option the router does not know and may not skip (RFC 8200 4.2; ICMPv6 parameter problem 4/2 unless the action bits say not to)"),
	DropIPv6RH0:           dropDesc("ipv6-routing-header-0", "IPv6 packet with a type 0 routing header (RFC 5095)"),
	DropIPv6MartianSource: dropDesc("ipv6-martian-source", "IPv6 source ::, ::1, multicast or IPv4-mapped"),
	DropIPv6LinkLocal:     dropDesc("ipv6-link-local", "link-local source or destination in a packet to be forwarded (never routed; ICMPv6 1/2 to link-local sources)"),
	DropIPv6Multicast:     dropDesc("ipv6-multicast", "IPv6 multicast that is not for the router (multicast is not routed)"),
	DropIPv6HopLimit:      dropDesc("ipv6-hop-limit", "hop limit expired in transit (ICMPv6 3/0 sent)"),
	DropIPv6TooBig:        dropDesc("ipv6-too-big", "IPv6 packet larger than the egress MTU (routers do not fragment IPv6: ICMPv6 packet too big sent)"),
	DropIPv6UnknownNext:   dropDesc("ipv6-unknown-next-header", "packet for the router with a next header it does not know (ICMPv6 parameter problem 4/1 sent)"),
	DropIPv6Filtered:      dropDesc("ipv6-filter", "IPv6 packet from or to a network with a filter ruleset (filters match IPv4 only, so IPv6 is refused there)"),
	DropICMPv6Bad:         dropDesc("icmpv6-bad", "ICMPv6 message for the router that is truncated or has a wrong checksum"),
	DropNDInvalid:         dropDesc("nd-invalid", "neighbour discovery message failing RFC 4861 validation (hop limit not 255, bad code, length, option or source)"),
	DropNDNotOurs:         dropDesc("nd-not-ours", "neighbour solicitation for an address the router does not have (counted, not an error)"),
	DropNDConflict:        dropDesc("nd-dad-conflict", "another host claims one of the router's IPv6 addresses (duplicate address detection; logged)"),
	DropNDIgnored:         dropDesc("nd-ignored", "router advertisement, redirect, router solicitation on a network without ra, or advertisement without a link-layer address (not acted on)"),
	DropNDQueued:          dropDesc("nd-queued", "held while the IPv6 next hop is resolved (sent later, not lost)"),
	DropNDQueueFull:       dropDesc("nd-queue-full", "IPv6 next hop unresolved and its queue is full"),
	DropNDFailed:          dropDesc("nd-failed", "IPv6 next hop did not answer neighbour solicitations (ICMPv6 1/3 sent once)"),
}

func dropDesc(name, help string) counter.Desc {
	return counter.Desc{Stage: CounterStage, Name: name, Help: help, Kind: counter.Drop}
}

// String is the reason's counter name ("no-route").
func (r DropReason) String() string {
	if r < NumDropReasons {
		return dropDescs[r].Name
	}
	return "drop?"
}

// Description is a one-line explanation of the reason.
func (r DropReason) Description() string {
	if r < NumDropReasons {
		return dropDescs[r].Help
	}
	return ""
}
