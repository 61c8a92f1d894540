package config

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

func TestHAKeys(t *testing.T) {
	c, err := Parse("t.toml", []byte(base+"host = \"ha-n1\"\n[ha]\nlocal = \"192.0.2.1\"\npeer = \"192.0.2.2\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := c.HA
	if !h.Enabled() || h.Local != netip.MustParseAddr("192.0.2.1") || h.Peer != netip.MustParseAddr("192.0.2.2") ||
		h.Port != DefaultHAPort || h.Initial != HABackup || h.Key != nil {
		t.Fatalf("defaults: %+v", h)
	}
	key := strings.Repeat("ab", 32)
	c, err = Parse("t.toml", []byte(base+"host = \"ha-n1\"\n[ha]\nlocal = \"192.0.2.1\"\npeer = \"192.0.2.2\"\nport = 4000\ninitial = \"master\"\nkey = \""+key+"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if h := c.HA; h.Port != 4000 || h.Initial != HAMaster || !bytes.Equal(h.Key, bytes.Repeat([]byte{0xab}, 32)) {
		t.Fatalf("set: %+v", h)
	}
	if c, err := Parse("t.toml", []byte(base)); err != nil || c.HA.Enabled() {
		t.Fatalf("no [ha]: %+v %v", c.HA, err)
	}
}

func TestHAErrors(t *testing.T) {
	host := "host = \"ha-n1\"\n"
	for _, tc := range []struct{ name, src, want string }{
		{"not ours", host + "[ha]\nlocal = \"192.0.2.9\"\npeer = \"192.0.2.2\"\n",
			`t.toml:15:9: [ha] local 192.0.2.9 is none of the router's addresses`},
		{"no host", "[ha]\nlocal = \"192.0.2.1\"\npeer = \"192.0.2.2\"\n",
			`t.toml:14:9: [ha] local 192.0.2.1 is on network "n1", which has no host interface`},
		{"peer is local", host + "[ha]\nlocal = \"192.0.2.1\"\npeer = \"192.0.2.1\"\n",
			`t.toml:16:8: [ha] peer 192.0.2.1 is local itself`},
		{"missing peer", host + "[ha]\nlocal = \"192.0.2.1\"\n", `t.toml:14:1: missing required key "peer" in [ha]`},
		{"bad addr", host + "[ha]\nlocal = \"192.0.2.1\"\npeer = \"2001:db8::1\"\n", `t.toml:16:8: ha.peer: invalid IPv4 address "2001:db8::1"`},
		{"state", host + "[ha]\nlocal = \"192.0.2.1\"\npeer = \"192.0.2.2\"\ninitial = \"primary\"\n",
			`t.toml:17:11: ha.initial: invalid HA state "primary" (master, backup or fault)`},
		{"port", host + "[ha]\nlocal = \"192.0.2.1\"\npeer = \"192.0.2.2\"\nport = 70000\n", `t.toml:17:8: ha.port 70000 out of range 1..65535`},
		{"key", host + "[ha]\nlocal = \"192.0.2.1\"\npeer = \"192.0.2.2\"\nkey = \"secret\"\n",
			`t.toml:17:7: ha.key: want 16 to 64 bytes written as hex digits`},
		{"unknown", host + "[ha]\nlocal = \"192.0.2.1\"\npeer = \"192.0.2.2\"\nprio = 1\n", `t.toml:17:1: unknown key "ha.prio"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.toml", []byte(base+tc.src))
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.src)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got\n%v\nwant\n%s", err, tc.want)
			}
		})
	}
}
