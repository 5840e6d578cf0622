package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Security promises on the MCP endpoints. TestAuthMatrix (auth_test.go)
// sends every kind of bad credential to REST and gRPC; TestMCPAuth
// (mcp_auth_test.go) checks missing tokens, session binding, Host and
// Origin and list/call scopes through the TypeScript SDK. These tests
// extend both to every MCP endpoint and path.

// mcpEndpoint is one way of reaching the MCP endpoints with a token.
type mcpEndpoint struct {
	name string
	// do sends the request with tok in the Authorization header (query
	// false) or in ?token= (query true) and returns the HTTP answer.
	do func(t *testing.T, tok string, query bool) *response
}

// mcpEndpoints returns every MCP entry point; sessions that need to exist
// first are opened with the valid token good.
func mcpEndpoints(t *testing.T, base, good string) []mcpEndpoint {
	t.Helper()
	ctx := ctxFor(t, 2*time.Minute)
	wc := newWireClient(base, good)
	t.Cleanup(wc.close)
	s, err := wc.open(ctx)
	if err != nil {
		t.Fatalf("open a streamable session with a valid token: %v", err)
	}
	l, err := wc.openLegacy(ctx)
	if err != nil {
		t.Fatalf("open a legacy session with a valid token: %v", err)
	}
	t.Cleanup(l.close)
	with := func(u, tok string, query bool, hdr []string) (string, []string) {
		if query {
			sep := "?"
			if strings.Contains(u, "?") {
				sep = "&"
			}
			return u + sep + "token=" + url.QueryEscape(tok), hdr
		}
		return u, append(hdr, "Authorization", "Bearer "+tok)
	}
	statelessHdr := []string{"Content-Type", "application/json", "Accept", "application/json, text/event-stream", "MCP-Protocol-Version", stateless}
	statelessBody := func(method string, params map[string]any) string {
		params["_meta"] = map[string]any{
			"io.modelcontextprotocol/protocolVersion":    stateless,
			"io.modelcontextprotocol/clientCapabilities": map[string]any{},
		}
		return string(request(9, method, params))
	}
	session := []string{"Mcp-Session-Id", s.ID, "MCP-Protocol-Version", "2025-06-18"}
	return []mcpEndpoint{
		{"POST /mcp initialize", func(t *testing.T, tok string, q bool) *response {
			u, h := with(base+"/mcp", tok, q, nil)
			return mcpPost(t, u, mcpInitialize, h...)
		}},
		{"POST /mcp on a session", func(t *testing.T, tok string, q bool) *response {
			u, h := with(base+"/mcp", tok, q, session)
			return mcpPost(t, u, mcpToolsList, h...)
		}},
		{"GET /mcp stream of a session", func(t *testing.T, tok string, q bool) *response {
			u, h := with(base+"/mcp", tok, q, append([]string{"Accept", "text/event-stream"}, session...))
			return mcpRaw(t, "GET", u, "", h...)
		}},
		{"DELETE /mcp of a session", func(t *testing.T, tok string, q bool) *response {
			u, h := with(base+"/mcp", tok, q, session)
			return mcpRaw(t, "DELETE", u, "", h...)
		}},
		{"POST /mcp stateless tools/list", func(t *testing.T, tok string, q bool) *response {
			u, h := with(base+"/mcp", tok, q, append([]string{"Mcp-Method", "tools/list"}, statelessHdr...))
			return mcpRaw(t, "POST", u, statelessBody("tools/list", map[string]any{}), h...)
		}},
		{"POST /mcp stateless tools/call", func(t *testing.T, tok string, q bool) *response {
			u, h := with(base+"/mcp", tok, q, append([]string{"Mcp-Method", "tools/call", "Mcp-Name", "cat__echo"}, statelessHdr...))
			return mcpRaw(t, "POST", u, statelessBody("tools/call", map[string]any{"name": "cat__echo", "arguments": map[string]any{}}), h...)
		}},
		{"POST /mcp stateless subscriptions/listen", func(t *testing.T, tok string, q bool) *response {
			u, h := with(base+"/mcp", tok, q, append([]string{"Mcp-Method", "subscriptions/listen"}, statelessHdr...))
			return mcpRaw(t, "POST", u, statelessBody("subscriptions/listen", map[string]any{"notifications": map[string]any{"toolsListChanged": true}}), h...)
		}},
		{"GET /sse", func(t *testing.T, tok string, q bool) *response {
			u, h := with(base+"/sse", tok, q, []string{"Accept", "text/event-stream"})
			return mcpRaw(t, "GET", u, "", h...)
		}},
		{"POST /message of a session", func(t *testing.T, tok string, q bool) *response {
			u, h := with(base+"/message?sessionId="+url.QueryEscape(l.ID), tok, q, []string{"Content-Type", "application/json"})
			return mcpRaw(t, "POST", u, mcpToolsList, h...)
		}},
	}
}

