// Package idp is a real OpenID provider for the end-to-end tests: the
// provider of github.com/zitadel/oidc/v3 (its op package) over a small
// in-memory storage, on 127.0.0.1.
//
// It serves OpenID Connect discovery, its JWKS, authorization code with
// PKCE (a login page that approves the one test user at once, so a client
// can follow the redirects headlessly), client credentials, and token
// introspection. It honours RFC 8707 resource indicators: the resource a
// client names at /authorize (or at the token endpoint, for client
// credentials) becomes the access token's aud; without one the aud is the
// client id, as zitadel's example does. Access tokens are RS256 JWTs with
// the granted scopes in "scope", or opaque ones for a client that asks.
//
// Mint signs any claims with the provider's own key, so that tests can make
// the tokens a real provider would never hand out (expired, another
// issuer) and still have them verify.
package idp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// KeyID is the kid of the provider's signing key.
const KeyID = "idp-e2e-1"

// Client is an OAuth client registered with the provider.
type Client struct {
	ID string
	// Secret is empty for a public client, which must use PKCE.
	Secret string
	// RedirectURIs are where the authorization code may go.
	RedirectURIs []string
	// Opaque makes the client's access tokens opaque (introspected)
	// rather than JWTs.
	Opaque bool
}

// Options configure Start.
type Options struct {
	// User is the subject the login page approves ("alice" when empty).
	User string
	// Clients are the registered clients.
	Clients []Client
	// TokenTTL is the lifetime of access tokens (5 minutes when 0).
	TokenTTL time.Duration
	// Cert, when set, makes the provider serve HTTPS with this
	// certificate (one for 127.0.0.1), as a provider behind a private CA.
	Cert *tls.Certificate
}

// Provider is a running OpenID provider.
type Provider struct {
	// Issuer is the provider's issuer URL, http://127.0.0.1:PORT (https
	// with Options.Cert).
	Issuer string

	srv     *httptest.Server
	key     *rsa.PrivateKey
	storage *storage
}

// Start runs a provider until the test ends.
func Start(t testing.TB, opts Options) *Provider {
	t.Helper()
	if opts.User == "" {
		opts.User = "alice"
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = 5 * time.Minute
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	scheme := "http"
	if opts.Cert != nil {
		scheme = "https"
	}
	p := &Provider{Issuer: scheme + "://" + lis.Addr().String(), key: key}
	p.storage = &storage{
		user:     opts.User,
		ttl:      opts.TokenTTL,
		key:      key,
		clients:  map[string]*client{},
		requests: map[string]*authRequest{},
		codes:    map[string]string{},
		tokens:   map[string]*accessToken{},
	}
	for _, c := range opts.Clients {
		p.storage.clients[c.ID] = &client{Client: c}
	}
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:      sha256.Sum256([]byte("atrax e2e idp")),
		CodeMethodS256: true,
		AuthMethodPost: true,
	}, p.storage, op.StaticIssuer(p.Issuer), op.WithAllowInsecure())
	if err != nil {
		t.Fatal(err)
	}
	callback := op.AuthCallbackURL(provider)
	mux := http.NewServeMux()
	// The login page: the test user approves whatever was asked, at once.
	mux.Handle("/login", op.NewIssuerInterceptor(provider.IssuerFromRequest).HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("authRequestID")
		if err := p.storage.approve(id); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
	}))
	mux.Handle("/", withResource(provider))
	p.srv = httptest.NewUnstartedServer(mux)
	p.srv.Listener.Close()
	p.srv.Listener = lis
	if opts.Cert != nil {
		p.srv.TLS = &tls.Config{Certificates: []tls.Certificate{*opts.Cert}}
		p.srv.StartTLS()
	} else {
		p.srv.Start()
	}
	t.Cleanup(p.srv.Close)
	return p
}

// Mint returns claims signed with the provider's key under KeyID, as the
// provider signs its access tokens.
func (p *Provider) Mint(claims map[string]any) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(claims))
	tok.Header["kid"] = KeyID
	return tok.SignedString(p.key)
}

