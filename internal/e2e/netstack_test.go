package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gretun/gretun/internal/testnet"
	"github.com/gretun/gretun/socks5"
	"github.com/gretun/gretun/tunnel"
)

// netRawOnly runs a command as uid 65534 with every capability dropped
// but CAP_NET_RAW (the raw GRE socket), kept across the change of user as
// an ambient capability.
var netRawOnly = []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
	"--inh-caps=-all,+net_raw", "--ambient-caps=-all,+net_raw", "--bounding-set=-all,+net_raw"}

// stackIP is the netstack tunnel's address, on network A.
const stackIP = "198.51.100.10"

// TestNetstackUnprivileged: router A runs a netstack tunnel as uid 65534,
// against gretun with a TUN device on router B: over plain GRE and over
// IPIP with CAP_NET_RAW alone (the raw socket), and over GRE in UDP (encap fou) with
// no capability at all. Through it, from router A's host: a file fetched
// over HTTP from host B through the SOCKS5 proxy (curl, username and
// password) arrives whole; a UDP datagram is echoed through UDP
// ASSOCIATE; a forwarded port reaches host B; host B reaches a local
// service through a reverse port; a closed port and a missing host get
// their SOCKS replies promptly; no network device appears on router A;
// `-s -j tunnel show` reports the tunnel with its counters and its
// keepalives up; the stack's MTU follows the underlay's.
func TestNetstackUnprivileged(t *testing.T) {
	t.Parallel()
	needSetpriv(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("needs curl")
	}
	t.Run("gre with CAP_NET_RAW", func(t *testing.T) { testNetstack(t, netRawOnly, "gre", 1476-4) })
	t.Run("ipip with CAP_NET_RAW", func(t *testing.T) { testNetstack(t, netRawOnly, "ipip", 1480) })
	noCaps := append(append([]string{}, nobody...), "--bounding-set=-all")
	t.Run("fou without capabilities", func(t *testing.T) { testNetstack(t, noCaps, "gre", 1476-4-8, "encap", "fou") })
	t.Run("daemon without capabilities", func(t *testing.T) { testNetstackDaemon(t, noCaps) })
}

// testNetstackDaemon: a daemon started with no tunnel and no capability
// (prefix) takes a netstack tunnel inside UDP by `tunnel add` and carries
// a forwarded port through it, refuses a TUN tunnel in one line naming
// CAP_NET_ADMIN with nothing created, and deletes the tunnel.
func testNetstackDaemon(t *testing.T, prefix []string) {
	tp := Classic(t)
	bin := publicGretun(t)
	before := tp.links(tp.A)
	var web net.Listener
	if err := testnet.InNS(tp.HostB, func() (err error) { web, err = net.Listen("tcp", HostBIP+":8000"); return err }); err != nil {
		t.Fatal(err)
	}
	defer web.Close()
	go http.Serve(web, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "behind router B\n") }))
	pb := tp.Run(tp.B, "tb", "mode", "gre", "remote", UnderA, "local", UnderB, "key", "5", "encap", "fou")
	defer pb.Stop()
	tp.Sh(tp.B, "ip", "route", "add", stackIP+"/32", "dev", "tb")

	out := &testnet.Buffer{}
	cmd, err := tp.Net.Start(tp.A, out, out, append(append([]string{}, prefix...), bin, "daemon")...)
	if err != nil {
		t.Fatal(err)
	}
	pa := &Proc{Cmd: cmd, Out: out}
	defer pa.Stop()
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(out.String(), "gretun daemon running"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) || pa.Cmd.ProcessState != nil {
			t.Fatalf("the daemon did not start without capabilities: %s", out.String())
		}
	}
	g := func(args ...string) result { return tp.cmd(tp.A, prefix, bin, args...) }
	if r := g("tunnel", "add", "ns", "mode", "gre", "remote", UnderB, "local", UnderA, "key", "5", "encap", "fou",
		"netstack", stackIP+"/24", "forward", "tcp", "127.0.0.1:8080", HostBIP+":8000"); r.code != 0 {
		t.Fatalf("tunnel add of a netstack tunnel: %+v\n%s", r, out.String())
	}
	if err := testnet.InNS(tp.A, func() error {
		c, err := net.DialTimeout("tcp", "127.0.0.1:8080", 10*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.0\r\n\r\n")
		body, err := io.ReadAll(c)
		if !strings.HasSuffix(string(body), "behind router B\n") {
			return fmt.Errorf("got %q, %v", body, err)
		}
		return nil
	}); err != nil {
		t.Errorf("forwarded port through the daemon's netstack tunnel: %v\n%s", err, out.String())
	}
	r := g("tunnel", "add", "tun", "mode", "gre", "remote", UnderB, "local", UnderA, "key", "6", "encap", "fou")
	wantError(t, "a TUN tunnel added to a daemon without capabilities", r, "missing capability CAP_NET_ADMIN")
	if r := g("tunnel", "del", "ns"); r.code != 0 {
		t.Errorf("tunnel del: %+v", r)
	}
	if r := g("tunnel", "show"); r.code != 0 || r.stdout != "" {
		t.Errorf("tunnel show after del: %+v", r)
	}
	if got := tp.links(tp.A); !slices.Equal(got, before) {
		t.Errorf("devices on router A changed from %v to %v", before, got)
	}
}

