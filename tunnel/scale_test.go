package tunnel_test

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/tunnel"
	"github.com/gretun/gretun/tunnel/tunneltest"
)

// keyed is the configuration of the i-th of many tunnels to one remote,
// told apart by their keys, as `gretun bench --only scale` makes them.
func keyed(t testing.TB, i int, extra string) config.Tunnel {
	t.Helper()
	c, err := config.Parse(fmt.Sprintf("s%d", i), strings.Fields(fmt.Sprintf("mode gre remote 192.0.2.2 local 192.0.2.1 key %d %s", i, extra)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// allocPerAdd is the heap allocated, in bytes, by adding the tunnels
// from..to-1 divided by their number.
func allocPerAdd(t *testing.T, s *side, from, to int) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := from; i < to; i++ {
		if err := s.e.Add(keyed(t, i, "")); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(to-from)
}

// TestEngineAddCostDoesNotGrow: adding a tunnel to an engine of thousands
// costs what adding it to an engine of a hundred does. The engine once
// rebuilt its whole demultiplexing table (and a list of every tunnel) on
// each add, so that adding N tunnels took O(N²) time and garbage; the
// garbage is what this measures, since time on a shared machine cannot be
// trusted.
func TestEngineAddCostDoesNotGrow(t *testing.T) {
	a := newSide(t, tunneltest.NewWire(), addrA, 1)
	const few, many, step = 100, 3000, 100
	allocPerAdd(t, a, 1, few)
	small := allocPerAdd(t, a, few, few+step)
	allocPerAdd(t, a, few+step, many)
	large := allocPerAdd(t, a, many, many+step)
	t.Logf("bytes allocated per add: %d with %d tunnels, %d with %d", small, few, large, many)
	// What grows with the table: at least 8 bytes a tunnel (a pointer)
	// per add, 24 KB at 3,000. One shard's copy is well under 4 KB; the
	// rest of the margin is what 3,000 running tunnels' goroutines
	// allocate meanwhile (TotalAlloc counts every goroutine), measured
	// here at up to 5 KB an add on a loaded machine.
	if large > small+8192 {
		t.Errorf("adding a tunnel allocates %d bytes among %d tunnels, %d among %d: the cost grows with the number of tunnels", large, many, small, few)
	}
}

// countingHost counts what the engine asks of the host, by tunnel name
// where the call has one.
type countingHost struct {
	tunnel.Host
	mu    sync.Mutex
	calls map[string]int // "RouteMTU", "HasLocalAddr", "CreateTUN s7", …
}

func (h *countingHost) count(call string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls[call]++
}

func (h *countingHost) reset() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.calls
	h.calls = map[string]int{}
	return c
}

func (h *countingHost) HasLocalAddr(a netip.Addr) (bool, error) {
	h.count("HasLocalAddr")
	return h.Host.HasLocalAddr(a)
}

func (h *countingHost) LinkExists(name string) (bool, error) {
	h.count("LinkExists " + name)
	return h.Host.LinkExists(name)
}

func (h *countingHost) RouteMTU(dst netip.Addr, out tunnel.Egress) (int, error) {
	h.count("RouteMTU")
	return h.Host.RouteMTU(dst, out)
}

// countingDevice counts, in its host's calls, what the engine asks of a
// device by name: bringing it up and setting its MTU.
type countingDevice struct {
	tunnel.Device
	h    *countingHost
	name string
}

func (d countingDevice) Up(mtu int) error {
	d.h.count("Up " + d.name)
	return d.Device.Up(mtu)
}

func (d countingDevice) SetMTU(mtu int) error {
	d.h.count("SetMTU " + d.name)
	return d.Device.SetMTU(mtu)
}

// TestEngineReloadTouchesOnlyChanged: a SIGHUP with one line changed among
// many reconfigures that one tunnel and asks the host nothing about the
// others; no device is created or removed.
func TestEngineReloadTouchesOnlyChanged(t *testing.T) {
	const n = 500
	host := &countingHost{calls: map[string]int{}}
	a := newSide(t, tunneltest.NewWire(), addrA, 1, func(env *tunnel.Env) {
		host.Host = env.Host
		env.Host = host
		create := env.CreateDevice
		env.CreateDevice = func(name string, mtu int) (tunnel.Device, error) {
			host.count("CreateTUN " + name)
			d, err := create(name, mtu)
			return countingDevice{d, host, name}, err
		}
	})
	want := make([]config.Tunnel, n)
	for i := range want {
		want[i] = keyed(t, i+1, "")
	}
	if err := a.e.Reload(want); err != nil {
		t.Fatal(err)
	}
	if got := host.reset(); got["CreateTUN s1"] != 1 || got["CreateTUN s"+fmt.Sprint(n)] != 1 {
		t.Fatalf("the first load created s1 %d times, s%d %d times", got["CreateTUN s1"], n, got["CreateTUN s"+fmt.Sprint(n)])
	}
	devs := map[string]*tunneltest.Device{}
	for i := range want {
		devs[want[i].Name] = a.dev(want[i].Name)
	}
	want[n/2] = keyed(t, n/2+1, "ttl 64")
	if err := a.e.Reload(want); err != nil {
		t.Fatal(err)
	}
	// Calls that name no tunnel are about the changed one: a few, not
	// one per tunnel. Those that name one name only the changed one.
	changed := want[n/2].Name
	for call, k := range host.reset() {
		name, named := strings.CutPrefix(call, "SetMTU ")
		if named && name == changed {
			continue
		}
		if call != "HasLocalAddr" && call != "RouteMTU" || k > 2 {
			t.Errorf("reloading one changed tunnel among %d called %s %d times", n, call, k)
		}
	}
	if c, _ := a.e.Config(changed); c.TTL != 64 {
		t.Errorf("%s has ttl %d after the reload", changed, c.TTL)
	}
	for name, d := range devs {
		if a.dev(name) != d {
			t.Errorf("%s has a new device", name)
		}
	}
	if names := a.e.Names(); len(names) != n {
		t.Errorf("%d tunnels after the reload", len(names))
	}
}

// pollDevice is a fake TUN device with a file the engine can poll, as it
// polls a real one: a pipe holding one byte per queued packet.
type pollDevice struct {
	name  string
	r, w  *os.File
	mu    sync.Mutex
	queue [][]byte
	after []byte // kept by the next Read from the queue, for the one after
	kept  []byte // returned by the next Read without reading the pipe
}

func newPollDevice(name string) (*pollDevice, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	return &pollDevice{name: name, r: r, w: w}, nil
}

func (d *pollDevice) Inject(pkt []byte) {
	d.mu.Lock()
	d.queue = append(d.queue, pkt)
	d.mu.Unlock()
	d.w.Write([]byte{0})
}

// InjectKept queues pkt, and kept behind it the way tundev keeps a
// super-packet met while draining: the Read that returns pkt keeps it for
// the next Read, and the pipe shows only pkt.
func (d *pollDevice) InjectKept(pkt, kept []byte) {
	d.mu.Lock()
	d.after = kept
	d.mu.Unlock()
	d.Inject(pkt)
}

func (d *pollDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	d.mu.Lock()
	if k := d.kept; k != nil {
		d.kept = nil
		d.mu.Unlock()
		sizes[0] = copy(bufs[0][offset:], k)
		return 1, nil
	}
	d.mu.Unlock()
	var b [1]byte
	if _, err := d.r.Read(b[:]); err != nil {
		return 0, err // closed, or the engine's read deadline
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	sizes[0] = copy(bufs[0][offset:], d.queue[0])
	d.queue = d.queue[1:]
	d.kept, d.after = d.after, nil
	return 1, nil
}

func (d *pollDevice) Buffered() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.kept != nil
}

func (d *pollDevice) Write(bufs [][]byte, offset int) (int, error) { return len(bufs), nil }
func (d *pollDevice) File() *os.File                               { return d.r }
func (d *pollDevice) MTU() (int, error)                            { return 1500, nil }
func (d *pollDevice) Name() (string, error)                        { return d.name, nil }
func (d *pollDevice) Events() <-chan tun.Event                     { return nil }
func (d *pollDevice) BatchSize() int                               { return 64 }
func (d *pollDevice) Payload() tunnel.Payload                      { return tunnel.PayloadIP }
func (d *pollDevice) Headroom() int                                { return 10 }
func (d *pollDevice) Up(int) error                                 { return nil }
func (d *pollDevice) SetMTU(int) error                             { return nil }
func (d *pollDevice) SetCarrier(bool) error                        { return nil }
func (d *pollDevice) Addrs() []netip.Addr                          { return nil }
func (d *pollDevice) Close() error                                 { return errors.Join(d.r.Close(), d.w.Close()) }

// TestIdleTunnelsHoldNoBuffers: a tunnel that sent a packet and went idle
// gives its sending buffers back (a batch is about 75 KB; ten thousand
// tunnels each holding one once took 800 MB).
func TestIdleTunnelsHoldNoBuffers(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector keeps pooled buffers reachable (run without -race)")
	}
	const n = 200
	var mu sync.Mutex
	devs := map[string]*pollDevice{}
	a := newSide(t, tunneltest.NewWire(), addrA, 1, func(env *tunnel.Env) {
		env.CreateDevice = func(name string, mtu int) (tunnel.Device, error) {
			d, err := newPollDevice(name)
			mu.Lock()
			devs[name] = d
			mu.Unlock()
			return d, err
		}
	})
	for i := 1; i <= n; i++ {
		if err := a.e.Add(keyed(t, i, "")); err != nil {
			t.Fatal(err)
		}
	}
	// Measured from here, with the sockets open: what sending a packet
	// leaves behind.
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, d := range devs {
		d.Inject(udp4("198.51.100.1", "203.0.113.1", 1000))
	}
	sent := func() bool {
		st, _ := a.e.Show("")
		for _, s := range st {
			if s.Stats.TxPackets != 1 {
				return false
			}
		}
		return true
	}
	var perTunnel uint64
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !sent() {
			continue
		}
		var now runtime.MemStats
		runtime.GC()
		runtime.GC() // a pool keeps what it holds through one collection
		runtime.ReadMemStats(&now)
		perTunnel = (now.HeapAlloc - min(now.HeapAlloc, before.HeapAlloc)) / n
		if perTunnel < 8<<10 {
			t.Logf("%d bytes of heap per idle tunnel after sending", perTunnel)
			return
		}
	}
	t.Fatalf("sent all: %v; %d bytes of heap per idle tunnel after sending", sent(), perTunnel)
}

// TestKeptPacketIsSent: a packet the device keeps for its next Read (a
// super-packet tundev met while draining) is read and sent although the
// device's file shows nothing more to read.
func TestKeptPacketIsSent(t *testing.T) {
	var dev *pollDevice
	a := newSide(t, tunneltest.NewWire(), addrA, 1, func(env *tunnel.Env) {
		env.CreateDevice = func(name string, mtu int) (tunnel.Device, error) {
			var err error
			dev, err = newPollDevice(name)
			return dev, err
		}
	})
	if err := a.e.Add(keyed(t, 1, "")); err != nil {
		t.Fatal(err)
	}
	dev.InjectKept(udp4("198.51.100.1", "203.0.113.1", 100), udp4("198.51.100.1", "203.0.113.1", 200))
	var sent uint64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		st, _ := a.e.Show("s1")
		if sent = st[0].Stats.TxPackets; sent == 2 {
			return
		}
	}
	t.Fatalf("%d packets sent, want 2: the kept one waits for another to arrive", sent)
}
