package e2e

import (
	"net"
	"testing"
	"time"

	"github.com/gretun/gretun/internal/testnet"
	"github.com/gretun/gretun/metrics/metricstest"
)

// scrape reads http://addr/metrics from inside namespace ns.
func (tp *Topology) scrape(ns, addr string) metricstest.Families {
	tp.T.Helper()
	var c net.Conn
	err := testnet.InNS(ns, func() (err error) {
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	})
	if err != nil {
		tp.T.Fatalf("connecting to the metrics in %s: %v", ns, err)
	}
	f, err := metricstest.ScrapeConn(c)
	if err != nil {
		tp.T.Fatalf("scraping %s in %s: %v", addr, ns, err)
	}
	return f
}

// TestMetrics runs a daemon with -metrics and scrapes it: traffic, drops by
// reason, unmatched packets, keepalive state and round trip, path MTU, the
// Go and process collectors; the counters survive `tunnel change`. A
// second process on the same address, or a malformed address, is a
// one-line error creating nothing, and the first daemon keeps serving.
func TestMetrics(t *testing.T) {
	t.Parallel()
	tp := Pair(t)
	const addr = "127.0.0.1:9469"
	d := tp.Daemon(tp.A, "-metrics", addr)
	defer d.Stop()
	defer tp.Daemon(tp.B).Stop()
	tp.add(tp.A, "ka", "mode", "gre", "remote", UnderB, "local", UnderA, "key", "1", "keepalive", "0.1", "3")
	tp.add(tp.B, "ka", "mode", "gre", "remote", UnderA, "local", UnderB, "key", "1")
	// A requires checksums on cs, which B does not send: dropped as
	// checksum-missing. B's key 9 matches no tunnel on A: unmatched.
	tp.add(tp.A, "cs", "mode", "gre", "remote", UnderB, "local", UnderA, "key", "2", "icsum")
	tp.add(tp.B, "cs", "mode", "gre", "remote", UnderA, "local", UnderB, "key", "2")
	tp.add(tp.B, "k9", "mode", "gre", "remote", UnderA, "local", UnderB, "key", "9")
	tp.Sh(tp.A, "ip", "addr", "add", "198.51.100.1", "peer", "203.0.113.1", "dev", "ka")
	tp.Sh(tp.B, "ip", "addr", "add", "203.0.113.1", "peer", "198.51.100.1", "dev", "ka")
	tp.Sh(tp.B, "ip", "addr", "add", "203.0.113.2", "peer", "198.51.100.2", "dev", "cs")
	tp.Sh(tp.B, "ip", "addr", "add", "203.0.113.3", "peer", "198.51.100.3", "dev", "k9")
	tp.Ping(tp.A, "203.0.113.1")
	tp.Exec(tp.B, "ping", "-c", "3", "-i", "0.05", "-W", "1", "198.51.100.2")
	tp.Exec(tp.B, "ping", "-c", "2", "-i", "0.05", "-W", "1", "198.51.100.3")
	tp.waitFor("a keepalive reply", func() bool { return tp.keepalive(tp.A, "ka").Received > 0 })

	f := tp.scrape(tp.A, addr)
	ka := []string{"tunnel", "ka", "mode", "gre"}
	val := func(f metricstest.Families, name string, labels ...string) float64 {
		t.Helper()
		v, ok := f.Value(name, labels...)
		if !ok {
			t.Fatalf("no single %s%v in the scrape", name, labels)
		}
		return v
	}
	st := tp.status(tp.A, "ka")
	if got := val(f, "gretun_tunnel_tx_packets_total", ka...); got < 3 {
		t.Errorf("ka tx packets %v, want at least the 3 pings", got)
	}
	if got := val(f, "gretun_tunnel_rx_packets_total", ka...); got < 3 {
		t.Errorf("ka rx packets %v, want at least the 3 replies", got)
	}
	if got := val(f, "gretun_tunnel_rx_bytes_total", ka...); got < 3*84 {
		t.Errorf("ka rx bytes %v, want at least 3 pings' worth", got)
	}
	if got := val(f, "gretun_tunnel_path_mtu_bytes", ka...); got != float64(st.PathMTU) || got < 1000 {
		t.Errorf("ka path MTU %v, tunnel show says %d", got, st.PathMTU)
	}
	if got := val(f, "gretun_tunnel_keepalive_state", append(ka, "state", "up")...); got != 1 {
		t.Errorf("keepalive state up = %v, want 1", got)
	}
	if got := val(f, "gretun_tunnel_keepalive_up", ka...); got != 1 {
		t.Errorf("keepalive_up = %v, want 1", got)
	}
	if rtt := val(f, "gretun_tunnel_keepalive_rtt_seconds", ka...); rtt <= 0 || rtt > 1 {
		t.Errorf("keepalive rtt %v s, want a round trip over veth", rtt)
	}
	if got := val(f, "gretun_tunnel_drops_total", "tunnel", "cs", "direction", "rx", "reason", "checksum-missing"); got < 3 {
		t.Errorf("cs drops checksum-missing = %v, want the 3 pings (and the device's own IPv6 chatter)", got)
	}
	if got := val(f, "gretun_unmatched_drops_total", "reason", "no-tunnel"); got < 2 {
		t.Errorf("unmatched no-tunnel = %v, want the 2 pings with key 9 (and the device's IPv6 chatter)", got)
	}
	if got := val(f, "gretun_tunnels"); got != 2 {
		t.Errorf("gretun_tunnels = %v, want 2", got)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "process_cpu_seconds_total"} {
		if _, ok := f[name]; !ok {
			t.Errorf("no %s in the scrape", name)
		}
	}

	// tunnel change keeps the counters.
	before := val(f, "gretun_tunnel_tx_packets_total", ka...)
	if r := tp.G(tp.A, "tunnel", "change", "ka", "ttl", "64"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if got := val(tp.scrape(tp.A, addr), "gretun_tunnel_tx_packets_total", ka...); got < before {
		t.Errorf("tx packets after tunnel change %v, were %v", got, before)
	}

	// Bad addresses: one line, nothing created, the daemon unaffected.
	for _, c := range []struct{ addr, want string }{
		{addr, "address already in use"},
		{"nonsense", "want HOST:PORT"},
	} {
		r := tp.G(tp.A, "run", "-metrics", c.addr, "mx", "mode", "gre", "remote", UnderB, "local", UnderA, "key", "7")
		wantError(t, "run -metrics "+c.addr, r, "metrics address", c.want)
		if tp.hasLink(tp.A, "mx") {
			t.Errorf("run -metrics %s left device mx behind", c.addr)
		}
	}
	r := tp.G(tp.A, "-S", "@gretun-metrics-test", "daemon", "-metrics", addr)
	wantError(t, "a second daemon on the metrics address", r, addr, "address already in use")
	if got := val(tp.scrape(tp.A, addr), "gretun_tunnels"); got != 2 {
		t.Errorf("after the refused processes gretun_tunnels = %v, want 2", got)
	}
}
