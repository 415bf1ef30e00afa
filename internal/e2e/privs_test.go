package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gretun/gretun/internal/testnet"
)

// onlyNetCaps is CAP_NET_ADMIN (12) and CAP_NET_RAW (13).
const onlyNetCaps = "0000000000003000"

// wantCaps checks every thread of process pid through
// /proc/PID/task/*/status: effective, permitted and bounding sets hold
// only CAP_NET_ADMIN and CAP_NET_RAW (bounding: want), and the ambient and
// inheritable sets are empty.
func wantCaps(t *testing.T, pid int, bounding string) {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads of %d: %v", pid, err)
	}
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			continue // the thread ended
		}
		got := map[string]string{}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.HasPrefix(k, "Cap") {
				got[k] = strings.TrimSpace(v)
			}
		}
		for k, want := range map[string]string{"CapEff": onlyNetCaps, "CapPrm": onlyNetCaps, "CapBnd": bounding,
			"CapAmb": "0000000000000000", "CapInh": "0000000000000000"} {
			if got[k] != want {
				t.Errorf("%s: %s %s, want %s", task, k, got[k], want)
			}
		}
	}
}

// TestPrivilegesDropped: a daemon started as root keeps only CAP_NET_ADMIN
// and CAP_NET_RAW, on every thread, and still adds tunnels, reloads on
// SIGHUP, runs keepalives, serves metrics and captures.
func TestPrivilegesDropped(t *testing.T) {
	t.Parallel()
	tp := Pair(t)
	conf := filepath.Join(t.TempDir(), "gretun.conf")
	writeFile(t, conf, "ka mode gre remote 192.0.2.2 local 192.0.2.1 key 1 keepalive 0.2 3\n")
	const maddr = "127.0.0.1:9469"
	d := tp.Daemon(tp.A, "-c", conf, "-metrics", maddr)
	defer d.Stop()
	defer tp.Daemon(tp.B).Stop()
	wantCaps(t, d.Cmd.Process.Pid, onlyNetCaps)

	tp.add(tp.B, "ka", "mode", "gre", "remote", UnderA, "local", UnderB, "key", "1")
	tp.waitFor("keepalive replies", func() bool {
		ka := tp.keepalive(tp.A, "ka")
		return ka.Received > 0 && ka.State == "up"
	})
	tp.add(tp.A, "t2", "mode", "ipip", "remote", UnderB, "local", UnderA)
	writeFile(t, conf, "ka mode gre remote 192.0.2.2 local 192.0.2.1 key 1 keepalive 0.2 3\nrl mode gre remote 192.0.2.2 local 192.0.2.1 key 5\n")
	hup(t, d, "configuration reloaded")
	if !tp.hasLink(tp.A, "rl") || tp.hasLink(tp.A, "t2") {
		t.Errorf("after the reload: %v, want rl and not t2", tp.links(tp.A))
	}
	tp.Sh(tp.A, "ip", "addr", "add", "198.51.100.1", "peer", "203.0.113.1", "dev", "ka")
	tp.Sh(tp.B, "ip", "addr", "add", "203.0.113.1", "peer", "198.51.100.1", "dev", "ka")
	tp.Ping(tp.A, "203.0.113.1")
	if v, ok := tp.scrape(tp.A, maddr).Value("gretun_tunnels"); !ok || v != 2 {
		t.Errorf("metrics: gretun_tunnels %v, want 2", v)
	}
	// Keepalives come every 0.2 s. No -c: a count of them could end the
	// capture before startCapture has tried a second one at once.
	p := tp.startCapture(tp.A, "ka")
	tp.waitFor("two keepalives captured", func() bool { return strings.Count(p.Log(), "keepalive, length") >= 2 })
	stopCapture(t, p)
	wantCaps(t, d.Cmd.Process.Pid, onlyNetCaps)
}

