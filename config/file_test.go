package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoad(t *testing.T) {
	const file = "# router A\r\n" +
		"\n" +
		"netb mode gre remote 192.0.2.2 local 192.0.2.1 ttl 255 key 42   # to B\n" +
		"   \t\n" +
		"tunnel add k2 mode gre remote 192.0.2.2 local 192.0.2.1 key 2\r\n" +
		"tunnel ip1 mode ipip remote 192.0.2.3 local 192.0.2.1\n" +
		"six mode ip6gre remote 2001:db8::2 local 2001:db8::1 key 6 flowlabel inherit encaplimit none\n" +
		"# tunnel add commented mode gre remote 192.0.2.2 local 192.0.2.1\n" +
		"tunnel\n" +
		"last mode gre remote 192.0.2.4 local 192.0.2.1" // no final newline
	got, err := Load("a.conf", strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	var want []Tunnel
	for _, line := range []string{
		"netb mode gre remote 192.0.2.2 local 192.0.2.1 ttl 255 key 42",
		"k2 mode gre remote 192.0.2.2 local 192.0.2.1 key 2",
		"ip1 mode ipip remote 192.0.2.3 local 192.0.2.1",
		"six mode ip6gre remote 2001:db8::2 local 2001:db8::1 key 6 flowlabel inherit encaplimit none",
		"last mode gre remote 192.0.2.4 local 192.0.2.1",
	} {
		f := strings.Fields(line)
		c, err := Parse(f[0], f[1:])
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, c)
	}
	if diff := cmp.Diff(want, got, addrs); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}

	for _, empty := range []string{"", "\n\n", "# nothing\n  # here\n"} {
		if got, err := Load("e.conf", strings.NewReader(empty)); err != nil || len(got) != 0 {
			t.Errorf("Load(%q) = %v, %v; want no tunnels", empty, got, err)
		}
	}
}

// TestLoadErrors: every error names the file and the line, in one line.
func TestLoadErrors(t *testing.T) {
	ok := "t1 mode gre remote 192.0.2.2 local 192.0.2.1\n"
	for _, tc := range []struct{ file, want string }{
		{ok + "# comment\nt2 mode gre remote 192.0.2.2 local 192.0.2.1 kye 3\n", `a.conf:3: t2: unknown word "kye"`},
		{"t1 mode gre\n", "a.conf:1: t1: missing local"},
		{"t1 mode ipip local 192.0.2.1\n", "a.conf:1: t1: missing remote"},
		{ok + "t6 mode ip6gre remote 192.0.2.2 local 2001:db8::1\n", "a.conf:2: t6: remote 192.0.2.2 is an IPv4 address: mode ip6gre needs IPv6 (use mode gre)"},
		{ok + "t2 mode gre remote 192.0.2.2 local 192.0.2.1 ttl\n", `a.conf:2: t2: missing value after "ttl"`},
		{ok + "\n\nt1 mode gre remote 192.0.2.3 local 192.0.2.1\n", `a.conf:4: duplicate tunnel name "t1" (first on line 1)`},
		{"tunnel add mode gre remote 192.0.2.2 local 192.0.2.1\n", `a.conf:1: mode: unknown word "gre"`},
		{ok + "averyveryverylongname mode gre remote 192.0.2.2 local 192.0.2.1\n", "a.conf:2: averyveryverylongname: tunnel name"},
		{ok + strings.Repeat("x", 70000) + "\n", "a.conf:2: "},
	} {
		got, err := Load("a.conf", strings.NewReader(tc.file))
		if err == nil {
			t.Errorf("%q: loaded %v", tc.file, got)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("error %q, want one line starting %q", err, tc.want)
		}
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gretun.conf")
	if err := os.WriteFile(path, []byte("netb mode gre remote 192.0.2.2 local 192.0.2.1\nneta mode gre\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(path); err == nil || !strings.HasPrefix(err.Error(), path+":2: neta: ") {
		t.Errorf("LoadFile: %v, want an error naming %s:2", err, path)
	}
	missing := filepath.Join(dir, "missing.conf")
	if _, err := LoadFile(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("LoadFile of a missing file: %v", err)
	}
	if _, err := LoadFile(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("LoadFile of a directory: %v", err)
	}
}

// TestLoadFileNotRegular: a FIFO (which would block the reader until
// someone writes to it) and a device are refused at once, by name.
func TestLoadFileNotRegular(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "gretun.conf")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{fifo, fifo + ": not a regular file (a FIFO)"},
		{"/dev/null", "/dev/null: not a regular file (a device)"},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := LoadFile(c.path)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || err.Error() != c.want {
				t.Errorf("LoadFile(%s): %v, want %q", c.path, err, c.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("LoadFile(%s) blocked", c.path)
		}
	}
}
