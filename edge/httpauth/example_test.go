package httpauth_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/atrax-mcp/atrax/edge/httpauth"
	"github.com/atrax-mcp/atrax/internal/authn"
)

func ExampleRequire() {
	v := authn.NewVerifier(authn.Options{Mode: authn.ModeToken, Static: []authn.StaticToken{{Name: "ops", Token: "s3cret"}}})
	h := httpauth.Require(v, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("hello", authn.FromContext(r.Context()).Subject, r.URL)
	}))

	// The seed's ?token= works, and goes no further than this middleware.
	r := httptest.NewRequest("GET", "/mcp?token=s3cret", nil)
	httpauth.MoveQueryToken(r)
	h.ServeHTTP(httptest.NewRecorder(), r)

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/mcp", nil))
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	// Output:
	// hello static:ops /mcp
	// 401 Bearer realm="atrax"
}
