package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gretun/gretun/status"
)

var abstractCount atomic.Int64

// abstractName returns an abstract socket name no other test uses.
func abstractName() string {
	return fmt.Sprintf("@gretun-test-%d-%d", os.Getpid(), abstractCount.Add(1))
}

// serve listens on path and serves h until the test ends.
func serve(t *testing.T, path string, h Handler) {
	t.Helper()
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, l, h)
}

// serveOn serves h on l until the test ends.
func serveOn(t *testing.T, l net.Listener, h Handler) {
	done := make(chan struct{})
	go func() { Serve(l, h, nil); close(done) }()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
}

func TestCall(t *testing.T) {
	for _, path := range []string{abstractName(), filepath.Join(t.TempDir(), "ctl.sock")} {
		var mu sync.Mutex
		var got []Request
		serve(t, path, func(r Request) Response {
			mu.Lock()
			got = append(got, r)
			mu.Unlock()
			switch r.Op {
			case "show":
				return Response{Tunnels: []status.Tunnel{{Line: "netb: gre/ip remote 192.0.2.2 local 192.0.2.1 ttl inherit", MTU: 1476}}}
			case "add":
				return Response{}
			}
			return Response{Error: fmt.Sprintf("tunnel %s %s: no tunnel named %q", r.Op, r.Name, r.Name)}
		})
		resp, err := Call(path, Request{Op: "show"})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if resp.Version != Version || len(resp.Tunnels) != 1 || resp.Tunnels[0].MTU != 1476 {
			t.Errorf("%s: show answered %+v", path, resp)
		}
		if _, err := Call(path, Request{Op: "add", Name: "netb", Words: []string{"mode", "gre"}}); err != nil {
			t.Errorf("%s: add: %v", path, err)
		}
		_, err = Call(path, Request{Op: "del", Name: "x"})
		if err == nil || err.Error() != `tunnel del x: no tunnel named "x"` {
			t.Errorf("%s: del: error %v, want the handler's", path, err)
		}
		want := []Request{
			{Version: Version, Op: "show"},
			{Version: Version, Op: "add", Name: "netb", Words: []string{"mode", "gre"}},
			{Version: Version, Op: "del", Name: "x"},
		}
		mu.Lock()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: requests (-want +got)\n%s", path, diff)
		}
		mu.Unlock()
	}
}

// TestServerRefuses sends what our client never sends: the server answers
// with one line and never calls the handler.
func TestServerRefuses(t *testing.T) {
	path := abstractName()
	serve(t, path, func(r Request) Response {
		t.Errorf("handler called with %+v", r)
		return Response{}
	})
	for _, tc := range []struct{ send, want string }{
		{`{"version":2,"op":"show"}`, "protocol version 2 is not 1"},
		{`{"op":"show"}`, "protocol version 0 is not 1"},
		{`{"version":1,"op":`, "bad request"},
		{`["not", "an", "object"]`, "bad request"},
		{``, "bad request"},
	} {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(tc.send))
		c.(*net.UnixConn).CloseWrite()
		var resp Response
		err = json.NewDecoder(c).Decode(&resp)
		c.Close()
		if err != nil {
			t.Errorf("%q: reading the answer: %v", tc.send, err)
			continue
		}
		if !strings.Contains(resp.Error, tc.want) || strings.Contains(resp.Error, "\n") || resp.Version != Version {
			t.Errorf("%q: answer %+v, want version %d and one line containing %q", tc.send, resp, Version, tc.want)
		}
	}
}

func TestListenInUse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "gretun")
	for _, path := range []string{abstractName(), filepath.Join(dir, "ctl.sock")} {
		l, err := Listen(path)
		if err != nil {
			t.Fatal(err)
		}
		go Serve(l, func(Request) Response { return Response{} }, nil)
		if l2, err := Listen(path); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), path) {
			t.Errorf("second Listen(%s): %v, want ErrInUse naming the socket", path, err)
			if l2 != nil {
				l2.Close()
			}
		}
		// The first listener still answers.
		if _, err := Call(path, Request{Op: "show"}); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		l.Close()
		// Free again once closed.
		l, err = Listen(path)
		if err != nil {
			t.Errorf("Listen(%s) after Close: %v", path, err)
		} else {
			l.Close()
		}
	}
	// A socket file is for root only, in a directory made for it.
	path := filepath.Join(dir, "ctl.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket %s: %v %v, want a socket with mode 0600", path, fi.Mode(), err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory %s: %v %v, want mode 0700", dir, fi.Mode(), err)
	}
}

