package router

import (
	"net"
	"testing"
)

// ifIndex finds a device as net.InterfaceByName does, says false for a
// missing one, and does not dump the interface table (a few allocations).
func TestIfIndex(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if i, ok := ifIndex("lo"); !ok || i != lo.Index {
		t.Fatalf("ifIndex(lo) = %d, %v; want %d", i, ok, lo.Index)
	}
	if i, ok := ifIndex("nosuchdev0"); ok {
		t.Fatalf("ifIndex of a missing device = %d, true", i)
	}
	if a := testing.AllocsPerRun(20, func() { ifIndex("lo") }); a > 2 {
		t.Fatalf("%v allocations per look", a)
	}
}
