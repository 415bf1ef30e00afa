// Package e2e is the scaffolding of gretun's end-to-end tests: it builds the
// gretun binary (and the xfer helper) once per test process and lays out
// the classic topology of the tunneling instructions in network
// namespaces, with documentation addresses only:
//
//	hostA 198.51.100.2 ── routerA ══ underlay 192.0.2.0/24 ══ routerB ── hostB 203.0.113.2
//	       (network A 198.51.100.0/24)                    (network B 203.0.113.0/24)
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gretun/gretun/internal/testnet"
)

// Nobody is the prefix that runs a command as uid/gid 65534 with no
// capabilities at all (setpriv, util-linux).
var Nobody = []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"}

var build struct {
	once sync.Once
	dir  string
	err  error
}

// moduleRoot finds the repository root from this source file.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func buildAll() {
	build.dir, build.err = os.MkdirTemp("", "gretun-e2e-bin")
	if build.err != nil {
		return
	}
	for _, pkg := range []string{"./cmd/gretun", "./internal/e2e/xfer"} {
		cmd := exec.Command("go", "build", "-o", build.dir, pkg)
		cmd.Dir = moduleRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as make build: gretun drops its capabilities
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build %s: %v: %s", pkg, err, out)
			return
		}
	}
}

// Cleanup removes the built programs; call it from TestMain after m.Run.
func Cleanup() {
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
}

// Bin returns the path of a built program: "gretun" or "xfer".
func Bin(t testing.TB, name string) string {
	t.Helper()
	build.once.Do(buildAll)
	if build.err != nil {
		t.Fatal(build.err)
	}
	return filepath.Join(build.dir, name)
}

// Topology is the classic scenario: two routers on an underlay, a host
// behind each.
type Topology struct {
	*testnet.Net
	T                  testing.TB
	HostA, A, B, HostB string // namespace names
}

// Underlay addresses and the networks behind the routers.
const (
	UnderA  = "192.0.2.1"
	UnderB  = "192.0.2.2"
	LanA    = "198.51.100.1" // router A on network A
	LanB    = "203.0.113.1"  // router B on network B
	HostAIP = "198.51.100.2"
	HostBIP = "203.0.113.2"
)

// Classic builds the topology; the routers forward but know no route to
// the other side's network until a tunnel carries it.
func Classic(t testing.TB) *Topology {
	t.Helper()
	n := testnet.ForTest(t)
	tp := &Topology{Net: n, T: t}
	var err error
	for _, p := range []struct {
		dst  *string
		name string
	}{{&tp.HostA, "ha"}, {&tp.A, "ra"}, {&tp.B, "rb"}, {&tp.HostB, "hb"}} {
		if *p.dst, err = n.NS(p.name); err != nil {
			t.Fatal(err)
		}
	}
	tp.must(n.Veth(tp.HostA, "eth0", tp.A, "lan"))
	tp.must(n.Veth(tp.A, "wan", tp.B, "wan"))
	tp.must(n.Veth(tp.B, "lan", tp.HostB, "eth0"))
	tp.must(n.Addr(tp.HostA, "eth0", HostAIP+"/24"))
	tp.must(n.Addr(tp.A, "lan", LanA+"/24"))
	tp.must(n.Addr(tp.A, "wan", UnderA+"/24"))
	tp.must(n.Addr(tp.B, "wan", UnderB+"/24"))
	tp.must(n.Addr(tp.B, "lan", LanB+"/24"))
	tp.must(n.Addr(tp.HostB, "eth0", HostBIP+"/24"))
	tp.must(n.Forward(tp.A))
	tp.must(n.Forward(tp.B))
	tp.Sh(tp.HostA, "ip", "route", "add", "default", "via", LanA)
	tp.Sh(tp.HostB, "ip", "route", "add", "default", "via", LanB)
	return tp
}

func (tp *Topology) must(err error) {
	tp.T.Helper()
	if err != nil {
		tp.T.Fatal(err)
	}
}

// Sh runs a command in ns and fails the test if it fails.
func (tp *Topology) Sh(ns string, args ...string) string {
	tp.T.Helper()
	out, err := tp.Exec(ns, args...)
	if err != nil {
		tp.T.Fatal(err)
	}
	return out
}