// TestSecurityMCPTokens sends every kind of bad JWT (alg none, HS256
// keyed with the public key, unknown kid, wrong iss and aud, expired, not
// yet valid, revoked, signed with another key) to every MCP entry point,
// in the Authorization header and in ?token=: each is refused with 401 and
// a Bearer challenge, and no answer repeats the token. A valid JWT of the
// same key is taken everywhere.
func TestSecurityMCPTokens(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := seedSigningKey(t, filepath.Join(dir, "data"))
	servers := `"cat": ` + fixtureDef(t, "catalog", []string{"-name", "cat"}, nil)
	p := startAtraxIn(t, dir, "serve", faultConfig(servers, ""), map[string]string{"ATRAX_LOG_LEVEL": "debug"})
	waitUpstreams(t, p, "cat")

	m := minter{t: t, key: key}
	now := time.Now()
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	notYet := m.claims("atrax", "atrax", now, 2*time.Hour)
	notYet.NotBefore = jwt.NewNumericDate(now.Add(time.Hour))
	revoked := issueToken(t, p.HTTP, `{"token": "`+adminToken+`"}`)
	mustStatus(t, http.StatusOK, "POST", p.HTTP+"/auth/revoke", adminToken, `{"jti": "`+revoked.Jti+`"}`)
	bad := []struct{ name, token string }{
		{"alg none", m.signWith(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, m.claims("atrax", "atrax", now, time.Hour))},
		{"HS256 keyed with the public key", m.signWith(jwt.SigningMethodHS256, []byte(key.Private.Public().(ed25519.PublicKey)), m.claims("atrax", "atrax", now, time.Hour))},
		{"unknown kid", m.sign(key.Private, "no-such-kid", m.claims("atrax", "atrax", now, time.Hour))},
		{"signed with another key", m.sign(otherKey, key.ID, m.claims("atrax", "atrax", now, time.Hour))},
		{"wrong iss", m.sign(key.Private, key.ID, m.claims("someone-else", "atrax", now, time.Hour))},
		{"wrong aud", m.sign(key.Private, key.ID, m.claims("atrax", "another-service", now, time.Hour))},
		{"expired", m.sign(key.Private, key.ID, m.claims("atrax", "atrax", now.Add(-3*time.Hour), time.Hour))},
		{"not yet valid", m.sign(key.Private, key.ID, notYet)},
		{"revoked", revoked.AccessToken},
		{"not a JWT", "not-a-token"},
	}
	good := m.sign(key.Private, key.ID, m.claims("atrax", "atrax", now, time.Hour))
	// The edge learns of the revocation through its Sync stream.
	if !poll(pollTimeout, func() bool {
		return httpDo(t, "GET", p.HTTP+"/nope", revoked.AccessToken, "").Status == http.StatusUnauthorized
	}) {
		t.Fatalf("the edge never learned of the revocation")
	}
	endpoints := mcpEndpoints(t, p.HTTP, good)

	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			for _, ep := range endpoints {
				for _, query := range []bool{false, true} {
					where := ep.name + " (header)"
					if query {
						where = ep.name + " (?token=)"
					}
					r := ep.do(t, b.token, query)
					checkUnauthorized(t, where, r, true)
					if strings.Contains(string(r.Body)+fmt.Sprint(r.Header), b.token) {
						t.Errorf("%s: the answer repeats the token", where)
					}
				}
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		for _, ep := range endpoints {
			for _, query := range []bool{false, true} {
				if ep.name == "DELETE /mcp of a session" {
					continue // would end the session the others use
				}
				// A GET stream is the session's one: the previous one may
				// not have been let go yet (409 meanwhile).
				var r *response
				if !poll(5*time.Second, func() bool { r = ep.do(t, good, query); return r.Status/100 == 2 }) {
					t.Errorf("%s (query %v) with a valid JWT: HTTP %d %s", ep.name, query, r.Status, r.Body)
				}
			}
		}
	})
	secrets := []string{good, adminToken}
	for _, b := range bad {
		secrets = append(secrets, b.token)
	}
	p.checkLogsFree(t, secrets...)
}

