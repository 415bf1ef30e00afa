// Package control carries commands from the gretun command line to a
// running daemon over a unix socket: one small, versioned JSON request and
// one response per connection.
//
// The default socket is the abstract name "@gretun". Abstract unix sockets
// belong to a network namespace, so each namespace has its own daemon, as
// each has its own kernel tunnels; they vanish with the process, so a
// daemon killed with SIGKILL leaves nothing stale behind. They have no file
// permissions, so the server admits only peers running as root or as its
// own user (SO_PEERCRED). A path socket is created with mode 0600.
package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gretun/gretun/tunnel"
)

// Version is the protocol version; a server refuses other versions.
const Version = 1

// DefaultSocket is where the daemon listens unless told otherwise.
const DefaultSocket = "@gretun"

// Request asks the daemon to do one thing.
type Request struct {
	Version int      `json:"version"`
	Op      string   `json:"op"` // add, del, change, show
	Name    string   `json:"name,omitempty"`
	Words   []string `json:"words,omitempty"` // iproute2-style options for add and change
}

// Response is the daemon's answer; Error is one line when the request failed.
type Response struct {
	Version   int             `json:"version"`
	Error     string          `json:"error,omitempty"`
	Tunnels   []tunnel.Status `json:"tunnels,omitempty"`
	Unmatched *tunnel.Stats   `json:"unmatched,omitempty"`
}

// maxRequest bounds what the server reads of one request.
const maxRequest = 1 << 20

// Handler executes requests.
type Handler func(Request) Response

// ErrInUse means another daemon already listens on the socket.
var ErrInUse = errors.New("another gretun daemon is already running here")

// Listen opens the control socket at path ("@name" for an abstract socket).
func Listen(path string) (net.Listener, error) {
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
				c.Close()
				return nil, fmt.Errorf("%w (socket %s)", ErrInUse, path)
			}
			os.Remove(path)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%w (socket %s)", ErrInUse, path)
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

// Serve answers requests on l until it is closed. It returns once the
// answers in flight are sent, so a handler may ask the caller to exit.
func Serve(l net.Listener, h Handler) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveConn(c.(*net.UnixConn), h)
		}()
	}
}

func serveConn(c *net.UnixConn, h Handler) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var resp Response
	var req Request
	// Read the request before anything else, even from a peer about to be
	// refused: closing a unix socket with unread data resets it, and the
	// client would see "connection reset" instead of the refusal.
	decodeErr := json.NewDecoder(io.LimitReader(c, maxRequest)).Decode(&req)
	switch err := peerAllowed(c); {
	case err != nil:
		resp.Error = err.Error()
	case decodeErr != nil:
		resp.Error = fmt.Sprintf("bad request: %v", decodeErr)
	case req.Version != Version:
		resp.Error = fmt.Sprintf("protocol version %d is not %d: use the same gretun for the command and the daemon", req.Version, Version)
	default:
		resp = h(req)
	}
	resp.Version = Version
	json.NewEncoder(c).Encode(resp)
}

// peerAllowed admits root and the daemon's own user.
func peerAllowed(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *syscall.Ucred
	var credErr error
	raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	})
	if credErr != nil {
		return credErr
	}
	if cred.Uid != 0 && int(cred.Uid) != os.Getuid() {
		return fmt.Errorf("permission denied: uid %d may not control gretun (root only)", cred.Uid)
	}
	return nil
}

// Call sends req to the daemon at path and returns its response.
func Call(path string, req Request) (Response, error) {
	req.Version = Version
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return Response{}, fmt.Errorf("no gretun daemon is listening on %s (start one with `gretun daemon`)", path)
		}
		return Response{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return Response{}, err
	}
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return Response{}, fmt.Errorf("reading the daemon's answer: %v", err)
	}
	if resp.Error != "" {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}
