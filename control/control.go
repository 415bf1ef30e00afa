// Package control carries commands from the gretun command line to a
// running daemon over a unix socket: one small, versioned JSON request and
// one response per connection.
//
// There is one daemon per network namespace, as each namespace has its own
// kernel tunnels. A daemon run as root listens on RunDir/net-INODE.sock,
// INODE being its network namespace's (as /proc/self/ns/net shows it):
// only root can create a name there, so no other user can take it first.
// Where RunDir cannot be used (a daemon in a user namespace, no /run) it
// listens on the abstract name "@gretun", which also belongs to the
// network namespace and vanishes with the process. Anybody may bind an
// abstract name first, and it has no file permissions, so each side checks
// the other (SO_PEERCRED): the server serves only root and its own user,
// the client talks only to a server run by root or by its own user. A path
// socket has mode 0600.
package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gretun/gretun/status"
)

// Version is the protocol version; a server refuses other versions.
const Version = 1

// RunDir holds the default sockets of daemons run as root, one per
// network namespace.
const RunDir = "/run/gretun"

// AbstractSocket is the default socket where RunDir cannot be used.
const AbstractSocket = "@gretun"

// Request asks the daemon to do one thing.
type Request struct {
	Version int      `json:"version"`
	Op      string   `json:"op"` // add, del, change, show, capture; neigh-add, neigh-replace, neigh-del, neigh-show
	Name    string   `json:"name,omitempty"`
	Words   []string `json:"words,omitempty"` // iproute2-style options for add and change, a neighbour's words for neigh-*
	Inner   bool     `json:"inner,omitempty"` // capture: inner packets instead of outer ones
	Count   int      `json:"count,omitempty"` // capture: stop after this many packets (0: until stopped)
}

// Response is the daemon's answer; Error is one line when the request failed.
type Response struct {
	Version   int             `json:"version"`
	Error     string          `json:"error,omitempty"`
	Tunnels   []status.Tunnel `json:"tunnels,omitempty"`
	Unmatched *status.Stats   `json:"unmatched,omitempty"`
	Neighs    []status.Neigh  `json:"neighs,omitempty"` // neigh-show

	// Stream, set by a handler, writes a stream after the response (a
	// capture's pcapng) until it is done or ctx ends: when the client
	// shuts its side down (Stream.Stop) or goes away. The server always
	// calls it, with ctx already ended if the response could not be sent,
	// so that it can release what it holds.
	Stream func(ctx context.Context, w io.Writer) error `json:"-"`
}

// ErrInUse means another daemon already listens on the socket.
var ErrInUse = errors.New("another gretun daemon is already running here")

// nsSocket is this network namespace's socket in RunDir, or "" when the
// namespace cannot be named. (The calling thread's namespace: the one its
// sockets are made in.)
func nsSocket() string {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return ""
	}
	return filepath.Join(RunDir, fmt.Sprintf("net-%d.sock", st.Ino))
}

// NSSocket is this network namespace's socket in RunDir, where a daemon
// run as root listens by default ("" when the namespace cannot be named).
func NSSocket() string { return nsSocket() }

// defaultListen is where a daemon listens unless told otherwise: in RunDir
// when it runs as root and RunDir is root's alone (made here if missing),
// AbstractSocket otherwise.
func defaultListen() string {
	p := nsSocket()
	if p == "" || os.Geteuid() != 0 {
		return AbstractSocket
	}
	if err := os.Mkdir(RunDir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return AbstractSocket
	}
	fi, err := os.Lstat(RunDir)
	if err != nil || !fi.IsDir() || fi.Sys().(*syscall.Stat_t).Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
		return AbstractSocket
	}
	return p
}

