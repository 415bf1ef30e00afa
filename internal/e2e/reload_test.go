package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReload rewrites a daemon's config file and sends SIGHUP: the new
// tunnel appears, the removed one goes, the changed one is changed in place
// and the unchanged one is not touched at all (same device, counters still
// counting). An invalid file is refused with its file:line in the log and
// the running configuration stays.
func TestReload(t *testing.T) {
	t.Parallel()
	tp := Pair(t)
	path := filepath.Join(t.TempDir(), "gretun.conf")
	writeFile(t, path, `# router A
keep mode gre remote 192.0.2.2 local 192.0.2.1 key 1
gone mode gre remote 192.0.2.2 local 192.0.2.1 key 2
tunnel add chg mode gre remote 192.0.2.2 local 192.0.2.1 key 3 ttl 64
`)
	d := tp.Daemon(tp.A, "-c", path)
	if got := tp.show(tp.A); got != "chg: gre/ip remote 192.0.2.2 local 192.0.2.1 ttl 64 key 3\n"+
		"gone: gre/ip remote 192.0.2.2 local 192.0.2.1 ttl inherit key 2\n"+
		"keep: gre/ip remote 192.0.2.2 local 192.0.2.1 ttl inherit key 1\n" {
		t.Fatalf("tunnels from the file:\n%s", got)
	}
	// The user configures the tunnels; traffic goes out through keep.
	tp.Sh(tp.A, "ip", "addr", "add", "198.51.100.1", "peer", "203.0.113.1", "dev", "keep")
	tp.Sh(tp.A, "ip", "addr", "add", "198.51.100.3", "peer", "203.0.113.3", "dev", "chg")
	tp.Exec(tp.A, "ping", "-c", "5", "-i", "0.01", "-W", "1", "203.0.113.1")
	keepIdx, chgIdx := tp.ifindex(tp.A, "keep"), tp.ifindex(tp.A, "chg")
	keepTx := tp.Stats(tp.A, "keep").TxPackets
	if keepTx < 5 {
		t.Fatalf("keep sent %d packets, want the 5 pings", keepTx)
	}

	writeFile(t, path, `# router A, second version
keep mode gre remote 192.0.2.2 local 192.0.2.1 key 1
chg mode gre remote 192.0.2.2 local 192.0.2.1 key 33 ttl 32
new mode ipip remote 192.0.2.2 local 192.0.2.1
`)
	hup(t, d, "configuration reloaded")
	if got := tp.show(tp.A); got != "chg: gre/ip remote 192.0.2.2 local 192.0.2.1 ttl 32 key 33\n"+
		"keep: gre/ip remote 192.0.2.2 local 192.0.2.1 ttl inherit key 1\n"+
		"new: ipip/ip remote 192.0.2.2 local 192.0.2.1 ttl inherit\n" {
		t.Errorf("tunnels after reload:\n%s", got)
	}
	if tp.hasLink(tp.A, "gone") || !tp.hasLink(tp.A, "new") {
		t.Errorf("devices after reload: %v", tp.links(tp.A))
	}
	if got := tp.ifindex(tp.A, "keep"); got != keepIdx {
		t.Errorf("unchanged tunnel keep was recreated: ifindex %d, was %d", got, keepIdx)
	}
	if got := tp.ifindex(tp.A, "chg"); got != chgIdx {
		t.Errorf("changed tunnel chg was recreated: ifindex %d, was %d", got, chgIdx)
	}
	if out := tp.Sh(tp.A, "ip", "-o", "addr", "show", "dev", "keep"); !strings.Contains(out, "198.51.100.1") {
		t.Errorf("keep lost its address: %s", out)
	}
	if out := tp.Sh(tp.A, "ip", "-o", "addr", "show", "dev", "chg"); !strings.Contains(out, "198.51.100.3") {
		t.Errorf("chg lost its address: %s", out)
	}
	if got := tp.Stats(tp.A, "keep").TxPackets; got < keepTx {
		t.Errorf("keep's counters were reset: %d packets sent, had %d", got, keepTx)
	}

	// An invalid file: the daemon says where, and keeps what it runs.
	shown, links := tp.show(tp.A), tp.links(tp.A)
	writeFile(t, path, `keep mode gre remote 192.0.2.2 local 192.0.2.1 key 1
# the next line is fine, the one after it is not
other mode gre remote 192.0.2.2 local 192.0.2.1 key 5
broken mode gre remote 192.0.2.2 local 192.0.2.1 kye 6
`)
	logged := hup(t, d, "reload refused")
	if want := path + ":4:"; !strings.Contains(logged, want) || !strings.Contains(logged, `unknown word \"kye\"`) {
		t.Errorf("the log does not name %s and the bad word:\n%s", want, logged)
	}
	if got := tp.show(tp.A); got != shown {
		t.Errorf("tunnels changed by an invalid file:\n%s\nwas\n%s", got, shown)
	}
	if got := tp.links(tp.A); strings.Join(got, " ") != strings.Join(links, " ") {
		t.Errorf("devices changed by an invalid file: %v, were %v", got, links)
	}
	if got := tp.ifindex(tp.A, "keep"); got != keepIdx {
		t.Error("keep recreated by an invalid file")
	}
	if d.Cmd.ProcessState != nil {
		t.Fatalf("daemon exited: %s", d.Log())
	}
	if err := d.Stop(); err != nil {
		t.Errorf("daemon: %v: %s", err, d.Log())
	}
}

