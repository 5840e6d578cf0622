// Package service implements the atrax.v1 gRPC services over the registry,
// the issuer, the fleet and the store. It is the one place where domain
// errors become gRPC status codes (and, through grpc-gateway, HTTP
// statuses).
package service

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/atrax-mcp/atrax/controlplane/issuer"
	"github.com/atrax-mcp/atrax/controlplane/registry"
	"github.com/atrax-mcp/atrax/controlplane/store"
)

// errShuttingDown ends long-lived streams when the control plane stops.
var errShuttingDown = status.Error(codes.Unavailable, "the control plane is shutting down; reconnect")

// ErrorDomain names Atrax in google.rpc.ErrorInfo details.
const ErrorDomain = "atrax.dev"

// toStatus maps a domain error to a gRPC status. The message is the error's
// own text, which the domain packages keep free of secrets.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, registry.ErrInvalid):
		return invalidArgument(err)
	case errors.Is(err, registry.ErrNotFound), errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, registry.ErrExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, registry.ErrReadOnly), errors.Is(err, registry.ErrNotPinned), errors.Is(err, errApprove):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, registry.ErrCommandNotAllowed):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, registry.ErrWatchLagged):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, registry.ErrConflict):
		// Other replicas kept writing: the client may try again.
		return status.Error(codes.Aborted, err.Error())
	case errors.Is(err, store.ErrUnavailable):
		// The shared store is out of reach; the cause (member addresses)
		// goes to the log, not to the client.
		return &unavailableError{err: err}
	case errors.Is(err, issuer.ErrInvalidClient):
		return oauthError(codes.Unauthenticated, issuer.ErrInvalidClient, err)
	case errors.Is(err, issuer.ErrInvalidScope):
		return oauthError(codes.InvalidArgument, issuer.ErrInvalidScope, err)
	case errors.Is(err, issuer.ErrUnsupportedGrantType):
		return oauthError(codes.InvalidArgument, issuer.ErrUnsupportedGrantType, err)
	case errors.Is(err, issuer.ErrInvalidRequest):
		return oauthError(codes.InvalidArgument, issuer.ErrInvalidRequest, err)
	}
	return &internalError{err: err}
}

// unavailableError is a store out of reach: clients get UNAVAILABLE (503)
// and may retry; the cause is logged like an internal error's.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// GRPCStatus is what gRPC sends for the error.
func (e *unavailableError) GRPCStatus() *status.Status {
	return status.New(codes.Unavailable, "the control plane's store is unavailable; try again")
}

// internalError is an unexpected failure. Its text may name files or other
// internals, so clients get a generic message (GRPCStatus) and the cause
// goes to the log (see InternalCause).
type internalError struct{ err error }

func (e *internalError) Error() string { return e.err.Error() }
func (e *internalError) Unwrap() error { return e.err }

// GRPCStatus is what gRPC sends for the error.
func (e *internalError) GRPCStatus() *status.Status {
	return status.New(codes.Internal, "internal error; the control plane's log has the details")
}

// InternalCause returns the cause of an internal error the services
// returned, for logging; ok is false for every other error.
func InternalCause(err error) (cause error, ok bool) {
	var ie *internalError
	if errors.As(err, &ie) {
		return ie.err, true
	}
	var ue *unavailableError
	if errors.As(err, &ue) {
		return ue.err, true
	}
	return nil, false
}

// invalidArgument carries each field problem as a BadRequest violation.
func invalidArgument(err error) error {
	st := status.New(codes.InvalidArgument, err.Error())
	br := &errdetails.BadRequest{}
	for _, fe := range registry.FieldErrors(err) {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: fe.Path, Description: fe.Msg})
	}
	if len(br.FieldViolations) > 0 {
		if d, derr := st.WithDetails(br); derr == nil {
			st = d
		}
	}
	return st.Err()
}

// oauthError carries the OAuth 2 error code (RFC 6749 section 5.2) as the
// ErrorInfo reason, which the edge turns into the OAuth error body of /auth.
func oauthError(code codes.Code, kind, err error) error {
	st := status.New(code, err.Error())
	if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: kind.Error(), Domain: ErrorDomain}); derr == nil {
		st = d
	}
	return st.Err()
}

func required(field string) error {
	return invalidArgument(&registry.FieldError{Path: field, Msg: "required"})
}

func badField(field, format string, args ...any) error {
	return invalidArgument(&registry.FieldError{Path: field, Msg: fmt.Sprintf(format, args...)})
}
