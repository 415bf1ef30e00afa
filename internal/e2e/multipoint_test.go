package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gretun/gretun/internal/testnet"
	"github.com/gretun/gretun/tunnel"
)

// The hub-and-spokes topology: the hub has a link to each spoke (a /30
// of the underlay) and its tunnel's local address on lo; the tunnel
// network is 198.51.100.0/24, and 203.0.113.0/24 is behind spoke 3.
const (
	hubLocal = "192.0.2.254"
	hubInner = "198.51.100.1"
)

func spokeUnder(i int) string   { return fmt.Sprintf("192.0.2.%d", 4*i+2) }
func hubLinkUnder(i int) string { return fmt.Sprintf("192.0.2.%d", 4*i+1) }
func spokeInnerIP(i int) string { return fmt.Sprintf("198.51.100.%d", i+2) }
func spokeNeigh(i int) []string {
	return []string{spokeInnerIP(i), "lladdr", spokeUnder(i), "dev", "mg0"}
}
func neighLine(words []string) string { return "neigh add " + strings.Join(words, " ") + "\n" }

// hubTopology builds the hub's and n spokes' namespaces and their links.
func hubTopology(t *testing.T, n int) (tp *Topology, hub string, spokes []string) {
	tp = &Topology{Net: testnet.ForTest(t), T: t}
	var err error
	if hub, err = tp.NS("hub"); err != nil {
		t.Fatal(err)
	}
	tp.must(tp.Forward(hub))
	tp.Sh(hub, "sysctl", "-qw", "net.ipv4.conf.all.send_redirects=0")
	tp.Sh(hub, "ip", "link", "set", "dev", "lo", "up")
	tp.Sh(hub, "ip", "addr", "add", hubLocal+"/32", "dev", "lo")
	for i := range n {
		s, err := tp.NS(fmt.Sprintf("s%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		spokes = append(spokes, s)
		tp.must(tp.Veth(hub, fmt.Sprintf("sp%d", i+1), s, "wan"))
		tp.must(tp.Addr(hub, fmt.Sprintf("sp%d", i+1), hubLinkUnder(i)+"/30"))
		tp.must(tp.Addr(s, "wan", spokeUnder(i)+"/30"))
		tp.Sh(s, "ip", "route", "add", hubLocal+"/32", "via", hubLinkUnder(i))
	}
	return tp, hub, spokes
}

// neighs returns `gretun -j neigh show` in ns.
func (tp *Topology) neighs(ns string) []tunnel.Neigh {
	tp.T.Helper()
	r := tp.G(ns, "-j", "neigh", "show")
	if r.code != 0 {
		tp.T.Fatalf("neigh show: %s", r.stderr)
	}
	var v struct{ Neighs []tunnel.Neigh }
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		tp.T.Fatalf("neigh show -j: %v: %s", err, r.stdout)
	}
	return v.Neighs
}

// TestMultipointHubAndSpokes is the multipoint issue's test: a gretun hub
// with one multipoint tunnel (its neighbours from the config file, the
// command line and a SIGHUP reload; `neigh replace` moves one to another
// spoke and back) and three gretun spokes, each an
// ordinary point-to-point tunnel to the hub with keepalives. Spoke↔hub and
// spoke↔spoke (through the hub) carry ping and TCP; the spokes' keepalives
// come up, reflected by the hub, which sends none; one spoke cut off goes
// down while the others carry on; the hub counts per neighbour.
func TestMultipointHubAndSpokes(t *testing.T) {
	tp, hub, spokes := hubTopology(t, 3)
	path := filepath.Join(t.TempDir(), "hub.conf")
	conf := "mg0 mode gre local " + hubLocal + " key 7\n" + neighLine(spokeNeigh(0)) + neighLine(spokeNeigh(1))
	writeFile(t, path, conf)
	d := tp.Daemon(hub, "-c", path)
	tp.WaitLink(hub, "mg0", d)
	tp.Sh(hub, "ip", "addr", "add", hubInner+"/24", "dev", "mg0")
	tp.Sh(hub, "ip", "route", "add", "203.0.113.0/24", "dev", "mg0")
	// Spoke 3's neighbour comes from the command line.
	if r := tp.G(hub, append([]string{"neigh", "add"}, spokeNeigh(2)...)...); r.code != 0 {
		t.Fatalf("neigh add: %s", r.stderr)
	}
	for i, s := range spokes {
		tp.Run(s, "t0", "mode", "gre", "remote", hubLocal, "local", spokeUnder(i), "key", "7", "keepalive", kaPeriod, kaRetries)
		tp.Sh(s, "ip", "addr", "add", spokeInnerIP(i)+"/24", "dev", "t0")
		tp.Sh(s, "ip", "route", "add", "203.0.113.0/24", "dev", "t0")
	}
	tp.Sh(spokes[2], "ip", "link", "set", "dev", "lo", "up")
	tp.Sh(spokes[2], "ip", "addr", "add", "203.0.113.1/32", "dev", "lo")

	for i, s := range spokes {
		tp.Ping(s, hubInner)
		tp.Ping(hub, spokeInnerIP(i))
		tp.Ping(s, spokeInnerIP((i+1)%3)) // spoke to spoke, through the hub
	}
	tp.Transfer(spokes[0], spokes[1], spokeInnerIP(1), 1<<20)
	// Nothing leads to 203.0.113.0/24 yet: the hub counts it.
	if _, err := tp.Exec(spokes[0], "ping", "-c", "1", "-W", "1", "203.0.113.1"); err == nil {
		t.Fatal("203.0.113.1 answered before the hub had a neighbour for it")
	}
	if st := tp.status(hub, "mg0").Stats; st.TxNoNeighbour == 0 {
		t.Errorf("the hub did not count the packet to no neighbour: %+v", st)
	}
	// The file gains the prefix behind spoke 3, and spoke 3's entry: a
	// reload puts them in place.
	writeFile(t, path, conf+neighLine(spokeNeigh(2))+neighLine([]string{"203.0.113.0/24", "lladdr", spokeUnder(2), "dev", "mg0"}))
	hup(t, d, "configuration reloaded")
	tp.Ping(spokes[0], "203.0.113.1")
	want := []tunnel.Neigh{}
	for i := range spokes {
		want = append(want, tunnel.Neigh{Dev: "mg0", Dst: spokeInnerIP(i), State: "PERMANENT"})
		want[i].LLAddr = netip.MustParseAddr(spokeUnder(i))
	}
	want = append(want, tunnel.Neigh{Dev: "mg0", Dst: "203.0.113.0/24", LLAddr: netip.MustParseAddr(spokeUnder(2)), State: "PERMANENT"})
	if got := tp.neighs(hub); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("neigh show:\n got %v\nwant %v", got, want)
	}
	if out := tp.Sh(hub, Bin(t, "gretun"), "neigh", "show", "dev", "mg0"); !strings.Contains(out, spokeInnerIP(0)+" dev mg0 lladdr "+spokeUnder(0)+" PERMANENT\n") {
		t.Errorf("neigh show dev mg0:\n%s", out)
	}

	// neigh replace moves an entry to another spoke, and back.
	replace := func(i int) {
		t.Helper()
		if r := tp.G(hub, "neigh", "replace", "203.0.113.0/24", "lladdr", spokeUnder(i), "dev", "mg0"); r.code != 0 {
			t.Fatalf("neigh replace: %s", r.stderr)
		}
		want[3].LLAddr = netip.MustParseAddr(spokeUnder(i))
		if got := tp.neighs(hub); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("neigh show after neigh replace 203.0.113.0/24 lladdr %s:\n got %v\nwant %v", spokeUnder(i), got, want)
		}
	}
	replace(1)
	if _, err := tp.Exec(spokes[0], "ping", "-c", "1", "-W", "1", "203.0.113.1"); err == nil {
		t.Error("203.0.113.1 answered with its entry replaced by one to spoke 2")
	}
	replace(2)
	tp.Ping(spokes[0], "203.0.113.1")

	// Keepalives: up on every spoke, reflected by the hub, none of its own.
	st := tp.hubReflects(hub, spokes)
	for _, n := range st.Neighbours {
		if n.Stats.RxPackets == 0 || n.Stats.TxPackets == 0 {
			t.Errorf("neighbour %s counted nothing: %+v", n.LLAddr, n.Stats)
		}
	}
	if out := tp.Sh(hub, Bin(t, "gretun"), "-s", "tunnel", "show", "mg0"); !strings.Contains(out, "neighbour "+spokeUnder(2)+": [198.51.100.4 203.0.113.0/24]") {
		t.Errorf("-s tunnel show lists no counters for spoke 3:\n%s", out)
	}

	// Cut spoke 3 off: its keepalive goes down, the others stay up and
	// carry traffic.
	tp.blockGRE(spokes[2])
	tp.waitFor("spoke 3 keepalive down", func() bool { return !tp.carrier(spokes[2], "t0") })
	for i, s := range spokes[:2] {
		if k := tp.keepalive(s, "t0"); k.State != "up" {
			t.Errorf("spoke %d went %s when spoke 3 was cut", i+1, k.State)
		}
		tp.Ping(s, hubInner)
	}
	tp.Ping(spokes[0], spokeInnerIP(1))

	// Bad neighbour commands: one line, nothing changed.
	tp.add(hub, "p2p", "mode", "gre", "remote", "192.0.2.100", "local", hubLocal, "key", "8")
	wantError(t, "neigh on a point-to-point tunnel", tp.G(hub, "neigh", "add", "198.51.100.9", "lladdr", "192.0.2.9", "dev", "p2p"), "point-to-point")
	wantError(t, "duplicate neigh", tp.G(hub, append([]string{"neigh", "add"}, spokeNeigh(0)...)...), "exists")
	wantError(t, "lladdr of the wrong family", tp.G(hub, "neigh", "add", "198.51.100.9", "lladdr", "2001:db8::9", "dev", "mg0"), "family")
	wantError(t, "neigh del of an unknown neighbour", tp.G(hub, "neigh", "del", "198.51.100.9", "dev", "mg0"), "no neighbour 198.51.100.9")
	if got := tp.neighs(hub); len(got) != 4 {
		t.Errorf("refused commands changed the neighbours: %v", got)
	}
	if err := d.Stop(); err != nil {
		t.Errorf("daemon: %v: %s", err, d.Log())
	}
}

