package tunnel_test

import (
	"testing"
	"time"

	"github.com/gretun/gretun/tunnel"
	"github.com/gretun/gretun/tunnel/tunneltest"
)

// waitStats polls a tunnel's counters until ok accepts them (counters are
// added once a batch is done) or five seconds pass.
func waitStats(t *testing.T, s *side, name string, ok func(tunnel.Stats) bool) tunnel.Stats {
	t.Helper()
	var st tunnel.Stats
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		all, err := s.e.Show(name)
		if err != nil {
			t.Fatal(err)
		}
		if st = all[0].Stats; ok(st) {
			break
		}
	}
	return st
}

// TestEngineTinyUnderlayMTU: a route toward the remote with `mtu lock 28`
// (or anything below IPv4's 68) made the fragmenter divide by zero and the
// daemon die with every tunnel. Such an MTU is unusable: packets that do
// not fit it are dropped and counted, and the engine lives on.
func TestEngineTinyUnderlayMTU(t *testing.T) {
	for _, mtu := range []int{1, 20, 27, 28, 29, 35, 36, 67} {
		w := tunneltest.NewWire()
		a, b := newSide(t, w, addrA, 8), newSide(t, w, addrB, 8)
		a.host.Underlay = mtu
		mustAdd(t, a, "t0", "mode gre remote 192.0.2.2 local 192.0.2.1 nopmtudisc mtu 1400")
		mustAdd(t, b, "t0", "mode gre remote 192.0.2.1 local 192.0.2.2")
		a.dev("t0").Inject(udp4("198.51.100.1", "203.0.113.1", 100))
		st := waitStats(t, a, "t0", func(s tunnel.Stats) bool { return s.TxErrors > 0 })
		if st.TxErrors != 1 || st.TxTooBig != 1 || st.TxPackets != 0 {
			t.Errorf("underlay MTU %d: tx_errors %d, tx_too_big %d, tx_packets %d; want the packet dropped as too big",
				mtu, st.TxErrors, st.TxTooBig, st.TxPackets)
		}
		select {
		case p := <-b.dev("t0").Written:
			t.Errorf("underlay MTU %d: a packet arrived: %x", mtu, p)
		default:
		}
	}
}
