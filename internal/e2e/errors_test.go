package e2e

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// badWords are tunnel definitions gretun must refuse before creating
// anything, with what the one-line error must name. Router A has the
// underlay address UnderA on device wan.
var badWords = []struct {
	name  string
	words []string
	want  []string
}{
	{"bad address", []string{"mode", "gre", "remote", "192.0.2.300", "local", UnderA}, []string{`"192.0.2.300"`, "remote"}},
	{"IPv6 address on an IPv4 mode", []string{"mode", "gre", "remote", "2001:db8::2", "local", UnderA}, []string{"remote 2001:db8::2 is an IPv6 address", "needs IPv4", "ip6gre"}},
	{"bad local", []string{"mode", "gre", "remote", UnderB, "local", "192.0.2"}, []string{`"192.0.2"`, "local"}},
	{"unknown word", []string{"mode", "gre", "remote", UnderB, "local", UnderA, "frobnicate"}, []string{`unknown word "frobnicate"`}},
	{"missing value", []string{"mode", "gre", "remote", UnderB, "local"}, []string{`missing value after "local"`}},
	{"missing remote", []string{"mode", "ipip", "local", UnderA}, []string{"missing remote", "multipoint tunnel needs mode gre"}},
	{"learn on a point-to-point tunnel", []string{"mode", "gre", "remote", UnderB, "local", UnderA, "learn"}, []string{"learn needs a multipoint tunnel"}},
	{"keepalive on a multipoint tunnel", []string{"mode", "gre", "local", UnderA, "keepalive"}, []string{"keepalive needs a remote"}},
	{"missing mode", []string{"remote", UnderB, "local", UnderA}, []string{"missing mode"}},
	{"unknown mode", []string{"mode", "vxlan", "remote", UnderB, "local", UnderA}, []string{`"vxlan"`}},
	{"remote equals local", []string{"mode", "gre", "remote", UnderA, "local", UnderA}, []string{UnderA, "equals local"}},
	{"multicast remote", []string{"mode", "gre", "remote", "224.0.0.1", "local", UnderA}, []string{"224.0.0.1", "unicast"}},
	{"key on ipip", []string{"mode", "ipip", "remote", UnderB, "local", UnderA, "key", "5"}, []string{"keys need mode gre"}},
	{"ikey on ipip", []string{"mode", "ipip", "remote", UnderB, "local", UnderA, "ikey", "5"}, []string{"keys need mode gre"}},
	{"csum on ipip", []string{"mode", "ipip", "remote", UnderB, "local", UnderA, "csum"}, []string{"csum needs mode gre"}},
	{"seq on ipip", []string{"mode", "ipip", "remote", UnderB, "local", UnderA, "seq"}, []string{"seq needs mode gre"}},
	{"ttl too big", []string{"mode", "gre", "remote", UnderB, "local", UnderA, "ttl", "256"}, []string{`invalid ttl "256"`}},
	{"ttl negative", []string{"mode", "gre", "remote", UnderB, "local", UnderA, "ttl", "-1"}, []string{`invalid ttl "-1"`}},
	{"ttl word", []string{"mode", "gre", "remote", UnderB, "local", UnderA, "ttl", "high"}, []string{`invalid ttl "high"`}},
	{"tos too big", []string{"mode", "gre", "remote", UnderB, "local", UnderA, "tos", "0x100"}, []string{`invalid tos "0x100"`}},
	{"tos word", []string{"mode", "gre", "remote", UnderB, "local", UnderA, "tos", "lowdelay!"}, []string{`invalid tos "lowdelay!"`}},
	{"key word", []string{"mode", "gre", "remote", UnderB, "local", UnderA, "key", "secret"}, []string{`invalid key "secret"`}},
	{"key too big", []string{"mode", "gre", "remote", UnderB, "local", UnderA, "key", "4294967296"}, []string{`invalid key "4294967296"`}},
	{"key bad quad", []string{"mode", "gre", "remote", UnderB, "local", UnderA, "okey", "1.2.3"}, []string{`invalid key "1.2.3"`}},
	{"mtu too small", []string{"mode", "gre", "remote", UnderB, "local", UnderA, "mtu", "67"}, []string{"invalid mtu 67"}},
	{"mtu too big", []string{"mode", "gre", "remote", UnderB, "local", UnderA, "mtu", "65520"}, []string{"invalid mtu 65520"}},
	{"mtu word", []string{"mode", "gre", "remote", UnderB, "local", UnderA, "mtu", "jumbo"}, []string{`invalid mtu "jumbo"`}},
	{"keepalive on ipip", []string{"mode", "ipip", "remote", UnderB, "local", UnderA, "keepalive"}, []string{"keepalive needs mode gre"}},
	{"tos inherit on gretap", []string{"mode", "gretap", "remote", UnderB, "local", UnderA, "tos", "inherit"}, []string{"tos inherit", "gretap"}},
	{"clamp-mss on gretap", []string{"mode", "gretap", "remote", UnderB, "local", UnderA, "clamp-mss"}, []string{"clamp-mss", "gretap"}},
	{"mtu too big for gretap", []string{"mode", "gretap", "remote", UnderB, "local", UnderA, "mtu", "65500"}, []string{"invalid mtu 65500"}},
	{"key on sit", []string{"mode", "sit", "remote", UnderB, "local", UnderA, "key", "5"}, []string{"keys need mode gre"}},
	{"remote any on sit", []string{"mode", "sit", "remote", "any", "local", UnderA}, []string{"mode sit needs one", "6to4 or ISATAP, is not supported"}},
	{"mtu below IPv6's on sit", []string{"mode", "sit", "remote", UnderB, "local", UnderA, "mtu", "1279"}, []string{"invalid mtu 1279 (want 1280-"}},
}

