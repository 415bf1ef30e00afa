package bench

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestFOURatios(t *testing.T) {
	// Two rounds: every ratio is taken within a round, then the median
	// (the mean of two) over the rounds. A row that failed in a round
	// leaves that round out; a ratio with a row never measured is absent.
	rounds := [][]Result{
		{
			{Name: "vxlan", TCPGbps: 10, CPUPerGB: 1},
			{Name: classicName, DeliveredKpps: 100},
			{Name: fouName, TCPGbps: 4, CPUPerGB: 2.5, DeliveredKpps: 300},
			{Name: p4Name, TCPGbps: 5},
			{Name: "gre-fou-nogso", TCPGbps: 2},
		},
		{
			{Name: "vxlan", TCPGbps: 12, CPUPerGB: 1},
			{Name: classicName, DeliveredKpps: 100},
			{Name: fouName, TCPGbps: 6, CPUPerGB: 3.5, DeliveredKpps: 100},
			{Name: p4Name, TCPGbps: 3, Error: "iperf3 failed"},
			{Name: "gre-fou-nogso", TCPGbps: 2},
		},
	}
	want := []Ratio{
		{What: "GRE/FOU TCP × kernel VXLAN", Value: (0.4 + 0.5) / 2, Target: "≥ 0.5", Met: "MISSED"},
		{What: "GRE/FOU CPU s/GB × kernel VXLAN", Value: 3, Target: "≤ 3", Met: "met"},
		{What: "GRE/FOU 64-byte UDP delivered × classic loop", Value: 2, Target: "≥ 2", Met: "met"},
		{What: "GRE/FOU 4 TCP streams ÷ one stream (total)", Value: 1.25, Target: "≥ 1", Met: "met"},
		{What: "TCP bought by UDP GSO (on ÷ off)", Value: 2.5},
	}
	got := FOURatios(rounds)
	if d := cmp.Diff(want, got, cmpopts.EquateApprox(0, 1e-9)); d != "" {
		t.Fatalf("FOURatios (-want +got):\n%s", d)
	}
	if got := FOURatios([][]Result{{{Name: "gre", TCPGbps: 3}}}); len(got) != 0 {
		t.Fatalf("no GRE/FOU rows: %v, want no ratios", got)
	}

	rep := &Report{Rows: []Result{{Name: fouName, Title: "gretun GRE/FOU", TCPGbps: 4}}, Ratios: want}
	var b bytes.Buffer
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	words := strings.Join(strings.Fields(b.String()), " ")
	for _, line := range []string{"GRE/FOU TCP × kernel VXLAN 0.45 ≥ 0.5 MISSED", "4 TCP streams ÷ one stream (total) 1.25 ≥ 1 met"} {
		if !strings.Contains(words, line) {
			t.Errorf("table lacks %q:\n%s", line, b.String())
		}
	}
}

func TestWriteText(t *testing.T) {
	rep := &Report{DurationSeconds: 4, Rounds: 2, Machine: Machine{CPUs: 2}, Rows: []Result{
		{Name: "vxlan", Title: "kernel VXLAN", TCPGbps: 10},
		{Name: fouName, Title: "gretun GRE/FOU", TCPGbps: 5},
		{Name: "gre", Title: "gretun GRE", Error: "failed"},
	}}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := "TCP Gbit/s (4s per test, medians of 2 rounds, 2 CPUs)\n" +
		"kernel VXLAN   | " + strings.Repeat("█", 50) + " 10.00\n" +
		"gretun GRE/FOU | " + strings.Repeat("█", 25) + " 5.00 (0.50× VXLAN)\n" +
		"gretun GRE     | (no result)\n"
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Fatalf("text chart (-want +got):\n%s", d)
	}
}
