package edge

import (
	"time"

	"github.com/atrax-mcp/atrax/edge/limits"
	"github.com/atrax-mcp/atrax/internal/config"
)

// newLimiter is the limits object of the config as the MCP endpoints
// enforce it (per token and per edge; the bound per upstream is each
// serverRef's gate).
func newLimiter(l config.Limits) *limits.Limiter {
	return limits.New(limits.Options{
		RequestsPerSecond:   l.RequestsPerSecond,
		Burst:               l.Burst,
		MaxInFlightPerToken: l.MaxInFlightPerToken,
		MaxInFlight:         l.MaxInFlight,
		MaxSessionsPerToken: l.MaxSessionsPerToken,
		MaxSessions:         l.MaxSessions,
	})
}

// orDefault is d, or def when d is not set (a Config built by hand).
func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// writeTimeout bounds writing an answer that is not a stream.
func writeTimeout(h config.HTTP) time.Duration {
	return orDefault(h.WriteTimeout, config.DefaultWriteTimeout)
}