// TestRunErrors feeds `gretun run` every kind of bad input and checks the
// error contract: non-zero exit, one line naming the problem, and no device
// left behind.
func TestRunErrors(t *testing.T) {
	t.Parallel()
	tp := Pair(t)
	before := tp.links(tp.A)
	// A device gretun left behind would still be there at the end (and
	// make the next case fail as a duplicate), so the devices are compared
	// once a batch.
	unchanged := func(what string) {
		t.Helper()
		if got := tp.links(tp.A); !slices.Equal(got, before) {
			t.Errorf("%s: devices changed from %v to %v", what, before, got)
		}
	}
	for _, c := range badWords {
		r := tp.G(tp.A, append([]string{"run", "x1"}, c.words...)...)
		wantError(t, c.name, r, append(c.want, "run x1")...)
	}
	unchanged("bad words")
	ok := []string{"mode", "gre", "remote", UnderB, "local", UnderA}
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"no name", []string{"run"}, []string{"missing tunnel name"}},
		{"long name", append([]string{"run", "abcdefghijklmnop"}, ok...), []string{`"abcdefghijklmnop"`, "longer than 15"}},
		{"slash in name", append([]string{"run", "a/b"}, ok...), []string{`"a/b"`}},
		{"loopback's name", append([]string{"run", "lo"}, ok...), []string{`device named "lo" already exists`}},
		{"a veth's name", append([]string{"run", "wan"}, ok...), []string{`device named "wan" already exists`}},
		{"local not here", []string{"run", "x1", "mode", "gre", "remote", UnderB, "local", "192.0.2.9"}, []string{"192.0.2.9", "not configured"}},
		// Router B's address is on the same link, but not on this host.
		{"local is the peer's", []string{"run", "x1", "mode", "ipip", "remote", "192.0.2.3", "local", UnderB}, []string{UnderB, "not configured"}},
		{"unknown object", []string{"tunnels", "show"}, []string{`unknown object "tunnels"`}},
		{"unknown option", []string{"-x", "tunnel", "show"}, []string{`unknown option "-x"`}},
	} {
		wantError(t, c.name, tp.G(tp.A, c.args...), c.want...)
	}
	unchanged("bad arguments")
	// wantError's stdout check also covers the usage text: a bare `gretun`
	// prints usage on stderr and fails.
	if r := tp.G(tp.A); r.code == 0 || !strings.Contains(r.stderr, "usage:") {
		t.Errorf("gretun with no arguments: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestDaemonErrors sends bad requests through the command line to a
// running daemon: each fails with one line and leaves the daemon's tunnels
// and the host's devices as they were.
func TestDaemonErrors(t *testing.T) {
	t.Parallel()
	tp := Pair(t)
	// No daemon yet: the client says so.
	for _, args := range [][]string{
		{"tunnel", "add", "x1", "mode", "gre", "remote", UnderB, "local", UnderA},
		{"tunnel", "show"},
		{"tunnel", "del", "x1"},
		{"tunnel", "change", "x1", "ttl", "9"},
	} {
		wantError(t, "no daemon: "+strings.Join(args[:2], " "), tp.G(tp.A, args...), "no gretun daemon is listening", "gretun daemon")
	}
	d := tp.Daemon(tp.A)
	tp.add(tp.A, "g1", "mode", "gre", "remote", UnderB, "local", UnderA, "key", "1", "ttl", "64")
	tp.add(tp.A, "i1", "mode", "ipip", "remote", UnderB, "local", UnderA)
	links, shown := tp.links(tp.A), tp.show(tp.A)
	idx := tp.ifindex(tp.A, "g1")
	unchanged := func(what string) {
		t.Helper()
		if got := tp.links(tp.A); !slices.Equal(got, links) {
			t.Errorf("%s: devices changed from %v to %v", what, links, got)
		}
		if got := tp.show(tp.A); got != shown {
			t.Errorf("%s: tunnels changed from\n%s to\n%s", what, shown, got)
		}
	}
	for _, c := range badWords {
		r := tp.G(tp.A, append([]string{"tunnel", "add", "x1"}, c.words...)...)
		wantError(t, "add: "+c.name, r, append(c.want, "tunnel add x1")...)
	}
	unchanged("add with bad words")
	ok := []string{"mode", "gre", "remote", UnderB, "local", UnderA}
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"add: duplicate name", []string{"tunnel", "add", "g1", "mode", "gre", "remote", "192.0.2.3", "local", UnderA}, []string{`"g1" already exists`}},
		{"add: same endpoints and key", []string{"tunnel", "add", "g2", "mode", "gre", "remote", UnderB, "local", UnderA, "key", "1"}, []string{`"g1" already uses`}},
		{"add: same endpoints, ipip", []string{"tunnel", "add", "i2", "mode", "ipip", "remote", UnderB, "local", UnderA}, []string{`"i1" already uses`}},
		{"add: loopback's name", append([]string{"tunnel", "add", "lo"}, ok...), []string{`device named "lo" already exists`}},
		{"add: a veth's name", append([]string{"tunnel", "add", "wan"}, ok...), []string{`device named "wan" already exists`}},
		{"add: local not here", []string{"tunnel", "add", "x1", "mode", "gre", "remote", UnderB, "local", "192.0.2.9"}, []string{"192.0.2.9", "not configured"}},
		{"add: no name", []string{"tunnel", "add"}, []string{"missing tunnel name"}},
		{"del: unknown", []string{"tunnel", "del", "x1"}, []string{`no tunnel named "x1"`}},
		{"del: a veth", []string{"tunnel", "del", "wan"}, []string{`no tunnel named "wan"`}},
		{"del: two names", []string{"tunnel", "del", "g1", "i1"}, []string{"exactly one"}},
		{"show: unknown", []string{"tunnel", "show", "x1"}, []string{`no tunnel named "x1"`}},
		{"unknown verb", []string{"tunnel", "frob"}, []string{`unknown command "frob"`}},
		{"change: unknown", []string{"tunnel", "change", "x1", "ttl", "9"}, []string{`no tunnel named "x1"`}},
		{"change: bad ttl", []string{"tunnel", "change", "g1", "ttl", "300"}, []string{`invalid ttl "300"`}},
		{"change: bad key", []string{"tunnel", "change", "g1", "key", "-1"}, []string{`invalid key "-1"`}},
		{"change: bad mtu", []string{"tunnel", "change", "g1", "mtu", "1"}, []string{"invalid mtu 1"}},
		{"change: unknown word", []string{"tunnel", "change", "g1", "colour", "blue"}, []string{`unknown word "colour"`}},
		{"change: remote equals local", []string{"tunnel", "change", "g1", "remote", UnderA}, []string{"equals local"}},
		{"change: local not here", []string{"tunnel", "change", "g1", "local", "192.0.2.9"}, []string{"192.0.2.9", "not configured"}},
		{"change: to ipip with a key", []string{"tunnel", "change", "g1", "mode", "ipip"}, []string{"keys need mode gre"}},
		{"change: mode", []string{"tunnel", "change", "g1", "mode", "ipip", "nokey"}, []string{"cannot change mode from gre to ipip"}},
		{"second daemon", []string{"daemon"}, []string{"another gretun daemon is already running"}},
		{"daemon: unknown option", []string{"daemon", "-x"}, []string{`unknown option "-x"`}},
		{"daemon: no such file", []string{"daemon", "-c", "/nonexistent/gretun.conf"}, []string{"/nonexistent/gretun.conf"}},
	} {
		wantError(t, c.name, tp.G(tp.A, c.args...), c.want...)
		unchanged(c.name)
	}
	if got := tp.ifindex(tp.A, "g1"); got != idx {
		t.Errorf("g1 was recreated by failed requests: ifindex %d, was %d", got, idx)
	}
	if d.Cmd.ProcessState != nil {
		t.Fatalf("daemon exited: %s", d.Log())
	}
	if err := d.Stop(); err != nil {
		t.Errorf("daemon: %v: %s", err, d.Log())
	}
}

