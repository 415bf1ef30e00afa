// Package config describes a tunnel the way `ip tunnel` does and parses the
// iproute2-style words gretun takes on its command line and in its config
// file (`mode gre remote A local B ttl 255 key 42 …`). It only parses and
// validates what can be known without looking at the host; the engine
// checks the rest (the local address exists, capabilities).
package config

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gretun/gretun/decap"
	"github.com/gretun/gretun/encap"
	"github.com/gretun/gretun/header"
	"github.com/gretun/gretun/keepalive"
)

// Keepalive defaults, as on Cisco routers.
const (
	DefaultKeepalivePeriod  = keepalive.DefaultPeriod
	DefaultKeepaliveRetries = keepalive.DefaultRetries
)

// Mode is a tunnel's encapsulation, named as `ip tunnel` names it (the
// name is what the config file, `tunnel show` and its JSON carry).
type Mode string

const (
	ModeGRE  Mode = "gre"
	ModeIPIP Mode = "ipip"
	// The modes of `ip -6 tunnel`, over an IPv6 underlay: GRE with IPv4 or
	// IPv6 inside (Linux's ip6gre), IPv6 in IPv6 and IPv4 in IPv6 (RFC
	// 2473, Linux's ip6tnl modes ip6ip6 and ipip6).
	ModeIP6GRE Mode = "ip6gre"
	ModeIP6IP6 Mode = "ip6ip6"
	ModeIPIP6  Mode = "ipip6"
	// ModeIP6Any carries both, IPv4 and IPv6 in IPv6, next header 4 or 41
	// by each inner packet's version (Linux's ip6tnl mode any, proto 0,
	// what `ip link add … type ip6tnl` makes when no mode is named).
	ModeIP6Any Mode = "any"
	// ModeGRETap carries Ethernet frames in GRE (protocol type 0x6558,
	// Transparent Ethernet Bridging) between TAP devices, as Linux's
	// gretap: the device can join a bridge.
	ModeGRETap Mode = "gretap"
	// ModeIP6GRETap is gretap over an IPv6 underlay, as Linux's ip6gretap.
	ModeIP6GRETap Mode = "ip6gretap"
	// ModeSIT is IPv6 in IPv4 (IP protocol 41, RFC 4213's 6in4), as
	// Linux's sit in its default mode ip6ip: the tunnel brokers' `ip
	// tunnel add he-ipv6 mode sit remote R local L ttl 255`.
	ModeSIT Mode = "sit"
)

// Encap is the encapsulator's name for m.
func (m Mode) Encap() encap.Mode {
	switch m {
	case ModeIPIP, ModeIPIP6:
		return encap.ModeIPIP
	case ModeIP6IP6, ModeSIT:
		return encap.ModeIP6
	case ModeIP6Any:
		return encap.ModeIP6Any
	}
	return encap.ModeGRE
}

// IPv6 reports whether m runs over an IPv6 underlay.
func (m Mode) IPv6() bool {
	return m == ModeIP6GRE || m == ModeIP6GRETap || m.ip6tnl()
}

// ip6tnl reports whether m is one of Linux's ip6tnl modes, of which one
// tunnel exists per address pair whatever its mode.
func (m Mode) ip6tnl() bool { return m == ModeIP6IP6 || m == ModeIPIP6 || m == ModeIP6Any }

// GRE reports whether m is GRE, over either family.
func (m Mode) GRE() bool {
	return m == ModeGRE || m == ModeGRETap || m == ModeIP6GRE || m == ModeIP6GRETap
}

// show is how `ip tunnel show` and `ip -6 tunnel show` name m: inner
// over outer protocol.
func (m Mode) show() string {
	switch m {
	case ModeIP6GRE:
		return "gre/ipv6"
	case ModeIP6GRETap:
		return "gretap/ipv6"
	case ModeIP6IP6:
		return "ipv6/ipv6"
	case ModeIPIP6:
		return "ip/ipv6"
	case ModeIP6Any:
		return "any/ipv6"
	case ModeSIT:
		return "ipv6/ip"
	}
	return string(m) + "/ip"
}

// modeWords are the names `ip tunnel` and `ip -6 tunnel` take for each mode.
var modeWords = map[string]Mode{
	"gre": ModeGRE, "gre/ip": ModeGRE,
	"gretap": ModeGRETap, "gretap/ip": ModeGRETap,
	"ip6gretap": ModeIP6GRETap, "gretap/ipv6": ModeIP6GRETap,
	"ipip": ModeIPIP, "ipip/ip": ModeIPIP, "ip/ip": ModeIPIP,
	"ip6gre": ModeIP6GRE, "gre/ipv6": ModeIP6GRE,
	"ip6ip6": ModeIP6IP6, "ipv6/ipv6": ModeIP6IP6,
	"ipip6": ModeIPIP6, "ip4ip6": ModeIPIP6, "ip/ipv6": ModeIPIP6, "ipv4/ipv6": ModeIPIP6,
	"any": ModeIP6Any, "any/ipv6": ModeIP6Any,
	"sit": ModeSIT, "ipv6/ip": ModeSIT, "ip6ip": ModeSIT, "ipv6/ipv4": ModeSIT, // ip6ip, ipv6/ipv4: `ip link add type sit mode`
}

// Defaults of `ip -6 tunnel add`: hop limit 64 and an encapsulation limit
// of 4 in every packet (iproute2's ip6tunnel.c, the kernel's
// IPV6_DEFAULT_TNL_ENCAP_LIMIT).
const (
	DefaultHopLimit   = 64
	DefaultEncapLimit = 4
)

