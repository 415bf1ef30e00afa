//go:build !linux

package rawsock

type connSys struct{ offloadErr error }

func (s *connSys) open(proto int) error { return ErrNotImplemented }

func (s *connSys) readBatch(c *Conn, bufs [][]byte, sizes []int) (int, error) {
	return 0, ErrNotImplemented
}

func (s *connSys) writeBatch(pkts [][]byte, ifindex int, mark uint32) (int, error) {
	return 0, ErrNotImplemented
}

func (s *connSys) close() error { return ErrNotImplemented }

func (s *connSys) completeChecksum(pkt []byte) bool { return false }
