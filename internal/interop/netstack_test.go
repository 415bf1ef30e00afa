package interop

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gretun/gretun/internal/e2e"
	"github.com/gretun/gretun/status"
)

// netstackFOU: gretun's netstack tunnel (a userspace stack, no TUN device)
// inside UDP, run as uid 65534 without any capability, against the
// kernel's GRE-over-FOU tunnel. From gretun's namespace, the guest's
// /tmp/tx is fetched from busybox httpd through the SOCKS5 proxy and
// through a forwarded port; the guest sends it with nc to a reverse port
// of the stack's address and pings that address (the stack answers);
// every file arrives whole, and `-s -j tunnel show` counts the traffic.
func netstackFOU(t *testing.T, e *env, c tcase) {
	for _, tool := range []string{"setpriv", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	e.stopGretun(t, e.gretun)
	if out, err := e.g.Run("mkdir -p /tmp/www && ln -sf /tmp/tx /tmp/www/tx && httpd -p 8000 -h /tmp/www"); err != nil {
		t.Fatalf("guest httpd: %v: %s", err, out)
	}
	t.Cleanup(func() { e.g.Run("killall httpd") })

	e.user = append(append([]string{}, e2e.Nobody...), "--bounding-set=-all")
	t.Cleanup(func() { e.user = nil })
	args := []string{"run", tunName, "mode", c.mode, "remote", guestUnd, "local", hostUnder}
	args = append(args, c.gretun.words()...)
	args = append(args, "netstack", hostIn4+"/30", "socks5", "127.0.0.1:1080",
		"forward", "tcp", "127.0.0.1:8080", guestIn4+":8000", "reverse", "tcp", "5002", "127.0.0.1:5002")
	e.gretun = spawnGretun(t, e, args...)
	p := e.gretun
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(p.out.String(), "tunnel added"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) || p.exited() {
			t.Fatalf("the netstack tunnel did not start: %s", p.out.String())
		}
	}
	r0, _ := gretunCounters(t, e, tunName)

	for _, via := range []struct{ name, curl string }{
		{"SOCKS5", "--proxy socks5h://127.0.0.1:1080 http://" + guestIn4 + ":8000/tx"},
		{"forward", "http://127.0.0.1:8080/tx"},
	} {
		got, err := e.n.Exec(e.ns, "sh", "-c", "curl -sS --max-time 60 "+via.curl+" | sha256sum")
		if err != nil || !strings.HasPrefix(got, e.txSum) {
			t.Errorf("the guest's file through %s: sha256 %q (%v), want %s\n%s", via.name, got, err, e.txSum, p.out.String())
		}
	}
	tcpFromGuestVia(t, e, "127.0.0.1", hostIn4)
	if s, r, out := guestPing(t, e, "-c 3 -i 0.2 -W 2 "+hostIn4); s == 0 || r != s {
		t.Errorf("the guest pinging the stack: %d of %d answered: %s", r, s, out)
	}

	d := sub(func() status.Stats { r, _ := gretunCounters(t, e, tunName); return r }(), r0)
	if d.RxBytes < 3*xferSize || d.TxPackets == 0 || d.RxErrors != 0 || len(d.Drops) != 0 {
		t.Errorf("counters: %+v; want at least the three files received, packets sent, no errors or drops", d)
	}
}
