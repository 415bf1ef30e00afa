package interop

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gretun/gretun/internal/kpeer"
	"github.com/gretun/gretun/internal/testnet"
	"github.com/gretun/gretun/status"
)

// Topology: namespace u holds the tap kp0 (192.0.2.1/24) and gretun; the
// guest kernel has 192.0.2.2/24 on eth0. Both tunnel ends are named gt1;
// inside the tunnel gretun's side is .1 and the kernel's side is .2.
const (
	tap       = "kp0"
	hostUnder = "192.0.2.1"
	guestUnd  = "192.0.2.2"
	tunName   = "gt1"
	hostIn4   = "198.51.100.1"
	guestIn4  = "198.51.100.2"
	hostIn6   = "2001:db8:1::1"
	guestIn6  = "2001:db8:1::2"
	xferSize  = 256 << 10
)

// env is what every case shares: one namespace, one guest, one gretun binary.
type env struct {
	n     *testnet.Net
	ns    string
	g     *kpeer.Guest
	bin   string
	tmp   string
	txSum string // sha256 of the guest's /tmp/tx

	gretun *gretunProc // the running case's gretun
	// user is the prefix (setpriv …) gretun and its client run under;
	// empty for root. A client talks only to a daemon of its own user.
	user []string
}

// tunOpts is one side's tunnel configuration, written with the same words
// for gretun and for the guest's `ip tunnel add`.
type tunOpts struct {
	ikey, okey   int64 // -1: no key
	icsum, ocsum bool
	iseq, oseq   bool
	ttl          int  // 0: not given (inherit), else fixed
	ttlInherit   bool // say "ttl inherit" explicitly
	nopmtudisc   bool
	mtu          int // 0: the default
	// fou carries the tunnel inside UDP (encap fou) to dport, with UDP
	// checksums (encap-csum) when csumUDP, else none (noencap-csum).
	fou     bool
	dport   int
	csumUDP bool
}

func plain() tunOpts { return tunOpts{ikey: -1, okey: -1} }

func (o tunOpts) words() []string {
	var w []string
	switch {
	case o.ikey >= 0 && o.ikey == o.okey:
		w = append(w, "key", strconv.FormatInt(o.ikey, 10))
	default:
		if o.ikey >= 0 {
			w = append(w, "ikey", strconv.FormatInt(o.ikey, 10))
		}
		if o.okey >= 0 {
			w = append(w, "okey", strconv.FormatInt(o.okey, 10))
		}
	}
	switch {
	case o.icsum && o.ocsum:
		w = append(w, "csum")
	case o.icsum:
		w = append(w, "icsum")
	case o.ocsum:
		w = append(w, "ocsum")
	}
	switch {
	case o.iseq && o.oseq:
		w = append(w, "seq")
	case o.iseq:
		w = append(w, "iseq")
	case o.oseq:
		w = append(w, "oseq")
	}
	if o.ttl > 0 {
		w = append(w, "ttl", strconv.Itoa(o.ttl))
	} else if o.ttlInherit {
		w = append(w, "ttl", "inherit")
	}
	if o.nopmtudisc {
		w = append(w, "nopmtudisc")
	}
	if o.fou {
		// The same words for gretun and the kernel's `ip link add`.
		w = append(w, "encap", "fou", "encap-sport", "auto", "encap-dport", strconv.Itoa(o.dport))
		if o.csumUDP {
			w = append(w, "encap-csum")
		} else {
			w = append(w, "noencap-csum")
		}
	}
	return w
}

// ---- gretun ----

type gretunProc struct {
	cmd  *exec.Cmd
	out  *testnet.Buffer
	done chan struct{}
}

// startGretun runs `gretun run gt1 …` in the namespace, waits for its TUN
// device and gives it the inner addresses. IPv6 is kept off the device
// unless the case uses it, so no router solicitations or MLD reports
// cross the tunnel and the packet counts of both sides stay exact.
func startGretun(t *testing.T, e *env, mode string, o tunOpts, v6 bool) *gretunProc {
	t.Helper()
	args := []string{"run", tunName, "mode", mode, "remote", guestUnd, "local", hostUnder}
	args = append(args, o.words()...)
	if o.mtu > 0 {
		args = append(args, "mtu", strconv.Itoa(o.mtu))
	}
	return startGretunCmd(t, e, v6, args...)
}

