package pktsock

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/gretun/gretun/internal/testnet"
)

// TestWriteErrorShape: a refused frame comes back as rawsock's errors do, a
// *net.OpError around the sendmmsg *os.SyscallError, and errors.Is still
// finds the errno the engine counts by (EMSGSIZE here: a frame larger than
// the device's MTU is refused before it is sent).
func TestWriteErrorShape(t *testing.T) {
	n := testnet.ForTest(t)
	ns, err := n.NS("p")
	if err != nil {
		t.Fatal(err)
	}
	var c *Conn
	if err := testnet.InNS(ns, func() (err error) { c, err = Open(1); return err }); err != nil {
		t.Fatal(err) // ifindex 1 is the namespace's loopback
	}
	defer c.Close()
	sent, err := c.WriteBatch([][]byte{make([]byte, 70000)})
	if sent != 0 || !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("WriteBatch of a 70000-byte frame = %d, %v; want 0, EMSGSIZE", sent, err)
	}
	var oe *net.OpError
	var se *os.SyscallError
	if !errors.As(err, &oe) || oe.Op != "write" || !errors.As(err, &se) || se.Syscall != "sendmmsg" {
		t.Errorf("WriteBatch error %#v: want a *net.OpError (write) around an *os.SyscallError (sendmmsg)", err)
	}
	c.Close()
	if _, err := c.WriteBatch([][]byte{make([]byte, 60)}); !errors.As(err, &oe) || !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteBatch after Close: %#v, want a *net.OpError around net.ErrClosed", err)
	}
}
