package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gretun/gretun/internal/testnet"
	"github.com/gretun/gretun/tunnel"
)

// Pair is the smallest topology: routers A and B on the underlay
// 192.0.2.0/24 (interface wan on both), no hosts behind them.
func Pair(t testing.TB) *Topology {
	t.Helper()
	n := testnet.ForTest(t)
	tp := &Topology{Net: n, T: t}
	var err error
	if tp.A, err = n.NS("ra"); err != nil {
		t.Fatal(err)
	}
	if tp.B, err = n.NS("rb"); err != nil {
		t.Fatal(err)
	}
	tp.must(n.Veth(tp.A, "wan", tp.B, "wan"))
	tp.must(n.Addr(tp.A, "wan", UnderA+"/24"))
	tp.must(n.Addr(tp.B, "wan", UnderB+"/24"))
	return tp
}

// result is how one gretun command ended.
type result struct {
	stdout, stderr string
	code           int // exit status; -1 when killed by a signal
}

// Cmd runs `PREFIX… gretun ARGS…` in ns with stdout and stderr kept apart;
// prefix is e.g. setpriv and its options, and bin the gretun to run.
func (tp *Topology) cmd(ns string, prefix []string, bin string, args ...string) result {
	tp.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv := append(append([]string{"netns", "exec", ns}, prefix...), bin)
	cmd := exec.CommandContext(ctx, "ip", append(argv, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		tp.T.Fatalf("running gretun %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// G runs the gretun binary in ns.
func (tp *Topology) G(ns string, args ...string) result {
	tp.T.Helper()
	return tp.cmd(ns, nil, Bin(tp.T, "gretun"), args...)
}

// wantError checks the error contract: a non-zero exit and exactly one
// line on stderr, starting "gretun:" and containing every piece of want.
func wantError(t testing.TB, what string, r result, want ...string) {
	t.Helper()
	if r.code == 0 {
		t.Errorf("%s: exit status 0, want failure; stdout %q stderr %q", what, r.stdout, r.stderr)
		return
	}
	if !strings.HasSuffix(r.stderr, "\n") || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "gretun: ") {
		t.Errorf("%s: stderr is not one line starting \"gretun: \": %q", what, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("%s: stderr %q does not name %q", what, strings.TrimSpace(r.stderr), w)
		}
	}
	if r.stdout != "" {
		t.Errorf("%s: unexpected stdout %q", what, r.stdout)
	}
}

// links lists the network devices in ns, sorted.
func (tp *Topology) links(ns string) []string {
	tp.T.Helper()
	out := tp.Sh(ns, "ip", "-o", "link", "show")
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		// Skip anything but device lines: the output may include ip's
		// warnings (e.g. "Peer netns reference is invalid.").
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasSuffix(f[0], ":") {
			continue
		}
		if _, err := strconv.Atoi(strings.TrimSuffix(f[0], ":")); err != nil {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// hasLink reports whether device dev exists in ns.
func (tp *Topology) hasLink(ns, dev string) bool {
	_, err := tp.Exec(ns, "ip", "link", "show", "dev", dev)
	return err == nil
}

// ifindex returns the interface index of dev in ns.
func (tp *Topology) ifindex(ns, dev string) int {
	tp.T.Helper()
	out := tp.Sh(ns, "ip", "-o", "link", "show", "dev", dev)
	i, _, _ := strings.Cut(out, ":")
	n, err := strconv.Atoi(i)
	if err != nil {
		tp.T.Fatalf("ip -o link show dev %s: %q", dev, out)
	}
	return n
}

// show returns the output of `gretun tunnel show` in ns.
func (tp *Topology) show(ns string) string {
	tp.T.Helper()
	r := tp.G(ns, "tunnel", "show")
	if r.code != 0 {
		tp.T.Fatalf("tunnel show: %s", r.stderr)
	}
	return r.stdout
}

// statuses returns what `gretun -s -j tunnel show` reports in ns.
func (tp *Topology) statuses(ns string) []tunnel.Status {
	tp.T.Helper()
	r := tp.G(ns, "-s", "-j", "tunnel", "show")
	if r.code != 0 {
		tp.T.Fatalf("tunnel show: %s", r.stderr)
	}
	var v struct{ Tunnels []tunnel.Status }
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		tp.T.Fatalf("tunnel show -j: %v: %s", err, r.stdout)
	}
	return v.Tunnels
}

// Daemon starts `gretun daemon ARGS…` in ns and waits until its control
// socket answers (GRETUN_SOCKET or -S are not used: the namespace's own
// default socket).
func (tp *Topology) Daemon(ns string, args ...string) *Proc {
	tp.T.Helper()
	p := tp.Start(ns, append([]string{"daemon"}, args...)...)
	tp.waitSocket(ns, p)
	return p
}

// waitSocket waits until daemon p answers `gretun OPTS… tunnel show` in
// ns (OPTS such as -S SOCKET name its control socket).
func (tp *Topology) waitSocket(ns string, p *Proc, opts ...string) {
	tp.T.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if r := tp.G(ns, append(opts[:len(opts):len(opts)], "tunnel", "show")...); r.code == 0 {
			return
		}
		if p.Cmd.ProcessState != nil {
			break
		}
		time.Sleep(30 * time.Millisecond)
	}
	tp.T.Fatalf("gretun daemon %v in %s did not answer: %s", opts, ns, p.Log())
}

// add runs `gretun tunnel add NAME WORDS…` and fails the test if it fails.
func (tp *Topology) add(ns, name string, words ...string) {
	tp.T.Helper()
	if r := tp.G(ns, append([]string{"tunnel", "add", name}, words...)...); r.code != 0 {
		tp.T.Fatalf("tunnel add %s: %s", name, r.stderr)
	}
}

// wait waits for p to exit and returns its exit status (-1: killed).
func wait(t testing.TB, p *Proc) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		p.Cmd.Process.Kill()
		<-done
		t.Fatalf("gretun did not exit: %s", p.Log())
	}
	return p.Cmd.ProcessState.ExitCode()
}

// publicGretun copies the gretun binary into a directory every user can
// reach, for tests that run it as an unprivileged user.
func publicGretun(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	// t.TempDir is mode 0700 inside a 0700 per-test directory.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src, err := os.Open(Bin(t, "gretun"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(dir, "gretun")
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

var nobody = Nobody

func needSetpriv(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux) to run gretun as an unprivileged user")
	}
}
