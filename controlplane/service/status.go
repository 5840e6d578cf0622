package service

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atrax-mcp/atrax/controlplane/fleet"
	"github.com/atrax-mcp/atrax/controlplane/registry"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// Status implements atraxv1.StatusServiceServer. Both RPCs are public, so
// they show no env values, headers, commands or URLs: only names and state.
type Status struct {
	atraxv1.UnimplementedStatusServiceServer
	Registry *registry.Registry
	Fleet    *fleet.Fleet
	Version  string
	Started  time.Time
}

var _ atraxv1.StatusServiceServer = (*Status)(nil)

func (s *Status) GetHealth(context.Context, *atraxv1.GetHealthRequest) (*atraxv1.GetHealthResponse, error) {
	return &atraxv1.GetHealthResponse{Status: "ok", Component: "controlplane", Version: s.Version}, nil
}

func (s *Status) GetStatus(context.Context, *atraxv1.GetStatusRequest) (*atraxv1.GetStatusResponse, error) {
	servers, version := s.Registry.List()
	out := &atraxv1.GetStatusResponse{
		Status:          "ok",
		Version:         s.Version,
		StartTime:       timestamppb.New(s.Started),
		RegistryVersion: version,
		Edges:           s.Fleet.Edges(),
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
