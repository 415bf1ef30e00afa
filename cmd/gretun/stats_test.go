package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gretun/gretun/tunnel"
)

// TestPrintStatsRareLines: the counters `-s tunnel show` prints only when
// they are not 0 each have their line, with their value, and none appears
// at 0.
func TestPrintStatsRareLines(t *testing.T) {
	lines := []string{
		"Keepalives reflected: 3",
		"TX on AF_PACKET: 4",
		"TX port unreachable: 5",
		"TX encapsulation limit 0: 6",
		"TX to no neighbour: 7",
		"RX drops: gre-checksum 8",
	}
	var w bytes.Buffer
	printStats(&w, tunnel.Stats{Reflected: 3, TxPacketSocket: 4, TxUnreachable: 5, TxEncapLimit: 6, TxNoNeighbour: 7,
		Drops: map[string]uint64{"gre-checksum": 8, "no-tunnel": 0}})
	for _, l := range lines {
		if !strings.Contains(w.String(), l+"\n") {
			t.Errorf("no line %q in:\n%s", l, w.String())
		}
	}
	w.Reset()
	printStats(&w, tunnel.Stats{Drops: map[string]uint64{"gre-checksum": 0}})
	for _, l := range lines {
		if prefix := l[:strings.LastIndex(l, " ")]; strings.Contains(w.String(), prefix) {
			t.Errorf("line %q printed at 0:\n%s", prefix, w.String())
		}
	}
}