// DF is a DF policy as `ip tunnel` names it, with the kernel's meaning
// (ip_tunnel_xmit). `ip tunnel add` defaults to pmtudisc: Parse starts
// from DFSet, and an empty DF means it too.
type DF string

const (
	// DFSet always sets DF on the outer header. Inner IPv4 packets
	// without DF that do not fit the path are fragmented before they are
	// encapsulated.
	DFSet DF = "pmtudisc"
	// DFInherit copies DF from an inner IPv4 header and leaves it clear
	// for IPv6; outer packets without DF are fragmented to fit.
	DFInherit DF = "nopmtudisc"
	// DFIgnore never sets DF and fragments even the outer packets of
	// inner packets with DF.
	DFIgnore DF = "ignore-df"
)

// Encap is the encapsulator's policy for d.
func (d DF) Encap() encap.DFPolicy {
	switch d {
	case DFInherit:
		return encap.DFInherit
	case DFIgnore:
		return encap.DFClear
	}
	return encap.DFSet
}

// Underlay is a send path (`underlay raw|packet`). The zero value means
// UnderlayRaw.
type Underlay string

const (
	// UnderlayRaw sends outer packets on the raw IP socket: the kernel
	// routes them, resolves the neighbour, runs netfilter and the qdisc.
	UnderlayRaw Underlay = "raw"
	// UnderlayPacket sends them as Ethernet frames on an AF_PACKET socket
	// bound to the egress device, bypassing the qdisc, netfilter and policy
	// routing: measured 1.5x the packets per second of the raw socket in
	// BENCHMARKS.md. Opt-in for that reason.
	UnderlayPacket Underlay = "packet"
)

// Tunnel is one tunnel's configuration. The zero value of each optional
// field is the `ip tunnel` default.
type Tunnel struct {
	Name       string     `json:"name"`
	Mode       Mode       `json:"mode"`
	Local      netip.Addr `json:"local"`
	Remote     netip.Addr `json:"remote"`
	TTL        int        `json:"ttl"` // 0 inherits
	TOS        int        `json:"tos"`
	TOSInherit bool       `json:"tos_inherit,omitempty"`
	IKey       uint32     `json:"ikey,omitempty"`
	OKey       uint32     `json:"okey,omitempty"`
	HasIKey    bool       `json:"has_ikey,omitempty"`
	HasOKey    bool       `json:"has_okey,omitempty"`
	ICsum      bool       `json:"icsum,omitempty"`
	OCsum      bool       `json:"ocsum,omitempty"`
	ISeq       bool       `json:"iseq,omitempty"`
	OSeq       bool       `json:"oseq,omitempty"`
	DF         DF         `json:"df"`            // DFSet (also empty), DFInherit, DFIgnore
	MTU        int        `json:"mtu,omitempty"` // 0 follows the underlay

	KeepalivePeriod  time.Duration `json:"keepalive_period,omitempty"` // 0: no keepalives
	KeepaliveRetries int           `json:"keepalive_retries,omitempty"`

	// Over IPv6 only: the flow label (`flowlabel N|inherit`) and the
	// tunnel encapsulation limit (`encaplimit none|N`): "" is Linux's
	// default of 4, "none" sends none, else the number 0-255.
	FlowLabel        uint32 `json:"flowlabel,omitempty"`
	FlowLabelInherit bool   `json:"flowlabel_inherit,omitempty"`
	EncapLimit       string `json:"encaplimit,omitempty"`
	// Dev is the underlay device the tunnel's packets leave by (`dev
	// NAME`, the kernel's link): the route toward the remote (and a
	// neighbour's lladdr) is looked up as out of that device, whatever
	// the routing table prefers, and gives the underlay MTU. Link-local
	// IPv6 endpoints name a link, not a host, and need it.
	Dev string `json:"dev,omitempty"`
	// FwMark is the firewall mark of the tunnel's outer packets (`fwmark
	// N`, as `ip link add … type gre … fwmark N`): policy routing (`ip
	// rule … fwmark N`) picks their route by it, and netfilter sees it.
	FwMark uint32 `json:"fwmark,omitempty"`

	ClampMSS bool `json:"clamp_mss,omitempty"`
	MSS      int  `json:"mss,omitempty"` // 0 derives it from the MTU

	Underlay Underlay `json:"underlay,omitempty"` // "" (UnderlayRaw) or UnderlayPacket

	// NoReflect hands other routers' keepalive probes to the host like any
	// packet instead of returning them from userspace (`noreflect`).
	NoReflect bool `json:"noreflect,omitempty"`

	// UDPEncap puts GRE or IPIP inside UDP (`encap fou`, RFC 8086): sent to
	// EncapDport (0: 4754 for GRE), from EncapSport (0: `encap-sport
	// auto`, per-flow ports), received on FouPort (0: the EncapDport).
	// NoEncapCsum sends UDP checksums of 0 (`noencap-csum`).
	UDPEncap    Encap  `json:"encap,omitempty"`
	EncapDport  uint16 `json:"encap_dport,omitempty"`
	EncapSport  uint16 `json:"encap_sport,omitempty"`
	NoEncapCsum bool   `json:"noencap_csum,omitempty"`
	FouPort     uint16 `json:"fou_port,omitempty"`

	// Stack, when set, replaces the TUN device by a userspace TCP/IP
	// stack (`netstack …`, stack.go).
	Stack *Stack `json:"netstack,omitempty"`
	// Learn, on a multipoint tunnel, is how many neighbours it may learn
	// from received traffic (`learn [N]`); 0 learns none.
	Learn int `json:"learn,omitempty"`
}

