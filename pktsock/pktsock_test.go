package pktsock

import (
	"errors"
	"net"
	"os"
	"runtime"
	"testing"
)

func TestOpenRejectsBadIfindex(t *testing.T) {
	for _, ifindex := range []int{0, -1} {
		if c, err := Open(ifindex); err == nil {
			c.Close()
			t.Errorf("Open(%d) succeeded", ifindex)
		}
	}
}

// TestClosed checks that a closed Conn refuses to send instead of writing
// to a recycled descriptor.
func TestClosed(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("needs Linux and root (CAP_NET_RAW) for an AF_PACKET socket")
	}
	c, err := Open(1) // loopback; nothing is sent
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteBatch([][]byte{make([]byte, 60)}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteBatch after Close: %v, want net.ErrClosed", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
}