// hup sends SIGHUP to the daemon and waits for its next log line
// containing what, which it returns.
func hup(t testing.TB, p *Proc, what string) string {
	t.Helper()
	matching := func() []string {
		var lines []string
		for _, line := range strings.Split(p.Log(), "\n") {
			if strings.Contains(line, what) {
				lines = append(lines, line)
			}
		}
		return lines
	}
	seen := len(matching())
	p.Cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if lines := matching(); len(lines) > seen {
			return lines[seen]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%q never appeared in the log after SIGHUP:\n%s", what, p.Log())
	return ""
}

// TestReloadRefusedKeepsRunning: a file this host cannot run (a changed
// tunnel's local address is not here) is refused as a whole, also the
// deletion it asks for; a FIFO at the config path is refused at once
// without blocking the daemon, which still stops on SIGTERM.
func TestReloadRefusedKeepsRunning(t *testing.T) {
	t.Parallel()
	tp := Pair(t)
	path := filepath.Join(t.TempDir(), "gretun.conf")
	writeFile(t, path, `t1 mode gre remote 192.0.2.2 local 192.0.2.1 key 1
t2 mode gre remote 192.0.2.2 local 192.0.2.1 key 2
`)
	d := tp.Daemon(tp.A, "-c", path)
	shown, idx1, idx2 := tp.show(tp.A), tp.ifindex(tp.A, "t1"), tp.ifindex(tp.A, "t2")
	unchanged := func(what string) {
		t.Helper()
		if got := tp.show(tp.A); got != shown {
			t.Errorf("%s: tunnels changed:\n%s\nwere\n%s", what, got, shown)
		}
		if tp.ifindex(tp.A, "t1") != idx1 || tp.ifindex(tp.A, "t2") != idx2 {
			t.Errorf("%s: a device was recreated", what)
		}
	}

	writeFile(t, path, "t1 mode gre remote 192.0.2.2 local 192.0.2.9 key 1\n")
	if logged := hup(t, d, "reload refused"); !strings.Contains(logged, "192.0.2.9") || !strings.Contains(logged, "not configured") {
		t.Errorf("the refusal does not name the address: %s", logged)
	}
	unchanged("a local address not on the host")
	if strings.Contains(d.Log(), "tunnel deleted") {
		t.Errorf("a refused reload deleted a tunnel:\n%s", d.Log())
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if logged := hup(t, d, "reload refused"); !strings.Contains(logged, "not a regular file (a FIFO)") {
		t.Errorf("the refusal does not say what is wrong: %s", logged)
	}
	unchanged("a FIFO")
	stopped := make(chan error, 1)
	go func() { stopped <- d.Stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("daemon: %v: %s", err, d.Log())
		}
	case <-time.After(30 * time.Second):
		d.Cmd.Process.Kill()
		t.Fatalf("the daemon ignored SIGTERM after a SIGHUP with a FIFO as its config:\n%s", d.Log())
	}
}
