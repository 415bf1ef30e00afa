//go:build !linux

package rawsock

type conn6Sys struct{ offloadErr error }

func (s *conn6Sys) open(proto int) error { return ErrNotImplemented }

func (s *conn6Sys) readBatch(c *Conn6, bufs [][]byte, sizes []int) (int, error) {
	return 0, ErrNotImplemented
}

func (s *conn6Sys) writeBatch(pkts [][]byte, ifindex int, mark uint32) (int, error) {
	return 0, ErrNotImplemented
}

func (s *conn6Sys) close() error { return ErrNotImplemented }

func (s *conn6Sys) completeChecksum(pkt []byte) bool { return false }
