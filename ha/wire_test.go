package ha

import (
	"testing"

	"vrouter/nat"
)

// Any datagram is parsed without a panic; one that is accepted has a known
// type and exactly its records, whose decoding is stable.
func FuzzParse(f *testing.F) {
	key := []byte("0123456789abcdef")
	h := header{typ: msgData, id: 1, netSig: 2, seq: 3, base: 3, count: 1}
	b := make([]byte, HeaderLen+RecordLen)
	putHeader(b, &h)
	putRecord(b[HeaderLen:], &nat.SyncRecord{Op: nat.SyncUpsert, Proto: 6, OSrc: 1, RDst: 2})
	f.Add(append([]byte(nil), b...), false)
	f.Add(seal(append([]byte(nil), b...), key), true)
	f.Add([]byte("VH"), false)
	f.Fuzz(func(t *testing.T, b []byte, keyed bool) {
		k := key
		if !keyed {
			k = nil
		}
		var h header
		recs, why := parse(b, k, &h)
		if why != 0 {
			if why >= numDrops {
				t.Fatalf("drop %d", why)
			}
			return
		}
		if h.typ < msgData || h.typ > msgHello || len(recs) != int(h.count)*RecordLen {
			t.Fatalf("accepted %+v with %d record bytes", h, len(recs))
		}
		for i := 0; i < len(recs); i += RecordLen {
			var r, r2 nat.SyncRecord
			getRecord(recs[i:], &r)
			out := make([]byte, RecordLen)
			putRecord(out, &r)
			getRecord(out, &r2)
			if r != r2 {
				t.Fatalf("record %+v re-decoded as %+v", r, r2)
			}
		}
	})
}
