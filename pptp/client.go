package pptp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/netconf"
	"github.com/gretun/gretun/ppp"
	"github.com/gretun/gretun/rawsock"
	"github.com/gretun/gretun/tundev"
)

// Config is one PPTP call.
type Config struct {
	Server netip.Addr // the PPTP server (IPv4)
	Local  netip.Addr // the source address; invalid: the kernel's choice
	Name   string     // the TUN device to create once the link is up
	MTU    int        // the device's MTU; 0: the peer's MRU, at most 1400
	PPP    ppp.Config // user, password, allowed authentication (Send and Magic are set here)
	Log    io.Writer  // one line per event
}

// Client timing.
const (
	dialTimeout   = 15 * time.Second
	replyTimeout  = 15 * time.Second
	echoEvery     = 60 * time.Second
	echoTimeout   = 60 * time.Second // RFC 2637 §2.12's suggestion
	ackDelay      = 100 * time.Millisecond
	byeTimeout    = 3 * time.Second
	recvWindow    = 64
	readHeadroom  = 64 // room before a TUN packet for IPv4 + GRE + PPP (40 bytes)
	maxPacket     = 65535
	ipv4HeaderLen = 20
)

// client is one call's state.
type client struct {
	cfg    Config
	ctrl   net.Conn
	ctrlMu sync.Mutex // serialises writes to ctrl
	raw    *rawsock.Conn
	local  netip.Addr
	callID uint16 // ours: the key of every packet the server sends
	peerID uint16 // the server's: the key of every packet we send
	link   *ppp.Link
	dev    atomic.Pointer[tundev.Device]
	stats  *Stats

	txMu     sync.Mutex // GRE sequence/ack state and the raw socket's send side
	txSeq    uint32
	ipID     uint16
	rxSeq    atomic.Uint32 // the last sequence number accepted
	rxAny    atomic.Bool   // rxSeq is set
	ackedSeq uint32        // the last one acknowledged (under txMu)
	txBuf    []byte        // control frames are built here (under txMu)
	txPkts   [][]byte

	// Control connection liveness (the session loop's; ctrlHeard is set
	// by readControl on every message).
	echoID    uint32
	lastEcho  time.Time // when the last Echo-Request went out
	echoSent  time.Time // the first one still unanswered; zero: none
	ctrlHeard atomic.Bool
}

// Run makes the call, brings up the device when PPP opens, carries IP
// until ctx ends, the server hangs up or the link fails, and then clears
// the call and removes the device. It returns the call's counters and why
// it ended (nil when ctx ended it).
func Run(ctx context.Context, cfg Config) (*Stats, error) {
	c := &client{cfg: cfg, stats: newStats(), txBuf: make([]byte, 2048), txPkts: make([][]byte, 1)}
	if cfg.Log == nil {
		c.cfg.Log = io.Discard
	}
	if err := c.dial(ctx); err != nil {
		return c.stats, err
	}
	defer c.ctrl.Close()
	raw, err := rawsock.Open(rawsock.ProtoGRE)
	if err != nil {
		c.stop()
		return c.stats, fmt.Errorf("raw GRE socket: %w", err)
	}
	c.raw = raw
	defer raw.Close()
	if err := c.startCall(ctx); err != nil {
		c.stop()
		return c.stats, err
	}
	return c.stats, c.session(ctx)
}

func (c *client) logf(format string, a ...any) {
	fmt.Fprintf(c.cfg.Log, "pptp: "+format+"\n", a...)
}

// writeMsg sends one control message.
func (c *client) writeMsg(m Message) error {
	c.ctrlMu.Lock()
	defer c.ctrlMu.Unlock()
	c.ctrl.SetWriteDeadline(time.Now().Add(replyTimeout))
	_, err := c.ctrl.Write(m.Marshal())
	return err
}

// dial opens the control connection and exchanges Start-Control-Connection.
func (c *client) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: dialTimeout}
	if c.cfg.Local.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: c.cfg.Local.AsSlice()}
	}
	conn, err := d.DialContext(ctx, "tcp4", netip.AddrPortFrom(c.cfg.Server, Port).String())
	if err != nil {
		return fmt.Errorf("control connection: %w", err)
	}
	c.ctrl = conn
	c.local = conn.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	host, _ := os.Hostname()
	if err := c.writeMsg(StartRequest(host)); err != nil {
		conn.Close()
		return fmt.Errorf("control connection: %w", err)
	}
	m, err := c.await(StartControlConnectionReply)
	if err != nil {
		conn.Close()
		return err
	}
	r := StartReplyOf(m)
	if r.Result.Code != 1 {
		conn.Close()
		return fmt.Errorf("server %s refused the control connection (%v)", c.cfg.Server, r.Result)
	}
	c.logf("control connection to %s (%s %s, protocol %d.%d)", c.cfg.Server, r.Vendor, r.Hostname, r.Version>>8, r.Version&0xff)
	return nil
}

