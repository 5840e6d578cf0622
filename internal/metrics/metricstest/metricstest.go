// Package metricstest scrapes a /metrics endpoint in tests and reads the
// values of its series, parsed with the Prometheus text parser.
//
//	m := metricstest.Scrape(t, base+"/metrics", token)
//	n := m.Value("atrax_mcp_requests_total", map[string]string{"method": "tools/call", "outcome": "ok"})
package metricstest

import (
	"io"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are the metric families of one scrape, by name.
type Families map[string]*dto.MetricFamily

// Scrape GETs url in the Prometheus text format, with a bearer token unless
// token is empty, and parses the answer; the test fails unless it is 200.
func Scrape(t testing.TB, url, token string) Families {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape %s: status %d: %s", url, resp.StatusCode, body)
	}
	return Parse(t, resp.Body)
}

// Parse reads the Prometheus text format.
func Parse(t testing.TB, r io.Reader) Families {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("parse the Prometheus text format: %v", err)
	}
	return fams
}

// Value returns the sum of the series of the family name whose labels
// include every one of labels: counters, gauges and untyped values as they
// are, histograms and summaries by their sample count. It is 0 when no
// series matches.
func (f Families) Value(name string, labels map[string]string) float64 {
	fam := f[name]
	if fam == nil {
		return 0
	}
	var sum float64
	for _, m := range fam.GetMetric() {
		if !matches(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Summary != nil:
			sum += float64(m.GetSummary().GetSampleCount())
		}
	}
	return sum
}

// Has reports whether the family name has a series with labels.
func (f Families) Has(name string, labels map[string]string) bool {
	for _, m := range f[name].GetMetric() {
		if matches(m, labels) {
			return true
		}
	}
	return false
}

func matches(m *dto.Metric, labels map[string]string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range labels {
		if have[k] != v { // an absent label is an empty one
			return false
		}
	}
	return true
}
