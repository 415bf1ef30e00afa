package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// Ratio is one figure of issue 14's GRE-in-UDP targets, or of what a
// step of its data path buys: a ratio between two rows, taken round by
// round and reported as the median over the rounds.
type Ratio struct {
	What   string  `json:"what"`
	Value  float64 `json:"value"`
	Target string  `json:"target,omitempty"` // "≥ 0.5", "≤ 3"; empty: none
	Met    string  `json:"met,omitempty"`    // met, MISSED, or empty without target
}

// fouName is the GRE-in-UDP row the targets are about.
const fouName = "gre-fou"

// ratioSpecs are the ratios FOURatios reports, each num/den of one figure
// of two rows of the same round, the target being min (value ≥ min) or
// max (value ≤ max) when set.
var ratioSpecs = []struct {
	what     string
	num, den string
	figure   func(Result) float64
	min, max float64
}{
	{"GRE/FOU TCP × kernel VXLAN", fouName, "vxlan", tcpOf, 0.5, 0},
	{"GRE/FOU CPU s/GB × kernel VXLAN", fouName, "vxlan", cpuOf, 0, 3},
	{"GRE/FOU 64-byte UDP delivered × classic loop", fouName, classicName, deliveredOf, 2, 0},
	{"GRE/FOU 4 TCP streams ÷ one stream (total)", p4Name, fouName, tcpOf, 1, 0},
	// What each step buys: the whole path's TCP over the path without it.
	{"TCP bought by UDP GSO (on ÷ off)", fouName, "gre-fou-nogso", tcpOf, 0, 0},
	{"TCP bought by UDP GRO (on ÷ off)", fouName, "gre-fou-nogro", tcpOf, 0, 0},
	{"TCP bought by TUN write coalescing (on ÷ off)", fouName, "gre-fou-nocoalesce", tcpOf, 0, 0},
	{"TCP bought by TUN offloads (on ÷ off)", fouName, "gre-fou-notso", tcpOf, 0, 0},
	{"TCP bought by all four (on ÷ off)", fouName, "gre-fou-none", tcpOf, 0, 0},
	{"CPU s/GB saved by all four (off ÷ on)", "gre-fou-none", fouName, cpuOf, 0, 0},
}

func tcpOf(r Result) float64       { return r.TCPGbps }
func cpuOf(r Result) float64       { return r.CPUPerGB }
func deliveredOf(r Result) float64 { return r.DeliveredKpps }

// FOURatios computes, from the rounds as measured (every round the same
// rows), each ratio whose two rows were both measured: the median over
// the rounds of the ratio within each round.
func FOURatios(rounds [][]Result) []Ratio {
	var out []Ratio
	for _, spec := range ratioSpecs {
		var v []float64
		for _, round := range rounds {
			num, den := find(round, spec.num), find(round, spec.den)
			if num == nil || den == nil || num.Error != "" || den.Error != "" {
				continue
			}
			if x := ratioOf(spec.figure(*num), spec.figure(*den)); x > 0 {
				v = append(v, x)
			}
		}
		if len(v) == 0 {
			continue
		}
		r := Ratio{What: spec.what, Value: median(v)}
		switch {
		case spec.min > 0:
			r.Target, r.Met = fmt.Sprintf("≥ %g", spec.min), met(true, r.Value >= spec.min)
		case spec.max > 0:
			r.Target, r.Met = fmt.Sprintf("≤ %g", spec.max), met(true, r.Value <= spec.max)
		}
		out = append(out, r)
	}
	return out
}

// find returns the row named name, or nil.
func find(rows []Result, name string) *Result {
	for i := range rows {
		if rows[i].Name == name {
			return &rows[i]
		}
	}
	return nil
}

// writeRatios prints the ratios, one a line, with target and verdict.
func writeRatios(w io.Writer, ratios []Ratio) error {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "GRE-in-UDP (issue 14), same rounds\tratio\ttarget\t\n")
	for _, r := range ratios {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.What, num(r.Value, 2), r.Target, r.Met)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeTrimmed(w, b.String())
}

// textBarWidth is the longest bar of WriteText, in characters.
const textBarWidth = 50

// WriteText draws the rows' single-stream TCP throughput as a text bar
// chart, for a Markdown code block: one bar per row, scaled to the
// largest, with the figure and, when kernel VXLAN was measured, the
// ratio to it.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "TCP Gbit/s (%ds per test, medians of %d rounds, %d CPUs)\n", r.DurationSeconds, max(r.Rounds, 1), r.Machine.CPUs)
	width, top := 0, 0.0
	for _, row := range r.Rows {
		width = max(width, len([]rune(row.Title)))
		top = math.Max(top, finite(row.TCPGbps))
	}
	vx := find(r.Rows, "vxlan")
	for _, row := range r.Rows {
		pad := strings.Repeat(" ", width-len([]rune(row.Title)))
		v := finite(row.TCPGbps)
		if v <= 0 || top <= 0 {
			fmt.Fprintf(&b, "%s%s | (no result)\n", row.Title, pad)
			continue
		}
		n := max(1, int(math.Round(v/top*textBarWidth)))
		label := num(v, 2)
		if vx != nil && row.Name != "vxlan" && vx.TCPGbps > 0 {
			label += fmt.Sprintf(" (%.2f× VXLAN)", v/vx.TCPGbps)
		}
		fmt.Fprintf(&b, "%s%s | %s %s\n", row.Title, pad, strings.Repeat("█", n), label)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
