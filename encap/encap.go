// Package encap prepends outer headers to inner packets in place: the
// inner packet sits in a buffer after enough free bytes, and Encap writes
// the outer headers into that headroom. It never copies the payload and
// never allocates.
//
// The outer headers are an IPv4 (RFC 791) or IPv6 (RFC 8200) header, an
// optional UDP header (GRE-in-UDP, RFC 8086) and, for GRE, a GRE header
// (RFC 2784, with the key and sequence number of RFC 2890) whose protocol
// type follows the inner IP version or is fixed by the tunnel (0x6558 for
// Ethernet frames). It implements the sending side of IP in IP (RFC 2003,
// RFC 2473), ECN copying in RFC 6040 normal mode, and outer IPv4
// fragmentation (RFC 791) for packets whose inner header allows it. It does
// not route, choose MTUs or send anything: the engine does.
package encap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"

	"github.com/gretun/gretun/header"
)

// Headroom is the largest outer header Encap prepends over IPv4 without
// UDP, today's tunnels: IPv4 without options plus GRE with checksum, key
// and sequence number. Read inner packets at an offset of at least
// Headroom so any such tunnel can encapsulate them in place.
const Headroom = header.IPv4MinLen + header.GREMaxLen

// HeadroomMax is the largest outer header of any configuration: IPv6 with
// its tunnel encapsulation limit option, UDP and GRE with every option. An
// engine that runs IPv6 or UDP tunnels reads inner packets at an offset of
// at least HeadroomMax.
const HeadroomMax = header.IPv6HeaderLen + EncapLimitLen + header.UDPLen + header.GREMaxLen

// EncapLimitLen is the destination options header that carries an RFC 2473
// tunnel encapsulation limit: the option (type 4, length 1, the limit)
// padded to 8 bytes with a PadN, exactly as Linux's ip6_tnl and ip6_gre
// write it (init_tel_txopt).
const EncapLimitLen = header.IPv6ExtMinLen

// defaultTTL is the outer TTL of a tunnel that inherits it (ttl 0) when
// the payload has none to inherit (an Ethernet frame), as Linux's default
// hop limit.
const defaultTTL = 64

// Mode is the encapsulation: IP in IP or GRE.
type Mode uint8

const (
	ModeGRE  Mode = header.ProtoGRE
	ModeIPIP Mode = header.ProtoIPIP
	// ModeIP6 is IPv6 in IP (IP protocol or next header 41): IPv6 inside
	// only, over an IPv6 underlay (RFC 2473, Linux's ip6tnl mode ip6ip6)
	// or an IPv4 one (RFC 4213's 6in4, Linux's sit).
	ModeIP6 Mode = header.ProtoIPv6
	// ModeIP6Any is IPv4 or IPv6 in IPv6, next header 4 or 41 by each
	// inner packet's version (Linux's ip6tnl mode any, proto 0). Its
	// value is no protocol number, nor 0, so that a Config whose Mode was
	// forgotten is still refused.
	ModeIP6Any Mode = 0xff
)

