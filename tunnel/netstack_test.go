package tunnel_test

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/internal/testnet"
	"github.com/gretun/gretun/tunnel"
	"github.com/gretun/gretun/tunnel/tunneltest"
)

// withStacks gives a side real userspace stacks for its netstack
// tunnels (no privilege needed), recording them, and counts the TUN
// devices it is asked for.
func withStacks(stacks *sync.Map, tuns *int) func(*tunnel.Env) {
	return func(env *tunnel.Env) {
		create := env.CreateDevice
		env.CreateDevice = func(name string, mtu int) (tunnel.Device, error) {
			*tuns++
			return create(name, mtu)
		}
		env.CreateStack = func(c *config.Tunnel, mtu int, log *slog.Logger) (tunnel.Device, error) {
			d, err := tunnel.CreateStack(c, mtu, log)
			if err == nil {
				stacks.Store(c.Name, d)
			}
			return d, err
		}
	}
}

// TestEngineNetstack: two netstack tunnels, one each side of a GRE
// tunnel, carry a TCP connection from a port forwarded on one host to a
// reverse port in the other stack, without a TUN device; counters count
// it, and the stack's MTU is the tunnel's.
func TestEngineNetstack(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go testnet.EchoTCP(echo)
	fwd, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fwdAddr := fwd.Addr().String()
	fwd.Close()

	var stacks sync.Map
	var tuns int
	w := tunneltest.NewWire()
	a := newSide(t, w, addrA, 8, withStacks(&stacks, &tuns))
	b := newSide(t, w, addrB, 8, withStacks(&stacks, &tuns))
	mustAdd(t, a, "na", "mode gre remote 192.0.2.2 local 192.0.2.1 key 7 netstack 198.51.100.1/24 forward tcp "+fwdAddr+" 198.51.100.2:2222")
	mustAdd(t, b, "nb", "mode gre remote 192.0.2.1 local 192.0.2.2 key 7 netstack 198.51.100.2/24 reverse tcp 2222 "+echo.Addr().String())
	if tuns != 0 {
		t.Errorf("%d TUN devices created for netstack tunnels", tuns)
	}
	c, err := net.Dial("tcp", fwdAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := strings.Repeat("through two stacks and a tunnel ", 1000)
	go c.Write([]byte(msg))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo: %v", err)
	}
	st := waitStats(t, a, "na", func(s tunnel.Stats) bool { return s.TxPackets > 0 && s.RxPackets > 0 })
	if st.TxBytes < uint64(len(msg)) {
		t.Errorf("tx_bytes %d after sending %d bytes", st.TxBytes, len(msg))
	}
	d, _ := stacks.Load("na")
	if mtu, _ := d.(tunnel.Device).MTU(); mtu != 1500-24-4 {
		t.Errorf("stack MTU %d, want the tunnel's %d", mtu, 1500-24-4)
	}
	shown, err := a.e.Show("na")
	if err != nil || !strings.Contains(shown[0].Line, "netstack 198.51.100.1/24 forward tcp "+fwdAddr) {
		t.Errorf("show: %+v, %v", shown, err)
	}
}

// TestEngineNetstackChange: a netstack tunnel's MTU follows `tunnel
// change … mtu`; its stack words cannot be changed in place, while a
// Reload with other words adds it again and one with the same words
// leaves it alone.
func TestEngineNetstackChange(t *testing.T) {
	var stacks sync.Map
	var tuns int
	a := newSide(t, tunneltest.NewWire(), addrA, 8, withStacks(&stacks, &tuns))
	words := "mode gre remote 192.0.2.2 local 192.0.2.1 netstack 198.51.100.1/24"
	mustAdd(t, a, "na", words)
	c, _ := a.e.Config("na")
	if err := c.Apply(strings.Fields("mtu 1300")); err != nil {
		t.Fatal(err)
	}
	if err := a.e.Change(c); err != nil {
		t.Fatal(err)
	}
	d, _ := stacks.Load("na")
	if mtu, _ := d.(tunnel.Device).MTU(); mtu != 1300 {
		t.Errorf("stack MTU %d after mtu 1300", mtu)
	}
	if err := c.Apply(strings.Fields("netstack 198.51.100.3/24")); err != nil {
		t.Fatal(err)
	}
	if err := a.e.Change(c); err == nil || !strings.Contains(err.Error(), "netstack words") {
		t.Errorf("changing the stack's address in place: %v", err)
	}
	same, _ := a.e.Config("na")
	if err := a.e.Reload([]config.Tunnel{same}); err != nil {
		t.Fatal(err)
	}
	if d2, _ := stacks.Load("na"); d2 != d {
		t.Error("a Reload with the same words made a new stack")
	}
	if err := a.e.Reload([]config.Tunnel{c}); err != nil {
		t.Fatal(err)
	}
	d3, _ := stacks.Load("na")
	if d3 == d || d3.(tunnel.Device).Addrs()[0].String() != "198.51.100.3" {
		t.Errorf("a Reload with a new address kept the old stack")
	}
}

// TestEngineNetstackPortInUse: a netstack tunnel whose port is taken is
// refused with one line naming it, and nothing of it is left.
func TestEngineNetstackPortInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	var stacks sync.Map
	var tuns int
	a := newSide(t, tunneltest.NewWire(), addrA, 8, withStacks(&stacks, &tuns))
	c, err := config.Parse("na", strings.Fields("mode gre remote 192.0.2.2 local 192.0.2.1 netstack 198.51.100.1/24 socks5 "+taken.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	err = a.e.Add(c)
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Add with the proxy's port taken: %v", err)
	}
	if names := a.e.Names(); len(names) != 0 {
		t.Errorf("tunnels left: %v", names)
	}
}