// startGretunCmd runs `gretun ARGS…` (`run`, or `daemon` with a config
// file) in the namespace and sets up the device gt1 it creates as
// startGretun does.
func startGretunCmd(t *testing.T, e *env, v6 bool, gretunArgs ...string) *gretunProc {
	t.Helper()
	if e.bin == "" {
		t.Fatalf("gretun binary: %v", buildErr)
	}
	disable := "1"
	if v6 {
		disable = "0"
	}
	if _, err := e.n.Exec(e.ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6="+disable); err != nil {
		t.Fatal(err)
	}
	p := spawnGretun(t, e, gretunArgs...)
	if err := e.n.WaitLink(e.ns, tunName, 15*time.Second, p.exited); err != nil {
		t.Fatalf("gretun %s: %v: %s", strings.Join(gretunArgs, " "), err, p.out.String())
	}
	steps := [][]string{{"ip", "addr", "add", hostIn4 + "/30", "dev", tunName}}
	if v6 {
		steps = append(steps, []string{"ip", "-6", "addr", "add", hostIn6 + "/64", "dev", tunName, "nodad"})
	}
	steps = append(steps, []string{"ip", "link", "set", "dev", tunName, "up"})
	for _, s := range steps {
		if _, err := e.n.Exec(e.ns, s...); err != nil {
			t.Fatalf("configuring gretun's %s: %v", tunName, err)
		}
	}
	return p
}

// spawnGretun starts `gretun ARGS…` in the namespace, as the user e.user
// names (root when empty), and stops it when the test ends.
func spawnGretun(t *testing.T, e *env, gretunArgs ...string) *gretunProc {
	t.Helper()
	args := append(append(append([]string{"netns", "exec", e.ns}, e.user...), e.bin), gretunArgs...)
	p := &gretunProc{cmd: exec.Command("ip", args...), out: &testnet.Buffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting gretun: %v", err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(t, false) })
	return p
}

func (p *gretunProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and, when check is set, asserts that gretun exits and
// removes its device, as its contract says.
func (p *gretunProc) stop(t *testing.T, check bool) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second): // removing a device waits for RCU: slow on a loaded machine
		p.cmd.Process.Kill()
		<-p.done
		if check {
			t.Errorf("gretun did not exit within 15s of SIGTERM: %s", p.out.String())
		}
	}
}

func (e *env) stopGretun(t *testing.T, p *gretunProc) {
	t.Helper()
	p.stop(t, true)
	if _, err := e.n.Exec(e.ns, "ip", "link", "show", "dev", tunName); err == nil {
		t.Errorf("gretun left %s behind after SIGTERM", tunName)
		e.n.Exec(e.ns, "ip", "link", "del", "dev", tunName)
	}
}

