// Package restgw serves the control plane's REST surface on the edge's
// public port: grpc-gateway translating the seed's paths (/auth, /status,
// /servers/*, ...) into gRPC calls to the control plane. Forwarding over
// gRPC, rather than calling the services in process, is what makes the
// control plane's interceptors guard REST exactly as they guard grpcurl.
package restgw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/atrax-mcp/atrax/edge/httpauth"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/logctx"
)

// Verifier checks tokens (authn.Verifier).
type Verifier interface {
	Verify(ctx context.Context, token string) (*authn.Principal, error)
}

// New returns the REST handler, forwarding over conn. v checks the token of
// requests the API has no route for: the control plane decides every
// request it receives, but an unknown path is answered here, and it must not
// tell a caller without a valid token what exists.
func New(ctx context.Context, conn *grpc.ClientConn, v Verifier) (http.Handler, error) {
	jsonpb := &strictJSON{JSONPb: &runtime.JSONPb{
		// The REST JSON is the config file's vocabulary: field names as
		// the protos' json_name, empty fields left out, and unknown fields
		// refused rather than silently dropped.
		MarshalOptions:   protojson.MarshalOptions{},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}}
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{Marshaler: jsonpb}),
		runtime.WithMarshalerOption("application/x-www-form-urlencoded", &formMarshaler{strictJSON: jsonpb}),
		runtime.WithErrorHandler(errorHandler),
		runtime.WithRoutingErrorHandler(func(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, status int) {
			if _, err := v.Verify(ctx, httpauth.Token(r)); err != nil {
				httpauth.Deny(w, r, err)
				return
			}
			routingErrorHandler(ctx, mux, m, w, r, status)
		}),
		runtime.WithForwardResponseRewriter(emptyLists),
		// The control plane logs and audits a change under the request id
		// of the REST request that asked for it.
		runtime.WithMetadata(func(ctx context.Context, r *http.Request) metadata.MD {
			if id := logctx.RequestID(r.Context()); id != "" {
				return metadata.Pairs(logctx.MetadataKey, id)
			}
			return nil
		}),
	)
	for _, register := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		atraxv1.RegisterServerServiceHandler,
		atraxv1.RegisterAuthServiceHandler,
		atraxv1.RegisterStatusServiceHandler,
		atraxv1.RegisterAuditServiceHandler,
	} {
		if err := register(ctx, mux, conn); err != nil {
			return nil, fmt.Errorf("register REST handlers: %w", err)
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpauth.MoveQueryToken(r)
		mux.ServeHTTP(w, r)
	}), nil
}

// emptyLists writes list responses with an empty list as {"servers": []}
// rather than {}, so that scripts can iterate without a null check.
func emptyLists(_ context.Context, m proto.Message) (any, error) {
	switch m := m.(type) {
	case *atraxv1.ListServersResponse:
		if len(m.GetServers()) == 0 {
			return map[string][]any{"servers": {}}, nil
		}
	case *atraxv1.ListAuditEventsResponse:
		if len(m.GetEvents()) == 0 {
			return map[string]any{"events": []any{}}, nil
		}
	}
	return m, nil
}

// httpStatus maps a gRPC code to an HTTP status. It follows grpc-gateway's
// table but for FAILED_PRECONDITION, which Atrax uses for "defined by the
// config file" and answers with 409 Conflict.
func httpStatus(c codes.Code) int {
	if c == codes.FailedPrecondition {
		return http.StatusConflict
	}
	return runtime.HTTPStatusFromCode(c)
}

// errorHandler writes gRPC errors as HTTP errors: OAuth 2 error bodies for
// /auth (RFC 6749 section 5.2), google.rpc.Status bodies elsewhere, and
// RFC 6750 challenges on 401.
func errorHandler(ctx context.Context, _ *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	st := status.Convert(err)
	code := httpStatus(st.Code())
	w.Header().Del("Trailer")
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Path == "/auth" {
		reason := "invalid_request"
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok {
				reason = info.GetReason()
			}
		}
		if st.Code() == codes.Internal || st.Code() == codes.Unavailable {
			reason = "server_error"
		}
		if code == http.StatusUnauthorized && strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "basic ") {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", httpauth.Realm))
		}
		desc := strings.TrimPrefix(st.Message(), reason+": ")
		httpauth.WriteJSON(w, code, map[string]string{"error": reason, "error_description": desc})
		return
	}
	if st.Code() == codes.Unauthenticated {
		desc := ""
		if r.Header.Get("Authorization") != "" {
			desc = st.Message()
		}
		w.Header().Set("WWW-Authenticate", httpauth.InvalidToken(r, desc))
	}
	for _, d := range st.Details() {
		// Only a missing scope earns the insufficient_scope challenge; other
		// refusals (a command not allowed) are not about the token. With
		// OAuth the challenge names the OAuth scope that carries the grant.
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == "insufficient_scope" {
			w.Header().Set("WWW-Authenticate", httpauth.InsufficientScope(r, info.GetMetadata()["scope"], st.Message()))
		}
	}
	buf, merr := m.Marshal(st.Proto())
	if merr != nil {
		code, buf = http.StatusInternalServerError, []byte(`{"code":13,"message":"failed to marshal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(buf)
}

// routingErrorHandler answers paths and methods the API does not have.
func routingErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	var err error
	switch httpStatus {
	case http.StatusMethodNotAllowed:
		err = status.Errorf(codes.Unimplemented, "method %s is not allowed on %s", r.Method, r.URL.Path)
		w.Header().Set("Allow", "GET, POST, PUT, PATCH, DELETE")
		httpauth.WriteJSON(w, http.StatusMethodNotAllowed, map[string]any{"code": int(codes.Unimplemented), "message": status.Convert(err).Message()})
		return
	case http.StatusNotFound:
		err = status.Errorf(codes.NotFound, "no such path: %s", r.URL.Path)
	default:
		err = status.Error(codes.Internal, http.StatusText(httpStatus))
	}
	errorHandler(ctx, mux, m, w, r, err)
}

// formMarshaler reads the OAuth 2 form encoding of a token request
// (grant_type=client_credentials&client_id=...) and writes JSON.
type formMarshaler struct {
	*strictJSON
}

func (f *formMarshaler) ContentType(any) string { return "application/json" }

// Unmarshal decodes the OAuth 2 form of a token request. A body that is a
// JSON object is read as JSON whatever its content type says: curl -d sends
// JSON labelled as a form unless told otherwise.
func (f *formMarshaler) Unmarshal(data []byte, v any) error {
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '{' {
		return f.strictJSON.Unmarshal(data, v)
	}
	req, ok := v.(*atraxv1.IssueTokenRequest)
	if !ok {
		return errors.New("a form body is accepted only by POST /auth; send a JSON object")
	}
	vals, err := url.ParseQuery(string(data))
	if err != nil {
		return fmt.Errorf("form body: %w", err)
	}
	for key, vs := range vals {
		if len(vs) != 1 {
			return fmt.Errorf("form field %q given %d times", key, len(vs))
		}
		val := vs[0]
		switch key {
		case "grant_type":
			req.GrantType = val
		case "client_id":
			req.ClientId = val
		case "client_secret":
			req.ClientSecret = val
		case "scope":
			req.Scope = val
		case "token":
			req.Token = val
		case "ttl":
			req.Ttl = val
		default:
			return fmt.Errorf("unknown form field %q", key)
		}
	}
	return nil
}

func (f *formMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		return f.Unmarshal(data, v)
	})
}
