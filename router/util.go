package router

import "vrouter/packet"

func packetMAC(m packet.MAC) string { return m.String() }