// await reads control messages until one of type typ, answering echoes
// on the way.
func (c *client) await(typ uint16) (Message, error) {
	c.ctrl.SetReadDeadline(time.Now().Add(replyTimeout))
	defer c.ctrl.SetReadDeadline(time.Time{})
	for {
		m, err := ReadMessage(c.ctrl)
		if err != nil {
			c.stats.drop("ctrl-malformed")
			return m, fmt.Errorf("control connection: waiting for message type %d: %w", typ, err)
		}
		switch m.Type {
		case typ:
			return m, nil
		case EchoRequest:
			c.writeMsg(EchoReplyTo(m))
		case StopControlConnectionRequest:
			c.writeMsg(StopReply())
			return m, errors.New("control connection: the server stopped it")
		case CallDisconnectNotify:
			return m, errors.New("the server disconnected the call")
		}
	}
}

// startCall places the outgoing call.
func (c *client) startCall(ctx context.Context) error {
	var b [4]byte
	rand.Read(b[:])
	c.callID = binary.BigEndian.Uint16(b[:]) | 1
	if err := c.writeMsg(OutgoingRequest(c.callID, binary.BigEndian.Uint16(b[2:]), recvWindow)); err != nil {
		return fmt.Errorf("control connection: %w", err)
	}
	m, err := c.await(OutgoingCallReply)
	if err != nil {
		return err
	}
	r := OutgoingReplyOf(m)
	if r.Result.Code != 1 {
		return fmt.Errorf("server %s refused the call (%v, cause %d)", c.cfg.Server, r.Result, r.Cause)
	}
	if r.PeerCallID != c.callID {
		return fmt.Errorf("server %s answered call %d, not ours (%d)", c.cfg.Server, r.PeerCallID, c.callID)
	}
	c.peerID = r.CallID
	c.logf("call %d connected (server call %d, window %d)", c.callID, c.peerID, r.Window)
	return nil
}

// stop ends the control connection politely.
func (c *client) stop() {
	if c.writeMsg(StopRequest()) != nil {
		return
	}
	c.ctrl.SetReadDeadline(time.Now().Add(byeTimeout))
	for {
		m, err := ReadMessage(c.ctrl)
		if err != nil || m.Type == StopControlConnectionReply {
			return
		}
	}
}

// session runs PPP and the data path, then tears the call down.
func (c *client) session(ctx context.Context) error {
	pc := c.cfg.PPP
	pc.Send = c.sendFrame
	pc.Magic = func() uint32 {
		var b [4]byte
		rand.Read(b[:])
		return binary.BigEndian.Uint32(b[:])
	}
	c.link = ppp.New(pc)

	ctrlDone := make(chan error, 1)
	go func() { ctrlDone <- c.readControl() }()
	greDone := make(chan struct{})
	go func() { c.readGRE(); close(greDone) }()

	c.link.Start()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	ack := time.NewTicker(ackDelay)
	defer ack.Stop()
	c.lastEcho = time.Now()
	var runErr error
	up := c.link.Up()
	tunDone := make(chan struct{})
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-up:
			up = nil
			if err := c.deviceUp(tunDone); err != nil {
				runErr = err
				break loop
			}
		case <-tick.C:
			c.link.Tick()
			if err := c.keepalive(time.Now()); err != nil {
				runErr = err
				break loop
			}
		case <-ack.C:
			c.sendAck()
		case <-c.link.Done():
			runErr = c.link.Err()
			if runErr == nil {
				runErr = errors.New("the PPP link went down")
			}
			break loop
		case err := <-ctrlDone:
			ctrlDone = nil
			runErr = err
			c.link.Close()
			break loop
		case <-tunDone:
			runErr = errors.New("the TUN device went away")
			break loop
		}
	}
	// Terminate PPP (unless the server is gone), clear the call, stop the
	// control connection.
	if ctrlDone != nil {
		c.link.Close()
		deadline := time.After(byeTimeout)
	wait:
		for {
			select {
			case <-c.link.Done():
				break wait
			case <-deadline:
				break wait
			case <-tick.C:
				c.link.Tick()
			}
		}
		if runErr == nil {
			runErr = c.link.Err()
		}
		c.writeMsg(ClearRequest(c.callID))
		select {
		case <-ctrlDone:
		case <-time.After(byeTimeout):
		}
		c.ctrl.SetReadDeadline(time.Now())
	}
	if d := c.dev.Load(); d != nil {
		d.Close()
	}
	c.raw.Close()
	<-greDone
	if errors.Is(runErr, ppp.ErrTerminated) && ctx.Err() != nil {
		runErr = nil
	}
	return runErr
}

