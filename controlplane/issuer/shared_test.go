package issuer_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/controlplane/issuer"
	"github.com/atrax-mcp/atrax/controlplane/store/etcdstore"
	"github.com/atrax-mcp/atrax/controlplane/store/etcdstore/etcdtest"
	"github.com/atrax-mcp/atrax/internal/authn"
	"github.com/atrax-mcp/atrax/internal/fakeclock"
)

// TestSharedStoreIssuers starts four issuers together on one etcd, as
// replicas starting at once: they end with one signing key and one seal
// key. A token issued by one verifies on another, and a revocation made
// through one reaches the others when they reload.
func TestSharedStoreIssuers(t *testing.T) {
	c := etcdtest.Start(t, 1)
	type replica struct {
		iss   *issuer.Issuer
		ver   *authn.Verifier
		clock *fakeclock.Clock
	}
	replicas := make([]replica, 4)
	var wg sync.WaitGroup
	for n := range replicas {
		st, err := etcdstore.Open(ctx, etcdstore.Options{Endpoints: c.Endpoints(), Prefix: "/issuers"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		e := &env{t: t, store: st, clock: fakeclock.New(t0), mode: authn.ModeToken}
		wg.Go(func() {
			i, v := e.open()
			replicas[n] = replica{i, v, e.clock}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for n, r := range replicas {
		keys, seals := keyIDs(r.iss.PublicKeys()), r.iss.SealKeys()
		if len(keys) != 1 || len(seals) != 1 {
			t.Fatalf("replica %d holds signing keys %v and %d seal keys; want one of each", n, keys, len(seals))
		}
		if first := replicas[0].iss; keys[0] != keyIDs(first.PublicKeys())[0] || seals[0].ID != first.SealKeys()[0].ID {
			t.Errorf("replica %d holds keys %v and %s, replica 0 %v and %s", n, keys, seals[0].ID, keyIDs(first.PublicKeys()), first.SealKeys()[0].ID)
		}
	}

	a, b := replicas[0], replicas[1]
	tok := issue(t, a.iss, issuer.Request{StaticToken: opsToken.Token})
	verify(t, b.ver, tok.Value)
	if _, err := a.iss.Revoke(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.iss.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.iss.Revocations()[tok.ID]; !ok {
		t.Error("a revocation made on A is not among B's after a reload")
	}
	if _, err := b.ver.Verify(ctx, tok.Value); !errors.Is(err, authn.ErrInvalidToken) {
		t.Errorf("B verifies a token revoked on A: err = %v, want ErrInvalidToken", err)
	}

	// A key rotated on B signs A's tokens once A reloads. (The newest key
	// is current: B's clock moves on, as a real one would between start and
	// rotation.)
	b.clock.Advance(time.Minute)
	k, err := b.iss.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.iss.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if kid := kidOf(t, issue(t, a.iss, issuer.Request{StaticToken: opsToken.Token}).Value); kid != k.ID {
		t.Errorf("A signs with %s after B rotated to %s", kid, k.ID)
	}
}
