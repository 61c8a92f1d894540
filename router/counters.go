package router

import "vrouter/internal/counter"

// CounterStage is the Desc.Stage of the router's own counters (drops.go
// and the events below).
const CounterStage = "router"

// Counter names the router's events (its counters other than drops).
type Counter uint8

// Events; eventDescs names and describes each.
const (
	CntRxFrames Counter = iota
	CntForwarded
	CntLocalIn
	CntEchoReplies
	CntICMPErrors
	CntICMPRateLimited
	CntFragmentsOut
	CntARPIn
	CntARPReplies
	CntARPProxyReplies
	CntARPRequests
	CntARPRequestsLimited
	CntGARP
	CntNeighFlushed
	CntL2Switched
	CntL2Flooded
	CntL2UnknownFlood
	CntL2MACTableFull
	CntNATHeld
	CntNATReleased
	CntGSOForwarded
	CntGSOSegmented
	CntCsumCompleted
	CntGROFrames
	CntGROSegments
	CntHostPunted
	CntHostInjected
	CntFilterRejects
	CntFilterResets
	CntPortDeviceLost
	CntPortReopened
	// IPv6 (ipv6.go, ndp.go)
	CntForwarded6
	CntLocalIn6
	CntEchoReplies6
	CntICMPv6Errors
	CntNDIn
	CntNSSent
	CntNASent
	CntDADSent
	CntRASent
	NumCounters
)

var eventDescs = [NumCounters]counter.Desc{
	CntRxFrames:           eventDesc("rx-frames", "frames received on every port"),
	CntForwarded:          eventDesc("forwarded", "IPv4 packets routed to a next hop or a connected host"),
	CntLocalIn:            eventDesc("local-in", "IPv4 packets addressed to the router itself"),
	CntEchoReplies:        eventDesc("echo-replies", "ICMP echo replies the router sent"),
	CntICMPErrors:         eventDesc("icmp-errors-sent", "ICMP errors the router sent (unreachable, time exceeded, fragmentation needed)"),
	CntICMPRateLimited:    eventDesc("icmp-rate-limited", "ICMP errors not sent because of the rate limit ([icmp] rate_per_sec, burst)"),
	CntFragmentsOut:       eventDesc("fragments-created", "fragments made from packets larger than the egress MTU"),
	CntARPIn:              eventDesc("arp-in", "ARP packets received"),
	CntARPReplies:         eventDesc("arp-replies", "ARP replies sent for the router's own addresses"),
	CntARPProxyReplies:    eventDesc("arp-proxy-replies", "ARP replies sent on behalf of others (proxy ARP, published, floating and host-routed addresses)"),
	CntARPRequests:        eventDesc("arp-requests-sent", "ARP requests sent to resolve next hops"),
	CntARPRequestsLimited: eventDesc("arp-requests-limited", "ARP requests not sent because of the router-wide rate limit ([neighbor] request_rate); the entry asks again after retrans_time"),
	CntGARP:               eventDesc("garp-sent", "gratuitous ARP announcements sent"),
	CntNeighFlushed:       eventDesc("neigh-queue-flushed", "packets sent after waiting for their next hop to resolve"),
	CntL2Switched:         eventDesc("l2-switched", "frames switched to the one link a destination MAC was learned on"),
	CntL2Flooded:          eventDesc("l2-flooded", "frame copies flooded to the other links of a switched network (broadcast, multicast, unknown unicast)"),
	CntL2UnknownFlood:     eventDesc("l2-unknown-unicast", "unicast frames flooded because their destination MAC is not learned yet"),
	CntL2MACTableFull:     eventDesc("l2-mac-table-full", "source MACs not learned: the network's MAC table had no free or aged slot for them (a MAC flood; the frames are still switched, by flooding)"),
	CntNATHeld:            eventDesc("nat-fragments-held", "non-first fragments held until their first fragment gives the NAT its ports"),
	CntGSOForwarded:       eventDesc("gso-forwarded", "GSO super-frames routed and sent on intact to a port that takes offloads"),
	CntGSOSegmented:       eventDesc("gso-segmented", "GSO super-frames cut into segments in software (egress without offloads, a switched network, ARP or fragmentation)"),
	CntCsumCompleted:      eventDesc("csum-completed", "partial L4 checksums completed in software (egress without offloads, a switched network, ARP or fragmentation)"),
	CntGROFrames:          eventDesc("gro-superframes", "super-frames the router built from consecutive TCP segments of a flow on their way out (a port with gro)"),
	CntGROSegments:        eventDesc("gro-segments", "TCP segments sent as part of such a super-frame (instead of one by one)"),
	CntHostPunted:         eventDesc("host-punted", "packets handed to a network's host interface (the kernel's control plane)"),
	CntHostInjected:       eventDesc("host-injected", "frames the kernel wrote on a host interface, sent out on the network's links"),
	CntNATReleased:        eventDesc("nat-fragments-released", "held fragments sent on after their first fragment came"),
	CntFilterRejects:      eventDesc("filter-rejects", "first packets a filter rejected: answered with a TCP RST, or ICMP 3/13 (IPv6: ICMPv6 1/1), rate limited"),
	CntFilterResets:       eventDesc("filter-resets-sent", "TCP RSTs sent for segments a filter rejected"),
	CntPortDeviceLost:     eventDesc("port-device-lost", "ports whose kernel device disappeared while the router ran (the port is down until the device comes back)"),
	CntPortReopened:       eventDesc("port-reopened", "ports opened again by themselves on their device recreated after it disappeared"),
	CntForwarded6:         eventDesc("forwarded6", "IPv6 packets routed to a next hop or a connected host"),
	CntLocalIn6:           eventDesc("local-in6", "IPv6 packets addressed to the router itself (neighbour discovery included)"),
	CntEchoReplies6:       eventDesc("echo6-replies", "ICMPv6 echo replies the router sent"),
	CntICMPv6Errors:       eventDesc("icmpv6-errors-sent", "ICMPv6 errors the router sent (unreachable, packet too big, time exceeded, parameter problem)"),
	CntNDIn:               eventDesc("nd-in", "neighbour discovery messages received (RS, RA, NS, NA, redirect)"),
	CntNSSent:             eventDesc("nd-ns-sent", "neighbour solicitations sent to resolve IPv6 next hops"),
	CntNASent:             eventDesc("nd-na-sent", "neighbour advertisements sent for the router's addresses"),
	CntDADSent:            eventDesc("nd-dad-sent", "duplicate address detection probes sent for the router's IPv6 addresses"),
	CntRASent:             eventDesc("nd-ra-sent", "router advertisements sent (periodic and solicited)"),
}

func eventDesc(name, help string) counter.Desc {
	return counter.Desc{Stage: CounterStage, Name: name, Help: help, Kind: counter.Event}
}

// String is the event's counter name ("forwarded").
func (c Counter) String() string {
	if c < NumCounters {
		return eventDescs[c].Name
	}
	return "counter?"
}

// Description is a one-line explanation of the event.
func (c Counter) Description() string {
	if c < NumCounters {
		return eventDescs[c].Help
	}
	return ""
}

// Descs lists the router stage's counters: every drop reason (without
// DropNone), then every event.
func Descs() []counter.Desc {
	out := make([]counter.Desc, 0, int(NumDropReasons)-1+int(NumCounters))
	out = append(out, dropDescs[DropNone+1:]...)
	return append(out, eventDescs[:]...)
}