// testNetstack runs TestNetstackUnprivileged's checks with router A's
// gretun started under prefix (setpriv …), both tunnels in mode (gre, with
// a key and keepalives, or ipip, which has neither) with the extra words;
// mtu is the tunnel MTU over a 1500-byte underlay.
func testNetstack(t *testing.T, prefix []string, mode string, mtu int, extra ...string) {
	tp := Classic(t)
	bin := publicGretun(t)
	before := tp.links(tp.A)

	// Host B: an HTTP server with a file, a UDP echo; router A: a local
	// service for the reverse port. Sockets stay in the namespace they
	// were made in.
	file := make([]byte, 3<<20)
	for i := range file {
		file[i] = byte(rand.Uint32())
	}
	sum := sha256.Sum256(file)
	var web net.Listener
	var echo net.PacketConn
	var local net.Listener
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(testnet.InNS(tp.HostB, func() (err error) {
		if web, err = net.Listen("tcp", HostBIP+":8000"); err != nil {
			return err
		}
		echo, err = net.ListenPacket("udp", HostBIP+":7")
		return err
	}))
	must(testnet.InNS(tp.A, func() (err error) {
		local, err = net.Listen("tcp", "127.0.0.1:9000")
		return err
	}))
	defer web.Close()
	defer echo.Close()
	defer local.Close()
	go http.Serve(web, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(file) }))
	go func() {
		buf := make([]byte, 2000)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(buf[:n], from)
		}
	}()
	go func() {
		for {
			c, err := local.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "local service on router A\n")
			c.Close()
		}
	}()

	// Router B: gretun with a TUN device, routing network A's stack
	// address into the tunnel.
	modeWords := []string{"mode", mode}
	if mode == "gre" {
		modeWords = append(modeWords, "key", "5")
	}
	pb := tp.Run(tp.B, "tb", append(append(append([]string{}, modeWords...), "remote", UnderA, "local", UnderB), extra...)...)
	defer pb.Stop()
	tp.Sh(tp.B, "ip", "route", "add", stackIP+"/32", "dev", "tb")

	// Router A: the netstack tunnel, unprivileged.
	out := &testnet.Buffer{}
	args := append(append(append([]string{}, prefix...), bin, "run", "ns"), modeWords...)
	args = append(args, "remote", UnderB, "local", UnderA,
		"netstack", stackIP+"/24", "socks5", "alice:s3cret@127.0.0.1:1080",
		"forward", "tcp", "127.0.0.1:8080", HostBIP+":8000", "forward", "udp", "5300", HostBIP+":7",
		"reverse", "tcp", "2222", "127.0.0.1:9000")
	if mode == "gre" {
		args = append(args, "keepalive", "0.2", "3")
	}
	args = append(args, extra...)
	cmd, err := tp.Net.Start(tp.A, out, out, args...)
	must(err)
	pa := &Proc{Cmd: cmd, Out: out}
	defer pa.Stop()
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(out.String(), "tunnel added"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) || pa.Cmd.ProcessState != nil {
			t.Fatalf("the netstack tunnel did not start: %s", out.String())
		}
	}

	// HTTP through SOCKS5, by curl with the proxy's password.
	got, err := tp.Exec(tp.A, "sh", "-c", "curl -sS --max-time 30 --proxy socks5h://alice:s3cret@127.0.0.1:1080 http://"+HostBIP+":8000/file | sha256sum")
	if err != nil || !strings.HasPrefix(got, hex.EncodeToString(sum[:])) {
		t.Errorf("file through SOCKS5: sha256 %q (%v), want %x\n%s", got, err, sum, out.String())
	}
	if r, err := tp.Exec(tp.A, "curl", "-sS", "--max-time", "10", "--proxy", "socks5h://alice:wrong@127.0.0.1:1080", "http://"+HostBIP+":8000/"); err == nil {
		t.Errorf("a wrong password fetched %d bytes", len(r))
	}

	must(testnet.InNS(tp.A, func() error {
		// A forwarded port (dialled here: http.Get would dial on another
		// goroutine, outside this namespace).
		c, err := net.DialTimeout("tcp", "127.0.0.1:8080", 10*time.Second)
		if err != nil {
			return fmt.Errorf("forwarded port: %v", err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(c, "GET /file HTTP/1.0\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return fmt.Errorf("forwarded port: %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || sha256.Sum256(body) != sum {
			return fmt.Errorf("forwarded port: %d bytes, %v, hash differs", len(body), err)
		}
		// A forwarded UDP port.
		if err := udpEcho("127.0.0.1:5300", nil); err != nil {
			return fmt.Errorf("forwarded udp port: %v", err)
		}
		// UDP ASSOCIATE.
		if err := socksUDPEcho("127.0.0.1:1080", "alice", "s3cret", netip.MustParseAddrPort(HostBIP+":7")); err != nil {
			return fmt.Errorf("udp associate: %v", err)
		}
		// Refused and unreachable, each answered promptly.
		for _, c := range []struct {
			dest string
			want byte
		}{{HostBIP + ":1", socks5.ReplyConnectionRefused}, {"203.0.113.99:80", socks5.ReplyHostUnreachable}} {
			start := time.Now()
			code, err := socksConnect("127.0.0.1:1080", "alice", "s3cret", netip.MustParseAddrPort(c.dest))
			if err != nil || code != c.want {
				return fmt.Errorf("CONNECT %s: reply %#x, %v; want %#x", c.dest, code, err, c.want)
			}
			if d := time.Since(start); d > 15*time.Second {
				return fmt.Errorf("CONNECT %s: the reply took %v", c.dest, d)
			}
		}
		return nil
	}))

	// A reverse port: host B reaches router A's local service.
	must(testnet.InNS(tp.HostB, func() error {
		c, err := net.DialTimeout("tcp", stackIP+":2222", 10*time.Second)
		if err != nil {
			return fmt.Errorf("reverse port: %v", err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := io.ReadAll(c)
		if string(line) != "local service on router A\n" {
			return fmt.Errorf("reverse port: %q, %v", line, err)
		}
		return nil
	}))

	if got := tp.links(tp.A); !slices.Equal(got, before) {
		t.Errorf("devices on router A changed from %v to %v", before, got)
	}
	r := tp.cmd(tp.A, nobody, bin, "-s", "-j", "tunnel", "show")
	var v struct{ Tunnels []tunnel.Status }
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || len(v.Tunnels) != 1 {
		t.Fatalf("-s -j tunnel show: %v: %q %q", err, r.stdout, r.stderr)
	}
	st := v.Tunnels[0]
	if st.Config.Stack == nil || st.Stats.TxPackets == 0 || st.Stats.RxBytes < uint64(2*len(file)) || st.MTU != mtu {
		t.Errorf("shown: %+v", st)
	}
	// Keepalives, returned by router B's gretun, keep the line up.
	if k := st.Keepalive; mode == "gre" && (k == nil || k.State != "up" || k.Received == 0) {
		t.Errorf("keepalive: %+v", k)
	}
	if strings.Contains(r.stdout, "s3cret") {
		t.Error("show prints the proxy's password")
	}

	// The stack's MTU follows the underlay's, and the file still comes.
	tp.Sh(tp.A, "ip", "link", "set", "dev", "wan", "mtu", "1400")
	want, shown := mtu-100, 0
	for deadline := time.Now().Add(10 * time.Second); shown != want && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		r := tp.cmd(tp.A, nobody, bin, "-j", "tunnel", "show")
		json.Unmarshal([]byte(r.stdout), &v)
		shown = v.Tunnels[0].MTU
	}
	if shown != want {
		t.Errorf("MTU %d after the underlay's went to 1400, want %d\n%s", shown, want, out.String())
	}
	got, err = tp.Exec(tp.A, "sh", "-c", "curl -sS --max-time 30 --proxy socks5h://alice:s3cret@127.0.0.1:1080 http://"+HostBIP+":8000/file | sha256sum")
	if err != nil || !strings.HasPrefix(got, hex.EncodeToString(sum[:])) {
		t.Errorf("file through SOCKS5 at MTU %d: sha256 %q (%v)", shown, got, err)
	}
}

// socksHello connects to a SOCKS5 proxy and authenticates.
func socksHello(proxy, user, pass string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", proxy, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	c.Write([]byte{5, 1, 2})
	c.Write(append(append(append([]byte{1, byte(len(user))}, user...), byte(len(pass))), pass...))
	var r [4]byte
	if _, err := io.ReadFull(c, r[:]); err != nil || r != [4]byte{5, 2, 1, 0} {
		c.Close()
		return nil, fmt.Errorf("authentication: % x, %v", r, err)
	}
	return c, nil
}

// socksAsk sends a request and returns the reply code and bound address.
func socksAsk(c net.Conn, cmd byte, dest netip.AddrPort) (byte, netip.AddrPort, error) {
	c.Write(socks5.AppendRequest(nil, socks5.Request{Cmd: cmd, Dest: socks5.Addr{IP: dest.Addr(), Port: dest.Port()}}))
	var r [10]byte // IPv4 bound address
	if _, err := io.ReadFull(c, r[:]); err != nil {
		return 0, netip.AddrPort{}, err
	}
	return r[1], netip.AddrPortFrom(netip.AddrFrom4([4]byte(r[4:8])), binary.BigEndian.Uint16(r[8:])), nil
}

func socksConnect(proxy, user, pass string, dest netip.AddrPort) (byte, error) {
	c, err := socksHello(proxy, user, pass)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	code, _, err := socksAsk(c, 1, dest)
	return code, err
}

// socksUDPEcho sends a datagram to dest through a UDP association and
// wants it back from dest.
func socksUDPEcho(proxy, user, pass string, dest netip.AddrPort) error {
	c, err := socksHello(proxy, user, pass)
	if err != nil {
		return err
	}
	defer c.Close()
	code, relay, err := socksAsk(c, 3, netip.AddrPort{})
	if err != nil || code != socks5.ReplySucceeded {
		return fmt.Errorf("reply %#x, %v", code, err)
	}
	return udpEcho(relay.String(), func(b []byte) ([]byte, error) {
		from, data, err := socks5.ParseUDP(b)
		if err == nil && (from.IP != dest.Addr() || from.Port != dest.Port()) {
			err = fmt.Errorf("answer from %v, want %v", from, dest)
		}
		return data, err
	}, socks5.Addr{IP: dest.Addr(), Port: dest.Port()})
}

// udpEcho sends a datagram to addr (through a SOCKS relay when dest is
// given) and wants the same bytes back, retrying a few times as UDP may
// lose the first while the tunnel's far side learns its way.
func udpEcho(addr string, unwrap func([]byte) ([]byte, error), dest ...socks5.Addr) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	msg := []byte("echo me through the tunnel")
	send := msg
	if len(dest) > 0 {
		send = socks5.AppendUDP(nil, dest[0], msg)
	}
	buf := make([]byte, 2000)
	for range 5 {
		c.Write(send)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			continue
		}
		got := buf[:n]
		if unwrap != nil {
			if got, err = unwrap(got); err != nil {
				return err
			}
		}
		if !bytes.Equal(got, msg) {
			return fmt.Errorf("echo %q, want %q", got, msg)
		}
		return nil
	}
	return fmt.Errorf("no echo")
}