// gretunCounters reads the tunnel's counters, and the drops of packets that
// matched no tunnel, through `gretun -s -j tunnel show NAME` (served by
// `gretun run` on the namespace's control socket).
// The JSON is {"tunnels":[{"config":…,"stats":{"rx_packets":…,"drops":{…}}}],
// "unmatched":{…}}.
func gretunCounters(t *testing.T, e *env, name string) (tun, unmatched status.Stats) {
	t.Helper()
	out, err := e.n.Exec(e.ns, append(append(append([]string{}, e.user...), e.bin), "-s", "-j", "tunnel", "show", name)...)
	if err != nil {
		t.Fatalf("gretun counters: %v", err)
	}
	var doc struct {
		Tunnels []struct {
			Stats status.Stats `json:"stats"`
		} `json:"tunnels"`
		Unmatched *status.Stats `json:"unmatched"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("gretun counters: %v in %q", err, out)
	}
	if len(doc.Tunnels) != 1 {
		t.Fatalf("gretun counters: want 1 tunnel named %s, got %d in %q", name, len(doc.Tunnels), out)
	}
	if doc.Unmatched != nil {
		unmatched = *doc.Unmatched
	}
	return doc.Tunnels[0].Stats, unmatched
}

// sub returns the counters this suite asserts on that grew from b to s, and
// the drop reasons that grew.
func sub(s, b status.Stats) status.Stats {
	d := status.Stats{
		RxPackets: s.RxPackets - b.RxPackets, RxBytes: s.RxBytes - b.RxBytes,
		RxErrors: s.RxErrors - b.RxErrors, RxCsumErrors: s.RxCsumErrors - b.RxCsumErrors,
		RxOutOfSeq: s.RxOutOfSeq - b.RxOutOfSeq,
		TxPackets:  s.TxPackets - b.TxPackets, TxBytes: s.TxBytes - b.TxBytes, TxErrors: s.TxErrors - b.TxErrors,
		Drops: map[string]uint64{},
	}
	for k, v := range s.Drops {
		if v-b.Drops[k] != 0 {
			d.Drops[k] = v - b.Drops[k]
		}
	}
	return d
}

// tunRx is how many packets gretun wrote into its TUN device: the host
// kernel counts them as received on it. A packet gretun drops never gets
// there, whatever gretun's own counters say.
func tunRx(t *testing.T, e *env) uint64 { return tunSys(t, e, false, "statistics/rx_packets") }

func hostMTU(t *testing.T, e *env) int { return int(tunSys(t, e, false, "mtu")) }

func guestMTU(t *testing.T, e *env) int { return int(tunSys(t, e, true, "mtu")) }

// tunSys reads the number in /sys/class/net/<tunnel>/file on gretun's side
// or in the guest.
func tunSys(t *testing.T, e *env, guest bool, file string) uint64 {
	t.Helper()
	path := "/sys/class/net/" + tunName + "/" + file
	var out string
	var err error
	if guest {
		out, err = e.g.Run("cat " + path)
	} else {
		out, err = e.n.Exec(e.ns, "cat", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatalf("%s: %q", path, out)
	}
	return v
}

// ---- the guest's tunnel ----

// guestTunnel creates gt1 in the guest with the given options.
func guestTunnel(t *testing.T, e *env, mode string, o tunOpts, v6 bool) {
	t.Helper()
	cmd := fmt.Sprintf("ip tunnel add %s mode %s remote %s local %s %s", tunName, mode, hostUnder, guestUnd, strings.Join(o.words(), " "))
	if o.fou {
		// `ip tunnel` has no encap words: `ip link add`, and the port the
		// kernel receives on.
		proto := map[string]int{"gre": 47, "ipip": 4, "sit": 41}[mode]
		cmd = fmt.Sprintf("ip fou add port %d ipproto %d && ip link add %s type %s remote %s local %s %s",
			o.dport, proto, tunName, mode, hostUnder, guestUnd, strings.Join(o.words(), " "))
		t.Cleanup(func() { e.g.Run(fmt.Sprintf("ip fou del port %d", o.dport)) })
	}
	if mode == "gretap" { // an Ethernet device: `ip link`, same words
		cmd = fmt.Sprintf("ip link add %s type gretap remote %s local %s %s", tunName, hostUnder, guestUnd, strings.Join(o.words(), " "))
	}
	if !v6 {
		cmd += fmt.Sprintf(" && echo 1 > /proc/sys/net/ipv6/conf/%s/disable_ipv6", tunName)
	}
	if o.mtu > 0 {
		cmd += fmt.Sprintf(" && ip link set %s mtu %d", tunName, o.mtu)
	}
	cmd += fmt.Sprintf(" && ip addr add %s/30 dev %s", guestIn4, tunName)
	if v6 {
		cmd += fmt.Sprintf(" && ip -6 addr add %s/64 dev %s", guestIn6, tunName)
	}
	cmd += fmt.Sprintf(" && ip link set %s up", tunName)
	if _, err := e.g.Run(cmd); err != nil {
		e.g.Run("ip link del " + tunName)
		t.Fatalf("guest tunnel: %v", err)
	}
	t.Cleanup(func() {
		// A case may have deleted and re-created it already.
		del := fmt.Sprintf("if [ -e /sys/class/net/%s ]; then ip link del %s; fi", tunName, tunName)
		if _, err := e.g.Run(del); err != nil {
			t.Errorf("removing the guest's tunnel: %v", err)
		}
	})
}

// ---- ping ----

var (
	iputilsStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)
	busyboxStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) packets received`)
)

// hostPing pings from gretun's namespace with iputils ping and returns
// (sent, received, output).
func hostPing(t *testing.T, e *env, args ...string) (int, int, string) {
	t.Helper()
	out, _ := e.n.Exec(e.ns, append([]string{"ping", "-n"}, args...)...)
	m := iputilsStats.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, out
	}
	s, _ := strconv.Atoi(m[1])
	r, _ := strconv.Atoi(m[2])
	return s, r, out
}

// guestPing pings from the guest with busybox ping.
func guestPing(t *testing.T, e *env, args string) (int, int, string) {
	t.Helper()
	out, _ := e.g.Run("ping " + args)
	m := busyboxStats.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, out
	}
	s, _ := strconv.Atoi(m[1])
	r, _ := strconv.Atoi(m[2])
	return s, r, out
}

// ---- TCP ----

// tcpToGuest sends random data from gretun's side to a busybox nc in the
// guest and checks what the guest wrote down.
func tcpToGuest(t *testing.T, e *env, dst string) {
	t.Helper()
	if err := sendToGuest(t, e, dst, 90*time.Second); err != nil {
		t.Fatalf("TCP gretun → kernel: %v", err)
	}
}

