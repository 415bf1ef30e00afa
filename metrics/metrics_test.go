package metrics

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/metrics/metricstest"
	"github.com/gretun/gretun/status"
)

// fakeSource stands in for the engine.
type fakeSource struct {
	mu        sync.Mutex
	tunnels   []status.Tunnel
	unmatched status.Stats
}

func (f *fakeSource) Show(string) ([]status.Tunnel, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]status.Tunnel(nil), f.tunnels...), nil
}

func (f *fakeSource) Unmatched() status.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unmatched
}

func testSource() *fakeSource {
	return &fakeSource{
		tunnels: []status.Tunnel{
			{
				Config: config.Tunnel{Name: "netb", Mode: config.ModeGRE}, MTU: 1476, PathMTU: 1400,
				Stats: status.Stats{
					RxPackets: 10, RxBytes: 1000, TxPackets: 20, TxBytes: 2000, RxDevice: 2,
					TxErrors: 9, TxDeadLoop: 1, TxTooBig: 3, TxNoRoute: 4,
					TxFragmented: 6, TxICMP: 3, TxMSSClamped: 5, Reflected: 7,
					Drops: map[string]uint64{"key-mismatch": 3, "gre-checksum": 1, "truncated": 0},
				},
				Keepalive: &status.Keepalive{State: "hold", Sent: 12, Received: 9, RejectedForged: 1, RejectedStale: 2,
					LastRTT: 1500 * time.Microsecond, LastReplyAge: 2 * time.Second},
			},
			{
				Config: config.Tunnel{Name: "tunl0", Mode: config.ModeIPIP}, MTU: 1480, PathMTU: 1480,
				Stats: status.Stats{RxPackets: 1, Drops: map[string]uint64{"key-mismatch": 0}},
			},
			{
				Config: config.Tunnel{Name: "mg0", Mode: config.ModeGRE}, MTU: 1472, PathMTU: 1472,
				Neighbours: []status.Peer{
					{LLAddr: netip.MustParseAddr("192.0.2.2"), PathMTU: 1472,
						Stats: status.PeerStats{RxPackets: 3, RxBytes: 300, RxErrors: 1, TxPackets: 4, TxBytes: 400}},
					{LLAddr: netip.MustParseAddr("192.0.2.3"), PathMTU: 1400, Learned: true,
						Stats: status.PeerStats{RxPackets: 5, TxPackets: 6}},
				},
			},
		},
		unmatched: status.Stats{Drops: map[string]uint64{"no-tunnel": 11, "truncated": 2}},
	}
}

func serve(t *testing.T, src Source) string {
	t.Helper()
	s, err := Listen("127.0.0.1:0", src, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return "http://" + s.Addr().String() + "/metrics"
}

// TestScrape serves a source's tunnels and reads the scrape back with the
// Prometheus text parser.
func TestScrape(t *testing.T) {
	src := testSource()
	url := serve(t, src)
	f, err := metricstest.Scrape(url)
	if err != nil {
		t.Fatal(err)
	}
	netb := []string{"tunnel", "netb", "mode", "gre"}
	l := func(more ...string) []string { return append(netb[:4:4], more...) }
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"gretun_tunnels", nil, 3},
		{"gretun_tunnel_rx_packets_total", l(), 10},
		{"gretun_tunnel_tx_packets_total", l(), 20},
		{"gretun_tunnel_rx_bytes_total", l(), 1000},
		{"gretun_tunnel_tx_bytes_total", l(), 2000},
		{"gretun_tunnel_rx_packets_total", []string{"tunnel", "tunl0", "mode", "ipip"}, 1},
		{"gretun_tunnel_drops_total", l("direction", "rx", "reason", "key-mismatch"), 3},
		{"gretun_tunnel_drops_total", l("direction", "rx", "reason", "gre-checksum"), 1},
		{"gretun_tunnel_drops_total", l("direction", "rx", "reason", "truncated"), 0},
		{"gretun_tunnel_drops_total", l("direction", "rx", "reason", "device"), 2},
		{"gretun_tunnel_drops_total", l("direction", "tx", "reason", "dead-loop"), 1},
		{"gretun_tunnel_drops_total", l("direction", "tx", "reason", "too-big"), 3},
		{"gretun_tunnel_drops_total", l("direction", "tx", "reason", "no-route"), 4},
		{"gretun_tunnel_drops_total", l("direction", "tx", "reason", "send-error"), 1},
		{"gretun_tunnel_tx_fragments_total", l(), 6},
		{"gretun_tunnel_icmp_errors_sent_total", l(), 3},
		{"gretun_tunnel_mss_clamped_total", l(), 5},
		{"gretun_tunnel_keepalives_reflected_total", l(), 7},
		{"gretun_tunnel_mtu_bytes", l(), 1476},
		{"gretun_tunnel_path_mtu_bytes", l(), 1400},
		{"gretun_tunnel_keepalive_up", l(), 0},
		{"gretun_tunnel_keepalive_state", l("state", "hold"), 1},
		{"gretun_tunnel_keepalive_state", l("state", "up"), 0},
		{"gretun_tunnel_keepalive_state", l("state", "down"), 0},
		{"gretun_tunnel_keepalive_rtt_seconds", l(), 0.0015},
		{"gretun_tunnel_keepalive_last_reply_age_seconds", l(), 2},
		{"gretun_tunnel_keepalives_sent_total", l(), 12},
		{"gretun_tunnel_keepalive_replies_total", l(), 9},
		{"gretun_tunnel_keepalive_replies_rejected_total", l("why", "forged"), 1},
		{"gretun_tunnel_keepalive_replies_rejected_total", l("why", "stale"), 2},
		{"gretun_neighbour_rx_packets_total", []string{"tunnel", "mg0", "neighbour", "192.0.2.2"}, 3},
		{"gretun_neighbour_rx_bytes_total", []string{"tunnel", "mg0", "neighbour", "192.0.2.2"}, 300},
		{"gretun_neighbour_rx_errors_total", []string{"tunnel", "mg0", "neighbour", "192.0.2.2"}, 1},
		{"gretun_neighbour_tx_packets_total", []string{"tunnel", "mg0", "neighbour", "192.0.2.2"}, 4},
		{"gretun_neighbour_tx_bytes_total", []string{"tunnel", "mg0", "neighbour", "192.0.2.2"}, 400},
		{"gretun_neighbour_path_mtu_bytes", []string{"tunnel", "mg0", "neighbour", "192.0.2.2"}, 1472},
		{"gretun_neighbour_rx_packets_total", []string{"tunnel", "mg0", "neighbour", "192.0.2.3"}, 5},
		{"gretun_neighbour_tx_packets_total", []string{"tunnel", "mg0", "neighbour", "192.0.2.3"}, 6},
		{"gretun_neighbour_path_mtu_bytes", []string{"tunnel", "mg0", "neighbour", "192.0.2.3"}, 1400},
		{"gretun_unmatched_drops_total", []string{"reason", "no-tunnel"}, 11},
		{"gretun_unmatched_drops_total", []string{"reason", "truncated"}, 2},
	} {
		got, ok := f.Value(c.name, c.labels...)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// No keepalive metrics for a tunnel without keepalives.
	if _, ok := f.Value("gretun_tunnel_keepalive_up", "tunnel", "tunl0"); ok {
		t.Error("tunl0 has no keepalives but a keepalive_up metric")
	}
	// The standard collectors.
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes", "process_open_fds", "go_build_info"} {
		if _, ok := f[name]; !ok {
			t.Errorf("no %s in the scrape", name)
		}
	}
}