// keepalive sends an Echo-Request every echoEvery and returns an error
// when the server has sent nothing on the control connection for
// echoTimeout after one (as pptp-linux, a dead server ends the call).
func (c *client) keepalive(now time.Time) error {
	if !c.echoSent.IsZero() && c.ctrlHeard.Load() {
		c.echoSent = time.Time{}
	}
	if !c.echoSent.IsZero() && now.Sub(c.echoSent) >= echoTimeout {
		return fmt.Errorf("no answer from the server's control connection for %d s", int(echoTimeout/time.Second))
	}
	if now.Sub(c.lastEcho) < echoEvery {
		return nil
	}
	c.lastEcho = now
	if c.echoSent.IsZero() {
		c.echoSent = now
		c.ctrlHeard.Store(false)
	}
	c.echoID++
	c.writeMsg(Echo(c.echoID))
	return nil
}

// readControl serves the control connection after the call is placed:
// echoes both ways, and the server's Call-Disconnect-Notify or
// Stop-Control-Connection-Request, which end the call with an error (when
// gretun cleared the call itself, the caller ignores it). It returns nil
// when the read deadline set by the caller's teardown expires.
func (c *client) readControl() error {
	for {
		m, err := ReadMessage(c.ctrl)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.stats.drop("ctrl-malformed")
			}
			return fmt.Errorf("control connection: %w", err)
		}
		c.stats.ctrlRx.Add(1)
		c.ctrlHeard.Store(true)
		switch m.Type {
		case EchoRequest:
			c.writeMsg(EchoReplyTo(m))
		case CallDisconnectNotify:
			id, r := DisconnectCallID(m)
			if id != c.peerID {
				c.stats.drop("ctrl-call-id")
				continue
			}
			c.stop()
			return fmt.Errorf("the server cleared the call (%v)", r)
		case StopControlConnectionRequest:
			c.writeMsg(StopReply())
			return errors.New("the server stopped the control connection")
		case EchoReply, SetLinkInfo, WANErrorNotify:
		default:
			c.stats.drop("ctrl-unexpected")
		}
	}
}

// deviceUp creates the TUN device with the addresses IPCP settled and
// starts its read loop; done is closed when that loop ends.
func (c *client) deviceUp(done chan struct{}) error {
	local, peer, dns := c.link.Addrs()
	mtu := c.cfg.MTU
	if mtu == 0 {
		mtu = min(c.link.PeerMRU(), 1400)
	}
	c.writeMsg(SetLink(c.peerID, 0xffffffff, 0xffffffff))
	d, err := tundev.Open(c.cfg.Name)
	if err != nil {
		return fmt.Errorf("device %s: %w", c.cfg.Name, err)
	}
	for _, step := range []func() error{
		func() error { return netconf.SetMTU(c.cfg.Name, mtu) },
		func() error { return netconf.AddPeerAddr(c.cfg.Name, local, peer) },
		func() error { return netconf.SetUp(c.cfg.Name) },
	} {
		if err := step(); err != nil {
			d.Close()
			return err
		}
	}
	c.dev.Store(d)
	c.logf("%s up: local %s peer %s mtu %d dns %v", c.cfg.Name, local, peer, mtu, dns)
	go func() { c.readTUN(d, mtu); close(done) }()
	return nil
}

// readTUN carries the device's IPv4 packets to the server.
func (c *client) readTUN(d *tundev.Device, mtu int) {
	n := d.BatchSize()
	bufs := make([][]byte, n)
	sizes := make([]int, n)
	for i := range bufs {
		bufs[i] = make([]byte, readHeadroom+maxPacket)
	}
	for {
		k, err := d.Read(bufs, sizes, readHeadroom)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			c.stats.drop("tun-read")
			continue
		}
		for i := 0; i < k; i++ {
			pkt := bufs[i][readHeadroom : readHeadroom+sizes[i]]
			if len(pkt) == 0 || pkt[0]>>4 != 4 {
				c.stats.drop("tx-not-ipv4") // IPV6CP is not negotiated
				continue
			}
			if len(pkt) > mtu {
				c.stats.drop("tx-too-big")
				continue
			}
			ppp.PutHeader(bufs[i][readHeadroom-ppp.HeaderLen:], ppp.ProtoIP)
			if c.send(bufs[i], readHeadroom-ppp.HeaderLen, len(pkt)+ppp.HeaderLen) {
				c.stats.txPackets.Add(1)
				c.stats.txBytes.Add(uint64(len(pkt)))
			}
		}
	}
}

// sendFrame sends a PPP control frame (ppp.Config.Send).
func (c *client) sendFrame(frame []byte) {
	c.txMu.Lock()
	defer c.txMu.Unlock()
	if len(frame) > len(c.txBuf)-readHeadroom {
		return
	}
	copy(c.txBuf[readHeadroom:], frame)
	c.sendLocked(c.txBuf, readHeadroom, len(frame))
}