func (m Mode) String() string {
	switch m {
	case ModeGRE:
		return "gre"
	case ModeIPIP:
		return "ipip"
	case ModeIP6:
		return "ip6" // ip6ip6 over IPv6, sit over IPv4
	case ModeIP6Any:
		return "any"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// DFPolicy says how the outer Don't Fragment bit is chosen. An outer IPv6
// header has none: IPv6 routers never fragment.
type DFPolicy uint8

const (
	// DFInherit copies DF from an inner IPv4 header; IPv6 inside leaves it
	// clear (nopmtudisc).
	DFInherit DFPolicy = iota
	// DFSet always sets DF (pmtudisc).
	DFSet
	// DFClear never sets DF (ignore-df).
	DFClear
)

// Config is what a tunnel's sending side needs; New turns it into a template.
type Config struct {
	Mode          Mode
	Local, Remote netip.Addr // tunnel endpoints: both IPv4 or both IPv6
	TTL           uint8      // 1..255; 0 inherits the inner TTL / hop limit
	TOS           uint8      // outer TOS (DSCP); ignored when TOSInherit
	TOSInherit    bool       // copy the inner TOS / traffic class
	DF            DFPolicy
	Key           uint32 // output key (okey), when HasKey
	HasKey        bool
	Checksum      bool // ocsum
	Sequence      bool // oseq

	// Over IPv6 only: HasEncapLimit puts a tunnel encapsulation limit
	// destination option (RFC 2473 section 4.1.1) carrying EncapLimit in
	// every packet, as Linux's ip6 tunnels do by default (encaplimit 4);
	// an inner IPv6 packet with a limit of its own gets that limit less
	// one instead, and one whose limit is 0 is refused (ErrEncapLimit)
	// whether or not the tunnel sends a limit.
	// FlowLabel is the outer flow label; FlowLabelInherit copies an inner
	// IPv6 packet's label instead, where it has one.
	EncapLimit       uint8
	HasEncapLimit    bool
	FlowLabel        uint32
	FlowLabelInherit bool
	// FlowLabelAuto hashes the inner flow (addresses, protocol, ports; of
	// an Ethernet frame, those of the IP packet it carries, else its
	// Ethernet header) into the flow label of a packet that would
	// otherwise carry 0, as
	// Linux's IPv6 tunnels do by default (net.ipv6.auto_flowlabels), so
	// that the underlay's ECMP can spread the tunnel's flows.
	FlowLabelAuto bool

	// EtherType is the GRE protocol type of every packet. 0, the default,
	// takes it from the inner IP version (IPv4 or IPv6). EtherTypeIPv4 or
	// EtherTypeIPv6 admit only that version. Any other value, such as
	// header.EtherTypeTEB for Ethernet frames, carries the payload as
	// opaque bytes: nothing is inherited from it (TTL 0 sends 64).
	EtherType uint16
	// UDP puts a UDP header from SrcPort to DstPort between the outer IP
	// header and GRE (GRE-in-UDP, RFC 8086); UDPChecksum computes its
	// checksum, which is otherwise sent as 0.
	UDP              bool
	SrcPort, DstPort uint16
	UDPChecksum      bool
	// UDPChecksumPartial leaves the UDP checksum to whoever sends the
	// packet, as Linux's CHECKSUM_PARTIAL does: the field holds only the
	// sum of the pseudo-header (never 0), for a UDP socket (udpsock: the
	// kernel or the NIC computes it) or a NIC to complete. Ignored with
	// UDPChecksum.
	UDPChecksumPartial bool
}

// Overhead is the number of bytes the outer headers of c take: the IP
// header (20 or 40, by the remote's family, or the local address's when
// there is no remote: a multipoint tunnel's template), UDP's 8 when UDP, and for GRE 4 plus 4 for each of
// checksum, key and sequence number. It is the one place that counts
// them; New does not need to accept c.
func (c Config) Overhead() int {
	n := header.IPv4MinLen
	far := c.Remote
	if !far.IsValid() {
		far = c.Local // a multipoint tunnel's: its neighbours are of its family
	}
	if far.Is6() && !far.Is4In6() {
		n = header.IPv6HeaderLen
		if c.HasEncapLimit {
			n += EncapLimitLen
		}
	}
	if c.UDP {
		n += header.UDPLen
	}
	if c.Mode == ModeGRE {
		n += header.GRELen(header.GREFlagsFor(c.Checksum, c.HasKey, c.Sequence))
	}
	return n
}

// Errors returned by Encap; each means "drop this packet and count it".
var (
	ErrHeadroom     = errors.New("encap: not enough headroom before the inner packet")
	ErrNotIP        = errors.New("encap: inner packet is neither IPv4 nor IPv6")
	ErrIPv6OverIPIP = errors.New("encap: IPIP carries IPv4 only")
	ErrIPv4OverIP6  = errors.New("encap: ip6ip6 and sit carry IPv6 only")
	// ErrEncapLimit: the inner IPv6 packet carries a tunnel encapsulation
	// limit of 0, so it may not be encapsulated again (RFC 2473 section
	// 6.6); header.IPv6EncapLimit says where, for the ICMPv6 Parameter
	// Problem its source is owed.
	ErrEncapLimit = errors.New("encap: the inner packet's encapsulation limit is 0")
	ErrTooBig     = errors.New("encap: outer packet would exceed 65535 bytes") // over IPv6: the payload
)

// Encapsulator holds one tunnel's precomputed outer headers. It is not safe
// for concurrent use: one sending goroutine owns it (identification and
// sequence numbers are per tunnel).
//
// The template is kept as the words Encap stores, and as the one's-complement
// sum of the IPv4 header words that never change (version/IHL, protocol,
// addresses): per packet Encap adds the few words that do (TOS, length, ID,
// flags, TTL) to that sum, an incremental update in the sense of RFC 1624,
// instead of summing the whole header again. An IPv6 header has no
// checksum: its addresses are copied as they are.
type Encapsulator struct {
	cfg    Config
	hdrLen int // bytes Encap prepends
	ipLen  int // bytes of the outer IP header: where UDP or GRE starts
	// maxTotal is the largest outer packet: the IPv4 total length and
	// the IPv6 payload length are both 16 bits.
	maxTotal int
	greOff   int // where GRE starts

	tos     uint8  // fixed outer TOS with the ECN bits clear
	ttl     uint8  // fixed outer TTL, 0 to inherit
	frag    uint16 // fixed flags: DF when DFSet
	addrs   uint64 // source and destination, as stored at offset 12
	baseSum uint32 // sum of the constant header words
	greWord uint32 // GRE flags << 16; the protocol type is ORed in per packet
	key     uint32
	keyOff  int // offset of the GRE key in the outer packet, when HasKey
	seqOff  int // offset of the GRE sequence number, when Sequence
	proto   uint8
	tosInh  bool
	dfInh   bool
	greCsum bool
	greKey  bool
	greSeq  bool
	isGRE   bool
	v6      bool     // outer IPv6
	addrs6  [32]byte // IPv6 source and destination, as stored at offset 8
	next6   uint8    // the IPv6 next header: proto, or destination options
	dstOpts uint64   // the encapsulation limit option header, when next6 says so
	flow    uint32   // fixed flow label
	flowInh bool
	autoFL  bool // hash the inner flow into a label that would be 0 (FlowLabelAuto)
	any     bool // ModeIP6Any: the template's next header says 41, IPv4 inside says 4
	udp     bool
	udpCsum bool
	udpSeed bool   // write the pseudo-header sum only (UDPChecksumPartial)
	ports   uint32 // UDP source and destination port, as stored
	addrSum uint64 // sum of the outer addresses, for the UDP pseudo-header
	ipOnly  bool   // the payload must be IP: EtherType 0, IPv4 or IPv6
	etype   uint16 // Config.EtherType
	id      uint16 // never 0: see nextID
	seq     uint32
	fragID  uint32 // the last IPv6 fragment identification (FragmentID)
}

// nextID returns the next outer identification, skipping 0: a raw socket
// with IP_HDRINCL replaces an ID of 0 with one of the kernel's own for each
// packet it sends, so the fragments of an outer packet with ID 0 would get
// different IDs and could never be reassembled.
func (e *Encapsulator) nextID() uint16 {
	e.id++
	if e.id == 0 {
		e.id = 1
	}
	return e.id
}

// FragmentID returns the identification for the next outer IPv6 packet to
// be fragmented (Fragment6): a counter per tunnel, which is all RFC 8200
// asks of a source.
func (e *Encapsulator) FragmentID() uint32 {
	e.fragID++
	return e.fragID
}

// New validates c and precomputes the outer header template.
func New(c Config) (*Encapsulator, error) {
	if c.Mode != ModeGRE && c.Mode != ModeIPIP && c.Mode != ModeIP6 && c.Mode != ModeIP6Any {
		return nil, fmt.Errorf("encap: unknown mode %d", c.Mode)
	}
	v4 := c.Local.Is4() && c.Remote.Is4()
	v6 := c.Local.Is6() && c.Remote.Is6() && !c.Local.Is4In6() && !c.Remote.Is4In6()
	if !v4 && !v6 {
		return nil, errors.New("encap: local and remote must be both IPv4 or both IPv6 addresses")
	}
	if c.Local == c.Remote {
		return nil, errors.New("encap: remote equals local")
	}
	if c.Mode != ModeGRE && (c.HasKey || c.Checksum || c.Sequence) {
		return nil, errors.New("encap: key, csum and seq need mode gre")
	}
	if c.Mode != ModeGRE && c.EtherType != 0 {
		return nil, errors.New("encap: an ethertype needs mode gre")
	}
	if c.UDP && c.Mode != ModeGRE && c.Mode != ModeIPIP && c.Mode != ModeIP6 {
		return nil, errors.New("encap: udp carries gre or ipip")
	}
	if c.UDP && c.Mode == ModeIP6Any {
		return nil, errors.New("encap: udp carries one inner protocol: not mode any")
	}
	if !v6 && (c.Mode == ModeIP6Any || c.HasEncapLimit || c.FlowLabel != 0 || c.FlowLabelInherit || c.FlowLabelAuto) {
		return nil, errors.New("encap: mode any, an encapsulation limit and a flow label need IPv6 endpoints")
	}
	if c.FlowLabel > 0xfffff {
		return nil, fmt.Errorf("encap: flow label %#x is over 20 bits", c.FlowLabel)
	}
	if c.UDP && c.DstPort == 0 {
		return nil, errors.New("encap: udp needs a destination port")
	}
	if c.DF > DFClear {
		return nil, fmt.Errorf("encap: unknown DF policy %d", c.DF)
	}
	if c.TOSInherit {
		c.TOS = 0
	}
	e := &Encapsulator{
		cfg:      c,
		hdrLen:   c.Overhead(),
		ipLen:    header.IPv4MinLen,
		maxTotal: header.IPv4MaxPacket,
		tos:      c.TOS &^ header.ECNMask,
		ttl:      c.TTL,
		proto:    uint8(c.Mode),
		tosInh:   c.TOSInherit,
		dfInh:    c.DF == DFInherit,
		isGRE:    c.Mode == ModeGRE,
		v6:       v6,
		udp:      c.UDP,
		udpCsum:  c.UDP && c.UDPChecksum,
		udpSeed:  c.UDP && !c.UDPChecksum && c.UDPChecksumPartial,
		ports:    uint32(c.SrcPort)<<16 | uint32(c.DstPort),
		ipOnly:   c.EtherType == 0 || c.EtherType == header.EtherTypeIPv4 || c.EtherType == header.EtherTypeIPv6,
		etype:    c.EtherType,
	}
	if c.Mode == ModeIP6Any {
		// The template says IPv6 inside; an IPv4 packet's header
		// is patched (nextIPv4).
		e.proto, e.any = header.ProtoIPv6, true
	}
	if c.UDP {
		e.proto = header.ProtoUDP
	}
	if c.DF == DFSet {
		e.frag = header.IPv4FlagDF
	}
	if v6 {
		e.ipLen = header.IPv6HeaderLen
		e.maxTotal = header.IPv6HeaderLen + header.IPv6MaxPayload
		e.next6, e.flow, e.flowInh, e.autoFL = e.proto, c.FlowLabel, c.FlowLabelInherit, c.FlowLabelAuto
		if c.HasEncapLimit {
			// Next header, length 0 (8 bytes), the option (type 4,
			// length 1, the limit), PadN of one byte.
			e.next6 = header.IPv6DestOpts
			e.dstOpts = uint64(e.proto)<<56 | header.IPv6OptEncapLimit<<40 | header.IPv6OptEncapLimitSz<<32 |
				uint64(c.EncapLimit)<<24 | header.IPv6OptPadN<<16 | 1<<8
			e.ipLen += EncapLimitLen
		}
		l, r := c.Local.As16(), c.Remote.As16()
		copy(e.addrs6[:16], l[:])
		copy(e.addrs6[16:], r[:])
		e.addrSum = header.Sum(e.addrs6[:], 0)
	} else {
		l, r := c.Local.As4(), c.Remote.As4()
		e.addrs = uint64(binary.BigEndian.Uint32(l[:]))<<32 | uint64(binary.BigEndian.Uint32(r[:]))
		e.baseSum = 0x4500 + uint32(e.proto) +
			uint32(binary.BigEndian.Uint16(l[0:])) + uint32(binary.BigEndian.Uint16(l[2:])) +
			uint32(binary.BigEndian.Uint16(r[0:])) + uint32(binary.BigEndian.Uint16(r[2:]))
		e.addrSum = uint64(e.baseSum - 0x4500 - uint32(e.proto))
	}
	e.greOff = e.ipLen
	if c.UDP {
		e.greOff += header.UDPLen
	}
	if e.isGRE {
		flags := header.GREFlagsFor(c.Checksum, c.HasKey, c.Sequence)
		e.greCsum, e.greKey, e.greSeq, e.key = c.Checksum, c.HasKey, c.Sequence, c.Key
		e.keyOff = e.greOff + header.GREMinLen
		if c.Checksum {
			e.keyOff += 4
		}
		e.seqOff = e.keyOff
		if c.HasKey {
			e.seqOff += 4
		}
		e.greWord = uint32(flags) << 16
	}
	return e, nil
}

// Continue makes e carry on old's per-packet counters, for a tunnel whose
// configuration changed (`tunnel change`, a reload) while it runs: the GRE
// sequence number goes on where old stopped, as Linux keeps o_seqno across
// `ip tunnel change`, because a peer with iseq drops every number older than
// the last it accepted (RFC 2890) and would black-hole a restart at 0; the
// identification goes on too, so the IDs of fragments in flight are not
// reused at once. The number is taken over even when old sent none, so
// turning oseq off and on again does not restart it either. old must no
// longer be used for sending.
func (e *Encapsulator) Continue(old *Encapsulator) {
	e.id, e.seq, e.fragID = old.id, old.seq, old.fragID
}

// Config returns the configuration the template was built from.
func (e *Encapsulator) Config() Config { return e.cfg }

// Overhead is the number of bytes Encap prepends (Config.Overhead): 20 for
// IPIP, 24 for plain GRE and 4 more for each of checksum, key and sequence
// number; 20 more over IPv6 (28 with an encapsulation limit) and 8 more
// with UDP.
func (e *Encapsulator) Overhead() int { return e.hdrLen }

// Encap prepends the outer headers to the inner packet buf[off:] and returns
// the outer packet, which ends where buf ends and starts Overhead() bytes
// before off. buf[:off] must have room for the headers; Encap writes nothing
// else, and nothing at all when it returns an error.
func (e *Encapsulator) Encap(buf []byte, off int) ([]byte, error) {
	return e.encap(buf, off, e.ipOnly)
}

// EncapIP is Encap for an IP packet whatever payload the tunnel carries:
// the GRE protocol type follows its IP version. A gretap tunnel sends its
// keepalives through it: a Cisco keepalive is IPv4 in GRE 0x0800, which the
// far end routes back, with the tunnel's key, checksum and next sequence
// number like any of its packets.
func (e *Encapsulator) EncapIP(buf []byte, off int) ([]byte, error) {
	return e.encap(buf, off, true)
}

func (e *Encapsulator) encap(buf []byte, off int, ipOnly bool) ([]byte, error) {
	start := off - e.hdrLen
	if start < 0 || off > len(buf) {
		return nil, ErrHeadroom
	}
	inner := buf[off:]
	if len(inner) == 0 {
		return nil, ErrNotIP
	}
	var innerTTL, innerTOS uint8
	var innerFrag uint16
	var innerFlow uint32
	next6, dstOpts := e.next6, e.dstOpts
	var etherType uint32
	if !ipOnly {
		// Opaque payload (an Ethernet frame): nothing to inherit.
		innerTTL, etherType = defaultTTL, uint32(e.etype)
	} else {
		switch inner[0] >> 4 {
		case 4:
			if len(inner) < header.IPv4MinLen {
				return nil, ErrNotIP
			}
			if e.cfg.Mode == ModeIP6 { // not e.proto: UDP when inside UDP
				return nil, ErrIPv4OverIP6
			}
			in := inner[:header.IPv4MinLen:header.IPv4MinLen]
			innerTOS, innerTTL = in[header.IPv4TOS], in[header.IPv4TTL]
			innerFrag = uint16(in[header.IPv4FlagsFrag]) << 8
			etherType = header.EtherTypeIPv4
			if e.any {
				next6, dstOpts = e.nextIPv4()
			}
		case 6:
			if e.cfg.Mode == ModeIPIP { // not e.proto: UDP when inside UDP
				return nil, ErrIPv6OverIPIP
			}
			if len(inner) < header.IPv6HeaderLen {
				return nil, ErrNotIP
			}
			in := inner[:header.IPv6HeaderLen:header.IPv6HeaderLen]
			innerTOS, innerTTL = in[0]<<4|in[1]>>4, in[header.IPv6HopLimit]
			innerFlow = binary.BigEndian.Uint32(in[0:]) & 0xfffff
			if e.v6 && isExtension(in[header.IPv6NextHeader]) {
				// A tunnel packet entering another tunnel: its own
				// limit, less one, is the new outer one (RFC 2473
				// section 6.6, as Linux's ip6_tnl does); at 0 it is
				// refused.
				if l, _, ok := header.IPv6EncapLimit(inner); ok {
					if l == 0 {
						return nil, ErrEncapLimit
					}
					dstOpts = dstOpts&^(0xff<<24) | uint64(l-1)<<24
				}
			}
			etherType = header.EtherTypeIPv6
		default:
			return nil, ErrNotIP
		}
		if e.ipOnly && e.etype != 0 && uint32(e.etype) != etherType {
			return nil, ErrNotIP
		}
	}
	total := len(buf) - start
	if total > e.maxTotal {
		return nil, ErrTooBig
	}

	ttl := e.ttl
	if ttl == 0 {
		ttl = innerTTL
	}
	tos := e.tos
	if e.tosInh {
		tos = innerTOS &^ header.ECNMask
	}
	// RFC 6040 normal mode: the outer ECN field is a copy of the inner one.
	tos |= innerTOS & header.ECNMask

	out := buf[start:]
	if e.v6 {
		flow := e.flow
		if e.flowInh && innerFlow != 0 {
			flow = innerFlow
		}
		if flow == 0 && e.autoFL {
			if ipOnly {
				flow = flowLabel(inner)
			} else {
				flow = frameFlowLabel(inner)
			}
		}
		ip := (*[header.IPv6HeaderLen]byte)(out)
		binary.BigEndian.PutUint32(ip[0:], 6<<28|uint32(tos)<<20|flow)
		binary.BigEndian.PutUint32(ip[4:], uint32(total-header.IPv6HeaderLen)<<16|uint32(next6)<<8|uint32(ttl))
		*(*[32]byte)(ip[header.IPv6Src:]) = e.addrs6
		if next6 == header.IPv6DestOpts {
			binary.BigEndian.PutUint64(out[header.IPv6HeaderLen:], dstOpts)
		}
	} else {
		frag := e.frag
		if e.dfInh {
			frag = innerFrag & header.IPv4FlagDF
		}
		id := e.nextID()
		sum := e.baseSum + uint32(tos) + uint32(total) + uint32(id) + uint32(frag) + uint32(ttl)<<8
		sum = sum&0xffff + sum>>16
		sum = sum&0xffff + sum>>16
		csum := ^uint16(sum)

		ip := (*[header.IPv4MinLen]byte)(out)
		binary.BigEndian.PutUint32(ip[0:], 0x45<<24|uint32(tos)<<16|uint32(total))
		binary.BigEndian.PutUint32(ip[4:], uint32(id)<<16|uint32(frag))
		binary.BigEndian.PutUint32(ip[8:], uint32(ttl)<<24|uint32(e.proto)<<16|uint32(csum))
		binary.BigEndian.PutUint64(ip[12:], e.addrs)
	}
	if !e.isGRE {
		if e.udp {
			e.putUDP(out[e.ipLen:], inner) // IPIP inside UDP (FOU): the inner packet right after it
		}
		return out, nil
	}
	binary.BigEndian.PutUint32(out[e.greOff:], e.greWord|etherType)
	if e.greKey {
		binary.BigEndian.PutUint32(out[e.keyOff:], e.key)
	}
	if e.greSeq {
		binary.BigEndian.PutUint32(out[e.seqOff:], e.seq)
		e.seq++
	}
	if e.greCsum {
		// RFC 2784: the checksum covers the GRE header and payload, with
		// the checksum field (and Reserved1) zero while it is summed.
		g := out[e.greOff:]
		binary.BigEndian.PutUint32(g[header.GRECsum:], 0)
		binary.BigEndian.PutUint16(g[header.GRECsum:], header.Checksum(g))
	}
	if e.udp {
		e.putUDP(out[e.ipLen:], inner)
	}
	return out, nil
}

// nextIPv4 is a mode any template's next header and encapsulation limit
// option for an inner IPv4 packet: the protocol, 41 in the template, says
// 4 wherever it is, in the IPv6 header or after the option.
func (e *Encapsulator) nextIPv4() (uint8, uint64) {
	if e.next6 == header.IPv6DestOpts {
		return e.next6, e.dstOpts&^(0xff<<56) | header.ProtoIPIP<<56
	}
	return header.ProtoIPIP, e.dstOpts
}

// flowLabel is a flow label for the inner IP packet: a hash of its
// addresses, protocol and, for TCP, UDP and SCTP, ports (an IPv6 packet's
// first header only), never 0. Packets of one flow get one label, as the
// kernel's flow hash gives them (its values differ: its hash is keyed).
func flowLabel(inner []byte) uint32 {
	const k = 0x9e3779b97f4a7c15
	var h uint64
	var proto uint8
	var l4 []byte
	if inner[0]>>4 == 4 {
		proto = inner[header.IPv4Protocol]
		h = binary.BigEndian.Uint64(inner[header.IPv4Src:]) ^ uint64(proto)
		if hl := int(inner[0]&0x0f) * 4; hl <= len(inner) && binary.BigEndian.Uint16(inner[header.IPv4FlagsFrag:])&(header.IPv4FlagMF|header.IPv4FragOffset) == 0 {
			l4 = inner[hl:]
		}
	} else {
		proto = inner[header.IPv6NextHeader]
		h = binary.BigEndian.Uint64(inner[8:]) ^ bits.RotateLeft64(binary.BigEndian.Uint64(inner[16:]), 17) ^
			bits.RotateLeft64(binary.BigEndian.Uint64(inner[24:]), 31) ^ bits.RotateLeft64(binary.BigEndian.Uint64(inner[32:]), 47) ^
			uint64(proto)
		l4 = inner[header.IPv6HeaderLen:]
	}
	if (proto == header.ProtoTCP || proto == header.ProtoUDP || proto == protoSCTP) && len(l4) >= 4 {
		h ^= uint64(binary.BigEndian.Uint32(l4)) << 23
	}
	// One multiply by the golden ratio; its top 20 bits mix every input bit.
	l := uint32((h * k) >> 44)
	if l == 0 {
		l = 1
	}
	return l
}

// frameFlowLabel is flowLabel for an Ethernet frame (ip6gretap): that of
// the IPv4 or IPv6 packet it carries, behind up to two VLAN tags, as
// Linux's flow dissector finds it; for any other frame (ARP, say) a hash
// of its Ethernet header (addresses and type), never 0.
func frameFlowLabel(frame []byte) uint32 {
	if at := header.FramedIPAt(frame); at > 0 {
		ip := frame[at:]
		switch {
		case len(ip) >= header.IPv4MinLen && ip[0]>>4 == 4, len(ip) >= header.IPv6HeaderLen && ip[0]>>4 == 6:
			return flowLabel(ip)
		}
	}
	return max(1, uint32(mix(0, frame[:min(len(frame), header.EthernetHeaderLen)])>>44))
}

// protoSCTP is SCTP's protocol number: its ports are where TCP's are.
const protoSCTP = 132

// isExtension reports whether an IPv6 next header is one of the extension
// headers an encapsulation limit may sit among.
func isExtension(next uint8) bool {
	switch next {
	case header.IPv6HopByHop, header.IPv6Routing, header.IPv6Fragment, header.IPv6DestOpts, header.ProtoAH:
		return true
	}
	return false
}

// putUDP writes the UDP header in front of the GRE packet in u, after GRE
// is complete: its checksum covers GRE and the payload. Without a source
// port of its own (encap-sport auto) it takes the inner packet's flow's.
func (e *Encapsulator) putUDP(u header.UDP, inner []byte) {
	ports := e.ports
	if ports>>16 == 0 {
		ports |= uint32(FlowPort(inner, e.ipOnly)) << 16
	}
	binary.BigEndian.PutUint32(u[header.UDPSrcPort:], ports)
	binary.BigEndian.PutUint32(u[header.UDPLength:], uint32(len(u))<<16)
	switch {
	case e.udpCsum:
		u.SetChecksum(u.ComputeChecksum(e.addrSum + header.ProtoUDP + uint64(len(u))))
	case e.udpSeed:
		s := e.addrSum + header.ProtoUDP + uint64(len(u))
		s = s&0xffff + s>>16
		s = s&0xffff + s>>16
		s = s&0xffff + s>>16
		u.SetChecksum(uint16(s))
	default:
		u.SetChecksum(0)
	}
}

// FlowPort is the UDP source port of the inner packet's flow, for a tunnel
// without a fixed one (RFC 8086 section 3.2: the source port as entropy,
// for ECMP; Linux's udp_flow_src_port): a hash of the inner addresses,
// protocol and, unless a fragment, TCP/UDP/SCTP ports, in the dynamic
// range 49152-65535. Every packet of a flow gets the same port, so the
// segments of one TSO super-packet still leave together. An opaque
// payload (not ip: an Ethernet frame) hashes the IP packet it carries,
// behind up to two VLAN tags, as Linux's flow dissector does, else its
// first 14 bytes (an Ethernet header's addresses and type).
func FlowPort(inner []byte, ip bool) uint16 {
	var h uint64
	if !ip {
		if at := header.FramedIPAt(inner); at > 0 {
			inner, ip = inner[at:], true
		}
	}
	switch {
	case !ip:
		h = mix(h, inner[:min(len(inner), 14)])
	case len(inner) >= header.IPv4MinLen && inner[0]>>4 == 4:
		ip := header.IPv4(inner)
		h = mix(h, inner[header.IPv4Src:header.IPv4Dst+4])
		proto := ip.Protocol()
		h = (h ^ uint64(proto)) * hashMul
		if hl := ip.HeaderLen(); !ip.IsFragment() && hasPorts(proto) && len(inner) >= hl+4 {
			h = mix(h, inner[hl:hl+4])
		}
	case len(inner) >= header.IPv6HeaderLen && inner[0]>>4 == 6:
		h = mix(h, inner[header.IPv6Src:header.IPv6Src+32])
		proto := header.IPv6(inner).NextHeader()
		h = (h ^ uint64(proto)) * hashMul
		if hasPorts(proto) && len(inner) >= header.IPv6HeaderLen+4 {
			h = mix(h, inner[header.IPv6HeaderLen:header.IPv6HeaderLen+4])
		}
	}
	return 49152 | uint16(h>>50)
}

const hashMul = 0x9e3779b97f4a7c15

// mix folds b into the hash h, four bytes at a time.
func mix(h uint64, b []byte) uint64 {
	for len(b) >= 4 {
		h = (h ^ uint64(binary.BigEndian.Uint32(b))) * hashMul
		b = b[4:]
	}
	for _, c := range b {
		h = (h ^ uint64(c)) * hashMul
	}
	return h
}

func hasPorts(proto uint8) bool {
	return proto == header.ProtoTCP || proto == header.ProtoUDP || proto == 132 // SCTP
}