// sendToGuest is tcpToGuest's transfer, bounded by timeout; a transfer
// that does not complete is returned as an error, a wrong content is a
// test error.
func sendToGuest(t *testing.T, e *env, dst string, timeout time.Duration) error {
	t.Helper()
	data := make([]byte, xferSize)
	rand.Read(data)
	want := sha256.Sum256(data)
	const port = "5001"
	listen := fmt.Sprintf(`rm -f /tmp/rx; (nc -l -p %s -e sh -c 'cat > /tmp/rx' </dev/null >/dev/null 2>&1 &)
for i in $(seq 100); do netstat -ltn | grep -q ':%s ' && exit 0; sleep 0.1; done; echo not listening; exit 1`, port, port)
	if _, err := e.g.Run(listen); err != nil {
		t.Fatal(err)
	}
	var conn net.Conn
	err := testnet.InNS(e.ns, func() (err error) {
		d := net.Dialer{Timeout: 20 * time.Second}
		conn, err = d.Dial("tcp", net.JoinHostPort(dst, port))
		return err
	})
	if err != nil {
		e.g.Run("killall nc")
		return fmt.Errorf("connecting to %s: %v", dst, err)
	}
	defer conn.Close()
	// A transfer given up on is reset, not left to the kernel to go on
	// retransmitting into the next case's tunnel.
	abort := func(format string, err error) error {
		conn.(*net.TCPConn).SetLinger(0)
		e.g.Run("killall nc")
		return fmt.Errorf(format, err)
	}
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(data); err != nil {
		return abort("writing: %v", err)
	}
	conn.(*net.TCPConn).CloseWrite()
	// The guest closes once cat has written the whole file.
	if _, err := io.Copy(io.Discard, conn); err != nil {
		return abort("waiting for the guest to finish: %v", err)
	}
	out, err := e.g.Run("wc -c < /tmp/rx; sha256sum /tmp/rx")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, hex.EncodeToString(want[:])) {
		t.Errorf("TCP gretun → kernel: the guest received other data (want %d bytes, sha256 %x): %s", len(data), want, out)
	}
	return nil
}

// tcpFromGuest sends the guest's /tmp/tx with busybox nc to a listener on
// gretun's side and compares checksums.
func tcpFromGuest(t *testing.T, e *env, dst string) { tcpFromGuestVia(t, e, dst, dst) }

// tcpFromGuestVia is tcpFromGuest with the listener on listen, port 5002,
// where what the guest dials on dst, port 5002, leads (a netstack
// tunnel's reverse port).
func tcpFromGuestVia(t *testing.T, e *env, listen, dst string) {
	t.Helper()
	var l net.Listener
	err := testnet.InNS(e.ns, func() (err error) {
		l, err = net.Listen("tcp", net.JoinHostPort(listen, "5002"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type result struct {
		data []byte
		err  error
	}
	got := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(90 * time.Second))
		b, err := io.ReadAll(c)
		got <- result{b, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if out, err := e.g.RunContext(ctx, fmt.Sprintf("nc %s 5002 < /tmp/tx", dst)); err != nil {
		l.Close()
		t.Fatalf("TCP kernel → gretun: %v: %s", err, out)
	}
	var r result
	select {
	case r = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("TCP kernel → gretun: the connection did not end after the guest's nc exited")
	}
	if r.err != nil {
		t.Fatalf("TCP kernel → gretun: %v", r.err)
	}
	sum := sha256.Sum256(r.data)
	if hex.EncodeToString(sum[:]) != e.txSum {
		t.Errorf("TCP kernel → gretun: received %d bytes with sha256 %x; the guest sent %d bytes with sha256 %s", len(r.data), sum, xferSize, e.txSum)
	}
}

// ---- capture ----

type capture struct {
	cmd  *exec.Cmd
	file string
	errb *testnet.Buffer
}

// end stops tcpdump once the last packets have reached the tap.
func (c *capture) end() {
	time.Sleep(200 * time.Millisecond)
	c.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// startCapture records the underlay (tunnel packets, their fragments and
// ICMP) with tcpdump until stop.
func startCapture(t *testing.T, e *env) *capture {
	t.Helper()
	c := &capture{file: filepath.Join(e.tmp, fmt.Sprintf("cap-%d.pcap", time.Now().UnixNano())), errb: &testnet.Buffer{}}
	c.cmd = exec.Command("ip", "netns", "exec", e.ns, "tcpdump", "-i", tap, "-n", "-U", "--immediate-mode", "-s", "0", "-w", c.file,
		"ip proto 47 or ip proto 4 or ip proto 41 or icmp or udp port 4754 or udp port 5555 or udp port 5556")
	c.cmd.Stderr = c.errb
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.errb.String(), "listening on") {
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump did not start: %s", c.errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c
}

func (c *capture) stop(t *testing.T) []wirePacket {
	t.Helper()
	c.end()
	pkts, err := readPcap(c.file)
	if err != nil {
		t.Fatalf("reading the capture: %v (tcpdump: %s)", err, c.errb.String())
	}
	os.Remove(c.file)
	return pkts
}
