package controlplane_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/atrax-mcp/atrax/controlplane"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/config"
)

// TestScheduledKeyRotation: a control plane whose signing key has grown
// older than auth.options.keyRotation (here: it was down for longer) makes
// a new one when it starts, keeps the old one for the tokens it signed,
// and records key.rotate in the audit log as done by itself.
func TestScheduledKeyRotation(t *testing.T) {
	const token = "rotation-test-token"
	cfg, err := config.Parse([]byte(fmt.Sprintf(`{
		"auth": {"type": "token", "options": {"token": %q, "keyRotation": "48h"}},
		"dataDir": %q,
	}`, token, filepath.Join(t.TempDir(), "data"))), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	authed := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	run := func(now time.Time) (keys func() []*atraxv1.Jwk, audit func() []*atraxv1.AuditEvent, stop func()) {
		r := startPlane(t, controlplane.Options{Config: cfg, Now: func() time.Time { return now }})
		keys = func() []*atraxv1.Jwk {
			rctx, rcancel := context.WithTimeout(authed, 10*time.Second)
			defer rcancel()
			resp, err := atraxv1.NewAuthServiceClient(r.conn).ListSigningKeys(rctx, &atraxv1.ListSigningKeysRequest{})
			if err != nil {
				t.Fatalf("ListSigningKeys: %v", err)
			}
			return resp.GetKeys()
		}
		audit = func() []*atraxv1.AuditEvent {
			rctx, rcancel := context.WithTimeout(authed, 10*time.Second)
			defer rcancel()
			resp, err := atraxv1.NewAuditServiceClient(r.conn).ListAuditEvents(rctx, &atraxv1.ListAuditEventsRequest{Action: "key.rotate"})
			if err != nil {
				t.Fatalf("ListAuditEvents: %v", err)
			}
			return resp.GetEvents()
		}
		return keys, audit, r.stop
	}

	keys, audit, stop := run(start)
	first := keys()
	if len(first) != 1 {
		t.Fatalf("a new control plane has %d signing keys, want 1", len(first))
	}
	if evs := audit(); len(evs) != 0 {
		t.Errorf("key.rotate events before the key is due: %v", evs)
	}
	stop()

	// A day later the key is not due yet.
	keys, _, stop = run(start.Add(24 * time.Hour))
	if got := keys(); len(got) != 1 {
		t.Errorf("signing keys a day later = %d, want 1", len(got))
	}
	stop()

	// Three days later it is: a new key beside the old one.
	keys, audit, stop = run(start.Add(72 * time.Hour))
	defer stop()
	within(t, "a second signing key", func() bool { return len(keys()) == 2 })
	got := keys()
	if got[0].GetKid() != first[0].GetKid() && got[1].GetKid() != first[0].GetKid() {
		t.Errorf("keys after rotation %v lost the first key %s", got, first[0].GetKid())
	}
	within(t, "a key.rotate audit event", func() bool { return len(audit()) == 1 })
	ev := audit()[0]
	if !strings.HasPrefix(ev.GetActor(), "control-plane:") || ev.GetOutcome() != "ok" {
		t.Errorf("key.rotate event: actor %q outcome %q, want control-plane:… and ok", ev.GetActor(), ev.GetOutcome())
	}
}
