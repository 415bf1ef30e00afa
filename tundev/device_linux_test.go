package tundev

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/internal/gostack"
	"github.com/gretun/gretun/internal/testnet"
)

// openIn makes a namespace with TUN device tg0 (198.51.100.1/24, up) and
// opens the device there through Open.
func openIn(t *testing.T) (*testnet.Net, string, *Device) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs root, /dev/net/tun and network namespaces; skipped with -short")
	}
	n := testnet.ForTest(t)
	ns, err := n.NS("tun")
	if err != nil {
		t.Fatal(err)
	}
	var d *Device
	if err := testnet.InNS(ns, func() (err error) { d, err = Open("tg0"); return err }); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	if name, _ := d.Name(); name != "tg0" {
		t.Fatalf("Name() = %q, want tg0", name)
	}
	if err := n.Addr(ns, "tg0", "198.51.100.1/24"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Exec(ns, "ip", "link", "set", "dev", "tg0", "mtu", "1400", "up"); err != nil {
		t.Fatal(err)
	}
	var mtu int
	if err := testnet.InNS(ns, func() (err error) { mtu, err = d.MTU(); return err }); err != nil || mtu != 1400 {
		t.Fatalf("MTU() = %d, %v; want 1400", mtu, err)
	}
	return n, ns, d
}

// udpSocket opens a UDP socket in ns bound to 198.51.100.1:port.
func udpSocket(t *testing.T, ns string, port int) int {
	t.Helper()
	var fd int
	err := testnet.InNS(ns, func() (err error) {
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{198, 51, 100, 1}, Port: port})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})
	return fd
}

// TestReadSuperPacket sends one UDP GSO datagram (UDP_SEGMENT, as QUIC
// stacks do) through the device: the kernel hands it over whole with its
// virtio header, and Read returns the segments, each valid on its own.
func TestReadSuperPacket(t *testing.T) {
	_, ns, d := openIn(t)
	fd := udpSocket(t, ns, 4000)
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_SEGMENT, 1000); err != nil {
		t.Skipf("UDP_SEGMENT: %v", err)
	}
	payload := make([]byte, 3500)
	for i := range payload {
		payload[i] = byte(i)
	}
	if err := unix.Sendto(fd, payload, 0, &unix.SockaddrInet4{Addr: [4]byte{198, 51, 100, 2}, Port: 5000}); err != nil {
		t.Fatal(err)
	}
	bufs, sizes := testBufs(64, 1400)
	var got []byte
	most := 0
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < len(payload) && time.Now().Before(deadline) {
		n, err := d.Read(bufs, sizes, testOffset)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		for i := 0; i < n; i++ {
			seg := bufs[i][testOffset : testOffset+sizes[i]]
			p := gopacket.NewPacket(seg, layers.LayerTypeIPv4, gopacket.Default)
			u, ok := p.TransportLayer().(*layers.UDP)
			if !ok || u.DstPort != 5000 {
				continue // the kernel's own IPv6 router solicitations and the like
			}
			if !transportValid(seg, false, 17) {
				t.Errorf("segment %d: bad UDP checksum", i)
			}
			got = append(got, u.Payload...)
			most = max(most, n)
		}
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("read %d bytes of payload, want the %d sent, in order", len(got), len(payload))
	}
	if most != 4 {
		t.Errorf("one Read returned at most %d segments, want the 4 of the super-packet (USO on the device)", most)
	}
}

// TestWrite writes datagrams for a local socket: one alone (written
// directly) and a batch (through wireguard's coalescing writer).
func TestWrite(t *testing.T) {
	_, ns, d := openIn(t)
	fd := udpSocket(t, ns, 4001)
	for _, batch := range []int{1, 8, 1, 8} {
		bufs := make([][]byte, batch)
		for i := range bufs {
			bufs[i] = datagram(t, fmt.Sprintf("packet %d of %d", i, batch))
		}
		if _, err := d.Write(bufs, testOffset); err != nil {
			t.Fatalf("Write of %d: %v", batch, err)
		}
		buf := make([]byte, 2000)
		for i := range batch {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				t.Fatalf("batch of %d, datagram %d: %v", batch, i, err)
			}
			if want := fmt.Sprintf("packet %d of %d", i, batch); string(buf[:n]) != want {
				t.Fatalf("received %q, want %q", buf[:n], want)
			}
		}
	}
	if d.gro.Load() == nil {
		t.Error("batches were written without wireguard's coalescing writer")
	}
}

