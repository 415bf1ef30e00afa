package bench

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Result is one row of the benchmark table. A row that failed keeps what it
// measured before the failure and says why in Error.
type Result struct {
	Name    string  `json:"name"`  // short name, as --only takes it
	Title   string  `json:"title"` // what the row measures, for people
	TCPGbps float64 `json:"tcp_gbit_s"`
	UDPKpps float64 `json:"udp64_kpps"` // received by iperf3
	// DeliveredKpps is the 64-byte datagrams that reached the far UDP
	// layer, read or not by iperf3 (see udpArrived).
	DeliveredKpps  float64 `json:"udp64_delivered_kpps"`
	CPUPerGB       float64 `json:"cpu_s_per_gb"`
	TCPRatio       float64 `json:"tcp_ratio_to_classic,omitempty"` // 0: classic not measured
	PPSRatio       float64 `json:"pps_ratio_to_classic,omitempty"`
	DeliveredRatio float64 `json:"delivered_ratio_to_classic,omitempty"`
	Error          string  `json:"error,omitempty"`
}

// Machine describes where a report was measured, for BENCHMARKS.md.
type Machine struct {
	Kernel string `json:"kernel"`
	CPU    string `json:"cpu"`
	CPUs   int    `json:"cpus"`
	Iperf3 string `json:"iperf3"`
}

// Report is the whole run: what `gretun bench --json` prints.
type Report struct {
	Time            string  `json:"time"`
	DurationSeconds int     `json:"duration_s"`
	Machine         Machine `json:"machine"`
	// BusyBeforePercent is how busy the machine was just before the run
	// (100 = all CPUs): other load lowers every figure.
	BusyBeforePercent float64 `json:"busy_before_percent"`
	// Rounds is how many times every row was measured, the rows taking
	// turns; each figure and ratio is the median over the rounds.
	Rounds int      `json:"rounds"`
	Rows   []Result `json:"rows"`
	// Ratios are issue 14's GRE-in-UDP ratios (FOURatios), where their
	// rows were measured.
	Ratios []Ratio `json:"ratios,omitempty"`
	// Scale is the scale section, nil when it was not run.
	Scale *ScaleResult `json:"scale,omitempty"`
}

// classicName is the row the ratios are taken against.
const classicName = "classic"

// SetRatios fills each row's ratios to the classic loop's row, if that row
// was measured; rows that lack a figure get no ratio for it.
func (r *Report) SetRatios() {
	var base *Result
	for i := range r.Rows {
		if r.Rows[i].Name == classicName {
			base = &r.Rows[i]
		}
	}
	for i := range r.Rows {
		row := &r.Rows[i]
		row.TCPRatio, row.PPSRatio, row.DeliveredRatio = 0, 0, 0
		if base == nil {
			continue
		}
		row.TCPRatio = ratioOf(row.TCPGbps, base.TCPGbps)
		row.PPSRatio = ratioOf(row.UDPKpps, base.UDPKpps)
		row.DeliveredRatio = ratioOf(row.DeliveredKpps, base.DeliveredKpps)
	}
}

// CombineRounds folds several rounds of the same rows, each round with its
// ratios set against its own classic row, into one row each: the median of
// every figure and of every ratio over the rounds that measured it. A row
// that failed in any round keeps the first failure's error.
func CombineRounds(rounds [][]Result) []Result {
	if len(rounds) == 0 {
		return nil
	}
	out := make([]Result, len(rounds[0]))
	for i := range out {
		out[i] = Result{Name: rounds[0][i].Name, Title: rounds[0][i].Title}
		figures := []struct {
			dst *float64
			get func(Result) float64
		}{
			{&out[i].TCPGbps, func(r Result) float64 { return r.TCPGbps }},
			{&out[i].UDPKpps, func(r Result) float64 { return r.UDPKpps }},
			{&out[i].DeliveredKpps, func(r Result) float64 { return r.DeliveredKpps }},
			{&out[i].CPUPerGB, func(r Result) float64 { return r.CPUPerGB }},
			{&out[i].TCPRatio, func(r Result) float64 { return r.TCPRatio }},
			{&out[i].PPSRatio, func(r Result) float64 { return r.PPSRatio }},
			{&out[i].DeliveredRatio, func(r Result) float64 { return r.DeliveredRatio }},
		}
		for _, f := range figures {
			var v []float64
			for _, round := range rounds {
				if x := f.get(round[i]); x > 0 {
					v = append(v, x)
				}
			}
			*f.dst = median(v)
		}
		for k, round := range rounds {
			if round[i].Error != "" {
				out[i].Error = round[i].Error
				if len(rounds) > 1 {
					out[i].Error = fmt.Sprintf("round %d: %s", k+1, round[i].Error)
				}
				break
			}
		}
	}
	return out
}

