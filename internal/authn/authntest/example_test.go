package authntest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/authn/authntest"
)

// A test of code that sits behind authn mints its own tokens.
func Example() {
	t := &testing.T{} // in a real test, the test's own t
	v := authntest.Verifier(t)
	kid, priv := authntest.NewKey(t)
	authntest.Trust(v, kid, priv)

	c := authntest.Claims("client:ci", time.Now(), time.Hour)
	c.Scope = authn.ScopeEdge
	token := authntest.Sign(t, priv, kid, c)

	p, err := v.Verify(context.Background(), token)
	fmt.Println(p.Subject, p.HasScope(authn.ScopeEdge), p.AllowsServer("memory"), err)
	// Output: client:ci true false <nil>
}
