package tmpdeps

import (
	_ "github.com/gaissmai/bart"
	_ "github.com/gopacket/gopacket/layers"
	_ "github.com/pelletier/go-toml/v2"
	_ "github.com/vishvananda/netlink"
	_ "golang.org/x/sys/unix"
	_ "golang.org/x/term"
)
