package interop

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gretun/gretun/internal/kpeer"
)

// PPTP server side, in the guest: Debian's pptpd hands each call to
// pptpctrl, which runs pppd on a pty (ppp_async) and carries its frames in
// enhanced GRE itself.
var pptpPrograms = []string{"/usr/sbin/pptpd", "/usr/sbin/pptpctrl", "/usr/sbin/pppd"}

const (
	pptpUser     = "alice"
	pptpPassword = "s3cret"
	pptpLocal    = "203.0.113.1" // the server's end of the PPP link
	pptpRemote   = "203.0.113.2" // the first address it assigns
)

// pptpServerSetup writes pptpd's and pppd's configuration (auth is
// require-pap or require-chap, no MPPE) and starts pptpd.
func pptpServerSetup(auth string) string {
	return fmt.Sprintf(`set -e
mkdir -p /etc/ppp /var/run /var/log /var/lock /run /dev/pts
grep -q devpts /proc/mounts || mount -t devpts devpts /dev/pts
[ -e /dev/ppp ] || mknod /dev/ppp c 108 0
syslogd -O /tmp/messages
printf 'option /etc/ppp/pptpd-options\nlocalip %[1]s\nremoteip %[2]s-9\n' > /etc/pptpd.conf
printf 'name pptpd\n%[3]s\nnomppe\nnobsdcomp\nnodeflate\nnovj\nnovjccomp\nnologfd\nlogfile /tmp/pppd.log\ndebug\nms-dns 203.0.113.53\n' > /etc/ppp/pptpd-options
: > /etc/ppp/options
printf '%[4]s pptpd %[5]s *\n' > /etc/ppp/pap-secrets
printf '%[4]s pptpd %[5]s *\n' > /etc/ppp/chap-secrets
chmod 600 /etc/ppp/*-secrets
/usr/sbin/pptpd -c /etc/pptpd.conf -d
for i in $(seq 50); do netstat -ltn | grep -q ':1723 ' && exit 0; sleep 0.1; done
echo pptpd not listening; cat /tmp/messages; exit 1
`, pptpLocal, pptpRemote[:len(pptpRemote)-1]+"2", auth, pptpUser, pptpPassword)
}

func bootPPTPPeer(t *testing.T) *env {
	for _, p := range pptpPrograms {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("needs %s; install with: apt-get install -y pptpd ppp", p)
		}
	}
	return bootPeerWith(t, kpeer.Options{Modules: []string{"ppp_generic", "ppp_async", "slhc"}, Programs: pptpPrograms})
}

// TestInteropPPTP runs gretun pptp against Debian's pptpd and pppd in the
// guest: PAP, then CHAP-MD5; ping and TCP both ways through the PPP link;
// a SIGTERM that clears the call on the server and removes the device; a
// wrong password that ends in a one-line error and leaves nothing.
func TestInteropPPTP(t *testing.T) {
	e := bootPPTPPeer(t)
	for _, auth := range []string{"require-pap", "require-chap", "require-mschap-v2"} {
		t.Run(auth, func(t *testing.T) {
			if out, err := e.g.Run("killall pptpd pptpctrl pppd 2>/dev/null; sleep 0.2; rm -f /tmp/messages /tmp/pppd.log\n" + pptpServerSetup(auth)); err != nil {
				t.Fatalf("starting pptpd: %v: %s", err, out)
			}
			t.Run("traffic", func(t *testing.T) { pptpTraffic(t, e, auth) })
			t.Run("wrong-password", func(t *testing.T) { pptpWrongPassword(t, e, auth) })
			if auth == "require-pap" {
				t.Run("server-hangup", func(t *testing.T) { pptpServerHangup(t, e, auth) })
			}
		})
	}
}

const pptpDev = "pp1"

