package tunnel_test

import (
	"testing"
	"time"

	"github.com/gretun/gretun/tunnel/tunneltest"
)

// BenchmarkPipeline measures the whole in-process data path — TUN read,
// encap, underlay write, underlay read, decap, demux, TUN write — between
// two engines over fake devices, for 1400-byte inner packets.
func BenchmarkPipeline(b *testing.B) {
	for _, c := range []struct {
		name, opts string
		multipoint bool // both ends without remote, each the other's neighbour
	}{
		{"gre", "mode gre", false},
		{"gre-key-csum-seq", "mode gre key 42 csum seq", false},
		{"ipip", "mode ipip", false},
		{"gre-fou", "mode gre encap fou", false},
		{"ipip-fou", "mode ipip encap fou encap-dport 5555", false},
		{"gre-multipoint", "mode gre", true},
	} {
		b.Run(c.name, func(b *testing.B) {
			w := tunneltest.NewWire()
			tx, rx := newSide(b, w, addrA, 64), newSide(b, w, addrB, 64)
			remoteA, remoteB := " remote 192.0.2.1", " remote 192.0.2.2"
			if c.multipoint {
				remoteA, remoteB = "", ""
			}
			mustAdd(b, rx, "t0", c.opts+remoteA+" local 192.0.2.2")
			sink := rx.dev("t0")
			sink.Discard = true
			b.ReportAllocs()
			b.SetBytes(1400)
			mustAdd(b, tx, "t0", c.opts+remoteB+" local 192.0.2.1")
			if c.multipoint {
				mustNeigh(b, tx, "203.0.113.0/24 lladdr 192.0.2.2 dev t0")
				mustNeigh(b, rx, "198.51.100.0/24 lladdr 192.0.2.1 dev t0")
			}
			src := tx.dev("t0")
			start := time.Now()
			base := sink.WrittenPackets.Load()
			b.ResetTimer()
			pkt := udp4("198.51.100.1", "203.0.113.1", 1372)
			for sink.WrittenPackets.Load()-base < uint64(b.N) {
				src.Inject(pkt) // the device copies it on read
			}
			b.StopTimer()
			b.ReportMetric(float64(sink.WrittenPackets.Load()-base)/time.Since(start).Seconds(), "pkts/s")
		})
	}
}
