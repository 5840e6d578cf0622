package controlplane_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/atrax-mcp/atrax/controlplane"
	"github.com/atrax-mcp/atrax/controlplane/store/etcdstore/etcdtest"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/config"
)

// TestMigrateStore moves a control plane from its embedded store to etcd:
// refused while it runs; then a control plane on the etcd prefix serves
// the server added through the API and accepts a JWT issued before the
// move, and refuses the one revoked before it; a second move to the same
// prefix is refused.
func TestMigrateStore(t *testing.T) {
	c := etcdtest.Start(t, 1)
	dataDir := filepath.Join(t.TempDir(), "data")
	local, err := config.Parse([]byte(fmt.Sprintf(`{
		"auth": {"type": "token", "options": {"token": %q}},
		"dataDir": %q,
	}`, token, dataDir)), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fleet := etcdConfig(t, c.Endpoints()[0], "/migrated")
	migrate := func() (controlplane.Migrated, error) {
		return controlplane.MigrateStore(t.Context(), controlplane.MigrateOptions{FromDataDir: dataDir, Config: fleet})
	}
	admin := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	ctx, cancel := context.WithTimeout(admin, 60*time.Second)
	defer cancel()

	one := startReplica(t, local)
	if _, err := atraxv1.NewServerServiceClient(one.conn).CreateServer(ctx, &atraxv1.CreateServerRequest{
		Server: &atraxv1.Server{Name: "api", Url: "https://api.example.com/mcp"},
	}); err != nil {
		t.Fatal(err)
	}
	auth := atraxv1.NewAuthServiceClient(one.conn)
	kept, err := auth.IssueToken(ctx, &atraxv1.IssueTokenRequest{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := auth.IssueToken(ctx, &atraxv1.IssueTokenRequest{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.RevokeToken(ctx, &atraxv1.RevokeTokenRequest{Jti: revoked.GetJti()}); err != nil {
		t.Fatal(err)
	}
	if _, err := migrate(); err == nil || !strings.Contains(err.Error(), "stop the control plane first") {
		t.Errorf("migrate while the control plane runs: err = %v, want it to say to stop the control plane first", err)
	}
	one.stop()

	got, err := migrate()
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if got.Servers != 1 || got.SigningKeys != 1 || got.SealKeys != 1 || got.Revocations != 1 || got.AuditEvents < 3 {
		t.Errorf("migrated %+v, want 1 server, 1 signing key, 1 seal key, 1 revocation, at least 3 audit events", got)
	}
	if got.From != filepath.Join(dataDir, controlplane.StoreFile) || got.To != "etcd /migrated" {
		t.Errorf("migrated from %q to %q", got.From, got.To)
	}

	moved := startReplica(t, fleet)
	as := func(jwt string) context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+jwt)
	}
	list, err := atraxv1.NewServerServiceClient(moved.conn).ListServers(as(kept.GetAccessToken()), &atraxv1.ListServersRequest{})
	if err != nil {
		t.Fatalf("ListServers with a JWT issued before the move: %v", err)
	}
	if !slices.ContainsFunc(list.GetServers(), func(s *atraxv1.Server) bool { return s.GetName() == "api" }) {
		t.Errorf("servers after the move = %v, want api", list.GetServers())
	}
	_, err = atraxv1.NewServerServiceClient(moved.conn).ListServers(as(revoked.GetAccessToken()), &atraxv1.ListServersRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("ListServers with a JWT revoked before the move: err = %v, want UNAUTHENTICATED", err)
	}
	audit, err := atraxv1.NewAuditServiceClient(moved.conn).ListAuditEvents(ctx, &atraxv1.ListAuditEventsRequest{Action: "server.create"})
	if err != nil || len(audit.GetEvents()) != 1 || audit.GetEvents()[0].GetServer() != "api" {
		t.Errorf("server.create events after the move = %v, %v; want api's", audit.GetEvents(), err)
	}

	if _, err := migrate(); err == nil || !strings.Contains(err.Error(), "already holds data") || !strings.Contains(err.Error(), "store.etcd.prefix") {
		t.Errorf("migrate into a used prefix: err = %v, want a refusal naming store.etcd.prefix", err)
	}
	_, err = controlplane.MigrateStore(t.Context(), controlplane.MigrateOptions{FromDataDir: t.TempDir(), Config: fleet})
	if err == nil || !strings.Contains(err.Error(), "no store in") {
		t.Errorf("migrate from a directory without a store: err = %v, want no store", err)
	}
}
