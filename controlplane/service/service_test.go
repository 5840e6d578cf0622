package service_test

import (
	"context"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/atrax-mcp/atrax/controlplane/issuer"
	"github.com/atrax-mcp/atrax/controlplane/service"
	"github.com/atrax-mcp/atrax/controlplane/store"
	"github.com/atrax-mcp/atrax/controlplane/store/boltstore"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/authn"
)

func newAuth(t *testing.T) (*service.Auth, *authn.Verifier) {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "atrax.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	v := authn.NewVerifier(authn.Options{Mode: authn.ModeJWT, Issuer: "atrax", Audience: "atrax"})
	iss, err := issuer.New(context.Background(), issuer.Options{
		Store: st, Verifier: v, Issuer: "atrax", Audience: "atrax", TTL: time.Hour, MaxTTL: 24 * time.Hour,
		Clients: []issuer.Client{{ID: "ci", Secret: "s3cret", Scopes: []string{authn.ScopeEdge}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &service.Auth{Issuer: iss, Audit: &service.Auditor{Store: st}}, v
}

func reason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

func TestIssueToken(t *testing.T) {
	a, v := newAuth(t)
	basic := func(id, secret string) context.Context {
		return metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(id+":"+secret))))
	}
	tests := []struct {
		name   string
		ctx    context.Context
		req    *atraxv1.IssueTokenRequest
		code   codes.Code
		reason string
	}{
		{"form credentials", context.Background(), &atraxv1.IssueTokenRequest{GrantType: "client_credentials", ClientId: "ci", ClientSecret: "s3cret", Ttl: "15m"}, codes.OK, ""},
		{"HTTP Basic", basic("ci", "s3cret"), &atraxv1.IssueTokenRequest{}, codes.OK, ""},
		// The caller of a Basic request is not also a bearer principal.
		{"HTTP Basic beside a caller", authn.NewContext(basic("ci", "wrong"), authn.Anonymous()), &atraxv1.IssueTokenRequest{}, codes.Unauthenticated, "invalid_client"},
		{"wrong secret", context.Background(), &atraxv1.IssueTokenRequest{ClientId: "ci", ClientSecret: "wrong"}, codes.Unauthenticated, "invalid_client"},
		{"no credential", context.Background(), &atraxv1.IssueTokenRequest{}, codes.Unauthenticated, "invalid_client"},
		{"bad ttl", context.Background(), &atraxv1.IssueTokenRequest{ClientId: "ci", ClientSecret: "s3cret", Ttl: "soon"}, codes.InvalidArgument, "invalid_request"},
		{"scope not granted", context.Background(), &atraxv1.IssueTokenRequest{ClientId: "ci", ClientSecret: "s3cret", Scope: "admin"}, codes.InvalidArgument, "invalid_scope"},
		{"grant type", context.Background(), &atraxv1.IssueTokenRequest{GrantType: "password", ClientId: "ci", ClientSecret: "s3cret"}, codes.InvalidArgument, "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := a.IssueToken(tt.ctx, tt.req)
			if status.Code(err) != tt.code {
				t.Fatalf("IssueToken = %v, want %v", err, tt.code)
			}
			if err != nil {
				if got := reason(err); got != tt.reason {
					t.Errorf("ErrorInfo reason = %q, want %q", got, tt.reason)
				}
				return
			}
			p, err := v.Verify(context.Background(), resp.GetAccessToken())
			if err != nil {
				t.Fatalf("Verify of the issued token: %v", err)
			}
			if p.Subject != "client:ci" || resp.GetTokenType() != "Bearer" || resp.GetJti() != p.TokenID || resp.GetScope() != "edge" {
				t.Errorf("response %v for principal %+v", resp, p)
			}
			wantTTL := int32(3600)
			if tt.req.GetTtl() == "15m" {
				wantTTL = 900
			}
			if resp.GetExpiresIn() != wantTTL {
				t.Errorf("expires_in = %d, want %d", resp.GetExpiresIn(), wantTTL)
			}
		})
	}
}

func TestRevokeToken(t *testing.T) {
	a, v := newAuth(t)
	ctx := context.Background()
	if _, err := a.RevokeToken(ctx, &atraxv1.RevokeTokenRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("RevokeToken without jti = %v, want InvalidArgument", err)
	}
	resp, err := a.IssueToken(ctx, &atraxv1.IssueTokenRequest{ClientId: "ci", ClientSecret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.RevokeToken(ctx, &atraxv1.RevokeTokenRequest{Jti: resp.GetJti()}); err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	if _, err := v.Verify(ctx, resp.GetAccessToken()); err == nil {
		t.Error("revoked token still verifies")
	}
}

// Issuing a token is audited, with who asked and the jti, never the token;
// a refused credential too.
func TestIssueTokenAudited(t *testing.T) {
	a, _ := newAuth(t)
	ctx := context.Background()
	resp, err := a.IssueToken(ctx, &atraxv1.IssueTokenRequest{ClientId: "ci", ClientSecret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.IssueToken(ctx, &atraxv1.IssueTokenRequest{ClientId: "ci", ClientSecret: "wrong"}); err == nil {
		t.Fatal("a wrong secret got a token")
	}
	events, _, err := a.Audit.Store.ListAudit(ctx, store.AuditQuery{Action: "token.issue"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 {
		t.Fatalf("%d token.issue events, want 2", len(events))
	}
	refused, issued := events[0], events[1] // newest first
	if issued.GetActor() != "client:ci" || issued.GetOutcome() != "ok" || issued.GetDetails()["jti"] != resp.GetJti() {
		t.Errorf("issued event = %v, want actor client:ci, outcome ok, the jti", issued)
	}
	if refused.GetOutcome() != "error" || refused.GetDetails()["jti"] != "" {
		t.Errorf("refused event = %v, want outcome error and no jti", refused)
	}
	for _, ev := range events {
		if strings.Contains(ev.String(), resp.GetAccessToken()) || strings.Contains(ev.String(), "s3cret") {
			t.Errorf("an audit event holds a secret: %v", ev)
		}
	}
}

// A revocation's audit event names the jti it revoked.
func TestRevokeTokenAudited(t *testing.T) {
	a, _ := newAuth(t)
	ctx := context.Background()
	resp, err := a.IssueToken(ctx, &atraxv1.IssueTokenRequest{ClientId: "ci", ClientSecret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.RevokeToken(ctx, &atraxv1.RevokeTokenRequest{Jti: resp.GetJti()}); err != nil {
		t.Fatal(err)
	}
	events, _, err := a.Audit.Store.ListAudit(ctx, store.AuditQuery{Action: "token.revoke"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].GetDetails()["jti"] != resp.GetJti() {
		t.Fatalf("token.revoke events = %v, want one naming jti %s", events, resp.GetJti())
	}
}
