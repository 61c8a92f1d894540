package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Error is one problem in a configuration file. Line and Col are 1-based;
// zero when the problem has no position (for example a missing section).
type Error struct {
	File      string
	Line, Col int
	Msg       string
}

// Error gives FILE:LINE:COL: message, leaving out LINE and COL when unknown.
func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
		if e.Col > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Col))
		}
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a file, in file order.
type Errors []Error

// Error gives one line per problem.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// DefaultSocketDir is where control sockets go unless [router] console says
// otherwise.
const DefaultSocketDir = "/run/vrouter"

// Load reads, parses and validates the file at path. On failure the error is
// an Errors value (also for a file that cannot be read).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		msg := err.Error()
		if errors.As(err, &pe) {
			msg = pe.Err.Error()
		}
		return nil, Errors{{File: path, Msg: "cannot read configuration: " + msg}}
	}
	return Parse(path, data)
}

// Parse parses and validates data; file is used in error messages and kept
// in Config.File. On failure the error is an Errors value listing every
// problem in file order (a TOML syntax error stops parsing and is reported
// alone).
func Parse(file string, data []byte) (*Config, error) {
	errs := &errList{file: file}
	root, ok := parseTree(data, errs)
	if !ok {
		return nil, errs.sorted()
	}
	d := &decoder{errs: errs}
	c := d.decode(root)
	c.File = file
	if len(errs.list) > 0 {
		return nil, errs.sorted()
	}
	return c, nil
}

// SocketPath is the control socket: [router] console, or
// /run/vrouter/NAME.sock.
func (c *Config) SocketPath() string {
	if c.Router.Console != "" {
		return c.Router.Console
	}
	return DefaultSocketDir + "/" + c.Router.Name + ".sock"
}

// NetworkIndex is the index of the network called name in c.Networks, or -1.
func (c *Config) NetworkIndex(name string) int {
	for i := range c.Networks {
		if c.Networks[i].Name == name {
			return i
		}
	}
	return -1
}

// NetworkByName is the network called name, or nil.
func (c *Config) NetworkByName(name string) *Network {
	if i := c.NetworkIndex(name); i >= 0 {
		return &c.Networks[i]
	}
	return nil
}

// PortIndex is the index of the port called name in c.Ports, or -1.
func (c *Config) PortIndex(name string) int {
	for i := range c.Ports {
		if c.Ports[i].Name == name {
			return i
		}
	}
	return -1
}

// PortByName is the port called name, or nil.
func (c *Config) PortByName(name string) *Port {
	if i := c.PortIndex(name); i >= 0 {
		return &c.Ports[i]
	}
	return nil
}

// ParseLink parses a network link: "port" (untagged) or "port.VID" (802.1Q
// VLAN VID of port, 1..4094). The name is split at the last dot.
func ParseLink(s string) (Link, error) {
	if s == "" {
		return Link{}, errors.New("empty link")
	}
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return Link{Port: s}, nil
	}
	port, vs := s[:i], s[i+1:]
	if port == "" {
		return Link{}, fmt.Errorf("invalid link %q: missing port name before the dot", s)
	}
	if vs == "" {
		return Link{}, fmt.Errorf("invalid link %q: missing VLAN ID after the dot", s)
	}
	for _, c := range vs {
		if c < '0' || c > '9' {
			return Link{}, fmt.Errorf("invalid link %q: VLAN ID %q is not a number", s, vs)
		}
	}
	vid, err := strconv.Atoi(vs)
	if err != nil || vid < 1 || vid > 4094 {
		return Link{}, fmt.Errorf("invalid link %q: VLAN ID %s out of range 1..4094", s, vs)
	}
	return Link{Port: port, VID: uint16(vid)}, nil
}