// TestNonRootDaemon runs the daemon as uid 65534 holding only CAP_NET_ADMIN
// and CAP_NET_RAW as ambient capabilities (as the systemd unit does), with
// its own /dev/net/tun node (the host's is left alone: a mount namespace
// binds a node the user owns over it). It clears the ambient set, and
// serves a tunnel root adds through its control socket.
func TestNonRootDaemon(t *testing.T) {
	t.Parallel()
	needSetpriv(t)
	tp := Pair(t)
	bin := publicGretun(t)
	defer tp.Daemon(tp.B).Stop()
	const sock = "@gretun-nonroot-test"
	// In its own mount namespace: a TUN node the user owns, bound over
	// /dev/net/tun, then setpriv to uid 65534 with the two capabilities
	// ambient, and gretun (the same process all along, through exec).
	script := `d=$(mktemp -d); mount -t tmpfs tmpfs "$d"; mknod "$d/tun" c 10 200; chown 65534:65534 "$d/tun"
mount --bind "$d/tun" /dev/net/tun
exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all,+net_admin,+net_raw --ambient-caps=+net_admin,+net_raw "$1" -S "$2" daemon`
	log := &testnet.Buffer{}
	cmd, err := tp.Net.Start(tp.A, log, log, "unshare", "--mount", "--propagation", "private", "sh", "-ec", script, "sh", bin, sock)
	if err != nil {
		t.Fatal(err)
	}
	d := &Proc{Cmd: cmd, Out: log}
	defer d.Stop()
	// The commands talk to a daemon of their own user (or root's) only.
	asUser := func(args ...string) result {
		return tp.cmd(tp.A, nobody, bin, append([]string{"-S", sock}, args...)...)
	}
	for i := 0; asUser("tunnel", "show").code != 0; i++ {
		if i > 300 || d.Cmd.ProcessState != nil {
			t.Fatalf("the non-root daemon does not answer: %s", d.Log())
		}
		sleep(50)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.Cmd.Process.Pid))
	if err != nil || !strings.Contains(string(status), "\nUid:\t65534\t65534\t65534\t65534\n") {
		t.Fatalf("the daemon does not run as uid 65534: %v\n%s", err, status)
	}
	// Bounding: as setpriv left it; a process without CAP_SETPCAP cannot
	// change it, nor gain what it lacks.
	b := string(status)
	i := strings.Index(b, "CapBnd:\t")
	wantCaps(t, d.Cmd.Process.Pid, b[i+8:i+24])

	if r := asUser("tunnel", "add", "nr", "mode", "gre", "remote", UnderB, "local", UnderA, "key", "3"); r.code != 0 {
		t.Fatalf("tunnel add through the non-root daemon: %s\n%s", r.stderr, d.Log())
	}
	tp.add(tp.B, "nr", "mode", "gre", "remote", UnderA, "local", UnderB, "key", "3")
	tp.Sh(tp.A, "ip", "addr", "add", "198.51.100.1", "peer", "203.0.113.1", "dev", "nr")
	tp.Sh(tp.B, "ip", "addr", "add", "203.0.113.1", "peer", "198.51.100.1", "dev", "nr")
	tp.Ping(tp.A, "203.0.113.1")
	wantCaps(t, d.Cmd.Process.Pid, b[i+8:i+24])
}

// TestPrivilegesDroppedRun: `gretun run` keeps only the two capabilities
// as well, and its tunnel carries traffic.
func TestPrivilegesDroppedRun(t *testing.T) {
	t.Parallel()
	tp := Pair(t)
	p := tp.Run(tp.A, "pr", "mode", "gre", "remote", UnderB, "local", UnderA, "key", "4", "keepalive", "0.2", "3")
	defer p.Stop()
	defer tp.Run(tp.B, "pr", "mode", "gre", "remote", UnderA, "local", UnderB, "key", "4").Stop()
	tp.waitFor("the daemon set up", func() bool { return strings.Contains(p.Log(), "tunnel added") })
	tp.Sh(tp.A, "ip", "addr", "add", "198.51.100.1", "peer", "203.0.113.1", "dev", "pr")
	tp.Sh(tp.B, "ip", "addr", "add", "203.0.113.1", "peer", "198.51.100.1", "dev", "pr")
	tp.Ping(tp.A, "203.0.113.1")
	tp.waitFor("keepalive replies", func() bool { return tp.keepalive(tp.A, "pr").Received > 0 })
	wantCaps(t, p.Cmd.Process.Pid, onlyNetCaps)
}
