package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// IperfResult is what the harness takes from one iperf3 client run (-J):
// the totals as the receiver saw them.
type IperfResult struct {
	Protocol string  // "TCP" or "UDP"
	Seconds  float64 // receiver's measuring interval
	Bytes    int64   // bytes received
	// Packets and Lost are iperf3's UDP receiver counters: Packets is the
	// number the sender numbered, Lost those that never arrived.
	Packets int64
	Lost    int64
}

// Gbps is the received throughput in Gbit/s.
func (r IperfResult) Gbps() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Bytes) * 8 / r.Seconds / 1e9
}

// ReceivedPPS is the rate of UDP packets that reached the receiver.
func (r IperfResult) ReceivedPPS() float64 {
	got := r.Packets - r.Lost
	if r.Seconds <= 0 || got <= 0 {
		return 0
	}
	return float64(got) / r.Seconds
}

// errIperfConnect marks a client that could not reach its server, which
// the runner retries while the server is still starting.
var errIperfConnect = errors.New("iperf3 could not connect")

// iperfJSON is the part of iperf3 3.x's JSON output that we read.
type iperfJSON struct {
	Start struct {
		TestStart struct {
			Protocol string `json:"protocol"`
		} `json:"test_start"`
	} `json:"start"`
	End struct {
		SumReceived *struct {
			Seconds     float64 `json:"seconds"`
			Bytes       int64   `json:"bytes"`
			Packets     int64   `json:"packets"`
			LostPackets int64   `json:"lost_packets"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

// ParseIperf parses the output of `iperf3 -c … -J`. An iperf3 error is
// returned as an error; one about connecting wraps errIperfConnect.
func ParseIperf(data []byte) (IperfResult, error) {
	var j iperfJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return IperfResult{}, fmt.Errorf("iperf3 output is not JSON: %v", err)
	}
	if j.Error != "" {
		if strings.Contains(j.Error, "unable to connect") {
			return IperfResult{}, fmt.Errorf("%w: %s", errIperfConnect, j.Error)
		}
		return IperfResult{}, fmt.Errorf("iperf3: %s", j.Error)
	}
	s := j.End.SumReceived
	if s == nil {
		return IperfResult{}, errors.New("iperf3 output has no end.sum_received (iperf3 older than 3.1?)")
	}
	if s.Seconds < 0 || s.Bytes < 0 || s.Packets < 0 || s.LostPackets < 0 {
		return IperfResult{}, errors.New("iperf3 output has negative totals")
	}
	return IperfResult{
		Protocol: j.Start.TestStart.Protocol,
		Seconds:  s.Seconds,
		Bytes:    s.Bytes,
		Packets:  s.Packets,
		Lost:     s.LostPackets,
	}, nil
}
