// Package metrics holds what the edge and the control plane share of their
// Prometheus metrics: a registry of their own for each (never the global
// default one), the /metrics handler and the access rule it enforces
// (http.metrics in the config), and the count of token verifications by
// result.
package metrics

import (
	"context"
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/config"
)

// NewRegistry returns a registry with the Go runtime's and the process's
// collectors: each component makes its own.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Verifier checks tokens (authn.Verifier).
type Verifier interface {
	Verify(ctx context.Context, token string) (*authn.Principal, error)
}

// Handler serves the metrics g gathers, in the Prometheus text format (or
// OpenMetrics when the scraper asks for it), to the callers access lets
// through: config.MetricsPublic lets everyone, config.MetricsToken (and
// anything else) only callers with a token v accepts, in Authorization:
// Bearer or ?token=. config.MetricsOff should not be served at all.
func Handler(g prometheus.Gatherer, access string, v Verifier) http.Handler {
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{EnableOpenMetrics: true})
	if access == config.MetricsPublic {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := authn.BearerToken(r.Header.Get("Authorization"))
		if tok == "" {
			tok = r.URL.Query().Get("token")
		}
		if _, err := v.Verify(r.Context(), tok); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="atrax"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_token","error_description":"/metrics needs a valid token (http.metrics is \"token\")"}` + "\n"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Results of a token verification, the values of the result label.
const (
	ResultOK      = "ok"
	ResultNoToken = "no_token"
	ResultInvalid = "invalid"
	ResultExpired = "expired"
	ResultRevoked = "revoked"
)

// VerifyResult names the outcome of authn's Verify.
func VerifyResult(err error) string {
	switch {
	case err == nil:
		return ResultOK
	case errors.Is(err, authn.ErrNoToken):
		return ResultNoToken
	case errors.Is(err, authn.ErrExpired):
		return ResultExpired
	case errors.Is(err, authn.ErrRevoked):
		return ResultRevoked
	}
	return ResultInvalid
}

// Verifications counts token verifications by result
// (atrax_token_verifications_total).
type Verifications struct {
	ok, noToken, invalid, expired, revoked prometheus.Counter
}

// NewVerifications registers the counter with reg; every result starts at
// zero.
func NewVerifications(reg prometheus.Registerer) *Verifications {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "atrax_token_verifications_total",
		Help: "Token verifications, by result: ok, no_token, invalid, expired, revoked.",
	}, []string{"result"})
	reg.MustRegister(vec)
	return &Verifications{
		ok:      vec.WithLabelValues(ResultOK),
		noToken: vec.WithLabelValues(ResultNoToken),
		invalid: vec.WithLabelValues(ResultInvalid),
		expired: vec.WithLabelValues(ResultExpired),
		revoked: vec.WithLabelValues(ResultRevoked),
	}
}

// Observe counts one verification that ended with err.
func (c *Verifications) Observe(err error) {
	switch VerifyResult(err) {
	case ResultOK:
		c.ok.Inc()
	case ResultNoToken:
		c.noToken.Inc()
	case ResultExpired:
		c.expired.Inc()
	case ResultRevoked:
		c.revoked.Inc()
	default:
		c.invalid.Inc()
	}
}

// CountingVerifier is an authn.Verifier whose Verify calls are counted.
type CountingVerifier struct {
	*authn.Verifier
	Counts *Verifications
}

// Verify verifies token with the wrapped verifier and counts the result.
func (v CountingVerifier) Verify(ctx context.Context, token string) (*authn.Principal, error) {
	p, err := v.Verifier.Verify(ctx, token)
	v.Counts.Observe(err)
	return p, err
}
