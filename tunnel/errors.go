package tunnel

import (
	"errors"
	"syscall"
)

// countSendError counts a packet the kernel refused to send.
func countSendError(err error, c *counters) {
	c.add(txErrors, 1)
	switch {
	case errors.Is(err, syscall.ENOBUFS), errors.Is(err, syscall.ENOMEM), errors.Is(err, syscall.EAGAIN):
		c.add(txNoBufs, 1)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ENETDOWN):
		c.add(txNoRoute, 1)
	case errors.Is(err, syscall.EMSGSIZE):
		c.add(txTooBig, 1)
	}
}