// TestSecurityRevokedOpenSession revokes the JWT of open sessions (one per
// transport): once the edge has the revocation the sessions end (their
// open streams close, so that no notification or request reaches the
// token's holder any more), the next request of each is refused (401, or
// 404 for the ended session), whether it carries the token or, as legacy
// clients do on /message, relies on the session; a token of the same
// principal that is not revoked goes on working.
func TestSecurityRevokedOpenSession(t *testing.T) {
	t.Parallel()
	servers := `"cat": ` + fixtureDef(t, "catalog", []string{"-name", "cat"}, nil)
	p := startAtrax(t, "serve", faultConfig(servers, ""), nil)
	waitUpstreams(t, p, "cat")
	victim := issueToken(t, p.HTTP, `{"token": "`+adminToken+`"}`)
	bystander := issueToken(t, p.HTTP, `{"token": "`+adminToken+`"}`)
	ctx := ctxFor(t, 2*time.Minute)

	wc := newWireClient(p.HTTP, victim.AccessToken)
	defer wc.close()
	s, standalone, legacy := openEvery(t, ctx, wc)
	wq := newWireClient(p.HTTP, victim.AccessToken)
	wq.tokenInQuery = true
	defer wq.close()
	legacyQ, err := wq.openLegacy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer legacyQ.close()
	other := newWireClient(p.HTTP, bystander.AccessToken)
	defer other.close()
	so, err := other.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	echo := toolCall("cat__echo", map[string]any{"message": "x"})
	for name, call := range map[string]func() (*rpcReply, error){
		"streamable": func() (*rpcReply, error) { return s.call(ctx, "tools/call", echo) },
		"legacy":     func() (*rpcReply, error) { return legacy.call(ctx, "tools/call", echo) },
		"legacy ?token=": func() (*rpcReply, error) {
			return legacyQ.call(ctx, "tools/call", echo)
		},
	} {
		if r, err := call(); err != nil || r.text() != "cat: x" {
			t.Fatalf("%s before the revocation: %v %+v", name, err, r)
		}
	}

	mustStatus(t, http.StatusOK, "POST", p.HTTP+"/auth/revoke", adminToken, `{"jti": "`+victim.Jti+`"}`)
	if !poll(pollTimeout, func() bool {
		return httpDo(t, "GET", p.HTTP+"/nope", victim.AccessToken, "").Status == http.StatusUnauthorized
	}) {
		t.Fatalf("the edge never learned of the revocation")
	}

	// The sessions end: their open streams carry nothing more to the
	// token's holder.
	for name, st := range map[string]*sseStream{"streamable GET stream": standalone, "legacy stream": legacy.sseStream, "legacy stream opened with ?token=": legacyQ.sseStream} {
		select {
		case <-st.done:
		case <-time.After(callTimeout):
			t.Errorf("the %s of the revoked token is still open", name)
		}
	}
	// No further request of theirs is served: 401 for the token, or 404
	// for the session that ended.
	refused := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "HTTP 401") && !strings.Contains(err.Error(), "HTTP 404") {
			t.Errorf("%s after the revocation: %v, want HTTP 401 or 404", what, err)
		}
	}
	_, err = s.call(ctx, "tools/call", echo)
	refused("streamable session", err)
	_, err = s.stream(ctx)
	refused("a new GET stream of the session", err)
	_, err = legacy.call(ctx, "tools/call", echo)
	refused("legacy session (token in the header)", err)
	// Opened with ?token=, posting without it, as the SDK's clients do.
	err = legacyQ.send(ctx, request(99, "tools/call", echo))
	refused("legacy session opened with ?token=", err)
	if r, err := wc.stateless(ctx, "tools/call", echo); err != nil || r.Status != http.StatusUnauthorized {
		t.Errorf("stateless call with the revoked token: %v %+v, want HTTP 401", err, r)
	}
	if _, err := wc.open(ctx); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("a new session with the revoked token: %v, want HTTP 401", err)
	}
	if r, err := so.call(ctx, "tools/call", echo); err != nil || r.text() != "cat: x" {
		t.Errorf("another token of the same principal after the revocation: %v %+v", err, r)
	}
}

