package config

import (
	"strconv"
	"time"

	"github.com/tailscale/hujson"
)

// Defaults of the "http" object.
const (
	DefaultMaxBodyBytes       = 4 << 20
	DefaultSessionIdleTimeout = 30 * time.Minute
	DefaultKeepAlive          = 15 * time.Second
	DefaultPageSize           = 500
	DefaultReadHeaderTimeout  = 10 * time.Second
	DefaultReadTimeout        = time.Minute
	DefaultWriteTimeout       = time.Minute
	DefaultIdleTimeout        = 2 * time.Minute
)

// Access to /metrics (http.metrics).
const (
	MetricsToken  = "token"  // any valid token (the default)
	MetricsPublic = "public" // no token
	MetricsOff    = "off"    // not served
)

// HTTP is the "http" object: how the edge's MCP endpoints treat clients.
type HTTP struct {
	// AllowedHosts are the Host header values the MCP endpoints accept, on
	// top of loopback names and the configured host (DNS rebinding
	// protection). "*" accepts any; "*.example.com" matches subdomains.
	AllowedHosts []string
	// AllowedOrigins are the browser origins accepted, and answered with
	// CORS headers. Empty means loopback origins only; "*" means any.
	AllowedOrigins []string
	// MaxBodyBytes caps one request body (413 beyond it).
	MaxBodyBytes int64
	// SessionIdleTimeout ends a session without activity or open stream.
	SessionIdleTimeout time.Duration
	// KeepAlive is the interval of keep-alive comments on idle SSE streams.
	KeepAlive time.Duration
	// PageSize is the number of items in one page of a merged list.
	PageSize int
	// Metrics is who may read /metrics: MetricsToken, MetricsPublic or
	// MetricsOff. It rules the edge's /metrics and the control plane's
	// (controlPlane.metricsAddress).
	Metrics string
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included. Streams
	// and long calls are not cut by it: it ends once the body is read.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response that is not a stream (SSE
	// streams live as long as the client keeps them).
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout time.Duration
}

func defaultHTTP() HTTP {
	return HTTP{
		MaxBodyBytes:       DefaultMaxBodyBytes,
		SessionIdleTimeout: DefaultSessionIdleTimeout,
		KeepAlive:          DefaultKeepAlive,
		PageSize:           DefaultPageSize,
		Metrics:            MetricsToken,
		ReadHeaderTimeout:  DefaultReadHeaderTimeout,
		ReadTimeout:        DefaultReadTimeout,
		WriteTimeout:       DefaultWriteTimeout,
		IdleTimeout:        DefaultIdleTimeout,
	}
}

// http decodes the "http" object over the defaults in h.
func (d *decoder) http(path string, v *hujson.Value, h HTTP) HTTP {
	members, ok := d.object(path, v)
	if !ok {
		return h
	}
	for _, m := range members {
		switch m.key {
		case "allowedHosts":
			h.AllowedHosts, _ = d.strings(m.path, m.val, true, func(p, s string) bool {
				if s == "" {
					d.add(p, "must not be empty")
					return false
				}
				return true
			})
		case "allowedOrigins":
			h.AllowedOrigins, _ = d.strings(m.path, m.val, true, func(p, s string) bool {
				if s == "" {
					d.add(p, "must not be empty")
					return false
				}
				return true
			})
		case "maxBodyBytes":
			if n, ok := d.positiveInt(m.path, m.val, 1<<30); ok {
				h.MaxBodyBytes = int64(n)
			}
		case "sessionIdleTimeout":
			if dur, ok := d.duration(m.path, m.val); ok {
				h.SessionIdleTimeout = dur
			}
		case "keepAlive":
			if dur, ok := d.duration(m.path, m.val); ok {
				h.KeepAlive = dur
			}
		case "pageSize":
			if n, ok := d.positiveInt(m.path, m.val, 100000); ok {
				h.PageSize = n
			}
		case "readHeaderTimeout":
			if dur, ok := d.duration(m.path, m.val); ok {
				h.ReadHeaderTimeout = dur
			}
		case "readTimeout":
			if dur, ok := d.duration(m.path, m.val); ok {
				h.ReadTimeout = dur
			}
		case "writeTimeout":
			if dur, ok := d.duration(m.path, m.val); ok {
				h.WriteTimeout = dur
			}
		case "idleTimeout":
			if dur, ok := d.duration(m.path, m.val); ok {
				h.IdleTimeout = dur
			}
		case "metrics":
			if s, ok := d.oneOf(m.path, m.val, MetricsToken, MetricsPublic, MetricsOff); ok {
				h.Metrics = s
			}
		default:
			d.unknown(m)
		}
	}
	return h
}

// positiveInt reads a whole number from 1 to max.
func (d *decoder) positiveInt(path string, v *hujson.Value, max int) (int, bool) {
	msg := "must be a whole number from 1 to " + strconv.Itoa(max)
	lit, ok := v.Value.(hujson.Literal)
	if !ok || lit.Kind() != '0' {
		d.add(path, msg)
		return 0, false
	}
	n, err := strconv.Atoi(string(lit))
	if err != nil || n < 1 || n > max {
		d.add(path, msg)
		return 0, false
	}
	return n, true
}
