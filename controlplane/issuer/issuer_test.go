package issuer_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/atrax-mcp/atrax/controlplane/issuer"
	"github.com/atrax-mcp/atrax/controlplane/store"
	"github.com/atrax-mcp/atrax/controlplane/store/boltstore"
	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/fakeclock"
)

var (
	t0  = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	ctx = context.Background()
)

const (
	ttl    = time.Hour
	maxTTL = 24 * time.Hour
)

var (
	opsToken = authn.StaticToken{Name: "ops", Token: "ops-static-token", Scopes: []string{authn.ScopeAdmin, authn.ScopeEdge}}
	ciClient = issuer.Client{ID: "ci", Secret: "ci-secret", Scopes: []string{authn.ScopeEdge}, Servers: []string{"memory", "git*"}}
	noneGrnt = issuer.Client{ID: "nothing", Secret: "nothing-secret", Servers: []string{}, Tools: []string{}}
)

// env is a store and a clock on which issuers can be opened again and
// again, as successive starts of the control plane.
type env struct {
	t       *testing.T
	store   store.Store
	clock   *fakeclock.Clock
	mode    string
	changes atomic.Int32
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "atrax.db"), boltstore.Options{})
	if err != nil {
		t.Fatalf("boltstore.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return &env{t: t, store: st, clock: fakeclock.New(t0), mode: authn.ModeToken}
}

// open returns a new verifier and an issuer over the env's store.
func (e *env) open() (*issuer.Issuer, *authn.Verifier) {
	e.t.Helper()
	v := authn.NewVerifier(authn.Options{
		Mode: e.mode, Static: []authn.StaticToken{opsToken},
		Issuer: "atrax", Audience: "atrax-gw", Now: e.clock.Now,
	})
	i, err := issuer.New(ctx, issuer.Options{
		Store: e.store, Verifier: v, Clients: []issuer.Client{ciClient, noneGrnt},
		Issuer: "atrax", Audience: "atrax-gw", TTL: ttl, MaxTTL: maxTTL,
		OnChange: func() { e.changes.Add(1) },
		Now:      e.clock.Now,
	})
	if err != nil {
		e.t.Fatalf("issuer.New: %v", err)
	}
	return i, v
}

func issue(t *testing.T, i *issuer.Issuer, req issuer.Request) issuer.Token {
	t.Helper()
	tok, err := i.Issue(ctx, req)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return tok
}

func verify(t *testing.T, v *authn.Verifier, token string) *authn.Principal {
	t.Helper()
	p, err := v.Verify(ctx, token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return p
}

func kidOf(t *testing.T, token string) string {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := tok.Header["kid"].(string)
	return kid
}

func keyIDs(keys []issuer.PublicKey) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.ID)
	}
	return out
}