// TestListenStale: a socket file left by a daemon killed with SIGKILL is
// replaced; a file that is not a socket is left alone.
func TestListenStale(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the stale socket file is gone already: %v", err)
	}
	serve(t, path, func(Request) Response { return Response{} })
	if _, err := Call(path, Request{Op: "show"}); err != nil {
		t.Errorf("Call after replacing a stale socket: %v", err)
	}

	notSock := filepath.Join(t.TempDir(), "important")
	if err := os.WriteFile(notSock, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if l, err := Listen(notSock); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen on a regular file: %v, want an error", err)
		if l != nil {
			l.Close()
		}
	}
	if b, err := os.ReadFile(notSock); err != nil || string(b) != "keep me" {
		t.Errorf("Listen harmed a file that is not a socket: %q %v", b, err)
	}
}

func TestCallNoDaemon(t *testing.T) {
	for _, path := range []string{abstractName(), filepath.Join(t.TempDir(), "none.sock")} {
		_, err := Call(path, Request{Op: "show"})
		if err == nil || !strings.Contains(err.Error(), "no gretun daemon is listening on "+path) {
			t.Errorf("Call(%s) with no daemon: %v", path, err)
		}
	}
}

func TestServeReturnsOnClose(t *testing.T) {
	l, err := Listen(abstractName())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { Serve(l, func(Request) Response { return Response{} }, nil); close(done) }()
	l.Close()
	<-done
}

// TestPeerRefused connects as another user: the server answers with the
// refusal at once, before the client sends anything, reads nothing of what
// it sends, and closes; the handler never runs.
func TestPeerRefused(t *testing.T) {
	needRoot(t)
	l, read := countingListen(t, abstractName())
	serveOn(t, l, func(r Request) Response {
		t.Errorf("handler called for another user: %+v", r)
		return Response{}
	})
	path := l.Addr().String()
	for _, send := range []int{0, 1 << 20} {
		c, err := dialAs(65534, path)
		if err != nil {
			t.Fatal(err)
		}
		if send > 0 {
			// A valid start of a request, then more than the server reads;
			// this write ends when the server closes.
			go c.Write(append([]byte(`{"version":1,"op":"`), make([]byte, send)...))
		}
		// Generous: the server does not wait for the request (it used to
		// wait up to 30 s for it).
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var resp Response
		err = json.NewDecoder(c).Decode(&resp)
		if err != nil {
			t.Fatalf("sent %d bytes: reading the refusal: %v", send, err)
		}
		if want := "permission denied: uid 65534 may not control gretun (root only)"; resp.Error != want {
			t.Errorf("answer %+v, want %q", resp, want)
		}
		// Then the server has closed: EOF, or a reset if we had sent data.
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("sent %d bytes: after the refusal read %d bytes, %v; want the connection closed", send, n, err)
		}
		c.Close()
	}
	// Our own client shows the refusal, whether its request was sent
	// before the server closed or failed (EPIPE) after.
	for range 20 {
		err := asUser(65534, func() error {
			_, err := Call(path, Request{Op: "show"})
			return err
		})
		if want := "permission denied: uid 65534 may not control gretun (root only)"; err == nil || err.Error() != want {
			t.Fatalf("Call as uid 65534: %v, want %q", err, want)
		}
	}
	if n := read.Load(); n != 0 {
		t.Errorf("the server read %d bytes from refused peers, want none", n)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to connect as another user (CAP_SETUID)")
	}
}

// dialAs connects to path with effective uid uid.
func dialAs(uid int, path string) (net.Conn, error) {
	var c net.Conn
	err := asUser(uid, func() (err error) {
		c, err = net.Dial("unix", path)
		return err
	})
	return c, err
}

// asUser runs fn with effective uid uid on its thread: the sockets fn
// connects or listens on carry that uid (SO_PEERCRED records the thread's
// credentials). The thread is locked and thrown away afterwards.
func asUser(uid int, fn func() error) error {
	errc := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		keep := ^uintptr(0)    // -1: leave unchanged
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, keep, uintptr(uid), keep); e != 0 {
			errc <- e
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// countingListen listens on path and counts the bytes the server reads
// from every connection.
func countingListen(t *testing.T, path string) (net.Listener, *atomic.Int64) {
	t.Helper()
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: l}
	return cl, &cl.read
}

type countingListener struct {
	net.Listener
	read atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{c.(*net.UnixConn), &l.read}, nil
}

// countingConn is still a socket (SyscallConn) for SO_PEERCRED.
type countingConn struct {
	*net.UnixConn
	read *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.UnixConn.Read(p)
	c.read.Add(int64(n))
	return n, err
}
