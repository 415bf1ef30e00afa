package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gretun/gretun/internal/testnet"
)

// ask sends raw bytes on a new connection to path and returns the answer.
func ask(t *testing.T, path string, send []byte) Response {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The server may stop reading and close before all is sent.
	go c.Write(send)
	// Generous, yet far below the 30 s the server once waited.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return resp
}

// TestOversizedRequest: the server stops reading at maxRequest bytes and
// answers with one line, whatever the peer keeps sending.
func TestOversizedRequest(t *testing.T) {
	l, read := countingListen(t, abstractName())
	serveOn(t, l, func(r Request) Response {
		t.Errorf("handler called with an oversized request")
		return Response{}
	})
	// A valid start, then a string of 1 MiB.
	send := append([]byte(`{"version":1,"op":"`), bytes.Repeat([]byte("a"), 1<<20)...)
	resp := ask(t, l.Addr().String(), send)
	if want := fmt.Sprintf("bad request: longer than %d bytes", maxRequest); resp.Error != want {
		t.Errorf("answer %+v, want %q", resp, want)
	}
	if n := read.Load(); n > maxRequest {
		t.Errorf("the server read %d bytes of one request, want at most %d", n, maxRequest)
	}
}

// testServer serves h on a new abstract socket with s's limits, changed by
// set, until the test ends.
func testServer(t *testing.T, h Handler, set func(*server)) (*server, string) {
	t.Helper()
	l, err := Listen(abstractName())
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(h, nil)
	set(s)
	done := make(chan struct{})
	go func() { s.serve(l); close(done) }()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return s, l.Addr().String()
}

func showHandler(Request) Response { return Response{} }

// TestIdleRequest: a peer that connects and sends nothing is answered and
// closed once the read time is up.
func TestIdleRequest(t *testing.T) {
	_, path := testServer(t, showHandler, func(s *server) { s.readTimeout = 50 * time.Millisecond })
	resp := ask(t, path, nil)
	if want := "bad request: not sent within 50ms"; resp.Error != want {
		t.Errorf("answer %+v, want %q", resp, want)
	}
}

