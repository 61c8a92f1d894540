package afxdp

import (
	"testing"

	"vrouter/internal/counter"
)

func TestCounterTable(t *testing.T) {
	if err := counter.Check(CounterStage, Descs()); err != nil {
		t.Fatal(err)
	}
}
