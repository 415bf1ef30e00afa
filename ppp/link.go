package ppp

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
)

// Auth names authentication protocols a client accepts.
type Auth uint8

const (
	AuthPAP      Auth = 1 << iota // RFC 1334
	AuthCHAPMD5                   // RFC 1994, algorithm 5
	AuthMSCHAPv2                  // RFC 2759, CHAP algorithm 0x81
	AuthAny      = AuthPAP | AuthCHAPMD5 | AuthMSCHAPv2
)

// chapMD5 is CHAP's algorithm number for MD5.
const chapMD5 = 5

// Config is what the client brings to the negotiation.
type Config struct {
	User, Password string
	// Allow is the authentication protocols the server may ask for
	// (default AuthAny).
	Allow Auth
	// MRU is the largest frame gretun receives (default 1500; at most
	// 1500 is asked for).
	MRU int
	// Magic returns random numbers for the magic number and identifiers.
	Magic func() uint32
	// Send carries one whole frame to the peer. It is called with the
	// Link's lock held and must not call back into the Link.
	Send func(frame []byte)
	// EchoInterval is pppd's lcp-echo-interval: an LCP Echo-Request every
	// so many ticks once LCP is open (0: none). EchoFailure is
	// lcp-echo-failure: the link is terminated when that many in a row go
	// unanswered (0: never), so a dead server does not hold it forever.
	EchoInterval, EchoFailure int
}

// Phase is the link's phase (RFC 1661 §3.2).
type Phase int32

const (
	PhaseDead Phase = iota
	PhaseEstablish
	PhaseAuthenticate
	PhaseNetwork
	PhaseOpened // IPCP is up: IP flows
	PhaseTerminate
)

// Errors that end a link (see Link.Err).
var (
	ErrAuthFailed = errors.New("authentication failed")
	ErrTimeout    = errors.New("no answer from the peer")
	ErrTerminated = errors.New("the peer terminated the link")
	ErrRefused    = errors.New("the peer refused the negotiation")
)

// Timers in ticks (the caller ticks once a second): a request is resent
// after restartTicks, at most maxConfigure times (RFC 1661's defaults,
// 3 s and 10).
const (
	restartTicks = 3
	maxConfigure = 10
	maxTerminate = 2
)

// cp is one control protocol's side of a Configure exchange.
type cp struct {
	id        uint8 // identifier of our last Configure-Request
	ackedUs   bool  // the peer acked our request
	ackedPeer bool  // we acked the peer's request
	ticks     int   // ticks since our last request
	tries     int   // requests sent
}

// Link is one PPP link's negotiation. Its methods are safe for concurrent
// use; Opened and the addresses can be read without the lock once the
// link is open.
type Link struct {
	mu    sync.Mutex
	cfg   Config
	phase atomic.Int32

	lcp, ipcp cp
	// LCP: what we ask for (cleared when the peer rejects it).
	askMRU, askMagic bool
	mru              int    // our MRU
	magic            uint32 // our magic number
	peerMRU          int    // the largest frame the peer takes
	auth             uint16 // the protocol the peer wants, 0 for none
	chapAlg          uint8  // CHAP's algorithm: chapMD5 or chapMSv2
	msAuthResp       string // MS-CHAPv2: the Success message the server must send
	authID           uint8
	authTicks        int
	authTries        int
	// IPCP
	local, peer  netip.Addr
	dns          [2]netip.Addr
	askDNS       [2]bool
	lastID       uint8
	err          error
	termTicks    int
	termTries    int
	echoTicks    int // ticks since our last Echo-Request
	echoPending  int // Echo-Requests unanswered in a row
	up, finished chan struct{}
}

// New returns a Link; Start begins the negotiation.
func New(cfg Config) *Link {
	if cfg.Allow == 0 {
		cfg.Allow = AuthAny
	}
	if cfg.MRU <= 0 || cfg.MRU > 1500 {
		cfg.MRU = 1500
	}
	l := &Link{cfg: cfg, askMRU: cfg.MRU != 1500, askMagic: true, mru: cfg.MRU, peerMRU: 1500,
		local: netip.IPv4Unspecified(), askDNS: [2]bool{true, true},
		up: make(chan struct{}), finished: make(chan struct{})}
	l.dns = [2]netip.Addr{netip.IPv4Unspecified(), netip.IPv4Unspecified()}
	l.magic = l.newMagic()
	return l
}