// ratioOf is x/base, or 0 when either was not measured.
func ratioOf(x, base float64) float64 {
	if x <= 0 || base <= 0 {
		return 0
	}
	return x / base
}

// Failed reports whether any row, or the scale section, failed.
func (r *Report) Failed() bool {
	if r.Scale != nil && r.Scale.Error != "" {
		return true
	}
	for _, row := range r.Rows {
		if row.Error != "" {
			return true
		}
	}
	return false
}

// WriteTable prints the report as an aligned table, then one line per
// failed row with its error; then the scale section, if it was run, as a
// table of its own; then the machine.
func (r *Report) WriteTable(w io.Writer) error {
	if len(r.Rows) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "row\tTCP Gbit/s\tUDP-64 kpps\tdelivered\tCPU s/GB\tTCP ×classic\tpps ×classic\tdelivered ×classic\n")
		for _, row := range r.Rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Title,
				num(row.TCPGbps, 2), num(row.UDPKpps, 1), num(row.DeliveredKpps, 1), num(row.CPUPerGB, 2),
				ratio(row.TCPRatio), ratio(row.PPSRatio), ratio(row.DeliveredRatio))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, row := range r.Rows {
			if row.Error != "" {
				if _, err := fmt.Fprintf(w, "%s: FAILED: %s\n", row.Title, row.Error); err != nil {
					return err
				}
			}
		}
		if len(r.Ratios) > 0 {
			if _, err := fmt.Fprintln(w); err != nil {
				return err
			}
			if err := writeRatios(w, r.Ratios); err != nil {
				return err
			}
		}
	}
	if r.Scale != nil {
		if len(r.Rows) > 0 {
			if _, err := fmt.Fprintln(w); err != nil {
				return err
			}
		}
		if err := r.Scale.writeTable(w); err != nil {
			return err
		}
	}
	rounds := ""
	if r.Rounds > 1 {
		rounds = fmt.Sprintf(", medians of %d rounds", r.Rounds)
	}
	_, err := fmt.Fprintf(w, "(%ds per test%s; %s; %d CPUs; kernel %s; %s; machine %.0f%% busy before the run)\n",
		r.DurationSeconds, rounds, r.Machine.CPU, r.Machine.CPUs, r.Machine.Kernel, r.Machine.Iperf3, r.BusyBeforePercent)
	return err
}

// writeTable prints the scale section: one figure a line, with issue 7's
// target and whether it was met where there is one.
func (s *ScaleResult) writeTable(w io.Writer) error {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "scale: %d GRE tunnels in one daemon\tmeasured\ttarget\t\n", s.Tunnels)
	line := func(what, value, target, verdict string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", what, value, target, verdict)
	}
	created := "-"
	if s.Created > 0 || s.CreateSeconds > 0 {
		created = strconv.Itoa(s.Created)
	}
	line("tunnels created", created, strconv.Itoa(s.Tunnels), met(s.CreateSeconds > 0 || s.Created > 0, s.Created == s.Tunnels))
	if seconds, mb, ok := s.sizeTargets(); ok {
		line("seconds to create", num(s.CreateSeconds, 2), fmt.Sprintf("< %g", seconds),
			met(s.CreateSeconds > 0, s.CreateSeconds < seconds))
		line("RSS total MB", num(s.RSSTotalMB, 1), fmt.Sprintf("< %g", mb),
			met(s.RSSTotalMB > 0, s.RSSTotalMB < mb))
	} else {
		line("seconds to create", num(s.CreateSeconds, 2), "", "")
		line("RSS total MB", num(s.RSSTotalMB, 1), "", "")
	}
	line("RSS per tunnel KB", num(s.RSSPerTunnelKB, 1), "", "")
	line("RSS after the TCP test MB", num(s.RSSAfterTCPMB, 1), "", "")
	line("seconds to stop", num(s.StopSeconds, 2), "", "")
	line(fmt.Sprintf("kernel: seconds to make %d devices", s.Tunnels), num(s.KernelCreateSeconds, 2), "", "")
	line("create time / kernel's", num(s.CreateSeconds/s.KernelCreateSeconds, 2), "", "")
	line(fmt.Sprintf("kernel: seconds to remove %d devices", s.Tunnels), num(s.KernelStopSeconds, 2), "", "")
	line("stop time / kernel's", num(s.StopSeconds/s.KernelStopSeconds, 2), "", "")
	line("RSS with 0 tunnels MB", num(s.RSSBaselineMB, 1), "", "")
	line("TCP Gbit/s alone", num(s.TCPAloneGbps, 2), "", "")
	line(fmt.Sprintf("TCP Gbit/s among %d", s.Tunnels), num(s.TCPAmongGbps, 2), "", "")
	ratio := "ratio among/alone"
	if s.Rounds > 1 {
		ratio += fmt.Sprintf(" (median of %d)", s.Rounds)
	}
	line(ratio, num(s.TCPRatio, 2), fmt.Sprintf("≥ %.2f", scaleTargetRatio),
		met(s.TCPRatio > 0, s.TCPRatio >= scaleTargetRatio))
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := writeTrimmed(w, b.String()); err != nil {
		return err
	}
	if s.Error != "" {
		if _, err := fmt.Fprintf(w, "scale: FAILED: %s\n", s.Error); err != nil {
			return err
		}
	}
	return nil
}

