package tunnel

import (
	"net/netip"
	"testing"
)

// TestTableMovesKeys: a key given up by one tunnel and taken by another
// stays with the one that took it, whatever the order (a reload that swaps
// keys), and each sees every tunnel once.
func TestTableMovesKeys(t *testing.T) {
	var tb table
	a, b := &Tunnel{name: "a"}, &Tunnel{name: "b"}
	k1 := demuxKey{proto: 47, src: netip.AddrFrom4([4]byte{192, 0, 2, 2}), dst: netip.AddrFrom4([4]byte{192, 0, 2, 1}), key: 1, hasKey: true}
	k2 := k1
	k2.key = 2
	tb.set(k1, a)
	tb.set(k2, b)
	// a takes k2 first, then b takes k1.
	tb.remove(k1, a)
	tb.set(k2, a)
	tb.remove(k2, b) // b no longer has k2: a does
	tb.set(k1, b)
	if tb.get(k1) != b || tb.get(k2) != a {
		t.Fatalf("after the swap k1 → %v, k2 → %v", tb.get(k1), tb.get(k2))
	}
	seen := map[*Tunnel]int{}
	tb.each(func(t *Tunnel) { seen[t]++ })
	if len(seen) != 2 || seen[a] != 1 || seen[b] != 1 {
		t.Errorf("each saw %v", seen)
	}
	tb.remove(k1, b)
	if tb.get(k1) != nil || tb.get(k2) != a {
		t.Errorf("after removing k1: k1 → %v, k2 → %v", tb.get(k1), tb.get(k2))
	}
	tb.clear()
	if tb.get(k2) != nil {
		t.Error("clear left k2")
	}
}

// TestTableSpreads: keys that differ only in the GRE key, or only in the
// remote address, spread over the shards, so that an add copies a small
// shard (a few times the mean), not the whole table.
func TestTableSpreads(t *testing.T) {
	remotes := [][3]byte{{192, 0, 2}, {198, 51, 100}, {203, 0, 113}}
	for _, vary := range []string{"key", "remote"} {
		var tb table
		n := 40 * tableShards
		if vary == "remote" {
			n = len(remotes) * 256
		}
		for i := range n {
			k := demuxKey{proto: 47, src: netip.AddrFrom4([4]byte{192, 0, 2, 2}), dst: netip.AddrFrom4([4]byte{192, 0, 2, 1})}
			if vary == "key" {
				k.key, k.hasKey = uint32(i+1), true
			} else {
				net := remotes[i/256]
				k.src = netip.AddrFrom4([4]byte{net[0], net[1], net[2], byte(i)})
			}
			tb.set(k, &Tunnel{})
		}
		most := 0
		for i := range tb.shards {
			if m := tb.shards[i].Load(); m != nil {
				most = max(most, len(*m))
			}
		}
		if mean := n / tableShards; most > 4*mean {
			t.Errorf("%s: a shard holds %d keys, the mean is %d", vary, most, mean)
		}
		t.Logf("%s: %d keys, the largest shard holds %d", vary, n, most)
	}
}

// TestTableGetAllocs: the receive path looks tunnels up without allocating.
func TestTableGetAllocs(t *testing.T) {
	var tb table
	k := demuxKey{proto: 47, src: netip.AddrFrom4([4]byte{192, 0, 2, 2}), dst: netip.AddrFrom4([4]byte{192, 0, 2, 1})}
	tb.set(k, &Tunnel{})
	if n := testing.AllocsPerRun(100, func() {
		if tb.get(k) == nil {
			t.Fatal("lost")
		}
	}); n != 0 {
		t.Errorf("get allocates %v times", n)
	}
}

// TestTableSpreadsIPv6: IPv6 remotes that differ in one byte, at either
// end of the address, spread over the shards too.
func TestTableSpreadsIPv6(t *testing.T) {
	var tb table
	n := 2 * 256
	for i := range n {
		b := netip.MustParseAddr("2001:db8::2").As16()
		b[15-i/256*10] = byte(i)
		tb.set(demuxKey{proto: 47, src: netip.AddrFrom16(b), dst: netip.MustParseAddr("2001:db8::1")}, &Tunnel{})
	}
	most := 0
	for i := range tb.shards {
		if m := tb.shards[i].Load(); m != nil {
			most = max(most, len(*m))
		}
	}
	if mean := max(n/tableShards, 1); most > 4*mean {
		t.Errorf("a shard holds %d keys, the mean is %d", most, mean)
	}
}