func (l *Link) newMagic() uint32 {
	for {
		if m := l.cfg.Magic(); m != 0 {
			return m
		}
	}
}

// Phase returns the current phase.
func (l *Link) Phase() Phase { return Phase(l.phase.Load()) }

// Opened reports whether IP may flow.
func (l *Link) Opened() bool { return l.Phase() == PhaseOpened }

// Up is closed when the link opens; Done when it is dead (see Err).
func (l *Link) Up() <-chan struct{}   { return l.up }
func (l *Link) Done() <-chan struct{} { return l.finished }

// Err says why a dead link ended (nil after a Close we asked for).
func (l *Link) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Addrs returns the local and peer addresses and the DNS servers IPCP
// settled (zero DNS addresses when the server gave none).
func (l *Link) Addrs() (local, peer netip.Addr, dns []netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, d := range l.dns {
		if l.askDNS[i] && !d.IsUnspecified() {
			dns = append(dns, d)
		}
	}
	return l.local, l.peer, dns
}

// PeerMRU is the largest frame the peer accepts.
func (l *Link) PeerMRU() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.peerMRU
}

// Start sends the first LCP Configure-Request.
func (l *Link) Start() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phase.Store(int32(PhaseEstablish))
	l.sendConfReq(ProtoLCP)
}

// Close terminates the link: a Terminate-Request, resent by Tick until it
// is acknowledged or given up on.
func (l *Link) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.Phase() {
	case PhaseDead, PhaseTerminate:
		return
	}
	l.terminate(nil)
}

// terminate starts the Terminate exchange; err is what Err will say.
func (l *Link) terminate(err error) {
	l.err = err
	l.phase.Store(int32(PhaseTerminate))
	l.termTicks, l.termTries = 0, 1
	l.send(ProtoLCP, Packet{Code: TermReq, ID: l.nextID(), Data: nil})
}

// die ends the link.
func (l *Link) die(err error) {
	if l.Phase() == PhaseDead {
		return
	}
	if l.err == nil {
		l.err = err
	}
	l.phase.Store(int32(PhaseDead))
	close(l.finished)
}

func (l *Link) nextID() uint8 { l.lastID++; return l.lastID }

func (l *Link) send(proto uint16, p Packet) { l.cfg.Send(frame(proto, p)) }

// Tick drives the timers; call it once a second.
func (l *Link) Tick() {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.Phase() {
	case PhaseEstablish:
		l.retry(ProtoLCP, &l.lcp)
	case PhaseAuthenticate:
		if l.auth == ProtoPAP {
			if l.authTicks++; l.authTicks >= restartTicks {
				if l.authTries >= maxConfigure {
					l.die(fmt.Errorf("%w: PAP", ErrTimeout))
					return
				}
				l.sendPAP()
			}
		}
	case PhaseNetwork:
		l.retry(ProtoIPCP, &l.ipcp)
	case PhaseTerminate:
		if l.termTicks++; l.termTicks >= restartTicks {
			if l.termTries >= maxTerminate {
				l.die(nil)
				return
			}
			l.termTicks = 0
			l.termTries++
			l.send(ProtoLCP, Packet{Code: TermReq, ID: l.nextID()})
		}
	}
	switch l.Phase() {
	case PhaseAuthenticate, PhaseNetwork, PhaseOpened:
		l.echo()
	}
}

