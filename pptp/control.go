// Package pptp is the client side of RFC 2637's Point-to-Point Tunneling
// Protocol: the control connection's messages (TCP port 1723) and the
// enhanced GRE (version 1) framing that carries PPP. It negotiates no PPP
// itself (package ppp does) and implements no MPPE: PPTP's cryptography is
// broken, and gretun speaks it only to reach legacy servers.
package pptp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Port is the PPTP control connection's TCP port.
const Port = 1723

// MagicCookie is in every control message (RFC 2637 §1.4).
const MagicCookie = 0x1A2B3C4D

// Control message types (RFC 2637 §2).
const (
	StartControlConnectionRequest = 1
	StartControlConnectionReply   = 2
	StopControlConnectionRequest  = 3
	StopControlConnectionReply    = 4
	EchoRequest                   = 5
	EchoReply                     = 6
	OutgoingCallRequest           = 7
	OutgoingCallReply             = 8
	IncomingCallRequest           = 9
	IncomingCallReply             = 10
	IncomingCallConnected         = 11
	CallClearRequest              = 12
	CallDisconnectNotify          = 13
	WANErrorNotify                = 14
	SetLinkInfo                   = 15
)

// msgLen is each message type's fixed length, header included.
var msgLen = map[uint16]int{
	StartControlConnectionRequest: 156, StartControlConnectionReply: 156,
	StopControlConnectionRequest: 16, StopControlConnectionReply: 16,
	EchoRequest: 16, EchoReply: 20,
	OutgoingCallRequest: 168, OutgoingCallReply: 32,
	IncomingCallRequest: 220, IncomingCallReply: 24, IncomingCallConnected: 28,
	CallClearRequest: 16, CallDisconnectNotify: 148,
	WANErrorNotify: 40, SetLinkInfo: 24,
}

// Offsets in the 12-byte header every control message starts with.
const (
	hdrLength  = 0 // total length, header included
	hdrPPTP    = 2 // PPTP message type: 1 = control message
	hdrMagic   = 4
	hdrType    = 8 // control message type
	headerSize = 12
)

// Errors of ReadMessage; the connection cannot go on after any of them.
var (
	ErrBadLength = errors.New("pptp: control message with a wrong length")
	ErrBadMagic  = errors.New("pptp: control message without the magic cookie")
	ErrNotCtrl   = errors.New("pptp: not a control message")
)

// Message is one control message: Type and its body after the header
// (the body's length is the type's fixed length less 12).
type Message struct {
	Type uint16
	Body []byte
}

// NewMessage returns a zeroed message of type typ (which must be known).
func NewMessage(typ uint16) Message {
	return Message{Type: typ, Body: make([]byte, msgLen[typ]-headerSize)}
}

// Marshal returns m with its header.
func (m Message) Marshal() []byte {
	b := make([]byte, headerSize+len(m.Body))
	binary.BigEndian.PutUint16(b[hdrLength:], uint16(len(b)))
	binary.BigEndian.PutUint16(b[hdrPPTP:], 1)
	binary.BigEndian.PutUint32(b[hdrMagic:], MagicCookie)
	binary.BigEndian.PutUint16(b[hdrType:], m.Type)
	copy(b[headerSize:], m.Body)
	return b
}

// ParseMessage checks one whole control message b (as framed by its length
// field) and returns it. A known type must have its fixed length; an
// unknown type is returned for the caller to ignore.
func ParseMessage(b []byte) (Message, error) {
	if len(b) < headerSize || int(binary.BigEndian.Uint16(b[hdrLength:])) != len(b) {
		return Message{}, ErrBadLength
	}
	if binary.BigEndian.Uint16(b[hdrPPTP:]) != 1 {
		return Message{}, ErrNotCtrl
	}
	if binary.BigEndian.Uint32(b[hdrMagic:]) != MagicCookie {
		return Message{}, ErrBadMagic
	}
	m := Message{Type: binary.BigEndian.Uint16(b[hdrType:]), Body: b[headerSize:]}
	if n, ok := msgLen[m.Type]; ok && n != len(b) {
		return Message{}, fmt.Errorf("%w: type %d is %d bytes, not %d", ErrBadLength, m.Type, len(b), n)
	}
	return m, nil
}

// maxMessage bounds what ReadMessage accepts: the largest message is 220
// bytes; anything much larger is not PPTP.
const maxMessage = 1024

// ReadMessage reads one control message from r.
func ReadMessage(r io.Reader) (Message, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return Message{}, err
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if n < headerSize || n > maxMessage {
		return Message{}, ErrBadLength
	}
	b := make([]byte, n)
	copy(b, l[:])
	if _, err := io.ReadFull(r, b[2:]); err != nil {
		return Message{}, err
	}
	return ParseMessage(b)
}

// Field accessors on bodies; offsets are from the end of the header.
func (m Message) u8(off int) uint8 {
	if off >= len(m.Body) {
		return 0
	}
	return m.Body[off]
}

func (m Message) u16(off int) uint16 {
	if off+2 > len(m.Body) {
		return 0
	}
	return binary.BigEndian.Uint16(m.Body[off:])
}

