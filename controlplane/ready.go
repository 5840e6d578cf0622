package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/atrax-mcp/atrax/controlplane/store"
	"github.com/atrax-mcp/atrax/controlplane/store/etcdstore"
)

// livenessService is the grpc.health.v1 service that is SERVING while the
// process serves, whether or not it is ready: what a liveness probe checks.
// The server as a whole ("") is SERVING only while the control plane is
// ready.
const livenessService = "liveness"

// checker is implemented by a store that can be out of reach (etcdstore):
// the control plane is ready only while its checks succeed.
type checker interface {
	Check(ctx context.Context) error
}

var _ checker = (*etcdstore.Store)(nil)

// The control plane checks its store every checkEvery, each check bounded
// by checkTimeout. After checkFailures failed checks in a row (etcd out of
// reach for about three seconds) it is not ready; after one that succeeds,
// ready again. One failure alone (an etcd leader election) changes nothing.
const (
	checkEvery    = time.Second
	checkTimeout  = time.Second
	checkFailures = 2
)

// readiness is whether the control plane reaches its store. It is safe for
// concurrent use.
type readiness struct {
	mu      sync.Mutex
	err     error         // why not ready; nil while ready
	changed chan struct{} // closed and replaced at every change
}

func newReadiness() *readiness { return &readiness{changed: make(chan struct{})} }

// Err says why the control plane is not ready, nil while it is.
func (r *readiness) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// State returns Err and a channel closed at the next change.
func (r *readiness) State() (<-chan struct{}, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed, r.err
}

// set records why the control plane is not ready (nil: it is) and reports
// whether that changed whether it is.
func (r *readiness) set(err error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := (err == nil) != (r.err == nil)
	r.err = err
	if changed {
		close(r.changed)
		r.changed = make(chan struct{})
	}
	return changed
}

// checkStore checks the store until ctx ends and makes the control plane
// not ready after checkFailures failures in a row (grpc.health.v1 answers
// NOT_SERVING for "", GetHealth "degraded", Sync streams end so that the
// edges move to another replica), and ready again after a check that
// succeeds. name names the store in the reason ("etcd").
func (p *plane) checkStore(ctx context.Context, c checker, name string) {
	failures := 0
	for {
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		err := c.Check(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			failures = 0
			if p.ready.set(nil) {
				p.log.Info("the store answers again: ready", "store", name)
				p.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
			}
		} else if failures++; failures >= checkFailures && p.ready.set(unreachable(name, err)) {
			p.log.Error("cannot reach the store: not ready; edges move to other control planes", "store", name, "err", err)
			p.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(checkEvery):
		}
	}
}

// unreachable is the reason a control plane whose store check failed with
// err gives to anyone who asks: no addresses or error text, which the log
// has.
func unreachable(name string, err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("cannot reach %s: it did not answer within %v", name, checkTimeout)
	}
	return fmt.Errorf("cannot read from %s (the control plane's log says why)", name)
}

// replicaName names this control plane in its edges' records: the host name
// and the port it listens on.
func replicaName(addr net.Addr) string {
	_, port, err := net.SplitHostPort(addr.String())
	host, herr := os.Hostname()
	if err != nil || herr != nil || host == "" {
		return addr.String()
	}
	return net.JoinHostPort(host, port)
}