// send sends the PPP frame at b[off:off+n] with the headers written in
// front of it.
func (c *client) send(b []byte, off, n int) bool {
	c.txMu.Lock()
	defer c.txMu.Unlock()
	return c.sendLocked(b, off, n)
}

// sendAck sends an acknowledgement without payload when one is owed.
func (c *client) sendAck() {
	c.txMu.Lock()
	defer c.txMu.Unlock()
	if c.rxAny.Load() && c.rxSeq.Load() != c.ackedSeq {
		c.sendLocked(c.txBuf, readHeadroom, 0)
	}
}

// sendLocked writes IPv4 and enhanced GRE headers before b[off:off+n]
// (with a sequence number when there is a payload, and an acknowledgement
// when one is owed) and sends the packet.
func (c *client) sendLocked(b []byte, off, n int) bool {
	g := GRE{CallID: c.peerID, HasSeq: n > 0, Seq: c.txSeq}
	if c.rxAny.Load() {
		g.HasAck, g.Ack = true, c.rxSeq.Load()
	}
	if !g.HasSeq && !g.HasAck {
		return false
	}
	gl := GRELen(g.HasSeq, g.HasAck)
	start := off - gl - ipv4HeaderLen
	PutGRE(b[off-gl:], &g, n)
	ip := header.IPv4(b[start:])
	c.ipID++
	ip.Encode(&header.IPv4Fields{
		TotalLen: uint16(ipv4HeaderLen + gl + n), ID: c.ipID, TTL: 64,
		Protocol: header.ProtoGRE, Src: c.local, Dst: c.cfg.Server,
	})
	ip.UpdateChecksum()
	c.txPkts[0] = b[start : off+n]
	if _, err := c.raw.WriteBatch(c.txPkts); err != nil {
		c.stats.drop("tx-error")
		return false
	}
	if g.HasSeq {
		c.txSeq++
	}
	if g.HasAck {
		c.ackedSeq = g.Ack
	}
	return true
}

// readGRE receives enhanced GRE from the server: PPP control frames go to
// the link, IP to the device; everything else is dropped and counted.
func (c *client) readGRE() {
	const batch = 32
	bufs := make([][]byte, batch)
	sizes := make([]int, batch)
	for i := range bufs {
		bufs[i] = make([]byte, maxPacket)
	}
	out := make([][]byte, 1)
	for {
		k, err := c.raw.ReadBatch(bufs, sizes)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		for i := 0; i < k; i++ {
			if reason := c.receive(bufs[i][:sizes[i]], out); reason != "" {
				c.stats.drop(reason)
			}
		}
	}
}

// receive handles one IPv4 packet from the raw socket and returns a drop
// reason, or "" when it was used (or was not for this call at all).
func (c *client) receive(b []byte, out [][]byte) string {
	ip := header.IPv4(b)
	if !ip.IsValid() || ip.TotalLen() > len(b) || ip.TotalLen() < ip.HeaderLen() {
		return "ip-malformed"
	}
	if ip.SrcAddr() != c.cfg.Server {
		return "" // another host's GRE: not ours to count
	}
	if ip.IsFragment() {
		return "ip-fragment"
	}
	hl := ip.HeaderLen()
	g, err := ParseGRE(b[hl:ip.TotalLen()])
	if err != nil {
		if errors.Is(err, ErrGREVersion) {
			return "" // version 0 GRE is the engine's business
		}
		return err.Error()
	}
	if g.CallID != c.callID {
		return "gre1-call-id"
	}
	c.stats.greRx.Add(1)
	if !g.HasSeq {
		if len(g.Payload) > 0 {
			return "gre1-no-seq"
		}
		return "" // an acknowledgement only
	}
	if c.rxAny.Load() && !SeqAfter(g.Seq, c.rxSeq.Load()) {
		return "gre1-seq-old"
	}
	c.rxSeq.Store(g.Seq)
	c.rxAny.Store(true)
	proto, info, err := ppp.Decode(g.Payload)
	if err != nil {
		return err.Error()
	}
	if proto != ppp.ProtoIP {
		if err := c.link.Input(g.Payload); err != nil {
			return err.Error()
		}
		return ""
	}
	d := c.dev.Load()
	if d == nil || !c.link.Opened() {
		return "rx-not-open"
	}
	if len(info) == 0 || info[0]>>4 != 4 {
		return "rx-not-ipv4"
	}
	off := cap(b) - cap(info) // info aliases b
	out[0] = b[:off+len(info)]
	if _, err := d.Write(out, off); err != nil {
		return "tun-write"
	}
	c.stats.rxPackets.Add(1)
	c.stats.rxBytes.Add(uint64(len(info)))
	return ""
}
