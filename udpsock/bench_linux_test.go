package udpsock

import (
	"net/netip"
	"testing"
)

// BenchmarkBatch sends batches of 44 datagrams of 1400 bytes (a TSO
// super-packet's segments inside GRE-in-UDP) over loopback and reads them
// back, with UDP_SEGMENT and UDP_GRO, and with one datagram per message
// each way: what the offloads buy a tunnel, as bytes per second.
func BenchmarkBatch(b *testing.B) {
	for _, c := range []struct {
		name string
		o    Options
	}{{"gso-gro", Options{}}, {"no-offload", Options{NoGSO: true, NoGRO: true}}} {
		b.Run(c.name, func(b *testing.B) {
			rx, err := Open(netip.MustParseAddrPort("127.0.0.1:0"), c.o)
			if err != nil {
				b.Fatal(err)
			}
			defer rx.Close()
			tx, err := Open(netip.MustParseAddrPort("127.0.0.1:0"), c.o)
			if err != nil {
				b.Fatal(err)
			}
			defer tx.Close()
			pkts := make([][]byte, 44)
			for i := range pkts {
				pkts[i] = outer(rx.LocalAddr(), 64, 0, true, 1, make([]byte, 1400))
			}
			bufs := make([][]byte, BatchSize)
			for i := range bufs {
				bufs[i] = make([]byte, 65600)
			}
			sizes := make([]int, BatchSize)
			b.SetBytes(int64(len(pkts) * 1400))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tx.WriteBatch(pkts); err != nil {
					b.Fatal(err)
				}
				for got := 0; got < len(pkts); {
					n, err := rx.ReadBatch(bufs, sizes)
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
			}
		})
	}
}