// Listen opens the control socket at path ("@name" for an abstract socket,
// "" for the default). Where another user's process holds the name, the
// error says whose.
func Listen(path string) (net.Listener, error) {
	if path == "" {
		path = defaultListen()
	}
	if !strings.HasPrefix(path, "@") {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		// A socket file left by a killed daemon: remove it if nobody answers.
		// Anything else at that path is not ours to remove.
		if fi, err := os.Lstat(path); err == nil {
			if fi.Mode()&os.ModeSocket == 0 {
				return nil, fmt.Errorf("control socket %s: the path exists and is not a socket", path)
			}
			if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
				return nil, inUse(path, c)
			}
			os.Remove(path)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			c, derr := net.DialTimeout("unix", path, time.Second)
			if derr != nil {
				return nil, fmt.Errorf("%w (socket %s)", ErrInUse, path)
			}
			return nil, inUse(path, c)
		}
		return nil, err
	}
	if !strings.HasPrefix(path, "@") {
		if err := os.Chmod(path, 0o600); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// inUse closes c, a connection to whoever listens on path, and says who
// that is.
func inUse(path string, c net.Conn) error {
	defer c.Close()
	if err := checkOwner(path, c); err != nil {
		return fmt.Errorf("%v: cannot serve there (stop it, or choose another socket with -S)", err)
	}
	return fmt.Errorf("%w (socket %s)", ErrInUse, path)
}

// checkOwner admits a server run by root or by our own user: anyone else
// may have bound the name first to read our requests or fake answers.
func checkOwner(path string, c net.Conn) error {
	cred, err := peerCred(c)
	if err != nil {
		return fmt.Errorf("control socket %s: reading its owner: %v", path, err)
	}
	me := os.Geteuid()
	if cred.Uid == 0 || int(cred.Uid) == me {
		return nil
	}
	want := "root"
	if me != 0 {
		want = fmt.Sprintf("root or uid %d", me)
	}
	return fmt.Errorf("control socket %s is held by uid %d (pid %d), not by %s", path, cred.Uid, cred.Pid, want)
}

// peerCred returns the credentials of the other end of a unix socket: of
// the process that connected, or of the one that listens.
func peerCred(c net.Conn) (*syscall.Ucred, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("%T is not a socket", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, credErr
}

// Call sends req to the daemon at path ("" for the default) and returns its
// response. It sends nothing to a server run by another user.
func Call(path string, req Request) (Response, error) {
	req.Version = Version
	c, path, err := dialPath(path)
	if err != nil {
		return Response{}, err
	}
	defer c.Close()
	if err := checkOwner(path, c); err != nil {
		return Response{}, fmt.Errorf("%v: refusing to talk to it", err)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	// A server that refuses us answers at once and closes, so sending may
	// fail (EPIPE) with its answer waiting to be read.
	sendErr := json.NewEncoder(c).Encode(req)
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		if sendErr != nil {
			return Response{}, fmt.Errorf("sending to the daemon: %v", sendErr)
		}
		return Response{}, fmt.Errorf("reading the daemon's answer: %v", err)
	}
	if resp.Error != "" {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}

// Stream is the connection of a request answered with a stream: read the
// stream from it, Stop to ask the server to end it (what was sent so far
// still arrives, then EOF), Close when done.
type Stream struct {
	io.Reader
	conn net.Conn
}

// Stop asks the server to end the stream.
func (s *Stream) Stop() error { return s.conn.(*net.UnixConn).CloseWrite() }

// Close closes the connection.
func (s *Stream) Close() error { return s.conn.Close() }

// Open sends req to the daemon at path ("" for the default) and returns
// the stream that follows its response. A refusal is an error, as Call's.
func Open(path string, req Request) (*Stream, error) {
	req.Version = Version
	c, path, err := dialPath(path)
	if err != nil {
		return nil, err
	}
	if err := checkOwner(path, c); err != nil {
		c.Close()
		return nil, fmt.Errorf("%v: refusing to talk to it", err)
	}
	c.SetDeadline(time.Now().Add(60 * time.Second))
	sendErr := json.NewEncoder(c).Encode(req)
	dec := json.NewDecoder(c)
	var resp Response
	if err := dec.Decode(&resp); err != nil {
		c.Close()
		if sendErr != nil {
			return nil, fmt.Errorf("sending to the daemon: %v", sendErr)
		}
		return nil, fmt.Errorf("reading the daemon's answer: %v", err)
	}
	if resp.Error != "" {
		c.Close()
		return nil, errors.New(resp.Error)
	}
	c.SetDeadline(time.Time{}) // a stream lasts as long as it lasts
	// The decoder may have read past the response, and its newline, into
	// the stream.
	rest, _ := io.ReadAll(dec.Buffered())
	rest = bytes.TrimPrefix(rest, []byte("\n"))
	return &Stream{Reader: io.MultiReader(bytes.NewReader(rest), c), conn: c}, nil
}

// dialPath connects to path, or where path is "" to this namespace's
// daemon: its socket in RunDir when one answers there, else
// AbstractSocket. A socket file nobody answers on is left by a daemon that
// was killed (SIGKILL), and namespace inodes are reused, so a file's mere
// existence says nothing; whoever answers is checked by checkOwner.
func dialPath(path string) (net.Conn, string, error) {
	if path != "" {
		c, err := dial(path)
		return c, path, err
	}
	var runErr error
	if p := nsSocket(); p != "" {
		c, err := dial(p)
		if err == nil {
			return c, p, nil
		}
		runErr = err
	}
	c, err := dial(AbstractSocket)
	if err != nil && errors.Is(runErr, syscall.EACCES) {
		// Root's daemon is there, but not for this user.
		return nil, "", runErr
	}
	return c, AbstractSocket, err
}

// dial connects to path. A full backlog (EAGAIN: a flood of connections
// the server has not yet refused) is waited out for a while.
func dial(path string) (net.Conn, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("unix", path, time.Until(deadline))
		switch {
		case err == nil:
			return c, nil
		case errors.Is(err, syscall.EAGAIN) && time.Now().Before(deadline):
			time.Sleep(10 * time.Millisecond)
			continue
		case errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT):
			return nil, fmt.Errorf("no gretun daemon is listening on %s (start one with `gretun daemon`)", path)
		case errors.Is(err, syscall.EACCES):
			return nil, fmt.Errorf("permission denied: uid %d may not use the control socket %s (its owner and root only): %w", os.Geteuid(), path, syscall.EACCES)
		}
		return nil, err
	}
}
