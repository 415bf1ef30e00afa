// Package status holds what `gretun tunnel show` reports of a tunnel, as
// the engine (package tunnel) fills it in and the control socket carries
// it as JSON to the command line (`-j` prints that JSON). It is apart from
// the engine so that the control protocol, its clients and tests need not
// import the engine. Field names and JSON tags are an interface: scripts
// read them.
package status

import (
	"net/netip"
	"time"

	"github.com/gretun/gretun/config"
)

// Tunnel is what `tunnel show` prints of one tunnel.
type Tunnel struct {
	Config    config.Tunnel `json:"config"`
	Line      string        `json:"line"` // the `ip tunnel show` line
	MTU       int           `json:"mtu"`
	PathMTU   int           `json:"path_mtu"` // the largest inner packet sent without fragmenting
	Stats     Stats         `json:"stats"`
	Keepalive *Keepalive    `json:"keepalive,omitempty"`
	// Neighbours are a multipoint tunnel's peers, by underlay address.
	Neighbours []Peer `json:"neighbours,omitempty"`
}

// Peer is one underlay address a multipoint tunnel sends to and receives
// from, the inner destinations that lead to it, and its own counters.
type Peer struct {
	LLAddr  netip.Addr `json:"lladdr"`
	Dsts    []string   `json:"dsts"`    // inner addresses and prefixes, as `neigh show` prints them
	Learned bool       `json:"learned"` // taken from received traffic, not configured
	PathMTU int        `json:"path_mtu"`
	Stats   PeerStats  `json:"stats"`
}

// PeerStats counts one neighbour's share of its tunnel's traffic.
type PeerStats struct {
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	RxErrors  uint64 `json:"rx_errors"` // refused by the receive policy (key, csum, seq)
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
}

// Neigh is one line of `gretun neigh show`: an inner destination of a
// multipoint tunnel and the underlay address it leads to.
type Neigh struct {
	Dev    string     `json:"dev"`
	Dst    string     `json:"dst"`
	LLAddr netip.Addr `json:"lladdr"`
	State  string     `json:"state"` // PERMANENT (configured) or LEARNED, as `ip neigh` spells states
}

// String is the line `neigh show` prints, in `ip neigh` words.
func (n Neigh) String() string {
	return n.Dst + " dev " + n.Dev + " lladdr " + n.LLAddr.String() + " " + n.State
}

// Stats is a snapshot of one tunnel's counters, named like `ip -s tunnel
// show` where the kernel has the same counter.
type Stats struct {
	RxPackets    uint64 `json:"rx_packets"`
	RxBytes      uint64 `json:"rx_bytes"`
	RxErrors     uint64 `json:"rx_errors"`      // every receive drop
	RxCsumErrors uint64 `json:"rx_csum_errors"` // bad or missing GRE checksum
	RxOutOfSeq   uint64 `json:"rx_out_of_seq"`  // missing, old or duplicate sequence number
	RxDevice     uint64 `json:"rx_device_errors"`
	// RxKeepaliveUnsolicited counts keepalive replies on a tunnel without keepalives.
	RxKeepaliveUnsolicited uint64 `json:"rx_keepalive_unsolicited"`

	TxPackets     uint64 `json:"tx_packets"`
	TxBytes       uint64 `json:"tx_bytes"`
	TxErrors      uint64 `json:"tx_errors"` // every send drop
	TxDeadLoop    uint64 `json:"tx_dead_loop"`
	TxNoRoute     uint64 `json:"tx_no_route"`
	TxNoBufs      uint64 `json:"tx_no_bufs"`
	TxTooBig      uint64 `json:"tx_too_big"`      // dropped for size, ICMP sent where allowed
	TxFragmented  uint64 `json:"tx_fragmented"`   // fragments sent: outer ones, or inner ones each in a whole outer packet (pmtudisc)
	TxBadInner    uint64 `json:"tx_bad_inner"`    // not IP, or IPv6 on an IPIP tunnel
	TxICMP        uint64 `json:"tx_icmp"`         // ICMP errors returned to inner senders
	TxICMPLimited uint64 `json:"tx_icmp_limited"` // ICMP errors suppressed by the rate limit
	TxMSSClamped  uint64 `json:"tx_mss_clamped"`
	// TxPacketSocket counts outer packets sent on the AF_PACKET socket of
	// `underlay packet` (the rest went through the raw socket).
	TxPacketSocket uint64 `json:"tx_packet_socket"`
	// TxUnreachable counts ICMP Port Unreachable answers to `encap fou`
	// packets: nobody listens on the remote's port.
	TxUnreachable uint64 `json:"tx_unreachable"`
	// TxEncapLimit counts inner IPv6 packets refused because their own
	// tunnel encapsulation limit was 0 (RFC 2473), each answered with an
	// ICMPv6 Parameter Problem where allowed.
	TxEncapLimit uint64 `json:"tx_encap_limit"`
	// TxNoNeighbour counts packets a multipoint tunnel had no neighbour for.
	TxNoNeighbour uint64 `json:"tx_no_neighbour"`

	Reflected uint64 `json:"reflected"` // other routers' keepalives returned through the underlay

	// Drops counts every receive drop by its reason name; every reason is
	// present, zero or not, so scripts can rely on the keys.
	Drops map[string]uint64 `json:"drops,omitempty"`
}

