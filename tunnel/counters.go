package tunnel

import (
	"sync/atomic"

	"github.com/gretun/gretun/decap"
)

// Stats is a snapshot of one tunnel's counters, named like `ip -s tunnel
// show` where the kernel has the same counter.
type Stats struct {
	RxPackets    uint64 `json:"rx_packets"`
	RxBytes      uint64 `json:"rx_bytes"`
	RxErrors     uint64 `json:"rx_errors"`      // every receive drop
	RxCsumErrors uint64 `json:"rx_csum_errors"` // bad or missing GRE checksum
	RxOutOfSeq   uint64 `json:"rx_out_of_seq"`  // missing, old or duplicate sequence number
	RxDevice     uint64 `json:"rx_device_errors"`
	// RxKeepaliveUnsolicited counts keepalive replies on a tunnel without keepalives.
	RxKeepaliveUnsolicited uint64 `json:"rx_keepalive_unsolicited"`

	TxPackets     uint64 `json:"tx_packets"`
	TxBytes       uint64 `json:"tx_bytes"`
	TxErrors      uint64 `json:"tx_errors"` // every send drop
	TxDeadLoop    uint64 `json:"tx_dead_loop"`
	TxNoRoute     uint64 `json:"tx_no_route"`
	TxNoBufs      uint64 `json:"tx_no_bufs"`
	TxTooBig      uint64 `json:"tx_too_big"`      // dropped for size, ICMP sent where allowed
	TxFragmented  uint64 `json:"tx_fragmented"`   // fragments sent: outer ones, or inner ones each in a whole outer packet (pmtudisc)
	TxBadInner    uint64 `json:"tx_bad_inner"`    // not IP, or IPv6 on an IPIP tunnel
	TxICMP        uint64 `json:"tx_icmp"`         // ICMP errors returned to inner senders
	TxICMPLimited uint64 `json:"tx_icmp_limited"` // ICMP errors suppressed by the rate limit
	TxMSSClamped  uint64 `json:"tx_mss_clamped"`
	// TxPacketSocket counts outer packets sent on the AF_PACKET socket of
	// `underlay packet` (the rest went through the raw socket).
	TxPacketSocket uint64 `json:"tx_packet_socket"`

	Reflected uint64 `json:"reflected"` // other routers' keepalives returned through the underlay

	// Drops counts every receive drop by its reason name; every reason is
	// present, zero or not, so scripts can rely on the keys.
	Drops map[string]uint64 `json:"drops,omitempty"`
}

type counter int

const (
	rxPackets counter = iota
	rxBytes
	rxErrors
	rxCsumErrors
	rxOutOfSeq
	rxDevice
	rxKeepaliveUnsolicited
	txPackets
	txBytes
	txErrors
	txDeadLoop
	txNoRoute
	txNoBufs
	txTooBig
	txFragmented
	txBadInner
	txICMP
	txICMPLimited
	txMSSClamped
	txPacketSocket
	numCounters
)

// counters are updated by the data-path goroutines with atomic adds, once a
// batch, and read at any time by Snapshot.
type counters struct {
	c     [numCounters]atomic.Uint64
	drops [decap.NumReasons]atomic.Uint64
}

func (c *counters) add(which counter, n uint64) {
	if n != 0 {
		c.c[which].Add(n)
	}
}

// drop counts a receive drop under its reason and the summary counters.
func (c *counters) drop(r decap.Reason) {
	c.drops[r].Add(1)
	c.c[rxErrors].Add(1)
	switch {
	case r.IsChecksumError():
		c.c[rxCsumErrors].Add(1)
	case r.IsSequenceError():
		c.c[rxOutOfSeq].Add(1)
	}
}

func (c *counters) snapshot() Stats {
	g := func(x counter) uint64 { return c.c[x].Load() }
	s := Stats{
		RxPackets: g(rxPackets), RxBytes: g(rxBytes), RxErrors: g(rxErrors),
		RxCsumErrors: g(rxCsumErrors), RxOutOfSeq: g(rxOutOfSeq), RxDevice: g(rxDevice),
		RxKeepaliveUnsolicited: g(rxKeepaliveUnsolicited),
		TxPackets:              g(txPackets), TxBytes: g(txBytes), TxErrors: g(txErrors),
		TxDeadLoop: g(txDeadLoop), TxNoRoute: g(txNoRoute), TxNoBufs: g(txNoBufs),
		TxTooBig: g(txTooBig), TxFragmented: g(txFragmented), TxBadInner: g(txBadInner),
		TxICMP: g(txICMP), TxICMPLimited: g(txICMPLimited), TxMSSClamped: g(txMSSClamped),
		TxPacketSocket: g(txPacketSocket),
		Drops:          map[string]uint64{},
	}
	for r := decap.OK + 1; int(r) < decap.NumReasons; r++ {
		s.Drops[r.String()] = c.drops[r].Load()
	}
	return s
}
