// Package issuer mints the JWTs that /auth hands out, keeps the keys that
// sign them and the keys edges seal state with, and revokes tokens by jti.
// Keys and revocations live in the store, so they survive restarts and every
// token issued before a restart keeps working after it.
package issuer

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/atrax-mcp/atrax/controlplane/store"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// Errors, in the vocabulary of OAuth 2 (RFC 6749 section 5.2), which is what
// /auth answers with.
var (
	// ErrInvalidClient: the credential is wrong. The message is the same
	// whether or not the client exists.
	ErrInvalidClient = errors.New("invalid_client")
	// ErrInvalidRequest: the request is malformed.
	ErrInvalidRequest = errors.New("invalid_request")
	// ErrInvalidScope: the scope asks for more than the credential grants.
	ErrInvalidScope = errors.New("invalid_scope")
	// ErrUnsupportedGrantType: a grant type other than client_credentials.
	ErrUnsupportedGrantType = errors.New("unsupported_grant_type")
)

// Client is a client-credentials client from the config.
type Client struct {
	ID      string
	Secret  string
	Scopes  []string
	Servers []string // nil means all
	Tools   []string // nil means all
}

// Options configure an Issuer.
type Options struct {
	Store    store.Store
	Verifier *authn.Verifier
	Clients  []Client
	Issuer   string
	Audience string
	// TTL is the default token lifetime; MaxTTL caps a requested one.
	TTL    time.Duration
	MaxTTL time.Duration
	// OnChange is called after keys or revocations change.
	OnChange func()
	Logger   *slog.Logger
	Now      func() time.Time
}

// Issuer issues and revokes tokens.
type Issuer struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	clients []clientEntry

	mu      sync.Mutex
	signing []store.SigningKey // oldest first; the last is current
	seal    []store.SealKey    // oldest first; the last is current
	revoked map[string]time.Time
}

type clientEntry struct {
	id     [sha256.Size]byte
	secret [sha256.Size]byte
	c      Client
}

// New loads keys and revocations from the store, creating a signing key and
// a seal key when there are none, and hands the public keys and revocations
// to the verifier. With a store several control planes share
// (store.Conditional), a first key is stored only if no replica stored one
// first, so that replicas starting together agree on one of each.
func New(ctx context.Context, opts Options) (*Issuer, error) {
	i := &Issuer{opts: opts, log: opts.Logger, now: opts.Now}
	if i.log == nil {
		i.log = slog.New(slog.DiscardHandler)
	}
	if i.now == nil {
		i.now = time.Now
	}
	for _, c := range opts.Clients {
		i.clients = append(i.clients, clientEntry{
			id: sha256.Sum256([]byte(c.ID)), secret: sha256.Sum256([]byte(c.Secret)), c: c,
		})
	}
	var err error
	if i.signing, err = opts.Store.SigningKeys(ctx); err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	shared, _ := opts.Store.(store.Conditional)
	if len(i.signing) == 0 && shared != nil {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate signing key: %w", err)
		}
		k := store.SigningKey{ID: newID(8), Private: priv, Created: i.now()}
		if _, _, err := shared.PutFirstSigningKey(ctx, k); err != nil {
			return nil, fmt.Errorf("store signing key: %w", err)
		}
		// Ours, or the one another replica stored first.
		if i.signing, err = opts.Store.SigningKeys(ctx); err != nil {
			return nil, fmt.Errorf("load signing keys: %w", err)
		}
	}
	if len(i.signing) == 0 {
		if _, err := i.rotate(ctx); err != nil {
			return nil, err
		}
	}
	if i.seal, err = opts.Store.SealKeys(ctx); err != nil {
		return nil, fmt.Errorf("load seal keys: %w", err)
	}
	if len(i.seal) == 0 {
		k := store.SealKey{ID: newID(8), Key: make([]byte, 32), Created: i.now()}
		rand.Read(k.Key)
		if shared != nil {
			if _, _, err := shared.PutFirstSealKey(ctx, k); err != nil {
				return nil, fmt.Errorf("store seal key: %w", err)
			}
			if i.seal, err = opts.Store.SealKeys(ctx); err != nil {
				return nil, fmt.Errorf("load seal keys: %w", err)
			}
		} else {
			if _, err := opts.Store.PutSealKey(ctx, k); err != nil {
				return nil, fmt.Errorf("store seal key: %w", err)
			}
			i.seal = []store.SealKey{k}
		}
	}
	if i.revoked, err = opts.Store.Revocations(ctx); err != nil {
		return nil, fmt.Errorf("load revocations: %w", err)
	}
	i.pushLocked()
	return i, nil
}