func TestIssueCredentials(t *testing.T) {
	e := newEnv(t)
	i, v := e.open()
	jwtCaller := verify(t, v, issue(t, i, issuer.Request{ClientID: "ci", ClientSecret: "ci-secret"}).Value)

	tests := []struct {
		name string
		req  issuer.Request
		want *authn.Principal
	}{{
		name: "static token",
		req:  issuer.Request{GrantType: "client_credentials", StaticToken: opsToken.Token},
		want: &authn.Principal{Subject: "static:ops", Scopes: []string{"admin", "edge"}, Servers: []string{"*"}, Tools: []string{"*"}},
	}, {
		name: "client id and secret",
		req:  issuer.Request{ClientID: "ci", ClientSecret: "ci-secret"},
		want: &authn.Principal{Subject: "client:ci", Scopes: []string{"edge"}, Servers: []string{"memory", "git*"}, Tools: []string{"*"}},
	}, {
		name: "client with empty grants",
		req:  issuer.Request{ClientID: "nothing", ClientSecret: "nothing-secret"},
		want: &authn.Principal{Subject: "client:nothing", Servers: []string{}, Tools: []string{}},
	}, {
		name: "caller's static principal",
		req:  issuer.Request{Caller: &authn.Principal{Subject: "static:edge", Kind: authn.KindStatic, Scopes: []string{"edge"}, Servers: []string{"*"}, Tools: []string{"x"}}},
		want: &authn.Principal{Subject: "static:edge", Scopes: []string{"edge"}, Servers: []string{"*"}, Tools: []string{"x"}},
	}, {
		name: "caller's JWT principal",
		req:  issuer.Request{Caller: jwtCaller},
		want: &authn.Principal{Subject: "client:ci", Scopes: []string{"edge"}, Servers: []string{"memory", "git*"}, Tools: []string{"*"}},
	}, {
		// A credential in the request wins over the bearer token it came with.
		name: "client id beside a caller",
		req:  issuer.Request{ClientID: "ci", ClientSecret: "ci-secret", Caller: authn.Anonymous()},
		want: &authn.Principal{Subject: "client:ci", Scopes: []string{"edge"}, Servers: []string{"memory", "git*"}, Tools: []string{"*"}},
	}}
	current := i.PublicKeys()[len(i.PublicKeys())-1].ID
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := issue(t, i, tt.req)
			got := verify(t, v, tok.Value)
			want := tt.want
			want.Kind, want.TokenID, want.ExpiresAt = authn.KindJWT, tok.ID, t0.Add(ttl)
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("principal of the issued token (-want +got):\n%s", diff)
			}
			if tok.ExpiresIn != ttl {
				t.Errorf("ExpiresIn = %v, want %v", tok.ExpiresIn, ttl)
			}
			if tok.ID == "" || tok.ID == jwtCaller.TokenID {
				t.Errorf("token ID = %q, want a new one", tok.ID)
			}
			if kid := kidOf(t, tok.Value); kid != current {
				t.Errorf("token signed with key %q, want the current key %q", kid, current)
			}
		})
	}
}

func TestIssueTokenIDsAreUnique(t *testing.T) {
	e := newEnv(t)
	i, _ := e.open()
	seen := map[string]bool{}
	for range 50 {
		tok := issue(t, i, issuer.Request{ClientID: "ci", ClientSecret: "ci-secret"})
		if seen[tok.ID] {
			t.Fatalf("token ID %q issued twice", tok.ID)
		}
		seen[tok.ID] = true
	}
}

func TestIssueRefusals(t *testing.T) {
	tests := []struct {
		name string
		req  issuer.Request
		want error
	}{
		{"wrong secret", issuer.Request{ClientID: "ci", ClientSecret: "wrong"}, issuer.ErrInvalidClient},
		{"no secret", issuer.Request{ClientID: "ci"}, issuer.ErrInvalidClient},
		{"unknown client", issuer.Request{ClientID: "who", ClientSecret: "ci-secret"}, issuer.ErrInvalidClient},
		{"another client's secret", issuer.Request{ClientID: "nothing", ClientSecret: "ci-secret"}, issuer.ErrInvalidClient},
		{"unknown static token", issuer.Request{StaticToken: "guess"}, issuer.ErrInvalidClient},
		{"static token and client", issuer.Request{StaticToken: opsToken.Token, ClientID: "ci", ClientSecret: "ci-secret"}, issuer.ErrInvalidRequest},
		{"no credential", issuer.Request{}, issuer.ErrInvalidClient},
		{"secret alone", issuer.Request{ClientSecret: "ci-secret"}, issuer.ErrInvalidClient},
		{"password grant", issuer.Request{GrantType: "password", ClientID: "ci", ClientSecret: "ci-secret"}, issuer.ErrUnsupportedGrantType},
		{"negative ttl", issuer.Request{ClientID: "ci", ClientSecret: "ci-secret", TTL: -time.Second}, issuer.ErrInvalidRequest},
		{"ttl above the maximum", issuer.Request{ClientID: "ci", ClientSecret: "ci-secret", TTL: maxTTL + time.Second}, issuer.ErrInvalidRequest},
		{"expired caller", issuer.Request{Caller: &authn.Principal{Subject: "client:ci", Kind: authn.KindJWT, Servers: []string{"*"}, ExpiresAt: t0.Add(-time.Second)}}, issuer.ErrInvalidClient},
		{"caller expiring now", issuer.Request{Caller: &authn.Principal{Subject: "client:ci", Kind: authn.KindJWT, ExpiresAt: t0.Add(500 * time.Millisecond)}}, issuer.ErrInvalidClient},
	}
	e := newEnv(t)
	i, _ := e.open()
	for _, tt := range tests {
		if tok, err := i.Issue(ctx, tt.req); !errors.Is(err, tt.want) || tok.Value != "" {
			t.Errorf("%s: Issue = %q, %v; want %v", tt.name, tok.Value, err, tt.want)
		}
	}

	// Whether the client exists or not is not told.
	_, wrongSecret := i.Issue(ctx, issuer.Request{ClientID: "ci", ClientSecret: "wrong"})
	_, unknown := i.Issue(ctx, issuer.Request{ClientID: "who", ClientSecret: "wrong"})
	if wrongSecret.Error() != unknown.Error() {
		t.Errorf("wrong secret says %q, unknown client says %q; want the same", wrongSecret, unknown)
	}
}

