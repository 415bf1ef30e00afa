package e2e

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gretun/gretun/internal/kpeer"
	"github.com/gretun/gretun/internal/testnet"
	"github.com/gretun/gretun/tunnel"
)

// The keepalive tests use sub-second periods so that a tunnel goes down
// within a second of losing its far end: PERIOD×(RETRIES+1) = 0.8 s.
// Deadlines are generous (a loaded CI machine must not fail them); what is
// asserted is that the state changed, not how fast.
const (
	kaPeriod   = "0.2"
	kaRetries  = "3"
	kaDeadline = 15 * time.Second
)

// Backup path between the routers for the failover test: a second veth
// pair inside the underlay's documentation range.
const (
	bakA = "192.0.2.65"
	bakB = "192.0.2.66"
)

// status returns `gretun -s -j tunnel show NAME` in ns.
func (tp *Topology) status(ns, name string) tunnel.Status {
	tp.T.Helper()
	for _, s := range tp.statuses(ns) {
		if s.Config.Name == name {
			return s
		}
	}
	tp.T.Fatalf("no tunnel %s in %s", name, ns)
	return tunnel.Status{}
}

// keepalive returns the tunnel's keepalive status, failing the test when
// the tunnel has none.
func (tp *Topology) keepalive(ns, name string) tunnel.KeepaliveStatus {
	tp.T.Helper()
	s := tp.status(ns, name)
	if s.Keepalive == nil {
		tp.T.Fatalf("tunnel %s in %s shows no keepalive status", name, ns)
	}
	return *s.Keepalive
}

// carrier reports whether dev in ns has its carrier: `ip link` shows
// NO-CARRIER when the line protocol is down.
func (tp *Topology) carrier(ns, dev string) bool {
	tp.T.Helper()
	out := tp.Sh(ns, "ip", "-o", "link", "show", "dev", dev)
	return !strings.Contains(out, "NO-CARRIER")
}

// routeDev returns the device `ip route get DST` chooses in ns.
func (tp *Topology) routeDev(ns, dst string) string {
	tp.T.Helper()
	out := tp.Sh(ns, "ip", "route", "get", dst)
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "dev" {
			return f[i+1]
		}
	}
	tp.T.Fatalf("ip route get %s in %s names no device: %q", dst, ns, out)
	return ""
}

// waitFor polls cond until it holds or kaDeadline passes, and returns how
// long it took; it fails the test with what when the deadline passes.
func (tp *Topology) waitFor(what string, cond func() bool) time.Duration {
	tp.T.Helper()
	start := time.Now()
	for time.Since(start) < kaDeadline {
		if cond() {
			return time.Since(start)
		}
		sleep(20)
	}
	tp.T.Fatalf("%s: still not the case after %v", what, kaDeadline)
	return 0
}

// blockGRE drops every GRE packet arriving in ns with an nftables rule and
// returns the function that removes it again. The table lives in the
// namespace, so it disappears with it if the test fails first.
func (tp *Topology) blockGRE(ns string) (restore func()) {
	tp.T.Helper()
	if _, err := os.Stat("/usr/sbin/nft"); err != nil {
		tp.T.Skip("needs nftables (/usr/sbin/nft) to cut the underlay")
	}
	tp.Sh(ns, "nft", "add", "table", "inet", "gtka")
	tp.Sh(ns, "nft", "add", "chain", "inet", "gtka", "in", "{ type filter hook input priority 0; }")
	tp.Sh(ns, "nft", "add", "rule", "inet", "gtka", "in", "ip", "protocol", "gre", "counter", "drop")
	return func() {
		tp.T.Helper()
		tp.Sh(ns, "nft", "delete", "table", "inet", "gtka")
	}
}

