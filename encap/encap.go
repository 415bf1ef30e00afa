// Package encap prepends outer IPv4 and GRE headers to inner IP packets in
// place: the inner packet sits in a buffer after at least Headroom free
// bytes, and Encap writes the outer headers into that headroom. It never
// copies the payload and never allocates.
//
// It implements the sending side of IP in IP (RFC 2003) and GRE (RFC 2784,
// with the key and sequence number extensions of RFC 2890), ECN copying in
// RFC 6040 normal mode, and outer fragmentation (RFC 791) for packets whose
// inner header allows it. It does not route, choose MTUs or send anything:
// the engine does.
package encap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/gretun/gretun/header"
)

// Headroom is the largest outer header Encap prepends: IPv4 without options
// plus GRE with checksum, key and sequence number. Read inner packets at an
// offset of at least Headroom so any tunnel can encapsulate them in place.
const Headroom = header.IPv4MinLen + header.GREMaxLen

// Mode is the encapsulation: IP in IP or GRE.
type Mode uint8

const (
	ModeGRE  Mode = header.ProtoGRE
	ModeIPIP Mode = header.ProtoIPIP
)

func (m Mode) String() string {
	switch m {
	case ModeGRE:
		return "gre"
	case ModeIPIP:
		return "ipip"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// DFPolicy says how the outer Don't Fragment bit is chosen.
type DFPolicy uint8

const (
	// DFInherit copies DF from an inner IPv4 header; IPv6 inside leaves it clear.
	DFInherit DFPolicy = iota
	// DFSet always sets DF (pmtudisc).
	DFSet
	// DFClear never sets DF (nopmtudisc, ignore-df).
	DFClear
)

// Config is what a tunnel's sending side needs; New turns it into a template.
type Config struct {
	Mode          Mode
	Local, Remote netip.Addr // IPv4 tunnel endpoints
	TTL           uint8      // 1..255; 0 inherits the inner TTL / hop limit
	TOS           uint8      // outer TOS (DSCP); ignored when TOSInherit
	TOSInherit    bool       // copy the inner TOS / traffic class
	DF            DFPolicy
	Key           uint32 // output key (okey), when HasKey
	HasKey        bool
	Checksum      bool // ocsum
	Sequence      bool // oseq
}

// Errors returned by Encap; each means "drop this packet and count it".
var (
	ErrHeadroom     = errors.New("encap: not enough headroom before the inner packet")
	ErrNotIP        = errors.New("encap: inner packet is neither IPv4 nor IPv6")
	ErrIPv6OverIPIP = errors.New("encap: IPIP carries IPv4 only")
	ErrTooBig       = errors.New("encap: outer packet would exceed 65535 bytes")
)

// Encapsulator holds one tunnel's precomputed outer headers. It is not safe
// for concurrent use: one sending goroutine owns it (identification and
// sequence numbers are per tunnel).
type Encapsulator struct {
	cfg      Config
	tmpl     [Headroom]byte // outer IPv4 header, then GRE header
	hdrLen   int            // bytes of tmpl in use
	greFlags uint16
	seqOff   int // offset of the GRE sequence field in tmpl, when enabled
	id       uint16
	seq      uint32
}

// New validates c and precomputes the outer header template.
func New(c Config) (*Encapsulator, error) {
	if c.Mode != ModeGRE && c.Mode != ModeIPIP {
		return nil, fmt.Errorf("encap: unknown mode %d", c.Mode)
	}
	if !c.Local.Is4() || !c.Remote.Is4() {
		return nil, errors.New("encap: local and remote must be IPv4 addresses")
	}
	if c.Local == c.Remote {
		return nil, errors.New("encap: remote equals local")
	}
	if c.Mode == ModeIPIP && (c.HasKey || c.Checksum || c.Sequence) {
		return nil, errors.New("encap: key, csum and seq need mode gre")
	}
	if c.TOSInherit {
		c.TOS = 0
	}
	e := &Encapsulator{cfg: c, hdrLen: header.IPv4MinLen}
	ip := header.IPv4(e.tmpl[:])
	ip[header.IPv4VersIHL] = 0x45
	ip.SetTOS(c.TOS &^ header.ECNMask)
	ip.SetTTL(c.TTL)
	ip[header.IPv4Protocol] = uint8(c.Mode)
	if c.DF == DFSet {
		ip.SetFlagsFrag(header.IPv4FlagDF)
	}
	l, r := c.Local.As4(), c.Remote.As4()
	copy(ip[header.IPv4Src:], l[:])
	copy(ip[header.IPv4Dst:], r[:])
	if c.Mode == ModeGRE {
		if c.Checksum {
			e.greFlags |= header.GREFlagCsum
		}
		if c.HasKey {
			e.greFlags |= header.GREFlagKey
		}
		if c.Sequence {
			e.greFlags |= header.GREFlagSeq
		}
		g := header.GRE(e.tmpl[header.IPv4MinLen:])
		binary.BigEndian.PutUint16(g[header.GREFlags:], e.greFlags)
		if c.HasKey {
			binary.BigEndian.PutUint32(g[g.KeyOffset():], c.Key)
		}
		e.seqOff = header.IPv4MinLen + g.SeqOffset()
		e.hdrLen += header.GRELen(e.greFlags)
	}
	return e, nil
}

// Config returns the configuration the template was built from.
func (e *Encapsulator) Config() Config { return e.cfg }

// Overhead is the number of bytes Encap prepends: 20 for IPIP, 24 for plain
// GRE and 4 more for each of checksum, key and sequence number.
func (e *Encapsulator) Overhead() int { return e.hdrLen }

// Encap prepends the outer headers to the inner packet buf[off:] and returns
// the outer packet, which ends where buf ends and starts Overhead() bytes
// before off. buf[:off] must have room for the headers.
func (e *Encapsulator) Encap(buf []byte, off int) ([]byte, error) {
	start := off - e.hdrLen
	if start < 0 || off > len(buf) {
		return nil, ErrHeadroom
	}
	inner := buf[off:]
	if len(inner) == 0 {
		return nil, ErrNotIP
	}
	var innerTTL, innerTOS uint8
	innerDF := false
	proto := header.InnerVersionEtherType(inner[0])
	switch proto {
	case header.EtherTypeIPv4:
		if len(inner) < header.IPv4MinLen {
			return nil, ErrNotIP
		}
		in4 := header.IPv4(inner)
		innerTTL, innerTOS, innerDF = in4.TTL(), in4.TOS(), in4.DF()
	case header.EtherTypeIPv6:
		if e.cfg.Mode == ModeIPIP {
			return nil, ErrIPv6OverIPIP
		}
		if len(inner) < header.IPv6HeaderLen {
			return nil, ErrNotIP
		}
		in6 := header.IPv6(inner)
		innerTTL, innerTOS = in6.HopLimit(), in6.TrafficClass()
	default:
		return nil, ErrNotIP
	}
	total := len(buf) - start
	if total > header.IPv4MaxPacket {
		return nil, ErrTooBig
	}
	out := buf[start:]
	copy(out[:e.hdrLen], e.tmpl[:e.hdrLen])
	ip := header.IPv4(out)
	ip.SetTotalLen(total)
	ip.SetID(e.id)
	e.id++
	if e.cfg.TTL == 0 {
		ip.SetTTL(innerTTL)
	}
	tos := ip.TOS()
	if e.cfg.TOSInherit {
		tos = innerTOS &^ header.ECNMask
	}
	// RFC 6040 normal mode: the outer ECN field is a copy of the inner one.
	ip.SetTOS(tos | innerTOS&header.ECNMask)
	if e.cfg.DF == DFInherit && innerDF {
		ip.SetFlagsFrag(header.IPv4FlagDF)
	}
	ip.UpdateChecksum()
	if e.cfg.Mode == ModeGRE {
		g := header.GRE(out[header.IPv4MinLen:])
		binary.BigEndian.PutUint16(g[header.GREProtocol:], proto)
		if e.cfg.Sequence {
			binary.BigEndian.PutUint32(out[e.seqOff:], e.seq)
			e.seq++
		}
		if e.cfg.Checksum {
			// RFC 2784: the checksum covers the GRE header and payload.
			binary.BigEndian.PutUint16(g[4:], header.Checksum(g))
		}
	}
	return out, nil
}