// TestMultipointUnderlays: a hub over ip6gre, and over GRE-in-UDP on
// either family (as the kernel's NBMA ip_gre and ip6gre take `encap fou`),
// with two spokes: spoke↔hub and spoke↔spoke through the hub carry ping,
// spoke to spoke TCP, the spokes' keepalives come up reflected by the hub,
// and the hub counts per neighbour.
func TestMultipointUnderlays(t *testing.T) {
	for _, tc := range []struct {
		name, mode string
		v6         bool
		words      []string
	}{
		{"ip6gre", "ip6gre", true, nil},
		{"gre-fou", "gre", false, []string{"encap", "fou"}},
		{"ip6gre-fou", "ip6gre", true, []string{"encap", "fou"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hubAt, spokeAt, linkAt, plen := hubLocal, spokeUnder, hubLinkUnder, "/30"
			if tc.v6 {
				hubAt, plen = "2001:db8:ff::1", "/64"
				spokeAt = func(i int) string { return fmt.Sprintf("2001:db8:%d::2", i+1) }
				linkAt = func(i int) string { return fmt.Sprintf("2001:db8:%d::1", i+1) }
			}
			tp := &Topology{Net: testnet.ForTest(t), T: t}
			hub, err := tp.NS("hub")
			if err != nil {
				t.Fatal(err)
			}
			tp.must(tp.Forward(hub))
			tp.Sh(hub, "sysctl", "-qw", "net.ipv4.conf.all.send_redirects=0")
			tp.Sh(hub, "ip", "link", "set", "dev", "lo", "up")
			tp.must(tp.Addr(hub, "lo", hubAt+map[bool]string{false: "/32", true: "/128"}[tc.v6]))
			var spokes []string
			for i := range 2 {
				s, err := tp.NS(fmt.Sprintf("s%d", i+1))
				if err != nil {
					t.Fatal(err)
				}
				spokes = append(spokes, s)
				tp.must(tp.Veth(hub, fmt.Sprintf("sp%d", i+1), s, "wan"))
				tp.must(tp.Addr(hub, fmt.Sprintf("sp%d", i+1), linkAt(i)+plen))
				tp.must(tp.Addr(s, "wan", spokeAt(i)+plen))
				tp.Sh(s, "ip", "route", "add", hubAt, "via", linkAt(i))
			}
			d := tp.Daemon(hub)
			tp.add(hub, "mg0", append([]string{"mode", tc.mode, "local", hubAt, "key", "7"}, tc.words...)...)
			tp.Sh(hub, "ip", "addr", "add", hubInner+"/24", "dev", "mg0")
			for i, s := range spokes {
				if r := tp.G(hub, "neigh", "add", spokeInnerIP(i), "lladdr", spokeAt(i), "dev", "mg0"); r.code != 0 {
					t.Fatalf("neigh add: %s", r.stderr)
				}
				tp.Run(s, "t0", append([]string{"mode", tc.mode, "remote", hubAt, "local", spokeAt(i), "key", "7", "keepalive", kaPeriod, kaRetries}, tc.words...)...)
				tp.Sh(s, "ip", "addr", "add", spokeInnerIP(i)+"/24", "dev", "t0")
			}
			for i, s := range spokes {
				tp.Ping(s, hubInner)
				tp.Ping(hub, spokeInnerIP(i))
				tp.Ping(s, spokeInnerIP(1-i)) // through the hub
			}
			tp.Transfer(spokes[0], spokes[1], spokeInnerIP(1), 1<<20)
			st := tp.hubReflects(hub, spokes)
			for i, n := range st.Neighbours {
				if n.LLAddr.String() != spokeAt(i) || n.Stats.RxPackets == 0 || n.Stats.TxPackets == 0 {
					t.Errorf("neighbour %d: %+v", i, n)
				}
			}
			if err := d.Stop(); err != nil {
				t.Errorf("daemon: %v: %s", err, d.Log())
			}
		})
	}
}