// scopeTokens are the static tokens of TestSecurityScopes.
const (
	scopeAlphaToken = "e2e-scope-alpha-only-61a0"      // servers: alpha
	scopeEchoToken  = "e2e-scope-alpha-echo-only-9e3c" // tools: alpha__echo
)

// TestSecurityScopes checks a token's scopes on every path by which a
// tool, prompt or resource can be seen or used, on each transport: the
// lists, calls, prompts/get, resources/read (listed and templated),
// completion/complete (prompt and template refs), resources/subscribe,
// subscriptions/listen, server/discover and initialize (instructions), and
// again after the servers' lists changed (list_changed). A token limited
// to one server sees nothing of another; a token limited to one tool sees
// no other tool or prompt. Refusals look like unknown names.
func TestSecurityScopes(t *testing.T) {
	t.Parallel()
	servers := `"alpha": ` + fixtureDef(t, "catalog", []string{"-name", "alpha"}, nil) +
		`, "beta": ` + fixtureDef(t, "catalog", []string{"-name", "beta"}, nil)
	cfg := `{
  "auth": {"type": "token", "options": {"token": "` + adminToken + `", "tokens": [
    {"name": "alpha-only", "token": "` + scopeAlphaToken + `", "servers": ["alpha"]},
    {"name": "echo-only", "token": "` + scopeEchoToken + `", "tools": ["alpha__echo"]}
  ]}},
  "mcpServers": {` + servers + `}
}`
	p := startAtrax(t, "serve", cfg, nil)
	waitUpstreams(t, p, "alpha", "beta")
	ctx := ctxFor(t, 3*time.Minute)

	// client is one transport's way of sending a request.
	type client struct {
		name string
		call func(method string, params map[string]any) (*rpcReply, error)
		// instructions the client got when it started ("" for stateless:
		// server/discover tells).
		instructions string
	}
	clients := func(t *testing.T, token string) []client {
		wc := newWireClient(p.HTTP, token)
		t.Cleanup(wc.close)
		init := request(1, "initialize", map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "x", "version": "1"}})
		r, _, err := wc.post(ctx, "/mcp", 1, init)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Instructions string `json:"instructions"`
		}
		json.Unmarshal(r.Result, &res)
		s, err := wc.open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		l, err := wc.openLegacy(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.close)
		return []client{
			{"streamable", func(m string, p map[string]any) (*rpcReply, error) { return s.call(ctx, m, p) }, res.Instructions},
			{"legacy", func(m string, p map[string]any) (*rpcReply, error) { return l.call(ctx, m, p) }, res.Instructions},
			{"stateless", func(m string, p map[string]any) (*rpcReply, error) { return wc.stateless(ctx, m, p) }, ""},
		}
	}
	list := func(t *testing.T, c client, method, key string) []string {
		t.Helper()
		r, err := c.call(method, map[string]any{})
		if err != nil {
			t.Fatalf("%s %s: %v", c.name, method, err)
		}
		if r.Error != nil {
			return nil // stateless: no server this token may use offers it
		}
		out := r.names(key)
		slices.Sort(out)
		return out
	}
	refused := func(t *testing.T, c client, what, method string, params map[string]any) {
		t.Helper()
		r, err := c.call(method, params)
		if err != nil && !strings.Contains(err.Error(), "HTTP 4") {
			t.Errorf("%s: %s: %v", c.name, what, err)
			return
		}
		if r != nil && r.Error == nil && err == nil {
			t.Errorf("%s: %s answered %s; want it refused as unknown", c.name, what, r.Result)
		}
	}
	allowed := func(t *testing.T, c client, what, method string, params map[string]any) *rpcReply {
		t.Helper()
		r, err := c.call(method, params)
		if err != nil || r.Error != nil {
			t.Errorf("%s: %s: %v %+v; want it allowed", c.name, what, err, r)
		}
		return r
	}

	t.Run("one server", func(t *testing.T) {
		for _, c := range clients(t, scopeAlphaToken) {
			if got := list(t, c, "tools/list", "tools"); !slices.Equal(got, []string{"alpha__add_tool", "alpha__echo", "alpha__secret"}) {
				t.Errorf("%s: tools/list: %v, want alpha's only", c.name, got)
			}
			if got := list(t, c, "prompts/list", "prompts"); !slices.Equal(got, []string{"alpha__greet"}) {
				t.Errorf("%s: prompts/list: %v, want alpha's only", c.name, got)
			}
			if got := list(t, c, "resources/list", "resources"); !slices.Equal(got, []string{"catalog://alpha/doc"}) {
				t.Errorf("%s: resources/list: %v, want alpha's only", c.name, got)
			}
			if got := list(t, c, "resources/templates/list", "resourceTemplates"); !slices.Equal(got, []string{"catalog://alpha/items/{id}"}) {
				t.Errorf("%s: resources/templates/list: %v, want alpha's only", c.name, got)
			}
			allowed(t, c, "alpha__echo", "tools/call", toolCall("alpha__echo", nil))
			refused(t, c, "tools/call beta__echo", "tools/call", toolCall("beta__echo", nil))
			refused(t, c, "prompts/get beta__greet", "prompts/get", map[string]any{"name": "beta__greet"})
			allowed(t, c, "prompts/get alpha__greet", "prompts/get", map[string]any{"name": "alpha__greet"})
			refused(t, c, "resources/read of beta's resource", "resources/read", map[string]any{"uri": "catalog://beta/doc"})
			refused(t, c, "resources/read of beta's template", "resources/read", map[string]any{"uri": "catalog://beta/items/7"})
			if r := allowed(t, c, "resources/read of alpha's template", "resources/read", map[string]any{"uri": "catalog://alpha/items/7"}); r != nil && !strings.Contains(string(r.Result), "of alpha") {
				t.Errorf("%s: alpha's template read by %s", c.name, r.Result)
			}
			refused(t, c, "completion of beta's prompt", "completion/complete", map[string]any{
				"ref": map[string]any{"type": "ref/prompt", "name": "beta__greet"}, "argument": map[string]any{"name": "a", "value": "b"}})
			refused(t, c, "completion of beta's template", "completion/complete", map[string]any{
				"ref": map[string]any{"type": "ref/resource", "uri": "catalog://beta/items/{id}"}, "argument": map[string]any{"name": "id", "value": "1"}})
			if r := allowed(t, c, "completion of alpha's prompt", "completion/complete", map[string]any{
				"ref": map[string]any{"type": "ref/prompt", "name": "alpha__greet"}, "argument": map[string]any{"name": "a", "value": "b"}}); r != nil && !strings.Contains(string(r.Result), "completion-of-alpha") {
				t.Errorf("%s: alpha's prompt completed by %s", c.name, r.Result)
			}
			if c.name != "stateless" {
				refused(t, c, "resources/subscribe to beta's resource", "resources/subscribe", map[string]any{"uri": "catalog://beta/doc"})
				allowed(t, c, "resources/subscribe to alpha's resource", "resources/subscribe", map[string]any{"uri": "catalog://alpha/doc"})
				if strings.Contains(c.instructions, "beta") || !strings.Contains(c.instructions, "instructions of alpha") {
					t.Errorf("%s: initialize instructions %q, want alpha's only", c.name, c.instructions)
				}
			}
		}
		wc := newWireClient(p.HTTP, scopeAlphaToken)
		defer wc.close()
		d, err := wc.stateless(ctx, "server/discover", nil)
		if err != nil || d.Error != nil || strings.Contains(string(d.Result), "beta") || !strings.Contains(string(d.Result), "instructions of alpha") {
			t.Errorf("server/discover: %v %s %+v; want alpha's instructions only", err, d.Result, d.Error)
		}
		ack, err := listenAck(ctx, wc, []string{"catalog://beta/doc", "catalog://alpha/doc"})
		if err != nil {
			t.Fatalf("subscriptions/listen: %v", err)
		}
		if strings.Contains(ack, "beta") || !strings.Contains(ack, "catalog://alpha/doc") {
			t.Errorf("subscriptions/listen acknowledged %s; want alpha's resource only", ack)
		}
	})

	t.Run("one tool", func(t *testing.T) {
		for _, c := range clients(t, scopeEchoToken) {
			if got := list(t, c, "tools/list", "tools"); !slices.Equal(got, []string{"alpha__echo"}) {
				t.Errorf("%s: tools/list: %v, want only alpha__echo", c.name, got)
			}
			if got := list(t, c, "prompts/list", "prompts"); len(got) != 0 {
				t.Errorf("%s: prompts/list: %v, want none", c.name, got)
			}
			allowed(t, c, "alpha__echo", "tools/call", toolCall("alpha__echo", nil))
			refused(t, c, "tools/call alpha__secret", "tools/call", toolCall("alpha__secret", nil))
			refused(t, c, "tools/call beta__echo", "tools/call", toolCall("beta__echo", nil))
			refused(t, c, "prompts/get alpha__greet", "prompts/get", map[string]any{"name": "alpha__greet"})
			refused(t, c, "completion of alpha's prompt", "completion/complete", map[string]any{
				"ref": map[string]any{"type": "ref/prompt", "name": "alpha__greet"}, "argument": map[string]any{"name": "a", "value": "b"}})
		}
	})

	t.Run("after list_changed", func(t *testing.T) {
		admin := newWireClient(p.HTTP, adminToken)
		defer admin.close()
		alpha := clients(t, scopeAlphaToken)
		echo := clients(t, scopeEchoToken)
		for _, srv := range []string{"alpha", "beta"} {
			r, err := admin.stateless(ctx, "tools/call", toolCall(srv+"__add_tool", map[string]any{"name": "fresh"}))
			if err != nil || r.Error != nil {
				t.Fatalf("%s__add_tool: %v %+v", srv, err, r)
			}
		}
		if !poll(pollTimeout, func() bool {
			r, err := admin.stateless(ctx, "tools/list", nil)
			return err == nil && slices.Contains(r.names("tools"), "alpha__fresh") && slices.Contains(r.names("tools"), "beta__fresh")
		}) {
			t.Fatalf("the new tools were not listed for the admin")
		}
		for _, c := range alpha {
			if got := list(t, c, "tools/list", "tools"); !slices.Contains(got, "alpha__fresh") || slices.Contains(got, "beta__fresh") {
				t.Errorf("%s, one server: tools/list after list_changed: %v, want alpha__fresh and not beta__fresh", c.name, got)
			}
			allowed(t, c, "alpha__fresh", "tools/call", toolCall("alpha__fresh", nil))
			refused(t, c, "beta__fresh", "tools/call", toolCall("beta__fresh", nil))
		}
		for _, c := range echo {
			if got := list(t, c, "tools/list", "tools"); !slices.Equal(got, []string{"alpha__echo"}) {
				t.Errorf("%s, one tool: tools/list after list_changed: %v, want only alpha__echo", c.name, got)
			}
			refused(t, c, "alpha__fresh", "tools/call", toolCall("alpha__fresh", nil))
		}
	})
}