func TestIssueInJWTMode(t *testing.T) {
	// Static tokens are exchanged for JWTs, though not accepted as bearer
	// tokens themselves.
	e := newEnv(t)
	e.mode = authn.ModeJWT
	i, v := e.open()
	if _, err := v.Verify(ctx, opsToken.Token); !errors.Is(err, authn.ErrInvalidToken) {
		t.Fatalf("Verify(static token) in jwt mode = %v, want ErrInvalidToken", err)
	}
	tok := issue(t, i, issuer.Request{StaticToken: opsToken.Token})
	if p := verify(t, v, tok.Value); p.Subject != "static:ops" || !p.HasScope(authn.ScopeAdmin) {
		t.Errorf("exchanged token principal = %+v, want static:ops with admin", p)
	}
}

func TestIssueWithoutAuth(t *testing.T) {
	e := newEnv(t)
	e.mode = authn.ModeNone
	i, _ := e.open()
	tok := issue(t, i, issuer.Request{StaticToken: "anything"})
	p, _, err := jwt.NewParser().ParseUnverified(tok.Value, &authn.Claims{})
	if err != nil {
		t.Fatal(err)
	}
	if sub := p.Claims.(*authn.Claims).Subject; sub != "anonymous" {
		t.Errorf("subject = %q, want anonymous", sub)
	}
}

