// Package testnet builds throw-away network namespaces for tests and
// benchmarks: named with a per-run prefix, wired with veth pairs, and
// deleted again on Close (also when a test fails).
//
// It drives iproute2 through exec because it is test scaffolding; gretun
// itself configures the network through netlink only.
package testnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"
)

// Net is a set of namespaces that live and die together.
type Net struct {
	prefix string

	mu         sync.Mutex
	namespaces []string
	closers    []func()
}

var runCounter struct {
	sync.Mutex
	n int
}

// New returns an empty Net whose namespaces are named prefix-<pid>-<n>-NAME.
// The caller must Close it.
func New(prefix string) (*Net, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("testnet: network namespaces need root (CAP_SYS_ADMIN, CAP_NET_ADMIN)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("testnet: iproute2's ip command is not installed")
	}
	runCounter.Lock()
	runCounter.n++
	n := runCounter.n
	runCounter.Unlock()
	return &Net{prefix: fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), n)}, nil
}

// TB is the part of testing.TB that ForTest uses. Naming it here, rather
// than importing testing, keeps the testing package (and its flags) out of
// the gretun binary, which links testnet through bench.
type TB interface {
	Helper()
	Skip(args ...any)
	Cleanup(func())
}

// ForTest returns a Net that is closed when t ends; it skips t, naming what
// is missing, when the test is not run as root.
func ForTest(t TB) *Net {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces (CAP_SYS_ADMIN, CAP_NET_ADMIN); run as root, as CI does")
	}
	prefix := "gt"
	n, err := New(prefix)
	if err != nil {
		t.Skip(err.Error())
	}
	t.Cleanup(n.Close)
	return n
}

// NS creates namespace NAME (prefixed), brings its loopback up and returns
// its full name, to use with Exec and `ip netns exec`.
func (n *Net) NS(name string) (string, error) {
	full := n.prefix + "-" + name
	if _, err := run("ip", "netns", "add", full); err != nil {
		return "", err
	}
	n.mu.Lock()
	n.namespaces = append(n.namespaces, full)
	n.mu.Unlock()
	if _, err := n.Exec(full, "ip", "link", "set", "dev", "lo", "up"); err != nil {
		return "", err
	}
	return full, nil
}

// Veth connects namespace nsA (interface ifA) to nsB (interface ifB) with a
// veth pair and brings both ends up.
func (n *Net) Veth(nsA, ifA, nsB, ifB string) error {
	tmpA := fmt.Sprintf("v%d%s", os.Getpid()%100000, shortID())
	tmpB := tmpA + "p"
	if _, err := run("ip", "link", "add", tmpA, "type", "veth", "peer", "name", tmpB); err != nil {
		return err
	}
	steps := [][]string{
		{"ip", "link", "set", "dev", tmpA, "netns", nsA, "name", ifA},
		{"ip", "link", "set", "dev", tmpB, "netns", nsB, "name", ifB},
		{"ip", "-n", nsA, "link", "set", "dev", ifA, "up"},
		{"ip", "-n", nsB, "link", "set", "dev", ifB, "up"},
	}
	for _, s := range steps {
		if _, err := run(s...); err != nil {
			run("ip", "link", "del", tmpA)
			return err
		}
	}
	return nil
}

// Addr adds address cidr (e.g. "192.0.2.1/24") to ifname in ns.
func (n *Net) Addr(ns, ifname, cidr string) error {
	args := []string{"ip", "-n", ns, "addr", "add", cidr, "dev", ifname}
	if strings.Contains(cidr, ":") {
		args = []string{"ip", "-n", ns, "-6", "addr", "add", cidr, "dev", ifname, "nodad"}
	}
	_, err := run(args...)
	return err
}

// Forward turns on IPv4 and IPv6 forwarding in ns.
func (n *Net) Forward(ns string) error {
	for _, key := range []string{"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"} {
		if _, err := n.Exec(ns, "sysctl", "-qw", key); err != nil {
			return err
		}
	}
	return nil
}