// echo sends an LCP Echo-Request every EchoInterval ticks, and terminates
// the link when EchoFailure of them in a row went unanswered (as pppd).
func (l *Link) echo() {
	if l.cfg.EchoInterval <= 0 {
		return
	}
	if l.echoTicks++; l.echoTicks < l.cfg.EchoInterval {
		return
	}
	l.echoTicks = 0
	if l.cfg.EchoFailure > 0 && l.echoPending >= l.cfg.EchoFailure {
		l.terminate(fmt.Errorf("%w: %d LCP Echo-Requests unanswered", ErrTimeout, l.echoPending))
		return
	}
	l.echoPending++
	l.send(ProtoLCP, Packet{Code: EchoReq, ID: l.nextID(), Data: u32(l.ourMagic())})
}

// ourMagic is the magic number echoes carry: zero when not negotiated
// (RFC 1661 §5.8).
func (l *Link) ourMagic() uint32 {
	if !l.askMagic {
		return 0
	}
	return l.magic
}

func (l *Link) retry(proto uint16, c *cp) {
	if c.ackedUs {
		return
	}
	if c.ticks++; c.ticks < restartTicks {
		return
	}
	if c.tries >= maxConfigure {
		name := "LCP"
		if proto == ProtoIPCP {
			name = "IPCP"
		}
		l.die(fmt.Errorf("%w: %s", ErrTimeout, name))
		return
	}
	l.sendConfReq(proto)
}

// sendConfReq sends our Configure-Request for proto with what we ask for.
func (l *Link) sendConfReq(proto uint16) {
	var data []byte
	c := &l.lcp
	if proto == ProtoLCP {
		if l.askMRU {
			data = appendOption(data, Option{1, u16(uint16(l.mru))})
		}
		if l.askMagic {
			data = appendOption(data, Option{5, u32(l.magic)})
		}
	} else {
		c = &l.ipcp
		data = appendOption(data, Option{3, l.local.AsSlice()})
		for i, t := range []uint8{129, 131} {
			if l.askDNS[i] {
				data = appendOption(data, Option{t, l.dns[i].AsSlice()})
			}
		}
	}
	c.id = l.nextID()
	c.ticks = 0
	c.tries++
	l.send(proto, Packet{Code: ConfReq, ID: c.id, Data: data})
}

// Input handles one control frame from the peer (IP frames are the
// caller's). It returns an error for a frame it dropped as malformed.
func (l *Link) Input(b []byte) error {
	proto, info, err := Decode(b)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Phase() == PhaseDead {
		return nil
	}
	switch proto {
	case ProtoLCP:
		return l.inputLCP(info)
	case ProtoPAP:
		return l.inputPAP(info)
	case ProtoCHAP:
		return l.inputCHAP(info)
	case ProtoIPCP:
		return l.inputIPCP(info)
	}
	// Any other protocol (CCP, IPV6CP, IP before IPCP is up, …) is
	// refused once LCP is open (RFC 1661 §5.7), dropped before.
	if l.Phase() >= PhaseAuthenticate && l.Phase() != PhaseTerminate {
		data := append(u16(proto), info...)
		if max := l.peerMRU - 6; len(data) > max {
			data = data[:max]
		}
		l.send(ProtoLCP, Packet{Code: ProtoRej, ID: l.nextID(), Data: data})
	}
	return nil
}

