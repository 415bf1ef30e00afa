package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gretun/gretun/internal/testnet"
)

// TestDelRemovesDeviceAndRoutes deletes a tunnel the user has put an
// address and a route on: the device and its routes go, the daemon and the
// other tunnels stay, and the name can be used again.
func TestDelRemovesDeviceAndRoutes(t *testing.T) {
	t.Parallel()
	tp := Pair(t)
	d := tp.Daemon(tp.A)
	tp.add(tp.A, "g1", "mode", "gre", "remote", UnderB, "local", UnderA, "key", "1")
	tp.add(tp.A, "g2", "mode", "gre", "remote", UnderB, "local", UnderA, "key", "2")
	tp.Route(tp.A, "g1", LanA, "203.0.113.0/24")
	if out := tp.Sh(tp.A, "ip", "route", "show", "203.0.113.0/24"); !strings.Contains(out, "dev g1") {
		t.Fatalf("route through g1 missing: %q", out)
	}
	idx2 := tp.ifindex(tp.A, "g2")

	if r := tp.G(tp.A, "tunnel", "del", "g1"); r.code != 0 || r.stderr != "" {
		t.Fatalf("tunnel del g1: exit %d: %s", r.code, r.stderr)
	}
	if tp.hasLink(tp.A, "g1") {
		t.Error("device g1 still exists after tunnel del")
	}
	if out := tp.Sh(tp.A, "ip", "route", "show", "table", "all"); strings.Contains(out, "g1") || strings.Contains(out, "203.0.113.") {
		t.Errorf("routes left behind by g1:\n%s", out)
	}
	if out := tp.Sh(tp.A, "ip", "addr", "show"); strings.Contains(out, LanA) {
		t.Errorf("address %s left behind:\n%s", LanA, out)
	}
	if got := tp.show(tp.A); strings.Contains(got, "g1:") || !strings.Contains(got, "g2:") {
		t.Errorf("tunnel show after del:\n%s", got)
	}
	if tp.ifindex(tp.A, "g2") != idx2 {
		t.Error("deleting g1 recreated g2")
	}
	// The name is free again.
	tp.add(tp.A, "g1", "mode", "gre", "remote", UnderB, "local", UnderA, "key", "1")
	if !tp.hasLink(tp.A, "g1") {
		t.Error("g1 not recreated")
	}
	if err := d.Stop(); err != nil {
		t.Errorf("daemon: %v: %s", err, d.Log())
	}

	// `tunnel del` of a foreground `gretun run` tunnel removes the device
	// and ends the process.
	p := tp.Run(tp.A, "r1", "mode", "gre", "remote", UnderB, "local", UnderA)
	tp.waitSocket(tp.A, p)
	if r := tp.G(tp.A, "tunnel", "del", "r1"); r.code != 0 || r.stderr != "" {
		t.Errorf("tunnel del r1: exit %d: %s", r.code, r.stderr)
	}
	if code := wait(t, p); code != 0 {
		t.Errorf("gretun run exited with %d after tunnel del: %s", code, p.Log())
	}
	if tp.hasLink(tp.A, "r1") {
		t.Error("device r1 still exists after tunnel del")
	}
}

