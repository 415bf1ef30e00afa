package tunnel

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
)

// table maps demultiplexing keys to tunnels. The receive loops read it
// without a lock and without allocating; the engine changes it one entry at
// a time, under e.mu. It is split into shards, each a small map replaced
// whole when one of its entries changes (copy on write), so that adding a
// tunnel copies about N/tableShards entries rather than all N: rebuilding
// one map of every tunnel on each add made adding N tunnels cost O(N²).
type table struct {
	shards [tableShards]atomic.Pointer[map[demuxKey]*Tunnel]
}

// 10,000 tunnels make shards of about 40 entries.
const (
	tableShardBits = 8
	tableShards    = 1 << tableShardBits
)

// shardOf spreads keys over the shards (a multiplicative hash of every
// field): tunnels that differ only in their key, or only in their remote,
// land in different shards.
func shardOf(k demuxKey) int {
	h := uint64(addrBits(k.src))<<32 | uint64(addrBits(k.dst))
	h ^= uint64(k.key)*0xff51afd7ed558ccd ^ uint64(k.proto)<<8 ^ uint64(k.port)<<16
	if k.hasKey {
		h ^= 1
	}
	h *= 0x9e3779b97f4a7c15
	return int(h >> (64 - tableShardBits))
}

// addrBits folds an address into 32 bits for shardOf: an IPv4 address is
// its own four bytes, an IPv6 address the XOR of its four words.
func addrBits(a netip.Addr) uint32 {
	if a.Is4() {
		b := a.As4()
		return binary.BigEndian.Uint32(b[:])
	}
	b := a.As16()
	return binary.BigEndian.Uint32(b[0:]) ^ binary.BigEndian.Uint32(b[4:]) ^
		binary.BigEndian.Uint32(b[8:]) ^ binary.BigEndian.Uint32(b[12:])
}

// get returns the tunnel with key k, or nil.
func (tb *table) get(k demuxKey) *Tunnel {
	m := tb.shards[shardOf(k)].Load()
	if m == nil {
		return nil
	}
	return (*m)[k]
}

// set makes k lead to t; e.mu is held.
func (tb *table) set(k demuxKey, t *Tunnel) {
	s := &tb.shards[shardOf(k)]
	m := copyShard(s.Load(), 1)
	m[k] = t
	s.Store(&m)
}

// remove drops k if it leads to t: when a reload moves a key from one
// tunnel to another, the one that gives it up must not take it from the
// one that now has it. e.mu is held.
func (tb *table) remove(k demuxKey, t *Tunnel) {
	s := &tb.shards[shardOf(k)]
	old := s.Load()
	if old == nil || (*old)[k] != t {
		return
	}
	m := copyShard(old, 0)
	delete(m, k)
	s.Store(&m)
}

// each calls fn for every tunnel, without a lock: the underlay watchers
// use it while an Add may be in progress.
func (tb *table) each(fn func(*Tunnel)) {
	for i := range tb.shards {
		if m := tb.shards[i].Load(); m != nil {
			for _, t := range *m {
				fn(t)
			}
		}
	}
}

// clear empties the table; e.mu is held.
func (tb *table) clear() {
	for i := range tb.shards {
		tb.shards[i].Store(nil)
	}
}

func copyShard(m *map[demuxKey]*Tunnel, extra int) map[demuxKey]*Tunnel {
	if m == nil {
		return make(map[demuxKey]*Tunnel, extra)
	}
	c := make(map[demuxKey]*Tunnel, len(*m)+extra)
	for k, t := range *m {
		c[k] = t
	}
	return c
}