func (l *Link) inputLCP(info []byte) error {
	p, err := ParsePacket(info)
	if err != nil {
		return err
	}
	switch p.Code {
	case ConfReq:
		return l.peerConfReq(ProtoLCP, p)
	case ConfAck:
		if p.ID == l.lcp.id && l.Phase() == PhaseEstablish {
			l.lcp.ackedUs = true
			l.lcpProgress()
		}
	case ConfNak, ConfRej:
		if p.ID != l.lcp.id || l.Phase() != PhaseEstablish {
			return nil
		}
		opts, err := ParseOptions(p.Data)
		if err != nil {
			return err
		}
		for _, o := range opts {
			switch o.Type {
			case 1:
				if p.Code == ConfRej {
					l.askMRU = false
				} else if len(o.Data) == 2 {
					if v := int(binary.BigEndian.Uint16(o.Data)); v >= 128 && v <= 1500 {
						l.mru = v
					}
				}
			case 5:
				if p.Code == ConfRej {
					l.askMagic = false
				} else {
					l.magic = l.newMagic()
				}
			}
		}
		l.sendConfReq(ProtoLCP)
	case TermReq:
		l.send(ProtoLCP, Packet{Code: TermAck, ID: p.ID})
		if l.Phase() == PhaseTerminate {
			l.die(nil)
		} else {
			l.die(ErrTerminated)
		}
	case TermAck:
		if l.Phase() == PhaseTerminate {
			l.die(nil)
		}
	case EchoReq:
		if l.Phase() >= PhaseAuthenticate && l.Phase() != PhaseTerminate {
			data := append(u32(l.magic), p.Data[min(4, len(p.Data)):]...)
			l.send(ProtoLCP, Packet{Code: EchoRep, ID: p.ID, Data: data})
		}
	case EchoRep:
		// Our own magic number back is a looped-back line, not the peer.
		if len(p.Data) < 4 || l.ourMagic() == 0 || binary.BigEndian.Uint32(p.Data) != l.magic {
			l.echoPending = 0
		}
	case DiscardReq, CodeRej:
	case ProtoRej:
		if len(p.Data) >= 2 && binary.BigEndian.Uint16(p.Data) == ProtoIPCP {
			l.terminate(fmt.Errorf("%w: IPCP", ErrRefused))
		}
	default:
		l.send(ProtoLCP, Packet{Code: CodeRej, ID: l.nextID(), Data: info[:min(len(info), l.peerMRU-4)]})
	}
	return nil
}

// lcpProgress moves on from Establish once both requests are acked.
func (l *Link) lcpProgress() {
	if !l.lcp.ackedUs || !l.lcp.ackedPeer || l.Phase() != PhaseEstablish {
		return
	}
	l.phase.Store(int32(PhaseAuthenticate))
	switch l.auth {
	case ProtoPAP:
		l.sendPAP()
	case ProtoCHAP: // wait for the challenge
	default:
		l.network()
	}
}

func (l *Link) network() {
	l.phase.Store(int32(PhaseNetwork))
	l.sendConfReq(ProtoIPCP)
}

// peerConfReq answers the peer's Configure-Request for proto: a Reject of
// what gretun does not know, else a Nak of what it wants otherwise, else
// an Ack.
func (l *Link) peerConfReq(proto uint16, p Packet) error {
	opts, err := ParseOptions(p.Data)
	if err != nil {
		return err
	}
	var rej, nak []byte
	mru, auth, alg, peer := 1500, uint16(0), uint8(0), l.peer
	for _, o := range opts {
		if proto == ProtoIPCP {
			switch {
			case o.Type == 3 && len(o.Data) == 4 && !bytes.Equal(o.Data, []byte{0, 0, 0, 0}):
				peer = netip.AddrFrom4([4]byte(o.Data))
			default: // IP-Compression (VJ), a zero address, or unknown
				rej = appendOption(rej, o)
			}
			continue
		}
		switch o.Type {
		case 1: // MRU
			if len(o.Data) != 2 {
				rej = appendOption(rej, o)
				continue
			}
			mru = int(binary.BigEndian.Uint16(o.Data))
		case 2, 7, 8: // ACCM, PFC, ACFC: nothing to do without HDLC framing
		case 3: // authentication protocol
			a, ok := l.acceptAuth(o.Data)
			if !ok {
				nak = appendOption(nak, l.preferredAuth())
				continue
			}
			auth = a
			if a == ProtoCHAP {
				alg = o.Data[2]
			}
		case 5: // magic number
			if len(o.Data) != 4 {
				rej = appendOption(rej, o)
			} else if binary.BigEndian.Uint32(o.Data) == l.magic {
				nak = appendOption(nak, Option{5, u32(l.newMagic())}) // a looped-back link, or a coincidence
			}
		default:
			rej = appendOption(rej, o)
		}
	}
	c := &l.lcp
	if proto == ProtoIPCP {
		c = &l.ipcp
	}
	switch {
	case len(rej) > 0:
		l.send(proto, Packet{Code: ConfRej, ID: p.ID, Data: rej})
		return nil
	case len(nak) > 0:
		l.send(proto, Packet{Code: ConfNak, ID: p.ID, Data: nak})
		return nil
	}
	l.send(proto, Packet{Code: ConfAck, ID: p.ID, Data: p.Data})
	c.ackedPeer = true
	if proto == ProtoLCP {
		l.peerMRU, l.auth, l.chapAlg = mru, auth, alg
		l.lcpProgress()
	} else {
		l.peer = peer
		l.ipcpProgress()
	}
	return nil
}

