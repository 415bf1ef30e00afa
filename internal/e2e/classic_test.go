package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gretun/gretun/tunnel"
)

// Stats reads a tunnel's counters through `gretun -s -j tunnel show NAME`.
func (tp *Topology) Stats(ns, name string) tunnel.Stats {
	tp.T.Helper()
	out, err := tp.Gretun(ns, "-s", "-j", "tunnel", "show", name)
	if err != nil {
		tp.T.Fatalf("tunnel show %s: %v", name, err)
	}
	var v struct{ Tunnels []tunnel.Status }
	if err := json.Unmarshal([]byte(out), &v); err != nil || len(v.Tunnels) != 1 {
		tp.T.Fatalf("tunnel show %s: %v: %s", name, err, out)
	}
	return v.Tunnels[0].Stats
}

// classicTunnels runs the scenario's two routers' tunnels (netb on A, neta
// on B) with the given mode and options, and routes each far LAN through
// them.
func (tp *Topology) classicTunnels(words ...string) (a, b *Proc) {
	tp.T.Helper()
	a = tp.Run(tp.A, "netb", append([]string{"remote", UnderB, "local", UnderA}, words...)...)
	b = tp.Run(tp.B, "neta", append([]string{"remote", UnderA, "local", UnderB}, words...)...)
	tp.Route(tp.A, "netb", LanA, "203.0.113.0/24")
	tp.Route(tp.B, "neta", LanB, "198.51.100.0/24")
	return a, b
}

// carryBothWays pings and sends 4 MiB over TCP from host A to host B and
// back through the scenario's tunnels, checks that both tunnels counted the
// traffic (over 1000 packets each way) and no receive error, and returns
// their counters.
func (tp *Topology) carryBothWays() (sa, sb tunnel.Stats) {
	tp.T.Helper()
	tp.Ping(tp.HostA, HostBIP)
	tp.Ping(tp.HostB, HostAIP)
	tp.Transfer(tp.HostA, tp.HostB, HostBIP, 4<<20)
	tp.Transfer(tp.HostB, tp.HostA, HostAIP, 4<<20)
	sa, sb = tp.Stats(tp.A, "netb"), tp.Stats(tp.B, "neta")
	if sa.TxPackets < 1000 || sb.TxPackets < 1000 || sa.RxPackets < 1000 || sb.RxPackets < 1000 {
		tp.T.Errorf("counters do not show the traffic: A %+v B %+v", sa, sb)
	}
	if sa.RxErrors != 0 || sb.RxErrors != 0 {
		tp.T.Errorf("receive errors: A %+v B %+v", sa.Drops, sb.Drops)
	}
	return sa, sb
}

// TestClassicScenario is the example of the tunneling instructions with
// gretun in place of the kernel modules: host A pings host B and sends a
// file over TCP, and back, through GRE and through IP-in-IP.
func TestClassicScenario(t *testing.T) {
	for _, mode := range []string{"gre", "ipip"} {
		t.Run(mode, func(t *testing.T) {
			tp := Classic(t)
			a, b := tp.classicTunnels("mode", mode, "ttl", "255")
			tp.carryBothWays()
			// `ip link set down` stops the tunnel as it would a kernel one; up restarts it.
			tp.Sh(tp.A, "ip", "link", "set", "dev", "netb", "down")
			if out, err := tp.Exec(tp.HostA, "ping", "-c", "1", "-W", "1", HostBIP); err == nil {
				t.Errorf("ping crossed a tunnel that is down:\n%s", out)
			}
			tp.Sh(tp.A, "ip", "link", "set", "dev", "netb", "up")
			tp.Sh(tp.A, "ip", "route", "replace", "203.0.113.0/24", "dev", "netb")
			tp.Ping(tp.HostA, HostBIP)

			for _, p := range []*Proc{a, b} {
				if err := p.Stop(); err != nil {
					t.Errorf("gretun run exited with %v: %s", err, p.Log())
				}
			}
			for ns, dev := range map[string]string{tp.A: "netb", tp.B: "neta"} {
				if _, err := tp.Exec(ns, "ip", "link", "show", "dev", dev); err == nil {
					t.Errorf("device %s still exists after SIGTERM", dev)
				}
			}
		})
	}
}