// TestSignalsRemoveDevices stops daemons (tunnels from a config file and
// from the command line) and a foreground `gretun run` with SIGTERM and
// SIGINT: each exits 0 and removes every device it created.
func TestSignalsRemoveDevices(t *testing.T) {
	t.Parallel()
	tp := Pair(t)
	before := tp.links(tp.A)
	conf := filepath.Join(t.TempDir(), "a.conf")
	writeFile(t, conf, "c1 mode gre remote 192.0.2.2 local 192.0.2.1 key 1\nc2 mode ipip remote 192.0.2.2 local 192.0.2.1\n")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		d := tp.Daemon(tp.A, "-c", conf)
		tp.add(tp.A, "g3", "mode", "gre", "remote", UnderB, "local", UnderA, "key", "3")
		tp.add(tp.A, "g4", "mode", "gre", "remote", "192.0.2.4", "local", UnderA, "csum", "seq")
		tp.Route(tp.A, "g3", LanA, "203.0.113.0/24")
		if got := tp.links(tp.A); len(got) != len(before)+4 {
			t.Fatalf("devices before %v: %v", sig, got)
		}
		d.Cmd.Process.Signal(sig)
		if code := wait(t, d); code != 0 {
			t.Errorf("daemon exited with %d after %v: %s", code, sig, d.Log())
		}
		if got := tp.links(tp.A); !slices.Equal(got, before) {
			t.Errorf("after %v devices are %v, want %v", sig, got, before)
		}
		if out := tp.Sh(tp.A, "ip", "route", "show", "table", "all"); strings.Contains(out, "203.0.113.") {
			t.Errorf("routes left behind after %v:\n%s", sig, out)
		}
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		p := tp.Run(tp.A, "r1", "mode", "ipip", "remote", UnderB, "local", UnderA)
		p.Cmd.Process.Signal(sig)
		if code := wait(t, p); code != 0 {
			t.Errorf("gretun run exited with %d after %v: %s", code, sig, p.Log())
		}
		if got := tp.links(tp.A); !slices.Equal(got, before) {
			t.Errorf("after %v to gretun run devices are %v, want %v", sig, got, before)
		}
	}
}

// TestRestartAfterKill kills daemons with SIGKILL, which they cannot clean
// up after: the kernel removes their TUN devices, nothing stale is left on
// the control socket, and a new daemon re-adds the same tunnels. Both the
// default (abstract) socket and a socket file are tried.
func TestRestartAfterKill(t *testing.T) {
	t.Parallel()
	tp := Pair(t)
	before := tp.links(tp.A)
	sockFile := filepath.Join(t.TempDir(), "run", "gretun.sock")
	for _, sock := range []string{"", sockFile} {
		var opt []string
		if sock != "" {
			opt = []string{"-S", sock}
		}
		start := func() *Proc {
			p := tp.Start(tp.A, append(opt, "daemon")...)
			tp.waitSocket(tp.A, p, opt...)
			return p
		}
		add := func(name string, words ...string) {
			t.Helper()
			r := tp.G(tp.A, append(append(opt, "tunnel", "add", name), words...)...)
			if r.code != 0 {
				t.Fatalf("tunnel add %s (socket %q): %s", name, sock, r.stderr)
			}
		}
		addAll := func() {
			add("k1", "mode", "gre", "remote", UnderB, "local", UnderA, "key", "1")
			add("k2", "mode", "ipip", "remote", UnderB, "local", UnderA)
		}

		d := start()
		addAll()
		if sock != "" {
			fi, err := os.Stat(sock)
			if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
				t.Errorf("control socket %s: %v, mode %v, want a socket with mode 0600", sock, err, fi.Mode())
			}
		}
		d.Cmd.Process.Kill()
		wait(t, d)
		if got := tp.links(tp.A); !slices.Equal(got, before) {
			t.Errorf("socket %q: devices after SIGKILL are %v, want %v", sock, got, before)
		}
		d = start()
		if r := tp.G(tp.A, append(opt, "tunnel", "show")...); r.stdout != "" {
			t.Errorf("restarted daemon has tunnels already:\n%s", r.stdout)
		}
		addAll()
		if !tp.hasLink(tp.A, "k1") || !tp.hasLink(tp.A, "k2") {
			t.Errorf("socket %q: tunnels not re-added: %v", sock, tp.links(tp.A))
		}
		if err := d.Stop(); err != nil {
			t.Errorf("daemon: %v: %s", err, d.Log())
		}
		if got := tp.links(tp.A); !slices.Equal(got, before) {
			t.Errorf("socket %q: devices after SIGTERM are %v, want %v", sock, got, before)
		}
	}
}

