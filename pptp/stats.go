package pptp

import (
	"encoding/json"
	"sync/atomic"
)

// dropReasons are every reason a packet or message is dropped; each has
// its counter from the start, so counting never allocates.
var dropReasons = []string{
	"ip-malformed", "ip-fragment",
	ErrGREShort.Error(), ErrGREProto.Error(), ErrGREFlags.Error(),
	"gre1-call-id", "gre1-no-seq", "gre1-seq-old",
	"ppp-short", "ppp-length", "ppp-options",
	"rx-not-open", "rx-not-ipv4", "tun-write", "tun-read",
	"tx-not-ipv4", "tx-too-big", "tx-error",
	"ctrl-malformed", "ctrl-call-id", "ctrl-unexpected",
	"other",
}

// Stats are a call's counters.
type Stats struct {
	rxPackets, rxBytes, txPackets, txBytes atomic.Uint64
	greRx, ctrlRx                          atomic.Uint64
	drops                                  map[string]*atomic.Uint64
}

func newStats() *Stats {
	s := &Stats{drops: map[string]*atomic.Uint64{}}
	for _, r := range dropReasons {
		s.drops[r] = new(atomic.Uint64)
	}
	return s
}

func (s *Stats) drop(reason string) {
	d, ok := s.drops[reason]
	if !ok {
		d = s.drops["other"]
	}
	d.Add(1)
}

// Drop returns the count of drops for reason.
func (s *Stats) Drop(reason string) uint64 {
	if d, ok := s.drops[reason]; ok {
		return d.Load()
	}
	return 0
}

// MarshalJSON writes the counters as `gretun -s -j` does for tunnels:
// rx/tx packets and bytes of IP, and the nonzero drops by reason.
func (s *Stats) MarshalJSON() ([]byte, error) {
	drops := map[string]uint64{}
	for r, d := range s.drops {
		if v := d.Load(); v > 0 {
			drops[r] = v
		}
	}
	return json.Marshal(struct {
		RxPackets uint64            `json:"rx_packets"`
		RxBytes   uint64            `json:"rx_bytes"`
		TxPackets uint64            `json:"tx_packets"`
		TxBytes   uint64            `json:"tx_bytes"`
		GRERx     uint64            `json:"gre_rx"`
		CtrlRx    uint64            `json:"control_rx"`
		Drops     map[string]uint64 `json:"drops"`
	}{s.rxPackets.Load(), s.rxBytes.Load(), s.txPackets.Load(), s.txBytes.Load(), s.greRx.Load(), s.ctrlRx.Load(), drops})
}
