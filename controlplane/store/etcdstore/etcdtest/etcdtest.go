// Package etcdtest runs a real etcd cluster inside a test process with the
// go.etcd.io/etcd/server/v3/embed package: members on 127.0.0.1 ports the
// operating system offers, data in t.TempDir(), every wait bounded. Tests of
// etcdstore, of the control plane and the fleet's end-to-end test use it;
// nothing outside tests does.
package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// StartTimeout bounds the wait for a cluster to elect a leader and serve.
const StartTimeout = 30 * time.Second

// Cluster is an etcd cluster in this process.
type Cluster struct {
	Members []*Member
}

// Member is one etcd member.
type Member struct {
	Name string
	// ClientURL is where clients reach the member (http://127.0.0.1:PORT).
	ClientURL string

	cfg    *embed.Config // to start it again
	mu     sync.Mutex
	etcd   *embed.Etcd   // nil once stopped
	closed chan struct{} // closed once a stopped member has shut down
}

// startAttempts bounds the tries of Start: a port found free can be taken
// by another process (tests run in parallel) before etcd binds it.
const startAttempts = 5

// Start starts a cluster of n members and stops it when the test ends. It
// returns once every member is ready, or fails the test. Ports that another
// process took meanwhile are given up for new ones.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c := newCluster(t, n)
		err := start(c.Members...)
		if err == nil {
			t.Cleanup(c.Stop)
			return c
		}
		c.Stop()
		if !strings.Contains(err.Error(), "address already in use") || attempt == startAttempts {
			t.Fatal(err)
		}
		t.Logf("etcd cluster, attempt %d: %v; again on other ports", attempt, err)
	}
}

// newCluster configures n members on ports free a moment ago.
func newCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{}
	cfgs := make([]*embed.Config, n)
	var initial []string
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		peer, client := localURL(t), localURL(t)
		cfg := embed.NewConfig()
		cfg.Name = name
		cfg.Dir = t.TempDir()
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
		cfg.ListenMetricsUrls = nil
		cfg.InitialClusterToken = "atrax-test-" + strings.ReplaceAll(t.Name(), "/", "-")
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		cfgs[i] = cfg
		initial = append(initial, name+"="+peer.String())
		c.Members = append(c.Members, &Member{Name: name, ClientURL: client.String(), cfg: cfg})
	}
	for _, cfg := range cfgs {
		cfg.InitialCluster = strings.Join(initial, ",")
	}
	return c
}

// Restart starts stopped members again, with their data, together (members
// that lost their quorum wait for each other), and returns once each is
// ready, or fails the test.
func (c *Cluster) Restart(t testing.TB, members ...*Member) {
	t.Helper()
	for _, m := range members {
		m.wait() // its ports are free again
	}
	if err := start(members...); err != nil {
		t.Fatal(err)
	}
}

// start starts members together and waits until each is ready; the first
// error is returned once every member has answered.
func start(members ...*Member) error {
	errs := make(chan error, len(members))
	for _, m := range members {
		go func() {
			e, err := embed.StartEtcd(m.cfg)
			if err != nil {
				errs <- fmt.Errorf("start etcd member %s: %w", m.Name, err)
				return
			}
			m.mu.Lock()
			m.etcd, m.closed = e, nil
			m.mu.Unlock()
			select {
			case <-e.Server.ReadyNotify():
				errs <- nil
			case err := <-e.Err():
				errs <- fmt.Errorf("etcd member %s: %w", m.Name, err)
			case <-time.After(StartTimeout):
				errs <- fmt.Errorf("etcd member %s not ready within %v", m.Name, StartTimeout)
			}
		}()
	}
	var first error
	for range members {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// localURL is http://127.0.0.1:PORT with a port free a moment ago.
func localURL(t testing.TB) url.URL {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}
}

// Endpoints returns the client URLs of every member, stopped or not: what a
// client is configured with.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.ClientURL)
	}
	return out
}

// Leader returns the member that leads the cluster now, nil when none of
// the running members does.
func (c *Cluster) Leader() *Member {
	for _, m := range c.Members {
		m.mu.Lock()
		e := m.etcd
		m.mu.Unlock()
		if e != nil && e.Server.Leader() == e.Server.MemberID() {
			return m
		}
	}
	return nil
}

// Stop stops every member and waits until each has closed.
func (c *Cluster) Stop() {
	var wg sync.WaitGroup
	for _, m := range c.Members {
		wg.Go(func() {
			m.Stop()
			m.wait()
		})
	}
	wg.Wait()
}

// Stop stops the member as a crash would (Restart starts it again), as far as the cluster can tell:
// its raft node stops at once, without handing its leadership over. The
// rest of its shutdown (a graceful stop of its client port, which waits
// seconds for the clients' watch streams) goes on in the background, and
// the cluster's Stop waits for it. Stop is safe to call more than once.
func (m *Member) Stop() {
	m.mu.Lock()
	e := m.etcd
	m.etcd = nil
	if e != nil {
		m.closed = make(chan struct{})
	}
	closed := m.closed
	m.mu.Unlock()
	if e == nil {
		return
	}
	e.Server.HardStop()
	go func() {
		defer close(closed)
		e.Close()
	}()
}

// wait waits until a stopped member has closed.
func (m *Member) wait() {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed != nil {
		<-closed
	}
}
