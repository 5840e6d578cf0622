package service_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/atrax-mcp/atrax/controlplane/registry"
	"github.com/atrax-mcp/atrax/controlplane/service"
	"github.com/atrax-mcp/atrax/controlplane/store"
	"github.com/atrax-mcp/atrax/controlplane/store/boltstore"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/config"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "atrax.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newServers(t *testing.T) (*service.Servers, store.Store) {
	t.Helper()
	st := openStore(t)
	r, err := registry.Open(context.Background(), registry.Options{
		Store:  st,
		Config: []config.Server{{Name: "filed", URL: "https://filed.example.com/mcp"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &service.Servers{Registry: r, Audit: &service.Auditor{Store: st}}, st
}

// violations returns the BadRequest field names of err.
func violations(err error) []string {
	var out []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, v.GetField())
			}
		}
	}
	return out
}

func TestServers(t *testing.T) {
	s, st := newServers(t)
	ctx := authn.NewContext(context.Background(), &authn.Principal{Subject: "static:ops"})
	web := &atraxv1.Server{Name: "web", Url: "https://web.example.com/mcp"}

	type call struct {
		name   string
		do     func() error
		code   codes.Code
		fields []string // BadRequest fields
	}
	calls := []call{
		{"create without server", func() error { _, err := s.CreateServer(ctx, &atraxv1.CreateServerRequest{}); return err }, codes.InvalidArgument, []string{"server"}},
		{"create", func() error { _, err := s.CreateServer(ctx, &atraxv1.CreateServerRequest{Server: web}); return err }, codes.OK, nil},
		{"create again", func() error { _, err := s.CreateServer(ctx, &atraxv1.CreateServerRequest{Server: web}); return err }, codes.AlreadyExists, nil},
		{"create invalid", func() error {
			_, err := s.CreateServer(ctx, &atraxv1.CreateServerRequest{Server: &atraxv1.Server{Name: "bad", Url: "ftp://x"}})
			return err
		}, codes.InvalidArgument, []string{"url"}},
		{"create stdio", func() error {
			_, err := s.CreateServer(ctx, &atraxv1.CreateServerRequest{Server: &atraxv1.Server{Name: "sh", Command: "bash"}})
			return err
		}, codes.PermissionDenied, nil},
		{"get without name", func() error { _, err := s.GetServer(ctx, &atraxv1.GetServerRequest{}); return err }, codes.InvalidArgument, []string{"name"}},
		{"get missing", func() error { _, err := s.GetServer(ctx, &atraxv1.GetServerRequest{Name: "nope"}); return err }, codes.NotFound, nil},
		{"update without name", func() error { _, err := s.UpdateServer(ctx, &atraxv1.UpdateServerRequest{}); return err }, codes.InvalidArgument, []string{"server.name"}},
		{"update with mask", func() error {
			_, err := s.UpdateServer(ctx, &atraxv1.UpdateServerRequest{
				Server:     &atraxv1.Server{Name: "web", Description: "d"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"description"}},
			})
			return err
		}, codes.OK, nil},
		{"update read-only path", func() error {
			_, err := s.UpdateServer(ctx, &atraxv1.UpdateServerRequest{
				Server:     &atraxv1.Server{Name: "web"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"state"}},
			})
			return err
		}, codes.InvalidArgument, []string{"update_mask"}},
		{"update config server", func() error {
			_, err := s.UpdateServer(ctx, &atraxv1.UpdateServerRequest{Server: &atraxv1.Server{Name: "filed", Url: "https://x.example.com"}})
			return err
		}, codes.FailedPrecondition, nil},
		{"stop without name", func() error { _, err := s.StopServer(ctx, &atraxv1.StopServerRequest{}); return err }, codes.InvalidArgument, []string{"name"}},
		{"stop", func() error { _, err := s.StopServer(ctx, &atraxv1.StopServerRequest{Name: "filed"}); return err }, codes.OK, nil},
		{"start missing", func() error { _, err := s.StartServer(ctx, &atraxv1.StartServerRequest{Name: "nope"}); return err }, codes.NotFound, nil},
		{"start", func() error { _, err := s.StartServer(ctx, &atraxv1.StartServerRequest{Name: "filed"}); return err }, codes.OK, nil},
		{"restart without name", func() error { _, err := s.RestartServer(ctx, &atraxv1.RestartServerRequest{}); return err }, codes.InvalidArgument, []string{"name"}},
		{"restart", func() error { _, err := s.RestartServer(ctx, &atraxv1.RestartServerRequest{Name: "web"}); return err }, codes.OK, nil},
		{"delete config server", func() error { _, err := s.DeleteServer(ctx, &atraxv1.DeleteServerRequest{Name: "filed"}); return err }, codes.FailedPrecondition, nil},
		{"delete without name", func() error { _, err := s.DeleteServer(ctx, &atraxv1.DeleteServerRequest{}); return err }, codes.InvalidArgument, []string{"name"}},
		{"delete", func() error { _, err := s.DeleteServer(ctx, &atraxv1.DeleteServerRequest{Name: "web"}); return err }, codes.OK, nil},
	}
	for _, c := range calls {
		err := c.do()
		if status.Code(err) != c.code {
			t.Errorf("%s: %v, want %v", c.name, err, c.code)
			continue
		}
		if diff := cmp.Diff(c.fields, violations(err)); diff != "" {
			t.Errorf("%s: field violations (-want +got):\n%s", c.name, diff)
		}
	}

	list, err := s.ListServers(ctx, &atraxv1.ListServersRequest{})
	if err != nil || len(list.GetServers()) != 1 || list.GetServers()[0].GetName() != "filed" {
		t.Errorf("ListServers = %v, %v; want filed alone", list, err)
	}

	// Every attempted change is in the audit log, with its caller and
	// outcome; reads are not.
	events, _, err := st.ListAudit(context.Background(), store.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	type rec struct{ Action, Server, Outcome, Actor string }
	var got []rec
	for i := len(events) - 1; i >= 0; i-- { // oldest first
		e := events[i]
		got = append(got, rec{e.GetAction(), e.GetServer(), e.GetOutcome(), e.GetActor()})
	}
	want := []rec{
		{"server.create", "web", "ok", "static:ops"},
		{"server.create", "web", "error", "static:ops"},
		{"server.create", "bad", "error", "static:ops"},
		{"server.create", "sh", "error", "static:ops"},
		{"server.update", "web", "ok", "static:ops"},
		{"server.update", "web", "error", "static:ops"},
		{"server.update", "filed", "error", "static:ops"},
		{"server.stop", "filed", "ok", "static:ops"},
		{"server.start", "nope", "error", "static:ops"},
		{"server.start", "filed", "ok", "static:ops"},
		{"server.restart", "web", "ok", "static:ops"},
		{"server.delete", "filed", "error", "static:ops"},
		{"server.delete", "web", "ok", "static:ops"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit log (-want +got):\n%s", diff)
	}
}

// watchStream is the server side of a WatchServers stream; Send blocks
// until the test takes the message.
type watchStream struct {
	grpc.ServerStream
	ctx  context.Context
	sent chan *atraxv1.WatchServersResponse
}

func (w *watchStream) Context() context.Context { return w.ctx }

func (w *watchStream) Send(m *atraxv1.WatchServersResponse) error {
	select {
	case w.sent <- m:
		return nil
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
}

func TestWatchServers(t *testing.T) {
	s, _ := newServers(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream := &watchStream{ctx: ctx, sent: make(chan *atraxv1.WatchServersResponse)}
	done := make(chan error, 1)
	go func() { done <- s.WatchServers(&atraxv1.WatchServersRequest{}, stream) }()
	next := func() *atraxv1.WatchServersResponse {
		t.Helper()
		select {
		case m := <-stream.sent:
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("nothing sent")
		}
		return nil
	}

	first := next()
	if first.GetEvent() != registry.EventSnapshot || len(first.GetServers()) != 1 || first.GetVersion() == 0 {
		t.Errorf("first message = %v, want a snapshot of the one config server", first)
	}

	// A watcher that stops reading is cut off with RESOURCE_EXHAUSTED
	// (the registry holds 256 changes for it, the stream one more).
	for range 300 {
		if _, err := s.Registry.Restart(context.Background(), "filed"); err != nil {
			t.Fatal(err)
		}
	}
	for {
		select {
		case <-stream.sent:
			continue
		case err := <-done:
			if status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("WatchServers of a lagging watcher = %v, want ResourceExhausted", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("WatchServers did not end for a lagging watcher")
		}
		break
	}

	// A watcher that keeps up gets each change; it ends with its context.
	ctx2, cancel2 := context.WithCancel(context.Background())
	stream = &watchStream{ctx: ctx2, sent: make(chan *atraxv1.WatchServersResponse)}
	go func() { done <- s.WatchServers(&atraxv1.WatchServersRequest{}, stream) }()
	next()
	if _, err := s.Registry.SetState(context.Background(), "filed", false); err != nil {
		t.Fatal(err)
	}
	if m := next(); m.GetEvent() != registry.EventUpdated || m.GetServers()[0].GetState() != registry.StateStopped {
		t.Errorf("change = %v, want filed updated to stopped", m)
	}
	cancel2()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("WatchServers after its context ended = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WatchServers did not return when its context ended")
	}
}
