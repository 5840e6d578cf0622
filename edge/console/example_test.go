package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/atrax-mcp/atrax/edge/console"
	"github.com/atrax-mcp/atrax/internal/authn"
)

func ExampleNew() {
	v := authn.NewVerifier(authn.Options{Mode: authn.ModeToken, Static: []authn.StaticToken{
		{Name: "ops", Token: "s3cret", Scopes: []string{authn.ScopeAdmin}},
	}})
	c, err := console.New(console.Options{Verifier: v, Version: "v1.0.0"})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	c.Register(mux)

	// The pages are shells, served to anyone with the console's policy...
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/ui/", nil))
	fmt.Println(w.Code, strings.Contains(w.Header().Get("Content-Security-Policy"), "script-src 'self'"))

	// ...whose script asks, with the signed-in token, who it is.
	r := httptest.NewRequest("GET", "/ui/api/session", nil)
	r.Header.Set("Authorization", "Bearer s3cret")
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Print(w.Code, " ", w.Body)
	// Output:
	// 200 true
	// 200 {"subject":"static:ops","kind":"static","scopes":["admin"],"servers":["*"],"tools":["*"],"admin":true}
}