// TestScrapeReadsNow: every scrape reads the source afresh.
func TestScrapeReadsNow(t *testing.T) {
	src := testSource()
	url := serve(t, src)
	src.mu.Lock()
	src.tunnels[0].Stats.RxPackets = 12345
	src.tunnels = src.tunnels[:1]
	src.mu.Unlock()
	f, err := metricstest.Scrape(url)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Value("gretun_tunnel_rx_packets_total", "tunnel", "netb"); got != 12345 {
		t.Errorf("rx packets after the counters moved = %v, want 12345", got)
	}
	if _, ok := f.Value("gretun_tunnel_rx_packets_total", "tunnel", "tunl0"); ok {
		t.Error("a deleted tunnel is still exported")
	}
}

// TestNeighbourSeries: a multipoint tunnel's neighbours have a series
// each, and only while they exist: a neighbour removed (deleted, or a
// learned one aged out) takes its series with it, so their number stays
// bounded by the neighbours the tunnel has.
func TestNeighbourSeries(t *testing.T) {
	src := testSource()
	url := serve(t, src)
	count := func() int {
		t.Helper()
		f, err := metricstest.Scrape(url)
		if err != nil {
			t.Fatal(err)
		}
		return len(f["gretun_neighbour_tx_packets_total"].GetMetric())
	}
	if n := count(); n != 2 {
		t.Fatalf("%d neighbour series, want 2", n)
	}
	src.mu.Lock()
	src.tunnels[2].Neighbours = src.tunnels[2].Neighbours[:1]
	src.mu.Unlock()
	f, err := metricstest.Scrape(url)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Value("gretun_neighbour_tx_packets_total", "neighbour", "192.0.2.3"); ok {
		t.Error("a removed neighbour is still exported")
	}
	if v, ok := f.Value("gretun_neighbour_tx_packets_total", "neighbour", "192.0.2.2"); !ok || v != 4 {
		t.Errorf("the remaining neighbour: %v (found %v), want 4", v, ok)
	}
	src.mu.Lock()
	src.tunnels = src.tunnels[:2]
	src.mu.Unlock()
	if n := count(); n != 0 {
		t.Errorf("%d neighbour series after the tunnel went, want 0", n)
	}
}

// TestLint checks the names, types and help against the Prometheus
// naming conventions (promlint).
func TestLint(t *testing.T) {
	problems, err := testutil.CollectAndLint(NewCollector(testSource()))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestListenErrors: a malformed address and one in use are one-line
// errors naming the address.
func TestListenErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, c := range []struct{ addr, want string }{
		{"9469", "want HOST:PORT"},
		{"127.0.0.1:notaport", "127.0.0.1:notaport"},
		{"256.1.1.1:9469", "256.1.1.1:9469"},
		{busy.Addr().String(), "address already in use"},
	} {
		s, err := Listen(c.addr, testSource(), nil)
		if err == nil {
			s.Close()
			t.Errorf("Listen(%q) succeeded", c.addr)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Listen(%q) = %q, want one line naming %q", c.addr, err, c.want)
		}
	}
}
