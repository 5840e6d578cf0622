package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// rpcTimeout bounds one call to the control plane.
const rpcTimeout = 15 * time.Second

// client is a connection to the control plane's gRPC API.
type client struct {
	addr  string
	token string
	cc    *grpc.ClientConn

	Servers atraxv1.ServerServiceClient
	Auth    atraxv1.AuthServiceClient
	Status  atraxv1.StatusServiceClient
	Audit   atraxv1.AuditServiceClient
}

// dial connects lazily: the first call reports an unreachable address.
func (r *remoteFlags) dial() (*client, error) {
	if err := r.resolve(); err != nil {
		return nil, err
	}
	cc, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, usagef("--addr %q: %v", r.addr, err)
	}
	return &client{
		addr:    r.addr,
		token:   r.token,
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

// explain turns a failed call into an error that says what to do next.
func (c *client) explain(err error, a about) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg := st.Message()
	switch st.Code() {
	case codes.Unavailable:
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
		if strings.Contains(msg, "config file") {
			return fmt.Errorf("%s: change it in the config file, or start, stop and restart it here", msg)
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
