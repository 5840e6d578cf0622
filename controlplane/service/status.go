package service

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atrax-mcp/atrax/controlplane/fleet"
	"github.com/atrax-mcp/atrax/controlplane/registry"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// listEdgesTimeout bounds GetStatus's read of the edges connected to the
// other control planes.
const listEdgesTimeout = 2 * time.Second

// Status implements atraxv1.StatusServiceServer. Both RPCs are public, so
// they show no env values, headers, commands or URLs: only names and state.
type Status struct {
	atraxv1.UnimplementedStatusServiceServer
	Registry *registry.Registry
	// Fleet lists the edges; those of other control planes too when it
	// shares a store with them.
	Fleet   *fleet.Fleet
	Version string
	Started time.Time
	// Ready, when set, says why the control plane is not ready (its store
	// is out of reach), nil while it is. Its text is shown to anyone.
	Ready func() error
}

var _ atraxv1.StatusServiceServer = (*Status)(nil)

func (s *Status) ready() error {
	if s.Ready == nil {
		return nil
	}
	return s.Ready()
}

// GetHealth answers "ok", or "degraded" with the reason while the control
// plane is not ready.
func (s *Status) GetHealth(context.Context, *atraxv1.GetHealthRequest) (*atraxv1.GetHealthResponse, error) {
	out := &atraxv1.GetHealthResponse{Status: "ok", Component: "controlplane", Version: s.Version}
	if err := s.ready(); err != nil {
		out.Status, out.Reason = "degraded", err.Error()
	}
	return out, nil
}

// GetStatus lists the servers and the edges: those connected to every
// control plane sharing the store, or, while the store is out of reach,
// this one's only ("degraded", with the reason).
func (s *Status) GetStatus(ctx context.Context, _ *atraxv1.GetStatusRequest) (*atraxv1.GetStatusResponse, error) {
	servers, version := s.Registry.List()
	out := &atraxv1.GetStatusResponse{
		Status:          "ok",
		Version:         s.Version,
		StartTime:       timestamppb.New(s.Started),
		RegistryVersion: version,
	}
	if err := s.ready(); err != nil {
		out.Status, out.Reason = "degraded", err.Error()+"; the edges of other control planes are not listed"
		out.Edges = s.Fleet.Edges()
	} else {
		ctx, cancel := context.WithTimeout(ctx, listEdgesTimeout)
		edges, err := s.Fleet.All(ctx)
		cancel()
		if err != nil {
			out.Status, out.Reason = "degraded", "the store did not answer: the edges of other control planes are not listed"
		}
		out.Edges = edges
	}
	for _, srv := range servers {
		out.Servers = append(out.Servers, &atraxv1.ServerStatus{
			Name:          srv.GetName(),
			TransportType: transportOf(srv),
			Source:        srv.GetSource(),
			State:         srv.GetState(),
			Disabled:      srv.GetDisabled(),
			Description:   srv.GetDescription(),
		})
	}
	return out, nil
}

func transportOf(s *atraxv1.Server) string {
	switch {
	case s.GetTransportType() != "":
		return s.GetTransportType()
	case s.GetCommand() != "":
		return "stdio"
	default:
		return "http"
	}
}
