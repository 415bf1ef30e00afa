//go:build !linux

package rawsock

type icmpSys struct{}

func (s *icmpSys) open() error { return ErrNotImplemented }

func (s *icmpSys) readTooBig(buf []byte) (TooBig, error) { return TooBig{}, ErrNotImplemented }

func (s *icmpSys) close() error { return ErrNotImplemented }
