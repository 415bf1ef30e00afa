package e2e

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gretun/gretun/internal/testnet"
)

// TestChangeKeepsSequence: a daemon's tunnel with seq toward a `gretun run`
// peer with seq; pings flow while the daemon's side changes its TTL with
// `tunnel change`, and again while a reload changes only the TTL. The
// sequence numbers go on counting: the peer counts no packet out of
// sequence, and the pings keep being answered.
func TestChangeKeepsSequence(t *testing.T) {
	t.Parallel()
	tp := Pair(t)
	path := filepath.Join(t.TempDir(), "gretun.conf")
	const line = "sq mode gre remote 192.0.2.2 local 192.0.2.1 key 7 seq ttl "
	writeFile(t, path, line+"255\n")
	d := tp.Daemon(tp.A, "-c", path)
	tp.Run(tp.B, "sq", "mode", "gre", "remote", UnderA, "local", UnderB, "key", "7", "seq")
	tp.Sh(tp.A, "ip", "addr", "add", "198.51.100.1", "peer", "203.0.113.1", "dev", "sq")
	tp.Sh(tp.B, "ip", "addr", "add", "203.0.113.1", "peer", "198.51.100.1", "dev", "sq")
	tp.Ping(tp.A, "203.0.113.1")

	for _, step := range []struct {
		what string
		do   func()
	}{
		{"tunnel change sq ttl 64", func() {
			if r := tp.G(tp.A, "tunnel", "change", "sq", "ttl", "64"); r.code != 0 {
				t.Fatalf("tunnel change: %s", r.stderr)
			}
		}},
		{"a reload that changes only the ttl", func() {
			writeFile(t, path, line+"32\n")
			hup(t, d, "configuration reloaded")
		}},
	} {
		before := tp.Stats(tp.B, "sq").RxPackets
		stop := tp.pingFlood(tp.A, "203.0.113.1")
		time.Sleep(500 * time.Millisecond)
		step.do()
		time.Sleep(500 * time.Millisecond)
		out := stop()
		s := tp.Stats(tp.B, "sq")
		if s.RxOutOfSeq != 0 || s.RxErrors != 0 {
			t.Errorf("after %s: the peer dropped %d packets out of sequence (%d receive errors)\nping: %s", step.what, s.RxOutOfSeq, s.RxErrors, out)
		}
		if s.RxPackets < before+10 {
			t.Errorf("after %s: the peer received %d packets during the pings", step.what, s.RxPackets-before)
		}
		tp.Ping(tp.A, "203.0.113.1")
	}
	if got := tp.show(tp.A); !strings.Contains(got, "ttl 32") {
		t.Errorf("the reload did not change the ttl: %s", got)
	}
}

// pingFlood pings dst from ns every 10 ms until the returned function is
// called, which returns ping's summary.
func (tp *Topology) pingFlood(ns, dst string) (stop func() string) {
	tp.T.Helper()
	var out testnet.Buffer
	cmd, err := tp.Net.Start(ns, &out, &out, "ping", "-i", "0.01", "-W", "1", dst)
	if err != nil {
		tp.T.Fatal(err)
	}
	return func() string {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		return strings.Join(lines[max(0, len(lines)-2):], "\n")
	}
}
