package interop

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// sitTraffic is the standard check for sit, which carries IPv6 only: the
// kernel's device MTU on both sides (1480, 1472 inside UDP), ping6 both
// ways, IPv6 packets of exactly that MTU filling the 1500-byte underlay
// both ways, TCP both ways, and on the wire protocol 41 (or UDP to the fou
// port) from both with DF set (pmtudisc, both sides' default) and the
// configured TTL, or, with the default ttl inherit, the inner hop limit.
// Neither side counts an error.
func sitTraffic(t *testing.T, e *env, c tcase) {
	want := 1500 - 20
	if c.gretun.fou {
		want -= 8
	}
	if h, g := hostMTU(t, e), guestMTU(t, e); h != want || g != want {
		t.Errorf("device MTU: gretun %d, kernel %d; want %d", h, g, want)
	}
	capt := startCapture(t, e)
	g0 := ifStats(t, e)
	r0, _ := gretunCounters(t, e, tunName)
	if s, r, out := hostPing(t, e, "-6", "-c", "3", "-i", "0.2", "-W", "5", guestIn6); s != 3 || r != 3 {
		t.Errorf("ping gretun → kernel: %d of %d answered:\n%s", r, s, out)
	}
	if s, r, out := guestPing(t, e, "-6 -c 3 -i 0.2 -W 5 "+hostIn6); s != 3 || r != 3 {
		t.Errorf("ping kernel → gretun: %d of %d answered:\n%s", r, s, out)
	}
	size := strconv.Itoa(want - 48) // IPv6 and ICMPv6 headers
	if s, r, out := hostPing(t, e, "-6", "-M", "do", "-c", "2", "-i", "0.2", "-W", "5", "-s", size, guestIn6); s != 2 || r != 2 {
		t.Errorf("ping of the MTU gretun → kernel: %d of %d answered:\n%s", r, s, out)
	}
	if s, r, out := guestPing(t, e, "-6 -c 2 -i 0.2 -W 5 -s "+size+" "+hostIn6); s != 2 || r != 2 {
		t.Errorf("ping of the MTU kernel → gretun: %d of %d answered:\n%s", r, s, out)
	}
	pkts := capt.stop(t)
	checkDirection(t, pkts, c.mode, "gretun → kernel", hostUnder, c.gretun, 10)
	checkDirection(t, pkts, c.mode, "kernel → gretun", guestUnd, c.guest, 10)
	for _, side := range []struct {
		src string
		o   tunOpts
	}{{hostUnder, c.gretun}, {guestUnd, c.guest}} {
		full, noDF, ttl := 0, 0, 0
		for _, p := range pkts {
			if p.src != side.src || p.proto != 41 {
				continue
			}
			if p.length == 1500 {
				full++
			}
			if !p.df {
				noDF++
			}
			if side.o.ttl == 0 && p.innerTTL >= 0 && p.ttl != p.innerTTL {
				ttl++
			}
		}
		if full < 4 || noDF != 0 || ttl != 0 {
			t.Errorf("from %s: %d outer packets of 1500 bytes (want the MTU-sized requests and replies, 4), %d without DF, %d whose TTL is not the inner hop limit (ttl inherit)",
				side.src, full, noDF, ttl)
		}
	}

	tcpToGuest(t, e, guestIn6)
	tcpFromGuest(t, e, hostIn6)
	r1, _ := gretunCounters(t, e, tunName)
	noErrors(t, ifStats(t, e).Sub(g0), sub(r1, r0))
	if d := sub(r1, r0); d.RxPackets < xferSize/1500 || d.TxPackets < xferSize/1500 {
		t.Errorf("gretun counted %d packets in and %d out", d.RxPackets, d.TxPackets)
	}
}

// sitBesideIPIP: the kernel takes one sit tunnel per address pair and an
// ipip tunnel beside it (another driver, another protocol); gretun refuses
// and takes the same, and the two tunnels each carry their own family
// between the same endpoints, both ways.
func sitBesideIPIP(t *testing.T, e *env, c tcase) {
	const (
		name                = "gi"
		hostIPIP, guestIPIP = "203.0.113.1", "203.0.113.2"
	)
	if out, err := e.g.Run("ip tunnel add gt2 mode sit remote " + hostUnder + " local " + guestUnd); err == nil {
		e.g.Run("ip link del gt2")
		t.Errorf("the kernel took a second sit tunnel on one address pair: %s", out)
	}
	if out, err := e.n.Exec(e.ns, e.bin, "tunnel", "add", "gt2", "mode", "sit", "remote", guestUnd, "local", hostUnder); err == nil ||
		!strings.Contains(out, `"gt1" already uses sit remote `+guestUnd+" local "+hostUnder) {
		t.Errorf("gretun tunnel add of a second sit tunnel on the pair: %v: %s", err, out)
	}

	if _, err := e.g.Run("ip tunnel add " + name + " mode ipip remote " + hostUnder + " local " + guestUnd +
		" && ip addr add " + guestIPIP + "/30 dev " + name + " && ip link set " + name + " up"); err != nil {
		t.Fatalf("the kernel's ipip tunnel beside sit: %v", err)
	}
	t.Cleanup(func() { e.g.Run("ip link del " + name) })
	p := spawnGretun(t, e, "run", name, "mode", "ipip", "remote", guestUnd, "local", hostUnder)
	if err := e.n.WaitLink(e.ns, name, 15*time.Second, p.exited); err != nil {
		t.Fatalf("gretun's ipip tunnel beside sit: %v: %s", err, p.out.String())
	}
	for _, s := range [][]string{{"ip", "addr", "add", hostIPIP + "/30", "dev", name}, {"ip", "link", "set", "dev", name, "up"}} {
		if _, err := e.n.Exec(e.ns, s...); err != nil {
			t.Fatal(err)
		}
	}
	for _, ping := range []struct{ host, guest string }{{hostIn6, guestIn6}, {hostIPIP, guestIPIP}} {
		if s, r, out := hostPing(t, e, "-c", "3", "-i", "0.2", "-W", "5", ping.guest); s != 3 || r != 3 {
			t.Errorf("ping gretun → kernel %s: %d of %d answered:\n%s", ping.guest, r, s, out)
		}
		if s, r, out := guestPing(t, e, "-c 3 -i 0.2 -W 5 "+ping.host); s != 3 || r != 3 {
			t.Errorf("ping kernel → gretun %s: %d of %d answered:\n%s", ping.host, r, s, out)
		}
	}
	tcpToGuest(t, e, guestIPIP)
	tcpFromGuest(t, e, hostIn6)
	p.stop(t, true)
}
