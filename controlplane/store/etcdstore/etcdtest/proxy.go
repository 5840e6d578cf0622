package etcdtest

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy forwards TCP connections to a member's client port. Pause holds
// back every byte in both directions, as a network partition would (the
// connections stay open, so requests hang rather than fail); Resume lets
// them through again.
type Proxy struct {
	// URL is where clients reach the member through the proxy
	// (http://127.0.0.1:PORT).
	URL string

	target string
	lis    net.Listener
	mu     sync.Mutex
	paused chan struct{} // closed by Resume; nil while not paused
	conns  map[net.Conn]bool
	closed bool
}

// NewProxy starts a proxy to member m that stops when the test ends.
func NewProxy(t testing.TB, m *Member) *Proxy {
	t.Helper()
	u, err := url.Parse(m.ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{URL: "http://" + lis.Addr().String(), target: u.Host, lis: lis, conns: map[net.Conn]bool{}}
	t.Cleanup(p.close)
	go p.serve()
	return p
}

// Proxies starts a proxy to each member and returns them with their URLs.
func (c *Cluster) Proxies(t testing.TB) ([]*Proxy, []string) {
	t.Helper()
	var ps []*Proxy
	var urls []string
	for _, m := range c.Members {
		p := NewProxy(t, m)
		ps, urls = append(ps, p), append(urls, p.URL)
	}
	return ps, urls
}

// Pause holds back every byte until Resume.
func (p *Proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused == nil {
		p.paused = make(chan struct{})
	}
}

// Resume lets the bytes held back through, and those after them.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused != nil {
		close(p.paused)
		p.paused = nil
	}
}

// gate waits while the proxy is paused.
func (p *Proxy) gate() {
	p.mu.Lock()
	paused := p.paused
	p.mu.Unlock()
	if paused != nil {
		<-paused
	}
}

func (p *Proxy) serve() {
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *Proxy) forward(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close() // the member is down: as a refused connection
		return
	}
	if !p.track(c, up) {
		return
	}
	var wg sync.WaitGroup
	for _, pair := range [][2]net.Conn{{up, c}, {c, up}} {
		wg.Go(func() {
			_, _ = io.Copy(pair[0], gated{pair[1], p})
			// One direction ended: end the other.
			pair[0].Close()
			pair[1].Close()
		})
	}
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// track records a connection pair, or closes it when the proxy is closed.
func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = true
	}
	return true
}

func (p *Proxy) close() {
	p.Resume()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.lis.Close()
	for c := range p.conns {
		c.Close()
	}
}

// gated reads through the proxy's gate: nothing read while it is paused
// is passed on until it resumes.
type gated struct {
	r io.Reader
	p *Proxy
}

func (g gated) Read(b []byte) (int, error) {
	g.p.gate()
	n, err := g.r.Read(b)
	g.p.gate()
	return n, err
}
