// Package metrics serves gretun's counters in the Prometheus text format
// (`gretun daemon -metrics ADDR`, /metrics). Its Collector reads, at scrape
// time, the same snapshot `gretun -s -j tunnel show` prints (package
// status), so the data path pays nothing for it and every kind of tunnel
// the engine shows is exported without code of its own here.
package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gretun/gretun/status"
)

// Source is what the collector reads: the engine.
type Source interface {
	// Show returns every tunnel's status when name is "".
	Show(name string) ([]status.Tunnel, error)
	// Unmatched returns the drops of packets no tunnel claims.
	Unmatched() status.Stats
}

var tunnelLabels = []string{"tunnel", "mode"}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("gretun_"+name, help, append(tunnelLabels[:len(tunnelLabels):len(tunnelLabels)], labels...), nil)
}

var (
	rxPackets = desc("tunnel_rx_packets_total", "Inner packets received from the underlay and written to the device.")
	txPackets = desc("tunnel_tx_packets_total", "Inner packets read from the device and sent on the underlay.")
	rxBytes   = desc("tunnel_rx_bytes_total", "Bytes of inner packets written to the device.")
	txBytes   = desc("tunnel_tx_bytes_total", "Bytes of inner packets sent on the underlay.")
	drops     = desc("tunnel_drops_total", "Packets dropped, by direction (rx from the underlay, tx from the device) and reason.", "direction", "reason")
	fragments = desc("tunnel_tx_fragments_total", "Fragments sent: outer ones, or inner ones each in a whole outer packet.")
	icmp      = desc("tunnel_icmp_errors_sent_total", "ICMP errors returned to inner senders for packets too big for the path.")
	clamped   = desc("tunnel_mss_clamped_total", "TCP SYNs whose MSS was clamped, both directions.")
	reflected = desc("tunnel_keepalives_reflected_total", "Other routers' keepalive probes returned through the underlay.")
	mtu       = desc("tunnel_mtu_bytes", "The device MTU.")
	pathMTU   = desc("tunnel_path_mtu_bytes", "The largest inner packet sent without fragmenting (lowered by ICMP from the underlay for a while).")
	kaUp      = desc("tunnel_keepalive_up", "1 while keepalives hold the line protocol up, 0 while down or in hold (tunnels with keepalives only).")
	kaState   = desc("tunnel_keepalive_state", "The keepalive state: 1 for the current one of up, hold and down.", "state")
	kaRTT     = desc("tunnel_keepalive_rtt_seconds", "Round trip of the last accepted keepalive reply.")
	kaAge     = desc("tunnel_keepalive_last_reply_age_seconds", "Time since the last accepted keepalive reply (absent before the first).")
	kaSent    = desc("tunnel_keepalives_sent_total", "Keepalives sent.")
	kaRecv    = desc("tunnel_keepalive_replies_total", "Keepalive replies accepted.")
	kaRej     = desc("tunnel_keepalive_replies_rejected_total", "Keepalive replies rejected, by why: forged (bad MAC, malformed) or stale (old, replayed).", "why")
	tunnels   = prometheus.NewDesc("gretun_tunnels", "Tunnels running.", nil, nil)
	unmatched = prometheus.NewDesc("gretun_unmatched_drops_total", "Received packets that belong to no tunnel (or have no sound outer header), by reason.", []string{"reason"}, nil)
)

// A multipoint tunnel's neighbours, labelled by tunnel and underlay
// address: one series each while the neighbour exists, so their number is
// bounded by the neighbours configured and the learn limit.
var neighbourLabels = []string{"tunnel", "neighbour"}

func neighbourDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("gretun_neighbour_"+name, help, neighbourLabels, nil)
}

var (
	nbRxPackets = neighbourDesc("rx_packets_total", "Inner packets received from the neighbour and written to the device.")
	nbRxBytes   = neighbourDesc("rx_bytes_total", "Bytes of inner packets received from the neighbour.")
	nbRxErrors  = neighbourDesc("rx_errors_total", "Packets from the neighbour refused by the receive policy (key, checksum, sequence).")
	nbTxPackets = neighbourDesc("tx_packets_total", "Inner packets sent to the neighbour.")
	nbTxBytes   = neighbourDesc("tx_bytes_total", "Bytes of inner packets sent to the neighbour.")
	nbPathMTU   = neighbourDesc("path_mtu_bytes", "The largest inner packet sent to the neighbour without fragmenting.")
)

var keepaliveStates = []string{"up", "hold", "down"}

// Collector exports a Source's tunnels. It holds no state: each scrape
// reads the counters afresh, so they survive `tunnel change` and reloads
// exactly as `tunnel show`'s do.
type Collector struct{ src Source }

// NewCollector returns a collector of src's tunnels.
func NewCollector(src Source) *Collector { return &Collector{src: src} }

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{rxPackets, txPackets, rxBytes, txBytes, drops, fragments, icmp, clamped,
		reflected, mtu, pathMTU, kaUp, kaState, kaRTT, kaAge, kaSent, kaRecv, kaRej, tunnels, unmatched,
		nbRxPackets, nbRxBytes, nbRxErrors, nbTxPackets, nbTxBytes, nbPathMTU} {
		ch <- d
	}
}