// Reload reads keys and revocations from the store again and hands them to
// the verifier: with a store several control planes share, the control
// plane calls it when another replica rotated a key or revoked a token.
func (i *Issuer) Reload(ctx context.Context) error {
	signing, err := i.opts.Store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	seal, err := i.opts.Store.SealKeys(ctx)
	if err != nil {
		return fmt.Errorf("load seal keys: %w", err)
	}
	revoked, err := i.opts.Store.Revocations(ctx)
	if err != nil {
		return fmt.Errorf("load revocations: %w", err)
	}
	if len(signing) == 0 || len(seal) == 0 {
		return errors.New("load keys: the store holds no signing or no seal key")
	}
	i.mu.Lock()
	i.signing, i.seal, i.revoked = signing, seal, revoked
	i.pushLocked()
	i.mu.Unlock()
	return nil
}

func newID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// pushLocked gives the verifier the current keys and revocations.
func (i *Issuer) pushLocked() {
	keys := map[string]ed25519.PublicKey{}
	for _, k := range i.signing {
		keys[k.ID] = k.Public()
	}
	i.opts.Verifier.SetKeys(keys)
	i.opts.Verifier.SetRevocations(i.revoked)
}

// Request is a token request, already decoded from the wire.
type Request struct {
	GrantType    string
	StaticToken  string
	ClientID     string
	ClientSecret string
	// Caller is the principal of the bearer token the request came with,
	// used when it names no credential of its own.
	Caller *authn.Principal
	Scope  string
	TTL    time.Duration
}

// Token is an issued token.
type Token struct {
	Value     string
	ID        string
	ExpiresIn time.Duration
	Scope     string
}

// Issue checks the request's credential and returns a token granting at most
// what the credential grants, narrowed by the requested scope.
func (i *Issuer) Issue(ctx context.Context, req Request) (Token, error) {
	if req.GrantType != "" && req.GrantType != "client_credentials" {
		return Token{}, fmt.Errorf("%w: grant_type %q is not supported; use client_credentials", ErrUnsupportedGrantType, req.GrantType)
	}
	base, err := i.authenticate(req)
	if err != nil {
		return Token{}, err
	}
	p, err := narrow(base, req.Scope)
	if err != nil {
		return Token{}, err
	}
	ttl := i.opts.TTL
	if req.TTL < 0 {
		return Token{}, fmt.Errorf("%w: ttl must be positive", ErrInvalidRequest)
	}
	if req.TTL > 0 {
		ttl = req.TTL
	}
	if ttl > i.opts.MaxTTL {
		return Token{}, fmt.Errorf("%w: ttl %s is longer than auth.options.maxTtl (%s)", ErrInvalidRequest, ttl, i.opts.MaxTTL)
	}
	// A token derived from a JWT never outlives it.
	if !base.ExpiresAt.IsZero() {
		if left := base.ExpiresAt.Sub(i.now()); left < ttl {
			ttl = left.Truncate(time.Second)
		}
	}
	if ttl <= 0 {
		return Token{}, fmt.Errorf("%w: the presented token has expired", ErrInvalidClient)
	}
	i.mu.Lock()
	key := i.signing[len(i.signing)-1]
	i.mu.Unlock()
	jti := newID(16)
	claims := authn.NewClaims(p, i.opts.Issuer, i.opts.Audience, jti, i.now(), ttl)
	s, err := authn.Sign(key.Private, key.ID, claims)
	if err != nil {
		return Token{}, err
	}
	return Token{Value: s, ID: jti, ExpiresIn: ttl, Scope: grantedScope(p)}, nil
}

// grantedScope writes what a token grants in the scope syntax /auth takes:
// its scopes, and its server and tool patterns unless they allow all.
func grantedScope(p *authn.Principal) string {
	items := slices.Clone(p.Scopes)
	if !slices.Equal(p.Servers, []string{"*"}) {
		for _, s := range p.Servers {
			items = append(items, "server:"+s)
		}
	}
	if !slices.Equal(p.Tools, []string{"*"}) {
		for _, t := range p.Tools {
			items = append(items, "tool:"+t)
		}
	}
	return strings.Join(items, " ")
}

