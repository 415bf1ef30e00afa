package tunnel

import (
	"sync/atomic"

	"github.com/gretun/gretun/decap"
	"github.com/gretun/gretun/status"
)

// Stats is a snapshot of one tunnel's counters (package status says why
// it lives there).
type Stats = status.Stats

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
	txUnreachable
	txEncapLimit
	txNoNeighbour
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
		TxPacketSocket: g(txPacketSocket), TxUnreachable: g(txUnreachable), TxEncapLimit: g(txEncapLimit),
		TxNoNeighbour: g(txNoNeighbour),
		Drops:         map[string]uint64{},
	}
	for r := decap.OK + 1; int(r) < decap.NumReasons; r++ {
		s.Drops[r.String()] = c.drops[r].Load()
	}
	return s
}
