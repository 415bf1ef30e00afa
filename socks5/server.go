// Package socks5 is a SOCKS5 proxy server (RFC 1928: CONNECT and UDP
// ASSOCIATE; RFC 1929 username/password authentication) whose
// connections go wherever its Net takes them: into a tunnel's userspace
// stack in gretun (netstack), over the host's network in tests.
//
// It does not serve BIND (answered "command not supported"), GSSAPI, or
// fragmented UDP datagrams (dropped, as RFC 1928 §7 allows).
package socks5

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
)

// Net is where the proxy's connections go.
type Net interface {
	// DialContext connects to host:port over "tcp"; names are resolved
	// by the Net.
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
	// ListenUDP opens an unconnected UDP socket on port (0: any).
	ListenUDP(port uint16) (net.PacketConn, error)
	// Resolve looks a name up.
	Resolve(ctx context.Context, host string) (netip.Addr, error)
}

// Timeouts: a client has handshakeTimeout to authenticate and ask, and a
// CONNECT gets an answer within dialTimeout even from a black hole.
const (
	handshakeTimeout = 10 * time.Second
	dialTimeout      = 20 * time.Second
)

// Server serves SOCKS5 clients. Set its fields before Serve.
type Server struct {
	Net Net
	// User and Pass, when User is set, are the only credentials accepted
	// (RFC 1929); without them clients need no authentication.
	User, Pass string
	Log        *slog.Logger
	// DialTimeout bounds a CONNECT's dial (dialTimeout when 0): the
	// client gets "TTL expired" rather than waiting on a black hole.
	DialTimeout time.Duration
	// HandshakeTimeout bounds a client's method, authentication and
	// request (handshakeTimeout when 0); the dial that follows has its own.
	HandshakeTimeout time.Duration

	mu     sync.Mutex
	base   context.Context // done once closed
	cancel context.CancelFunc
	conns  map[net.Conn]struct{}
	lns    map[net.Listener]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Serve accepts clients on ln until Close, each on its own goroutine.
func (s *Server) Serve(ln net.Listener) error {
	if !s.track(ln, nil) {
		ln.Close()
		return net.ErrClosed
	}
	defer s.untrack(ln, nil)
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				time.Sleep(10 * time.Millisecond) // out of descriptors: let connections end
				continue
			}
			return err
		}
		if !s.track(nil, c) {
			c.Close()
			return nil
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(nil, c)
			s.serve(c)
		}()
	}
}

// Close stops every Serve and ends every client's connection, and
// returns once their goroutines are gone.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	if s.cancel != nil {
		s.cancel()
	}
	for ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) track(ln net.Listener, c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.init()
	if ln != nil {
		s.lns[ln] = struct{}{}
	} else {
		s.conns[c] = struct{}{}
	}
	return true
}