// Gretun runs the gretun command line in ns and returns its output.
func (tp *Topology) Gretun(ns string, args ...string) (string, error) {
	return tp.Exec(ns, append([]string{Bin(tp.T, "gretun")}, args...)...)
}

// Proc is a gretun process running in the background.
type Proc struct {
	Cmd *exec.Cmd
	Out *testnet.Buffer
}

// Log returns what the process printed so far.
func (p *Proc) Log() string { return p.Out.String() }

// Stop sends SIGTERM and waits for the process to end.
func (p *Proc) Stop() error {
	p.Cmd.Process.Signal(syscall.SIGTERM)
	return p.Cmd.Wait()
}

// Start runs `gretun ARGS…` in ns in the background.
func (tp *Topology) Start(ns string, args ...string) *Proc {
	tp.T.Helper()
	out := &testnet.Buffer{}
	cmd, err := tp.Net.Start(ns, out, out, append([]string{Bin(tp.T, "gretun")}, args...)...)
	if err != nil {
		tp.T.Fatal(err)
	}
	return &Proc{Cmd: cmd, Out: out}
}

// Run starts `gretun run NAME WORDS…` in ns and waits for its device.
func (tp *Topology) Run(ns, name string, words ...string) *Proc {
	tp.T.Helper()
	p := tp.Start(ns, append([]string{"run", name}, words...)...)
	tp.WaitLink(ns, name, p)
	return p
}

// WaitLink waits until device dev exists in ns.
func (tp *Topology) WaitLink(ns, dev string, p *Proc) {
	tp.T.Helper()
	var exited func() bool
	log := ""
	if p != nil {
		exited = func() bool { return p.Cmd.ProcessState != nil }
	}
	if err := tp.Net.WaitLink(ns, dev, 15*time.Second, exited); err != nil {
		if p != nil {
			log = p.Log()
		}
		tp.T.Fatalf("%v: %s", err, log)
	}
}

// Route sets up what the classic instructions do after `ip tunnel add`:
// the router's LAN address on the tunnel device and a route to the far
// network through it.
func (tp *Topology) Route(ns, dev, addr, farNet string) {
	tp.T.Helper()
	tp.Sh(ns, "ip", "addr", "add", addr, "dev", dev)
	tp.Sh(ns, "ip", "route", "add", farNet, "dev", dev)
}

// Ping pings dst from ns and fails the test unless every reply arrives.
func (tp *Topology) Ping(ns, dst string, extra ...string) string {
	tp.T.Helper()
	args := append([]string{"ping", "-c", "3", "-i", "0.2", "-W", "2"}, extra...)
	out, err := tp.Exec(ns, append(args, dst)...)
	if err != nil {
		tp.T.Fatalf("ping %s from %s: %v", dst, ns, err)
	}
	if !strings.Contains(out, " 0% packet loss") {
		tp.T.Fatalf("ping %s from %s lost packets:\n%s", dst, ns, out)
	}
	return out
}

// Transfer sends size bytes over TCP from ns `from` to dst:port in ns `to`
// and fails unless the SHA-256 of what arrived matches what was sent.
func (tp *Topology) Transfer(from, to, dst string, size int) {
	tp.T.Helper()
	xfer := Bin(tp.T, "xfer")
	out := &testnet.Buffer{}
	addr := dst + ":5201"
	if strings.Contains(dst, ":") {
		addr = "[" + dst + "]:5201"
	}
	srv, err := tp.Net.Start(to, out, out, xfer, "-listen", addr, "-timeout", "60s")
	if err != nil {
		tp.T.Fatal(err)
	}
	for i := 0; i < 200 && !strings.Contains(out.String(), "listening"); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	sent, err := tp.Exec(from, xfer, "-connect", addr, "-size", fmt.Sprint(size), "-timeout", "60s")
	if err != nil {
		tp.T.Fatalf("xfer to %s: %v", addr, err)
	}
	srv.Wait()
	got := strings.TrimSpace(strings.TrimPrefix(out.String(), "listening\n"))
	if strings.TrimSpace(sent) != got {
		tp.T.Fatalf("TCP transfer to %s corrupted: sent %q, received %q", addr, strings.TrimSpace(sent), got)
	}
}
