package tundev

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gretun/gretun/header"
	"golang.org/x/sys/unix"
)

// pairDevice is a Device over one end of a datagram socket pair: like a TUN
// descriptor, each read returns one whole datagram (here a virtio header
// and a packet), and a non-blocking read of an empty queue says EAGAIN.
// The returned function queues a datagram for Read. No privileges needed.
func pairDevice(t *testing.T) (*Device, func([]byte)) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	d := &Device{file: os.NewFile(uintptr(fds[0]), "pair"), name: "pair"}
	t.Cleanup(func() { d.Close(); unix.Close(fds[1]) })
	return d, func(b []byte) {
		t.Helper()
		if _, err := unix.Write(fds[1], b); err != nil {
			t.Fatal(err)
		}
	}
}

// plain is an ordinary UDP datagram as the TUN hands it over: virtio header
// without GSO, checksum left partial (the kernel's checksum offload).
func plain(t *testing.T, payload string) []byte {
	in := superPacket{udp: true, mss: 1400, payload: []byte(payload)}.build(t)
	in[1] = header.VirtioNetGSONone
	return in
}

// readPayloads does one Read and returns the UDP payloads it got, checking
// that each packet's checksum was completed.
func readPayloads(t *testing.T, d *Device, bufs [][]byte, sizes []int) ([]string, error) {
	t.Helper()
	n, err := d.Read(bufs, sizes, testOffset)
	var got []string
	for i := 0; i < n; i++ {
		pkt := bufs[i][testOffset : testOffset+sizes[i]]
		if !transportValid(pkt, false, 17) {
			t.Errorf("packet %d: bad UDP checksum", i)
		}
		got = append(got, string(pkt[28:]))
	}
	return got, err
}

// TestReadDrainsQueued: one Read returns every ordinary packet already
// queued, up to the number of buffers, and the rest on the next Read.
func TestReadDrainsQueued(t *testing.T) {
	d, queue := pairDevice(t)
	var want []string
	for i := range 5 {
		want = append(want, fmt.Sprintf("datagram %d", i))
		queue(plain(t, want[i]))
	}
	bufs, sizes := testBufs(3, 1500)
	got, err := readPayloads(t, d, bufs, sizes)
	if err != nil {
		t.Fatal(err)
	}
	more, err := readPayloads(t, d, bufs, sizes)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]string{want[:3], want[3:]}, [][]string{got, more}); diff != "" {
		t.Fatalf("two Reads with 3 buffers each (-want +got):\n%s", diff)
	}
}

// TestReadKeepsSuperPacket: a super-packet found while draining ends the
// batch and comes, split, from the next Read, before anything queued after
// it.
func TestReadKeepsSuperPacket(t *testing.T) {
	d, queue := pairDevice(t)
	payload := make([]byte, 3000)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	queue(plain(t, "first"))
	queue(plain(t, "second"))
	queue(superPacket{udp: true, mss: 1000, payload: payload}.build(t))
	queue(plain(t, "after"))
	bufs, sizes := testBufs(8, 1500)
	var got [][]string
	var buffered []bool // the kept super-packet is not on the file: Buffered says so
	for range 3 {
		p, err := readPayloads(t, d, bufs, sizes)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
		buffered = append(buffered, d.Buffered())
	}
	s := string(payload)
	want := [][]string{{"first", "second"}, {s[:1000], s[1000:2000], s[2000:]}, {"after"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("three Reads (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]bool{true, false, false}, buffered); diff != "" {
		t.Errorf("Buffered after each Read (-want +got):\n%s", diff)
	}
}

// TestReadDrainMalformed: a malformed packet met while draining is
// reported with the good packets before it, and the next Read goes on.
func TestReadDrainMalformed(t *testing.T) {
	d, queue := pairDevice(t)
	queue(plain(t, "good"))
	queue(make([]byte, VirtioHdrLen)) // a header and no packet
	queue(plain(t, "next"))
	bufs, sizes := testBufs(8, 1500)
	got, err := readPayloads(t, d, bufs, sizes)
	if !errors.Is(err, errMalformed) || !cmp.Equal(got, []string{"good"}) {
		t.Fatalf("Read = %q, %v; want [good] and errMalformed", got, err)
	}
	got, err = readPayloads(t, d, bufs, sizes)
	if err != nil || !cmp.Equal(got, []string{"next"}) {
		t.Fatalf("next Read = %q, %v; want [next]", got, err)
	}
}

// TestReadDrainAllocs: draining a batch allocates nothing.
func TestReadDrainAllocs(t *testing.T) {
	d, queue := pairDevice(t)
	pkt := plain(t, "datagram")
	bufs, sizes := testBufs(16, 1500)
	if a := testing.AllocsPerRun(20, func() {
		for range 16 {
			queue(pkt)
		}
		if n, err := d.Read(bufs, sizes, testOffset); n != 16 || err != nil {
			t.Fatalf("Read = %d, %v; want the 16 queued", n, err)
		}
	}); a > 2 {
		t.Fatalf("a Read of 16 queued packets allocates %v times; want at most the 2 of its two SyscallConn calls", a)
	}
}
