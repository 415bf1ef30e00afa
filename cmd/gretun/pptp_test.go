package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gretun/gretun/ppp"
)

func TestParsePPTP(t *testing.T) {
	pass := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(pass, []byte("s3cret\n"), 0o600)
	c, err := parsePPTP(strings.Fields("vpn0 server 192.0.2.2 user alice password-file " + pass + " local 192.0.2.1 mtu 1400 mru 1450 require-chap noipdefault nodefaultroute"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "vpn0" || c.Server.String() != "192.0.2.2" || c.Local.String() != "192.0.2.1" || c.PPP.User != "alice" ||
		c.PPP.Password != "s3cret" || c.MTU != 1400 || c.PPP.MRU != 1450 || c.PPP.Allow != ppp.AuthCHAPMD5 {
		t.Errorf("parsed %+v", c)
	}
	if c.PPP.EchoInterval != 30 || c.PPP.EchoFailure != 4 {
		t.Errorf("LCP echo %d/%d, want pppd's lcp-echo-interval 30 lcp-echo-failure 4 by default", c.PPP.EchoInterval, c.PPP.EchoFailure)
	}
	if c, _ := parsePPTP(strings.Fields("vpn0 server 192.0.2.2 user a password b lcp-echo-interval 10 lcp-echo-failure 0")); c.PPP.EchoInterval != 10 || c.PPP.EchoFailure != 0 {
		t.Errorf("lcp-echo-interval 10 lcp-echo-failure 0: %d/%d", c.PPP.EchoInterval, c.PPP.EchoFailure)
	}
	if c, _ := parsePPTP(strings.Fields("vpn0 server 192.0.2.2 user a password b require-mschap-v2")); c.PPP.Allow != ppp.AuthMSCHAPv2 {
		t.Errorf("require-mschap-v2: allow %v", c.PPP.Allow)
	}
	if c, _ := parsePPTP(strings.Fields("vpn0 server 192.0.2.2 user a password b refuse-chap refuse-mschap-v2")); c.PPP.Allow != ppp.AuthPAP {
		t.Errorf("refuse-chap: allow %v, want PAP only", c.PPP.Allow)
	}
	for _, c := range []struct{ args, want string }{
		{"", "missing device NAME"},
		{"vpn0 user a password b", "missing server"},
		{"vpn0 server 192.0.2.2 password b", "missing user"},
		{"vpn0 server 192.0.2.2 user a", "missing password"},
		{"vpn0 server 2001:db8::1 user a password b", "want an IPv4 address"},
		{"vpn0 server 192.0.2.2 user a password b mtu 99", "want 576..1500"},
		{"vpn0 server 192.0.2.2 user a password b require-mppe-128", "no MPPE"},
		{"vpn0 server 192.0.2.2 user a password b defaultroute", "not supported"},
		{"vpn0 server 192.0.2.2 user a password b refuse-pap refuse-chap refuse-mschap-v2", "every authentication protocol is refused"},
		{"vpn0 server 192.0.2.2 user a password b bogus", `unknown option "bogus"`},
		{"vpn0 server", `missing value after "server"`},
		{"vpn0 server 192.0.2.2 user a password b lcp-echo-interval -1", `lcp-echo-interval "-1": want 0..65535`},
		{"vpn0 server 192.0.2.2 user a password b lcp-echo-failure x", `lcp-echo-failure "x": want 0..65535`},
		{"vpn0 server 192.0.2.2 user a password b lcp-echo-failure", `missing value after "lcp-echo-failure"`},
	} {
		if _, err := parsePPTP(strings.Fields(c.args)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parsePPTP(%q) = %v, want an error with %q", c.args, err, c.want)
		}
	}
}

// A bad command is one line on stderr and exit status 1.
func TestPPTPCmdError(t *testing.T) {
	var out, errb bytes.Buffer
	if rc := run(strings.Fields("pptp vpn0 server 192.0.2.2 user a"), &out, &errb); rc != 1 {
		t.Errorf("exit %d, want 1", rc)
	}
	if got := errb.String(); strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "gretun: pptp: missing password") {
		t.Errorf("stderr %q", got)
	}
}
