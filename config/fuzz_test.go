package config

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("testdata/example.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte(base))
	f.Add([]byte(base + "[[nat.snat]]\nsource = \"10.0.0.0/8\"\nout = \"n1\"\nto = \"192.0.2.1-192.0.2.9\"\nports = \"1-2\"\n"))
	f.Add([]byte("router = { name = \"r\" }\nport = [ { name = \"p\", driver = \"pipe\" } ]\nnat.filtering = 'endpoint-independent'\n"))
	f.Add([]byte("[a.b]\n[a]\nb.c = 1\n[[a.d]]\n[a.d.e]\nx = [[1], {y = 2}]\n"))
	f.Add([]byte("x = {a.b = 1}\n[x.a]\n"))
	f.Add([]byte("[router]\nname = \"r\"\nworkers = 0x7fffffffffffffff\n"))
	f.Add([]byte(base + "filter_in = \"f\"\n[[filter]]\nname = \"f\"\ndefault = \"drop\"\n[[filter.rule]]\naction = \"accept\"\nproto = \"tcp\"\nsource = [\"10.0.0.0/8\", \"192.0.2.7\"]\ndport = \"22,80-90\"\n[[filter.rule]]\naction = \"reject\"\nproto = \"icmp\"\nicmp_type = 8\n"))
	f.Add([]byte("[[network]]\nlinks = [\"a.1\", \"a.0\", \".\", \"a..4\"]\naddresses = [\"0.0.0.0/0\", \"1.2.3.4/32\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.toml", data)
		if err != nil {
			if c != nil {
				t.Fatal("config and error")
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T %v is not a non-empty Errors", err, err)
			}
			prev := Error{}
			for _, e := range errs {
				if e.File != "f.toml" || e.Msg == "" || strings.Contains(e.Msg, "\n") {
					t.Fatalf("bad error %+v", e)
				}
				if e.Line < prev.Line || e.Line == prev.Line && e.Col < prev.Col {
					t.Fatalf("errors out of order: %v", err)
				}
				prev = e
			}
			return
		}
		if c == nil || c.File != "f.toml" {
			t.Fatal("nil config without error")
		}
		if c.Router.Name == "" || c.SocketPath() == "" {
			t.Fatalf("valid config without router name: %+v", c.Router)
		}
		for _, n := range c.Networks {
			if len(n.Links) == 0 {
				t.Fatalf("network %q without links", n.Name)
			}
			for _, l := range n.Links {
				if c.PortByName(l.Port) == nil || l.VID > 4094 {
					t.Fatalf("bad link %v", l)
				}
			}
		}
		for _, n := range c.Networks {
			for _, name := range []string{n.FilterIn, n.FilterOut} {
				if name != "" && c.FilterByName(name) == nil {
					t.Fatalf("network %q names unknown filter %q", n.Name, name)
				}
			}
		}
		for _, f := range c.Filters {
			total := 0
			for i := range f.Rules {
				r := &f.Rules[i]
				total += r.Entries()
				if (len(r.SPort) > 0 || len(r.DPort) > 0) && r.Proto != ProtoTCP && r.Proto != ProtoUDP || r.HasICMPType && r.Proto != ProtoICMP {
					t.Fatalf("filter %q rule %d: fields do not fit proto %q", f.Name, i, r.Proto)
				}
			}
			if total > MaxFilterEntries {
				t.Fatalf("filter %q has %d entries", f.Name, total)
			}
		}
		// parsing is deterministic
		c2, err := Parse("f.toml", data)
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("second parse differs: %v", err)
		}
	})
}
