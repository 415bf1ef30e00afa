package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gretun/gretun/tunnel"
)

// usernsScript runs inside `unshare --user --map-root-user --net` as an
// unprivileged user: two addresses on a veth pair, a gretun daemon with two
// tunnels between them, and pings into one tunnel, which the other must
// receive (the inner destination is not on this host, so the kernel then
// drops them; only the counters show the crossing). $1 is gretun.
const usernsScript = `
G=$1
ip link set dev lo up
ip link add v0 type veth peer name v1
ip addr add 192.0.2.1/24 dev v0
ip addr add 192.0.2.2/24 dev v1
ip link set dev v0 up
ip link set dev v1 up
$G daemon &
pid=$!
for i in $(seq 300); do $G tunnel show >/dev/null 2>&1 && break; sleep 0.05; done
$G tunnel add ta mode gre remote 192.0.2.2 local 192.0.2.1 key 1
$G tunnel add tb mode gre remote 192.0.2.1 local 192.0.2.2 key 1
ip addr add 198.51.100.1 peer 203.0.113.9 dev ta
ping -c 3 -i 0.2 -w 2 203.0.113.9 >/dev/null || true
echo '--- json'
$G -s -j tunnel show
echo '--- end'
kill -TERM $pid
rc=0
wait $pid || rc=$?
echo "daemon exit $rc"
ip -o link show
`

// TestUserNamespace runs gretun as uid 65534 inside a user namespace it
// owns, as rootless containers do: TUN devices and raw sockets must both
// work there. /dev/net/tun must be usable by everyone for that (as on most
// distributions); the test sets mode 0666 and restores the original mode.
func TestUserNamespace(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run as another user and to chmod /dev/net/tun")
	}
	needSetpriv(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare (util-linux)")
	}
	bin := publicGretun(t)
	userns := append(append([]string{}, nobody...), "unshare", "--user", "--map-root-user", "--net",
		// A PID namespace: when the script ends, everything it started dies.
		"--pid", "--fork", "--kill-child")
	run := func(script string) (string, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, userns[0], append(userns[1:], "sh", "-ec", script, "sh", bin)...)
		cmd.Dir = "/"
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	if out, stderr, err := run("id -u"); err != nil || strings.TrimSpace(out) != "0" {
		t.Skipf("unprivileged user namespaces are not available: %v: %s", err, stderr)
	}

	fi, err := os.Stat("/dev/net/tun")
	if err != nil {
		t.Skipf("no TUN driver: %v", err)
	}
	mode := fi.Mode().Perm()
	if mode&0o006 != 0o006 {
		// Without access to /dev/net/tun gretun says so in one line.
		_, stderr, err := run(`ip addr add 192.0.2.1/24 dev lo; ip link set dev lo up; $1 run ta mode gre remote 192.0.2.2 local 192.0.2.1`)
		if err == nil || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "/dev/net/tun") {
			t.Errorf("with /dev/net/tun mode %v: err %v, want one line naming /dev/net/tun, got %q", mode, err, stderr)
		}
		if err := os.Chmod("/dev/net/tun", 0o666); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := os.Chmod("/dev/net/tun", mode); err != nil {
				t.Errorf("restoring /dev/net/tun to %v: %v", mode, err)
			}
		})
	}

	out, stderr, err := run(usernsScript)
	if err != nil {
		t.Fatalf("in the user namespace: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	_, rest, ok1 := strings.Cut(out, "--- json\n")
	js, tail, ok2 := strings.Cut(rest, "--- end\n")
	if !ok1 || !ok2 {
		t.Fatalf("unexpected output:\n%s\nstderr:\n%s", out, stderr)
	}
	var v struct{ Tunnels []tunnel.Status }
	if err := json.Unmarshal([]byte(js), &v); err != nil || len(v.Tunnels) != 2 {
		t.Fatalf("tunnel show: %v:\n%s\nstderr:\n%s", err, js, stderr)
	}
	ta, tb := v.Tunnels[0].Stats, v.Tunnels[1].Stats
	if v.Tunnels[0].Config.Name != "ta" {
		ta, tb = tb, ta
	}
	// At least the 3 pings; IPv6 housekeeping may add a few packets.
	if ta.TxPackets < 3 || tb.RxPackets < 3 {
		t.Errorf("ta sent %d packets and tb received %d, want the 3 pings through both\nta %+v\ntb %+v\nlog:\n%s",
			ta.TxPackets, tb.RxPackets, ta, tb, stderr)
	}
	if ta.TxErrors != 0 || tb.RxErrors != 0 {
		t.Errorf("errors: ta %+v tb %+v", ta, tb)
	}
	if !strings.Contains(tail, "daemon exit 0") {
		t.Errorf("daemon did not exit cleanly:\n%s\nlog:\n%s", tail, stderr)
	}
	if strings.Contains(tail, "ta:") || strings.Contains(tail, "tb:") {
		t.Errorf("devices left after SIGTERM:\n%s", tail)
	}
}
