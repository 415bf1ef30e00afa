package e2e

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	gcapture "github.com/gretun/gretun/capture"
)

// startCapture runs `gretun capture ARGS…` in ns in the background and
// waits until it captures (it says so on stderr, as tcpdump does); a
// second capture of the tunnel is then a one-line error.
func (tp *Topology) startCapture(ns, name string, args ...string) *Proc {
	tp.T.Helper()
	p := tp.Start(ns, append([]string{"capture", name}, args...)...)
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(p.Log(), "capturing tunnel "+name) {
		if time.Now().After(deadline) || p.Cmd.ProcessState != nil {
			tp.T.Fatalf("capture %s did not start: %s", name, p.Log())
		}
		sleep(20)
	}
	wantError(tp.T, "a second capture at once", tp.G(ns, "capture", name, "-c", "1"), "capture "+name, "already being captured")
	return p
}

// stopCapture interrupts a capture, as Ctrl-C does, and returns its
// summary line.
func stopCapture(t *testing.T, p *Proc) string {
	t.Helper()
	p.Cmd.Process.Signal(syscall.SIGINT)
	if code := wait(t, p); code != 0 {
		t.Fatalf("capture exited %d: %s", code, p.Log())
	}
	return p.Log()
}

// readPcapng reads a capture file with gretun's reader and checks that
// gopacket's pcapng reader finds the same packets in it.
func readPcapng(t *testing.T, path string) []gcapture.Packet {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := gcapture.NewReader(bytes.NewReader(b), nil)
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	ng, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatalf("gopacket cannot read %s: %v", path, err)
	}
	for i := range pkts {
		data, _, err := ng.ReadPacketData()
		if err != nil || !bytes.Equal(data, pkts[i].Data) {
			t.Fatalf("gopacket's packet %d differs: %v", i, err)
		}
	}
	if _, _, err := ng.ReadPacketData(); !errors.Is(err, io.EOF) {
		t.Fatalf("gopacket finds more packets than gretun: %v", err)
	}
	return pkts
}

// icmpOver decodes an outer GRE packet and returns its outer source and
// the ICMP type of the packet inside ("" if it is not one).
func icmpOver(data []byte) (src string, icmp string) {
	pkt := gopacket.NewPacket(data, layers.LayerTypeIPv4, gopacket.Default)
	ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip == nil || ip.Protocol != layers.IPProtocolGRE {
		return "", ""
	}
	if ic, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
		return ip.SrcIP.String(), ic.TypeCode.String()
	}
	return ip.SrcIP.String(), ""
}

