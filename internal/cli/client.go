package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// rpcTimeout bounds one call to the control plane.
const rpcTimeout = 15 * time.Second

// client is a connection to the control plane's gRPC API.
type client struct {
	addr  string
	token string
	tls   *tlsFlags
	hs    *handshake // nil for plain gRPC
	cc    *grpc.ClientConn

	Servers atraxv1.ServerServiceClient
	Auth    atraxv1.AuthServiceClient
	Status  atraxv1.StatusServiceClient
	Audit   atraxv1.AuditServiceClient
}

// dial connects lazily: the first call reports an unreachable address. The
// TLS files, if any, are read here.
func (r *remoteFlags) dial() (*client, error) {
	if err := r.resolve(); err != nil {
		return nil, err
	}
	tc, hs, err := r.tls.config()
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if tc != nil {
		creds = credentials.NewTLS(tc)
	}
	cc, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, usagef("--addr %q: %v", r.addr, err)
	}
	return &client{
		addr:    r.addr,
		token:   r.token,
		tls:     &r.tls,
		hs:      hs,
		cc:      cc,
		Servers: atraxv1.NewServerServiceClient(cc),
		Auth:    atraxv1.NewAuthServiceClient(cc),
		Status:  atraxv1.NewStatusServiceClient(cc),
		Audit:   atraxv1.NewAuditServiceClient(cc),
	}, nil
}

func (c *client) Close() error { return c.cc.Close() }

// call returns a context for one call, bounded by rpcTimeout, carrying the
// token (if any) as bearer metadata.
func (c *client) call(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	if c.token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
	}
	return ctx, cancel
}

// about names what a failed call was about, for its error message.
type about struct {
	server string // the server named on the command line
	jti    string
}

// rpc is a command's one call to the control plane.
type rpc[M proto.Message] struct {
	// about is what the call is about, for its errors.
	about about
	// call makes the call; what it returns is what -o json prints.
	call func(context.Context, *client) (M, error)
	// text prints the answer for people.
	text func(M) error
	// explain, when set, explains the call's errors instead of
	// client.explain.
	explain func(*client, error) error
}

// unary dials the control plane, makes one call, and prints the answer:
// in its JSON form with -o json (out), else as x.text has it. A failed
// call's error says what to do next.
func unary[M proto.Message](ctx context.Context, r *remoteFlags, out outputFlag, x rpc[M]) error {
	c, err := r.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	cctx, cancel := c.call(ctx)
	defer cancel()
	m, err := x.call(cctx, c)
	if err != nil {
		if x.explain != nil {
			return x.explain(c, err)
		}
		return c.explain(err, x.about)
	}
	if out.json() {
		return writeJSON(r.e.stdout, m)
	}
	return x.text(m)
}

// oneCall is the setup of a command that makes one call to the control
// plane and has no flags but --addr, --token (an admin token), the TLS
// flags and -o: x states the call for the command's arguments.
func oneCall[M proto.Message](x func(e *env, args []string) rpc[M]) func(*env, *flag.FlagSet) func(context.Context, []string) error {
	return func(e *env, fs *flag.FlagSet) func(context.Context, []string) error {
		r := e.addRemoteFlags(fs, adminTokenHelp)
		out := addOutputFlag(fs)
		return func(ctx context.Context, args []string) error {
			return unary(ctx, r, *out, x(e, args))
		}
	}
}

// explain turns a failed call into an error that says what to do next.
func (c *client) explain(err error, a about) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg := st.Message()
	switch st.Code() {
	case codes.Unavailable:
		if err := c.explainTLS(msg); err != nil {
			return err
		}
		if hint := notGRPC(msg); hint {
			return fmt.Errorf("%s does not answer gRPC: is it the edge's HTTP port? Give --addr (or ATRAX_ADDR) the control plane's gRPC address, controlPlane.address in the config (default %s)", c.addr, DefaultAddr)
		}
		if strings.Contains(msg, "shutting down") {
			return fmt.Errorf("the control plane at %s is shutting down: try again once it is back", c.addr)
		}
		cause := ""
		for _, s := range []string{"connection refused", "no such host", "i/o timeout", "connection reset", "network is unreachable", "no route to host"} {
			if strings.Contains(msg, s) {
				cause = " (" + s + ")"
				break
			}
		}
		return fmt.Errorf("cannot reach the control plane at %s%s: is `atrax serve` (or `atrax controlplane`) running? (set --addr or ATRAX_ADDR)", c.addr, cause)
	case codes.DeadlineExceeded:
		return fmt.Errorf("the control plane at %s did not answer within %v: is it overloaded, or is %s some other service?", c.addr, rpcTimeout, c.addr)
	case codes.Unauthenticated:
		if c.token == "" {
			return errors.New("no token: set --token or ATRAX_TOKEN to an admin token")
		}
		return fmt.Errorf("the control plane refused the token (%s): set --token or ATRAX_TOKEN to an admin token", msg)
	case codes.PermissionDenied:
		if strings.Contains(msg, "admin scope") {
			return errors.New("the token lacks the admin scope this command needs: set --token or ATRAX_TOKEN to an admin token")
		}
		return errors.New(msg)
	case codes.NotFound:
		switch {
		case a.server != "":
			return fmt.Errorf("no server named %q (see `atrax servers list`)", a.server)
		case a.jti != "":
			return fmt.Errorf("no token with id %q", a.jti)
		}
		return errors.New(msg)
	case codes.AlreadyExists:
		if a.server != "" {
			return fmt.Errorf("a server named %q already exists (see `atrax servers get %s`; remove it first to replace it)", a.server, a.server)
		}
		return errors.New(msg)
	case codes.FailedPrecondition:
		switch {
		case strings.Contains(msg, "config file"):
			return fmt.Errorf("%s: change it in the config file, or start, stop and restart it here", msg)
		case strings.Contains(msg, "does not pin its tools"):
			return fmt.Errorf("server %q does not pin its tools (pinTools is false), so every edge serves its tools as they come and there is nothing to approve: to hold changed tools until an admin approves them, set \"pinTools\": true in its definition", a.server)
		case strings.Contains(msg, "different definitions"):
			return fmt.Errorf("%s: run `atrax servers restart %s`, wait for `atrax status --wait`, then approve again", msg, a.server)
		case strings.Contains(msg, "no connected edge reports a tool"):
			return fmt.Errorf("%s: name the server's own tools, without its prefix (see the pendingTools of `atrax status -o json`)", msg)
		case strings.Contains(msg, "no connected edge reports the tools"):
			return fmt.Errorf("%s (see `atrax status`)", msg)
		}
		return errors.New(msg)
	case codes.InvalidArgument:
		var lines []string
		for _, d := range st.Details() {
			if br, ok := d.(*errdetails.BadRequest); ok {
				for _, v := range br.GetFieldViolations() {
					lines = append(lines, fmt.Sprintf("  %s: %s", v.GetField(), v.GetDescription()))
				}
			}
		}
		if len(lines) > 0 {
			return fmt.Errorf("the control plane refused the request:\n%s", strings.Join(lines, "\n"))
		}
		return fmt.Errorf("the control plane refused the request: %s", msg)
	case codes.Unimplemented:
		return fmt.Errorf("the control plane at %s does not know this call (%s): is it another version of Atrax?", c.addr, msg)
	}
	return fmt.Errorf("the control plane failed (%s): %s", st.Code(), msg)
}

// notGRPC reports whether a transport error says the peer speaks HTTP/1.
func notGRPC(msg string) bool {
	for _, s := range []string{"server preface", "frame too large", "malformed HTTP", "HTTP/1.1 header"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
