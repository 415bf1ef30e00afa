// Package capture is the wire side of `gretun capture`: the pcapng stream
// the daemon writes to the command line (and the command line to a file),
// with each packet's direction and, for a packet gretun dropped, the drop
// reason as its comment; and the one-line-per-packet text printed when no
// file is given.
//
// pcapgo (gopacket) writes the section header, the interface description
// and the final interface statistics (packets captured and lost); it has no
// packet options, so enhanced packet blocks with their flags and comment
// are written and read here, after the pcapng specification
// (draft-ietf-opsawg-pcapng): block type 6, epb_flags (option 2, the
// direction in its low two bits), opt_comment (option 1).
package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Packet is one captured packet.
type Packet struct {
	Time time.Time
	Out  bool   // sent by gretun (outbound), else received
	Len  int    // its length on the wire; Data may be shorter (SnapLen)
	Data []byte // an IP packet (outer, or inner with -inner), or an Ethernet frame (Ethernet)
	Drop string // the drop reason when gretun dropped it, else ""
	// Ethernet says Data is an Ethernet frame: an inner packet of a
	// gretap tunnel. The Reader sets it from the interface's link type.
	Ethernet bool
}

// Comment is the packet comment written for p: its drop reason.
func (p *Packet) Comment() string {
	if p.Drop == "" {
		return ""
	}
	return "gretun drop: " + p.Drop
}

// Block types and options of pcapng used here.
const (
	blockSHB = 0x0A0D0D0A
	blockIDB = 1
	blockISB = 5
	blockEPB = 6

	optEnd      = 0
	optComment  = 1
	optEPBFlags = 2
	optISBRecv  = 4
	optISBDrop  = 5

	flagInbound  = 1
	flagOutbound = 2

	// maxBlock bounds a block the reader accepts: a packet of SnapLen
	// bytes with its options fits with room to spare.
	maxBlock = 1 << 20
)

// Writer writes a pcapng stream of raw IP packets (LINKTYPE_RAW) or, for
// the inner packets of a gretap tunnel, Ethernet frames
// (LINKTYPE_ETHERNET), so that Wireshark decodes what it holds.
type Writer struct {
	w   io.Writer
	ng  *pcapgo.NgWriter
	buf []byte
}

// NewWriter writes the section header and one interface named name whose
// packets are Ethernet frames when ethernet is set, IP packets otherwise.
func NewWriter(w io.Writer, name, description string, ethernet bool) (*Writer, error) {
	bw := bufio.NewWriter(w)
	intf := pcapgo.DefaultNgInterface
	intf.Name, intf.Description, intf.LinkType = name, description, layers.LinkTypeRaw
	if ethernet {
		intf.LinkType = layers.LinkTypeEthernet
	}
	opts := pcapgo.DefaultNgWriterOptions
	opts.SectionInfo.Application = "gretun"
	ng, err := pcapgo.NewNgWriterInterface(bw, intf, opts)
	if err != nil {
		return nil, err
	}
	if err := ng.Flush(); err != nil {
		return nil, err
	}
	return &Writer{w: bw, ng: ng}, nil
}

// WritePacket writes p as an enhanced packet block with its direction and
// comment, in one write to the underlying writer once flushed.
func (w *Writer) WritePacket(p *Packet) error {
	comment := p.Comment()
	n := 28 + pad4(len(p.Data)) + 8 + 4 // header, data, epb_flags, end of options
	if comment != "" {
		n += 4 + pad4(len(comment))
	}
	n += 4 // trailing length
	b := w.buf[:0]
	le := binary.LittleEndian
	b = le.AppendUint32(b, blockEPB)
	b = le.AppendUint32(b, uint32(n))
	b = le.AppendUint32(b, 0) // interface
	ts := uint64(p.Time.UnixNano())
	b = le.AppendUint32(b, uint32(ts>>32))
	b = le.AppendUint32(b, uint32(ts))
	b = le.AppendUint32(b, uint32(len(p.Data)))
	b = le.AppendUint32(b, uint32(max(p.Len, len(p.Data))))
	b = appendPadded(b, p.Data)
	flags := uint32(flagInbound)
	if p.Out {
		flags = flagOutbound
	}
	b = le.AppendUint16(b, optEPBFlags)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint32(b, flags)
	if comment != "" {
		b = le.AppendUint16(b, optComment)
		b = le.AppendUint16(b, uint16(len(comment)))
		b = appendPadded(b, []byte(comment))
	}
	b = le.AppendUint32(b, optEnd) // code and length 0
	b = le.AppendUint32(b, uint32(n))
	w.buf = b
	_, err := w.w.Write(b)
	return err
}

// WriteStats writes the interface statistics: packets captured and lost.
func (w *Writer) WriteStats(captured, lost uint64, at time.Time) error {
	err := w.ng.WriteInterfaceStats(0, pcapgo.NgInterfaceStatistics{
		LastUpdate: at, PacketsReceived: captured, PacketsDropped: lost,
	})
	if err == nil {
		err = w.ng.Flush()
	}
	return err
}

// Flush writes what is buffered.
func (w *Writer) Flush() error { return w.w.(*bufio.Writer).Flush() }

func pad4(n int) int { return (n + 3) &^ 3 }