// TestKeepaliveFailover is test (a) of the keepalive issue: gretun on both
// routers with keepalives, the tunnel route at metric 0 and a floating
// static route at metric 100 over a second link. Cutting GRE on the
// underlay brings both tunnels' line protocol down, the kernel skips the
// tunnel routes and traffic takes the backup link; lifting the cut brings
// the tunnels back and the user's routes carry traffic again, untouched.
func TestKeepaliveFailover(t *testing.T) {
	tp := Classic(t)
	tp.must(tp.Veth(tp.A, "bak", tp.B, "bak"))
	tp.must(tp.Addr(tp.A, "bak", bakA+"/26"))
	tp.must(tp.Addr(tp.B, "bak", bakB+"/26"))
	tp.Sh(tp.A, "ip", "route", "add", "203.0.113.0/24", "via", bakB, "dev", "bak", "metric", "100")
	tp.Sh(tp.B, "ip", "route", "add", "198.51.100.0/24", "via", bakA, "dev", "bak", "metric", "100")

	ka := []string{"keepalive", kaPeriod, kaRetries}
	pa := tp.Run(tp.A, "netb", append([]string{"mode", "gre", "remote", UnderB, "local", UnderA, "ttl", "255"}, ka...)...)
	tp.Run(tp.B, "neta", append([]string{"mode", "gre", "remote", UnderA, "local", UnderB, "ttl", "255"}, ka...)...)
	tp.Route(tp.A, "netb", LanA, "203.0.113.0/24")
	tp.Route(tp.B, "neta", LanB, "198.51.100.0/24")
	routesA := tp.Sh(tp.A, "ip", "route", "show", "203.0.113.0/24")

	// Both ends answer each other: the tunnels are up and carry the traffic.
	tp.waitFor("keepalive replies on both routers", func() bool {
		return tp.keepalive(tp.A, "netb").Received >= 2 && tp.keepalive(tp.B, "neta").Received >= 2
	})
	tp.wantTunnelPath(tp.A, "netb", tp.B, "neta")

	// Cut GRE into router B. A's keepalives no longer reach B, and B's,
	// reflected by A, no longer come back: both lines go down.
	restore := tp.blockGRE(tp.B)
	cut := time.Now()
	for _, side := range []struct{ ns, dev string }{{tp.A, "netb"}, {tp.B, "neta"}} {
		tp.waitFor("carrier off on "+side.dev, func() bool { return !tp.carrier(side.ns, side.dev) })
		t.Logf("%s: NO-CARRIER %v after the cut (PERIOD×(RETRIES+1) = 0.8 s)", side.dev, time.Since(cut).Round(time.Millisecond))
		if k := tp.keepalive(side.ns, side.dev); k.State != "down" {
			t.Errorf("%s: carrier off but keepalive state %q (%s)", side.dev, k.State, k.Summary)
		}
	}
	if dev := tp.routeDev(tp.A, HostBIP); dev != "bak" {
		t.Errorf("router A routes %s through %s while the tunnel is down, want the backup link bak", HostBIP, dev)
	}
	if dev := tp.routeDev(tp.B, HostAIP); dev != "bak" {
		t.Errorf("router B routes %s through %s while the tunnel is down, want the backup link bak", HostAIP, dev)
	}
	// GRE into B is dropped, so these replies can only have come over bak.
	bak := tp.rxPackets(tp.B, "bak")
	tp.Ping(tp.HostA, HostBIP)
	if d := tp.rxPackets(tp.B, "bak") - bak; d < 3 {
		t.Errorf("router B's backup link received %d packets during the ping, want at least 3", d)
	}
	if out := tp.Sh(tp.A, "ip", "route", "show", "203.0.113.0/24"); !strings.Contains(out, "dev netb") || !strings.Contains(out, "linkdown") {
		t.Errorf("while down, the user's tunnel route should stay, marked linkdown:\n%s", out)
	}
	// Keepalives keep going while down.
	sent := tp.keepalive(tp.A, "netb").Sent
	tp.waitFor("keepalives sent while down", func() bool { return tp.keepalive(tp.A, "netb").Sent >= sent+2 })

	// Lift the cut: the first returning reply brings each line back.
	restore()
	lifted := time.Now()
	for _, side := range []struct{ ns, dev string }{{tp.A, "netb"}, {tp.B, "neta"}} {
		tp.waitFor("carrier back on "+side.dev, func() bool { return tp.carrier(side.ns, side.dev) })
		t.Logf("%s: carrier back %v after the cut was lifted", side.dev, time.Since(lifted).Round(time.Millisecond))
		if k := tp.keepalive(side.ns, side.dev); k.State != "up" {
			t.Errorf("%s: carrier on but keepalive state %q (%s)", side.dev, k.State, k.Summary)
		}
	}
	if got := tp.Sh(tp.A, "ip", "route", "show", "203.0.113.0/24"); got != routesA {
		t.Errorf("router A's routes changed across the outage:\nbefore:\n%safter:\n%s", routesA, got)
	}
	tp.wantTunnelPath(tp.A, "netb", tp.B, "neta")
	// Each change of the line protocol is logged with its reason.
	for _, want := range []string{"line protocol down", "keepalives unanswered", "line protocol up", "reply received"} {
		if !strings.Contains(pa.Log(), want) {
			t.Errorf("router A's log does not say %q:\n%s", want, pa.Log())
		}
	}
	for _, side := range []struct{ ns, dev string }{{tp.A, "netb"}, {tp.B, "neta"}} {
		if k := tp.keepalive(side.ns, side.dev); k.Rejected != 0 {
			t.Errorf("%s rejected replies from a genuine peer: %s", side.dev, k.Summary)
		}
	}
}

