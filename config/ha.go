package config

import (
	"encoding/hex"
	"fmt"
	"net/netip"
)

// This file holds [ha]: the redundant pair's session sync (package ha) and
// the state the router starts in before keepalived's notify scripts set it.
//
// Sync runs over UDP between `local` and `peer`, through the host interface
// of the network that holds `local` (the kernel owns that address on the
// TAP in the router's namespace, so a plain UDP socket reaches the peer by
// the router's own data path): `local` must therefore be an address of a
// network with `host = "NAME"`.

// DefaultHAPort is the default [ha] port (UDP).
const DefaultHAPort = 3780

// HA states, as `initial` and `ha state` spell them.
const (
	HAMaster = "master"
	HABackup = "backup"
	HAFault  = "fault"
)

// DefaultHAInitial is the state before keepalived says otherwise: silent
// (never answering for the shared addresses) until told.
const DefaultHAInitial = HABackup

// HA key lengths: `key` is hex, 16 to 64 bytes (32 to 128 hex digits).
const (
	MinHAKeyBytes = 16
	MaxHAKeyBytes = 64
)

// HA is [ha]. Local is invalid when the section is absent (HA off).
type HA struct {
	Local   netip.Addr
	Peer    netip.Addr
	Port    int
	Initial string // master | backup | fault
	Key     []byte // HMAC-SHA256 key of every sync datagram; nil: unauthenticated
	Pos     Pos
}

// Enabled reports whether [ha] is configured.
func (h *HA) Enabled() bool { return h.Local.IsValid() }

// ParseHAState checks a state name (`initial`, `ha state`).
func ParseHAState(s string) (string, error) {
	switch s {
	case HAMaster, HABackup, HAFault:
		return s, nil
	}
	return "", fmt.Errorf("invalid HA state %q (master, backup or fault)", s)
}

func (d *decoder) ha(t *table) {
	d.haT = t
	h := &d.c.HA
	h.Pos = t.pos
	d.required(t, "[ha]", "local", "peer")
	d.each(t, "ha", []string{"local", "peer", "port", "initial", "key"}, func(e *entry, p string) {
		v := e.val
		switch e.key {
		case "local", "peer":
			s, ok := d.str(v, p)
			if !ok {
				return
			}
			a, err := parseAddr4(s)
			if err != nil {
				d.errf(v.pos, "%s: %v", p, err)
				return
			}
			if e.key == "local" {
				h.Local = a
			} else {
				h.Peer = a
			}
		case "port":
			if n, ok := d.intIn(v, p, 1, 65535); ok {
				h.Port = n
			}
		case "initial":
			s, ok := d.str(v, p)
			if !ok {
				return
			}
			st, err := ParseHAState(s)
			if err != nil {
				d.errf(v.pos, "%s: %v", p, err)
				return
			}
			h.Initial = st
		case "key":
			s, ok := d.str(v, p)
			if !ok {
				return
			}
			k, err := hex.DecodeString(s)
			if err != nil || len(k) < MinHAKeyBytes || len(k) > MaxHAKeyBytes {
				d.errf(v.pos, "%s: want %d to %d bytes written as hex digits (e.g. the output of `openssl rand -hex 32`)", p, MinHAKeyBytes, MaxHAKeyBytes)
				return
			}
			h.Key = k
		}
	})
}

// validateHA checks [ha] against the networks: local is one of the
// router's addresses, on a network with a host interface (sync travels
// through it), and the peer is another address.
func (d *decoder) validateHA() {
	h := &d.c.HA
	t := d.haT
	if t == nil || !h.Local.IsValid() {
		return
	}
	if h.Peer.IsValid() && h.Peer == h.Local {
		d.errf(vpos(t, "peer"), "[ha] peer %s is local itself", h.Peer)
	}
	for _, n := range d.c.Networks {
		for _, p := range n.Addresses {
			if p.Addr() != h.Local {
				continue
			}
			if n.Host == "" {
				d.errf(vpos(t, "local"), "[ha] local %s is on network %q, which has no host interface: session sync travels through it (set host = \"NAME\" there)", h.Local, n.Name)
			}
			return
		}
	}
	d.errf(vpos(t, "local"), "[ha] local %s is none of the router's addresses", h.Local)
}

func (c *Config) applyHADefaults() {
	if !c.HA.Local.IsValid() {
		return
	}
	setInt(&c.HA.Port, DefaultHAPort)
	if c.HA.Initial == "" {
		c.HA.Initial = DefaultHAInitial
	}
}
