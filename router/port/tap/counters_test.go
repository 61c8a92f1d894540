package tap

import (
	"testing"

	"vrouter/internal/counter"
)

func TestCounterTable(t *testing.T) {
	if err := counter.Check("tap", Descs()); err != nil {
		t.Fatal(err)
	}
}
