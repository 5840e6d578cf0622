// Package bridge translates between the eras of MCP. A stateless
// (2026-07-28) client cannot take server-to-client requests: when a
// session-era server asks one during a call, the edge holds the call and
// answers the client with an input_required result whose sealed
// requestState brings the client's retry back to the held call. The other
// way round, a session-era client of a stateless server gets real
// server-to-client requests and the edge retries the server's call with the
// answers.
//
// The package knows no transport: the router drives it.
package bridge

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/atrax-mcp/atrax/edge/seal"
)

// Kinds of sealed request state.
const (
	// KindHeld names a call held on one edge, waiting for client input.
	KindHeld = "held"
	// KindUpstream wraps a stateless server's own requestState, binding it
	// to the principal and the request; any edge can resume it.
	KindUpstream = "up"
)

// Errors of Open.
var (
	ErrInvalidState = errors.New("requestState is not valid")
	ErrExpired      = fmt.Errorf("%w: it has expired; retry the request from the start, without requestState", ErrInvalidState)
	ErrOtherRequest = fmt.Errorf("%w: it belongs to another request", ErrInvalidState)
)

// State is what a sealed requestState holds.
type State struct {
	Kind string `json:"k"`
	// ID and Edge name a held call and the edge holding it.
	ID   string `json:"id,omitempty"`
	Edge string `json:"e,omitempty"`
	// Server and Upstream are the server and its own requestState.
	Server   string `json:"s,omitempty"`
	Upstream string `json:"u,omitempty"`
	// Request identifies the request the state belongs to (RequestKey).
	Request string `json:"r"`
	// Expires is when the state stops being accepted (Unix milliseconds).
	Expires int64 `json:"x"`
}

// Sealer seals and opens request state for one edge.
type Sealer struct {
	Ring *seal.Ring
	// Edge is this edge's id, recorded in held state.
	Edge string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (s *Sealer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// aad binds sealed state to the principal it was issued to: another token
// cannot open it.
func aad(principal string) []byte {
	return []byte("atrax/requestState\x00" + principal)
}

// Seal returns the sealed form of st for principal.
func (s *Sealer) Seal(st State, principal string) (string, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	return s.Ring.Seal(b, aad(principal))
}

// Open returns the state sealed in token for principal and request, or an
// error wrapping ErrInvalidState that says what is wrong.
func (s *Sealer) Open(token, principal, request string) (State, error) {
	b, err := s.Ring.Open(token, aad(principal))
	if err != nil {
		return State{}, fmt.Errorf("%w: %w", ErrInvalidState, err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("%w: %w", ErrInvalidState, err)
	}
	if s.now().UnixMilli() > st.Expires {
		return State{}, ErrExpired
	}
	if st.Request != request {
		return State{}, ErrOtherRequest
	}
	return st, nil
}

// RequestKey identifies a request for binding state to it: the method and
// the params without what changes between rounds (_meta, inputResponses,
// requestState), in a canonical form.
func RequestKey(method string, params json.RawMessage) string {
	var m map[string]any
	_ = json.Unmarshal(params, &m)
	delete(m, "_meta")
	delete(m, "inputResponses")
	delete(m, "requestState")
	b, _ := json.Marshal(m) // map keys come out sorted
	sum := sha256.Sum256(append([]byte(method+"\x00"), b...))
	return hex.EncodeToString(sum[:16])
}

func newID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}