func TestIssueScope(t *testing.T) {
	// The credential is client ci: edge, servers memory and git*, every tool.
	all := []string{"*"}
	servers := []string{"memory", "git*"}
	tests := []struct {
		scope     string
		wantErr   error
		wantScope string
		scopes    []string
		servers   []string
		tools     []string
	}{
		{scope: "", wantScope: "edge server:memory server:git*", scopes: []string{"edge"}, servers: servers, tools: all},
		{scope: "edge", wantScope: "edge server:memory server:git*", scopes: []string{"edge"}, servers: servers, tools: all},
		{scope: "  edge  edge ", wantScope: "edge server:memory server:git*", scopes: []string{"edge"}, servers: servers, tools: all},
		{scope: "server:memory", wantScope: "server:memory", scopes: []string{}, servers: []string{"memory"}, tools: all},
		{scope: "server:github", wantScope: "server:github", scopes: []string{}, servers: []string{"github"}, tools: all},
		{scope: "server:git*", wantScope: "server:git*", scopes: []string{}, servers: []string{"git*"}, tools: all},
		{scope: "server:gitlab*", wantScope: "server:gitlab*", scopes: []string{}, servers: []string{"gitlab*"}, tools: all},
		{scope: "tool:memory__*", wantScope: "server:memory server:git* tool:memory__*", scopes: []string{}, servers: servers, tools: []string{"memory__*"}},
		{scope: "tool:*", wantScope: "server:memory server:git*", scopes: []string{}, servers: servers, tools: all},
		{
			scope: "edge server:memory server:github tool:memory__read tool:git*", wantScope: "edge server:memory server:github tool:memory__read tool:git*",
			scopes: []string{"edge"}, servers: []string{"memory", "github"}, tools: []string{"memory__read", "git*"},
		},
		{scope: "admin", wantErr: issuer.ErrInvalidScope},
		{scope: "edge admin", wantErr: issuer.ErrInvalidScope},
		{scope: "server:*", wantErr: issuer.ErrInvalidScope},
		{scope: "server:g*", wantErr: issuer.ErrInvalidScope},
		{scope: "server:mem*", wantErr: issuer.ErrInvalidScope},
		{scope: "server:other", wantErr: issuer.ErrInvalidScope},
		{scope: "server:", wantErr: issuer.ErrInvalidScope},
		{scope: "tool:", wantErr: issuer.ErrInvalidScope},
		{scope: "server:memory server:other", wantErr: issuer.ErrInvalidScope},
		{scope: "read", wantErr: issuer.ErrInvalidScope},
		{scope: "Edge", wantErr: issuer.ErrInvalidScope},
		{scope: "servers:memory", wantErr: issuer.ErrInvalidScope},
		{scope: "openid", wantErr: issuer.ErrInvalidScope},
	}
	e := newEnv(t)
	i, v := e.open()
	for _, tt := range tests {
		tok, err := i.Issue(ctx, issuer.Request{ClientID: "ci", ClientSecret: "ci-secret", Scope: tt.scope})
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Issue(scope %q) = %v, want %v", tt.scope, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Issue(scope %q): %v", tt.scope, err)
			continue
		}
		if tok.Scope != tt.wantScope {
			t.Errorf("Issue(scope %q) token scope = %q, want %q", tt.scope, tok.Scope, tt.wantScope)
		}
		p := verify(t, v, tok.Value)
		got := []any{p.Scopes, p.Servers, p.Tools}
		want := []any{tt.scopes, tt.servers, tt.tools}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Issue(scope %q) scopes, servers, tools (-want +got):\n%s", tt.scope, diff)
		}
	}

	// A narrowed token cannot be widened again.
	narrow := issue(t, i, issuer.Request{ClientID: "ci", ClientSecret: "ci-secret", Scope: "server:memory"})
	caller := verify(t, v, narrow.Value)
	for _, scope := range []string{"edge", "server:github", "server:memory*"} {
		if _, err := i.Issue(ctx, issuer.Request{Caller: caller, Scope: scope}); !errors.Is(err, issuer.ErrInvalidScope) {
			t.Errorf("Issue(scope %q) from a token narrowed to server:memory = %v, want ErrInvalidScope", scope, err)
		}
	}
}

