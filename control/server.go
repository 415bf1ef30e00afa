package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// Limits of the server. Requests are a few hundred bytes of JSON sent at
// once, so these never touch a real client; they bound what a local user
// can make the daemon hold.
const (
	maxRequest   = 16 << 10         // bytes read of one request
	readTimeout  = 10 * time.Second // to send the whole request
	writeTimeout = 10 * time.Second // to take the whole answer
	maxConns     = 64               // connections served at once
	maxPerUser   = 16               // of them from one uid other than root
	logEvery     = 10 * time.Second // at most one warning of each kind
)

// Handler executes requests.
type Handler func(Request) Response

// Serve answers requests on l until it is closed. It returns once the
// answers in flight are sent, so a handler may ask the caller to exit.
//
// A peer that is neither root nor the daemon's own user is refused before
// anything is read from it, with a one-line answer, and closed at once: it
// holds nothing in the daemon. Admitted peers are capped in all and per
// uid, root by the total only: as a non-root daemon's own user may hold at
// most maxPerUser, root always has the rest to itself. Accept errors (EMFILE, ENFILE, …) are logged and retried
// with a growing pause: the socket is the only way to reach the daemon, so
// Serve never gives up on it while it is open. log may be nil.
func Serve(l net.Listener, h Handler, log *slog.Logger) {
	newServer(h, log).serve(l)
}

// server holds the accounting of one Serve; tests change its limits.
type server struct {
	h           Handler
	owner       uint32 // the daemon's own uid: served as root is
	maxConns    int
	maxPerUser  int
	maxRequest  int
	readTimeout time.Duration

	// The warnings, written by the accept loop only.
	refusedLog, busyLog, acceptLog rateLog

	mu      sync.Mutex
	conns   int
	perUser map[uint32]int
	wg      sync.WaitGroup
}

func newServer(h Handler, log *slog.Logger) *server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &server{
		h:           h,
		owner:       uint32(os.Geteuid()),
		maxConns:    maxConns,
		maxPerUser:  maxPerUser,
		maxRequest:  maxRequest,
		readTimeout: readTimeout,
		refusedLog:  rateLog{log: log},
		busyLog:     rateLog{log: log},
		acceptLog:   rateLog{log: log},
		perUser:     map[uint32]int{},
	}
}

func (s *server) serve(l net.Listener) {
	defer s.wg.Wait()
	var pause time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// As net/http's Server.Serve: 5 ms, doubling up to 1 s.
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			s.acceptLog.warn("control socket: accept failed, retrying", "err", err.Error(), "pause", pause.String())
			time.Sleep(pause)
			continue
		}
		pause = 0
		s.admit(c)
	}
}

// admit checks who is calling before reading anything; it either starts
// serving c or answers with the refusal and closes c.
func (s *server) admit(c net.Conn) {
	cred, err := peerCred(c)
	switch {
	case err != nil:
		err = fmt.Errorf("control socket: reading the caller's credentials: %v", err)
	case cred.Uid != 0 && cred.Uid != s.owner:
		s.refusedLog.warn("control socket: refused a user", "uid", cred.Uid, "pid", cred.Pid)
		err = fmt.Errorf("permission denied: uid %d may not control gretun (%s)", cred.Uid, s.whoMay())
	case !s.take(cred.Uid):
		s.busyLog.warn("control socket: too many connections, refusing more", "uid", cred.Uid, "pid", cred.Pid)
		err = fmt.Errorf("control socket busy: too many connections from uid %d, try again", cred.Uid)
	}
	if err != nil {
		// The answer fits in an empty socket buffer: this never blocks,
		// and the deadline makes sure of it.
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		json.NewEncoder(c).Encode(Response{Version: Version, Error: err.Error()})
		c.Close()
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.release(cred.Uid)
		s.serveConn(c)
	}()
}

func (s *server) whoMay() string {
	if s.owner == 0 {
		return "root only"
	}
	return fmt.Sprintf("root and uid %d only", s.owner)
}

// take counts a connection from uid, or reports that the limit is reached.
func (s *server) take(uid uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns >= s.maxConns || uid != 0 && s.perUser[uid] >= s.maxPerUser {
		return false
	}
	s.conns++
	s.perUser[uid]++
	return true
}

func (s *server) release(uid uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns--
	if s.perUser[uid]--; s.perUser[uid] == 0 {
		delete(s.perUser, uid)
	}
}

// errTooLarge ends a request longer than the server reads.
var errTooLarge = errors.New("request too large")

// limitReader is io.LimitReader that says why it stops.
type limitReader struct {
	r io.Reader
	n int
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errTooLarge
	}
	if len(p) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= n
	return n, err
}

func (s *server) serveConn(c net.Conn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(s.readTimeout))
	var req Request
	var resp Response
	switch err := json.NewDecoder(&limitReader{c, s.maxRequest}).Decode(&req); {
	case errors.Is(err, errTooLarge):
		resp.Error = fmt.Sprintf("bad request: longer than %d bytes", s.maxRequest)
	case errors.Is(err, os.ErrDeadlineExceeded):
		resp.Error = fmt.Sprintf("bad request: not sent within %v", s.readTimeout)
	case err != nil:
		resp.Error = fmt.Sprintf("bad request: %v", err)
	case req.Version != Version:
		resp.Error = fmt.Sprintf("protocol version %d is not %d: use the same gretun for the command and the daemon", req.Version, Version)
	default:
		resp = s.h(req)
	}
	resp.Version = Version
	c.SetWriteDeadline(time.Now().Add(writeTimeout))
	err := json.NewEncoder(c).Encode(resp)
	if resp.Stream != nil {
		stream(c, resp.Stream, err)
	}
}

// stream runs a response's stream on c until it ends, or until the client
// shuts its side down or goes away (a read on c returns), which ends ctx.
// After a failed response (sendErr) it runs with ctx already ended.
func stream(c net.Conn, fn func(context.Context, io.Writer) error, sendErr error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if sendErr != nil {
		cancel()
	} else {
		c.SetReadDeadline(time.Time{})
		go func() {
			io.Copy(io.Discard, io.LimitReader(c, 1)) // the client sends nothing more: any return is its end
			cancel()
		}()
	}
	c.SetWriteDeadline(time.Time{}) // the stream sets its own
	fn(ctx, c)
}

// rateLog writes a warning at most once per logEvery and says how many it
// held back in between.
type rateLog struct {
	log  *slog.Logger
	next time.Time
	held int
}

func (r *rateLog) warn(msg string, args ...any) {
	now := time.Now()
	if now.Before(r.next) {
		r.held++
		return
	}
	if r.held > 0 {
		args = append(args, "suppressed", r.held)
		r.held = 0
	}
	r.next = now.Add(logEvery)
	r.log.Warn(msg, args...)
}
