package config

import (
	"strings"
	"testing"
)

func TestHostKeys(t *testing.T) {
	c, err := Parse("t.toml", []byte(base+"host = \"vr-n1\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Networks[0]; n.Host != "vr-n1" || n.HostPuntRate != DefaultHostPuntRate {
		t.Fatalf("host %q rate %d", n.Host, n.HostPuntRate)
	}
	c, err = Parse("t.toml", []byte(base+"host = \"vr-n1\"\nhost_punt_rate = 500\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Networks[0].HostPuntRate; r != 500 {
		t.Fatalf("rate %d", r)
	}
	if c, err := Parse("t.toml", []byte(base)); err != nil || c.Networks[0].Host != "" || c.Networks[0].HostPuntRate != 0 {
		t.Fatalf("no host: %+v %v", c, err)
	}
}

func TestHostErrors(t *testing.T) {
	second := "[[network]]\nname = \"n2\"\nlinks = [\"p2\"]\naddresses = [\"198.51.100.1/24\"]\n"
	for _, tc := range []struct{ name, src, want string }{
		{"too long", "host = \"vr-abcdefghijklm\"\n",
			`t.toml:13:8: network.host: host interface name "vr-abcdefghijklm" is longer than 15 characters (IFNAMSIZ)`},
		{"bad char", "host = \"vr/x\"\n", `t.toml:13:8: network.host: invalid device name "vr/x": no '/', ':', blanks or control characters`},
		{"empty", "host = \"\"\n", `t.toml:13:8: network.host: empty device name`},
		{"type", "host = 3\n", `t.toml:13:8: wrong type for network.host: expected a string, got an integer`},
		{"duplicate", "host = \"vr-x\"\n" + second + "host = \"vr-x\"\n",
			`t.toml:18:8: host interface "vr-x" is already taken by network "n1" (line 9)`},
		{"port device", "host = \"eth9\"\n[[port]]\nname = \"p3\"\ndriver = \"afpacket\"\ndevice = \"eth9\"\n",
			`t.toml:13:8: host interface "eth9" is already taken: it is the device of port "p3" (line 14)`},
		{"rate without host", "host_punt_rate = 100\n", `t.toml:13:1: host_punt_rate needs host = "NAME" on network "n1"`},
		{"rate range", "host = \"vr-x\"\nhost_punt_rate = 0\n", `t.toml:14:18: network.host_punt_rate 0 out of range 1..10000000`},
		{"no address", "[[network]]\nname = \"n2\"\nlinks = [\"p2\"]\nhost = \"vr-x\"\n",
			`t.toml:16:8: network "n2": host needs at least one address in addresses (the host interface carries the router's addresses)`},
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
