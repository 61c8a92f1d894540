package fib6

import (
	"net/netip"
	"testing"

	"vrouter/fib"
)

func TestLongestMatchAndSources(t *testing.T) {
	tb := New()
	tb.Add(Route{Prefix: netip.MustParsePrefix("::/0"), Source: fib.Static, NH: NextHop{Kind: fib.KindGateway, Network: 1}})
	tb.Add(Route{Prefix: netip.MustParsePrefix("2001:db8::/32"), Source: fib.Kernel, NH: NextHop{Kind: fib.KindConnected, Network: 2}})
	tb.Add(Route{Prefix: netip.MustParsePrefix("2001:db8:1::/64"), Source: fib.Static, NH: NextHop{Kind: fib.KindConnected, Network: 3}})
	tb.Add(Route{Prefix: netip.MustParsePrefix("2001:db8:1::/64"), Source: fib.Connected, NH: NextHop{Kind: fib.KindConnected, Network: 4}})
	for _, c := range []struct {
		addr string
		net  uint16
	}{{"2001:db8:1::5", 4}, {"2001:db8:2::5", 2}, {"2001:db9::1", 1}} {
		nh, ok := tb.Lookup(netip.MustParseAddr(c.addr).As16())
		if !ok || nh.Network != c.net {
			t.Errorf("%s: got %+v %v, want network %d", c.addr, nh, ok, c.net)
		}
		r, ok := tb.Match(netip.MustParseAddr(c.addr))
		if !ok || r.NH.Network != c.net {
			t.Errorf("Match %s: got %+v", c.addr, r)
		}
	}
	if !tb.Delete(netip.MustParsePrefix("2001:db8:1::/64"), fib.Connected) {
		t.Fatal("delete")
	}
	if nh, _ := tb.Lookup(netip.MustParseAddr("2001:db8:1::5").As16()); nh.Network != 3 {
		t.Errorf("after delete: %+v", nh)
	}
	tb.ReplaceSource(fib.Static, nil)
	if _, ok := tb.Lookup(netip.MustParseAddr("2001:db9::1").As16()); ok {
		t.Error("default route survived ReplaceSource")
	}
	if tb.Len() != 1 || len(tb.Routes()) != 1 { // the /64 had only static left
		t.Errorf("Len %d Routes %v", tb.Len(), tb.Routes())
	}
}