// listenAck opens a stateless subscriptions/listen stream for uris and
// returns the params of its acknowledgement, then closes it.
func listenAck(ctx context.Context, wc *wireClient, uris []string) (string, error) {
	params := map[string]any{
		"notifications": map[string]any{"resourceSubscriptions": uris},
		"_meta": map[string]any{
			"io.modelcontextprotocol/protocolVersion":    stateless,
			"io.modelcontextprotocol/clientCapabilities": map[string]any{},
		},
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", wc.url("/mcp"), bytes.NewReader(request(5, "subscriptions/listen", params)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", stateless)
	req.Header.Set("Mcp-Method", "subscriptions/listen")
	wc.authorize(req)
	resp, err := wc.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			return d, nil
		}
	}
	b, _ := io.ReadAll(resp.Body)
	return "", fmt.Errorf("HTTP %d, no event: %v %s", resp.StatusCode, sc.Err(), b)
}

// headerRecorder is a remote MCP server (streamable HTTP, go-sdk) that
// records every request it gets: headers, URL and body.
type headerRecorder struct {
	URL string
	mu  sync.Mutex
	log []string // one entry per request: method, URL, headers, body
	key []string // values of X-Upstream-Key seen
}

func startHeaderRecorder(t *testing.T) *headerRecorder {
	t.Helper()
	srv := mcp.NewServer(&mcp.Implementation{Name: "recorder", Version: "1"}, nil)
	type args struct {
		Message string `json:"message"`
	}
	mcp.AddTool(srv, &mcp.Tool{Name: "echo", Description: "answers with its message"}, func(_ context.Context, _ *mcp.CallToolRequest, in args) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "recorder: " + in.Message}}}, nil, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	rec := &headerRecorder{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s\n", r.Method, r.URL.String())
		for k, vs := range r.Header {
			fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(vs, ", "))
		}
		b.Write(body)
		rec.mu.Lock()
		rec.log = append(rec.log, b.String())
		rec.key = append(rec.key, r.Header.Get("X-Upstream-Key"))
		rec.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	rec.URL = hs.URL + "/mcp"
	return rec
}

