package config

import (
	"math"
	"strconv"

	"github.com/tailscale/hujson"
)

// Defaults of the "limits" object. They are generous: they exist so that
// one client cannot take an edge down, not to shape ordinary traffic.
const (
	DefaultMaxInFlightPerToken    = 256
	DefaultMaxSessionsPerToken    = 1000
	DefaultMaxEdgeInFlight        = 4096
	DefaultMaxEdgeSessions        = 10000
	DefaultMaxInFlightPerUpstream = 256
)

// Limits is the "limits" object: what keeps one client from starving the
// others on an edge. A limit of 0 means none.
type Limits struct {
	// RequestsPerSecond is each token's (principal's) sustained rate of
	// requests on the MCP endpoints; 0 means no rate limit.
	RequestsPerSecond float64
	// Burst is how many requests a token may make at once above the rate;
	// 0 means RequestsPerSecond rounded up (at least 1).
	Burst int
	// MaxInFlightPerToken caps the requests of one token being answered at
	// once on one edge.
	MaxInFlightPerToken int
	// MaxSessionsPerToken caps the sessions one token holds open on one
	// edge.
	MaxSessionsPerToken int
	// MaxInFlight caps the requests being answered at once on one edge.
	MaxInFlight int
	// MaxSessions caps the sessions open on one edge.
	MaxSessions int
	// MaxInFlightPerUpstream caps the calls waiting on one upstream server
	// on one edge; a call beyond it fails at once.
	MaxInFlightPerUpstream int
}

func defaultLimits() Limits {
	return Limits{
		MaxInFlightPerToken:    DefaultMaxInFlightPerToken,
		MaxSessionsPerToken:    DefaultMaxSessionsPerToken,
		MaxInFlight:            DefaultMaxEdgeInFlight,
		MaxSessions:            DefaultMaxEdgeSessions,
		MaxInFlightPerUpstream: DefaultMaxInFlightPerUpstream,
	}
}

// limits decodes the "limits" object over the defaults in l.
func (d *decoder) limits(path string, v *hujson.Value, l Limits) Limits {
	members, ok := d.object(path, v)
	if !ok {
		return l
	}
	burstPath := ""
	for _, m := range members {
		var target *int
		switch m.key {
		case "requestsPerSecond":
			if f, ok := d.nonNegativeNumber(m.path, m.val, 1e6); ok {
				l.RequestsPerSecond = f
			}
			continue
		case "burst":
			target, burstPath = &l.Burst, m.path
		case "maxInFlightPerToken":
			target = &l.MaxInFlightPerToken
		case "maxSessionsPerToken":
			target = &l.MaxSessionsPerToken
		case "maxInFlight":
			target = &l.MaxInFlight
		case "maxSessions":
			target = &l.MaxSessions
		case "maxInFlightPerUpstream":
			target = &l.MaxInFlightPerUpstream
		default:
			d.unknown(m)
			continue
		}
		if n, ok := d.nonNegativeInt(m.path, m.val, 1<<20); ok {
			*target = n
		}
	}
	if l.Burst > 0 && l.RequestsPerSecond == 0 {
		d.add(burstPath, "needs limits.requestsPerSecond: without a rate there is nothing to burst above")
	}
	return l
}

// nonNegativeInt reads a whole number from 0 to max.
func (d *decoder) nonNegativeInt(path string, v *hujson.Value, max int) (int, bool) {
	msg := "must be a whole number from 0 to " + strconv.Itoa(max) + " (0 means no limit)"
	lit, ok := v.Value.(hujson.Literal)
	if !ok || lit.Kind() != '0' {
		d.add(path, msg)
		return 0, false
	}
	n, err := strconv.Atoi(string(lit))
	if err != nil || n < 0 || n > max {
		d.add(path, msg)
		return 0, false
	}
	return n, true
}

// nonNegativeNumber reads a number (fractions allowed) from 0 to max.
func (d *decoder) nonNegativeNumber(path string, v *hujson.Value, max float64) (float64, bool) {
	msg := "must be a number from 0 to " + strconv.FormatFloat(max, 'f', -1, 64) + " (0 means no limit)"
	lit, ok := v.Value.(hujson.Literal)
	if !ok || lit.Kind() != '0' {
		d.add(path, msg)
		return 0, false
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > max {
		d.add(path, msg)
		return 0, false
	}
	return f, true
}
