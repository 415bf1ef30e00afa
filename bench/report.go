package bench

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// Result is one row of the benchmark table. A row that failed keeps what it
// measured before the failure and says why in Error.
type Result struct {
	Name     string  `json:"name"`  // short name, as --only takes it
	Title    string  `json:"title"` // what the row measures, for people
	TCPGbps  float64 `json:"tcp_gbit_s"`
	UDPKpps  float64 `json:"udp64_kpps"`
	CPUPerGB float64 `json:"cpu_s_per_gb"`
	TCPRatio float64 `json:"tcp_ratio_to_classic,omitempty"` // 0: classic not measured
	PPSRatio float64 `json:"pps_ratio_to_classic,omitempty"`
	Error    string  `json:"error,omitempty"`
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
	BusyBeforePercent float64  `json:"busy_before_percent"`
	Rows              []Result `json:"rows"`
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
		row.TCPRatio, row.PPSRatio = 0, 0
		if base == nil {
			continue
		}
		if base.TCPGbps > 0 && row.TCPGbps > 0 {
			row.TCPRatio = row.TCPGbps / base.TCPGbps
		}
		if base.UDPKpps > 0 && row.UDPKpps > 0 {
			row.PPSRatio = row.UDPKpps / base.UDPKpps
		}
	}
}

// Failed reports whether any row failed.
func (r *Report) Failed() bool {
	for _, row := range r.Rows {
		if row.Error != "" {
			return true
		}
	}
	return false
}

// WriteTable prints the report as an aligned table, then one line per
// failed row with its error.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "row\tTCP Gbit/s\tUDP-64 kpps\tCPU s/GB\tTCP ×classic\tpps ×classic\n")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", row.Title,
			num(row.TCPGbps, 2), num(row.UDPKpps, 1), num(row.CPUPerGB, 2),
			ratio(row.TCPRatio), ratio(row.PPSRatio))
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
	_, err := fmt.Fprintf(w, "(%ds per test; %s; %d CPUs; kernel %s; %s; machine %.0f%% busy before the run)\n",
		r.DurationSeconds, r.Machine.CPU, r.Machine.CPUs, r.Machine.Kernel, r.Machine.Iperf3, r.BusyBeforePercent)
	return err
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
)

// WriteSVG draws the report as a horizontal bar chart with two panels,
// TCP Gbit/s and UDP-64 kpps, one bar per row, each panel scaled to its
// largest value and each bar labelled with its figure and its ratio to the
// classic loop. Rows without a figure are labelled instead.
func (r *Report) WriteSVG(w io.Writer) error {
	width := svgLabelW + 2*svgPanelW + 2*svgGap
	height := svgTop + svgRowH*len(r.Rows) + svgBottom
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
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
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