// Collect reads the tunnels' status and sends their metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	all, err := c.src.Show("")
	if err != nil {
		ch <- prometheus.NewInvalidMetric(tunnels, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(tunnels, prometheus.GaugeValue, float64(len(all)))
	for i := range all {
		collectTunnel(ch, &all[i])
	}
	for reason, n := range c.src.Unmatched().Drops {
		ch <- prometheus.MustNewConstMetric(unmatched, prometheus.CounterValue, float64(n), reason)
	}
}

func collectTunnel(ch chan<- prometheus.Metric, t *status.Tunnel) {
	labels := []string{t.Config.Name, string(t.Config.Mode)}
	s := &t.Stats
	send := func(d *prometheus.Desc, vt prometheus.ValueType, v float64, more ...string) {
		ch <- prometheus.MustNewConstMetric(d, vt, v, append(labels[:2:2], more...)...)
	}
	counter := func(d *prometheus.Desc, v uint64, more ...string) {
		send(d, prometheus.CounterValue, float64(v), more...)
	}
	counter(rxPackets, s.RxPackets)
	counter(txPackets, s.TxPackets)
	counter(rxBytes, s.RxBytes)
	counter(txBytes, s.TxBytes)
	for reason, n := range s.Drops {
		counter(drops, n, status.DirectionRx, reason)
	}
	counter(drops, s.RxDevice, status.DirectionRx, status.DropDevice)
	for reason, n := range s.TxDrops() {
		counter(drops, n, status.DirectionTx, reason)
	}
	counter(fragments, s.TxFragmented)
	counter(icmp, s.TxICMP)
	counter(clamped, s.TxMSSClamped)
	counter(reflected, s.Reflected)
	send(mtu, prometheus.GaugeValue, float64(t.MTU))
	send(pathMTU, prometheus.GaugeValue, float64(t.PathMTU))
	for i := range t.Neighbours {
		collectNeighbour(ch, t.Config.Name, &t.Neighbours[i])
	}
	ka := t.Keepalive
	if ka == nil {
		return
	}
	up := 0.0
	if ka.State == "up" {
		up = 1
	}
	send(kaUp, prometheus.GaugeValue, up)
	for _, st := range keepaliveStates {
		v := 0.0
		if ka.State == st {
			v = 1
		}
		send(kaState, prometheus.GaugeValue, v, st)
	}
	if ka.Received > 0 {
		send(kaRTT, prometheus.GaugeValue, ka.LastRTT.Seconds())
		send(kaAge, prometheus.GaugeValue, ka.LastReplyAge.Seconds())
	}
	counter(kaSent, ka.Sent)
	counter(kaRecv, ka.Received)
	counter(kaRej, ka.RejectedForged, "forged")
	counter(kaRej, ka.RejectedStale, "stale")
}

// collectNeighbour sends one neighbour's series of multipoint tunnel name.
func collectNeighbour(ch chan<- prometheus.Metric, name string, p *status.Peer) {
	labels := []string{name, p.LLAddr.String()}
	s := &p.Stats
	for _, m := range []struct {
		d *prometheus.Desc
		v uint64
	}{{nbRxPackets, s.RxPackets}, {nbRxBytes, s.RxBytes}, {nbRxErrors, s.RxErrors}, {nbTxPackets, s.TxPackets}, {nbTxBytes, s.TxBytes}} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v), labels...)
	}
	ch <- prometheus.MustNewConstMetric(nbPathMTU, prometheus.GaugeValue, float64(p.PathMTU), labels...)
}

// Registry returns a registry with src's collector, the Go runtime's and
// the process's (CPU, memory, file descriptors) collectors and the build
// information (gretun's module version, the Go version).
func Registry(src Source) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(NewCollector(src), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewBuildInfoCollector())
	return r
}

// Server serves /metrics.
type Server struct {
	l   net.Listener
	srv *http.Server
}

// Listen opens addr (host:port, as net.Listen takes it; ":9469" for every
// address) and serves src's metrics on /metrics until Close. Errors (a bad
// or busy address) come back at once, before anything is served.
func Listen(addr string, src Source, log *slog.Logger) (*Server, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("metrics address %q: want HOST:PORT (e.g. 127.0.0.1:9469 or :9469)", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics address %s: %v", addr, unwrapOp(err))
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(Registry(src), promhttp.HandlerOpts{
		ErrorLog:            slogAdapter{log},
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "gretun: metrics at /metrics")
	})
	s := &Server{l: l, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}}
	go func() {
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && log != nil {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return s, nil
}

// Addr is where the server listens (the port chosen, for ":0").
func (s *Server) Addr() net.Addr { return s.l.Addr() }

// Close stops serving.
func (s *Server) Close() error { return s.srv.Close() }

// unwrapOp shortens "listen tcp 1.2.3.4:5: bind: address already in use"
// to its cause.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// slogAdapter logs promhttp's errors (a failed scrape) through slog.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Println(v ...any) {
	if a.log != nil {
		a.log.Warn("metrics: " + fmt.Sprint(v...))
	}
}
