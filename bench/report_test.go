package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func sampleReport() *Report {
	return &Report{
		Time:            "2026-11-26T20:00:00Z",
		DurationSeconds: 5,
		Machine:         Machine{Kernel: "6.18", CPU: "Test CPU", CPUs: 2, Iperf3: "iperf 3.12"},
		Rows: []Result{
			{Name: "veth", Title: "direct veth", TCPGbps: 19, UDPKpps: 400, DeliveredKpps: 420, CPUPerGB: 0.8},
			{Name: "classic", Title: "classic loop (GRE)", TCPGbps: 1.5, UDPKpps: 100, DeliveredKpps: 105, CPUPerGB: 9},
			{Name: "gre", Title: "gretun <GRE> & co", TCPGbps: 3, UDPKpps: 150, DeliveredKpps: 210, CPUPerGB: 4},
			{Name: "ipip", Title: "gretun IPIP", Error: "gretun exited: exit status 1"},
		},
	}
}

func TestSetRatios(t *testing.T) {
	r := sampleReport()
	r.SetRatios()
	type ratios struct{ TCP, PPS, Delivered float64 }
	var got []ratios
	for _, row := range r.Rows {
		got = append(got, ratios{row.TCPRatio, row.PPSRatio, row.DeliveredRatio})
	}
	want := []ratios{{19 / 1.5, 4, 4}, {1, 1, 1}, {2, 1.5, 2}, {0, 0, 0}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("ratios (-want +got):\n%s", d)
	}

	// Without a classic row, or with a failed one, there are no ratios.
	r = sampleReport()
	r.Rows[1].TCPGbps, r.Rows[1].UDPKpps, r.Rows[1].DeliveredKpps, r.Rows[1].Error = 0, 0, 0, "build failed"
	r.SetRatios()
	for _, row := range r.Rows {
		if row.TCPRatio != 0 || row.PPSRatio != 0 || row.DeliveredRatio != 0 {
			t.Fatalf("%s has ratios %v/%v against a failed classic row", row.Name, row.TCPRatio, row.PPSRatio)
		}
	}
}

func TestCombineRounds(t *testing.T) {
	round := func(classicTCP, greTCP, greKpps float64, greErr string) []Result {
		r := &Report{Rows: []Result{
			{Name: "classic", Title: "classic loop (GRE)", TCPGbps: classicTCP, UDPKpps: 40, DeliveredKpps: 40, CPUPerGB: 30},
			{Name: "gre", Title: "gretun GRE", TCPGbps: greTCP, UDPKpps: greKpps, DeliveredKpps: 2 * greKpps, CPUPerGB: 6, Error: greErr},
		}}
		if greErr != "" {
			r.Rows[1] = Result{Name: "gre", Title: "gretun GRE", Error: greErr}
		}
		r.SetRatios()
		return r.Rows
	}
	// Three rounds: figures are medians of the rounds' figures, ratios
	// medians of the rounds' ratios (TCP 2/0.5, 2.4/0.4, 1/0.2 = 4, 6, 5 →
	// 5; pps 60/40, 50/40, 80/40 → 1.5).
	got := CombineRounds([][]Result{round(0.5, 2, 60, ""), round(0.4, 2.4, 50, ""), round(0.2, 1, 80, "")})
	gre := got[1]
	if gre.TCPGbps != 2 || gre.UDPKpps != 60 || gre.DeliveredKpps != 120 || gre.CPUPerGB != 6 ||
		gre.TCPRatio != 5 || gre.PPSRatio != 1.5 || gre.DeliveredRatio != 3 || gre.Error != "" || gre.Title != "gretun GRE" {
		t.Fatalf("combined gre row: %+v", gre)
	}
	if c := got[0]; c.TCPGbps != 0.4 || c.TCPRatio != 1 {
		t.Fatalf("combined classic row: %+v", c)
	}
	// A failed round: the others' medians, and the failure named.
	got = CombineRounds([][]Result{round(0.5, 2, 60, ""), round(0.4, 0, 0, "gretun exited"), round(0.5, 3, 70, "")})
	if gre := got[1]; gre.TCPGbps != 2.5 || gre.Error != "round 2: gretun exited" {
		t.Fatalf("gre row with a failed round: TCP %v, error %q; want 2.5 and the round named", gre.TCPGbps, gre.Error)
	}
	// One round is that round.
	one := round(0.5, 2, 60, "boom")
	if d := cmp.Diff(one, CombineRounds([][]Result{one})); d != "" {
		t.Fatalf("one round changed (-want +got):\n%s", d)
	}
}

func TestFailed(t *testing.T) {
	r := sampleReport()
	if !r.Failed() {
		t.Fatal("a report with a failed row is not Failed")
	}
	r.Rows = r.Rows[:3]
	if r.Failed() {
		t.Fatal("a report without failed rows is Failed")
	}
}