// writeTrimmed writes the lines of a tabwriter's table without the
// padding that lines without a target end in.
func writeTrimmed(w io.Writer, table string) error {
	for _, l := range strings.SplitAfter(table, "\n") {
		if l == "" {
			continue
		}
		if _, err := io.WriteString(w, strings.TrimRight(l, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// sizeTargets returns the time and memory targets for s.Tunnels: issue
// 7's from 1000 tunnels, issue 13's at 10,000, none below 1000 (meeting
// them with fewer would mean nothing).
func (s *ScaleResult) sizeTargets() (seconds, mb float64, ok bool) {
	switch {
	case s.Tunnels >= maxScale:
		return scale10kSeconds, scale10kMB, true
	case s.Tunnels >= scaleTunnels:
		return scaleTargetSeconds, scaleTargetMB, true
	}
	return 0, 0, false
}

// met is the verdict on a target: nothing when the figure was not
// measured.
func met(measured, ok bool) string {
	switch {
	case !measured:
		return ""
	case ok:
		return "met"
	default:
		return "MISSED"
	}
}

func num(v float64, prec int) string {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

func ratio(v float64) string {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf("%.2fx", v)
}

// WriteJSON prints the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// SVG chart geometry, in pixels.
const (
	svgLabelW = 200 // row titles
	svgPanelW = 330 // one panel's bar area
	svgGap    = 150 // between the two panels, room for value labels
	svgRowH   = 26
	svgTop    = 60
	svgBottom = 20
	// The scale section under the rows: a title, two lines of figures
	// and two bars (alone, among), and room for an error line.
	svgScaleH = 20 + 2*20 + 2*svgRowH + 24
)

// WriteSVG draws the report as a horizontal bar chart with two panels,
// TCP Gbit/s and UDP-64 kpps, one bar per row, each panel scaled to its
// largest value and each bar labelled with its figure and its ratio to the
// classic loop. Rows without a figure are labelled instead. The scale
// section, if run, follows: its figures as text and the busy tunnel's TCP
// alone and among the others as two bars.
func (r *Report) WriteSVG(w io.Writer) error {
	width := svgLabelW + 2*svgPanelW + 2*svgGap
	rowsEnd := svgTop + svgRowH*len(r.Rows)
	drawRows := len(r.Rows) > 0 || r.Scale == nil
	if !drawRows {
		rowsEnd = 30
	}
	height := rowsEnd + svgBottom
	if r.Scale != nil {
		height += svgScaleH
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="13">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="15" font-weight="bold">%s</text>`+"\n",
		esc(fmt.Sprintf("gretun bench: %ds per test, %d CPUs, kernel %s", r.DurationSeconds, r.Machine.CPUs, r.Machine.Kernel)))

	panels := []struct {
		title string
		color string
		value func(Result) float64
		ratio func(Result) float64
		prec  int
	}{
		{"TCP single stream, Gbit/s", "#3b6ea8",
			func(x Result) float64 { return x.TCPGbps }, func(x Result) float64 { return x.TCPRatio }, 2},
		{"UDP 64-byte payload, kpps received", "#d08a2c",
			func(x Result) float64 { return x.UDPKpps }, func(x Result) float64 { return x.PPSRatio }, 1},
	}
	for i, row := range r.Rows {
		y := svgTop + i*svgRowH
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", svgLabelW-8, y+17, esc(row.Title))
	}
	if !drawRows {
		panels = nil
	}
	for p, panel := range panels {
		x0 := svgLabelW + p*(svgPanelW+svgGap)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0, svgTop-12, esc(panel.title))
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#444"/>`+"\n", x0, svgTop, x0, svgTop+svgRowH*len(r.Rows))
		max := 0.0
		for _, row := range r.Rows {
			max = math.Max(max, finite(panel.value(row)))
		}
		for i, row := range r.Rows {
			y := svgTop + i*svgRowH
			v := finite(panel.value(row))
			if v <= 0 {
				label := "no result"
				if row.Error != "" {
					label = "failed"
				}
				fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#b00">%s</text>`+"\n", x0+6, y+17, label)
				continue
			}
			bw := max1(int(math.Round(v / max * svgPanelW)))
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`+"\n", x0, y+4, bw, svgRowH-8, panel.color)
			label := num(v, panel.prec)
			if r := panel.ratio(row); r > 0 && row.Name != classicName {
				label += " (" + ratio(r) + " classic)"
			}
			fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", x0+bw+5, y+17, label)
		}
	}
	if r.Scale != nil {
		r.Scale.writeSVG(&b, rowsEnd+svgBottom)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeSVG draws the scale section from y down, within svgScaleH.
func (s *ScaleResult) writeSVG(b *strings.Builder, y int) {
	text := func(x, y int, attrs, s string) {
		fmt.Fprintf(b, `<text x="%d" y="%d"%s>%s</text>`+"\n", x, y, attrs, esc(s))
	}
	text(10, y+15, ` font-weight="bold"`, fmt.Sprintf("Scale: %d GRE tunnels in one daemon", s.Tunnels))
	created := fmt.Sprintf("created %d of %d in %s s", s.Created, s.Tunnels, num(s.CreateSeconds, 2))
	rss := fmt.Sprintf("RSS %s MB in all", num(s.RSSTotalMB, 1))
	if seconds, mb, ok := s.sizeTargets(); ok {
		created += fmt.Sprintf(" (target < %g s)", seconds)
		rss += fmt.Sprintf(" (target < %g MB)", mb)
	}
	created += fmt.Sprintf("; stopped (every device removed) in %s s", num(s.StopSeconds, 2))
	text(svgLabelW, y+15+20, "", created)
	rss += fmt.Sprintf(", %s KB per tunnel, %s MB with 0 tunnels", num(s.RSSPerTunnelKB, 1), num(s.RSSBaselineMB, 1))
	text(svgLabelW, y+15+40, "", rss)

	bars := []struct {
		label string
		v     float64
	}{
		{fmt.Sprintf("%s alone, TCP Gbit/s", scaleDev), finite(s.TCPAloneGbps)},
		{fmt.Sprintf("%s among %d", scaleDev, s.Tunnels), finite(s.TCPAmongGbps)},
	}
	max := math.Max(bars[0].v, bars[1].v)
	y0 := y + 60
	for i, bar := range bars {
		by := y0 + i*svgRowH
		text(svgLabelW-8, by+17, ` text-anchor="end"`, bar.label)
		if bar.v <= 0 {
			label := "no result"
			if s.Error != "" {
				label = "failed"
			}
			text(svgLabelW+6, by+17, ` fill="#b00"`, label)
			continue
		}
		bw := max1(int(math.Round(bar.v / max * svgPanelW)))
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#3b6ea8"/>`+"\n", svgLabelW, by+4, bw, svgRowH-8)
		label := num(bar.v, 2)
		if i == 1 && s.TCPRatio > 0 {
			label += fmt.Sprintf(" (%s alone; target ≥ %.2f)", ratio(s.TCPRatio), scaleTargetRatio)
		}
		text(svgLabelW+bw+5, by+17, "", label)
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#444"/>`+"\n", svgLabelW, y0, svgLabelW, y0+2*svgRowH)
	if s.Error != "" {
		e := "FAILED: " + s.Error
		if r := []rune(e); len(r) > 160 {
			e = string(r[:160]) + "…"
		}
		text(10, y0+2*svgRowH+18, ` fill="#b00"`, e)
	}
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0
	}
	return v
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