// Encap is a tunnel's encapsulation below GRE or IPIP, as `ip link`'s
// `encap` word names it: "" (none) or EncapFOU.
type Encap string

// EncapFOU carries the tunnel's packets inside UDP (Foo-over-UDP; for GRE
// RFC 8086's GRE-in-UDP).
const EncapFOU Encap = "fou"

// PortGRE is the UDP port RFC 8086 assigns to GRE-in-UDP, the default
// encap-dport of GRE tunnels. IPIP has no assigned port.
const PortGRE = 4754

// DefaultLearn is how many neighbours `learn` without a number may learn.
const DefaultLearn = 256

// MaxLearn bounds `learn N`: the table is copied whole on each change.
const MaxLearn = 65536

// Multipoint reports whether t has no remote: its peers are neighbours,
// each packet's outer destination looked up by its inner destination, as
// the kernel's GRE tunnel without `remote` (NBMA) does.
func (t *Tunnel) Multipoint() bool { return !t.Remote.IsValid() }

// MaxNameLen is the kernel's IFNAMSIZ less the terminating NUL.
const MaxNameLen = 15

// Parse builds a Tunnel named name from iproute2-style words and validates it.
func Parse(name string, words []string) (Tunnel, error) {
	t := Tunnel{Name: name, DF: DFSet}
	if err := t.Apply(words); err != nil {
		return Tunnel{}, err
	}
	if t.Mode.IPv6() && !hasWord(words, "ttl", "hoplimit", "hlim") {
		t.TTL = DefaultHopLimit // `ip -6 tunnel`'s default; `ip tunnel` inherits
	}
	if err := t.Validate(); err != nil {
		return t, err
	}
	if t.EncapLimit == strconv.Itoa(DefaultEncapLimit) {
		t.EncapLimit = "" // the default has one spelling, so reloads see no change
	}
	return t, nil
}

func hasWord(words []string, any ...string) bool {
	for _, w := range words {
		for _, a := range any {
			if w == a {
				return true
			}
		}
	}
	return false
}

