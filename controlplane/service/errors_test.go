package service

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/atrax-mcp/atrax/controlplane/issuer"
	"github.com/atrax-mcp/atrax/controlplane/registry"
	"github.com/atrax-mcp/atrax/controlplane/store"
)

func TestToStatus(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("delete server %q: %w", "memory", err) }
	fieldErrs := errors.Join(
		&registry.FieldError{Path: "url", Msg: "must be an absolute http or https URL"},
		&registry.FieldError{Path: "env.A", Msg: "not allowed for an http server"},
	)
	tests := []struct {
		name    string
		err     error
		code    codes.Code
		details []proto.Message
	}{
		{name: "canceled", err: wrap(context.Canceled), code: codes.Canceled},
		{name: "deadline", err: wrap(context.DeadlineExceeded), code: codes.DeadlineExceeded},
		{
			name: "one field error", err: &registry.FieldError{Path: "name", Msg: "required"}, code: codes.InvalidArgument,
			details: []proto.Message{&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "name", Description: "required"}}}},
		},
		{
			name: "field errors", err: fieldErrs, code: codes.InvalidArgument,
			details: []proto.Message{&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
				{Field: "url", Description: "must be an absolute http or https URL"},
				{Field: "env.A", Description: "not allowed for an http server"},
			}}},
		},
		{name: "invalid without fields", err: fmt.Errorf("%w: bad", registry.ErrInvalid), code: codes.InvalidArgument},
		{name: "registry not found", err: wrap(registry.ErrNotFound), code: codes.NotFound},
		{name: "store not found", err: wrap(store.ErrNotFound), code: codes.NotFound},
		{name: "exists", err: wrap(registry.ErrExists), code: codes.AlreadyExists},
		{name: "read-only", err: wrap(registry.ErrReadOnly), code: codes.FailedPrecondition},
		{name: "command not allowed", err: wrap(registry.ErrCommandNotAllowed), code: codes.PermissionDenied},
		{name: "watch lagged", err: registry.ErrWatchLagged, code: codes.ResourceExhausted},
		{name: "replicas conflict", err: fmt.Errorf("%w: %w", registry.ErrConflict, store.ErrConflict), code: codes.Aborted},
		{name: "store unavailable", err: wrap(fmt.Errorf("write servers: %w (etcd: no leader)", store.ErrUnavailable)), code: codes.Unavailable},
		{
			name: "invalid client", err: fmt.Errorf("%w: unknown client or wrong secret", issuer.ErrInvalidClient), code: codes.Unauthenticated,
			details: []proto.Message{&errdetails.ErrorInfo{Reason: "invalid_client", Domain: ErrorDomain}},
		},
		{
			name: "invalid scope", err: fmt.Errorf("%w: scope \"admin\" is not granted", issuer.ErrInvalidScope), code: codes.InvalidArgument,
			details: []proto.Message{&errdetails.ErrorInfo{Reason: "invalid_scope", Domain: ErrorDomain}},
		},
		{
			name: "unsupported grant type", err: fmt.Errorf("%w: password", issuer.ErrUnsupportedGrantType), code: codes.InvalidArgument,
			details: []proto.Message{&errdetails.ErrorInfo{Reason: "unsupported_grant_type", Domain: ErrorDomain}},
		},
		{
			name: "invalid request", err: fmt.Errorf("%w: ttl too long", issuer.ErrInvalidRequest), code: codes.InvalidArgument,
			details: []proto.Message{&errdetails.ErrorInfo{Reason: "invalid_request", Domain: ErrorDomain}},
		},
		{
			name: "invalid request from the service", err: wrapInvalid("ttl: not a duration"), code: codes.InvalidArgument,
			details: []proto.Message{&errdetails.ErrorInfo{Reason: "invalid_request", Domain: ErrorDomain}},
		},
		{name: "anything else", err: errors.New("disk on fire"), code: codes.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := toStatus(tt.err)
			st, ok := status.FromError(err)
			if !ok {
				t.Fatalf("toStatus(%v) = %T, not a status", tt.err, err)
			}
			if st.Code() != tt.code {
				t.Errorf("code = %v, want %v", st.Code(), tt.code)
			}
			wantMsg := tt.err.Error()
			switch tt.code {
			case codes.Internal, codes.Unavailable:
				// Internal causes stay in the log; clients get no internals.
				wantMsg = "internal error; the control plane's log has the details"
				if tt.code == codes.Unavailable {
					wantMsg = "the control plane's store is unavailable; try again"
				}
				if cause, ok := InternalCause(err); !ok || cause != tt.err {
					t.Errorf("InternalCause = %v, %v; want %v, true", cause, ok, tt.err)
				}
			}
			if st.Message() != wantMsg {
				t.Errorf("message = %q, want %q", st.Message(), wantMsg)
			}
			var details []proto.Message
			for _, d := range st.Details() {
				m, ok := d.(proto.Message)
				if !ok {
					t.Fatalf("detail %v is not a message", d)
				}
				details = append(details, m)
			}
			if diff := cmp.Diff(tt.details, details, protocmp.Transform()); diff != "" {
				t.Errorf("details (-want +got):\n%s", diff)
			}
		})
	}
}

func TestToStatusPassesStatusThrough(t *testing.T) {
	if err := toStatus(nil); err != nil {
		t.Errorf("toStatus(nil) = %v, want nil", err)
	}
	in := status.Error(codes.Aborted, "already a status")
	if got := toStatus(in); got != in {
		t.Errorf("toStatus(status error) = %v, want it unchanged", got)
	}
}

func TestRequiredAndBadField(t *testing.T) {
	for _, tt := range []struct {
		err          error
		field, descr string
	}{
		{required("name"), "name", "required"},
		{badField("page_size", "must be between %d and %d", 0, 1000), "page_size", "must be between 0 and 1000"},
	} {
		st := status.Convert(tt.err)
		if st.Code() != codes.InvalidArgument {
			t.Errorf("%s: code %v, want InvalidArgument", tt.field, st.Code())
		}
		want := []any{&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: tt.field, Description: tt.descr}}}}
		if diff := cmp.Diff(want, st.Details(), protocmp.Transform()); diff != "" {
			t.Errorf("%s: details (-want +got):\n%s", tt.field, diff)
		}
	}
}