// acceptAuth returns the protocol of an authentication option gretun
// accepts.
func (l *Link) acceptAuth(d []byte) (uint16, bool) {
	if len(d) < 2 {
		return 0, false
	}
	switch a := binary.BigEndian.Uint16(d); {
	case a == ProtoPAP && len(d) == 2 && l.cfg.Allow&AuthPAP != 0:
		return a, true
	case a == ProtoCHAP && len(d) == 3 && d[2] == chapMD5 && l.cfg.Allow&AuthCHAPMD5 != 0:
		return a, true
	case a == ProtoCHAP && len(d) == 3 && d[2] == chapMSv2 && l.cfg.Allow&AuthMSCHAPv2 != 0:
		return a, true
	}
	return 0, false
}

// preferredAuth is the Nak's suggestion: CHAP-MD5, MS-CHAPv2, PAP, the
// first one allowed.
func (l *Link) preferredAuth() Option {
	switch {
	case l.cfg.Allow&AuthCHAPMD5 != 0:
		return Option{3, []byte{0xC2, 0x23, chapMD5}}
	case l.cfg.Allow&AuthMSCHAPv2 != 0:
		return Option{3, []byte{0xC2, 0x23, chapMSv2}}
	}
	return Option{3, []byte{0xC0, 0x23}}
}

// sendPAP sends an Authenticate-Request: peer ID and password.
func (l *Link) sendPAP() {
	data := append([]byte{uint8(len(l.cfg.User))}, l.cfg.User...)
	data = append(append(data, uint8(len(l.cfg.Password))), l.cfg.Password...)
	l.authID = l.nextID()
	l.authTicks = 0
	l.authTries++
	l.send(ProtoPAP, Packet{Code: 1, ID: l.authID, Data: data})
}

func (l *Link) inputPAP(info []byte) error {
	p, err := ParsePacket(info)
	if err != nil {
		return err
	}
	if l.Phase() != PhaseAuthenticate || l.auth != ProtoPAP || p.ID != l.authID {
		return nil
	}
	switch p.Code {
	case 2: // Authenticate-Ack
		l.network()
	case 3: // Authenticate-Nak
		l.terminate(fmt.Errorf("%w (PAP): %s", ErrAuthFailed, papMessage(p.Data)))
	}
	return nil
}

// papMessage returns the message of a PAP Ack or Nak, printable.
func papMessage(d []byte) string {
	if len(d) < 1 || int(d[0]) > len(d)-1 {
		return ""
	}
	return printable(d[1 : 1+d[0]])
}

func printable(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			out = append(out, c)
		}
	}
	return string(out)
}

