package tunnel

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
)

// TestCountSendError: the send errors of rawsock and pktsock come wrapped
// (a *net.OpError around an *os.SyscallError); the counters still sort
// them by errno.
func TestCountSendError(t *testing.T) {
	wrap := func(errno syscall.Errno) error {
		return &net.OpError{Op: "write", Net: "ip4", Addr: &net.IPAddr{IP: netip.MustParseAddr("192.0.2.1").AsSlice()},
			Err: os.NewSyscallError("sendmmsg", errno)}
	}
	for _, tc := range []struct {
		err  error
		want counter // besides txErrors; numCounters for none
	}{
		{wrap(syscall.ENOBUFS), txNoBufs},
		{wrap(syscall.ENOMEM), txNoBufs},
		{wrap(syscall.EHOSTUNREACH), txNoRoute},
		{wrap(syscall.ENETUNREACH), txNoRoute},
		{wrap(syscall.ENETDOWN), txNoRoute},
		{wrap(syscall.EMSGSIZE), txTooBig},
		{wrap(syscall.EPERM), numCounters},
		{&net.OpError{Op: "write", Net: "ip4", Err: errors.New("not IPv4")}, numCounters},
	} {
		var c counters
		countSendError(tc.err, &c)
		for i := range numCounters {
			want := uint64(0)
			if i == txErrors || i == tc.want {
				want = 1
			}
			if got := c.c[i].Load(); got != want {
				t.Errorf("%v: counter %d = %d, want %d", tc.err, i, got, want)
			}
		}
	}
}
