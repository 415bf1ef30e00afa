package tunnel_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/tunnel"
	"github.com/gretun/gretun/tunnel/tunneltest"
)

// groConn is a UDP socket that receives coalesced datagrams as udpsock's
// ReadBatchGRO hands them: whole when the engine's predicate says so,
// else split into segments behind a header each.
type groConn struct {
	in        chan groDatagram
	closed    chan struct{}
	closeOnce sync.Once
}

type groDatagram struct {
	pkt []byte // IPv4 and UDP header, then the coalesced payload
	seg int
}

func newGROConn() *groConn {
	return &groConn{in: make(chan groDatagram, 16), closed: make(chan struct{})}
}

func (c *groConn) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	<-c.closed
	return 0, net.ErrClosed
}

func (c *groConn) ReadBatchGRO(bufs [][]byte, sizes, segs []int, whole func([]byte, int) bool) (int, error) {
	var d groDatagram
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	case d = <-c.in:
	}
	const hl = header.IPv4MinLen + header.UDPLen
	payload := d.pkt[hl:]
	setLens(d.pkt, d.seg)
	if whole(d.pkt, d.seg) {
		sizes[0], segs[0] = copy(bufs[0], d.pkt), d.seg
		return 1, nil
	}
	n := 0
	for off := 0; off < len(payload); off += d.seg {
		s := payload[off:min(off+d.seg, len(payload))]
		copy(bufs[n], d.pkt[:hl])
		setLens(bufs[n], len(s))
		sizes[n], segs[n] = hl+copy(bufs[n][hl:], s), 0
		n++
	}
	return n, nil
}

func (c *groConn) WriteBatch(pkts [][]byte) (int, error) { return len(pkts), nil }
func (c *groConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

// setLens sets the IPv4 and UDP lengths of the header at p for n bytes of
// UDP payload, as udpsock rebuilds it.
func setLens(p []byte, n int) {
	ip := header.IPv4(p)
	ip.SetTotalLen(header.IPv4MinLen + header.UDPLen + n)
	ip.UpdateChecksum()
	binary.BigEndian.PutUint16(p[header.IPv4MinLen+4:], uint16(header.UDPLen+n))
}

// tcpSeg is one segment of the inner flow 198.51.100.1:5000 ->
// 203.0.113.1:6000: IPv4 with DF and the given ID, TCP with a timestamp
// option, checksums filled.
func tcpSeg(id uint16, seq uint32, flags uint8, dport uint16, payload []byte) []byte {
	p := make([]byte, 20+32, 52+len(payload))
	p = append(p, payload...)
	ip := header.IPv4(p)
	ip.Encode(&header.IPv4Fields{TotalLen: uint16(len(p)), ID: id, FlagsFrag: header.IPv4FlagDF, TTL: 64, Protocol: header.ProtoTCP,
		Src: netip.MustParseAddr("198.51.100.1"), Dst: netip.MustParseAddr("203.0.113.1")})
	ip.UpdateChecksum()
	tcp := p[20:]
	binary.BigEndian.PutUint16(tcp[0:], 5000)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], 777)
	tcp[12], tcp[13] = 8<<4, flags
	binary.BigEndian.PutUint16(tcp[14:], 501)
	copy(tcp[20:], []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2})
	header.TCP(tcp).SetChecksum(^header.Fold(header.Sum(tcp, header.PseudoSum(ip.Addrs(), header.ProtoTCP, len(tcp)))))
	return p
}

// groDatagramOf wraps inner packets, all but the last of one size, in GRE
// and lays them out as one coalesced datagram from 192.0.2.1 to 192.0.2.2
// port 4754.
func groDatagramOf(inners [][]byte) groDatagram {
	p := make([]byte, header.IPv4MinLen+header.UDPLen)
	ip := header.IPv4(p)
	ip.Encode(&header.IPv4Fields{TTL: 64, Protocol: header.ProtoUDP, Src: addrA, Dst: addrB})
	binary.BigEndian.PutUint16(p[20:], 40000)
	binary.BigEndian.PutUint16(p[22:], 4754)
	binary.BigEndian.PutUint16(p[26:], 1) // a checksum the kernel verified
	for _, in := range inners {
		p = append(p, 0, 0, 0x08, 0x00)
		p = append(p, in...)
	}
	return groDatagram{pkt: p, seg: 4 + len(inners[0])}
}

// groSide is an engine receiving GRE-in-UDP on a groConn into a device
// that takes super-packets.
func groSide(t *testing.T) (*side, *groConn) {
	c := newGROConn()
	b := newSide(t, tunneltest.NewWire(), addrB, 8, func(env *tunnel.Env) {
		env.OpenUnderlay = func(k tunnel.UnderlayKey) (tunnel.Underlay, error) { return tunnel.UDPIPv4(c, k.Port, nil), nil }
		create := env.CreateDevice
		env.CreateDevice = func(name string, mtu int) (tunnel.Device, error) {
			d, err := create(name, mtu)
			if err == nil {
				d.(*tunneltest.Device).GSO = true
			}
			return d, err
		}
	})
	mustAdd(t, b, "t0", "mode gre encap fou remote 192.0.2.1 local 192.0.2.2")
	return b, c
}

