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

	"github.com/gretun/gretun/tunnel"
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
	done := make(chan error, 1)
	go func() { done <- Serve(l, h) }()
	t.Cleanup(func() {
		l.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
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
				return Response{Tunnels: []tunnel.Status{{Line: "netb: gre/ip remote 192.0.2.2 local 192.0.2.1 ttl inherit", MTU: 1476}}}
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
		go Serve(l, func(Request) Response { return Response{} })
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
	done := make(chan error)
	go func() { done <- Serve(l, func(Request) Response { return Response{} }) }()
	l.Close()
	if err := <-done; err != nil {
		t.Errorf("Serve after Close: %v", err)
	}
}

// TestPeerRefused connects as another user: the server refuses before the
// handler runs, and the client reads the refusal (not a reset connection).
func TestPeerRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to connect as another user (CAP_SETUID)")
	}
	path := abstractName()
	serve(t, path, func(r Request) Response {
		t.Errorf("handler called for another user: %+v", r)
		return Response{}
	})
	for i, body := range []string{`{"version":1,"op":"show"}`, `{"version":1,"op":"add","name":"x","words":["mode","gre"]}`} {
		c, err := dialAs(65534, path)
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			// A slow client: the server must still wait for the request
			// before it answers and closes, or the client's write fails
			// (EPIPE) or its read is reset.
			time.Sleep(100 * time.Millisecond)
		}
		if _, err := c.Write([]byte(body + "\n")); err != nil {
			t.Errorf("sending the request: %v", err)
		}
		var resp Response
		err = json.NewDecoder(c).Decode(&resp)
		c.Close()
		if err != nil {
			t.Fatalf("reading the refusal: %v", err)
		}
		if want := "permission denied: uid 65534"; !strings.HasPrefix(resp.Error, want) {
			t.Errorf("answer %+v, want an error starting %q", resp, want)
		}
	}
}

// dialAs connects to path with effective uid uid. Only the connecting
// thread changes its credentials (SO_PEERCRED records the connecting
// thread's), and that thread is locked and thrown away afterwards.
func dialAs(uid int, path string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		keep := ^uintptr(0)    // -1: leave unchanged
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, keep, uintptr(uid), keep); e != 0 {
			ch <- result{nil, e}
			return
		}
		c, err := net.Dial("unix", path)
		syscall.RawSyscall(syscall.SYS_SETRESUID, keep, 0, keep)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}