func TestIssueTTL(t *testing.T) {
	e := newEnv(t)
	i, v := e.open()
	ci := issuer.Request{ClientID: "ci", ClientSecret: "ci-secret"}

	tests := []struct {
		ttl, want time.Duration
	}{
		{0, ttl},
		{10 * time.Minute, 10 * time.Minute},
		{maxTTL, maxTTL},
	}
	for _, tt := range tests {
		req := ci
		req.TTL = tt.ttl
		tok := issue(t, i, req)
		if tok.ExpiresIn != tt.want {
			t.Errorf("Issue(ttl %v) ExpiresIn = %v, want %v", tt.ttl, tok.ExpiresIn, tt.want)
		}
		if p := verify(t, v, tok.Value); !p.ExpiresAt.Equal(t0.Add(tt.want)) {
			t.Errorf("Issue(ttl %v) expires at %v, want %v", tt.ttl, p.ExpiresAt, t0.Add(tt.want))
		}
	}

	// A token bought with a JWT never outlives it.
	req := ci
	req.TTL = 30 * time.Minute
	parent := verify(t, v, issue(t, i, req).Value)
	e.clock.Advance(10 * time.Minute)
	for _, ttl := range []time.Duration{0, time.Hour, 20 * time.Minute} {
		tok := issue(t, i, issuer.Request{Caller: parent, TTL: ttl})
		if tok.ExpiresIn != 20*time.Minute {
			t.Errorf("Issue(ttl %v) from a JWT with 20m left: ExpiresIn = %v, want 20m", ttl, tok.ExpiresIn)
		}
		if p := verify(t, v, tok.Value); !p.ExpiresAt.Equal(parent.ExpiresAt) {
			t.Errorf("Issue(ttl %v) from a JWT expires at %v, want the parent's %v", ttl, p.ExpiresAt, parent.ExpiresAt)
		}
	}
	// A shorter one is as asked.
	if tok := issue(t, i, issuer.Request{Caller: parent, TTL: 5 * time.Minute}); tok.ExpiresIn != 5*time.Minute {
		t.Errorf("Issue(ttl 5m) from a JWT with 20m left: ExpiresIn = %v, want 5m", tok.ExpiresIn)
	}
	e.clock.Advance(20 * time.Minute)
	if _, err := i.Issue(ctx, issuer.Request{Caller: parent}); !errors.Is(err, issuer.ErrInvalidClient) {
		t.Errorf("Issue from an expired JWT = %v, want ErrInvalidClient", err)
	}
}

func TestRevoke(t *testing.T) {
	e := newEnv(t)
	i, v := e.open()
	ci := issuer.Request{ClientID: "ci", ClientSecret: "ci-secret"}
	tok := issue(t, i, ci)
	other := issue(t, i, ci)
	e.clock.Advance(time.Minute)
	before := e.changes.Load()

	at, err := i.Revoke(ctx, tok.ID)
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if !at.Equal(t0.Add(time.Minute)) {
		t.Errorf("Revoke time = %v, want %v", at, t0.Add(time.Minute))
	}
	if got := e.changes.Load() - before; got != 1 {
		t.Errorf("OnChange called %d times for Revoke, want 1", got)
	}
	if _, err := v.Verify(ctx, tok.Value); !errors.Is(err, authn.ErrRevoked) {
		t.Errorf("Verify after Revoke = %v, want ErrRevoked", err)
	}
	verify(t, v, other.Value)
	want := map[string]time.Time{tok.ID: t0.Add(time.Minute + maxTTL)}
	if diff := cmp.Diff(want, i.Revocations()); diff != "" {
		t.Errorf("Revocations (-want +got):\n%s", diff)
	}
	// Revocations outlive the process.
	i2, v2 := e.open()
	if _, err := v2.Verify(ctx, tok.Value); !errors.Is(err, authn.ErrRevoked) {
		t.Errorf("Verify after reopen = %v, want ErrRevoked", err)
	}
	verify(t, v2, other.Value)
	if diff := cmp.Diff(want, i2.Revocations()); diff != "" {
		t.Errorf("Revocations after reopen (-want +got):\n%s", diff)
	}

	if _, err := i.Revoke(ctx, ""); !errors.Is(err, issuer.ErrInvalidRequest) {
		t.Errorf("Revoke(\"\") = %v, want ErrInvalidRequest", err)
	}
}

