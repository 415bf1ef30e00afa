//go:build !linux

package udpsock

import (
	"net/netip"
	"sync/atomic"
)

type connSys struct {
	gso     atomic.Bool
	gro     bool
	onError func(Error)
}

func (s *connSys) serveErrors() error { return ErrNotImplemented }

func (s *connSys) open(netip.AddrPort, Options) error { return ErrNotImplemented }
func (s *connSys) localAddr() netip.AddrPort          { return netip.AddrPort{} }
func (s *connSys) readBatch(*Conn, [][]byte, []int, []int, func([]byte, int) bool) (int, error) {
	return 0, ErrNotImplemented
}
func (s *connSys) writeBatch([][]byte, int, uint32) (int, error) { return 0, ErrNotImplemented }
func (s *connSys) close() error                                  { return ErrNotImplemented }
