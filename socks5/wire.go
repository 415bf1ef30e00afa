package socks5

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// RFC 1928 and 1929 constants.
const (
	version5           = 5
	authVersion        = 1 // RFC 1929 subnegotiation
	methodNone         = 0x00
	methodPass         = 0x02
	methodNoAcceptable = 0xff

	cmdConnect   = 1
	cmdBind      = 2
	cmdAssociate = 3

	atypIPv4   = 1
	atypDomain = 3
	atypIPv6   = 4
)

// Reply codes (RFC 1928 §6).
const (
	ReplySucceeded          byte = 0x00
	ReplyGeneralFailure     byte = 0x01
	ReplyNotAllowed         byte = 0x02
	ReplyNetworkUnreachable byte = 0x03
	ReplyHostUnreachable    byte = 0x04
	ReplyConnectionRefused  byte = 0x05
	ReplyTTLExpired         byte = 0x06
	ReplyCommandUnsupported byte = 0x07
	ReplyAddressUnsupported byte = 0x08
)

// Addr is a request's destination: an address, or a name to resolve
// inside the tunnel.
type Addr struct {
	IP   netip.Addr // valid unless Name is set
	Name string
	Port uint16
}

// String is host:port, as net.Dial takes it.
func (a Addr) String() string {
	host := a.Name
	if host == "" {
		host = a.IP.String()
	}
	return joinHostPort(host, a.Port)
}

func joinHostPort(host string, port uint16) string {
	if len(host) > 0 && host[0] != '[' && contains(host, ':') {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(int(port))
}

func contains(s string, c byte) bool {
	for i := range len(s) {
		if s[i] == c {
			return true
		}
	}
	return false
}

// Request is a client's request (RFC 1928 §4).
type Request struct {
	Cmd  byte
	Dest Addr
}

// errMalformed says the client broke the protocol; the reply code is in
// the wrapping error where the protocol has one.
var errMalformed = errors.New("malformed request")

// protoError is a malformed request with the reply it gets (0 for none:
// the connection is just closed).
type protoError struct {
	reply byte
	msg   string
}

func (e *protoError) Error() string { return e.msg }
func (e *protoError) Unwrap() error { return errMalformed }

// ReadRequest reads a request: VER CMD RSV ATYP DST.ADDR DST.PORT. A
// command other than CONNECT, BIND and UDP ASSOCIATE is read whole and
// returned; the caller answers it.
func ReadRequest(r io.Reader) (Request, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Request{}, err
	}
	if h[0] != version5 {
		return Request{}, &protoError{ReplyGeneralFailure, fmt.Sprintf("request version %d, want 5", h[0])}
	}
	a, err := readAddr(r, h[3])
	if err != nil {
		return Request{}, err
	}
	return Request{Cmd: h[1], Dest: a}, nil
}

// readAddr reads ATYP's address and the port after it.
func readAddr(r io.Reader, atyp byte) (Addr, error) {
	var a Addr
	var buf [256 + 2]byte
	switch atyp {
	case atypIPv4:
		if _, err := io.ReadFull(r, buf[:4+2]); err != nil {
			return a, err
		}
		a.IP = netip.AddrFrom4([4]byte(buf[:4]))
		a.Port = binary.BigEndian.Uint16(buf[4:])
	case atypIPv6:
		if _, err := io.ReadFull(r, buf[:16+2]); err != nil {
			return a, err
		}
		a.IP = netip.AddrFrom16([16]byte(buf[:16])).Unmap()
		a.Port = binary.BigEndian.Uint16(buf[16:])
	case atypDomain:
		if _, err := io.ReadFull(r, buf[:1]); err != nil {
			return a, err
		}
		n := int(buf[0])
		if _, err := io.ReadFull(r, buf[:n+2]); err != nil {
			return a, err
		}
		if n == 0 {
			return a, &protoError{ReplyHostUnreachable, "empty domain name"}
		}
		a.Name = string(buf[:n])
		a.Port = binary.BigEndian.Uint16(buf[n:])
		if ip, err := netip.ParseAddr(a.Name); err == nil && ip.Zone() == "" {
			a.IP, a.Name = ip.Unmap(), ""
		}
	default:
		return a, &protoError{ReplyAddressUnsupported, fmt.Sprintf("address type %d", atyp)}
	}
	return a, nil
}

// appendAddr appends ATYP, the address and the port.
func appendAddr(b []byte, a Addr) []byte {
	switch {
	case a.Name != "":
		b = append(b, atypDomain, byte(len(a.Name)))
		b = append(b, a.Name...)
	case a.IP.Is4():
		b = append(b, atypIPv4)
		b = append(b, a.IP.AsSlice()...)
	case a.IP.Is6():
		b = append(b, atypIPv6)
		b = append(b, a.IP.AsSlice()...)
	default:
		b = append(b, atypIPv4, 0, 0, 0, 0)
	}
	return binary.BigEndian.AppendUint16(b, a.Port)
}

// AppendRequest appends r as a client sends it (for tests and clients).
func AppendRequest(b []byte, r Request) []byte {
	return appendAddr(append(b, version5, r.Cmd, 0), r.Dest)
}

// appendReply appends a reply with the bound address.
func appendReply(b []byte, code byte, bound Addr) []byte {
	return appendAddr(append(b, version5, code, 0), bound)
}

// ParseUDP splits a UDP ASSOCIATE datagram (RFC 1928 §7: RSV RSV FRAG
// ATYP DST.ADDR DST.PORT DATA) into its destination and data. Fragments
// (FRAG not 0) are refused, as the RFC allows.
func ParseUDP(b []byte) (Addr, []byte, error) {
	if len(b) < 4 || b[0] != 0 || b[1] != 0 {
		return Addr{}, nil, &protoError{0, "short or malformed UDP header"}
	}
	if b[2] != 0 {
		return Addr{}, nil, &protoError{0, "fragmented datagram"}
	}
	r := &sliceReader{b: b[4:]}
	a, err := readAddr(r, b[3])
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = &protoError{0, "short UDP header"}
		}
		return Addr{}, nil, err
	}
	return a, r.b, nil
}

// AppendUDP appends the UDP ASSOCIATE header for a and then data.
func AppendUDP(b []byte, a Addr, data []byte) []byte {
	return append(appendAddr(append(b, 0, 0, 0), a), data...)
}

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
