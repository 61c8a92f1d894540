package router

// DropReason names why the router did not forward a frame. Every drop on
// the data path has one, with a counter per worker summed when read.
type DropReason uint8

// Drop reasons. Keep reasonInfo in the same order.
const (
	DropNone DropReason = iota
	DropL2Short
	DropUnknownVLAN
	DropNotForUs
	DropQinQ
	DropIPv6
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
	DropNoBuffer
	DropTxError
	DropNAT
	DropSpoofed
	DropL2SameLink
	NumDropReasons
)

type reasonInfo struct{ name, desc string }

var reasons = [NumDropReasons]reasonInfo{
	{"none", "not dropped"},
	{"l2-short", "frame shorter than its Ethernet/802.1Q header"},
	{"unknown-vlan", "frame on a port/VLAN that belongs to no network (unlisted VID or untagged link not configured)"},
	{"not-for-us", "unicast frame for another host's MAC on a routed (single-link) network"},
	{"qinq", "double-tagged (QinQ) frame"},
	{"ipv6", "IPv6 is not routed yet"},
	{"ethertype", "EtherType neither IPv4 nor ARP"},
	{"arp-malformed", "ARP packet that is not Ethernet/IPv4 or is truncated"},
	{"arp-bad-sender", "ARP with a broadcast/multicast sender MAC or a sender outside the segment"},
	{"arp-not-ours", "ARP request for an address the router does not answer for (counted, not an error)"},
	{"arp-conflict", "ARP from another MAC claiming one of the router's addresses"},
	{"ip-too-short", "IPv4 packet shorter than 20 bytes"},
	{"ip-version", "IP version field is not 4"},
	{"ip-bad-ihl", "IPv4 IHL < 5 or header longer than the packet"},
	{"ip-bad-total-length", "IPv4 total length smaller than the header"},
	{"ip-truncated", "IPv4 total length larger than the bytes received"},
	{"ip-checksum", "IPv4 header checksum is wrong"},
	{"source-route", "IPv4 packet with a source-route option (LSRR/SSRR)"},
	{"martian-source", "source address 0/8, 127/8, multicast or reserved (RFC 1812 5.3.7)"},
	{"l2-broadcast-unicast-ip", "unicast IPv4 destination in a link-layer broadcast/multicast frame"},
	{"multicast", "IPv4 multicast destination (not routed)"},
	{"broadcast", "IPv4 broadcast for the local segment (not forwarded)"},
	{"directed-broadcast", "directed broadcast to a connected subnet (not forwarded, RFC 2644)"},
	{"no-route", "no route to the destination (ICMP 3/0 sent)"},
	{"route-stale", "route to a network that the reload being applied has just removed (the FIB catches up within the reload)"},
	{"blackhole", "route of type blackhole"},
	{"unreachable-route", "route of type unreachable (ICMP 3/1 sent)"},
	{"prohibited-route", "route of type prohibit (ICMP 3/13 sent)"},
	{"ttl-exceeded", "TTL expired in transit (ICMP 11/0 sent)"},
	{"frag-needed", "larger than the egress MTU with DF set (ICMP 3/4 sent)"},
	{"local-protocol", "packet for a router address with no service (ICMP echo is the only one)"},
	{"local-fragment", "fragment addressed to the router (no local reassembly)"},
	{"arp-queued", "held while the next hop is resolved (sent later, not lost)"},
	{"arp-queue-full", "next hop unresolved and its queue is full"},
	{"arp-failed", "next hop did not answer ARP (ICMP 3/1 sent once)"},
	{"no-buffer", "no scratch buffer for a generated packet or fragment"},
	{"tx-error", "the port refused the frame"},
	{"nat", "dropped by NAT/conntrack (see show nat for the reason)"},
	{"spoofed", "source address not owned by the host-routed guest"},
	{"l2-same-link", "switched frame whose destination MAC is on the link it came from"},
}

func (r DropReason) String() string { return reasons[r].name }

// Description is a one-line explanation of the reason.
func (r DropReason) Description() string { return reasons[r].desc }