// TestCapture captures a tunnel while pinging through it: the pcapng file
// has the outer packets both ways with their directions, and a packet the
// tunnel drops carries the drop reason as its comment; -inner captures the
// inner packets, -c stops by itself, without -w it prints a line a packet.
// An unknown tunnel, a second capture at once and a file that cannot be
// written are one-line errors, and the daemon goes on.
func TestCapture(t *testing.T) {
	t.Parallel()
	tp := Pair(t)
	da := tp.Daemon(tp.A)
	defer da.Stop()
	defer tp.Daemon(tp.B).Stop()
	tp.add(tp.A, "cap", "mode", "gre", "remote", UnderB, "local", UnderA, "key", "1", "csum")
	tp.add(tp.B, "cap", "mode", "gre", "remote", UnderA, "local", UnderB, "key", "1", "csum")
	tp.Sh(tp.A, "ip", "addr", "add", "198.51.100.1", "peer", "203.0.113.1", "dev", "cap")
	tp.Sh(tp.B, "ip", "addr", "add", "203.0.113.1", "peer", "198.51.100.1", "dev", "cap")

	file := filepath.Join(t.TempDir(), "cap.pcapng")
	p := tp.startCapture(tp.A, "cap", "-w", file)
	tp.Ping(tp.A, "203.0.113.1")
	// B stops sending checksums, which A requires: A drops B's pings.
	if r := tp.G(tp.B, "tunnel", "change", "cap", "nocsum"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	tp.Exec(tp.B, "ping", "-c", "2", "-i", "0.1", "-W", "1", "198.51.100.1")
	tp.waitFor("the dropped pings counted", func() bool { return tp.Stats(tp.A, "cap").Drops["checksum-missing"] >= 2 })
	summary := stopCapture(t, p)
	if !strings.Contains(summary, " packets captured, 0 lost") {
		t.Errorf("capture summary: %q", summary)
	}

	var out, in, dropped int
	for _, pk := range readPcapng(t, file) {
		src, icmp := icmpOver(pk.Data)
		switch {
		case pk.Drop != "":
			if pk.Out || src != UnderB || pk.Drop != "checksum-missing" || icmp != "EchoRequest" {
				t.Errorf("dropped packet: out %v from %s %s, reason %q; want B's ping dropped as checksum-missing", pk.Out, src, icmp, pk.Drop)
			}
			dropped++
		case pk.Out && icmp == "EchoRequest":
			if src != UnderA {
				t.Errorf("outgoing echo request from %s", src)
			}
			out++
		case !pk.Out && icmp == "EchoReply":
			if src != UnderB {
				t.Errorf("incoming echo reply from %s", src)
			}
			in++
		}
	}
	if out != 3 || in != 3 || dropped < 2 {
		t.Errorf("capture holds %d echo requests out, %d replies in, %d dropped; want 3, 3 and the 2 dropped pings", out, in, dropped)
	}
	if r := tp.G(tp.B, "tunnel", "change", "cap", "csum"); r.code != 0 {
		t.Fatal(r.stderr)
	}

	// -inner -c 2: the inner packets, and the capture ends by itself.
	file2 := filepath.Join(t.TempDir(), "inner.pcapng")
	p = tp.startCapture(tp.A, "cap", "-inner", "-c", "2", "-w", file2)
	tp.Ping(tp.A, "203.0.113.1")
	if code := wait(t, p); code != 0 {
		t.Fatalf("capture -c 2 exited %d: %s", code, p.Log())
	}
	pkts := readPcapng(t, file2)
	if len(pkts) != 2 {
		t.Fatalf("capture -c 2 wrote %d packets", len(pkts))
	}
	for _, pk := range pkts {
		ip := gopacket.NewPacket(pk.Data, layers.LayerTypeIPv4, gopacket.Default).Layer(layers.LayerTypeIPv4)
		if ip == nil || ip.(*layers.IPv4).Protocol != layers.IPProtocolICMPv4 {
			t.Errorf("inner capture holds a packet that is not the inner ping: % x", pk.Data)
		}
	}

	// Without -w: one line a packet.
	p = tp.startCapture(tp.A, "cap", "-c", "1")
	tp.Exec(tp.A, "ping", "-c", "1", "-W", "1", "203.0.113.1")
	if code := wait(t, p); code != 0 {
		t.Fatalf("capture -c 1 exited %d", code)
	}
	if line := p.Log(); !strings.Contains(line, " out IP 192.0.2.1 > 192.0.2.2: GRE key 1 csum: IP 198.51.100.1 > 203.0.113.1: ICMP EchoRequest") {
		t.Errorf("capture line: %q", line)
	}

	// Bad input.
	wantError(t, "capture of an unknown tunnel", tp.G(tp.A, "capture", "nosuch"), `no tunnel named "nosuch"`)
	wantError(t, "capture to a file that cannot be written", tp.G(tp.A, "capture", "cap", "-w", "/nonexistent/dir/x.pcapng"), "/nonexistent/dir/x.pcapng")
	wantError(t, "capture -c 0", tp.G(tp.A, "capture", "cap", "-c", "0"), "-c")
	tp.Ping(tp.A, "203.0.113.1")
	if got := tp.show(tp.A); !strings.HasPrefix(got, "cap: gre/ip") {
		t.Errorf("daemon after the refused captures: %q", got)
	}
}

// TestCaptureGretapInner: the inner packets of a gretap tunnel are
// Ethernet frames, and the file says so (LINKTYPE_ETHERNET): gopacket
// decodes them as Ethernet carrying ARP and the ping; the lines printed
// without -w show the Ethernet header.
func TestCaptureGretapInner(t *testing.T) {
	t.Parallel()
	tp := Pair(t)
	tp.Run(tp.A, "gtap", "mode", "gretap", "remote", UnderB, "local", UnderA)
	tp.Run(tp.B, "gtap", "mode", "gretap", "remote", UnderA, "local", UnderB)
	// IPv6 off on the bridges' ends: its MLD and ND frames would take
	// the `-c` counts the ARP and ping frames below are meant for.
	for _, ns := range []string{tp.A, tp.B} {
		tp.Sh(ns, "sysctl", "-qw", "net.ipv6.conf.gtap.disable_ipv6=1")
	}
	tp.Sh(tp.A, "ip", "addr", "add", "198.51.100.1/24", "dev", "gtap")
	tp.Sh(tp.B, "ip", "addr", "add", "198.51.100.3/24", "dev", "gtap")

	file := filepath.Join(t.TempDir(), "inner.pcapng")
	p := tp.startCapture(tp.A, "gtap", "-inner", "-c", "4", "-w", file)
	tp.Ping(tp.A, "198.51.100.3")
	if code := wait(t, p); code != 0 {
		t.Fatalf("capture -inner -c 4 exited %d: %s", code, p.Log())
	}
	pkts := readPcapng(t, file)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ng, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.DefaultNgReaderOptions)
	if err != nil || ng.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("link type of a gretap inner capture: %v (%v), want Ethernet", ng.LinkType(), err)
	}
	var arp, echo int
	for _, pk := range pkts {
		pkt := gopacket.NewPacket(pk.Data, layers.LayerTypeEthernet, gopacket.Default)
		if pkt.Layer(layers.LayerTypeEthernet) == nil || pkt.ErrorLayer() != nil {
			t.Errorf("not an Ethernet frame: % x", pk.Data)
		}
		if pkt.Layer(layers.LayerTypeARP) != nil {
			arp++
		}
		if pkt.Layer(layers.LayerTypeICMPv4) != nil {
			echo++
		}
	}
	if arp == 0 || echo == 0 {
		t.Errorf("inner capture holds %d ARP and %d ICMP frames, want both", arp, echo)
	}

	p = tp.startCapture(tp.A, "gtap", "-inner", "-c", "1")
	tp.Exec(tp.A, "ping", "-c", "1", "-W", "1", "198.51.100.3")
	if code := wait(t, p); code != 0 {
		t.Fatalf("capture -c 1 exited %d", code)
	}
	if line := p.Log(); !strings.Contains(line, " out ether ") || !strings.Contains(line, ": IP 198.51.100.1 > 198.51.100.3: ICMP EchoRequest") {
		t.Errorf("capture line: %q", line)
	}
}