func TestRotate(t *testing.T) {
	e := newEnv(t)
	i, v := e.open()
	first := i.PublicKeys()
	if len(first) != 1 {
		t.Fatalf("a new issuer has %d signing keys, want 1", len(first))
	}
	ci := issuer.Request{ClientID: "ci", ClientSecret: "ci-secret"}
	old := issue(t, i, ci)
	before := e.changes.Load()

	e.clock.Advance(time.Minute)
	k, err := i.Rotate(ctx)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if got := e.changes.Load() - before; got != 1 {
		t.Errorf("OnChange called %d times for Rotate, want 1", got)
	}
	if !k.Created.Equal(t0.Add(time.Minute)) || k.ID == first[0].ID {
		t.Errorf("Rotate = key %q created %v, want a new key created %v", k.ID, k.Created, t0.Add(time.Minute))
	}
	if diff := cmp.Diff([]string{first[0].ID, k.ID}, keyIDs(i.PublicKeys())); diff != "" {
		t.Errorf("PublicKeys after Rotate (-want +got):\n%s", diff)
	}
	verify(t, v, old.Value)
	fresh := issue(t, i, ci)
	if kid := kidOf(t, fresh.Value); kid != k.ID {
		t.Errorf("token after Rotate signed with %q, want %q", kid, k.ID)
	}
	verify(t, v, fresh.Value)

	// Keys outlive the process: both tokens verify after a restart.
	i2, v2 := e.open()
	if diff := cmp.Diff(i.PublicKeys(), i2.PublicKeys()); diff != "" {
		t.Errorf("PublicKeys after reopen (-before +after):\n%s", diff)
	}
	verify(t, v2, old.Value)
	verify(t, v2, fresh.Value)
	if kid := kidOf(t, issue(t, i2, ci).Value); kid != k.ID {
		t.Errorf("token after reopen signed with %q, want %q", kid, k.ID)
	}
}

func TestRotateDropsRetiredKeys(t *testing.T) {
	e := newEnv(t)
	i, _ := e.open()
	a := i.PublicKeys()[0].ID
	b, err := i.Rotate(ctx) // a is retired now, at t0
	if err != nil {
		t.Fatal(err)
	}

	// Tokens signed by a just before it was retired live until t0+maxTTL:
	// a is kept while they may.
	e.clock.Advance(maxTTL)
	c, err := i.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{a, b.ID, c.ID}, keyIDs(i.PublicKeys())); diff != "" {
		t.Errorf("keys maxTTL after a was retired (-want +got):\n%s", diff)
	}

	e.clock.Advance(2 * time.Minute)
	d, err := i.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{b.ID, c.ID, d.ID}
	if diff := cmp.Diff(want, keyIDs(i.PublicKeys())); diff != "" {
		t.Errorf("keys after a outlived every token it signed (-want +got):\n%s", diff)
	}
	stored, err := e.store.SigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var storedIDs []string
	for _, k := range stored {
		storedIDs = append(storedIDs, k.ID)
	}
	if diff := cmp.Diff(want, storedIDs); diff != "" {
		t.Errorf("stored keys (-want +got):\n%s", diff)
	}
}

// TestRotateIfDue: the signing key is rotated once it is keyRotation
// old, not before, and never when rotation is off; a key another issuer on
// the same store rotated in the meantime counts as current.
func TestRotateIfDue(t *testing.T) {
	const every = 30 * 24 * time.Hour
	e := newEnv(t)
	i, _ := e.open()
	first := keyIDs(i.PublicKeys())
	if rotated, err := i.RotateIfDue(ctx, every); err != nil || rotated {
		t.Fatalf("RotateIfDue with a new key = %v, %v; want no rotation", rotated, err)
	}
	e.clock.Advance(every - time.Minute)
	if rotated, err := i.RotateIfDue(ctx, every); err != nil || rotated {
		t.Fatalf("RotateIfDue a minute early = %v, %v; want no rotation", rotated, err)
	}
	if rotated, err := i.RotateIfDue(ctx, 0); err != nil || rotated {
		t.Fatalf("RotateIfDue with rotation off = %v, %v", rotated, err)
	}
	e.clock.Advance(time.Minute)
	rotated, err := i.RotateIfDue(ctx, every)
	if err != nil || !rotated {
		t.Fatalf("RotateIfDue when due = %v, %v; want a rotation", rotated, err)
	}
	second := keyIDs(i.PublicKeys())
	if len(second) != 2 || second[0] != first[0] {
		t.Fatalf("keys after rotation = %v, want %v and a new one", second, first)
	}

	// Another issuer on the store rotates half a period later: this one
	// sees that key as current and waits for it to be due.
	other, _ := e.open()
	e.clock.Advance(every / 2)
	k, err := other.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(every / 2)
	if rotated, err := i.RotateIfDue(ctx, every); err != nil || rotated {
		t.Fatalf("RotateIfDue after another issuer rotated = %v, %v; want no rotation", rotated, err)
	}
	if got := keyIDs(i.PublicKeys()); got[len(got)-1] != k.ID {
		t.Errorf("keys = %v, want the other issuer's %s current", got, k.ID)
	}
}