func (s *Server) untrack(ln net.Listener, c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ln != nil {
		delete(s.lns, ln)
	} else {
		delete(s.conns, c)
	}
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// serve speaks to one client: method, authentication, request.
func (s *Server) serve(c net.Conn) {
	defer c.Close()
	log := s.log().With("client", c.RemoteAddr().String())
	hs := s.HandshakeTimeout
	if hs == 0 {
		hs = handshakeTimeout
	}
	c.SetDeadline(time.Now().Add(hs))
	if err := s.authenticate(c); err != nil {
		log.Warn("socks5: handshake failed", "err", err)
		return
	}
	req, err := ReadRequest(c)
	if err != nil {
		var pe *protoError
		if errors.As(err, &pe) && pe.reply != 0 {
			c.Write(appendReply(nil, pe.reply, Addr{}))
		}
		log.Warn("socks5: bad request", "err", err)
		return
	}
	// The handshake is over: a dial may take longer than it was given,
	// and its reply must still be written.
	c.SetDeadline(time.Time{})
	log = log.With("cmd", req.Cmd, "dest", req.Dest.String())
	switch req.Cmd {
	case cmdConnect:
		s.connect(c, req, log)
	case cmdAssociate:
		s.associate(c, req, log)
	default:
		c.Write(appendReply(nil, ReplyCommandUnsupported, Addr{}))
		log.Warn("socks5: command not supported")
	}
}

// authenticate negotiates the method (RFC 1928 §3) and, with a user set,
// checks the client's username and password (RFC 1929).
func (s *Server) authenticate(c net.Conn) error {
	var h [2]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return err
	}
	if h[0] != version5 {
		return &protoError{0, "not SOCKS5"}
	}
	methods := make([]byte, h[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return err
	}
	want := byte(methodNone)
	if s.User != "" {
		want = methodPass
	}
	offered := false
	for _, m := range methods {
		offered = offered || m == want
	}
	if !offered {
		c.Write([]byte{version5, methodNoAcceptable})
		return &protoError{0, "no acceptable authentication method offered"}
	}
	if _, err := c.Write([]byte{version5, want}); err != nil {
		return err
	}
	if want == methodNone {
		return nil
	}
	var buf [256]byte
	if _, err := io.ReadFull(c, buf[:2]); err != nil {
		return err
	}
	if buf[0] != authVersion {
		c.Write([]byte{authVersion, 1})
		return &protoError{0, "bad authentication version"}
	}
	user := make([]byte, buf[1])
	if _, err := io.ReadFull(c, user); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, buf[:1]); err != nil {
		return err
	}
	pass := make([]byte, buf[0])
	if _, err := io.ReadFull(c, pass); err != nil {
		return err
	}
	okUser := subtle.ConstantTimeCompare(user, []byte(s.User))
	okPass := subtle.ConstantTimeCompare(pass, []byte(s.Pass))
	if okUser&okPass != 1 {
		c.Write([]byte{authVersion, 1})
		return errors.New("authentication failed for user " + quote(user))
	}
	_, err := c.Write([]byte{authVersion, 0})
	return err
}

func quote(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	return `"` + string(b) + `"`
}

// connect serves CONNECT: dial, reply, relay.
func (s *Server) connect(c net.Conn, req Request, log *slog.Logger) {
	timeout := s.DialTimeout
	if timeout == 0 {
		timeout = dialTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	// Closing the client's connection does not end a dial in progress;
	// Close's does.
	stop := context.AfterFunc(s.closing(), cancel)
	out, err := s.Net.DialContext(ctx, "tcp", req.Dest.String())
	stop()
	cancel()
	if err != nil {
		code := ReplyFor(err)
		c.Write(appendReply(nil, code, Addr{}))
		log.Warn("socks5: connect failed", "reply", code, "err", err)
		return
	}
	defer out.Close()
	// Close ends the relay from both ends: a read from the far side
	// would not end with the client's connection.
	if !s.track(nil, out) {
		return
	}
	defer s.untrack(nil, out)
	bound := addrOf(out.LocalAddr())
	if _, err := c.Write(appendReply(nil, ReplySucceeded, bound)); err != nil {
		return
	}
	Relay(c, out)
}

// closing is a context done once the server is closed.
func (s *Server) closing() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	return s.base
}

// init makes the server's tables; s.mu is held.
func (s *Server) init() {
	if s.conns == nil {
		s.conns, s.lns = map[net.Conn]struct{}{}, map[net.Listener]struct{}{}
		s.base, s.cancel = context.WithCancel(context.Background())
	}
}

// Relay copies both ways between a and b until both directions end,
// passing a half close on (CloseWrite) where the connection has one.
func Relay(a, b net.Conn) {
	done := make(chan struct{})
	go func() {
		io.Copy(b, a)
		closeWrite(b)
		close(done)
	}()
	io.Copy(a, b)
	closeWrite(a)
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		return
	}
	c.Close()
}

// addrOf is a net.Addr as a reply's bound address.
func addrOf(a net.Addr) Addr {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	}
	return Addr{IP: ap.Addr().Unmap(), Port: ap.Port()}
}

// ReplyFor is the reply code for a failed connection: what the target's
// network said (refused, unreachable) where it said it.
func ReplyFor(err error) byte {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReplyConnectionRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.As(err, &dnsErr):
		return ReplyHostUnreachable
	case errors.Is(err, syscall.ENETUNREACH):
		return ReplyNetworkUnreachable
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return ReplyTTLExpired
	}
	return ReplyGeneralFailure
}