// authenticate returns the principal the request's credential stands for.
func (i *Issuer) authenticate(req Request) (*authn.Principal, error) {
	switch {
	case req.StaticToken != "" && req.ClientID != "":
		return nil, fmt.Errorf("%w: give either token or client_id, not both", ErrInvalidRequest)
	case req.StaticToken != "":
		if i.opts.Verifier.Mode() == authn.ModeNone {
			return authn.Anonymous(), nil
		}
		p, ok := i.opts.Verifier.VerifyStatic(req.StaticToken)
		if !ok {
			return nil, fmt.Errorf("%w: unknown token", ErrInvalidClient)
		}
		return p, nil
	case req.ClientID != "":
		c, ok := i.client(req.ClientID, req.ClientSecret)
		if !ok {
			return nil, fmt.Errorf("%w: unknown client or wrong secret", ErrInvalidClient)
		}
		return &authn.Principal{
			Subject: "client:" + c.ID,
			Kind:    authn.KindJWT,
			Scopes:  slices.Clone(c.Scopes),
			Servers: allowList(c.Servers),
			Tools:   allowList(c.Tools),
		}, nil
	case req.Caller != nil:
		return req.Caller, nil
	default:
		return nil, fmt.Errorf("%w: no credential: send token, client_id and client_secret, or a bearer token", ErrInvalidClient)
	}
}

// client finds a client in time that does not depend on which part of the
// id or secret differs.
func (i *Issuer) client(id, secret string) (Client, bool) {
	idSum, secretSum := sha256.Sum256([]byte(id)), sha256.Sum256([]byte(secret))
	var found *Client
	for k := range i.clients {
		e := &i.clients[k]
		if subtle.ConstantTimeCompare(idSum[:], e.id[:])&subtle.ConstantTimeCompare(secretSum[:], e.secret[:]) == 1 && found == nil {
			found = &e.c
		}
	}
	if found == nil {
		return Client{}, false
	}
	return *found, true
}

func allowList(p []string) []string {
	if p == nil {
		return authn.AllowAll()
	}
	return slices.Clone(p)
}

// narrow applies a requested scope ("admin edge server:memory tool:memory__*")
// to p. Every requested item must be covered by what p holds. Without server:
// items the servers stay as they were; likewise tools; an empty scope keeps
// everything.
func narrow(p *authn.Principal, scope string) (*authn.Principal, error) {
	items := strings.Fields(scope)
	if len(items) == 0 {
		return p, nil
	}
	out := &authn.Principal{Subject: p.Subject, Kind: p.Kind, ExpiresAt: p.ExpiresAt, Scopes: []string{}}
	var servers, tools []string
	for _, it := range items {
		switch {
		case it == authn.ScopeAdmin || it == authn.ScopeEdge:
			if !p.HasScope(it) {
				return nil, fmt.Errorf("%w: scope %q is not granted to this credential", ErrInvalidScope, it)
			}
			if !slices.Contains(out.Scopes, it) {
				out.Scopes = append(out.Scopes, it)
			}
		case strings.HasPrefix(it, "server:"):
			pat := strings.TrimPrefix(it, "server:")
			if pat == "" || !authn.Covers(p.Servers, pat) {
				return nil, fmt.Errorf("%w: %q is not granted to this credential", ErrInvalidScope, it)
			}
			servers = append(servers, pat)
		case strings.HasPrefix(it, "tool:"):
			pat := strings.TrimPrefix(it, "tool:")
			if pat == "" || !authn.Covers(p.Tools, pat) {
				return nil, fmt.Errorf("%w: %q is not granted to this credential", ErrInvalidScope, it)
			}
			tools = append(tools, pat)
		default:
			return nil, fmt.Errorf("%w: unknown scope %q (want admin, edge, server:PATTERN or tool:PATTERN)", ErrInvalidScope, it)
		}
	}
	out.Servers, out.Tools = slices.Clone(p.Servers), slices.Clone(p.Tools)
	if servers != nil {
		out.Servers = servers
	}
	if tools != nil {
		out.Tools = tools
	}
	return out, nil
}

