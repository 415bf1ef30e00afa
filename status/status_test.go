package status

import "testing"

// TestTxDropsNoNeighbour: a multipoint tunnel's packets to no neighbour are
// a send drop reason of their own, not part of send-error.
func TestTxDropsNoNeighbour(t *testing.T) {
	d := (&Stats{TxErrors: 5, TxNoNeighbour: 3, TxNoRoute: 1}).TxDrops()
	if d[DropNoNeighbour] != 3 || d[DropTxOther] != 1 || d[DropNoRoute] != 1 {
		t.Errorf("TxDrops() = %v, want no-neighbour 3, no-route 1, send-error 1", d)
	}
}