// Apply changes t by the words, as `ip tunnel change` does: words not given
// keep their value. It does not validate the result; call Validate.
func (t *Tunnel) Apply(words []string) error {
	for i := 0; i < len(words); i++ {
		w := words[i]
		value := func() (string, error) { return valueAfter(words, &i) }
		optional := func() (string, bool) {
			if i+1 < len(words) && startsWithDigit(words[i+1]) {
				i++
				return words[i], true
			}
			return "", false
		}
		switch w {
		case "mode":
			v, err := value()
			if err != nil {
				return err
			}
			m, ok := modeWords[v]
			if !ok {
				return fmt.Errorf("unknown mode %q (want gre, gretap, ipip, sit, ip6gre, ip6gretap, ip6ip6, ipip6 or any)", v)
			}
			t.Mode = m
		case "remote", "local":
			v, err := value()
			if err != nil {
				return err
			}
			if w == "remote" && v == "any" {
				t.Remote = netip.Addr{} // multipoint, as `ip tunnel` reads it
				continue
			}
			a, err := netip.ParseAddr(v)
			if err != nil || a.Is4In6() {
				return fmt.Errorf("invalid address %q for %s", v, w)
			}
			if z := a.Zone(); z != "" {
				// fe80::1%eth0 is fe80::1 on device eth0.
				if t.Dev != "" && t.Dev != z {
					return fmt.Errorf("%s %s names device %s, dev says %s", w, a, z, t.Dev)
				}
				t.Dev, a = z, a.WithZone("")
			}
			if w == "remote" {
				t.Remote = a
			} else {
				t.Local = a
			}
		case "ttl", "hoplimit", "hlim":
			v, err := value()
			if err != nil {
				return err
			}
			if v == "inherit" {
				t.TTL = 0
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 255 {
				return fmt.Errorf("invalid ttl %q (want 1-255, or 0 or inherit to copy the inner TTL)", v)
			}
			t.TTL = n
		case "tos", "dsfield", "tclass":
			v, err := value()
			if err != nil {
				return err
			}
			if v == "inherit" {
				t.TOS, t.TOSInherit = 0, true
				continue
			}
			// iproute2 reads TOS in hexadecimal, with or without 0x.
			n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(v), "0x"), 16, 8)
			if err != nil {
				return fmt.Errorf("invalid tos %q (want hexadecimal 0-ff, e.g. 0x10, or inherit)", v)
			}
			// The kernel reads an odd value (`tos 1`, `0x11`) as
			// inherit: bit 0 is its inherit flag.
			t.TOS, t.TOSInherit = int(n), false
			if n&1 != 0 {
				t.TOS, t.TOSInherit = 0, true
			}
		case "dev":
			v, err := value()
			if err != nil {
				return err
			}
			if err := ValidateName(v); err != nil {
				return fmt.Errorf("invalid dev: %v", err)
			}
			t.Dev = v
		case "fwmark":
			v, err := value()
			if err != nil {
				return err
			}
			// iproute2 reads it as C does: decimal, 0x… or 0….
			n, err := strconv.ParseUint(v, 0, 32)
			if err != nil {
				return fmt.Errorf("invalid fwmark %q (want 0-4294967295, or 0x… in hexadecimal)", v)
			}
			t.FwMark = uint32(n)
		case "flowlabel":
			v, err := value()
			if err != nil {
				return err
			}
			if v == "inherit" {
				t.FlowLabel, t.FlowLabelInherit = 0, true
				continue
			}
			// iproute2 reads it in hexadecimal, as tclass.
			n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(v), "0x"), 16, 32)
			if err != nil || n > 0xfffff {
				return fmt.Errorf("invalid flowlabel %q (want hexadecimal 0-fffff, or inherit)", v)
			}
			t.FlowLabel, t.FlowLabelInherit = uint32(n), false
		case "encaplimit":
			v, err := value()
			if err != nil {
				return err
			}
			if v != "none" {
				n, err := strconv.ParseUint(v, 10, 8)
				if err != nil {
					return fmt.Errorf("invalid encaplimit %q (want none or 0-255)", v)
				}
				v = strconv.Itoa(int(n))
			}
			if v == strconv.Itoa(DefaultEncapLimit) && t.Mode.IPv6() {
				v = "" // the default has one spelling (Parse sees to it when the mode comes later)
			}
			t.EncapLimit = v
		case "key", "ikey", "okey":
			v, err := value()
			if err != nil {
				return err
			}
			k, err := ParseKey(v)
			if err != nil {
				return err
			}
			if w != "okey" {
				t.IKey, t.HasIKey = k, true
			}
			if w != "ikey" {
				t.OKey, t.HasOKey = k, true
			}
		case "nokey":
			t.IKey, t.HasIKey, t.OKey, t.HasOKey = 0, false, 0, false
		case "csum":
			t.ICsum, t.OCsum = true, true
		case "icsum":
			t.ICsum = true
		case "ocsum":
			t.OCsum = true
		case "nocsum":
			t.ICsum, t.OCsum = false, false
		case "seq":
			t.ISeq, t.OSeq = true, true
		case "iseq":
			t.ISeq = true
		case "oseq":
			t.OSeq = true
		case "noseq":
			t.ISeq, t.OSeq = false, false
		case "pmtudisc":
			t.DF = DFSet
		case "nopmtudisc", "inherit-df":
			t.DF = DFInherit
		case "ignore-df":
			t.DF = DFIgnore
		case "noignore-df":
			// ignore-df implies nopmtudisc (the kernel refuses it
			// with pmtudisc), which stays.
			if t.DF == DFIgnore {
				t.DF = DFInherit
			}
		case "mtu":
			v, err := value()
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("invalid mtu %q", v)
			}
			t.MTU = n
		case "keepalive":
			t.KeepalivePeriod, t.KeepaliveRetries = DefaultKeepalivePeriod, DefaultKeepaliveRetries
			if v, ok := optional(); ok {
				d, err := keepalive.ParsePeriod(v)
				if err != nil {
					return err
				}
				t.KeepalivePeriod = d
				if v, ok := optional(); ok {
					n, err := strconv.Atoi(v)
					if err != nil || n < 1 || n > keepalive.MaxRetries {
						return fmt.Errorf("invalid keepalive retries %q (want 1-%d)", v, keepalive.MaxRetries)
					}
					t.KeepaliveRetries = n
				}
			}
		case "nokeepalive":
			t.KeepalivePeriod, t.KeepaliveRetries = 0, 0
		case "clamp-mss":
			t.ClampMSS, t.MSS = true, 0
			if v, ok := optional(); ok {
				n, err := strconv.Atoi(v)
				if err != nil || n < 88 || n > 65495 {
					return fmt.Errorf("invalid clamp-mss %q (want 88-65495)", v)
				}
				t.MSS = n
			}
		case "noclamp-mss":
			t.ClampMSS, t.MSS = false, 0
		case "learn":
			t.Learn = DefaultLearn
			if v, ok := optional(); ok {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > MaxLearn {
					return fmt.Errorf("invalid learn %q (want 1-%d neighbours)", v, MaxLearn)
				}
				t.Learn = n
			}
		case "nolearn":
			t.Learn = 0
		case "reflect", "noreflect":
			t.NoReflect = w == "noreflect"
		case "underlay":
			v, err := value()
			if err != nil {
				return err
			}
			switch Underlay(v) {
			case UnderlayRaw:
				t.Underlay = ""
			case UnderlayPacket:
				t.Underlay = UnderlayPacket
			default:
				return fmt.Errorf("unknown underlay %q (want raw or packet)", v)
			}
		case "encap":
			v, err := value()
			if err != nil {
				return err
			}
			switch v {
			case "fou":
				t.UDPEncap = EncapFOU
			case "none":
				t.UDPEncap, t.EncapDport, t.EncapSport, t.NoEncapCsum, t.FouPort = "", 0, 0, false, 0
			default:
				return fmt.Errorf("unknown encap %q (want fou or none)", v)
			}
		case "encap-dport", "encap-sport", "fou-port":
			v, err := value()
			if err != nil {
				return err
			}
			var n uint64
			if w == "encap-sport" && v == "auto" {
				n = 0
			} else if n, err = strconv.ParseUint(v, 10, 16); err != nil || n == 0 {
				if w == "encap-sport" {
					return fmt.Errorf("invalid encap-sport %q (want auto or 1-65535)", v)
				}
				return fmt.Errorf("invalid %s %q (want 1-65535)", w, v)
			}
			switch w {
			case "encap-dport":
				t.EncapDport = uint16(n)
			case "encap-sport":
				t.EncapSport = uint16(n)
			default:
				t.FouPort = uint16(n)
			}
		case "encap-csum", "noencap-csum":
			t.NoEncapCsum = w == "noencap-csum"
		default:
			if !stackWords[w] {
				return fmt.Errorf("unknown word %q", w)
			}
			n, err := t.applyStack(words[i:])
			if err != nil {
				return err
			}
			i += n - 1
		}
	}
	if t.UDP() && t.EncapDport == 0 && t.Mode == ModeGRE {
		t.EncapDport = PortGRE // shown, and compared, as the port it is
	}
	return nil
}

