// Package packet holds header views over []byte for the protocols the router
// parses (Ethernet, 802.1Q, ARP, IPv4, ICMP, UDP, TCP) and the Internet checksum,
// including the RFC 1624 incremental update. Nothing here allocates: a view is a
// slice of the frame, and accessors read and write the bytes in place. Callers
// check lengths before building a view (the Valid/Parse helpers do).
package packet