// TestMultipointLearn: a hub with `learn 2` and no neighbours, three
// spokes. The first two reach the hub and each other through it, and the
// hub lists their inner addresses as learned; the third is dropped as
// learn-full.
func TestMultipointLearn(t *testing.T) {
	tp, hub, spokes := hubTopology(t, 3)
	d := tp.Daemon(hub)
	tp.add(hub, "mg0", "mode", "gre", "local", hubLocal, "key", "7", "learn", "2")
	tp.Sh(hub, "ip", "addr", "add", hubInner+"/24", "dev", "mg0")
	// Spoke 3's tunnel comes up last: whatever the first two send (their
	// devices' own IPv6 packets too) is learned before it.
	spoke := func(i int) {
		tp.Run(spokes[i], "t0", "mode", "gre", "remote", hubLocal, "local", spokeUnder(i), "key", "7")
		tp.Sh(spokes[i], "ip", "addr", "add", spokeInnerIP(i)+"/24", "dev", "t0")
	}
	if got := tp.neighs(hub); len(got) != 0 {
		t.Fatalf("neighbours before any traffic: %v", got)
	}
	for i, s := range spokes[:2] {
		spoke(i)
		tp.Ping(s, hubInner) // the hub learns the spoke
		tp.Ping(hub, spokeInnerIP(i))
	}
	for i, s := range spokes[:2] {
		tp.Ping(s, spokeInnerIP(1-i)) // through the hub
	}
	tp.Transfer(spokes[0], spokes[1], spokeInnerIP(1), 1<<20)
	var want []tunnel.Neigh
	for i := range 2 {
		want = append(want, tunnel.Neigh{Dev: "mg0", Dst: spokeInnerIP(i), LLAddr: netip.MustParseAddr(spokeUnder(i)), State: "LEARNED"})
	}
	if got := tp.neighs(hub); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("neigh show:\n got %v\nwant %v", got, want)
	}
	if out := tp.Sh(hub, Bin(t, "gretun"), "neigh", "show"); !strings.Contains(out, spokeInnerIP(1)+" dev mg0 lladdr "+spokeUnder(1)+" LEARNED\n") {
		t.Errorf("neigh show:\n%s", out)
	}
	st := tp.status(hub, "mg0")
	if len(st.Neighbours) != 2 {
		t.Fatalf("hub neighbours: %+v, want the 2 learned spokes", st.Neighbours)
	}
	for i, n := range st.Neighbours {
		if n.LLAddr.String() != spokeUnder(i) || !n.Learned || n.Stats.RxPackets == 0 || n.Stats.TxPackets == 0 {
			t.Errorf("neighbour %d: %+v", i, n)
		}
	}

	// The learned table is full: spoke 3 is not taken.
	spoke(2)
	full0 := tp.status(hub, "mg0").Stats.Drops["learn-full"]
	if _, err := tp.Exec(spokes[2], "ping", "-c", "3", "-i", "0.2", "-W", "1", hubInner); err == nil {
		t.Error("spoke 3 reached a hub whose learned table is full")
	}
	st = tp.status(hub, "mg0")
	if n := st.Stats.Drops["learn-full"] - full0; n < 3 {
		t.Errorf("the hub dropped %d of spoke 3's packets as learn-full, want 3 (drops %v)", n, st.Stats.Drops)
	}
	if got := tp.neighs(hub); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("neigh show after spoke 3:\n got %v\nwant %v", got, want)
	}
	tp.Ping(spokes[0], spokeInnerIP(1))
	if err := d.Stop(); err != nil {
		t.Errorf("daemon: %v: %s", err, d.Log())
	}
}

// hubReflects waits until every spoke's keepalive on t0 is up, and checks
// that the hub's mg0 reflected them without keepalives of its own and has
// one neighbour per spoke; it returns the hub's status.
func (tp *Topology) hubReflects(hub string, spokes []string) tunnel.Status {
	tp.T.Helper()
	for i, s := range spokes {
		tp.waitFor(fmt.Sprintf("spoke %d keepalive up", i+1), func() bool {
			k := tp.keepalive(s, "t0")
			return k.State == "up" && k.Received >= 2
		})
	}
	st := tp.status(hub, "mg0")
	if st.Keepalive != nil || st.Stats.Reflected == 0 {
		tp.T.Errorf("hub: keepalive %+v, reflected %d; want none of its own, the spokes' reflected", st.Keepalive, st.Stats.Reflected)
	}
	if len(st.Neighbours) != len(spokes) {
		tp.T.Fatalf("hub neighbours: %+v, want %d", st.Neighbours, len(spokes))
	}
	return st
}
