//go:build !linux

package pktsock

import "errors"

var errUnsupported = errors.New("pktsock: AF_PACKET sockets need Linux")

// Conn is an AF_PACKET socket; it exists only on Linux.
type Conn struct{}

// Open fails: AF_PACKET sockets need Linux.
func Open(ifindex int) (*Conn, error) { return nil, errUnsupported }

// Ifindex is the device the socket sends on.
func (c *Conn) Ifindex() int { return 0 }

// WriteBatch fails: AF_PACKET sockets need Linux.
func (c *Conn) WriteBatch(frames [][]byte) (int, error) { return 0, errUnsupported }

// Close does nothing.
func (c *Conn) Close() error { return nil }