// TestKeysSeparateTunnels runs two tunnels between the same routers that
// differ only in their key; each carries its own traffic.
func TestKeysSeparateTunnels(t *testing.T) {
	tp := Classic(t)
	tp.Start(tp.A, "daemon")
	tp.Start(tp.B, "daemon")
	for _, k := range []string{"1", "2"} {
		addWhenReady(tp, tp.A, "k"+k, "mode", "gre", "remote", UnderB, "local", UnderA, "key", k)
		addWhenReady(tp, tp.B, "k"+k, "mode", "gre", "remote", UnderA, "local", UnderB, "key", k)
		tp.Sh(tp.A, "ip", "addr", "add", "198.51.100.10"+k, "peer", "203.0.113.10"+k, "dev", "k"+k)
		tp.Sh(tp.B, "ip", "addr", "add", "203.0.113.10"+k, "peer", "198.51.100.10"+k, "dev", "k"+k)
		tp.Sh(tp.A, "ip", "link", "set", "dev", "k"+k, "up")
		tp.Sh(tp.B, "ip", "link", "set", "dev", "k"+k, "up")
	}
	// The devices also carry some IPv6 housekeeping (router solicitations),
	// so compare how much each tunnel's counters moved during each ping.
	b1, b2 := tp.Stats(tp.B, "k1"), tp.Stats(tp.B, "k2")
	tp.Ping(tp.A, "203.0.113.102", "-c", "20", "-i", "0.01")
	s1, s2 := tp.Stats(tp.B, "k1"), tp.Stats(tp.B, "k2")
	if d := s2.RxPackets - b2.RxPackets; d < 20 {
		t.Errorf("tunnel k2 received %d packets, want the 20 pings sent through it", d)
	}
	if d := s1.RxPackets - b1.RxPackets; d >= 20 {
		t.Errorf("tunnel k1 received %d packets while the pings went through k2", d)
	}
	tp.Ping(tp.A, "203.0.113.101")
	if s1.RxErrors+s2.RxErrors != 0 {
		t.Errorf("drops: %v %v", s1.Drops, s2.Drops)
	}
	// A third key known on one side only is dropped there and counted as unmatched.
	addWhenReady(tp, tp.A, "k3", "mode", "gre", "remote", UnderB, "local", UnderA, "key", "3")
	tp.Sh(tp.A, "ip", "addr", "add", "198.51.100.103", "peer", "203.0.113.103", "dev", "k3")
	before := tp.unmatched(tp.B)
	tp.Exec(tp.A, "ping", "-c", "2", "-i", "0.2", "-W", "1", "203.0.113.103")
	if d := tp.unmatched(tp.B) - before; d < 2 {
		t.Errorf("%d packets with an unknown key counted as unmatched, want 2 or more", d)
	}
}

// unmatched returns the daemon's count of packets that matched no tunnel.
func (tp *Topology) unmatched(ns string) uint64 {
	tp.T.Helper()
	out, err := tp.Gretun(ns, "-s", "-j", "tunnel", "show")
	if err != nil {
		tp.T.Fatal(err)
	}
	var v struct{ Unmatched tunnel.Stats }
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		tp.T.Fatal(err)
	}
	return v.Unmatched.Drops["no-tunnel"]
}

// addWhenReady adds a tunnel through the daemon's control socket, waiting
// for the daemon to start listening.
func addWhenReady(tp *Topology, ns, name string, words ...string) {
	tp.T.Helper()
	var out string
	var err error
	for i := 0; i < 100; i++ {
		out, err = tp.Gretun(ns, append([]string{"tunnel", "add", name}, words...)...)
		if err == nil || !strings.Contains(out, "no gretun daemon") {
			break
		}
		sleep(50)
	}
	if err != nil {
		tp.T.Fatalf("tunnel add %s: %v", name, err)
	}
}

// TestIPv6OverGRE carries an IPv6 network over an IPv4 GRE tunnel.
func TestIPv6OverGRE(t *testing.T) {
	tp := Classic(t)
	tp.Run(tp.A, "netb", "mode", "gre", "remote", UnderB, "local", UnderA)
	tp.Run(tp.B, "neta", "mode", "gre", "remote", UnderA, "local", UnderB)
	tp.Sh(tp.A, "ip", "-6", "addr", "add", "2001:db8:1::1/64", "dev", "netb", "nodad")
	tp.Sh(tp.B, "ip", "-6", "addr", "add", "2001:db8:1::2/64", "dev", "neta", "nodad")
	tp.Ping(tp.A, "2001:db8:1::2")
	tp.Transfer(tp.A, tp.B, "2001:db8:1::2", 1<<20)
}