func pptpTraffic(t *testing.T, e *env, auth string) {
	p := spawnGretun(t, e, "pptp", pptpDev, "server", guestUnd, "user", pptpUser, "password", pptpPassword, auth)
	if err := e.n.WaitLink(e.ns, pptpDev, 30*time.Second, p.exited); err != nil {
		out, _ := e.g.Run("cat /tmp/messages /tmp/pppd.log")
		t.Fatalf("gretun pptp: %v: %s\nserver: %s", err, p.out.String(), out)
	}
	waitServerIPCP(t, e)
	if s, r, out := hostPing(t, e, "-c", "3", "-i", "0.2", "-W", "5", pptpLocal); s == 0 || r != s {
		srv, _ := e.g.Run("cat /tmp/messages /tmp/pppd.log; ip addr")
		t.Fatalf("ping %s through PPTP: %d of %d answered: %s\ngretun: %s\nserver: %s", pptpLocal, r, s, out, p.out.String(), srv)
	}
	if s, r, out := guestPing(t, e, "-c 3 -W 5 "+pptpRemote); s == 0 || r != s {
		t.Fatalf("ping from the server to %s: %d of %d answered: %s", pptpRemote, r, s, out)
	}
	tcpToGuest(t, e, pptpLocal)
	tcpFromGuest(t, e, pptpRemote)

	e.stopGretun(t, p)
	t.Logf("gretun pptp: %s", p.out.String())
	if !strings.Contains(p.out.String(), `"rx_packets"`) {
		t.Errorf("gretun pptp printed no counters on exit: %s", p.out.String())
	}
	// The server saw the call cleared and PPP terminated by gretun.
	var log string
	for i := 0; i < 50; i++ {
		log, _ = e.g.Run("cat /tmp/messages /tmp/pppd.log")
		if strings.Contains(log, "LCP terminated by peer") && strings.Contains(log, "Received CALL CLR request") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "CTRL: Received") || strings.Contains(l, "terminated") {
			t.Logf("server: %s", l)
		}
	}
	for _, want := range []string{"LCP terminated by peer", "Received CALL CLR request", "control connection finished"} {
		if !strings.Contains(log, want) {
			t.Errorf("the server's log has no %q: %s", want, log)
		}
	}
}

// waitServerIPCP waits until the server's pppd has brought its end of the
// link up. Our IPCP opens when the server acknowledges us, a moment before
// the server's pppd addresses ppp0 and lets IP pass (pppd's ipcp_up logs
// "remote IP address" after both); a packet in that moment is dropped by
// the server's kernel, as it would be for any PPP client.
func waitServerIPCP(t *testing.T, e *env) {
	t.Helper()
	var log string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		log, _ = e.g.Run("cat /tmp/pppd.log")
		if strings.Contains(log, "remote IP address") {
			return
		}
	}
	t.Fatalf("the server's pppd did not bring its end up within 10 s: %s", log)
}

// pptpServerHangup stops the server's pppd mid-call: gretun must end with
// one error line and a non-zero status, and remove its device.
func pptpServerHangup(t *testing.T, e *env, auth string) {
	p := spawnGretun(t, e, "pptp", pptpDev, "server", guestUnd, "user", pptpUser, "password", pptpPassword, auth)
	if err := e.n.WaitLink(e.ns, pptpDev, 30*time.Second, p.exited); err != nil {
		t.Fatalf("gretun pptp: %v: %s", err, p.out.String())
	}
	if out, err := e.g.Run("killall pppd"); err != nil {
		t.Fatalf("killall pppd: %v: %s", err, out)
	}
	pptpFails(t, e, p, "")
}

// pptpFails waits for gretun pptp to exit with one error line containing
// want, a non-zero status and no device left.
func pptpFails(t *testing.T, e *env, p *gretunProc, want string) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(40 * time.Second):
		t.Fatalf("gretun pptp did not exit: %s", p.out.String())
	}
	if p.cmd.ProcessState.ExitCode() == 0 {
		t.Errorf("gretun pptp exited 0: %s", p.out.String())
	}
	var errs []string
	for _, l := range strings.Split(p.out.String(), "\n") {
		if strings.HasPrefix(l, "gretun: ") {
			errs = append(errs, l)
		}
	}
	t.Logf("gretun: %s", errs)
	if len(errs) != 1 || !strings.Contains(errs[0], want) {
		t.Errorf("want one error line with %q, got: %s", want, p.out.String())
	}
	if _, err := e.n.Exec(e.ns, "ip", "link", "show", "dev", pptpDev); err == nil {
		t.Errorf("gretun pptp left %s behind after failing", pptpDev)
	}
}

func pptpWrongPassword(t *testing.T, e *env, auth string) {
	p := spawnGretun(t, e, "pptp", pptpDev, "server", guestUnd, "user", pptpUser, "password", "wrong", auth)
	pptpFails(t, e, p, "authentication failed")
}
