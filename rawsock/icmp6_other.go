//go:build !linux

package rawsock

type icmp6Sys struct{}

func (s *icmp6Sys) open() error { return ErrNotImplemented }

func (s *icmp6Sys) readTooBig(buf []byte) (TooBig, error) { return TooBig{}, ErrNotImplemented }

func (s *icmp6Sys) close() error { return ErrNotImplemented }