func TestSealKey(t *testing.T) {
	e := newEnv(t)
	i, _ := e.open()
	seal := i.SealKeys()
	if len(seal) != 1 || len(seal[0].Key) != 32 || seal[0].ID == "" {
		t.Fatalf("SealKeys of a new issuer = %d keys (first %d bytes), want one 32-byte key with an id", len(seal), len(seal[0].Key))
	}
	if _, err := i.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	i2, _ := e.open()
	if diff := cmp.Diff(seal, i2.SealKeys()); diff != "" {
		t.Errorf("SealKeys after Rotate and reopen (-before +after):\n%s", diff)
	}
	stored, err := e.store.SealKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 {
		t.Errorf("store holds %d seal keys, want 1", len(stored))
	}
	// SealKeys returns copies of the slice.
	got := i2.SealKeys()
	got[0].ID = "changed"
	if i2.SealKeys()[0].ID == "changed" {
		t.Error("changing the result of SealKeys changed the issuer")
	}
}

func TestPrune(t *testing.T) {
	e := newEnv(t)
	i, v := e.open()
	ci := issuer.Request{ClientID: "ci", ClientSecret: "ci-secret"}
	a, b := issue(t, i, ci), issue(t, i, ci)
	if _, err := i.Revoke(ctx, a.ID); err != nil { // kept until t0+maxTTL
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	if _, err := i.Revoke(ctx, b.ID); err != nil { // kept until t0+1h+maxTTL
		t.Fatal(err)
	}

	before := e.changes.Load()
	if err := i.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(i.Revocations()); got != 2 || e.changes.Load() != before {
		t.Errorf("Prune before any expiry: %d revocations left, %d OnChange calls; want 2 and 0", got, e.changes.Load()-before)
	}

	e.clock.Advance(maxTTL - time.Hour + time.Second)
	if err := i.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{b.ID: t0.Add(time.Hour + maxTTL)}
	if diff := cmp.Diff(want, i.Revocations()); diff != "" {
		t.Errorf("Revocations after Prune (-want +got):\n%s", diff)
	}
	if got := e.changes.Load() - before; got != 1 {
		t.Errorf("OnChange called %d times for Prune, want 1", got)
	}
	if v.IsRevoked(a.ID) || !v.IsRevoked(b.ID) {
		t.Errorf("verifier after Prune: a revoked %v, b revoked %v; want false, true", v.IsRevoked(a.ID), v.IsRevoked(b.ID))
	}
	stored, err := e.store.Revocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, stored); diff != "" {
		t.Errorf("stored revocations after Prune (-want +got):\n%s", diff)
	}
}

func TestConcurrentIssueAndRotate(t *testing.T) {
	// For the race detector; every token issued verifies.
	e := newEnv(t)
	i, v := e.open()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 10 {
				tok, err := i.Issue(ctx, issuer.Request{ClientID: "ci", ClientSecret: "ci-secret"})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := v.Verify(ctx, tok.Value); err != nil {
					t.Errorf("Verify of a token issued during rotation: %v", err)
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if _, err := i.Rotate(ctx); err != nil {
				t.Error(err)
			}
			i.PublicKeys()
		}
	})
	wg.Wait()
}
