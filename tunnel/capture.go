package tunnel

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gretun/gretun/decap"
)

// Capture sizes: at most captureSlots packets wait for the reader, each
// cut to CaptureSnapLen bytes, so one capture holds at most 2 MiB
// whatever the traffic; packets arriving while every slot is taken are
// lost (counted), and the data path never waits for the reader.
const (
	CaptureSnapLen = 4096
	captureSlots   = 512
)

// CapturedPacket is a copy of one packet a tunnel sent, received or
// dropped, as Capture delivers it.
type CapturedPacket struct {
	Time time.Time
	Out  bool   // sent (or dropped on the way out), else received
	Len  int    // the packet's length; Data holds at most CaptureSnapLen bytes of it
	Data []byte // an IP packet: outer, or inner for an inner capture
	Drop string // the drop reason, "" for a packet gretun passed on
	slot []byte
}

// Capture receives copies of a tunnel's packets: outer packets in both
// directions, or with inner the inner packets read from and written to the
// device; packets gretun drops come with their reason (as the outer packet
// received, or the inner packet that could not be sent). It is the
// engine's one capture hook, at the points where packets enter and leave
// the engine and where drops are counted, so every kind of tunnel has it.
// With nobody capturing, a tunnel pays one atomic load a packet.
type Capture struct {
	t     *Tunnel
	inner bool
	ch    chan CapturedPacket
	free  chan []byte
	done  chan struct{} // closed when the tunnel is deleted or the capture closed
	once  sync.Once
	seen  atomic.Uint64
	lost  atomic.Uint64
}

// ErrCaptureBusy means the tunnel is being captured already.
var ErrCaptureBusy = errors.New("already being captured (one capture a tunnel at a time)")

// Capture starts capturing the named tunnel's packets (inner ones with
// inner). One capture a tunnel at a time: a second gets ErrCaptureBusy.
func (e *Engine) Capture(name string, inner bool) (*Capture, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.tunnels[name]
	if !ok {
		return nil, fmt.Errorf("no tunnel named %q", name)
	}
	c := &Capture{t: t, inner: inner, ch: make(chan CapturedPacket, captureSlots),
		free: make(chan []byte, captureSlots), done: make(chan struct{})}
	slab := make([]byte, captureSlots*CaptureSnapLen)
	for i := range captureSlots {
		c.free <- slab[i*CaptureSnapLen : (i+1)*CaptureSnapLen : (i+1)*CaptureSnapLen]
	}
	if !t.tap.CompareAndSwap(nil, c) {
		return nil, fmt.Errorf("tunnel %s: %w", name, ErrCaptureBusy)
	}
	return c, nil
}

// Packets delivers the captured packets; give each back with Release.
func (c *Capture) Packets() <-chan CapturedPacket { return c.ch }

// Done is closed when the capture ends: the tunnel was deleted, or Close.
func (c *Capture) Done() <-chan struct{} { return c.done }

// Release gives a packet's buffer back for the next packets.
func (c *Capture) Release(p CapturedPacket) {
	if p.slot != nil {
		c.free <- p.slot
	}
}

// Seen is how many packets the capture was offered; Lost how many of them
// it lost because the reader was behind.
func (c *Capture) Seen() uint64 { return c.seen.Load() }
func (c *Capture) Lost() uint64 { return c.lost.Load() }

// Close stops the capture; the tunnel's data path forgets it at once.
func (c *Capture) Close() {
	c.t.tap.CompareAndSwap(c, nil)
	c.once.Do(func() { close(c.done) })
}

// record offers a copy of pkt to the reader, or counts it lost when the
// reader is behind. It never blocks.
func (c *Capture) record(out bool, pkt []byte, drop string) {
	c.seen.Add(1)
	var slot []byte
	select {
	case slot = <-c.free:
	default:
		c.lost.Add(1)
		return
	}
	n := copy(slot, pkt)
	p := CapturedPacket{Time: time.Now(), Out: out, Len: len(pkt), Data: slot[:n], Drop: drop, slot: slot}
	select {
	case c.ch <- p:
	default: // cannot happen: a slot was free, so is the channel
		c.free <- slot
		c.lost.Add(1)
	}
}

// outer records an outer packet unless this is an inner capture.
func (c *Capture) outer(out bool, pkt []byte) {
	if !c.inner {
		c.record(out, pkt, "")
	}
}

// sent records outer packets the underlay took, for an outer capture. c
// may be nil: nobody captures.
func (c *Capture) sent(pkts [][]byte) {
	if c == nil || c.inner {
		return
	}
	for _, p := range pkts {
		c.record(true, p, "")
	}
}

// refused records packets the kernel refused, each from off on, with the
// reason, whatever the capture's kind (as dropRx): outer packets the
// underlay refused (out), inner ones the device refused. c may be nil.
func (c *Capture) refused(out bool, pkts [][]byte, off int, reason string) {
	if c == nil {
		return
	}
	for _, p := range pkts {
		c.record(out, p[off:], reason)
	}
}

// innerPkt records an inner packet passed on, for an inner capture.
func (c *Capture) innerPkt(out bool, pkt []byte) {
	if c.inner {
		c.record(out, pkt, "")
	}
}

// tx records an inner packet the sending path passed on or, with its drop
// reason, dropped. c may be nil: nobody captures.
func (c *Capture) tx(pkt []byte, drop string) {
	switch {
	case c == nil:
	case drop != "":
		c.record(true, pkt, drop)
	default:
		c.innerPkt(true, pkt)
	}
}

// dropRx records a received packet the tunnel drops, with its reason,
// whatever the capture's kind: the outer packet, the one that exists.
func (c *Capture) dropRx(pkt []byte, r decap.Reason) {
	c.record(false, pkt, r.String())
}

// endCapture ends the tunnel's capture, if any, as the tunnel goes.
func (t *Tunnel) endCapture() {
	if c := t.tap.Swap(nil); c != nil {
		c.once.Do(func() { close(c.done) })
	}
}
