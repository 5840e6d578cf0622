package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/metrics"
	"github.com/atrax-mcp/atrax/internal/metrics/metricstest"
)

func TestVerifyResult(t *testing.T) {
	for err, want := range map[error]string{
		nil:                                     "ok",
		authn.ErrNoToken:                        "no_token",
		authn.ErrInvalidToken:                   "invalid",
		authn.ErrNotYetValid:                    "invalid",
		authn.ErrExpired:                        "expired",
		fmt.Errorf("jwt: %w", authn.ErrRevoked): "revoked",
		errors.New("something else went wrong"): "invalid",
	} {
		if got := metrics.VerifyResult(err); got != want {
			t.Errorf("VerifyResult(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestHandlerAccessAndCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	v := metrics.CountingVerifier{
		Verifier: authn.NewVerifier(authn.Options{Mode: authn.ModeToken, Static: []authn.StaticToken{{Name: "ops", Token: "s3cret"}}}),
		Counts:   metrics.NewVerifications(reg),
	}
	srv := httptest.NewServer(metrics.Handler(reg, config.MetricsToken, v))
	defer srv.Close()
	public := httptest.NewServer(metrics.Handler(reg, config.MetricsPublic, v))
	defer public.Close()

	for _, c := range []struct {
		url, header string
		want        int
	}{
		{srv.URL, "", http.StatusUnauthorized},
		{srv.URL, "Bearer nope", http.StatusUnauthorized},
		{srv.URL + "?token=s3cret", "", http.StatusOK},
		{public.URL, "", http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodGet, c.url, nil)
		if c.header != "" {
			req.Header.Set("Authorization", c.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET %s (Authorization %q): %d, want %d", c.url, c.header, resp.StatusCode, c.want)
		}
	}
	if _, err := v.Verify(context.Background(), "s3cret"); err != nil {
		t.Fatal(err)
	}
	m := metricstest.Scrape(t, srv.URL, "s3cret")
	for result, want := range map[string]float64{"ok": 3, "no_token": 1, "invalid": 1, "expired": 0, "revoked": 0} {
		if got := m.Value("atrax_token_verifications_total", map[string]string{"result": result}); got != want {
			t.Errorf("verifications %s = %v, want %v", result, got, want)
		}
	}
}
