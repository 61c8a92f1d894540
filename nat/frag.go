package nat

import (
	"sync"

	"vrouter/packet"
)

// Fragments. The first fragment of a NATed datagram is translated through
// its session like any packet; each stage (In, Out) remembers what it did to
// the address under (src, dst, proto, IP ID) in a small fixed-size table, and
// applies the same to the following fragments (which carry no ports).
//
// Out-of-order policy: where the address translation of a non-first
// fragment seen before its first fragment does not depend on ports it is
// translated at once (floating IPs both ways, SNAT source to the host's
// paired address; an inbound one to an SNAT address when a single inside
// host recently opened sessions to that remote through that address);
// otherwise (several inside hosts behind the address talk to that remote,
// port forwards, forward backends' replies, hairpins) it is held (hold.go)
// until its first fragment is translated, and dropped (FragOutOfOrder) only
// when it cannot be held. Memory is bounded by the table and buffer sizes.

const (
	stageIn  = 0
	stageOut = 1
	fragWays = 8
)

type fragEntry struct {
	k1      uint64 // src<<32 | dst
	k2      uint32 // id<<16 | proto<<8 | stage<<1 | 1 (valid)
	ip      uint32
	expires int64
}

type fragTable struct {
	mu  sync.Mutex
	e   []fragEntry
	set uint64
	n   int
	ttl int64 // how long an entry lives (fragment_timeout), set by setFragTimeout
}

func (ft *fragTable) init(n int) {
	ft.e = make([]fragEntry, n)
	ft.set = uint64(n / fragWays)
}

func (ft *fragTable) used() int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.n
}

func fragKey(src, dst uint32, proto uint8, id uint16, stage int) (uint64, uint32) {
	return uint64(src)<<32 | uint64(dst), uint32(id)<<16 | uint32(proto)<<8 | uint32(stage)<<1 | 1
}

func (ft *fragTable) bucket(k1 uint64, k2 uint32) []fragEntry {
	b := hashKey(k1, uint64(k2)) % ft.set * fragWays
	return ft.e[b : b+fragWays]
}

// learn records the new address for a datagram's next fragments. False when
// the bucket is full of live entries.
func (ft *fragTable) learn(src, dst uint32, proto uint8, id uint16, stage int, ip uint32, now int64) bool {
	k1, k2 := fragKey(src, dst, proto, id, stage)
	ft.mu.Lock()
	defer ft.mu.Unlock()
	b := ft.bucket(k1, k2)
	free := -1
	for i := range b {
		e := &b[i]
		if e.k2 != 0 && e.k1 == k1 && e.k2 == k2 {
			e.ip, e.expires = ip, now+ft.ttl
			return true
		}
		if free < 0 && (e.k2 == 0 || e.expires <= now) {
			free = i
		}
	}
	if free < 0 {
		return false
	}
	if b[free].k2 == 0 {
		ft.n++
	}
	b[free] = fragEntry{k1, k2, ip, now + ft.ttl}
	return true
}

// setFragTimeout sets how long the fragment tables remember a first
// fragment and the hold buffer keeps a fragment (New, Commit: the rules'
// [conntrack] fragment_timeout). Each is read under its table's lock, where
// the table is locked anyway: no extra load per packet.
func (n *NAT) setFragTimeout(ttl int64) {
	n.frags.mu.Lock()
	n.frags.ttl = ttl
	n.frags.mu.Unlock()
	n.frags6.mu.Lock()
	n.frags6.ttl = ttl
	n.frags6.mu.Unlock()
	n.hold.mu.Lock()
	n.hold.ttl = ttl
	n.hold.mu.Unlock()
}

func (ft *fragTable) find(src, dst uint32, proto uint8, id uint16, stage int, now int64) (uint32, bool) {
	k1, k2 := fragKey(src, dst, proto, id, stage)
	ft.mu.Lock()
	defer ft.mu.Unlock()
	b := ft.bucket(k1, k2)
	for i := range b {
		e := &b[i]
		if e.k2 == k2 && e.k1 == k1 && e.expires > now {
			return e.ip, true
		}
	}
	return 0, false
}

func (ft *fragTable) expire(now int64) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	for i := range ft.e {
		if e := &ft.e[i]; e.k2 != 0 && e.expires <= now {
			*e = fragEntry{}
			ft.n--
		}
	}
}

// fragIn handles a non-first fragment to a NAT address.
// Its first fragment was not seen (or not NATed): unless the address is a
// floating IP, the NAT cannot tell where it goes, and drops it — also when the
// SNAT address is the router's own (the router does not reassemble).
func (w *Worker) fragIn(p packet.IPv4, r *Rules, kind uint8, inNet uint16, now int64) (Verdict, Reason) {
	if ip, ok := w.n.frags.find(p.Src(), p.Dst(), p.Proto(), p.ID(), stageIn, now); ok {
		if ip == p.Dst() {
			return Pass, 0 // the first fragment was not translated
		}
		setAddr(p, p.Proto(), nil, packet.IPv4DstOff, ip, false)
		w.inc(cFragTranslated)
		return Translated, 0
	}
	if kind&aFloat != 0 {
		setAddr(p, p.Proto(), nil, packet.IPv4DstOff, r.floats[r.floatByExt[p.Dst()]].int, false)
		w.inc(cFragTranslated)
		return Translated, 0
	}
	if ip, ok := w.n.hints.find(p.Src(), p.Dst(), p.Proto(), now, r.udp); ok {
		setAddr(p, p.Proto(), nil, packet.IPv4DstOff, ip, false)
		w.inc(cFragTranslated)
		return Translated, 0
	}
	return w.hold(p, stageIn, inNet, Local, now)
}

