// Package serverdef converts a server definition between its two forms: the
// config file's (internal/config) and the API's (atraxv1.Server). Both the
// control plane, which stores API servers and publishes config ones, and
// the edge, which starts them, need the same mapping, so it lives once here.
package serverdef

import (
	"maps"
	"slices"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/config"
)

// FromConfig returns the API form of a config server. Read-only fields
// (source, state, times) are left for the registry to set.
func FromConfig(s config.Server) *atraxv1.Server {
	out := &atraxv1.Server{
		Name:          s.Name,
		TransportType: s.TransportType,
		Command:       s.Command,
		Args:          slices.Clone(s.Args),
		Env:           maps.Clone(s.Env),
		Cwd:           s.Cwd,
		Url:           s.URL,
		Headers:       maps.Clone(s.Headers),
		Description:   s.Description,
		Tags:          slices.Clone(s.Tags),
		Disabled:      s.Disabled,
		Prefix:        s.Prefix,
		Timeout:       s.Timeout,
		Isolation:     s.Isolation,
		PinTools:      s.PinTools,
		MaxSessions:   int32(s.MaxSessions),
	}
	if len(s.Tools.Allow) > 0 || len(s.Tools.Deny) > 0 {
		out.Tools = &atraxv1.ToolFilter{Allow: slices.Clone(s.Tools.Allow), Deny: slices.Clone(s.Tools.Deny)}
	}
	return out
}

// ToConfig returns the config form of an API server, for validation and for
// starting it.
func ToConfig(s *atraxv1.Server) config.Server {
	out := config.Server{
		Name:          s.GetName(),
		TransportType: s.GetTransportType(),
		Command:       s.GetCommand(),
		Args:          slices.Clone(s.GetArgs()),
		Env:           maps.Clone(s.GetEnv()),
		Cwd:           s.GetCwd(),
		URL:           s.GetUrl(),
		Headers:       maps.Clone(s.GetHeaders()),
		Description:   s.GetDescription(),
		Tags:          slices.Clone(s.GetTags()),
		Disabled:      s.GetDisabled(),
		Prefix:        s.GetPrefix(),
		Timeout:       s.GetTimeout(),
		Isolation:     s.GetIsolation(),
		PinTools:      s.GetPinTools(),
		MaxSessions:   int(s.GetMaxSessions()),
	}
	if t := s.GetTools(); t != nil {
		out.Tools = config.ToolFilter{Allow: slices.Clone(t.GetAllow()), Deny: slices.Clone(t.GetDeny())}
	}
	return out
}
