package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gretun/gretun/control"
	"github.com/gretun/gretun/internal/testnet"
)

// asNobody runs fn in namespace ns as uid 65534 (its thread only): the
// sockets fn connects or listens on are another user's, as SO_PEERCRED
// tells them. fn must not hand its work to other goroutines.
func asNobody(ns string, fn func() error) error {
	return testnet.InNS(ns, func() error {
		keep := ^uintptr(0) // -1: leave unchanged
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, keep, 65534, keep); e != 0 {
			return e
		}
		err := fn()
		// Back to root, or InNS cannot switch the thread back and drops it.
		syscall.RawSyscall(syscall.SYS_SETRESUID, keep, 0, keep)
		return err
	})
}

// rssKB returns the resident memory of process pid in KiB.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// TestControlFlood: uid 65534 floods a daemon's control socket with idle
// connections and with requests of 1 MiB, more than the daemon has file
// descriptors (it runs with RLIMIT_NOFILE 512). Each connection is refused
// at once; root's commands are answered throughout; the daemon's memory
// stays put and its log has a few lines, not one a connection.
func TestControlFlood(t *testing.T) {
	t.Parallel()
	tp := Pair(t)
	// An abstract socket: other users can reach it (the default in
	// /run/gretun is root's alone), as with a daemon in a user namespace.
	sock := fmt.Sprintf("@gretun-flood-%d-%s", os.Getpid(), tp.A)
	out := &testnet.Buffer{}
	cmd, err := tp.Net.Start(tp.A, out, out, "prlimit", "--nofile=512", Bin(t, "gretun"), "-S", sock, "daemon")
	if err != nil {
		t.Fatal(err)
	}
	d := &Proc{Cmd: cmd, Out: out}
	defer d.Stop()
	tp.waitSocket(tp.A, d, "-S", sock)
	if r := tp.G(tp.A, "-S", sock, "tunnel", "add", "g1", "mode", "gre", "remote", UnderB, "local", UnderA); r.code != 0 {
		t.Fatalf("tunnel add: %s", r.stderr)
	}
	before := rssKB(t, cmd.Process.Pid)

	var idle, big []net.Conn
	defer func() {
		for _, c := range append(idle, big...) {
			c.Close()
		}
	}()
	err = asNobody(tp.A, func() error {
		for len(idle) < 2000 {
			c, err := net.Dial("unix", sock)
			if err != nil {
				return err
			}
			idle = append(idle, c)
		}
		for len(big) < 150 {
			c, err := net.Dial("unix", sock)
			if err != nil {
				return err
			}
			big = append(big, c)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("connecting as uid 65534 (%d idle, %d big): %v", len(idle), len(big), err)
	}
	request := append([]byte(`{"version":1,"op":"`), bytes.Repeat([]byte("a"), 1<<20)...)
	for _, c := range big {
		go c.Write(request) // ends when the daemon closes
	}

	r := tp.G(tp.A, "-S", sock, "tunnel", "show")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "g1: ") {
		t.Errorf("root's tunnel show during the flood: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	for _, c := range []net.Conn{idle[0], idle[len(idle)-1], big[len(big)-1]} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var resp control.Response
		if err := json.NewDecoder(c).Decode(&resp); err != nil || !strings.HasPrefix(resp.Error, "permission denied: uid 65534") {
			t.Errorf("flood connection: answer %+v, %v; want the refusal", resp, err)
		}
	}
	// Generous: 150 requests of 1 MiB once took 270 MB.
	after := rssKB(t, cmd.Process.Pid)
	t.Logf("daemon resident memory %d KiB before the flood, %d KiB after", before, after)
	if grown := after - before; grown > 32<<10 {
		t.Errorf("the daemon grew by %d KiB during the flood", grown)
	}
	if n := strings.Count(d.Log(), "refused a user"); n < 1 || n > 20 {
		t.Errorf("the daemon logged %d refusals, want a few:\n%s", n, d.Log())
	}
	if d.Cmd.ProcessState != nil {
		t.Fatalf("daemon exited: %s", d.Log())
	}
}

// TestControlImpostor: uid 65534 has bound the abstract name @gretun first
// and answers every request with success. Root's commands refuse to talk
// to it and name it; a daemon told to use it says whose it is; a daemon on
// the default socket (in /run/gretun, per network namespace) starts and
// serves despite it.
func TestControlImpostor(t *testing.T) {
	t.Parallel()
	needSetpriv(t)
	tp := Pair(t)
	var l net.Listener
	err := asNobody(tp.A, func() (err error) {
		l, err = net.Listen("unix", control.AbstractSocket)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var heard testnet.Buffer
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			var req control.Request
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if json.NewDecoder(c).Decode(&req) == nil {
				fmt.Fprintf(&heard, "%+v\n", req)
			}
			json.NewEncoder(c).Encode(control.Response{Version: control.Version})
			c.Close()
		}
	}()
	before := tp.links(tp.A)
	owner := fmt.Sprintf("control socket @gretun is held by uid 65534 (pid %d), not by root", os.Getpid())
	add := []string{"tunnel", "add", "x1", "mode", "gre", "remote", UnderB, "local", UnderA}
	// No daemon in /run/gretun: the client tries @gretun.
	wantError(t, "add through an impostor", tp.G(tp.A, add...), owner, "refusing to talk to it")
	wantError(t, "show through an impostor", tp.G(tp.A, "-S", "@gretun", "tunnel", "show"), owner)
	r := tp.G(tp.A, "-S", "@gretun", "daemon")
	wantError(t, "daemon on an impostor's socket", r, owner, "cannot serve there")
	if got := tp.links(tp.A); !slices.Equal(got, before) {
		t.Errorf("devices changed from %v to %v", before, got)
	}

	d := tp.Daemon(tp.A)
	tp.add(tp.A, "g1", add[3:]...)
	if !tp.hasLink(tp.A, "g1") {
		t.Errorf("the default daemon did not create g1: %v", tp.links(tp.A))
	}
	var sock string
	if err := testnet.InNS(tp.A, func() error { sock = control.NSSocket(); return nil }); err != nil {
		t.Fatal(err)
	}
	ns, err := os.Stat(filepath.Join("/run/netns", tp.A))
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(control.RunDir, fmt.Sprintf("net-%d.sock", ns.Sys().(*syscall.Stat_t).Ino))
	if sock != want {
		t.Errorf("default socket in %s is %s, want %s", tp.A, sock, want)
	}
	if fi, err := os.Stat(want); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("%s: %v %v, want a socket of root's with mode 0600", want, fi, err)
	}
	if err := d.Stop(); err != nil {
		t.Errorf("daemon: %v: %s", err, d.Log())
	}
	if _, err := os.Lstat(want); err == nil {
		t.Errorf("%s left behind after SIGTERM", want)
	}
	if h := heard.String(); h != "" {
		t.Errorf("the impostor heard requests:\n%s", h)
	}
}

// TestControlStaleSocketFile: a daemon killed with SIGKILL leaves its file
// in /run/gretun, and a later namespace may get the same inode. The client
// then finds a file nobody answers on (or, in a user namespace, one it may
// not open): it goes on to @gretun, where this namespace's daemon is.
func TestControlStaleSocketFile(t *testing.T) {
	t.Parallel()
	tp := Pair(t)
	var stale string
	err := testnet.InNS(tp.A, func() error {
		stale = control.NSSocket()
		if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
			return err
		}
		os.Remove(stale) // an older one (inodes are reused)
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
		if err != nil {
			return err
		}
		l.SetUnlinkOnClose(false)
		return l.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(stale)
	out := &testnet.Buffer{}
	cmd, err := tp.Net.Start(tp.A, out, out, Bin(t, "gretun"), "-S", control.AbstractSocket, "daemon")
	if err != nil {
		t.Fatal(err)
	}
	d := &Proc{Cmd: cmd, Out: out}
	defer d.Stop()
	tp.waitSocket(tp.A, d, "-S", control.AbstractSocket)
	if r := tp.G(tp.A, "tunnel", "add", "g1", "mode", "gre", "remote", UnderB, "local", UnderA); r.code != 0 {
		t.Fatalf("tunnel add with a stale %s: exit %d: %s", stale, r.code, r.stderr)
	}
	if !tp.hasLink(tp.A, "g1") {
		t.Errorf("the daemon on @gretun did not create g1")
	}
}
