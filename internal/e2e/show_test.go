package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestShowJSON checks that `gretun -j tunnel show` is one valid JSON
// document with every field a script needs, that -s adds the counters,
// and that it agrees with the text output and with the kernel's view of
// the device.
func TestShowJSON(t *testing.T) {
	t.Parallel()
	tp := Pair(t)
	d := tp.Daemon(tp.A)
	defer d.Stop()

	// No tunnels yet: an empty list, not null.
	var empty map[string]json.RawMessage
	r := tp.G(tp.A, "-j", "tunnel", "show")
	if err := json.Unmarshal([]byte(r.stdout), &empty); err != nil || string(empty["tunnels"]) != "[]" {
		t.Errorf("-j tunnel show with no tunnels: %v: %s", err, r.stdout)
	}

	tp.add(tp.A, "g1", "mode", "gre", "remote", UnderB, "local", UnderA, "ttl", "64", "tos", "0x10", "key", "5", "csum")
	tp.add(tp.A, "i1", "mode", "ipip", "remote", UnderB, "local", UnderA, "mtu", "1400")
	tp.Sh(tp.A, "ip", "addr", "add", "198.51.100.1", "peer", "203.0.113.1", "dev", "g1")
	tp.Exec(tp.A, "ping", "-c", "2", "-i", "0.2", "-W", "1", "203.0.113.1")

	type doc struct {
		Tunnels []struct {
			Config map[string]any             `json:"config"`
			Line   string                     `json:"line"`
			MTU    int                        `json:"mtu"`
			Stats  map[string]json.RawMessage `json:"stats"`
		} `json:"tunnels"`
		Unmatched map[string]json.RawMessage `json:"unmatched"`
	}
	parse := func(args ...string) doc {
		t.Helper()
		r := tp.G(tp.A, args...)
		if r.code != 0 {
			t.Fatalf("%v: %s", args, r.stderr)
		}
		if !json.Valid([]byte(r.stdout)) {
			t.Fatalf("%v prints invalid JSON:\n%s", args, r.stdout)
		}
		var v doc
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return v
	}

	lines := strings.Split(strings.TrimSpace(tp.show(tp.A)), "\n")
	plain := parse("-j", "tunnel", "show")
	if len(plain.Tunnels) != 2 || len(lines) != 2 {
		t.Fatalf("want 2 tunnels, got %d in JSON and %d lines", len(plain.Tunnels), len(lines))
	}
	g1, i1 := plain.Tunnels[0], plain.Tunnels[1]
	for k, want := range map[string]any{
		"name": "g1", "mode": "gre", "local": UnderA, "remote": UnderB,
		"ttl": 64.0, "tos": 16.0, "ikey": 5.0, "okey": 5.0, "has_ikey": true, "has_okey": true,
		"icsum": true, "ocsum": true,
	} {
		if got := g1.Config[k]; got != want {
			t.Errorf("g1 config %q = %v, want %v (config %v)", k, got, want, g1.Config)
		}
	}
	for k, want := range map[string]any{"name": "i1", "mode": "ipip", "local": UnderA, "remote": UnderB, "mtu": 1400.0} {
		if got := i1.Config[k]; got != want {
			t.Errorf("i1 config %q = %v, want %v (config %v)", k, got, want, i1.Config)
		}
	}
	if g1.Line != lines[0] || i1.Line != lines[1] {
		t.Errorf("JSON lines %q, %q differ from tunnel show %q", g1.Line, i1.Line, lines)
	}
	// GRE with key and checksum: 1500 - 20 - 4 - 4 - 4.
	if g1.MTU != 1468 || i1.MTU != 1400 {
		t.Errorf("MTUs %d and %d, want 1468 and 1400", g1.MTU, i1.MTU)
	}
	if l := tp.Sh(tp.A, "ip", "-o", "link", "show", "dev", "g1"); !strings.Contains(l, "mtu 1468 ") {
		t.Errorf("device g1 does not have the MTU shown: %s", l)
	}

	stats := parse("-s", "-j", "tunnel", "show", "g1")
	if len(stats.Tunnels) != 1 || stats.Tunnels[0].Config["name"] != "g1" {
		t.Fatalf("-s -j tunnel show g1: %+v", stats.Tunnels)
	}
	s := stats.Tunnels[0].Stats
	for _, k := range []string{
		"rx_packets", "rx_bytes", "rx_errors", "rx_csum_errors", "rx_out_of_seq", "rx_device_errors",
		"tx_packets", "tx_bytes", "tx_errors", "tx_dead_loop", "tx_no_route", "tx_no_bufs",
		"tx_too_big", "tx_fragmented", "tx_bad_inner",
	} {
		if _, ok := s[k]; !ok {
			t.Errorf("counter %q missing from -s -j", k)
		}
	}
	var tx int
	json.Unmarshal(s["tx_packets"], &tx)
	if tx < 2 {
		t.Errorf("g1 tx_packets = %d, want the 2 pings", tx)
	}
	if stats.Unmatched == nil {
		t.Error("-s -j has no unmatched counters")
	}
	// Without -s the counters are left out (zero), as `ip -j tunnel show`.
	if string(g1.Stats["tx_packets"]) != "0" || plain.Unmatched != nil {
		t.Errorf("-j without -s carries counters: %v %v", g1.Stats, plain.Unmatched)
	}
}