// Revoke revokes the token jti. Its expiry is unknown here, so the
// revocation is kept as long as any issued token can live.
func (i *Issuer) Revoke(ctx context.Context, jti string) (time.Time, error) {
	if jti == "" {
		return time.Time{}, fmt.Errorf("%w: jti is required", ErrInvalidRequest)
	}
	now := i.now()
	if _, err := i.opts.Store.Revoke(ctx, jti, now.Add(i.opts.MaxTTL)); err != nil {
		return time.Time{}, fmt.Errorf("store revocation: %w", err)
	}
	i.mu.Lock()
	i.revoked[jti] = now.Add(i.opts.MaxTTL)
	i.mu.Unlock()
	i.opts.Verifier.Revoke(jti, now.Add(i.opts.MaxTTL))
	i.changed()
	return now, nil
}

// Rotate makes a new signing key current. Keys older than the longest token
// lifetime are dropped: nothing they signed can still be valid.
func (i *Issuer) Rotate(ctx context.Context) (store.SigningKey, error) {
	k, err := i.rotate(ctx)
	if err != nil {
		return store.SigningKey{}, err
	}
	i.mu.Lock()
	i.pushLocked()
	i.mu.Unlock()
	i.changed()
	return k, nil
}

// RotateIfDue rotates the signing key when the current one is every old
// or older (auth.options.keyRotation), and reports whether it did. It reads
// the keys from the store first, so that a replica that has just been
// elected to rotate does not act on a view older than the fleet's.
func (i *Issuer) RotateIfDue(ctx context.Context, every time.Duration) (bool, error) {
	if every <= 0 {
		return false, nil
	}
	if err := i.Reload(ctx); err != nil {
		return false, err
	}
	i.mu.Lock()
	current := i.signing[len(i.signing)-1].Created
	i.mu.Unlock()
	if i.now().Sub(current) < every {
		return false, nil
	}
	if _, err := i.Rotate(ctx); err != nil {
		return false, err
	}
	return true, nil
}

func (i *Issuer) rotate(ctx context.Context) (store.SigningKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	k := store.SigningKey{ID: newID(8), Private: priv, Created: i.now()}
	if _, err := i.opts.Store.PutSigningKey(ctx, k); err != nil {
		return store.SigningKey{}, fmt.Errorf("store signing key: %w", err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.signing = append(i.signing, k)
	// A key retired (superseded) more than MaxTTL ago verifies nothing.
	for len(i.signing) > 1 && i.now().Sub(i.signing[1].Created) > i.opts.MaxTTL+time.Minute {
		old := i.signing[0]
		if _, err := i.opts.Store.DeleteSigningKey(ctx, old.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return k, fmt.Errorf("delete retired signing key: %w", err)
		}
		i.signing = i.signing[1:]
	}
	return k, nil
}

// Prune forgets revocations of tokens that have expired anyway.
func (i *Issuer) Prune(ctx context.Context) error {
	n, _, err := i.opts.Store.PruneRevocations(ctx, i.now())
	if err != nil {
		return fmt.Errorf("prune revocations: %w", err)
	}
	if n == 0 {
		return nil
	}
	rev, err := i.opts.Store.Revocations(ctx)
	if err != nil {
		return fmt.Errorf("load revocations: %w", err)
	}
	i.mu.Lock()
	i.revoked = rev
	i.pushLocked()
	i.mu.Unlock()
	i.changed()
	return nil
}

func (i *Issuer) changed() {
	if i.opts.OnChange != nil {
		i.opts.OnChange()
	}
}

// PublicKey is a verification key.
type PublicKey struct {
	ID      string
	Key     ed25519.PublicKey
	Created time.Time
}

// PublicKeys returns the keys that verify issued tokens, oldest first.
func (i *Issuer) PublicKeys() []PublicKey {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make([]PublicKey, 0, len(i.signing))
	for _, k := range i.signing {
		out = append(out, PublicKey{ID: k.ID, Key: k.Public(), Created: k.Created})
	}
	return out
}

// SealKeys returns the seal keys, current first.
func (i *Issuer) SealKeys() []store.SealKey {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := slices.Clone(i.seal)
	slices.Reverse(out)
	return out
}

// Revocations returns the revoked token ids and their expiries.
func (i *Issuer) Revocations() map[string]time.Time {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make(map[string]time.Time, len(i.revoked))
	for k, v := range i.revoked {
		out[k] = v
	}
	return out
}