// datagram is a UDP packet 198.51.100.2:5000 → 198.51.100.1:4001 at
// testOffset in a fresh buffer.
func datagram(t *testing.T, payload string) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IP{198, 51, 100, 2}, DstIP: net.IP{198, 51, 100, 1}}
	u := &layers.UDP{SrcPort: 5000, DstPort: 4001}
	u.SetNetworkLayerForChecksum(ip)
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, u, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return append(make([]byte, testOffset), sb.Bytes()...)
}

// TestCloseEndsRead: a Read waiting for a packet returns os.ErrClosed when
// the device is closed, which is how the engine's reader learns to stop.
func TestCloseEndsRead(t *testing.T) {
	_, _, d := openIn(t)
	done := make(chan error, 1)
	go func() {
		bufs, sizes := testBufs(1, 1400)
		for {
			if _, err := d.Read(bufs, sizes, testOffset); err != nil {
				done <- err
				return
			}
		}
	}()
	if err := gostack.WaitBlocked("tundev.(*Device).Read", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	d.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Read after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still waiting 5 s after Close")
	}
	if _, err := d.Write([][]byte{datagram(t, "late")}, testOffset); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Write after Close: %v, want os.ErrClosed", err)
	}
}

// TestReadBatchesQueued: datagrams already queued on the device come from
// one Read, not one Read each (sendto hands them to the device before it
// returns).
func TestReadBatchesQueued(t *testing.T) {
	_, ns, d := openIn(t)
	fd := udpSocket(t, ns, 4002)
	var want []string
	for i := range 5 {
		want = append(want, fmt.Sprintf("queued %d", i))
		if err := unix.Sendto(fd, []byte(want[i]), 0, &unix.SockaddrInet4{Addr: [4]byte{198, 51, 100, 2}, Port: 5000}); err != nil {
			t.Fatal(err)
		}
	}
	bufs, sizes := testBufs(64, 1400)
	for {
		n, err := d.Read(bufs, sizes, testOffset)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		var got []string
		for i := 0; i < n; i++ {
			seg := bufs[i][testOffset : testOffset+sizes[i]]
			p := gopacket.NewPacket(seg, layers.LayerTypeIPv4, gopacket.Default)
			if u, ok := p.TransportLayer().(*layers.UDP); ok && u.DstPort == 5000 {
				if !transportValid(seg, false, 17) {
					t.Errorf("packet %d: bad UDP checksum", i)
				}
				got = append(got, string(u.Payload))
			}
		}
		if len(got) == 0 {
			continue // the kernel's own IPv6 router solicitations and the like
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("the first Read with our datagrams (-want +got):\n%s", diff)
		}
		return
	}
}

// TestStepsWriteOneByOne: with Steps.NoCoalesce (or NoTSO) a device never
// makes wireguard's coalescing writer.
func TestStepsWriteOneByOne(t *testing.T) {
	Steps.NoCoalesce = true
	t.Cleanup(func() { Steps.NoCoalesce = false })
	_, _, d := openIn(t)
	if d.coalescer() != nil {
		t.Fatal("Steps.NoCoalesce: the device made a coalescing writer")
	}
}

// TestWriteGSO: a super-packet whose virtio-net header the caller wrote
// reaches the kernel as one, which segments it: three UDP datagrams
// (UDP_L4 segmentation) arrive at a local socket. A device that takes no
// super-packets (Steps) refuses it.
func TestWriteGSO(t *testing.T) {
	_, ns, d := openIn(t)
	fd := udpSocket(t, ns, 4001)
	const seg = 100
	payload := bytes.Repeat([]byte("0123456789"), 3*seg/10)
	pkt := datagram(t, string(payload))
	ip := pkt[testOffset:]
	u := ip[20:]
	sum := header.Fold(header.PseudoSum(ip[12:20], header.ProtoUDP, len(u)))
	u[6], u[7] = byte(sum>>8), byte(sum)
	header.VirtioNet(pkt[testOffset-VirtioHdrLen:]).Encode(&header.VirtioNetFields{
		Flags: header.VirtioNetFlagNeedsCsum, GSOType: header.VirtioNetGSOUDPL4,
		HdrLen: 28, GSOSize: seg, CsumStart: 20, CsumOffset: 6,
	})
	if _, err := d.WriteGSO([][]byte{pkt}, testOffset); err != nil {
		t.Fatalf("WriteGSO: %v", err)
	}
	buf := make([]byte, 2000)
	for i := range 3 {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if !bytes.Equal(buf[:n], payload[i*seg:(i+1)*seg]) {
			t.Fatalf("datagram %d: %q", i, buf[:n])
		}
	}
	d.noGRO.Store(true) // as Steps.NoCoalesce, or a device whose coalescer failed
	if _, err := d.WriteGSO([][]byte{pkt}, testOffset); err == nil || d.CanWriteGSO() {
		t.Error("a device that takes no super-packets took one")
	}
}
