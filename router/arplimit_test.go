package router

import "testing"

// The bucket starts full (one second's worth), refuses past it and refills
// at the rate; rate 0 is unlimited.
func TestARPLimit(t *testing.T) {
	var l arpLimit
	now := int64(5e9)
	n := 0
	for l.allow(now, 10) {
		n++
		if n > 100 {
			break
		}
	}
	if n != 10 {
		t.Fatalf("burst %d, want 10", n)
	}
	if l.allow(now+50e6, 10) {
		t.Fatal("a token after 50 ms at 10/s")
	}
	if !l.allow(now+150e6, 10) || l.allow(now+160e6, 10) {
		t.Fatal("one token after 100 ms at 10/s")
	}
	// A long pause refills to the bucket size only.
	now += 3600e9
	n = 0
	for l.allow(now, 10) && n < 100 {
		n++
	}
	if n != 10 {
		t.Fatalf("after an hour: burst %d, want 10", n)
	}
	for i := 0; i < 1000; i++ {
		if !l.allow(now, 0) {
			t.Fatal("rate 0 limited")
		}
	}
}
