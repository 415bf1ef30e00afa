package tunnel

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/decap"
	"github.com/gretun/gretun/encap"
	"github.com/gretun/gretun/keepalive"
	"github.com/gretun/gretun/pmtu"
)

// peer is the far end of a tunnel: where its outer packets go and what the
// tunnel knows of the path to it and of the conversation with it. A
// point-to-point tunnel has one; a multipoint tunnel has one per neighbour
// (neigh.go), found per packet: by inner destination when sending, by
// outer source when receiving (Tunnel.peerFrom).
type peer struct {
	t *Tunnel

	// txMu guards the sending side's state: the encapsulator (identification
	// and sequence numbers), the endpoint it sends to and the MTU of the
	// underlay toward it. The sending goroutine takes it once a batch;
	// keepalives and reconfiguration take it too.
	txMu        sync.Mutex
	enc         *encap.Encapsulator
	ep          endpoint
	underlayMTU int

	recv atomic.Pointer[decap.Receiver] // receive policy and sequence state
	pmtu pmtu.State                     // path MTU soft state

	ka        atomic.Pointer[keepalive.Machine] // nil when keepalives are off
	kaKick    chan struct{}
	kaMu      sync.Mutex // guards kaRunning and started
	kaRunning bool       // the keepalive goroutine runs (only while keepalives are on)
	carrierMu sync.Mutex // orders the carrier changes (syncCarrier)
	started   bool       // the tunnel runs: the keepalive goroutine may

	reflected       atomic.Uint64
	reflectRate     pmtu.Limiter // bounds reflected keepalive probes
	lastReflectDrop decap.Reason // why mayReflect last refused, for the capture (receive goroutine only)

	// A multipoint tunnel's neighbour (neigh.go): its own counters, and
	// whether it was learned from traffic, last heard from when.
	stats   peerStats
	learned atomic.Bool
	seen    atomic.Int64
}

// newPeer returns tunnel t's peer as configuration c describes it, sending
// with enc to ep over an underlay of underlayMTU bytes, behind a device of
// mtu bytes.
func newPeer(t *Tunnel, c *config.Tunnel, enc *encap.Encapsulator, ep endpoint, underlayMTU, mtu int) *peer {
	p := &peer{t: t, enc: enc, ep: ep, underlayMTU: underlayMTU, kaKick: make(chan struct{}, 1)}
	p.recv.Store(decap.NewReceiver(c.Policy()))
	p.reflectRate.SetLimit(reflectEvery, reflectBurst)
	p.setPathLimit(c, mtu)
	return p
}

// setPathLimit tells the path MTU state the largest inner packet the
// device (mtu) and the underlay toward the peer take, and the overhead of
// configuration c on p's endpoint; p.txMu is held (or p is not yet shared).
func (p *peer) setPathLimit(c *config.Tunnel, mtu int) {
	o := p.ep.sock.overhead(c)
	p.pmtu.SetDevice(min(mtu, p.underlayMTU-o), o)
}

// start lets the peer's goroutines (keepalives) run once the tunnel does.
func (p *peer) start() {
	p.kaMu.Lock()
	p.started = true
	p.kaMu.Unlock()
	p.ensureKeepaliveLoop()
}

// reconfigure moves the peer from configuration old to c (Tunnel.reconfigure
// says what it keeps): the sequence numbers and identification go on, the
// path MTU is forgotten when the endpoints or the way out (`dev`,
// `fwmark`) change, and a new remote or
// receive policy gets a new receiver.
func (p *peer) reconfigure(old, c *config.Tunnel, enc *encap.Encapsulator, ep endpoint, underlayMTU, mtu int) {
	p.txMu.Lock()
	enc.Continue(p.enc)
	p.enc, p.ep, p.underlayMTU = enc, ep, underlayMTU
	if old.Remote != c.Remote || old.Local != c.Local || old.Dev != c.Dev || old.FwMark != c.FwMark {
		p.pmtu.Forget() // another path
	}
	p.setPathLimit(c, mtu)
	p.txMu.Unlock()
	if old.Policy() != c.Policy() || old.Remote != c.Remote {
		r := decap.NewReceiver(c.Policy())
		// A new remote is another peer, whose numbers start anywhere:
		// it gets a fresh receiver.
		if old.ISeq && c.ISeq && old.Remote == c.Remote {
			r.Continue(p.recv.Load())
		}
		p.recv.Store(r)
	}
}

// learnPathMTU lowers the path MTU toward the peer after the underlay
// reported that an outer packet of sent bytes did not fit a hop of nextHop
// bytes.
func (p *peer) learnPathMTU(nextHop, sent int) {
	path := pmtu.ReportedMTU(nextHop, sent)
	if p.pmtu.Lower(time.Now(), path) {
		p.t.e.log.Info("path MTU lowered by the underlay", "tunnel", p.t.name, "path", path, "tunnel_mtu", p.pmtu.Effective(time.Now()), "expires", pmtu.Expires)
	}
}

// clampMSS is the MSS to clamp SYNs to: 0 when off, 1 to derive it from
// the path MTU toward the peer per packet, else the configured value.
func (p *peer) clampMSS() int {
	c := p.t.cfg.Load()
	if !c.ClampMSS {
		return 0
	}
	if c.MSS != 0 {
		return c.MSS
	}
	return -p.pmtu.Effective(time.Now())
}
