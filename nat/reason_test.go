package nat

import (
	"testing"

	"vrouter/internal/counter"
)

// Every reason and counter is declared (a keyed table has no holes), and
// Counters reports them all, in Descs order.
func TestCounterTable(t *testing.T) {
	ds := Descs()
	if err := counter.Check(CounterStage, ds); err != nil {
		t.Fatal(err)
	}
	if len(ds) != int(numReasons)-1+len(workerDescs)+numShared {
		t.Fatalf("%d descs", len(ds))
	}
	n, _ := newNAT(t, testConfig())
	vs := n.Counters()
	if len(vs) != len(ds) {
		t.Fatalf("%d values for %d descs", len(vs), len(ds))
	}
	for i := range vs {
		if vs[i].Desc != ds[i] {
			t.Fatalf("value %d is %+v, desc %+v", i, vs[i].Desc, ds[i])
		}
	}
	for _, r := range Reasons() {
		if r.String() != ds[r-1].Name || r.Description() == "" {
			t.Fatalf("reason %d: %q", r, r)
		}
	}
	if Reason(200).String() != "nat-reason?" || Reason(200).Description() != "" {
		t.Fatal("out of range reason")
	}
}