// TestReceiveGROWhole: a coalesced datagram of five GRE-in-UDP segments of
// one TCP flow reaches the device as ONE write: the first segment's
// headers, every payload in order, the IPv4 length and checksum fixed, PSH
// (which a segment inside the run may carry too), the pseudo-header sum in the TCP checksum field, and
// a virtio-net header asking for TCPv4 segmentation at the segments'
// payload size with the checksum left to complete. Counters count the
// five segments.
func TestReceiveGROWhole(t *testing.T) {
	b, c := groSide(t)
	var inners [][]byte
	var want []byte
	bytesIn := 0
	for i := range 5 {
		pay := bytes.Repeat([]byte{byte('a' + i)}, 100)
		flags := uint8(header.TCPFlagACK)
		if i == 2 || i == 4 {
			flags |= header.TCPFlagPSH // the end of one of the sender's super-packets, and of the run
		}
		if i == 4 {
			pay = pay[:40]
		}
		want = append(want, pay...)
		inners = append(inners, tcpSeg(uint16(9+i), 1000+uint32(i*100), flags, 6000, pay))
		bytesIn += len(inners[i])
	}
	c.in <- groDatagramOf(inners)
	var got []byte
	select {
	case got = <-b.dev("t0").Super:
	case p := <-b.dev("t0").Written:
		t.Fatalf("a segment was written on its own (%d bytes): not the fast path", len(p))
	case <-time.After(5 * time.Second):
		t.Fatal("nothing written")
	}
	vh := header.VirtioNet(got)
	if vh.Flags() != header.VirtioNetFlagNeedsCsum || vh.GSOType() != header.VirtioNetGSOTCPv4 || vh.HdrLen() != 52 ||
		vh.GSOSize() != 100 || vh.CsumStart() != 20 || vh.CsumOffset() != header.TCPChecksum {
		t.Errorf("virtio header % x", got[:10])
	}
	pkt := got[10:]
	dec := gopacket.NewPacket(pkt, layers.LayerTypeIPv4, gopacket.Default)
	ip, _ := dec.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp, _ := dec.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if ip == nil || tcp == nil {
		t.Fatalf("not IPv4/TCP: %v", dec)
	}
	if int(ip.Length) != len(pkt) || ip.Id != 9 || !header.IPv4(pkt).ChecksumValid() {
		t.Errorf("IPv4 length %d of %d, ID %d, checksum valid %v", ip.Length, len(pkt), ip.Id, header.IPv4(pkt).ChecksumValid())
	}
	if tcp.Seq != 1000 || !tcp.ACK || !tcp.PSH || tcp.Ack != 777 || tcp.Window != 501 || len(tcp.Options) == 0 {
		t.Errorf("TCP header: seq %d ACK %v PSH %v ack %d window %d options %v", tcp.Seq, tcp.ACK, tcp.PSH, tcp.Ack, tcp.Window, tcp.Options)
	}
	if !bytes.Equal(tcp.Payload, want) {
		t.Errorf("payload %q, want %q", tcp.Payload, want)
	}
	if sum := header.Fold(header.PseudoSum(header.IPv4(pkt).Addrs(), header.ProtoTCP, len(pkt)-20)); tcp.Checksum != sum {
		t.Errorf("TCP checksum field %#04x, want the pseudo-header sum %#04x", tcp.Checksum, sum)
	}
	s := waitStats(t, b, "t0", func(s tunnel.Stats) bool { return s.RxPackets == 5 && s.RxBytes == uint64(bytesIn) }) // two counters, not read at one instant
	if s.RxPackets != 5 || s.RxBytes != uint64(bytesIn) || s.RxErrors != 0 {
		t.Errorf("counters: %+v, want 5 packets, %d bytes", s, bytesIn)
	}
}

// TestReceiveGROFallback: datagrams the fast path does not take (a second
// flow among the segments, a gap in the sequence numbers, FIN before the
// last segment, UDP inside, a
// device that takes no super-packets) go the segment path: each segment
// written on its own, unchanged. (A coalesced datagram never lacks its
// UDP checksum: UDP GRO coalesces none without one.)
func TestReceiveGROFallback(t *testing.T) {
	pay := bytes.Repeat([]byte{'x'}, 100)
	ack := uint8(header.TCPFlagACK)
	for name, inners := range map[string][][]byte{
		"mixed flow": {tcpSeg(1, 0, ack, 6000, pay), tcpSeg(2, 100, ack, 6001, pay), tcpSeg(3, 200, ack, 6000, pay)},
		"seq gap":    {tcpSeg(1, 0, ack, 6000, pay), tcpSeg(2, 101, ack, 6000, pay), tcpSeg(3, 201, ack, 6000, pay)},
		"FIN inside": {tcpSeg(1, 0, ack, 6000, pay), tcpSeg(2, 100, ack|header.TCPFlagFIN, 6000, pay), tcpSeg(3, 200, ack, 6000, pay)},
		"udp":        {udp4("198.51.100.1", "203.0.113.1", 100), udp4("198.51.100.1", "203.0.113.1", 100), udp4("198.51.100.1", "203.0.113.1", 60)},
		"no GSO":     {tcpSeg(1, 0, ack, 6000, pay), tcpSeg(2, 100, ack, 6000, pay), tcpSeg(3, 200, ack, 6000, pay)},
	} {
		t.Run(name, func(t *testing.T) {
			b, c := groSide(t)
			if name == "no GSO" {
				b.dev("t0").GSO = false
			}
			c.in <- groDatagramOf(inners)
			for i, in := range inners {
				if got := receive(t, b.dev("t0")); !bytes.Equal(got, in) {
					t.Fatalf("segment %d changed:\n got %x\nwant %x", i, got, in)
				}
			}
			if len(b.dev("t0").Super) != 0 {
				t.Error("a super-packet was written too")
			}
		})
	}
}