// TestDaemonConfigErrors starts daemons with bad config files: the daemon
// exits, names the problem, and leaves no device behind even when some
// tunnels of the file were already created.
func TestDaemonConfigErrors(t *testing.T) {
	t.Parallel()
	tp := Pair(t)
	before := tp.links(tp.A)
	dir := t.TempDir()
	for _, c := range []struct {
		name, file string
		want       []string
	}{
		{"bad word", "g1 mode gre remote 192.0.2.2 local 192.0.2.1\n\n# three\ng2 mode gre remote 192.0.2.3 local 192.0.2.1 tll 3\n",
			[]string{"bad word.conf:4", `unknown word "tll"`}},
		{"duplicate", "g1 mode gre remote 192.0.2.2 local 192.0.2.1\ng1 mode gre remote 192.0.2.3 local 192.0.2.1\n",
			[]string{"duplicate.conf:2", `"g1"`, "line 1"}},
		// The first tunnel is created before the second fails; it must go.
		{"local not here", "g1 mode gre remote 192.0.2.2 local 192.0.2.1\ng2 mode gre remote 192.0.2.2 local 192.0.2.9\n",
			[]string{"local not here.conf", "g2", "192.0.2.9", "not configured"}},
		{"a device's name", "g1 mode gre remote 192.0.2.2 local 192.0.2.1\nwan mode gre remote 192.0.2.3 local 192.0.2.1\n",
			[]string{`"wan" already exists`}},
	} {
		path := filepath.Join(dir, c.name+".conf")
		writeFile(t, path, c.file)
		r := tp.G(tp.A, "daemon", "-c", path)
		if r.code == 0 {
			t.Errorf("%s: daemon started with a bad file", c.name)
			continue
		}
		// The daemon may log the tunnels it set up before failing; the
		// error is its last line.
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last, "gretun: ") {
			t.Errorf("%s: last line of stderr is not the error: %q", c.name, r.stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(last, w) {
				t.Errorf("%s: error %q does not name %q", c.name, last, w)
			}
		}
		if got := tp.links(tp.A); !slices.Equal(got, before) {
			t.Errorf("%s: devices changed from %v to %v", c.name, before, got)
		}
	}
	// After all that the socket is free.
	tp.Daemon(tp.A).Stop()
}

