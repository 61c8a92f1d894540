package arp

import (
	"reflect"
	"strings"
	"testing"
	"unicode"

	"vrouter/internal/counter"
)

// Every field of Stats is a declared counter named after it (QueueDrops ->
// queue-drops), and Counters reports each.
func TestCounterTable(t *testing.T) {
	if err := counter.Check(CounterStage, Descs()); err != nil {
		t.Fatal(err)
	}
	var s Stats
	rv := reflect.ValueOf(&s).Elem()
	if rv.NumField() != numCounters {
		t.Fatalf("Stats has %d fields, %d counters declared", rv.NumField(), numCounters)
	}
	for i := 0; i < rv.NumField(); i++ {
		switch f := rv.Field(i); f.Kind() {
		case reflect.Int:
			f.SetInt(int64(i + 1))
		default:
			f.SetUint(uint64(i + 1))
		}
	}
	vs := s.values()
	for j, v := range vs {
		field := rv.Type().Field(int(v) - 1).Name
		var kebab strings.Builder
		for k, r := range field {
			if unicode.IsUpper(r) && k > 0 {
				kebab.WriteByte('-')
			}
			kebab.WriteRune(unicode.ToLower(r))
		}
		if descs[j].Name != kebab.String() {
			t.Errorf("counter %q holds field %s", descs[j].Name, field)
		}
	}
	c := New(Config{})
	got := c.Counters()
	if len(got) != numCounters || got[cEntries].Name != "entries" {
		t.Fatalf("%+v", got)
	}
}