// pairHints remembers, per (remote, external address, proto), the inside
// host of the SNAT sessions created recently, so that a non-first fragment
// arriving before its first fragment can still be delivered when only one
// inside host talks to that remote through that address. Direct-mapped,
// fixed size; written when SNAT sessions are created (slow path).
type pairHints struct {
	mu sync.Mutex
	e  [1 << 14]pairHint
}

type pairHint struct {
	k    uint64 // remote<<32 | external
	host uint32
	at   int64
	pr   uint8
	amb  bool // two inside hosts: ambiguous
}

func (ph *pairHints) slot(remote, ext uint32, proto uint8) (*pairHint, uint64) {
	k := uint64(remote)<<32 | uint64(ext)
	return &ph.e[hashKey(k, uint64(proto))&(1<<14-1)], k
}

func (ph *pairHints) note(remote, ext uint32, proto uint8, host uint32, now, ttl int64) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	e, k := ph.slot(remote, ext, proto)
	if e.k == k && e.pr == proto && now-e.at < ttl && e.host != host {
		e.amb, e.at = true, now
		return
	}
	if e.k == k && e.pr == proto && e.amb && now-e.at < ttl {
		e.at = now
		return
	}
	*e = pairHint{k: k, host: host, at: now, pr: proto}
}

func (ph *pairHints) find(remote, ext uint32, proto uint8, now, ttl int64) (uint32, bool) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	e, k := ph.slot(remote, ext, proto)
	if e.k == k && e.pr == proto && !e.amb && now-e.at < ttl {
		return e.host, true
	}
	return 0, false
}

// fragOut handles a non-first fragment in Out.
func (w *Worker) fragOut(p packet.IPv4, r *Rules, inNet, outNet uint16, now int64) (Verdict, Reason) {
	src := p.Src()
	if ip, ok := w.n.frags.find(src, p.Dst(), p.Proto(), p.ID(), stageOut, now); ok {
		if ip == src {
			return Pass, 0 // the first fragment was not translated
		}
		setAddr(p, p.Proto(), nil, packet.IPv4SrcOff, ip, false)
		w.inc(cFragTranslated)
		return Translated, 0
	}
	if r.outAmbiguous(src, p.Dst()) {
		return w.hold(p, stageOut, inNet, outNet, now)
	}
	if fl := r.floatOut(src, inNet, outNet); fl != nil {
		setAddr(p, p.Proto(), nil, packet.IPv4SrcOff, fl.ext, false)
		w.inc(cFragTranslated)
		return Translated, 0
	}
	if sr := r.snatOut(src, outNet); sr != nil {
		setAddr(p, p.Proto(), nil, packet.IPv4SrcOff, sr.pair(src), false)
		w.inc(cFragTranslated)
		return Translated, 0
	}
	return Pass, 0
}

// outAmbiguous reports whether Out cannot translate a non-first fragment
// from src to dst without its first fragment: the source is a forward
// backend (its replies leave from the forward's address, its own flows from
// its SNAT or floating address), or an inside host sending to a backend or
// floating host (a hairpin, whose source depends on the session). Out then
// holds the fragment; and so that such fragments of datagrams Out does not
// translate are not held in vain, it records an identity translation for
// their first fragment (learnPass).
func (r *Rules) outAmbiguous(src, dst uint32) bool {
	if r.backends[src] {
		return true
	}
	if !r.backends[dst] {
		if _, ok := r.floatByInt[dst]; !ok {
			return false
		}
	}
	return r.isInside(src)
}

// learnPass records that stage left the first fragment p (of several)
// untranslated, when the stage would hold its next fragments: they then pass
// untouched, and held ones are released untouched. In holds fragments to NAT
// addresses, Out those outAmbiguous selects.
func (w *Worker) learnPass(p packet.IPv4, stage int, now int64) (Verdict, Reason) {
	r := w.r
	src, dst := p.Src(), p.Dst()
	ip := dst
	if stage == stageIn {
		if _, ok := r.addrs[dst]; !ok {
			return Pass, 0
		}
	} else {
		if !r.outAmbiguous(src, dst) {
			return Pass, 0
		}
		ip = src
	}
	if !w.n.frags.learn(src, dst, p.Proto(), p.ID(), stage, ip, now) {
		return w.drop(FragTableFull)
	}
	w.release(src, dst, p.Proto(), p.ID(), stage, ip, now)
	return Pass, 0
}

// settleFirst does a stage's fragment bookkeeping once its verdict on a
// first fragment of several is known: a Pass is remembered (so later
// fragments pass and held ones are released untouched), a Drop frees the
// fragments held for it.
func (w *Worker) settleFirst(p packet.IPv4, stage int, v Verdict, why Reason, now int64) (Verdict, Reason) {
	if p.IsFirstFragment() {
		switch v {
		case Pass:
			return w.learnPass(p, stage, now)
		case Drop:
			w.discard(p, stage)
		}
	}
	return v, why
}
