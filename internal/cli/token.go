package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

const envClientSecret = "ATRAX_CLIENT_SECRET"

var tokenIssue = &command{
	name:    "token issue",
	summary: "issue a JWT, from your token or a client's id and secret",
	detail: `
Without --client the new token is derived from the caller's token (--token or
ATRAX_TOKEN; a static token of the config, or a JWT): it never has more
rights, and never outlives it. With --client
and --secret (or ATRAX_CLIENT_SECRET) a client of auth.options.clients gets
one (OAuth 2 client credentials). --scope narrows it, for example
--scope server:memory --scope 'tool:memory__read_*'.

  export TOKEN=$(atrax token issue --scope server:memory --ttl 15m -q)`,
	setup: func(e *env, fs *flag.FlagSet) func(context.Context, []string) error {
		r := e.addRemoteFlags(fs, "`TOKEN` to derive the new one from")
		out := addOutputFlag(fs)
		var (
			clientID, secret, ttl string
			scopes                listFlag
			quiet                 bool
		)
		fs.StringVar(&clientID, "client", "", "client `ID` of auth.options.clients")
		fs.StringVar(&secret, "secret", "", "the client's `SECRET` (default $"+envClientSecret+")")
		fs.Var(&scopes, "scope", "narrow the token to `SCOPE`: admin, edge, server:PATTERN or tool:PATTERN (may be repeated)")
		fs.StringVar(&ttl, "ttl", "", "lifetime `DURATION`, such as 15m (default auth.options.ttl)")
		fs.BoolVar(&quiet, "q", false, "print only the token")
		return func(ctx context.Context, _ []string) error {
			if ttl != "" {
				if d, err := time.ParseDuration(ttl); err != nil || d <= 0 {
					return usagef("--ttl %q: want a positive duration such as 15m or 2h", ttl)
				}
			}
			req := &atraxv1.IssueTokenRequest{Scope: strings.Join(scopes, " "), Ttl: ttl}
			if err := r.resolve(); err != nil {
				return err
			}
			if clientID != "" {
				if secret == "" {
					secret = e.getenv(envClientSecret)
				}
				if secret == "" {
					return usagef("--client %s needs --secret (or %s)", clientID, envClientSecret)
				}
				req.GrantType, req.ClientId, req.ClientSecret = "client_credentials", clientID, secret
				r.token = "" // the client's credential alone
			} else if secret != "" {
				return usagef("--secret needs --client")
			} else if r.token == "" {
				return usagef("no credential: set --token or ATRAX_TOKEN, or give --client and --secret")
			} else if !looksLikeJWT(r.token) {
				// A static token is exchanged as such (as POST /auth
				// {"token": ...} does): in "jwt" mode it is not accepted as
				// a bearer token.
				req.Token, r.token = r.token, ""
			}
			format := *out
			if quiet {
				format = "table" // the token alone, even with -o json
			}
			return unary(ctx, r, format, rpc[*atraxv1.IssueTokenResponse]{
				call: func(ctx context.Context, c *client) (*atraxv1.IssueTokenResponse, error) {
					return c.Auth.IssueToken(ctx, req)
				},
				explain: func(c *client, err error) error { return explainIssue(c, err, clientID) },
				text: func(resp *atraxv1.IssueTokenResponse) error {
					if quiet {
						fmt.Fprintln(e.stdout, resp.GetAccessToken())
						return nil
					}
					f := newFields(e.stdout)
					f.add("token", resp.GetAccessToken())
					f.add("jti", resp.GetJti())
					f.add("scope", resp.GetScope())
					f.add("expires in", (time.Duration(resp.GetExpiresIn()) * time.Second).String())
					return f.flush()
				},
			})
		}
	},
}

// looksLikeJWT reports whether a token is a JWS in compact form.
func looksLikeJWT(t string) bool {
	return strings.HasPrefix(t, "eyJ") && strings.Count(t, ".") == 2
}

// explainIssue explains IssueToken's errors, which differ: the call is
// public, so a token the control plane does not accept comes back as "no
// credential".
func explainIssue(c *client, err error, clientID string) error {
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.Unauthenticated:
		if clientID != "" {
			return fmt.Errorf("the control plane refused client %q: check --client and --secret (or %s)", clientID, envClientSecret)
		}
		return errors.New("the control plane refused the token: set --token or ATRAX_TOKEN to a token it accepts")
	case codes.InvalidArgument:
		return fmt.Errorf("the control plane refused the request: %s", st.Message())
	}
	return c.explain(err, about{})
}

var tokenRevoke = &command{
	name:    "token revoke",
	args:    "JTI",
	summary: "revoke an issued token by its id (jti)",
	minArgs: 1, maxArgs: 1,
	setup: oneCall(func(e *env, args []string) rpc[*atraxv1.RevokeTokenResponse] {
		return rpc[*atraxv1.RevokeTokenResponse]{
			about: about{jti: args[0]},
			call: func(ctx context.Context, c *client) (*atraxv1.RevokeTokenResponse, error) {
				return c.Auth.RevokeToken(ctx, &atraxv1.RevokeTokenRequest{Jti: args[0]})
			},
			text: func(resp *atraxv1.RevokeTokenResponse) error {
				fmt.Fprintf(e.stdout, "Revoked token %s; every edge refuses it from now on.\n", resp.GetJti())
				return nil
			},
		}
	}),
}
