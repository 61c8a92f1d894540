package config

import (
	"testing"
)

func TestExampleLoads(t *testing.T) {
	c, err := Load("testdata/example.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Router.Name != "edge1" || len(c.Ports) != 5 || len(c.Networks) != 2 {
		t.Fatalf("unexpected config: %+v", c)
	}
}