// wantTunnelPath checks that the routers route the far networks through
// their tunnels and that a ping from host A to host B crosses them.
func (tp *Topology) wantTunnelPath(a, devA, b, devB string) {
	tp.T.Helper()
	if dev := tp.routeDev(a, HostBIP); dev != devA {
		tp.T.Errorf("router A routes %s through %s, want the tunnel %s", HostBIP, dev, devA)
	}
	if dev := tp.routeDev(b, HostAIP); dev != devB {
		tp.T.Errorf("router B routes %s through %s, want the tunnel %s", HostAIP, dev, devB)
	}
	rxB, rxA := tp.Stats(b, devB).RxPackets, tp.Stats(a, devA).RxPackets
	tp.Ping(tp.HostA, HostBIP)
	if d := tp.Stats(b, devB).RxPackets - rxB; d < 3 {
		tp.T.Errorf("tunnel %s received %d packets during the ping, want at least 3", devB, d)
	}
	if d := tp.Stats(a, devA).RxPackets - rxA; d < 3 {
		tp.T.Errorf("tunnel %s received %d packets during the ping, want at least 3", devA, d)
	}
}

// rxPackets reads the kernel's receive packet counter of dev in ns.
func (tp *Topology) rxPackets(ns, dev string) uint64 { return tp.linkStat(ns, dev, "rx_packets") }

// linkStat reads one of the kernel's counters of dev in ns (its name in
// /sys/class/net/DEV/statistics).
func (tp *Topology) linkStat(ns, dev, name string) uint64 {
	tp.T.Helper()
	out := strings.TrimSpace(tp.Sh(ns, "cat", "/sys/class/net/"+dev+"/statistics/"+name))
	var n uint64
	if _, err := fmt.Sscan(out, &n); err != nil {
		tp.T.Fatalf("%s of %s: %q", name, dev, out)
	}
	return n
}