// TestPrivilegeErrors runs gretun without CAP_NET_ADMIN or CAP_NET_RAW and
// as a user the daemon does not serve.
func TestPrivilegeErrors(t *testing.T) {
	t.Parallel()
	needSetpriv(t)
	tp := Pair(t)
	bin := publicGretun(t)
	before := tp.links(tp.A)
	words := []string{"x1", "mode", "gre", "remote", UnderB, "local", UnderA}
	dropped := func(caps string) []string {
		return []string{"setpriv", "--inh-caps=" + caps, "--bounding-set=" + caps}
	}
	// A daemon with no TUN tunnel to make starts without capabilities
	// (TestNetstackUnprivileged); one whose file holds one does not.
	conf := filepath.Join(filepath.Dir(bin), "tun.conf")
	writeFile(t, conf, strings.Join(words, " ")+" encap fou\n")
	for _, c := range []struct {
		name   string
		prefix []string
		args   []string
		want   []string
	}{
		{"run as nobody", nobody, append([]string{"run"}, words...), []string{"CAP_NET_ADMIN", "CAP_NET_RAW"}},
		{"daemon as nobody", nobody, []string{"daemon", "-c", conf}, []string{"missing capability CAP_NET_ADMIN"}}, // no CAP_NET_RAW: encap fou needs none
		{"run without CAP_NET_RAW", dropped("-net_raw"), append([]string{"run"}, words...), []string{"missing capability CAP_NET_RAW"}},
		{"run without CAP_NET_ADMIN", dropped("-net_admin"), append([]string{"run"}, words...), []string{"missing capability CAP_NET_ADMIN"}},
	} {
		r := tp.cmd(tp.A, c.prefix, bin, c.args...)
		wantError(t, c.name, r, c.want...)
		if got := tp.links(tp.A); !slices.Equal(got, before) {
			t.Errorf("%s: devices changed from %v to %v", c.name, before, got)
		}
	}
	// None of the refused daemons holds the socket; a root one starts, and
	// refuses to take orders from another user.
	d := tp.Daemon(tp.A)
	tp.add(tp.A, "g1", words[1:]...)
	shown := tp.show(tp.A)
	for _, args := range [][]string{
		{"tunnel", "add", "x2", "mode", "gre", "remote", "192.0.2.3", "local", UnderA},
		{"tunnel", "del", "g1"},
		{"tunnel", "show"},
	} {
		r := tp.cmd(tp.A, nobody, bin, args...)
		wantError(t, "nobody: "+args[1], r, "permission denied", "uid 65534")
	}
	if got := tp.show(tp.A); got != shown {
		t.Errorf("tunnels changed from\n%s to\n%s", shown, got)
	}
	if tp.hasLink(tp.A, "x2") || !tp.hasLink(tp.A, "g1") {
		t.Errorf("devices changed: %v", tp.links(tp.A))
	}
	d.Stop()
}