// WaitLink waits at most timeout for device dev to exist in ns. exited,
// when not nil, tells whether the process that was to create dev has
// ended: then WaitLink stops waiting at once.
func (n *Net) WaitLink(ns, dev string, timeout time.Duration, exited func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := n.Exec(ns, "ip", "link", "show", "dev", dev); err == nil {
			return nil
		}
		if exited != nil && exited() {
			return fmt.Errorf("device %s did not appear in %s: the process creating it exited", dev, ns)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("device %s did not appear in %s within %v", dev, ns, timeout)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// Exec runs a command inside ns and returns its combined output.
func (n *Net) Exec(ns string, args ...string) (string, error) {
	return run(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// Start starts a long-running command inside ns. It is killed on Close if
// still running; the caller may Wait for it sooner. Pass a *Buffer to read
// the output while the command runs.
func (n *Net) Start(ns string, stdout, stderr io.Writer, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdout, cmd.Stderr = safe(stdout), safe(stderr)
	if stdout == stderr {
		cmd.Stderr = cmd.Stdout
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n.OnClose(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, nil
}

// Buffer is a bytes.Buffer safe for one writer and concurrent readers.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func safe(w io.Writer) io.Writer {
	switch w := w.(type) {
	case nil:
		return nil
	case *Buffer:
		return w
	case *bytes.Buffer:
		if w == nil {
			return nil
		}
		return &lockedWriter{b: w}
	}
	return w
}

// OnClose registers fn to run on Close, before the namespaces are deleted,
// in reverse order of registration.
func (n *Net) OnClose(fn func()) {
	n.mu.Lock()
	n.closers = append(n.closers, fn)
	n.mu.Unlock()
}

// Close runs the registered closers and deletes every namespace it created.
func (n *Net) Close() {
	n.mu.Lock()
	closers, namespaces := n.closers, n.namespaces
	n.closers, n.namespaces = nil, nil
	n.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
	for _, ns := range namespaces {
		// Kill whatever still runs inside, then delete the namespace.
		if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
			for _, pid := range strings.Fields(string(out)) {
				exec.Command("kill", "-9", pid).Run()
			}
		}
		run("ip", "netns", "del", ns)
	}
}

// Namespaces lists the full names of the namespaces created so far.
func (n *Net) Namespaces() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.namespaces...)
}

func run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

var idCounter struct {
	sync.Mutex
	n int
}

func shortID() string {
	idCounter.Lock()
	defer idCounter.Unlock()
	idCounter.n++
	return fmt.Sprintf("%d", idCounter.n)
}

type lockedWriter struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Enter locks the calling goroutine to its OS thread and switches the
// thread into namespace ns; sockets and devices opened there stay in ns.
// leave switches back and unlocks. Should switching back fail, the thread
// stays locked and dies with its goroutine: a thread left in ns would be
// dangerous (if it were the main thread, `ip netns pids` would list this
// process and Close would kill it).
func Enter(ns string) (leave func() error, err error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	h, err := netns.GetFromName(ns)
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		return nil, err
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("entering namespace %s: %v", ns, err)
	}
	return func() error {
		defer orig.Close()
		if err := netns.Set(orig); err != nil {
			return fmt.Errorf("leaving namespace %s: %v", ns, err)
		}
		runtime.UnlockOSThread()
		return nil
	}, nil
}

// InNS runs fn on a goroutine of its own inside namespace ns (see Enter)
// and returns fn's error, joined with any failure to enter or leave ns.
func InNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		leave, err := Enter(ns)
		if err != nil {
			errc <- err
			return
		}
		err = fn()
		errc <- errors.Join(err, leave())
	}()
	return <-errc
}

// EchoTCP serves ln until it is closed: each connection gets back what it
// sends, and is closed when its sender closes.
func EchoTCP(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() { io.Copy(c, c); c.Close() }()
	}
}