func appendPadded(b, data []byte) []byte {
	b = append(b, data...)
	for range pad4(len(data)) - len(data) {
		b = append(b, 0)
	}
	return b
}

// Reader reads the stream Writer writes (and any little-endian pcapng of
// one section): packets with their direction and comment, and the
// interface statistics.
type Reader struct {
	r     *bufio.Reader
	tee   io.Writer
	block []byte
	// Captured and Lost are the last interface statistics read; HasStats
	// says whether any were.
	Captured, Lost uint64
	HasStats       bool
	ethernet       bool // the interface's link type is Ethernet
}

// NewReader reads the section header. Every whole block read, that one
// included, is copied to tee unless it is nil: a stream cut short (the
// daemon stopped, Ctrl-C) leaves a file of whole blocks.
func NewReader(r io.Reader, tee io.Writer) (*Reader, error) {
	rd := &Reader{r: bufio.NewReader(r), tee: tee}
	typ, _, err := rd.next()
	if err != nil {
		return nil, err
	}
	if typ != blockSHB {
		return nil, errors.New("pcapng: the stream does not start with a section header")
	}
	return rd, nil
}

// Next reads blocks up to the next packet; it returns io.EOF at the end
// of the stream. The packet's Data is valid until the next call.
func (r *Reader) Next() (*Packet, error) {
	for {
		typ, body, err := r.next()
		if err != nil {
			return nil, err
		}
		switch typ {
		case blockEPB:
			p, err := parseEPB(body)
			if p != nil {
				p.Ethernet = r.ethernet
			}
			return p, err
		case blockIDB:
			r.ethernet = len(body) >= 2 && layers.LinkType(binary.LittleEndian.Uint16(body)) == layers.LinkTypeEthernet
		case blockISB:
			r.parseISB(body)
		}
	}
}

// next reads one whole block, copies it to the tee if any, and returns
// its type and body.
func (r *Reader) next() (uint32, []byte, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r.r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("pcapng: stream cut inside a block")
		}
		return 0, nil, err
	}
	typ, n := binary.LittleEndian.Uint32(hdr[:4]), binary.LittleEndian.Uint32(hdr[4:])
	if n < 12 || n%4 != 0 || n > maxBlock {
		return 0, nil, fmt.Errorf("pcapng: bad block length %d", n)
	}
	if cap(r.block) < int(n) {
		r.block = make([]byte, n)
	}
	r.block = r.block[:n]
	copy(r.block, hdr[:])
	if _, err := io.ReadFull(r.r, r.block[8:]); err != nil {
		return 0, nil, errors.New("pcapng: stream cut inside a block")
	}
	if typ == blockSHB && binary.LittleEndian.Uint32(r.block[8:]) != 0x1A2B3C4D {
		return 0, nil, errors.New("pcapng: only little-endian sections are read")
	}
	if r.tee != nil {
		if _, err := r.tee.Write(r.block); err != nil {
			return 0, nil, err
		}
	}
	return typ, r.block[8 : n-4], nil
}

func parseEPB(b []byte) (*Packet, error) {
	le := binary.LittleEndian
	if len(b) < 20 {
		return nil, errors.New("pcapng: short packet block")
	}
	ts := uint64(le.Uint32(b[4:]))<<32 | uint64(le.Uint32(b[8:]))
	capLen, origLen := int(le.Uint32(b[12:])), int(le.Uint32(b[16:]))
	if capLen > len(b)-20 {
		return nil, errors.New("pcapng: packet longer than its block")
	}
	p := &Packet{Time: time.Unix(0, int64(ts)), Len: origLen, Data: b[20 : 20+capLen]}
	opts := b[20+pad4(capLen):]
	for len(opts) >= 4 {
		code, n := le.Uint16(opts), int(le.Uint16(opts[2:]))
		if code == optEnd || 4+n > len(opts) {
			break
		}
		v := opts[4 : 4+n]
		switch {
		case code == optEPBFlags && n == 4:
			p.Out = le.Uint32(v)&3 == flagOutbound
		case code == optComment:
			if r, ok := strings.CutPrefix(string(v), "gretun drop: "); ok {
				p.Drop = r
			}
		}
		opts = opts[min(len(opts), 4+pad4(n)):]
	}
	return p, nil
}

func (r *Reader) parseISB(b []byte) {
	le := binary.LittleEndian
	if len(b) < 12 {
		return
	}
	opts := b[12:]
	for len(opts) >= 4 {
		code, n := le.Uint16(opts), int(le.Uint16(opts[2:]))
		if code == optEnd || 4+n > len(opts) {
			break
		}
		if n == 8 {
			switch code {
			case optISBRecv:
				r.Captured, r.HasStats = le.Uint64(opts[4:]), true
			case optISBDrop:
				r.Lost, r.HasStats = le.Uint64(opts[4:]), true
			}
		}
		opts = opts[min(len(opts), 4+pad4(n)):]
	}
}

// ReadAll reads every packet left in r's stream, each with its own copy
// of its data, up to the end of the stream.
func (r *Reader) ReadAll() ([]Packet, error) {
	var pkts []Packet
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			return pkts, nil
		}
		if err != nil {
			return pkts, err
		}
		p.Data = append([]byte(nil), p.Data...)
		pkts = append(pkts, *p)
	}
}