// TestOuterFragmentation sends a DF-clear packet that fits the tunnel MTU
// but not, once encapsulated, the underlay: with nopmtudisc gretun
// fragments the outer packet and the receiving kernel reassembles it.
func TestOuterFragmentation(t *testing.T) {
	tp := Classic(t)
	tp.Run(tp.A, "netb", "mode", "gre", "remote", UnderB, "local", UnderA, "mtu", "1500", "nopmtudisc")
	tp.Run(tp.B, "neta", "mode", "gre", "remote", UnderA, "local", UnderB, "mtu", "1500", "nopmtudisc")
	tp.Route(tp.A, "netb", LanA, "203.0.113.0/24")
	tp.Route(tp.B, "neta", LanB, "198.51.100.0/24")
	tp.Ping(tp.HostA, HostBIP, "-M", "dont", "-s", "1472")
	if s := tp.Stats(tp.A, "netb"); s.TxFragmented < 6 {
		t.Errorf("router A sent %d outer fragments, want 2 per ping", s.TxFragmented)
	}
	if s := tp.Stats(tp.B, "neta"); s.RxPackets < 3 || s.RxErrors != 0 {
		t.Errorf("router B: %+v", s)
	}
}

// TestHundredTunnels runs 100 tunnels in one daemon, each carrying a ping;
// router A adds them one by one on the command line, router B reads them
// from a config file.
func TestHundredTunnels(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	tp := Classic(t)
	const count = 100
	var file strings.Builder
	for i := 1; i <= count; i++ {
		fmt.Fprintf(&file, "t%d mode gre remote %s local %s key %d\n", i, UnderA, UnderB, i)
	}
	path := t.TempDir() + "/b.conf"
	writeFile(t, path, file.String())
	b := tp.Start(tp.B, "daemon", "-c", path)
	tp.Start(tp.A, "daemon")
	for i := 1; i <= count; i++ {
		name := fmt.Sprintf("t%d", i)
		addWhenReady(tp, tp.A, name, "mode", "gre", "remote", UnderB, "local", UnderA, "key", fmt.Sprint(i))
		tp.Sh(tp.A, "ip", "addr", "add", fmt.Sprintf("198.51.100.%d", i), "peer", fmt.Sprintf("203.0.113.%d", i), "dev", name)
	}
	tp.WaitLink(tp.B, fmt.Sprintf("t%d", count), b)
	for i := 1; i <= count; i++ {
		tp.Sh(tp.B, "ip", "addr", "add", fmt.Sprintf("203.0.113.%d", i), "peer", fmt.Sprintf("198.51.100.%d", i), "dev", fmt.Sprintf("t%d", i))
	}
	for i := 1; i <= count; i++ {
		out, err := tp.Exec(tp.A, "ping", "-c", "1", "-W", "2", fmt.Sprintf("203.0.113.%d", i))
		if err != nil {
			t.Fatalf("ping through tunnel t%d: %v\n%s", i, err, out)
		}
	}
	out, _ := tp.Gretun(tp.B, "tunnel", "show")
	if n := strings.Count(out, "\n"); n != count {
		t.Errorf("tunnel show lists %d tunnels, want %d", n, count)
	}
}

// TestDeadLoop routes the remote endpoint through the tunnel itself: gretun
// reads its own outer packets back from the device, drops them, counts
// them as a dead loop and logs it once.
func TestDeadLoop(t *testing.T) {
	tp := Classic(t)
	p := tp.Run(tp.A, "netb", "mode", "gre", "remote", UnderB, "local", UnderA)
	tp.Sh(tp.A, "ip", "addr", "add", "198.51.100.1", "peer", "203.0.113.1", "dev", "netb")
	tp.Sh(tp.A, "ip", "route", "add", UnderB+"/32", "dev", "netb")
	tp.Exec(tp.A, "ping", "-c", "3", "-i", "0.2", "-W", "1", "203.0.113.1")
	s := tp.Stats(tp.A, "netb")
	if s.TxDeadLoop < 2 {
		t.Errorf("dead loop counted %d times: %+v", s.TxDeadLoop, s)
	}
	if n := strings.Count(p.Log(), "dead loop"); n != 1 {
		t.Errorf("dead loop logged %d times, want once:\n%s", n, p.Log())
	}
}
