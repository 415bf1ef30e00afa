// Package metricstest reads a Prometheus text-format scrape back, for the
// tests of gretun's metrics (package metrics, the end-to-end and soak
// tests), with the Prometheus parser rather than string matching.
package metricstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are the metric families of one scrape, by name.
type Families map[string]*dto.MetricFamily

// Parse reads the text format.
func Parse(r io.Reader) (Families, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// Scrape fetches and parses url (http://ADDR/metrics).
func Scrape(url string) (Families, error) {
	return get(&http.Client{Timeout: 10 * time.Second}, url)
}

// ScrapeConn fetches and parses /metrics over c, a connection already
// made (e.g. from inside another network namespace), and closes it.
func ScrapeConn(c net.Conn) (Families, error) {
	used := false
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(context.Context, string, string) (net.Conn, error) {
		if used {
			return nil, errors.New("ScrapeConn: one connection only")
		}
		used = true
		return c, nil
	}}
	defer tr.CloseIdleConnections()
	return get(&http.Client{Transport: tr, Timeout: 10 * time.Second}, "http://"+c.RemoteAddr().String()+"/metrics")
}

func get(c *http.Client, url string) (Families, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		return nil, fmt.Errorf("GET %s: content type %q, not the text format", url, ct)
	}
	return Parse(resp.Body)
}

// Value returns the value of the sample of metric name whose labels
// include every pair of labels ("k1", "v1", "k2", "v2", …), and whether
// exactly one sample matches.
func (f Families) Value(name string, labels ...string) (float64, bool) {
	mf := f[name]
	if mf == nil {
		return 0, false
	}
	var v float64
	found := 0
	for _, m := range mf.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		found++
		switch {
		case m.Counter != nil:
			v = m.Counter.GetValue()
		case m.Gauge != nil:
			v = m.Gauge.GetValue()
		case m.Untyped != nil:
			v = m.Untyped.GetValue()
		}
	}
	return v, found == 1
}

// Sum adds the samples of metric name whose labels include labels.
func (f Families) Sum(name string, labels ...string) float64 {
	var sum float64
	for _, m := range f[name].GetMetric() {
		if hasLabels(m, labels) {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		ok := false
		for _, l := range m.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