// Names of the send drops, beside the receive drops' (decap's reasons):
// the metrics' reason label and the capture's packet comments use them.
const (
	DropDeadLoop    = "dead-loop"    // one of the tunnel's own outer packets came back into it
	DropNoRoute     = "no-route"     // the underlay has no route to the remote
	DropNoBufs      = "no-buffers"   // the underlay's socket buffer was full
	DropTooBig      = "too-big"      // larger than the path and not to be fragmented
	DropBadInner    = "bad-inner"    // not IP, or IPv6 on an IPIP tunnel
	DropEncapLimit  = "encap-limit"  // an inner IPv6 packet whose encapsulation limit is spent
	DropNoNeighbour = "no-neighbour" // a multipoint tunnel has no neighbour for its destination
	DropDevice      = "device"       // the device refused a write (down, or going away)
	DropTxOther     = "send-error"   // another error of the underlay or the device
	DirectionRx     = "rx"
	DirectionTx     = "tx"
)

// TxDrops returns the send drops by reason (every reason, zero or not);
// the rest of TxErrors is DropTxOther.
func (s *Stats) TxDrops() map[string]uint64 {
	m := map[string]uint64{
		DropDeadLoop: s.TxDeadLoop, DropNoRoute: s.TxNoRoute, DropNoBufs: s.TxNoBufs,
		DropTooBig: s.TxTooBig, DropBadInner: s.TxBadInner, DropEncapLimit: s.TxEncapLimit,
		DropNoNeighbour: s.TxNoNeighbour,
	}
	var named uint64
	for _, n := range m {
		named += n
	}
	m[DropTxOther] = s.TxErrors - min(named, s.TxErrors)
	return m
}

// Keepalive is what `tunnel show` prints about keepalives.
type Keepalive struct {
	State          string        `json:"state"` // up, hold, down
	Since          time.Time     `json:"since"`
	LastReplyAge   time.Duration `json:"last_reply_age_ns"` // 0 when no reply yet
	LastRTT        time.Duration `json:"last_rtt_ns"`       // round trip of the last accepted reply, 0 when none
	Sent           uint64        `json:"sent"`
	Received       uint64        `json:"received"`
	Rejected       uint64        `json:"rejected"`
	RejectedForged uint64        `json:"rejected_forged"`
	RejectedStale  uint64        `json:"rejected_stale"`
	Unanswered     int           `json:"unanswered"`
	Summary        string        `json:"summary"`
}

// String is the one-line summary `tunnel show` prints.
func (k *Keepalive) String() string { return k.Summary }