// Validate checks what can be checked without the host.
func (t *Tunnel) Validate() error {
	if err := ValidateName(t.Name); err != nil {
		return err
	}
	switch t.Mode {
	case ModeGRE, ModeIPIP, ModeSIT, ModeGRETap, ModeIP6GRE, ModeIP6GRETap, ModeIP6IP6, ModeIPIP6, ModeIP6Any:
	case "":
		return errors.New("missing mode (gre, gretap, ipip, sit, ip6gre, ip6gretap, ip6ip6, ipip6 or any)")
	default:
		return fmt.Errorf("unknown mode %q", t.Mode)
	}
	if !t.Local.IsValid() {
		return errors.New("missing local address")
	}
	if err := t.validateFamily(); err != nil {
		return err
	}
	if err := t.validateMultipoint(); err != nil {
		return err
	}
	switch {
	case t.Multipoint(): // validateMultipoint checked it
	case t.Remote == t.Local:
		return fmt.Errorf("remote %s equals local", t.Remote)
	case t.Remote.IsUnspecified() || t.Remote.IsMulticast() || t.Remote == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("remote %s is not a unicast address", t.Remote)
	}
	if t.Local.IsUnspecified() || t.Local.IsMulticast() {
		return fmt.Errorf("local %s is not a unicast address", t.Local)
	}
	if !t.Mode.GRE() {
		switch {
		case t.HasIKey || t.HasOKey:
			return errors.New("keys need mode gre or ip6gre")
		case t.ICsum || t.OCsum:
			return errors.New("csum needs mode gre or ip6gre")
		case t.ISeq || t.OSeq:
			return errors.New("seq needs mode gre or ip6gre")
		case t.KeepalivePeriod != 0:
			return errors.New("keepalive needs mode gre or ip6gre")
		}
	}
	if t.Ethernet() {
		// An Ethernet frame is carried opaque: no inner IP header to
		// copy the TOS from, no TCP SYN to clamp.
		switch {
		case t.tosInherit():
			return fmt.Errorf("tos inherit needs mode gre or ipip (%s carries Ethernet frames, not IP)", t.Mode)
		case t.ClampMSS:
			return fmt.Errorf("clamp-mss needs mode gre or ipip (%s carries Ethernet frames, not IP)", t.Mode)
		case t.FlowLabelInherit:
			return fmt.Errorf("flowlabel inherit needs mode ip6gre (%s carries Ethernet frames, not IP)", t.Mode)
		}
	}
	if t.TTL < 0 || t.TTL > 255 {
		return fmt.Errorf("invalid ttl %d", t.TTL)
	}
	if t.TOS < 0 || t.TOS > 255 {
		return fmt.Errorf("invalid tos %d", t.TOS)
	}
	switch t.DF {
	case "", DFSet:
	case DFIgnore:
		if t.Mode.IPv6() {
			return errors.New("ignore-df needs an IPv4 underlay: IPv6 has no DF bit")
		}
	case DFInherit:
		if t.Mode.IPv6() {
			return errors.New("nopmtudisc needs an IPv4 underlay: IPv6 has no DF bit")
		}
		// As iproute2 says: the kernel would set DF anyway.
		if t.TTL != 0 {
			return errors.New("ttl != 0 and nopmtudisc are incompatible (use ttl inherit)")
		}
	default:
		return fmt.Errorf("unknown df policy %q (want pmtudisc, nopmtudisc or ignore-df)", t.DF)
	}
	if lo, hi := t.minMTU(), 65535-t.Overhead(); t.MTU != 0 && (t.MTU < lo || t.MTU > hi) {
		return fmt.Errorf("invalid mtu %d (want %d-%d)", t.MTU, lo, hi)
	}
	if t.KeepalivePeriod != 0 {
		if err := (keepalive.Config{Period: t.KeepalivePeriod, Retries: t.KeepaliveRetries}).Validate(); err != nil {
			return err
		}
	}
	switch t.Underlay {
	case "", UnderlayRaw:
	case UnderlayPacket:
		if t.Mode.IPv6() {
			return errors.New("underlay packet needs an IPv4 underlay (mode gre or ipip)")
		}
		if t.FwMark != 0 {
			return errors.New("underlay packet takes no fwmark: its packets bypass routing by mark and netfilter")
		}
	default:
		return fmt.Errorf("unknown underlay %q (want raw or packet)", t.Underlay)
	}
	switch t.UDPEncap {
	case "":
		if t.EncapDport != 0 || t.EncapSport != 0 || t.NoEncapCsum || t.FouPort != 0 {
			return errors.New("encap-dport, encap-sport, noencap-csum and fou-port need encap fou")
		}
	case EncapFOU:
		if t.Mode == ModeIP6Any {
			// The kernel takes it, but a FOU port hands every datagram
			// to one protocol (`ip fou add … ipproto 4|41`): the far
			// end would read half the packets as the other family.
			return errors.New("encap fou needs mode ip6ip6 or ipip6, not any: a fou port carries one inner protocol (ip fou add … ipproto 4 or 41)")
		}
		if !t.Mode.GRE() && t.EncapDport == 0 {
			return fmt.Errorf("encap fou with mode %s needs encap-dport (only GRE has an assigned UDP port)", t.Mode)
		}
		if t.Underlay == UnderlayPacket {
			return errors.New("underlay packet cannot send encap fou (its packets leave from a UDP socket)")
		}
		if t.Dev != "" && t.Mode.IPv6() {
			// Linux routes a datagram from a socket bound to an IPv6
			// address by that source, taking the device only as a
			// preference, and binds no link-local address without one.
			return errors.New("encap fou over IPv6 takes no dev: Linux would not keep a UDP socket's datagrams on the device")
		}
		if t.EncapSport != 0 && t.EncapSport != t.LocalPort() {
			return fmt.Errorf("encap-sport %d must be the port gretun receives on, %d (fou-port): it sends from the socket it receives on", t.EncapSport, t.LocalPort())
		}
	default:
		return fmt.Errorf("unknown encap %q (want fou or none)", t.UDPEncap)
	}
	return t.validateStack()
}