// ClientCredentials asks the token endpoint for an access token with the
// client credentials grant, for scope and, when not empty, the RFC 8707
// resource.
func (p *Provider) ClientCredentials(ctx context.Context, id, secret, scope, resource string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	if resource != "" {
		form.Set("resource", resource)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Issuer+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := p.srv.Client().Do(req) // trusts Options.Cert
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK || out.AccessToken == "" {
		return "", fmt.Errorf("token endpoint: %d %s %s", resp.StatusCode, out.Error, out.Description)
	}
	return out.AccessToken, nil
}

// Issued returns the access tokens the provider has issued so far: client,
// subject, audience and scopes of each.
func (p *Provider) Issued() []Issued {
	p.storage.mu.Lock()
	defer p.storage.mu.Unlock()
	var out []Issued
	for _, t := range p.storage.tokens {
		out = append(out, Issued{ClientID: t.clientID, Subject: t.subject, Audience: slices.Clone(t.audience), Scopes: slices.Clone(t.scopes)})
	}
	return out
}

// Issued is one access token the provider issued.
type Issued struct {
	ClientID, Subject string
	Audience, Scopes  []string
}

// resourceKey is the context key of the RFC 8707 resources of a request.
type resourceKey struct{}

// withResource reads the resource parameters of /authorize and the token
// endpoint into the request's context, where the storage finds them: the
// op package does not read them itself.
func withResource(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var resources []string
		switch r.URL.Path {
		case "/authorize":
			resources = r.URL.Query()["resource"]
		case "/oauth/token":
			if err := r.ParseForm(); err == nil {
				resources = r.PostForm["resource"]
			}
		}
		if len(resources) > 0 {
			r = r.WithContext(context.WithValue(r.Context(), resourceKey{}, resources))
		}
		next.ServeHTTP(w, r)
	})
}

func resources(ctx context.Context) []string {
	r, _ := ctx.Value(resourceKey{}).([]string)
	return r
}

// storage is op.Storage in memory.
type storage struct {
	user string
	ttl  time.Duration
	key  *rsa.PrivateKey

	mu       sync.Mutex
	clients  map[string]*client
	requests map[string]*authRequest // by id
	codes    map[string]string       // code to request id
	tokens   map[string]*accessToken // by id
}

var (
	_ op.Storage                  = (*storage)(nil)
	_ op.ClientCredentialsStorage = (*storage)(nil)
)

type accessToken struct {
	id, clientID, subject string
	audience, scopes      []string
	expires, issued       time.Time
}

func newID() string { return rand.Text() }

func (s *storage) approve(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.requests[id]
	if !ok {
		return errors.New("no such auth request")
	}
	req.subject, req.done, req.authTime = s.user, true, time.Now()
	return nil
}

func (s *storage) CreateAuthRequest(ctx context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	req := &authRequest{
		id: newID(), clientID: r.ClientID, redirectURI: r.RedirectURI, state: r.State, nonce: r.Nonce,
		scopes: r.Scopes, responseType: r.ResponseType, responseMode: r.ResponseMode,
		audience: resources(ctx),
	}
	if r.CodeChallenge != "" {
		req.challenge = &oidc.CodeChallenge{Challenge: r.CodeChallenge, Method: r.CodeChallengeMethod}
	}
	if len(req.audience) == 0 {
		req.audience = []string{r.ClientID}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[req.id] = req
	return req, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if req, ok := s.requests[id]; ok {
		return req, nil
	}
	return nil, errors.New("auth request not found")
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errors.New("code not found")
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
		}
	}
	return nil
}

func (s *storage) CreateAccessToken(_ context.Context, r op.TokenRequest) (string, time.Time, error) {
	t := &accessToken{
		id: newID(), subject: r.GetSubject(), audience: slices.Clone(r.GetAudience()), scopes: slices.Clone(r.GetScopes()),
		issued: time.Now(), expires: time.Now().Add(s.ttl),
	}
	switch r := r.(type) {
	case *authRequest:
		t.clientID = r.clientID
	case *credentialsRequest:
		t.clientID = r.clientID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[t.id] = t
	return t.id, t.expires, nil
}

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("refresh tokens are not issued here")
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

func (s *storage) RevokeToken(_ context.Context, tokenOrID, _, _ string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, tokenOrID)
	return nil
}

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{s.key}, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{&s.key.PublicKey}}, nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[id]; ok {
		return c, nil
	}
	return nil, errors.New("client not found")
}