func TestWriteTable(t *testing.T) {
	r := sampleReport()
	r.SetRatios()
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	wantFields := [][]string{
		{"row", "TCP", "Gbit/s", "UDP-64", "kpps", "delivered", "CPU", "s/GB", "TCP", "×classic", "pps", "×classic", "delivered", "×classic"},
		{"direct", "veth", "19.00", "400.0", "420.0", "0.80", "12.67x", "4.00x", "4.00x"},
		{"classic", "loop", "(GRE)", "1.50", "100.0", "105.0", "9.00", "1.00x", "1.00x", "1.00x"},
		{"gretun", "<GRE>", "&", "co", "3.00", "150.0", "210.0", "4.00", "2.00x", "1.50x", "2.00x"},
		{"gretun", "IPIP", "-", "-", "-", "-", "-", "-", "-"},
	}
	if len(lines) != len(wantFields)+2 {
		t.Fatalf("table has %d lines, want %d:\n%s", len(lines), len(wantFields)+2, b.String())
	}
	for i, want := range wantFields {
		if d := cmp.Diff(want, strings.Fields(lines[i])); d != "" {
			t.Errorf("line %d (-want +got):\n%s", i, d)
		}
	}
	// Columns line up: every row's TCP figure starts where the header's does.
	col := strings.Index(lines[0], "TCP Gbit/s")
	for _, l := range lines[1:5] {
		if l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("TCP column not aligned at %d in %q", col, l)
		}
	}
	if lines[5] != "gretun IPIP: FAILED: gretun exited: exit status 1" {
		t.Errorf("failure line = %q", lines[5])
	}
	if !strings.Contains(lines[6], "5s per test") || !strings.Contains(lines[6], "Test CPU") {
		t.Errorf("machine line = %q", lines[6])
	}
}

func TestWriteJSON(t *testing.T) {
	r := sampleReport()
	r.SetRatios()
	js := jsonRoundTrip(t, r)
	// The field names are the interface scripts rely on.
	for _, key := range []string{`"tcp_gbit_s": 19`, `"udp64_kpps": 400`, `"cpu_s_per_gb": 0.8`,
		`"tcp_ratio_to_classic": 2`, `"pps_ratio_to_classic": 1.5`, `"udp64_delivered_kpps": 210`, `"delivered_ratio_to_classic": 2`, `"error": "gretun exited`, `"duration_s": 5`} {
		if !strings.Contains(js, key) {
			t.Errorf("JSON lacks %s:\n%s", key, js)
		}
	}
}

// svgElem is a generic element of the chart, for checking it parses.
type svgElem struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
}

func TestWriteSVG(t *testing.T) {
	r := sampleReport()
	r.SetRatios()
	var b bytes.Buffer
	if err := r.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML with an svg root; collect rects and texts.
	dec := xml.NewDecoder(&b)
	var texts []string
	var barWidths []int
	root := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if root == "" {
			root = se.Name.Local
			continue
		}
		var el svgElem
		if err := dec.DecodeElement(&el, &se); err != nil {
			t.Fatal(err)
		}
		switch se.Name.Local {
		case "text":
			texts = append(texts, el.Text)
		case "rect":
			for _, a := range el.Attrs {
				if a.Name.Local == "y" { // bars have a y; the background has none
					for _, a := range el.Attrs {
						if a.Name.Local == "width" {
							w, _ := strconv.Atoi(a.Value)
							barWidths = append(barWidths, w)
						}
					}
				}
			}
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	for _, want := range []string{"direct veth", "gretun <GRE> & co", "failed", "19.00 (12.67x classic)", "1.50", "150.0 (1.50x classic)"} {
		found := false
		for _, s := range texts {
			found = found || s == want
		}
		if !found {
			t.Errorf("chart has no text %q; texts: %q", want, texts)
		}
	}
	// Three measured rows × two panels; each panel scaled to its maximum.
	want := []int{svgPanelW, round(1.5 / 19 * svgPanelW), round(3.0 / 19 * svgPanelW),
		svgPanelW, round(100.0 / 400 * svgPanelW), round(150.0 / 400 * svgPanelW)}
	if d := cmp.Diff(want, barWidths); d != "" {
		t.Fatalf("bar widths (-want +got):\n%s", d)
	}
}

func round(f float64) int { return int(f + 0.5) }

func TestWriteSVGNoRows(t *testing.T) {
	var b bytes.Buffer
	if err := (&Report{}).WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b.Bytes(), new(svgElem)); err != nil {
		t.Fatalf("empty chart is not XML: %v", err)
	}
	if strings.Contains(b.String(), "NaN") {
		t.Fatal("empty chart contains NaN")
	}
}

// jsonRoundTrip checks that r written as JSON reads back as r, and
// returns the JSON.
func jsonRoundTrip(t *testing.T, r *Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, b.String())
	}
	if d := cmp.Diff(*r, got); d != "" {
		t.Fatalf("JSON round trip (-want +got):\n%s", d)
	}
	return b.String()
}
