package issuer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/atrax-mcp/atrax/controlplane/issuer"
	"github.com/atrax-mcp/atrax/controlplane/store/boltstore"
	"github.com/atrax-mcp/atrax/internal/authn"
)

func ExampleIssuer_Issue() {
	dir, _ := os.MkdirTemp("", "atrax-example")
	defer os.RemoveAll(dir)
	st, err := boltstore.Open(filepath.Join(dir, "atrax.db"), boltstore.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()

	ctx := context.Background()
	v := authn.NewVerifier(authn.Options{Mode: authn.ModeJWT, Issuer: "atrax", Audience: "atrax"})
	iss, err := issuer.New(ctx, issuer.Options{
		Store: st, Verifier: v, Issuer: "atrax", Audience: "atrax",
		Clients: []issuer.Client{{ID: "ci", Secret: "s3cret", Scopes: []string{authn.ScopeEdge}}},
		TTL:     time.Hour, MaxTTL: 24 * time.Hour,
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	// client_credentials, narrowed to one server.
	tok, err := iss.Issue(ctx, issuer.Request{ClientID: "ci", ClientSecret: "s3cret", Scope: "edge server:memory"})
	if err != nil {
		fmt.Println(err)
		return
	}
	p, _ := v.Verify(ctx, tok.Value)
	fmt.Println(p.Subject, tok.Scope, tok.ExpiresIn, p.AllowsServer("memory"), p.AllowsServer("github"))

	_, err = iss.Issue(ctx, issuer.Request{ClientID: "ci", ClientSecret: "s3cret", Scope: "admin"})
	fmt.Println(errors.Is(err, issuer.ErrInvalidScope))

	iss.Revoke(ctx, tok.ID)
	_, err = v.Verify(ctx, tok.Value)
	fmt.Println(err)
	// Output:
	// client:ci edge server:memory 1h0m0s true false
	// true
	// invalid token: revoked
}