func (s *storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	_, err := s.ClientCredentials(ctx, id, secret)
	return err
}

func (s *storage) ClientCredentials(_ context.Context, id, secret string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok || c.Secret == "" || c.Secret != secret {
		return nil, errors.New("wrong client credentials")
	}
	return c, nil
}

func (s *storage) ClientCredentialsTokenRequest(ctx context.Context, id string, scopes []string) (op.TokenRequest, error) {
	aud := resources(ctx)
	if len(aud) == 0 {
		aud = []string{id}
	}
	return &credentialsRequest{clientID: id, audience: aud, scopes: scopes}, nil
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

func (s *storage) SetUserinfoFromRequest(_ context.Context, u *oidc.UserInfo, r op.IDTokenRequest, _ []string) error {
	u.Subject = r.GetSubject()
	return nil
}

func (s *storage) SetUserinfoFromToken(_ context.Context, u *oidc.UserInfo, _, subject, _ string) error {
	u.Subject = subject
	return nil
}

func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tokenID]
	if !ok || time.Now().After(t.expires) {
		return errors.New("token not active")
	}
	resp.Scope = t.scopes
	resp.ClientID = t.clientID
	resp.Subject = subject
	resp.Audience = t.audience
	resp.Expiration = oidc.FromTime(t.expires)
	resp.IssuedAt = oidc.FromTime(t.issued)
	resp.JWTID = t.id
	resp.TokenType = oidc.BearerToken
	return nil
}

// GetPrivateClaimsFromRequest puts the granted scopes in JWT access tokens'
// "scope", as most providers do (zitadel's op leaves it out).
func (s *storage) GetPrivateClaimsFromRequest(_ context.Context, r op.TokenRequest, _ []string) (map[string]any, error) {
	return map[string]any{"scope": strings.Join(r.GetScopes(), " ")}, nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("no client keys")
}

func (s *storage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (s *storage) Health(context.Context) error { return nil }

// signingKey and publicKey are the provider's RSA key as op wants them.
type signingKey struct{ k *rsa.PrivateKey }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.k }
func (k signingKey) ID() string                                  { return KeyID }

type publicKey struct{ k *rsa.PublicKey }

func (k publicKey) ID() string                         { return KeyID }
func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return k.k }

// client is a registered client as op sees it.
type client struct{ Client }

func (c *client) GetID() string                        { return c.ID }
func (c *client) RedirectURIs() []string               { return c.Client.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string     { return nil }
func (c *client) LoginURL(id string) string            { return "/login?authRequestID=" + id }
func (c *client) IDTokenLifetime() time.Duration       { return time.Hour }
func (c *client) DevMode() bool                        { return true }
func (c *client) IsScopeAllowed(string) bool           { return true }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }

func (c *client) ApplicationType() op.ApplicationType {
	if c.Secret == "" {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.Secret == "" {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *client) GrantTypes() []oidc.GrantType {
	if c.Secret == "" {
		return []oidc.GrantType{oidc.GrantTypeCode}
	}
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeClientCredentials}
}

func (c *client) AccessTokenType() op.AccessTokenType {
	if c.Opaque {
		return op.AccessTokenTypeBearer
	}
	return op.AccessTokenTypeJWT
}

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// authRequest is an authorization request as op sees it.
type authRequest struct {
	id, clientID, redirectURI, state, nonce string
	scopes                                  []string
	audience                                []string
	responseType                            oidc.ResponseType
	responseMode                            oidc.ResponseMode
	challenge                               *oidc.CodeChallenge
	subject                                 string
	done                                    bool
	authTime                                time.Time
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string                 { return a.audience }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

// credentialsRequest is a client credentials token request.
type credentialsRequest struct {
	clientID         string
	audience, scopes []string
}

func (r *credentialsRequest) GetSubject() string    { return r.clientID }
func (r *credentialsRequest) GetAudience() []string { return r.audience }
func (r *credentialsRequest) GetScopes() []string   { return r.scopes }
