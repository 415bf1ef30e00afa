package control

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gretun/gretun/config"
	"github.com/gretun/gretun/status"
)

// TestResponseJSON pins the JSON a daemon answers `tunnel show` with, which
// scripts read (`gretun -s -j tunnel show`): every field name and how each
// configuration value is written.
func TestResponseJSON(t *testing.T) {
	parse := func(name, words string) config.Tunnel {
		c, err := config.Parse(name, strings.Fields(words))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	since := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	resp := Response{
		Version: Version,
		Tunnels: []status.Tunnel{
			{
				Config: parse("a", "mode gre remote 192.0.2.2 local 192.0.2.1 ttl 64 tos 0x10 ikey 1 okey 2 csum seq ignore-df mtu 1400 keepalive 0.5 4 clamp-mss 1300 underlay packet noreflect"),
				Line:   "a: gre/ip ...", MTU: 1400, PathMTU: 1380,
				Stats: status.Stats{RxPackets: 1, RxBytes: 2, RxErrors: 3, RxCsumErrors: 4, RxOutOfSeq: 5, RxDevice: 6,
					RxKeepaliveUnsolicited: 7, TxPackets: 8, TxBytes: 9, TxErrors: 10, TxDeadLoop: 11, TxNoRoute: 12,
					TxNoBufs: 13, TxTooBig: 14, TxFragmented: 15, TxBadInner: 16, TxICMP: 17, TxICMPLimited: 18,
					TxMSSClamped: 19, TxPacketSocket: 20, Reflected: 21, Drops: map[string]uint64{"no-tunnel": 22}},
				Keepalive: &status.Keepalive{State: "up", Since: since, LastReplyAge: time.Second, LastRTT: 2 * time.Millisecond, Sent: 1,
					Received: 2, Rejected: 3, RejectedForged: 4, RejectedStale: 5, Unanswered: 6, Summary: "up"},
			},
		},
		Unmatched: &status.Stats{Drops: map[string]uint64{"no-tunnel": 1}},
	}
	resp.Tunnels = append(resp.Tunnels, status.Tunnel{
		Config: parse("mg0", "mode gre local 192.0.2.1 key 7 learn 16"),
		Line:   "mg0: gre/ip ...", MTU: 1476, PathMTU: 1476,
		Stats: status.Stats{TxNoNeighbour: 23},
		Neighbours: []status.Peer{{LLAddr: netip.MustParseAddr("192.0.2.2"), Dsts: []string{"198.51.100.2", "203.0.113.0/24"},
			Learned: true, PathMTU: 1476, Stats: status.PeerStats{RxPackets: 1, RxBytes: 2, RxErrors: 3, TxPackets: 4, TxBytes: 5}}},
	})
	resp.Neighs = []status.Neigh{{Dev: "mg0", Dst: "198.51.100.2", LLAddr: netip.MustParseAddr("192.0.2.2"), State: "PERMANENT"}}
	got, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, []byte(wantJSON)); err != nil {
		t.Fatal(err)
	}
	if string(got) != want.String() {
		t.Errorf("JSON changed:\n got %s\nwant %s", got, want.String())
	}
	// The other values of mode, DF and underlay, and a zero configuration.
	for _, tc := range []struct {
		c    config.Tunnel
		want string
	}{
		{parse("b", "mode ipip remote 192.0.2.2 local 192.0.2.1"),
			`{"name":"b","mode":"ipip","local":"192.0.2.1","remote":"192.0.2.2","ttl":0,"tos":0,"df":"pmtudisc"}`},
		{parse("c", "mode gre remote 192.0.2.3 local 192.0.2.1 nopmtudisc underlay raw"),
			`{"name":"c","mode":"gre","local":"192.0.2.1","remote":"192.0.2.3","ttl":0,"tos":0,"df":"nopmtudisc"}`},
		{config.Tunnel{Name: "zero"}, `{"name":"zero","mode":"","local":"","remote":"","ttl":0,"tos":0,"df":""}`},
	} {
		if got, err := json.Marshal(tc.c); err != nil || string(got) != tc.want {
			t.Errorf("JSON of %s changed:\n got %s, %v\nwant %s", tc.c.Name, got, err, tc.want)
		}
	}
}

