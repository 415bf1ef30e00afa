package bench

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The samples in testdata are real iperf3 3.12 -J outputs, captured
// between two namespaces over veth on the reference machine.
func TestParseIperfTCP(t *testing.T) {
	got, err := ParseIperf(readTestdata(t, "iperf3-tcp.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := IperfResult{Protocol: "TCP", Seconds: 2.000392, Bytes: 3289776128}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("ParseIperf (-want +got):\n%s", d)
	}
	// iperf3 itself reported 13156525832.936743 bit/s for the receiver.
	if g := got.Gbps(); math.Abs(g-13.156525832936743) > 1e-9 {
		t.Fatalf("Gbps = %v, want 13.1565…", g)
	}
}

func TestParseIperfUDP(t *testing.T) {
	got, err := ParseIperf(readTestdata(t, "iperf3-udp64.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := IperfResult{Protocol: "UDP", Seconds: 2.000088, Bytes: 28959808, Packets: 456027, Lost: 3530}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("ParseIperf (-want +got):\n%s", d)
	}
	// The receiver got packets-lost = 452497 datagrams: its byte count
	// divided by the 64-byte payload says the same.
	if got.Bytes/64 != got.Packets-got.Lost {
		t.Fatalf("received bytes/64 = %d, packets-lost = %d", got.Bytes/64, got.Packets-got.Lost)
	}
	if pps := got.ReceivedPPS(); math.Abs(pps-452497/2.000088) > 1e-6 {
		t.Fatalf("ReceivedPPS = %v, want %v", pps, 452497/2.000088)
	}
}

func TestParseIperfErrors(t *testing.T) {
	_, err := ParseIperf(readTestdata(t, "iperf3-error.json"))
	if !errors.Is(err, errIperfConnect) || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("captured connect failure: err = %v, want errIperfConnect naming the timeout", err)
	}
	cases := map[string]string{
		"not JSON":         `iperf3: error - unable to start`,
		"empty":            ``,
		"no sum_received":  `{"start":{},"end":{}}`,
		"other error":      `{"error":"the server is busy running a test. try again later"}`,
		"negative":         `{"end":{"sum_received":{"seconds":1,"bytes":-5}}}`,
		"wrong field type": `{"end":{"sum_received":{"seconds":"x"}}}`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if r, err := ParseIperf([]byte(in)); err == nil {
				t.Fatalf("ParseIperf(%q) = %+v, want an error", in, r)
			} else if errors.Is(err, errIperfConnect) {
				t.Fatalf("ParseIperf(%q) = %v, claims a connect failure", in, err)
			}
		})
	}
	_, err = ParseIperf([]byte(`{"error":"unable to connect to server: Connection refused"}`))
	if !errors.Is(err, errIperfConnect) {
		t.Fatalf("refused: err = %v, want errIperfConnect", err)
	}
}

func TestIperfResultZeroSafe(t *testing.T) {
	var r IperfResult
	if r.Gbps() != 0 || r.ReceivedPPS() != 0 {
		t.Fatal("a zero result must give zero rates, not NaN or Inf")
	}
	r = IperfResult{Seconds: 1, Packets: 3, Lost: 5}
	if r.ReceivedPPS() != 0 {
		t.Fatalf("more lost than sent gave %v pps", r.ReceivedPPS())
	}
}

func TestParseUDPArrived(t *testing.T) {
	snmp := `Ip: Forwarding DefaultTTL InReceives
Ip: 2 64 1000
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 5000 3 250 7 240 0 10 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 1 0 0 0 0 0 0 0 0
`
	if n, err := parseUDPArrived(snmp); err != nil || n != 5240 {
		t.Fatalf("parseUDPArrived = %d, %v; want 5000 queued + 240 dropped for a full buffer", n, err)
	}
	for _, bad := range []string{"", "Udp: InDatagrams NoPorts\n", "Udp: InDatagrams RcvbufErrors\nUdp: 1 x\n", "Udp: InDatagrams\nUdp: 1\n"} {
		if n, err := parseUDPArrived(bad); err == nil {
			t.Errorf("parseUDPArrived(%q) = %d, want an error", bad, n)
		}
	}
}
