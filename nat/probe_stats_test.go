package nat

import (
	"testing"

	"vrouter/packet"
)

// TestProbeStats: with a full table of SNAT sessions (four keys each) the
// index stays at half load (16 flows of the floating host have two keys) with short clusters (the hash spreads the keys).
func TestProbeStats(t *testing.T) {
	const max = 1 << 16
	n, w := newNAT(t, benchConfig(max))
	tmpl := template(t)
	p := append(packet.IPv4(nil), tmpl...)
	for k := 0; k < max-10; k++ {
		copy(p, tmpl)
		setFlow(p, 0x0a010000+uint32(k>>4)+1, uint16(2000+k&15))
		if v, r := w.Out(p, nInside, nPublic, sec); v != Translated {
			t.Fatalf("flow %d: %v %v", k, v, r)
		}
	}
	tb := n.t
	// cluster lengths
	run, maxRun, sumRun, clusters, used := 0, 0, 0, 0, 0
	for i := uint64(0); i <= tb.mask; i++ {
		if tb.slots[i].Load() != 0 {
			run++
			used++
		} else if run > 0 {
			clusters++
			sumRun += run
			if run > maxRun {
				maxRun = run
			}
			run = 0
		}
	}
	// displacement
	disp := 0
	for i := uint64(0); i <= tb.mask; i++ {
		if e := tb.slots[i].Load(); e != 0 {
			h := tb.home(e)
			disp += int((i - h) & tb.mask)
		}
	}
	avgDisp := float64(disp) / float64(used)
	if used < 4*(max-10)-64 || avgDisp > 1.5 || maxRun > 200 {
		t.Fatalf("used %d, avg displacement %.2f, longest cluster %d", used, avgDisp, maxRun)
	}
	t.Logf("slots %d used %d (%.2f) clusters %d avg %.1f max %d avg displacement %.2f", tb.mask+1, used, float64(used)/float64(tb.mask+1), clusters, float64(sumRun)/float64(clusters), maxRun, float64(disp)/float64(used))
}
