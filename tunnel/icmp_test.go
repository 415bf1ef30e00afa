package tunnel_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/rawsock"
	"github.com/gretun/gretun/tunnel"
	"github.com/gretun/gretun/tunnel/tunneltest"
)

// icmpFeed is a fake ICMP socket: the messages put on it are parsed as
// rawsock's reader parses them.
type icmpFeed struct {
	msgs   chan []byte
	closed chan struct{}
	parse  func([]byte) (rawsock.TooBig, bool)
}

func newICMPFeed() *icmpFeed {
	return &icmpFeed{msgs: make(chan []byte, 64), closed: make(chan struct{}), parse: rawsock.ParseTooBig}
}

func (f *icmpFeed) ReadTooBig(buf []byte) (rawsock.TooBig, error) {
	for {
		select {
		case <-f.closed:
			return rawsock.TooBig{}, net.ErrClosed
		case m := <-f.msgs:
			if tb, ok := f.parse(m); ok {
				return tb, nil
			}
		}
	}
}

func (f *icmpFeed) Close() error {
	select {
	case <-f.closed:
	default:
		close(f.closed)
	}
	return nil
}

// fragNeeded is an ICMP Fragmentation Needed reporting mtu about a
// 1500-byte packet src -> dst of protocol proto whose quoted payload (the
// GRE header, 8 bytes as most routers quote) is quote.
func fragNeeded(mtu uint16, src, dst [4]byte, proto byte, quote []byte) []byte {
	m := make([]byte, 8+20, 8+20+len(quote))
	m[0], m[1] = 3, 4
	binary.BigEndian.PutUint16(m[6:], mtu)
	ip := m[8:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], 1500)
	ip[6], ip[8], ip[9] = 0x40, 64, proto
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	m = append(m, quote...)
	binary.BigEndian.PutUint16(m[2:], header.Checksum(m))
	return m
}

// greQuote is the first 8 bytes of a GRE header: flags, protocol IPv4 and
// the key (or, with C set, the checksum field that comes first).
func greQuote(flags uint16, key uint32) []byte {
	g := binary.BigEndian.AppendUint16(nil, flags)
	g = binary.BigEndian.AppendUint16(g, header.EtherTypeIPv4)
	return binary.BigEndian.AppendUint32(g, key)
}

// TestEngineICMPMatchesKey is issue 12's forged "fragmentation needed":
// tunnels sharing their endpoints and told apart by key each learn only
// from messages quoting their own packets (protocol, addresses, GRE flags
// and key, as the kernel's ipgre_err looks the tunnel up), and a next-hop
// MTU below IPv4's 68 is no report at all.
func TestEngineICMPMatchesKey(t *testing.T) {
	feed := newICMPFeed()
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8, func(env *tunnel.Env) {
		env.OpenICMP = func() (tunnel.ICMPSource, error) { return feed, nil }
	})
	const keyed = 50
	for k := 1; k <= keyed; k++ {
		mustAdd(t, a, fmt.Sprintf("k%d", k), fmt.Sprintf("mode gre key %d remote 192.0.2.2 local 192.0.2.1", k))
	}
	mustAdd(t, a, "plain", "mode gre remote 192.0.2.2 local 192.0.2.1")
	mustAdd(t, a, "ipip", "mode ipip remote 192.0.2.2 local 192.0.2.1")
	mustAdd(t, a, "cks", "mode gre key 100 csum remote 192.0.2.2 local 192.0.2.1")

	local, remote := addrA.As4(), addrB.As4()
	other := [4]byte{192, 0, 2, 9}
	for _, m := range [][]byte{
		fragNeeded(1400, local, remote, header.ProtoGRE, greQuote(header.GREFlagKey, 7)),   // k7 only
		fragNeeded(1400, local, remote, header.ProtoGRE, greQuote(0, 0)),                   // plain only
		fragNeeded(1300, local, remote, header.ProtoGRE, greQuote(header.GREFlagKey, 999)), // no such key
		fragNeeded(1300, local, remote, header.ProtoGRE, greQuote(header.GREFlagKey|header.GREFlagSeq, 8)),
		fragNeeded(60, local, remote, header.ProtoGRE, greQuote(header.GREFlagKey, 9)),                                         // below 68
		fragNeeded(0, local, remote, header.ProtoGRE, greQuote(header.GREFlagKey, 9)),                                          // no MTU said
		fragNeeded(1300, other, remote, header.ProtoGRE, greQuote(header.GREFlagKey, 10)),                                      // not our address
		fragNeeded(1300, local, remote, header.ProtoGRE, greQuote(header.GREFlagCsum|header.GREFlagKey, 0)),                    // key not quoted
		fragNeeded(1300, local, remote, header.ProtoGRE, append(greQuote(header.GREFlagKey, 11)[:2], 0x65, 0x58, 0, 0, 0, 11)), // Ethernet: not ours
		// A router quoting more than 8 bytes shows the key after the checksum.
		fragNeeded(1350, local, remote, header.ProtoGRE, append(greQuote(header.GREFlagCsum|header.GREFlagKey, 0), 0, 0, 0, 100)),
		fragNeeded(1280, local, remote, header.ProtoIPIP, nil), // ipip, the last one
	} {
		feed.msgs <- m
	}
	pathMTU := func() map[string]int {
		st, err := a.e.Show("")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, s := range st {
			m[s.Config.Name] = s.PathMTU
		}
		return m
	}
	// Messages are read in order: once the last has lowered ipip, all were.
	for deadline := time.Now().Add(5 * time.Second); pathMTU()["ipip"] != 1280-20 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	got := pathMTU()
	for name, mtu := range got {
		want := 1500 - 28
		switch name {
		case "k7":
			want = 1400 - 28
		case "plain":
			want = 1400 - 24
		case "ipip":
			want = 1280 - 20
		case "cks":
			want = 1350 - 32
		}
		if mtu != want {
			t.Errorf("%s: path MTU %d, want %d", name, mtu, want)
		}
	}
}

// TestEngineICMPAsymmetricKeys: a tunnel that sends another key than it
// receives is filed in the demux table under its input key, so an ICMP
// error quoting its output key cannot find it there; it still learns, as
// before the table lookup, whether it had different keys from the start
// or was changed to them, and so does a tunnel receiving that key.
func TestEngineICMPAsymmetricKeys(t *testing.T) {
	feed := newICMPFeed()
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8, func(env *tunnel.Env) {
		env.OpenICMP = func() (tunnel.ICMPSource, error) { return feed, nil }
	})
	mustAdd(t, a, "asym", "mode gre ikey 5 okey 6 remote 192.0.2.2 local 192.0.2.1")
	mustAdd(t, a, "six", "mode gre key 6 remote 192.0.2.2 local 192.0.2.1")
	mustAdd(t, a, "later", "mode gre key 20 remote 192.0.2.2 local 192.0.2.1")
	change(t, a, "later", "ikey 20 okey 21")
	local, remote := addrA.As4(), addrB.As4()
	feed.msgs <- fragNeeded(1400, local, remote, header.ProtoGRE, greQuote(header.GREFlagKey, 6))
	feed.msgs <- fragNeeded(1300, local, remote, header.ProtoGRE, greQuote(header.GREFlagKey, 21))
	want := map[string]int{"asym": 1400 - 28, "six": 1400 - 28, "later": 1300 - 28}
	var got map[string]int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		st, err := a.e.Show("")
		if err != nil {
			t.Fatal(err)
		}
		got = map[string]int{}
		for _, s := range st {
			got[s.Config.Name] = s.PathMTU
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
	}
	t.Fatalf("path MTUs %v, want %v", got, want)
}