func (h *headerRecorder) all() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.log, "\n")
}

// TestSecurityTokenStaysHome uses the gateway with client tokens in the
// header and in ?token=, on every transport, against a remote server that
// records every request it gets and a stdio server that records every line
// it reads: neither ever sees a client's token (the remote one gets the
// credential of its own config, X-Upstream-Key), the stdio child's
// environment holds none of the gateway's secrets, and no token reaches
// the gateway's log (at debug level), /status, /metrics or an error
// message.
func TestSecurityTokenStaysHome(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rec := startHeaderRecorder(t)
	record := filepath.Join(dir, "stdio.record")
	pids := filepath.Join(dir, "stdio.pids")
	const (
		clientToken  = "e2e-client-secret-token-5d1f0c"
		queryToken   = "e2e-query-secret-token-7b2a11"
		upstreamKey  = "e2e-upstream-credential-42c9e0"
		canary       = "e2e-gateway-env-canary-9a7d3b"
		invalidToken = "e2e-invalid-query-token-0e6f5d"
	)
	cfg := `{
  "auth": {"type": "token", "options": {"token": "${ADMIN_TOKEN}", "tokens": ["${QUERY_TOKEN}"]}},
  "mcpServers": {
    "remote": {"url": "` + rec.URL + `", "type": "http", "headers": {"X-Upstream-Key": "${UPSTREAM_KEY}"}},
    "local": ` + fixtureDef(t, "catalog", []string{"-name", "local", "-record", record, "-pidfile", pids}, nil) + `
  }
}`
	p := startAtrax(t, "serve", cfg, map[string]string{
		"ADMIN_TOKEN": clientToken, "QUERY_TOKEN": queryToken, "UPSTREAM_KEY": upstreamKey,
		"GATEWAY_SECRET_CANARY": canary, "ATRAX_LOG_LEVEL": "debug",
	})
	waitUpstreams(t, p, "remote", "local")
	ctx := ctxFor(t, 2*time.Minute)

	header := newWireClient(p.HTTP, clientToken)
	defer header.close()
	query := newWireClient(p.HTTP, queryToken)
	query.tokenInQuery = true
	defer query.close()
	for _, wc := range []*wireClient{header, query} {
		s, err := wc.open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		l, err := wc.openLegacy(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer l.close()
		for _, tool := range []string{"remote__echo", "local__echo"} {
			for name, call := range map[string]func() (*rpcReply, error){
				"streamable": func() (*rpcReply, error) {
					return s.call(ctx, "tools/call", toolCall(tool, map[string]any{"message": "hi"}))
				},
				"legacy": func() (*rpcReply, error) {
					return l.call(ctx, "tools/call", toolCall(tool, map[string]any{"message": "hi"}))
				},
				"stateless": func() (*rpcReply, error) {
					return wc.stateless(ctx, "tools/call", toolCall(tool, map[string]any{"message": "hi"}))
				},
			} {
				r, err := call()
				if err != nil || r.Error != nil || !strings.HasSuffix(r.text(), ": hi") {
					t.Errorf("%s %s: %v %+v", name, tool, err, r)
				}
			}
		}
		if _, err := s.call(ctx, "resources/read", map[string]any{"uri": "catalog://local/doc"}); err != nil {
			t.Error(err)
		}
		// Error messages do not repeat the token.
		r, err := s.call(ctx, "tools/call", toolCall("no__such_tool", nil))
		if err != nil || r.Error == nil {
			t.Errorf("an unknown tool: %v %+v", err, r)
		} else if strings.Contains(r.Error.Message+string(r.Error.Data), wc.token) {
			t.Errorf("the error of an unknown tool repeats the token: %+v", r.Error)
		}
	}
	bad := mcpRaw(t, "GET", p.HTTP+"/sse?token="+invalidToken, "", "Accept", "text/event-stream")
	if bad.Status != http.StatusUnauthorized || strings.Contains(string(bad.Body)+fmt.Sprint(bad.Header), invalidToken) {
		t.Errorf("GET /sse with an invalid ?token=: HTTP %d, %s; want 401 without the token", bad.Status, bad.Body)
	}

	// The remote server saw its own credential, and no client's.
	seen := rec.all()
	for _, secret := range []string{clientToken, queryToken, invalidToken, canary} {
		if strings.Contains(seen, secret) {
			t.Errorf("the remote server received a secret (%.12s...):\n%.3000s", secret, seen)
		}
	}
	rec.mu.Lock()
	for i, k := range rec.key {
		if k != upstreamKey {
			t.Errorf("request %d to the remote server: X-Upstream-Key %q, want the configured credential", i, k)
		}
	}
	rec.mu.Unlock()
	if strings.Contains(strings.ToLower(seen), "authorization: bearer") {
		t.Errorf("the remote server received an Authorization header:\n%.3000s", seen)
	}
	// The stdio server read no token, and runs without the gateway's
	// environment.
	lines, _ := os.ReadFile(record)
	if len(lines) == 0 {
		t.Fatal("the stdio server recorded nothing")
	}
	pid := lastPID(pids)
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatalf("read the stdio server's environment: %v", err)
	}
	for _, secret := range []string{clientToken, queryToken, upstreamKey, canary} {
		if bytes.Contains(lines, []byte(secret)) {
			t.Errorf("the stdio server read a secret (%.12s...)", secret)
		}
		if bytes.Contains(environ, []byte(secret)) {
			t.Errorf("the stdio server's environment holds a secret (%.12s...)", secret)
		}
	}
	for _, name := range []string{"ADMIN_TOKEN=", "QUERY_TOKEN=", "UPSTREAM_KEY=", "GATEWAY_SECRET_CANARY=", "ATRAX_LOG_LEVEL="} {
		if bytes.Contains(environ, []byte("\x00"+name)) || bytes.HasPrefix(environ, []byte(name)) {
			t.Errorf("the stdio server inherited %s from the gateway", strings.TrimSuffix(name, "="))
		}
	}
	for _, path := range []string{"/status", "/metrics"} {
		r := httpDo(t, "GET", p.HTTP+path, clientToken, "")
		if r.Status != http.StatusOK {
			t.Errorf("GET %s: HTTP %d", path, r.Status)
		}
		for _, secret := range []string{clientToken, queryToken, upstreamKey, invalidToken} {
			if strings.Contains(string(r.Body), secret) {
				t.Errorf("%s shows a secret (%.12s...)", path, secret)
			}
		}
	}
	p.checkLogsFree(t, clientToken, queryToken, upstreamKey, invalidToken, canary)
}
