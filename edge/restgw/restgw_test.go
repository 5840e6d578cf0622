package restgw

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// scopeError is the control plane's refusal for want of a scope.
func scopeError(scope string) error {
	st, _ := status.New(codes.PermissionDenied, "this call needs the "+scope+" scope").WithDetails(
		&errdetails.ErrorInfo{Reason: "insufficient_scope", Domain: "atrax.dev", Metadata: map[string]string{"scope": scope}})
	return st.Err()
}

func newFormMarshaler() *formMarshaler {
	return &formMarshaler{strictJSON: &strictJSON{JSONPb: &runtime.JSONPb{UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false}}}}
}

func TestFormMarshalerUnmarshal(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    *atraxv1.IssueTokenRequest
		wantErr string // a part of the error, "" for none
	}{{
		name: "every form field",
		body: "grant_type=client_credentials&client_id=ci&client_secret=p%40ss%26word&scope=edge+server%3Amemory&ttl=15m&token=t0k",
		want: &atraxv1.IssueTokenRequest{GrantType: "client_credentials", ClientId: "ci", ClientSecret: "p@ss&word", Scope: "edge server:memory", Ttl: "15m", Token: "t0k"},
	}, {
		name: "empty body",
		body: "",
		want: &atraxv1.IssueTokenRequest{},
	}, {
		name: "empty value",
		body: "client_id=",
		want: &atraxv1.IssueTokenRequest{},
	}, {
		name: "JSON labelled as a form",
		body: `{"grant_type": "client_credentials", "client_id": "ci", "client_secret": "s"}`,
		want: &atraxv1.IssueTokenRequest{GrantType: "client_credentials", ClientId: "ci", ClientSecret: "s"},
	}, {
		name: "JSON after white space",
		body: "\n\t {\"token\": \"t0k\"}",
		want: &atraxv1.IssueTokenRequest{Token: "t0k"},
	}, {
		name:    "JSON with an unknown field",
		body:    `{"client_id": "ci", "password": "x"}`,
		wantErr: "password",
	}, {
		name:    "unknown form field",
		body:    "client_id=ci&password=x",
		wantErr: `unknown form field "password"`,
	}, {
		name:    "repeated form field",
		body:    "client_id=a&client_id=b",
		wantErr: `form field "client_id" given 2 times`,
	}, {
		name:    "bad escape",
		body:    "client_id=%zz",
		wantErr: "form body",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFormMarshaler()
			got := &atraxv1.IssueTokenRequest{}
			err := f.Unmarshal([]byte(tt.body), got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Unmarshal = %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("Unmarshal (-want +got):\n%s", diff)
			}

			// The decoder reads the same.
			viaDecoder := &atraxv1.IssueTokenRequest{}
			if err := f.NewDecoder(strings.NewReader(tt.body)).Decode(viaDecoder); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(tt.want, viaDecoder, protocmp.Transform()); diff != "" {
				t.Errorf("Decode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFormMarshalerOtherMessages(t *testing.T) {
	f := newFormMarshaler()
	// Forms are for POST /auth only.
	if err := f.Unmarshal([]byte("jti=abc"), &atraxv1.RevokeTokenRequest{}); err == nil || !strings.Contains(err.Error(), "/auth") {
		t.Errorf("form for RevokeTokenRequest = %v, want an error naming /auth", err)
	}
	// JSON works for every message.
	got := &atraxv1.RevokeTokenRequest{}
	if err := f.Unmarshal([]byte(`{"jti": "abc"}`), got); err != nil || got.GetJti() != "abc" {
		t.Errorf("JSON for RevokeTokenRequest = %v, %v; want jti abc", got, err)
	}
	if ct := f.ContentType(got); ct != "application/json" {
		t.Errorf("ContentType = %q, want application/json", ct)
	}
}

func oauthStatus(code codes.Code, reason, msg string) error {
	st, err := status.New(code, msg).WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: "atrax.dev"})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

func TestErrorHandlerAuth(t *testing.T) {
	tests := []struct {
		name          string
		authorization string
		err           error
		code          int
		body          map[string]string
		challenge     string
	}{{
		name: "invalid client",
		err:  oauthStatus(codes.Unauthenticated, "invalid_client", "invalid_client: unknown client or wrong secret"),
		code: 401,
		body: map[string]string{"error": "invalid_client", "error_description": "unknown client or wrong secret"},
	}, {
		name:          "invalid client over HTTP Basic",
		authorization: "Basic Y2k6d3Jvbmc=",
		err:           oauthStatus(codes.Unauthenticated, "invalid_client", "invalid_client: unknown client or wrong secret"),
		code:          401,
		body:          map[string]string{"error": "invalid_client", "error_description": "unknown client or wrong secret"},
		challenge:     `Basic realm="atrax"`,
	}, {
		name: "invalid scope",
		err:  oauthStatus(codes.InvalidArgument, "invalid_scope", `invalid_scope: scope "admin" is not granted to this credential`),
		code: 400,
		body: map[string]string{"error": "invalid_scope", "error_description": `scope "admin" is not granted to this credential`},
	}, {
		name: "unsupported grant type",
		err:  oauthStatus(codes.InvalidArgument, "unsupported_grant_type", "unsupported_grant_type: grant_type \"password\" is not supported"),
		code: 400,
		body: map[string]string{"error": "unsupported_grant_type", "error_description": `grant_type "password" is not supported`},
	}, {
		name: "message without the reason prefix",
		err:  oauthStatus(codes.InvalidArgument, "invalid_request", "ttl: not a duration"),
		code: 400,
		body: map[string]string{"error": "invalid_request", "error_description": "ttl: not a duration"},
	}, {
		name: "no error info",
		err:  status.Error(codes.InvalidArgument, "bad body"),
		code: 400,
		body: map[string]string{"error": "invalid_request", "error_description": "bad body"},
	}, {
		name: "internal",
		err:  status.Error(codes.Internal, "store failed"),
		code: 500,
		body: map[string]string{"error": "server_error", "error_description": "store failed"},
	}, {
		name: "control plane unavailable",
		err:  status.Error(codes.Unavailable, "connection refused"),
		code: 503,
		body: map[string]string{"error": "server_error", "error_description": "connection refused"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/auth", nil)
			if tt.authorization != "" {
				r.Header.Set("Authorization", tt.authorization)
			}
			w := httptest.NewRecorder()
			w.Header().Set("Trailer", "Grpc-Status")
			errorHandler(context.Background(), nil, &runtime.JSONPb{}, w, r, tt.err)
			if w.Code != tt.code {
				t.Errorf("status = %d, want %d", w.Code, tt.code)
			}
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if diff := cmp.Diff(tt.body, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			want := http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}}
			if tt.challenge != "" {
				want.Set("WWW-Authenticate", tt.challenge)
			}
			if diff := cmp.Diff(want, w.Header()); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrorHandler(t *testing.T) {
	bad, err := status.New(codes.InvalidArgument, "url: must be an absolute http or https URL").WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "url", Description: "must be an absolute http or https URL"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		authorization string
		err           error
		code          int
		challenge     string
	}{
		{name: "read-only server", err: status.Error(codes.FailedPrecondition, "server is defined by the config file"), code: 409},
		{name: "not found", err: status.Error(codes.NotFound, "server not found"), code: 404},
		{name: "exists", err: status.Error(codes.AlreadyExists, "server already exists"), code: 409},
		{name: "invalid", err: bad.Err(), code: 400},
		{name: "internal", err: status.Error(codes.Internal, "boom"), code: 500},
		{
			name: "no token", err: status.Error(codes.Unauthenticated, "no token: send the header authorization: Bearer TOKEN"),
			code: 401, challenge: `Bearer realm="atrax"`,
		},
		{
			name: "bad token", authorization: "Bearer nope", err: status.Error(codes.Unauthenticated, "invalid token: expired"),
			code: 401, challenge: `Bearer realm="atrax", error="invalid_token", error_description="invalid token: expired"`,
		},
		{
			name: "insufficient scope", authorization: "Bearer edge", err: scopeError("admin"),
			code: 403, challenge: `Bearer realm="atrax", error="insufficient_scope", scope="admin", error_description="this call needs the admin scope"`,
		},
		{
			// Not about the token: no insufficient_scope challenge.
			name: "permission denied otherwise", authorization: "Bearer admin", err: status.Error(codes.PermissionDenied, "command not allowed"),
			code: 403, challenge: "",
		},
		{name: "not a status", err: context.DeadlineExceeded, code: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("DELETE", "/servers/memory", nil)
			if tt.authorization != "" {
				r.Header.Set("Authorization", tt.authorization)
			}
			w := httptest.NewRecorder()
			errorHandler(context.Background(), nil, &runtime.JSONPb{}, w, r, tt.err)
			if w.Code != tt.code {
				t.Errorf("status = %d, want %d", w.Code, tt.code)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.challenge)
			}
			if ct, cc := w.Header().Get("Content-Type"), w.Header().Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
				t.Errorf("Content-Type %q, Cache-Control %q; want application/json, no-store", ct, cc)
			}
			// The body is the google.rpc.Status, details included.
			st := status.Convert(tt.err)
			var body map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if body["message"] != st.Message() || body["code"] != float64(st.Code()) {
				t.Errorf("body = %s, want code %d and message %q", w.Body, st.Code(), st.Message())
			}
			if len(st.Details()) > 0 && !strings.Contains(w.Body.String(), "type.googleapis.com/google.rpc.") {
				t.Errorf("body %s lacks the status details", w.Body)
			}
		})
	}
}

func TestEmptyLists(t *testing.T) {
	tests := []struct {
		name string
		in   proto.Message
		want string // JSON of the rewritten value; "" when m passes as is
	}{
		{"no servers", &atraxv1.ListServersResponse{}, `{"servers":[]}`},
		{"no events", &atraxv1.ListAuditEventsResponse{}, `{"events":[]}`},
		{"no events, a page token", &atraxv1.ListAuditEventsResponse{NextPageToken: "x"}, `{"events":[]}`},
		{"servers", &atraxv1.ListServersResponse{Servers: []*atraxv1.Server{{Name: "memory"}}}, ""},
		{"events", &atraxv1.ListAuditEventsResponse{Events: []*atraxv1.AuditEvent{{Action: "x"}}}, ""},
		{"other message", &atraxv1.GetHealthResponse{}, ""},
	}
	for _, tt := range tests {
		got, err := emptyLists(context.Background(), tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if tt.want == "" {
			if got != any(tt.in) {
				t.Errorf("%s: emptyLists = %v, want the message itself", tt.name, got)
			}
			continue
		}
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("%s: emptyLists = %s, want %s", tt.name, b, tt.want)
		}
	}
}

func TestHTTPStatus(t *testing.T) {
	for c, want := range map[codes.Code]int{
		codes.FailedPrecondition: 409,
		codes.NotFound:           404,
		codes.PermissionDenied:   403,
		codes.Unauthenticated:    401,
		codes.InvalidArgument:    400,
		codes.ResourceExhausted:  429,
	} {
		if got := httpStatus(c); got != want {
			t.Errorf("httpStatus(%v) = %d, want %d", c, got, want)
		}
	}
}