func (m Message) u32(off int) uint32 {
	if off+4 > len(m.Body) {
		return 0
	}
	return binary.BigEndian.Uint32(m.Body[off:])
}

func (m Message) put16(off int, v uint16) { binary.BigEndian.PutUint16(m.Body[off:], v) }
func (m Message) put32(off int, v uint32) { binary.BigEndian.PutUint32(m.Body[off:], v) }

// ProtocolVersion is 1.0.
const ProtocolVersion = 0x0100

// Framing and bearer capabilities (RFC 2637 §2.1).
const (
	FramingAsync = 1
	FramingSync  = 2
	BearerAnalog = 1
	BearerDigit  = 2
)

// StartRequest is the client's Start-Control-Connection-Request.
func StartRequest(hostname string) Message {
	m := NewMessage(StartControlConnectionRequest)
	m.put16(0, ProtocolVersion)
	m.put32(4, FramingAsync|FramingSync)
	m.put32(8, BearerAnalog|BearerDigit)
	m.put16(12, 0) // maximum channels: 0 for a PNS
	m.put16(14, 1) // firmware revision
	copy(m.Body[16:16+63], hostname)
	copy(m.Body[80:80+63], "gretun")
	return m
}

// Result is a reply's result and error codes.
type Result struct{ Code, Error uint8 }

// StartReply is a Start-Control-Connection-Reply's fields.
type StartReply struct {
	Version  uint16
	Result   Result
	Hostname string
	Vendor   string
}

// StartReplyOf reads a Start-Control-Connection-Reply. Result code 1 is
// success.
func StartReplyOf(m Message) StartReply {
	return StartReply{
		Version:  m.u16(0),
		Result:   Result{m.u8(2), m.u8(3)},
		Hostname: m.str(16, 64),
		Vendor:   m.str(80, 64),
	}
}

// str returns the NUL-terminated string in the n bytes at off.
func (m Message) str(off, n int) string {
	if off+n > len(m.Body) {
		return ""
	}
	return cString(m.Body[off : off+n])
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// OutgoingRequest is the client's Outgoing-Call-Request for call ID id.
func OutgoingRequest(id, serial, window uint16) Message {
	m := NewMessage(OutgoingCallRequest)
	m.put16(0, id)
	m.put16(2, serial)
	m.put32(4, 2400)     // minimum BPS
	m.put32(8, 10000000) // maximum BPS
	m.put32(12, 3)       // bearer: any
	m.put32(16, 3)       // framing: any
	m.put16(20, window)  // packet receive window
	m.put16(22, 0)       // processing delay
	return m
}

// OutgoingReply is an Outgoing-Call-Reply's fields: CallID is the server's
// call ID (the key of every GRE packet gretun sends), PeerCallID should be
// gretun's own. Result code 1 is Connected.
type OutgoingReply struct {
	CallID, PeerCallID uint16
	Result             Result
	Cause              uint16
	Window             uint16
}

// OutgoingReplyOf reads an Outgoing-Call-Reply.
func OutgoingReplyOf(m Message) OutgoingReply {
	return OutgoingReply{
		CallID: m.u16(0), PeerCallID: m.u16(2),
		Result: Result{m.u8(4), m.u8(5)}, Cause: m.u16(6),
		Window: m.u16(12),
	}
}

// Echo is an Echo-Request with identifier id, or the reply to one.
func Echo(id uint32) Message {
	m := NewMessage(EchoRequest)
	m.put32(0, id)
	return m
}

// EchoReplyTo answers the Echo-Request req (result 1: OK).
func EchoReplyTo(req Message) Message {
	m := NewMessage(EchoReply)
	m.put32(0, req.u32(0))
	m.Body[4] = 1
	return m
}

// EchoID returns an echo message's identifier.
func EchoID(m Message) uint32 { return m.u32(0) }

// SetLink is a Set-Link-Info for the server's call ID with the
// asynchronous control character maps.
func SetLink(peerCallID uint16, sendACCM, recvACCM uint32) Message {
	m := NewMessage(SetLinkInfo)
	m.put16(0, peerCallID)
	m.put32(4, sendACCM)
	m.put32(8, recvACCM)
	return m
}

// ClearRequest is a Call-Clear-Request for gretun's call ID.
func ClearRequest(callID uint16) Message {
	m := NewMessage(CallClearRequest)
	m.put16(0, callID)
	return m
}

// DisconnectCallID returns the call ID of a Call-Disconnect-Notify (the
// server's own) and its result.
func DisconnectCallID(m Message) (uint16, Result) { return m.u16(0), Result{m.u8(2), m.u8(3)} }

// StopRequest is a Stop-Control-Connection-Request (reason 1: none).
func StopRequest() Message {
	m := NewMessage(StopControlConnectionRequest)
	m.Body[0] = 1
	return m
}

// StopReply answers a Stop-Control-Connection-Request (result 1: OK).
func StopReply() Message {
	m := NewMessage(StopControlConnectionReply)
	m.Body[0] = 1
	return m
}

// ResultText names the general result codes of replies.
func (r Result) String() string {
	return fmt.Sprintf("result %d error %d", r.Code, r.Error)
}
