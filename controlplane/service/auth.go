package service

import (
	"context"
	"encoding/base64"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atrax-mcp/atrax/controlplane/issuer"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/authn"
)

// Auth implements atraxv1.AuthServiceServer.
type Auth struct {
	atraxv1.UnimplementedAuthServiceServer
	Issuer *issuer.Issuer
	Audit  *Auditor
}

var _ atraxv1.AuthServiceServer = (*Auth)(nil)

func (a *Auth) IssueToken(ctx context.Context, req *atraxv1.IssueTokenRequest) (*atraxv1.IssueTokenResponse, error) {
	r := issuer.Request{
		GrantType:    req.GetGrantType(),
		StaticToken:  req.GetToken(),
		ClientID:     req.GetClientId(),
		ClientSecret: req.GetClientSecret(),
		Caller:       authn.FromContext(ctx),
		Scope:        req.GetScope(),
	}
	if req.GetTtl() != "" {
		d, err := time.ParseDuration(req.GetTtl())
		if err != nil {
			return nil, toStatus(wrapInvalid("ttl: not a duration such as \"15m\" or \"1h\""))
		}
		r.TTL = d
	}
	// OAuth 2 clients may authenticate with HTTP Basic (RFC 6749 2.3.1),
	// which arrives here as authorization metadata.
	if r.ClientID == "" && r.StaticToken == "" {
		if id, secret, ok := basicAuth(ctx); ok {
			r.ClientID, r.ClientSecret = id, secret
			r.Caller = nil
		}
	}
	tok, err := a.Issuer.Issue(ctx, r)
	a.Audit.Token(ctx, r, tok.ID, err)
	if err != nil {
		return nil, toStatus(err)
	}
	return &atraxv1.IssueTokenResponse{
		AccessToken: tok.Value,
		TokenType:   "Bearer",
		ExpiresIn:   int32(tok.ExpiresIn / time.Second),
		Scope:       tok.Scope,
		Jti:         tok.ID,
	}, nil
}

func wrapInvalid(msg string) error {
	return &invalidRequest{msg}
}

type invalidRequest struct{ msg string }

func (e *invalidRequest) Error() string { return e.msg }
func (e *invalidRequest) Unwrap() error { return issuer.ErrInvalidRequest }

// basicAuth returns the client id and secret of an HTTP Basic authorization,
// form-decoded as RFC 6749 section 2.3.1 asks.
func basicAuth(ctx context.Context) (id, secret string, ok bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		scheme, rest, found := strings.Cut(strings.TrimSpace(v), " ")
		if !found || !strings.EqualFold(scheme, "Basic") {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
		if err != nil {
			return "", "", false
		}
		u, p, found := strings.Cut(string(raw), ":")
		if !found {
			return "", "", false
		}
		if du, err := url.QueryUnescape(u); err == nil {
			u = du
		}
		if dp, err := url.QueryUnescape(p); err == nil {
			p = dp
		}
		return u, p, true
	}
	return "", "", false
}

func (a *Auth) RevokeToken(ctx context.Context, req *atraxv1.RevokeTokenRequest) (*atraxv1.RevokeTokenResponse, error) {
	if req.GetJti() == "" {
		return nil, required("jti")
	}
	at, err := a.Issuer.Revoke(ctx, req.GetJti())
	a.Audit.ChangeWith(ctx, "token.revoke", "", map[string]string{"jti": req.GetJti()}, err)
	if err != nil {
		return nil, toStatus(err)
	}
	return &atraxv1.RevokeTokenResponse{Jti: req.GetJti(), RevokeTime: timestamppb.New(at)}, nil
}

func (a *Auth) ListSigningKeys(ctx context.Context, _ *atraxv1.ListSigningKeysRequest) (*atraxv1.ListSigningKeysResponse, error) {
	keys := a.Issuer.PublicKeys()
	out := &atraxv1.ListSigningKeysResponse{}
	for _, k := range keys {
		out.Keys = append(out.Keys, jwk(k))
	}
	return out, nil
}

func (a *Auth) RotateSigningKey(ctx context.Context, _ *atraxv1.RotateSigningKeyRequest) (*atraxv1.RotateSigningKeyResponse, error) {
	k, err := a.Issuer.Rotate(ctx)
	a.Audit.Change(ctx, "key.rotate", "", err)
	if err != nil {
		return nil, toStatus(err)
	}
	return &atraxv1.RotateSigningKeyResponse{Key: jwk(issuer.PublicKey{ID: k.ID, Key: k.Public(), Created: k.Created})}, nil
}

// jwk is the RFC 8037 form of an Ed25519 public key.
func jwk(k issuer.PublicKey) *atraxv1.Jwk {
	return &atraxv1.Jwk{
		Kty: "OKP",
		Crv: "Ed25519",
		X:   base64.RawURLEncoding.EncodeToString(k.Key),
		Kid: k.ID,
		Use: "sig",
		Alg: authn.Algorithm,
	}
}
