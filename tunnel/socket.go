package tunnel

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/gretun/gretun/decap"
	"github.com/gretun/gretun/encap"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/pmtu"
	"github.com/gretun/gretun/tundev"
)

// rxBatch is how many outer packets one receive call takes at most.
const rxBatch = 128

// rxBufSize holds the largest IPv4 packet (the kernel reassembles fragments
// before a raw socket sees them) plus room for the TUN's virtio header.
const rxBufSize = header.IPv4MaxPacket + 64

// tunHeader is the room the TUN device needs in front of each packet it
// reads or writes: its virtio-net header.
const tunHeader = tundev.VirtioHdrLen

// socket is one raw socket, shared by every tunnel of its protocol, and the
// goroutine that receives on it.
type socket struct {
	e     *Engine
	proto uint8
	conn  Underlay
	done  chan struct{}
	// offload, when the underlay has one, completes checksums a sender on
	// this host left unfilled (rawsock.Conn.CompleteChecksum).
	offload checksumCompleter
}

// checksumCompleter is an underlay that can tell, for a received packet
// whose GRE checksum failed, whether a sender on this host left it to
// offload, and then fill it in.
type checksumCompleter interface {
	CompleteChecksum(pkt []byte) bool
	OffloadErr() error
}

// socket returns the raw socket for proto, opening it on first use; e.mu is held.
func (e *Engine) socket(proto uint8) (*socket, error) {
	if s, ok := e.socks[proto]; ok {
		return s, nil
	}
	conn, err := e.env.OpenUnderlay(int(proto))
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, errors.New("opening a raw IP socket needs CAP_NET_RAW (run as root)")
		}
		return nil, err
	}
	s := &socket{e: e, proto: proto, conn: conn, done: make(chan struct{})}
	if c, ok := conn.(checksumCompleter); ok {
		if err := c.OffloadErr(); err != nil {
			e.log.Warn("GRE checksums a VM or container on this host leaves to offload will count as checksum errors", "err", err)
		} else {
			s.offload = c
		}
	}
	e.socks[proto] = s
	go s.receive()
	return s, nil
}

func (s *socket) close() {
	s.conn.Close()
	<-s.done
}

// send writes packets to the underlay, dropping and counting those the
// kernel refuses (see rawsock's error contract) on c, and calls tooBig,
// when not nil, after an EMSGSIZE.
func (s *socket) send(pkts [][]byte, c *counters, tooBig func()) {
	for len(pkts) > 0 {
		n, err := s.conn.WriteBatch(pkts)
		if err == nil {
			return
		}
		if errors.Is(err, net.ErrClosed) {
			c.add(txErrors, uint64(len(pkts)-n))
			return
		}
		countSendError(err, c)
		if tooBig != nil && errors.Is(err, syscall.EMSGSIZE) {
			tooBig()
		}
		pkts = pkts[n+1:]
	}
}

// receive is the receive loop: read a batch, validate and demultiplex each
// packet, then hand each tunnel its packets in one TUN write.
func (s *socket) receive() {
	defer close(s.done)
	bufs := make([][]byte, rxBatch)
	for i := range bufs {
		bufs[i] = make([]byte, rxBufSize)
	}
	sizes := make([]int, rxBatch)
	var (
		touched []*Tunnel
		reflect [][]byte
		p       decap.Packet
		errRun  int
	)
	for {
		n, err := s.conn.ReadBatch(bufs, sizes)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return
			}
			// Transient (ENOBUFS, ENOMEM): back off a little, never spin.
			errRun++
			time.Sleep(time.Duration(min(errRun, 100)) * time.Millisecond)
			continue
		}
		errRun = 0
		var last *Tunnel
		var lastKey demuxKey
		for i := 0; i < n; i++ {
			pkt := bufs[i][:sizes[i]]
			r := decap.Parse(pkt, &p)
			if r == decap.GREChecksum && s.offload != nil && s.offload.CompleteChecksum(pkt) {
				r = decap.Parse(pkt, &p)
			}
			if p.Proto == 0 {
				s.e.unmatched.drop(r) // not even a sound outer header
				continue
			}
			k := demuxKey{proto: p.Proto, src: p.Src, dst: p.Dst}
			if p.HasKey() {
				k.key, k.hasKey = p.Key, true
			}
			t := last
			if t == nil || k != lastKey {
				t = s.e.demux.get(k)
				last, lastKey = t, k
			}
			if t == nil {
				if r == decap.OK {
					r = decap.NoTunnel
				}
				s.e.unmatched.drop(r)
				continue
			}
			if r == decap.OK {
				r = t.recv.Load().Accept(&p)
			}
			if r != decap.OK {
				t.counters.drop(r)
				continue
			}
			if p.Kind == decap.Reflect && t.cfg.Load().NoReflect {
				p.Kind = decap.Data // `noreflect`: the host routes it, or not
			}
			switch p.Kind {
			case decap.Data:
				inner := pkt[p.Start:p.End]
				if !decap.DecapECN(inner, p.TOS) {
					t.counters.drop(decap.InnerNotECT)
					continue
				}
				if len(t.rx.pending) == 0 {
					touched = append(touched, t)
				}
				t.rx.pending = append(t.rx.pending, bufs[i][p.Start-tunHeader:p.End])
				t.rx.bytes += uint64(len(inner))
			case decap.Keepalive:
				t.keepaliveReply(pkt[p.Start:p.End])
			case decap.Reflect:
				// Another router's keepalive probe: send its inner packet
				// straight back out of the underlay, as a router forwarding
				// it would, without touching the TUN device.
				if inner := pkt[p.Start:p.End]; t.mayReflect(inner) {
					reflect = append(reflect, inner)
				}
			}
		}
		for _, t := range touched {
			t.deliver()
		}
		touched = touched[:0]
		if len(reflect) > 0 {
			// Only GRE packets are reflected, and s is the GRE socket.
			s.send(reflect, &s.e.unmatched, nil)
			reflect = reflect[:0]
		}
	}
}

// innerOffset is where the TUN is read: room for the largest outer header,
// and for an ICMPv6 Packet Too Big built in front of the packet it quotes
// with the TUN's own header before it.
const innerOffset = max(encap.Headroom, tunHeader+pmtu.HeaderLen6)
