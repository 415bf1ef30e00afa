package kpeer

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Stats are a guest interface's counters from
// /sys/class/net/DEV/statistics. busybox's ip has no -s, and the kernel's
// tunnel drivers report their drops here: ip_tunnel counts a packet
// without the required checksum in RxCRCErrors, one without or with an
// old sequence number in RxFIFOErrors (both also in RxErrors); on the
// way out it counts a packet it cannot route in TxCarrierErrors and one
// too big for the path in TxErrors.
type Stats struct {
	RxPackets, TxPackets uint64
	RxBytes, TxBytes     uint64
	RxErrors, TxErrors   uint64
	RxDropped, TxDropped uint64
	Multicast            uint64
	Collisions           uint64

	RxLengthErrors uint64
	RxOverErrors   uint64
	RxCRCErrors    uint64
	RxFrameErrors  uint64
	RxFIFOErrors   uint64
	RxMissedErrors uint64
	RxNoHandler    uint64

	TxAbortedErrors   uint64
	TxCarrierErrors   uint64
	TxFIFOErrors      uint64
	TxHeartbeatErrors uint64
	TxWindowErrors    uint64

	RxCompressed, TxCompressed uint64
}

// fields maps sysfs file names to the Stats fields.
func (s *Stats) fields() map[string]*uint64 {
	return map[string]*uint64{
		"rx_packets": &s.RxPackets, "tx_packets": &s.TxPackets,
		"rx_bytes": &s.RxBytes, "tx_bytes": &s.TxBytes,
		"rx_errors": &s.RxErrors, "tx_errors": &s.TxErrors,
		"rx_dropped": &s.RxDropped, "tx_dropped": &s.TxDropped,
		"multicast": &s.Multicast, "collisions": &s.Collisions,
		"rx_length_errors": &s.RxLengthErrors, "rx_over_errors": &s.RxOverErrors,
		"rx_crc_errors": &s.RxCRCErrors, "rx_frame_errors": &s.RxFrameErrors,
		"rx_fifo_errors": &s.RxFIFOErrors, "rx_missed_errors": &s.RxMissedErrors,
		"rx_nohandler":      &s.RxNoHandler,
		"tx_aborted_errors": &s.TxAbortedErrors, "tx_carrier_errors": &s.TxCarrierErrors,
		"tx_fifo_errors": &s.TxFIFOErrors, "tx_heartbeat_errors": &s.TxHeartbeatErrors,
		"tx_window_errors": &s.TxWindowErrors,
		"rx_compressed":    &s.RxCompressed, "tx_compressed": &s.TxCompressed,
	}
}

// Sub returns s minus before, field by field: what happened in between.
func (s Stats) Sub(before Stats) Stats {
	d := s
	df, bf := d.fields(), before.fields()
	for name, p := range df {
		*p -= *bf[name]
	}
	return d
}

// Map returns the non-zero counters by their sysfs names, for messages.
func (s Stats) Map() map[string]uint64 {
	m := map[string]uint64{}
	for name, p := range s.fields() {
		if *p != 0 {
			m[name] = *p
		}
	}
	return m
}

var devName = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,15}$`)

// IfStats reads the counters of the guest's interface dev.
func (g *Guest) IfStats(dev string) (Stats, error) {
	if !devName.MatchString(dev) {
		return Stats{}, fmt.Errorf("kpeer: bad interface name %q", dev)
	}
	out, err := g.Run("cd /sys/class/net/" + dev + "/statistics && grep -H . *")
	if err != nil {
		return Stats{}, err
	}
	return parseStats(out)
}

// parseStats parses "name:value" lines as printed by grep -H.
func parseStats(out string) (Stats, error) {
	var s Stats
	fields := s.fields()
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			return Stats{}, fmt.Errorf("kpeer: bad statistics line %q", line)
		}
		p, known := fields[name]
		if !known {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return Stats{}, fmt.Errorf("kpeer: bad statistics value %q", line)
		}
		*p = v
		seen++
	}
	if seen == 0 {
		return Stats{}, fmt.Errorf("kpeer: no interface statistics in %q", out)
	}
	return s, nil
}

// SNMP returns the guest kernel's protocol counters from /proc/net/snmp
// and /proc/net/netstat, keyed "Proto.Name" (e.g. "Icmp.OutDestUnreachs",
// "Ip.ReasmOKs"). A GRE packet whose key matches no tunnel is not counted
// on any interface: the kernel answers it with an ICMP port unreachable,
// which shows up here.
func (g *Guest) SNMP() (map[string]uint64, error) {
	out, err := g.Run("cat /proc/net/snmp /proc/net/netstat")
	if err != nil {
		return nil, err
	}
	return ParseSNMP(out)
}

// ParseSNMP parses the pairs of header and value lines of /proc/net/snmp
// (and /proc/net/netstat), keyed as SNMP returns them.
func ParseSNMP(out string) (map[string]uint64, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	m := map[string]uint64{}
	for i := 0; i+1 < len(lines); i += 2 {
		hdr, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		if len(hdr) == 0 || len(hdr) != len(vals) || hdr[0] != vals[0] {
			return nil, fmt.Errorf("kpeer: bad SNMP lines %q / %q", lines[i], lines[i+1])
		}
		proto := strings.TrimSuffix(hdr[0], ":")
		for j := 1; j < len(hdr); j++ {
			// Some values (Tcp MaxConn) are -1.
			v, err := strconv.ParseInt(vals[j], 10, 64)
			if err != nil {
				u, uerr := strconv.ParseUint(vals[j], 10, 64)
				if uerr != nil {
					return nil, fmt.Errorf("kpeer: bad SNMP value %s.%s=%q", proto, hdr[j], vals[j])
				}
				m[proto+"."+hdr[j]] = u
				continue
			}
			m[proto+"."+hdr[j]] = uint64(v)
		}
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("kpeer: no SNMP counters in output")
	}
	return m, nil
}
