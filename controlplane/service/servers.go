package service

import (
	"context"

	"github.com/atrax-mcp/atrax/controlplane/fleet"
	"github.com/atrax-mcp/atrax/controlplane/registry"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// Servers implements atraxv1.ServerServiceServer.
type Servers struct {
	atraxv1.UnimplementedServerServiceServer
	Registry *registry.Registry
	Audit    *Auditor
	// Fleet is what the edges report: the definitions ApproveServerTools
	// approves; those of other control planes' edges too when it shares a
	// store with them.
	Fleet *fleet.Fleet
	// Stopping is closed when the control plane shuts down; watch streams
	// then end, so that a graceful stop need not wait for them.
	Stopping <-chan struct{}
}

var _ atraxv1.ServerServiceServer = (*Servers)(nil)

func (s *Servers) ListServers(ctx context.Context, _ *atraxv1.ListServersRequest) (*atraxv1.ListServersResponse, error) {
	list, _ := s.Registry.List()
	return &atraxv1.ListServersResponse{Servers: list}, nil
}

func (s *Servers) GetServer(ctx context.Context, req *atraxv1.GetServerRequest) (*atraxv1.GetServerResponse, error) {
	if req.GetName() == "" {
		return nil, required("name")
	}
	srv, err := s.Registry.Get(req.GetName())
	if err != nil {
		return nil, toStatus(err)
	}
	return &atraxv1.GetServerResponse{Server: srv}, nil
}

func (s *Servers) CreateServer(ctx context.Context, req *atraxv1.CreateServerRequest) (*atraxv1.CreateServerResponse, error) {
	if req.GetServer() == nil {
		return nil, required("server")
	}
	srv, err := s.Registry.Create(ctx, req.GetServer())
	s.Audit.Change(ctx, "server.create", req.GetServer().GetName(), err)
	if err != nil {
		return nil, toStatus(err)
	}
	return &atraxv1.CreateServerResponse{Server: srv}, nil
}

func (s *Servers) UpdateServer(ctx context.Context, req *atraxv1.UpdateServerRequest) (*atraxv1.UpdateServerResponse, error) {
	if req.GetServer().GetName() == "" {
		return nil, required("server.name")
	}
	srv, err := s.Registry.Update(ctx, req.GetServer(), req.GetUpdateMask().GetPaths())
	s.Audit.Change(ctx, "server.update", req.GetServer().GetName(), err)
	if err != nil {
		return nil, toStatus(err)
	}
	return &atraxv1.UpdateServerResponse{Server: srv}, nil
}

func (s *Servers) DeleteServer(ctx context.Context, req *atraxv1.DeleteServerRequest) (*atraxv1.DeleteServerResponse, error) {
	if req.GetName() == "" {
		return nil, required("name")
	}
	err := s.Registry.Delete(ctx, req.GetName())
	s.Audit.Change(ctx, "server.delete", req.GetName(), err)
	if err != nil {
		return nil, toStatus(err)
	}
	return &atraxv1.DeleteServerResponse{}, nil
}

func (s *Servers) StartServer(ctx context.Context, req *atraxv1.StartServerRequest) (*atraxv1.StartServerResponse, error) {
	srv, err := s.setState(ctx, "server.start", req.GetName(), true)
	if err != nil {
		return nil, err
	}
	return &atraxv1.StartServerResponse{Server: srv}, nil
}

func (s *Servers) StopServer(ctx context.Context, req *atraxv1.StopServerRequest) (*atraxv1.StopServerResponse, error) {
	srv, err := s.setState(ctx, "server.stop", req.GetName(), false)
	if err != nil {
		return nil, err
	}
	return &atraxv1.StopServerResponse{Server: srv}, nil
}

func (s *Servers) setState(ctx context.Context, action, name string, running bool) (*atraxv1.Server, error) {
	if name == "" {
		return nil, required("name")
	}
	srv, err := s.Registry.SetState(ctx, name, running)
	s.Audit.Change(ctx, action, name, err)
	return srv, toStatus(err)
}

func (s *Servers) RestartServer(ctx context.Context, req *atraxv1.RestartServerRequest) (*atraxv1.RestartServerResponse, error) {
	if req.GetName() == "" {
		return nil, required("name")
	}
	srv, err := s.Registry.Restart(ctx, req.GetName())
	s.Audit.Change(ctx, "server.restart", req.GetName(), err)
	if err != nil {
		return nil, toStatus(err)
	}
	return &atraxv1.RestartServerResponse{Server: srv}, nil
}

func (s *Servers) WatchServers(_ *atraxv1.WatchServersRequest, stream atraxv1.ServerService_WatchServersServer) error {
	servers, version, changes, lagged, stop := s.Registry.Watch()
	defer stop()
	if err := stream.Send(&atraxv1.WatchServersResponse{Event: registry.EventSnapshot, Servers: servers, Version: version}); err != nil {
		return err
	}
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.Stopping:
			return errShuttingDown
		case c, ok := <-changes:
			if !ok {
				if lagged() {
					return toStatus(registry.ErrWatchLagged)
				}
				return nil
			}
			if err := stream.Send(&atraxv1.WatchServersResponse{Event: c.Event, Servers: []*atraxv1.Server{c.Server}, Version: c.Version}); err != nil {
				return err
			}
		}
	}
}