// TestKeepaliveOneSide is test (b): keepalives on router A only. Router B,
// which has none configured, reflects A's keepalives straight back through
// the underlay, so A's tunnel stays up; B counts what it reflected. Once B
// stops, nothing reflects and A's line goes down.
func TestKeepaliveOneSide(t *testing.T) {
	tp := Pair(t)
	tp.Run(tp.A, "spoke", "mode", "gre", "remote", UnderB, "local", UnderA, "keepalive", "0.1", kaRetries)
	hub := tp.Run(tp.B, "hub", "mode", "gre", "remote", UnderA, "local", UnderB)

	const want = 10 // a whole second of keepalives, each answered
	tp.waitFor(fmt.Sprintf("%d keepalives answered", want), func() bool {
		k := tp.keepalive(tp.A, "spoke")
		if k.State != "up" || !tp.carrier(tp.A, "spoke") {
			t.Fatalf("spoke went %s while the hub reflects: %s", k.State, k.Summary)
		}
		return k.Received >= want
	})
	if k := tp.keepalive(tp.A, "spoke"); k.Rejected != 0 {
		t.Errorf("spoke rejected reflected replies: %s", k.Summary)
	}
	s := tp.status(tp.B, "hub")
	if s.Keepalive != nil {
		t.Errorf("hub has no keepalives configured but shows %+v", s.Keepalive)
	}
	if s.Stats.Reflected < want {
		t.Errorf("hub counts %d reflected keepalives, want at least the %d the spoke received back", s.Stats.Reflected, want)
	}
	if s.Stats.RxKeepaliveUnsolicited != 0 {
		t.Errorf("hub took reflected keepalives for unsolicited replies: %+v", s.Stats)
	}

	// Without the hub nothing answers, and the spoke notices.
	if err := hub.Stop(); err != nil {
		t.Errorf("hub exited with %v: %s", err, hub.Log())
	}
	tp.waitFor("spoke down once the hub is gone", func() bool { return !tp.carrier(tp.A, "spoke") })
	if k := tp.keepalive(tp.A, "spoke"); k.State != "down" {
		t.Errorf("spoke has NO-CARRIER but keepalive state %q: %s", k.State, k.Summary)
	}
}

// TestKeepaliveForgedReplies is test (c): once the far end is gone,
// keepalive replies injected from the underlay — a genuine reply captured
// earlier and replayed, the same with a broken MAC, and a payload-less
// Cisco-format one — do not hold the tunnel up, and each is counted as
// rejected.
func TestKeepaliveForgedReplies(t *testing.T) {
	tp := Pair(t)
	// Five retries: the freshness window PERIOD×RETRIES = 1 s leaves time
	// to replay a captured reply while it is still fresh.
	tp.Run(tp.A, "netb", "mode", "gre", "remote", UnderB, "local", UnderA, "keepalive", kaPeriod, "5")
	far := tp.Run(tp.B, "neta", "mode", "gre", "remote", UnderA, "local", UnderB)
	tp.waitFor("the far end reflecting", func() bool { return tp.keepalive(tp.A, "netb").Received >= 2 })

	// Capture, in B, one of A's keepalives: its inner packet is exactly
	// the reply B routes back to A. Once A has accepted a reply at least as
	// new, sending it again is a replay, not a late first delivery.
	sock := rawSocketIn(t, tp.B, unix.IPPROTO_GRE)
	genuine := captureKeepalive(t, sock)
	unix.Close(sock)
	r0 := tp.keepalive(tp.A, "netb").Received
	tp.waitFor("the captured keepalive returned", func() bool { return tp.keepalive(tp.A, "netb").Received > r0 })

	if err := far.Stop(); err != nil {
		t.Errorf("far end exited with %v: %s", err, far.Log())
	}
	sleep(50) // let A read any reply B sent before it ended
	before := tp.keepalive(tp.A, "netb")

	broken := append([]byte(nil), genuine...)
	broken[len(broken)-1] ^= 0xff // the last byte of the MAC
	cisco := append([]byte(nil), genuine[:24]...)
	binary.BigEndian.PutUint16(cisco[2:], 24) // total length: headers only
	forgeries := [][]byte{genuine, broken, cisco}

	out := rawSocketIn(t, tp.B, unix.IPPROTO_RAW)
	defer unix.Close(out)
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		// Several forged replies per keepalive period: were any of them
		// accepted, the tunnel would never go down.
		sent := 0
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				done <- sent
				return
			case <-tick.C:
			}
			for _, p := range forgeries {
				if sendRaw(out, p, UnderA) == nil {
					sent++
				}
			}
		}
	}()
	took := tp.waitFor("tunnel down despite forged replies", func() bool { return !tp.carrier(tp.A, "netb") })
	t.Logf("NO-CARRIER %v after the far end stopped, forged replies notwithstanding", took.Round(time.Millisecond))
	// Keep forging for a few periods: the tunnel must stay down.
	sleep(600)
	close(stop)
	injected := <-done
	after := tp.keepalive(tp.A, "netb")

	if after.State != "down" || tp.carrier(tp.A, "netb") {
		t.Errorf("forged replies brought the tunnel back: %s", after.Summary)
	}
	if after.Received != before.Received {
		t.Errorf("forged replies counted as received: %d when the far end stopped, %d after (%s)", before.Received, after.Received, after.Summary)
	}
	if injected == 0 {
		t.Fatal("no forged reply could be sent")
	}
	// Every forgery reaches the machine: two of each three are forged
	// (bad MAC, no payload) and one is stale (a replay).
	if d := after.RejectedForged - before.RejectedForged; d < uint64(injected)/3 {
		t.Errorf("%d forged replies rejected as forged after %d injected: %s", d, injected, after.Summary)
	}
	if d := after.RejectedStale - before.RejectedStale; d < 1 {
		t.Errorf("replayed replies not rejected as stale or replayed: %s", after.Summary)
	}
	if d := after.Rejected - before.Rejected; d < uint64(injected)/2 {
		t.Errorf("%d of %d injected replies rejected: %s", d, injected, after.Summary)
	}
	t.Logf("%d forged replies injected; %s", injected, after.Summary)
}