// held reports the connections s serves now.
func (s *server) held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// waitHeld waits until s serves n connections.
func waitHeld(t *testing.T, s *server, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.held() != n {
		if time.Now().After(deadline) {
			t.Fatalf("the server holds %d connections, want %d", s.held(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// refusedAtOnce reads the answer a server sends without waiting for a
// request, or fails.
func refusedAtOnce(t *testing.T, c net.Conn, want string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		t.Fatalf("no answer before the request: %v", err)
	}
	if !strings.Contains(resp.Error, want) {
		t.Errorf("answer %+v, want an error containing %q", resp, want)
	}
}

// TestConnectionCaps runs a server as if the daemon's own user were 65534:
// that user may hold maxPerUser connections and no more, root is still
// served beside them up to maxConns, and a freed slot is usable again.
func TestConnectionCaps(t *testing.T) {
	needRoot(t)
	s, path := testServer(t, showHandler, func(s *server) {
		s.owner = 65534
		s.maxConns, s.maxPerUser = 6, 3
	})
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	dial := func(uid int) net.Conn {
		c, err := dialAs(uid, path)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
		return c
	}
	for range 3 {
		dial(65534)
	}
	waitHeld(t, s, 3)
	refusedAtOnce(t, dial(65534), "control socket busy: too many connections from uid 65534")
	// Other users are refused as ever and hold nothing.
	refusedAtOnce(t, dial(65533), "permission denied: uid 65533 may not control gretun (root and uid 65534 only)")
	if _, err := Call(path, Request{Op: "show"}); err != nil {
		t.Errorf("root beside a capped user: %v", err)
	}
	for range 3 {
		dial(0)
	}
	waitHeld(t, s, 6)
	refusedAtOnce(t, dial(0), "control socket busy: too many connections from uid 0")
	// One of 65534's connections ends: its slot serves again.
	idle[0].Close()
	waitHeld(t, s, 5)
	var resp Response
	err := asUser(65534, func() (err error) {
		resp, err = Call(path, Request{Op: "show"})
		return err
	})
	if err != nil || resp.Version != Version {
		t.Errorf("uid 65534 after a slot was freed: %+v %v", resp, err)
	}
}

// TestRefusedFlood holds thousands of idle connections from a user the
// server does not serve: each is refused at once, the server holds none of
// them, and root is served throughout.
func TestRefusedFlood(t *testing.T) {
	needRoot(t)
	s, path := testServer(t, showHandler, func(*server) {})
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	err := asUser(65534, func() error {
		for range 3000 {
			c, err := dial(path)
			if err != nil {
				return err
			}
			conns = append(conns, c)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("connection %d: %v", len(conns), err)
	}
	if _, err := Call(path, Request{Op: "show"}); err != nil {
		t.Errorf("root during the flood: %v", err)
	}
	for _, c := range conns[len(conns)-10:] {
		refusedAtOnce(t, c, "permission denied: uid 65534")
	}
	// Root's own connection is released just after its answer is sent:
	// wait for that; a refused user's would never be.
	waitHeld(t, s, 0)
}

// flakyListener fails its first n Accepts with err.
type flakyListener struct {
	net.Listener
	mu  sync.Mutex
	n   int
	err error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	fail := l.n > 0
	l.n--
	l.mu.Unlock()
	if fail {
		return nil, &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", l.err)}
	}
	return l.Listener.Accept()
}

// TestAcceptErrorsKeepServing: out of file descriptors (EMFILE, ENFILE),
// Serve pauses and tries again, logging once, instead of returning and
// leaving the daemon deaf.
func TestAcceptErrorsKeepServing(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE} {
		l, err := Listen(abstractName())
		if err != nil {
			t.Fatal(err)
		}
		var log testnet.Buffer
		done := make(chan struct{})
		go func() {
			Serve(&flakyListener{Listener: l, n: 5, err: errno}, showHandler, slog.New(slog.NewTextHandler(&log, nil)))
			close(done)
		}()
		called := make(chan error, 1)
		go func() {
			_, err := Call(l.Addr().String(), Request{Op: "show"})
			called <- err
		}()
		select {
		case err := <-called:
			if err != nil {
				t.Errorf("%v: Call: %v", errno, err)
			}
		case <-done:
			t.Errorf("%v: Serve returned", errno)
		case <-time.After(30 * time.Second):
			t.Errorf("%v: no answer within 30 s", errno)
		}
		l.Close()
		<-done
		got := log.String()
		if strings.Count(got, "accept failed") != 1 || !strings.Contains(got, errno.Error()) {
			t.Errorf("%v: log %q, want one line naming the error", errno, got)
		}
	}
}

// listenAs listens on path as user uid, answering every request with an
// empty success, as an impostor would; it returns how many bytes it read.
func listenAs(t *testing.T, uid int, path string) *countingListener {
	t.Helper()
	var l net.Listener
	err := asUser(uid, func() (err error) {
		l, err = net.Listen("unix", path)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: l}
	go func() {
		for {
			c, err := cl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				var req Request
				json.NewDecoder(c).Decode(&req)
				json.NewEncoder(c).Encode(Response{Version: Version})
			}()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return cl
}

// TestImpostor: another user has bound the socket's name first. The client
// sends it nothing and names it; a daemon that wants the name says whose it
// is.
func TestImpostor(t *testing.T) {
	needRoot(t)
	path := abstractName()
	imp := listenAs(t, 65534, path)
	owner := fmt.Sprintf("control socket %s is held by uid 65534 (pid %d), not by root", path, os.Getpid())
	_, err := Call(path, Request{Op: "add", Name: "x", Words: []string{"mode", "gre"}})
	if err == nil || err.Error() != owner+": refusing to talk to it" {
		t.Errorf("Call to an impostor: %v, want %q", err, owner+": refusing to talk to it")
	}
	if l, err := Listen(path); err == nil || !strings.HasPrefix(err.Error(), owner+": cannot serve there") {
		t.Errorf("Listen where an impostor listens: %v, want an error starting %q", err, owner)
		if l != nil {
			l.Close()
		}
	}
	if n := imp.read.Load(); n != 0 {
		t.Errorf("the impostor read %d bytes", n)
	}
}

// TestCallWaitsForBacklog: a server whose backlog is full (others' flood
// not yet refused) is waited for, not given up at once.
func TestCallWaitsForBacklog(t *testing.T) {
	path := abstractName()
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), path)
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// Fill the backlog.
	full := false
	for i := 0; i < 10 && !full; i++ {
		c, err := net.Dial("unix", path)
		if err != nil {
			if !errors.Is(err, syscall.EAGAIN) {
				t.Fatal(err)
			}
			full = true
			break
		}
		defer c.Close()
	}
	if !full {
		t.Fatal("the backlog of 1 never filled")
	}
	called := make(chan error, 1)
	go func() {
		_, err := Call(path, Request{Op: "show"})
		called <- err
	}()
	select {
	case err := <-called:
		t.Fatalf("Call gave up on a full backlog: %v", err)
	case <-time.After(100 * time.Millisecond): // Call is waiting
	}
	serveOn(t, l, showHandler)
	if err := <-called; err != nil {
		t.Errorf("Call to a server with a full backlog: %v", err)
	}
}