// minMTU is the smallest device MTU the kernel lets the mode's device
// have: IPv6's 1280 for a tunnel that carries IPv6 only (sit's min_mtu,
// ip6_tnl_change_mtu for ip6ip6), else IPv4's 68.
func (t *Tunnel) minMTU() int {
	if t.Mode.Encap() == encap.ModeIP6 {
		return header.IPv6MinMTU
	}
	return 68
}

// validateFamily checks that both addresses are of the mode's family,
// that IPv6-only words come with an IPv6 mode, and that link-local
// endpoints come with the device of their link, both of them or neither.
func (t *Tunnel) validateFamily() error {
	v6 := t.Mode.IPv6()
	for _, e := range []struct {
		word string
		a    netip.Addr
	}{{"remote", t.Remote}, {"local", t.Local}} {
		switch {
		case v6 && e.a.Is4():
			return fmt.Errorf("%s %s is an IPv4 address: mode %s needs IPv6 (use mode %s)", e.word, e.a, t.Mode, otherFamily[t.Mode])
		case !v6 && e.a.Is6():
			return fmt.Errorf("%s %s is an IPv6 address: mode %s needs IPv4 (use mode %s)", e.word, e.a, t.Mode, otherFamily[t.Mode])
		case e.a.IsLinkLocalUnicast() && t.Dev == "":
			return fmt.Errorf("%s %s is link-local: it needs the device of its link (dev NAME)", e.word, e.a)
		}
	}
	if ll := t.Local.IsLinkLocalUnicast(); t.Remote.IsValid() && ll != t.Remote.IsLinkLocalUnicast() {
		// A link-local address is reached only on its own link.
		return fmt.Errorf("remote %s and local %s: a link-local endpoint needs a link-local peer", t.Remote, t.Local)
	} else if ll && !t.Remote.IsValid() {
		return fmt.Errorf("local %s is link-local: a multipoint tunnel's neighbours are not on one link", t.Local)
	}
	if t.Dev != "" {
		if err := ValidateName(t.Dev); err != nil {
			return fmt.Errorf("invalid dev: %v", err)
		}
		if t.Dev == t.Name {
			return fmt.Errorf("dev %s is the tunnel itself: its packets would loop", t.Dev)
		}
	}
	if !v6 {
		switch {
		case t.EncapLimit != "":
			return errors.New("encaplimit needs an IPv6 mode (ip6gre, ip6ip6, ipip6 or any)")
		case t.FlowLabel != 0 || t.FlowLabelInherit:
			return errors.New("flowlabel needs an IPv6 mode (ip6gre, ip6ip6, ipip6 or any)")
		}
	}
	if _, err := t.encapLimit(); err != nil {
		return err
	}
	if t.FlowLabel > 0xfffff {
		return fmt.Errorf("invalid flowlabel %#x", t.FlowLabel)
	}
	return nil
}

// otherFamily is the mode with the same payload over the other family.
var otherFamily = map[Mode]Mode{ModeGRE: ModeIP6GRE, ModeIPIP: ModeIPIP6, ModeIP6GRE: ModeGRE, ModeIPIP6: ModeIPIP, ModeIP6IP6: ModeSIT,
	ModeGRETap: ModeIP6GRETap, ModeIP6GRETap: ModeGRETap, ModeIP6Any: ModeGRE, ModeSIT: ModeIP6IP6}

// encapLimit is the encapsulation limit the tunnel sends, -1 for none.
func (t *Tunnel) encapLimit() (int, error) {
	switch t.EncapLimit {
	case "":
		if !t.Mode.IPv6() {
			return -1, nil
		}
		return DefaultEncapLimit, nil
	case "none":
		return -1, nil
	}
	n, err := strconv.ParseUint(t.EncapLimit, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("invalid encaplimit %q (want none or 0-255)", t.EncapLimit)
	}
	return int(n), nil
}

// UDP reports whether the tunnel's packets ride inside UDP (`encap fou`).
func (t *Tunnel) UDP() bool { return t.UDPEncap == EncapFOU }

// NeedsNetRaw reports whether the tunnel needs CAP_NET_RAW: for a raw
// socket (straight over IP), or over IPv6 inside UDP for the encapsulation
// limit option, which Linux lets a UDP socket send only with it
// (IPV6_DSTOPTS).
func (t *Tunnel) NeedsNetRaw() bool {
	if !t.UDP() {
		return true
	}
	limit, _ := t.encapLimit()
	return t.Mode.IPv6() && limit >= 0
}

// DstPort is the UDP port the tunnel sends to: encap-dport, by default
// 4754 for GRE (RFC 8086). 0 without `encap fou`.
func (t *Tunnel) DstPort() uint16 {
	switch {
	case !t.UDP():
		return 0
	case t.EncapDport != 0:
		return t.EncapDport
	case t.Mode.GRE():
		return PortGRE // RFC 8086 carries any GRE payload, Ethernet too
	}
	return 0
}

