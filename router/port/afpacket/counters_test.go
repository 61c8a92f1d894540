package afpacket

import (
	"testing"

	"vrouter/internal/counter"
)

func TestCounterTable(t *testing.T) {
	if err := counter.Check("afpacket", Descs()); err != nil {
		t.Fatal(err)
	}
}