const wantJSON = `{
	"version": 1,
	"tunnels": [
		{
			"config": {
				"name": "a",
				"mode": "gre",
				"local": "192.0.2.1",
				"remote": "192.0.2.2",
				"ttl": 64,
				"tos": 16,
				"ikey": 1,
				"okey": 2,
				"has_ikey": true,
				"has_okey": true,
				"icsum": true,
				"ocsum": true,
				"iseq": true,
				"oseq": true,
				"df": "ignore-df",
				"mtu": 1400,
				"keepalive_period": 500000000,
				"keepalive_retries": 4,
				"clamp_mss": true,
				"mss": 1300,
				"underlay": "packet",
				"noreflect": true
			},
			"line": "a: gre/ip ...",
			"mtu": 1400,
			"path_mtu": 1380,
			"stats": {
				"rx_packets": 1,
				"rx_bytes": 2,
				"rx_errors": 3,
				"rx_csum_errors": 4,
				"rx_out_of_seq": 5,
				"rx_device_errors": 6,
				"rx_keepalive_unsolicited": 7,
				"tx_packets": 8,
				"tx_bytes": 9,
				"tx_errors": 10,
				"tx_dead_loop": 11,
				"tx_no_route": 12,
				"tx_no_bufs": 13,
				"tx_too_big": 14,
				"tx_fragmented": 15,
				"tx_bad_inner": 16,
				"tx_icmp": 17,
				"tx_icmp_limited": 18,
				"tx_mss_clamped": 19,
				"tx_packet_socket": 20,
				"tx_unreachable": 0,
				"tx_encap_limit": 0,
				"tx_no_neighbour": 0,
				"reflected": 21,
				"drops": {
					"no-tunnel": 22
				}
			},
			"keepalive": {
				"state": "up",
				"since": "2026-12-02T10:00:00Z",
				"last_reply_age_ns": 1000000000,
				"last_rtt_ns": 2000000,
				"sent": 1,
				"received": 2,
				"rejected": 3,
				"rejected_forged": 4,
				"rejected_stale": 5,
				"unanswered": 6,
				"summary": "up"
			}
		},
		{
			"config": {
				"name": "mg0",
				"mode": "gre",
				"local": "192.0.2.1",
				"remote": "",
				"ttl": 0,
				"tos": 0,
				"ikey": 7,
				"okey": 7,
				"has_ikey": true,
				"has_okey": true,
				"df": "pmtudisc",
				"learn": 16
			},
			"line": "mg0: gre/ip ...",
			"mtu": 1476,
			"path_mtu": 1476,
			"stats": {
				"rx_packets": 0,
				"rx_bytes": 0,
				"rx_errors": 0,
				"rx_csum_errors": 0,
				"rx_out_of_seq": 0,
				"rx_device_errors": 0,
				"rx_keepalive_unsolicited": 0,
				"tx_packets": 0,
				"tx_bytes": 0,
				"tx_errors": 0,
				"tx_dead_loop": 0,
				"tx_no_route": 0,
				"tx_no_bufs": 0,
				"tx_too_big": 0,
				"tx_fragmented": 0,
				"tx_bad_inner": 0,
				"tx_icmp": 0,
				"tx_icmp_limited": 0,
				"tx_mss_clamped": 0,
				"tx_packet_socket": 0,
				"tx_unreachable": 0,
				"tx_encap_limit": 0,
				"tx_no_neighbour": 23,
				"reflected": 0
			},
			"neighbours": [
				{
					"lladdr": "192.0.2.2",
					"dsts": ["198.51.100.2", "203.0.113.0/24"],
					"learned": true,
					"path_mtu": 1476,
					"stats": {
						"rx_packets": 1,
						"rx_bytes": 2,
						"rx_errors": 3,
						"tx_packets": 4,
						"tx_bytes": 5
					}
				}
			]
		}
	],
	"unmatched": {
		"rx_packets": 0,
		"rx_bytes": 0,
		"rx_errors": 0,
		"rx_csum_errors": 0,
		"rx_out_of_seq": 0,
		"rx_device_errors": 0,
		"rx_keepalive_unsolicited": 0,
		"tx_packets": 0,
		"tx_bytes": 0,
		"tx_errors": 0,
		"tx_dead_loop": 0,
		"tx_no_route": 0,
		"tx_no_bufs": 0,
		"tx_too_big": 0,
		"tx_fragmented": 0,
		"tx_bad_inner": 0,
		"tx_icmp": 0,
		"tx_icmp_limited": 0,
		"tx_mss_clamped": 0,
		"tx_packet_socket": 0,
		"tx_unreachable": 0,
		"tx_encap_limit": 0,
		"tx_no_neighbour": 0,
		"reflected": 0,
		"drops": {
			"no-tunnel": 1
		}
	},
	"neighs": [
		{
			"dev": "mg0",
			"dst": "198.51.100.2",
			"lladdr": "192.0.2.2",
			"state": "PERMANENT"
		}
	]
}`