// LocalPort is the UDP port the tunnel receives on: fou-port, by default
// the same number as its destination port, so that symmetric setups need
// no more words. 0 without `encap fou`.
func (t *Tunnel) LocalPort() uint16 {
	if t.UDP() && t.FouPort != 0 {
		return t.FouPort
	}
	return t.DstPort()
}

// validateMultipoint checks what a tunnel without a remote can do, and
// that only such a tunnel learns neighbours.
func (t *Tunnel) validateMultipoint() error {
	if !t.Multipoint() {
		if t.Learn != 0 {
			return errors.New("learn needs a multipoint tunnel (no remote)")
		}
		return nil
	}
	switch {
	case t.Mode == ModeSIT:
		return errors.New("missing remote address (mode sit needs one: remote any, for 6to4 or ISATAP, is not supported)")
	case t.Mode != ModeGRE && t.Mode != ModeIP6GRE:
		// The kernel's ipip and ip6tnl without a remote send to the
		// inner route's next hop, which a TUN device never shows
		// gretun; its gretap and ip6gretap have no neighbour table
		// (no header_ops) and, outside metadata mode, drop a frame
		// they have no remote for.
		return fmt.Errorf("missing remote address (a multipoint tunnel needs mode gre or ip6gre, not %s)", t.Mode)
	case t.KeepalivePeriod != 0:
		return errors.New("keepalive needs a remote: on a hub the spokes send them and the hub reflects them")
	case t.Underlay == UnderlayPacket:
		return errors.New("underlay packet needs a remote")
	case t.Learn < 0 || t.Learn > MaxLearn:
		return fmt.Errorf("invalid learn %d (want 1-%d)", t.Learn, MaxLearn)
	}
	return nil
}

// ValidateName checks a device name as the kernel would.
func ValidateName(name string) error {
	switch {
	case name == "":
		return errors.New("missing tunnel name")
	case len(name) > MaxNameLen:
		return fmt.Errorf("tunnel name %q is longer than %d bytes", name, MaxNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("invalid tunnel name %q", name)
	case strings.ContainsAny(name, "/: \t\n\x00"):
		return fmt.Errorf("invalid tunnel name %q (no '/', ':' or spaces)", name)
	}
	return nil
}

// ParseKey reads a GRE key as a number or in dotted-quad form (`key 1.2.3.4`
// is 0x01020304, as iproute2 reads it).
func ParseKey(s string) (uint32, error) {
	if strings.Contains(s, ".") {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return 0, fmt.Errorf("invalid key %q", s)
		}
		b := a.As4()
		return binary.BigEndian.Uint32(b[:]), nil
	}
	n, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid key %q (want 0-4294967295 or a.b.c.d)", s)
	}
	return uint32(n), nil
}

// valueAfter returns the word after words[*i], the value it wants, and
// moves *i onto it.
func valueAfter(words []string, i *int) (string, error) {
	if *i+1 >= len(words) {
		return "", fmt.Errorf("missing value after %q", words[*i])
	}
	*i++
	return words[*i], nil
}

func startsWithDigit(s string) bool { return s != "" && s[0] >= '0' && s[0] <= '9' }

// Overhead is the number of bytes a tunnel packet adds to what the device
// MTU counts: the outer headers, as encap counts them, and for gretap the
// frame's Ethernet header (1500 - 38 = 1462, as Linux's gretap).
func (t *Tunnel) Overhead() int {
	if t.Ethernet() {
		return t.Encap().Overhead() + EthernetHeaderLen
	}
	return t.Encap().Overhead()
}

// EthernetHeaderLen is the Ethernet header in front of what a gretap
// device's MTU counts; VLAN tags come on top.
const EthernetHeaderLen = 14

// Ethernet reports whether the tunnel carries Ethernet frames (gretap)
// rather than IP packets.
func (t *Tunnel) Ethernet() bool { return t.Mode == ModeGRETap || t.Mode == ModeIP6GRETap }

// Encap returns the sending side's configuration.
func (t *Tunnel) Encap() encap.Config {
	limit, _ := t.encapLimit()
	return encap.Config{
		Mode:             t.Mode.Encap(),
		Local:            t.Local,
		Remote:           t.Remote,
		TTL:              uint8(t.TTL),
		TOS:              uint8(t.TOS),
		TOSInherit:       t.tosInherit(),
		Key:              t.OKey,
		HasKey:           t.HasOKey,
		Checksum:         t.OCsum,
		Sequence:         t.OSeq,
		DF:               t.DF.Encap(),
		EncapLimit:       uint8(max(limit, 0)),
		HasEncapLimit:    limit >= 0,
		FlowLabel:        t.FlowLabel,
		FlowLabelInherit: t.FlowLabelInherit,
		FlowLabelAuto:    t.Mode.IPv6(), // as Linux's ip6 tunnels (auto_flowlabels)
		UDP:              t.UDP(),
		SrcPort:          t.EncapSport,
		DstPort:          t.DstPort(),
		// A UDP socket sends the tunnel's packets: the kernel (or the
		// NIC) computes the checksum, unless noencap-csum.
		UDPChecksumPartial: t.UDP() && !t.NoEncapCsum,
		EtherType:          t.etherType(),
	}
}

// etherType is the GRE protocol type of every packet: 0x6558 for gretap,
// else taken from the inner IP version (0).
func (t *Tunnel) etherType() uint16 {
	if t.Ethernet() {
		return header.EtherTypeTEB
	}
	return 0
}

