package router

import (
	"testing"

	"vrouter/arp"
	"vrouter/ha"
	"vrouter/internal/counter"
	"vrouter/nat"
	"vrouter/router/port"
	"vrouter/router/port/pipe"
)

func TestCounterTables(t *testing.T) {
	if err := counter.Check(CounterStage, append([]counter.Desc{dropDescs[DropNone]}, Descs()...)); err != nil {
		t.Fatal(err)
	}
	if DropReason(250).String() != "drop?" || DropReason(250).Description() != "" || Counter(250).String() != "counter?" {
		t.Fatal("out-of-range names")
	}
	for i := DropNone + 1; i < NumDropReasons; i++ {
		if i.Description() == "" {
			t.Fatalf("drop %d has no description", i)
		}
	}
}

// countedPort is a pipe port whose driver keeps one counter.
type countedPort struct{ *pipe.Port }

var countedDesc = counter.Desc{Stage: "test", Name: "lost", Help: "frames lost", Kind: counter.Drop}

func (countedPort) Counters() []counter.Value { return []counter.Value{{Desc: countedDesc, Value: 7}} }

// AllCounters has every stage's counters in order, the port drivers'
// labelled with their port.
func TestAllCounters(t *testing.T) {
	pa := pipe.New("pa", macA, 1500)
	pb := countedPort{pipe.New("pb", macB, 1400)}
	r, err := New(testConfig(), []port.Port{pa, pb}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{t: t, r: r, pa: pa, pb: pb.Port}
	l.pa.Inject([]byte{1, 2, 3}) // too short: l2-short
	l.run()
	var want []counter.Desc
	want = append(want, Descs()...)
	want = append(want, nat.Descs()...)
	want = append(want, arp.Descs()...)
	want = append(want, ha.Descs()...)
	want = append(want, countedDesc)
	got := r.AllCounters()
	if len(got) != len(want) {
		t.Fatalf("%d values, want %d", len(got), len(want))
	}
	for i, v := range got {
		if v.Desc != want[i] {
			t.Fatalf("value %d: %+v, want %+v", i, v.Desc, want[i])
		}
		switch {
		case v.Stage == "test" && (v.Port != "pb" || v.Value != 7):
			t.Fatalf("port counter %+v", v)
		case v.Stage != "test" && v.Port != "":
			t.Fatalf("stage counter with a port: %+v", v)
		case v.Stage == CounterStage && v.Name == "l2-short" && v.Value != 1:
			t.Fatalf("l2-short = %d", v.Value)
		}
	}
}