func (l *Link) inputCHAP(info []byte) error {
	p, err := ParsePacket(info)
	if err != nil {
		return err
	}
	if l.auth != ProtoCHAP {
		return nil
	}
	switch p.Code {
	case 1: // Challenge; also later, to re-authenticate
		if len(p.Data) < 1 || int(p.Data[0]) > len(p.Data)-1 || p.Data[0] == 0 {
			return ErrLength
		}
		if l.Phase() < PhaseAuthenticate || l.Phase() == PhaseTerminate {
			return nil
		}
		challenge := p.Data[1 : 1+p.Data[0]]
		var value []byte
		if l.chapAlg == chapMSv2 {
			if len(challenge) != 16 {
				return ErrLength
			}
			value = l.msResponse(challenge)
		} else {
			h := md5.New()
			h.Write([]byte{p.ID})
			h.Write([]byte(l.cfg.Password))
			h.Write(challenge)
			value = h.Sum(nil)
		}
		data := append([]byte{uint8(len(value))}, value...)
		l.authID = p.ID
		l.send(ProtoCHAP, Packet{Code: 2, ID: p.ID, Data: append(data, l.cfg.User...)})
	case 3: // Success
		if p.ID != l.authID || l.Phase() != PhaseAuthenticate {
			return nil
		}
		if l.chapAlg == chapMSv2 && !checkAuthenticator(p.Data, l.msAuthResp) {
			// The server does not know the password: not the server.
			l.terminate(fmt.Errorf("%w (MS-CHAPv2): the server's authenticator response is wrong", ErrAuthFailed))
			return nil
		}
		l.network()
	case 4: // Failure
		if p.ID == l.authID && l.Phase() != PhaseTerminate {
			name, msg := "CHAP", printable(p.Data)
			if l.chapAlg == chapMSv2 {
				name = "MS-CHAPv2"
				// "E=691 R=1 C=… V=0 M=Access denied": the message, then the error code.
				if e, m, ok := strings.Cut(msg, " M="); ok {
					code, _, _ := strings.Cut(e, " ")
					msg = m + " (" + code + ")"
				}
			}
			l.terminate(fmt.Errorf("%w (%s): %s", ErrAuthFailed, name, msg))
		}
	}
	return nil
}

// msResponse is the 49-byte MS-CHAPv2 Response value for the server's
// challenge: a peer challenge, 8 zero bytes, the NT-Response, flags 0.
func (l *Link) msResponse(auth []byte) []byte {
	peer := make([]byte, 0, 16)
	for len(peer) < 16 {
		peer = binary.BigEndian.AppendUint32(peer, l.cfg.Magic())
	}
	nt := ntResponse(auth, peer, l.cfg.User, l.cfg.Password)
	l.msAuthResp = authenticatorResponse(l.cfg.Password, nt, peer, auth, l.cfg.User)
	value := append(peer, make([]byte, 8)...)
	return append(append(value, nt...), 0)
}

func (l *Link) inputIPCP(info []byte) error {
	p, err := ParsePacket(info)
	if err != nil {
		return err
	}
	if l.Phase() < PhaseNetwork || l.Phase() == PhaseTerminate {
		return nil // RFC 1661: an NCP waits for the network phase
	}
	switch p.Code {
	case ConfReq:
		return l.peerConfReq(ProtoIPCP, p)
	case ConfAck:
		if p.ID == l.ipcp.id {
			l.ipcp.ackedUs = true
			l.ipcpProgress()
		}
	case ConfNak, ConfRej:
		if p.ID != l.ipcp.id || l.ipcp.ackedUs {
			return nil
		}
		opts, err := ParseOptions(p.Data)
		if err != nil {
			return err
		}
		for _, o := range opts {
			i := -1
			switch o.Type {
			case 3:
				if p.Code == ConfRej {
					l.terminate(fmt.Errorf("%w: the server assigns no IPv4 address", ErrRefused))
					return nil
				}
				if len(o.Data) == 4 {
					l.local = netip.AddrFrom4([4]byte(o.Data))
				}
			case 129:
				i = 0
			case 131:
				i = 1
			}
			if i >= 0 {
				if p.Code == ConfRej {
					l.askDNS[i] = false
				} else if len(o.Data) == 4 {
					l.dns[i] = netip.AddrFrom4([4]byte(o.Data))
				}
			}
		}
		l.sendConfReq(ProtoIPCP)
	case TermReq:
		l.send(ProtoIPCP, Packet{Code: TermAck, ID: p.ID})
		l.terminate(ErrTerminated)
	}
	return nil
}

func (l *Link) ipcpProgress() {
	if l.ipcp.ackedUs && l.ipcp.ackedPeer && l.Phase() == PhaseNetwork {
		if !l.peer.IsValid() || l.local.IsUnspecified() {
			l.terminate(fmt.Errorf("%w: IPCP settled no addresses", ErrRefused))
			return
		}
		l.phase.Store(int32(PhaseOpened))
		close(l.up)
	}
}