// tosInherit reports whether the outer TOS copies the inner one: `tos
// inherit`, or an odd value, which the kernel reads the same way.
func (t *Tunnel) tosInherit() bool { return t.TOSInherit || t.TOS&1 != 0 }

// Policy returns the receiving side's configuration.
func (t *Tunnel) Policy() decap.Policy {
	return decap.Policy{Key: t.IKey, HasKey: t.HasIKey, RequireChecksum: t.ICsum, RequireSequence: t.ISeq}
}

// Proto is the outer IP protocol number (IPv6 next header): 47 for GRE, 4
// for IPIP and ipip6, 41 for sit, ip6ip6 and mode any, whose IPv4 packets
// carry 4 (Protos).
func (t *Tunnel) Proto() uint8 {
	if t.Mode == ModeIP6Any {
		return header.ProtoIPv6
	}
	return uint8(t.Mode.Encap())
}

// Protos are the outer protocols of the tunnel's packets, Proto first:
// mode any sends and receives both 41 and 4.
func (t *Tunnel) Protos() []uint8 {
	if t.Mode == ModeIP6Any {
		return []uint8{header.ProtoIPv6, header.ProtoIPIP}
	}
	return []uint8{t.Proto()}
}

// SendsProto reports whether proto is one of Protos.
func (t *Tunnel) SendsProto(proto uint8) bool {
	return proto == t.Proto() || t.Mode == ModeIP6Any && proto == header.ProtoIPIP
}

// RemoteString is the remote as `ip tunnel show` prints it: "any" for a
// multipoint tunnel.
func (t *Tunnel) RemoteString() string {
	if t.Multipoint() {
		return "any"
	}
	return t.Remote.String()
}

// String renders t as one line of `ip tunnel show`:
// "netb: gre/ip remote 192.0.2.2 local 192.0.2.1 ttl 255 key 42".
func (t Tunnel) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s remote %s local %s", t.Name, t.Mode.show(), t.RemoteString(), t.Local)
	if t.Dev != "" {
		b.WriteString(" dev " + t.Dev) // where `ip tunnel show` prints the link
	}
	if t.FwMark != 0 {
		fmt.Fprintf(&b, " fwmark 0x%x", t.FwMark)
	}
	ttl, tos := "ttl", "tos"
	if t.Mode.IPv6() {
		ttl, tos = "hoplimit", "tclass" // as `ip -6 tunnel show`
	}
	if t.TTL == 0 {
		b.WriteString(" " + ttl + " inherit")
	} else {
		fmt.Fprintf(&b, " %s %d", ttl, t.TTL)
	}
	if t.tosInherit() {
		b.WriteString(" " + tos + " inherit")
	} else if t.TOS != 0 {
		fmt.Fprintf(&b, " %s 0x%x", tos, t.TOS)
	}
	if t.Mode.IPv6() {
		if t.FlowLabelInherit {
			b.WriteString(" flowlabel inherit")
		} else if t.FlowLabel != 0 {
			fmt.Fprintf(&b, " flowlabel 0x%05x", t.FlowLabel)
		}
		if l, _ := t.encapLimit(); l < 0 {
			b.WriteString(" encaplimit none")
		} else {
			fmt.Fprintf(&b, " encaplimit %d", l)
		}
	}
	switch {
	case t.HasIKey && t.HasOKey && t.IKey == t.OKey:
		fmt.Fprintf(&b, " key %d", t.IKey)
	default:
		if t.HasIKey {
			fmt.Fprintf(&b, " ikey %d", t.IKey)
		}
		if t.HasOKey {
			fmt.Fprintf(&b, " okey %d", t.OKey)
		}
	}
	b.WriteString(pair(t.ISeq, t.OSeq, "seq"))
	b.WriteString(pair(t.ICsum, t.OCsum, "csum"))
	switch t.DF {
	case DFInherit, DFIgnore:
		b.WriteString(" " + string(t.DF)) // pmtudisc, the default, is not shown
	}
	if t.MTU != 0 {
		fmt.Fprintf(&b, " mtu %d", t.MTU)
	}
	if t.KeepalivePeriod != 0 {
		fmt.Fprintf(&b, " keepalive %s %d", strconv.FormatFloat(t.KeepalivePeriod.Seconds(), 'f', -1, 64), t.KeepaliveRetries)
	}
	if t.ClampMSS {
		b.WriteString(" clamp-mss")
		if t.MSS != 0 {
			fmt.Fprintf(&b, " %d", t.MSS)
		}
	}
	if t.NoReflect {
		b.WriteString(" noreflect")
	}
	if t.Learn != 0 {
		fmt.Fprintf(&b, " learn %d", t.Learn)
	}
	if t.Underlay != "" && t.Underlay != UnderlayRaw {
		b.WriteString(" underlay " + string(t.Underlay))
	}
	b.WriteString(t.Stack.String())
	if t.UDP() {
		fmt.Fprintf(&b, " encap fou encap-dport %d", t.DstPort())
		if t.EncapSport == 0 {
			b.WriteString(" encap-sport auto")
		} else {
			fmt.Fprintf(&b, " encap-sport %d", t.EncapSport)
		}
		if t.NoEncapCsum {
			b.WriteString(" noencap-csum")
		}
		if t.FouPort != 0 {
			fmt.Fprintf(&b, " fou-port %d", t.FouPort)
		}
	}
	return b.String()
}

func pair(in, out bool, word string) string {
	switch {
	case in && out:
		return " " + word
	case in:
		return " i" + word
	case out:
		return " o" + word
	}
	return ""
}