// rawSocketIn opens a raw IPv4 socket for protocol proto inside network
// namespace ns: a socket belongs to the namespace it was created in.
func rawSocketIn(t testing.TB, ns string, proto int) int {
	t.Helper()
	fd := -1
	err := testnet.InNS(ns, func() (err error) {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		return err
	})
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		t.Fatalf("raw socket for protocol %d in %s: %v", proto, ns, err)
	}
	return fd
}

// captureKeepalive reads GRE packets from sock until one is a keepalive
// (GRE carrying IPv4 whose own payload is GRE protocol type 0) and returns
// its inner packet.
func captureKeepalive(t testing.TB, sock int) []byte {
	t.Helper()
	tv := unix.Timeval{Usec: 100_000}
	if err := unix.SetsockoptTimeval(sock, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	deadline := time.Now().Add(kaDeadline)
	for time.Now().Before(deadline) {
		n, _, err := unix.Recvfrom(sock, buf, 0)
		if err != nil {
			continue
		}
		if inner := keepaliveInner(buf[:n]); inner != nil {
			return append([]byte(nil), inner...)
		}
	}
	t.Fatalf("no keepalive seen in %v", kaDeadline)
	return nil
}

// keepaliveInner returns the inner packet of an outer IPv4/GRE keepalive,
// or nil when p is not one.
func keepaliveInner(p []byte) []byte {
	if len(p) < 20 || p[0]>>4 != 4 || p[9] != unix.IPPROTO_GRE {
		return nil
	}
	ihl := int(p[0]&0xf) * 4
	if len(p) < ihl+4 || binary.BigEndian.Uint16(p[ihl:]) != 0 || binary.BigEndian.Uint16(p[ihl+2:]) != 0x0800 {
		return nil // GRE with options, or not carrying IPv4
	}
	in := p[ihl+4:]
	if len(in) < 24 || in[0] != 0x45 || in[9] != unix.IPPROTO_GRE || binary.BigEndian.Uint16(in[22:]) != 0 {
		return nil
	}
	return in
}

// sendRaw sends the complete IPv4 packet p (IP_HDRINCL) towards dst.
func sendRaw(sock int, p []byte, dst string) error {
	a := netip.MustParseAddr(dst).As4()
	return unix.Sendto(sock, p, 0, &unix.SockaddrInet4{Addr: a})
}

// TestKeepaliveKernelPeer is test (d): the far end is a real Linux kernel
// GRE tunnel in a qemu guest, which knows nothing of keepalives but returns
// them because it forwards: with ip_forward=1, accept_local=1 (the inner
// packet's source is the guest's own address) and rp_filter=0, it routes
// the decapsulated inner packet back to us. gretun's line stays up while
// the guest forwards, goes down when it stops forwarding, comes back when
// it forwards again, and goes down for good when the guest is stopped.
func TestKeepaliveKernelPeer(t *testing.T) {
	n, ns, g := kpeer.ForTest(t)
	guest := func(cmd string) {
		t.Helper()
		if out, err := g.Run(cmd); err != nil {
			t.Fatalf("guest: %s: %v: %s", cmd, err, out)
		}
	}
	guest("ip tunnel add gt1 mode gre remote " + UnderA + " local " + UnderB + " ttl 255 && ip link set gt1 up")
	guest("for d in all default eth0 gt1; do echo 1 > /proc/sys/net/ipv4/conf/$d/accept_local; echo 0 > /proc/sys/net/ipv4/conf/$d/rp_filter; done")
	guest("echo 1 > /proc/sys/net/ipv4/ip_forward")

	tp := &Topology{Net: n, T: t, A: ns}
	p := tp.Run(ns, "gt1", "mode", "gre", "remote", UnderB, "local", UnderA, "ttl", "255", "keepalive", kaPeriod, "5")

	// The guest answers every keepalive: the line stays up throughout.
	const want = 10
	tp.waitFor(fmt.Sprintf("%d keepalives returned by the kernel", want), func() bool {
		k := tp.keepalive(ns, "gt1")
		if k.State != "up" || !tp.carrier(ns, "gt1") {
			t.Fatalf("line went %s while the kernel peer forwards: %s", k.State, k.Summary)
		}
		return k.Received >= want
	})
	if k := tp.keepalive(ns, "gt1"); k.Rejected != 0 {
		t.Errorf("replies returned by the kernel were rejected: %s", k.Summary)
	}

	// A router that does not forward does not return keepalives.
	guest("echo 0 > /proc/sys/net/ipv4/ip_forward")
	took := tp.waitFor("line down once the guest stops forwarding", func() bool { return !tp.carrier(ns, "gt1") })
	t.Logf("NO-CARRIER %v after forwarding stopped (PERIOD×(RETRIES+1) = 1.2 s)", took.Round(time.Millisecond))
	guest("echo 1 > /proc/sys/net/ipv4/ip_forward")
	took = tp.waitFor("line up once the guest forwards again", func() bool { return tp.carrier(ns, "gt1") })
	t.Logf("carrier back %v after forwarding resumed", took.Round(time.Millisecond))
	if k := tp.keepalive(ns, "gt1"); k.State != "up" {
		t.Errorf("carrier on but keepalive state %q: %s", k.State, k.Summary)
	}

	// Stopping the guest takes its tap (and gretun's route to it) away.
	g.Close()
	took = tp.waitFor("line down once the guest is stopped", func() bool { return !tp.carrier(ns, "gt1") })
	t.Logf("NO-CARRIER %v after the guest stopped", took.Round(time.Millisecond))
	if k := tp.keepalive(ns, "gt1"); k.State != "down" {
		t.Errorf("NO-CARRIER but keepalive state %q: %s", k.State, k.Summary)
	}
	// Still running: it ends cleanly on SIGTERM, not with an earlier error.
	if err := p.Stop(); err != nil {
		t.Errorf("gretun ended with %v after its underlay went away: %s", err, p.Log())
	}
}
