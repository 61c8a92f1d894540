package counter

import "testing"

func TestCheck(t *testing.T) {
	ok := []Desc{{Stage: "s", Name: "a", Help: "h", Kind: Drop}, {Stage: "s", Name: "b", Help: "h", Kind: Gauge}}
	if err := Check("s", ok); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]Desc{
		{{Stage: "s", Name: "a", Help: "h"}, {}},                                 // a hole in a keyed table
		{{Stage: "s", Name: "a", Help: "h"}, {Stage: "s", Name: "a", Help: "h"}}, // twice
		{{Stage: "t", Name: "a", Help: "h"}},                                     // another stage
		{{Stage: "s", Name: "a", Help: "h", Kind: NumKinds}},                     // no such kind
	} {
		if Check("s", bad) == nil {
			t.Errorf("%+v passed", bad)
		}
	}
	if Drop.String() != "drop" || Event.String() != "event" || Gauge.String() != "gauge" || NumKinds.String() != "kind?" {
		t.Fatal("kind names")
	}
}