// TestChangeKeepsDevice changes the key and TTL of running tunnels, as
// `ip tunnel change` does: the devices, the user's addresses and routes
// survive, the new key is used on the wire at once (the other side drops
// packets until it changes too), and then traffic flows again.
func TestChangeKeepsDevice(t *testing.T) {
	t.Parallel()
	tp := Classic(t)
	tp.Run(tp.A, "netb", "mode", "gre", "remote", UnderB, "local", UnderA, "ttl", "255", "key", "7")
	tp.Run(tp.B, "neta", "mode", "gre", "remote", UnderA, "local", UnderB, "ttl", "255", "key", "7")
	tp.Route(tp.A, "netb", LanA, "203.0.113.0/24")
	tp.Route(tp.B, "neta", LanB, "198.51.100.0/24")
	tp.Ping(tp.HostA, HostBIP)
	idxA, idxB := tp.ifindex(tp.A, "netb"), tp.ifindex(tp.B, "neta")

	if r := tp.G(tp.A, "tunnel", "change", "netb", "ttl", "64", "key", "9"); r.code != 0 {
		t.Fatalf("tunnel change: %s", r.stderr)
	}
	if got := tp.show(tp.A); got != "netb: gre/ip remote 192.0.2.2 local 192.0.2.1 ttl 64 key 9\n" {
		t.Errorf("after change A shows %q", got)
	}
	// B still expects key 7: A's packets now match no tunnel there.
	unmatched := tp.unmatched(tp.B)
	if out, err := tp.Exec(tp.HostA, "ping", "-c", "2", "-i", "0.2", "-W", "1", HostBIP); err == nil {
		t.Errorf("ping crossed with mismatched keys:\n%s", out)
	}
	if got := tp.unmatched(tp.B); got < unmatched+2 {
		t.Errorf("B counted %d packets with A's new key as unmatched, want 2 or more", got-unmatched)
	}

	if r := tp.G(tp.B, "tunnel", "change", "neta", "key", "9", "ttl", "64"); r.code != 0 {
		t.Fatalf("tunnel change: %s", r.stderr)
	}
	// The outer TTL on the wire is the new one.
	var dump testnet.Buffer
	if _, err := tp.Net.Start(tp.B, &dump, &dump, "tcpdump", "-l", "-n", "-v", "-c", "1", "-i", "wan", "ip proto 47 and src "+UnderA); err == nil {
		for i := 0; i < 300 && !strings.Contains(dump.String(), "listening"); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
	tp.Ping(tp.HostA, HostBIP)
	tp.Ping(tp.HostB, HostAIP)
	if out := dump.String(); strings.Contains(out, "listening") {
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(dump.String(), "proto GRE") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if out := dump.String(); !strings.Contains(out, "ttl 64,") {
			t.Errorf("outer packet from A does not carry ttl 64:\n%s", out)
		}
	} else {
		t.Logf("tcpdump unavailable, outer TTL not checked: %s", out)
	}

	for _, c := range []struct{ ns, dev, addr, route string }{
		{tp.A, "netb", LanA, "203.0.113.0/24"},
		{tp.B, "neta", LanB, "198.51.100.0/24"},
	} {
		if out := tp.Sh(c.ns, "ip", "-o", "addr", "show", "dev", c.dev); !strings.Contains(out, c.addr) {
			t.Errorf("%s lost its address %s: %s", c.dev, c.addr, out)
		}
		if out := tp.Sh(c.ns, "ip", "route", "show", c.route); !strings.Contains(out, "dev "+c.dev) {
			t.Errorf("route %s through %s lost: %q", c.route, c.dev, out)
		}
	}
	if tp.ifindex(tp.A, "netb") != idxA || tp.ifindex(tp.B, "neta") != idxB {
		t.Error("tunnel change recreated a device")
	}
}
