package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"
)

// checkEvery bounds how often a handshake looks at the files again: a
// renewal is served within about a second, and a burst of handshakes costs
// one stat of each file per second rather than one per handshake.
const checkEvery = time.Second

// Options say how the TLS configs of this package log and tell time. A nil
// *Options, like the zero value, logs nothing and uses the system clock.
type Options struct {
	// Logger receives a line when renewed files are loaded, or refused
	// and the last good ones kept; nil discards.
	Logger *slog.Logger
	// Now paces the looks at the files; nil means time.Now. Tests
	// replace it to step past a check without sleeping.
	Now func() time.Time
}

func (o *Options) logger() *slog.Logger {
	if o == nil || o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

func (o *Options) clock() func() time.Time {
	if o == nil || o.Now == nil {
		return time.Now
	}
	return o.Now
}

// reloading holds what load makes of a set of files, and makes it again
// when one of them changes: a renewal by cert-manager, certbot or an
// operator replaces the files in place (a new file renamed over the old, a
// symbolic link switched, or the file rewritten), and the process serves
// the new certificate from the next handshake on, without a restart.
//
// A load that fails (a pair caught half written, a key that is not the
// certificate's, an expired certificate) keeps the last good value: a
// renewal gone wrong never makes a working listener refuse handshakes.
// The failure is logged once per change of the files, not per handshake.
//
// Handshakes drive the checks (get), at most one per checkEvery, so there
// is no goroutine to stop. It is safe for concurrent use.
type reloading[T any] struct {
	key   string   // the config key, as logs name it
	files []string // what load reads
	load  func() (T, error)
	about func(T) []any // log attributes of a loaded value; may be nil
	log   *slog.Logger
	now   func() time.Time

	mu   sync.Mutex
	next time.Time     // no look at the files before then
	seen []os.FileInfo // the files when last loaded, nil where missing
	cur  T
}

// newReloading loads the files once; an error then is the load's, which
// names the config key, and the caller fails to start with it.
func newReloading[T any](key string, files []string, load func() (T, error), about func(T) []any, opts *Options) (*reloading[T], error) {
	r := &reloading[T]{key: key, files: files, load: load, about: about, log: opts.logger(), now: opts.clock()}
	// Stat before reading: a change made while the files are read shows
	// at the next look and loads them again.
	r.seen = stat(files)
	v, err := load()
	if err != nil {
		return nil, err
	}
	r.cur = v
	r.next = r.now().Add(checkEvery)
	return r, nil
}

// get returns the current value, first loading the files again if
// checkEvery has passed since the last look and they changed since.
func (r *reloading[T]) get() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); !now.Before(r.next) {
		r.next = now.Add(checkEvery)
		r.refresh()
	}
	return r.cur
}

// current returns the current value without a look at the files.
func (r *reloading[T]) current() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

// reload looks at the files now, however recently it last did, and
// returns the value then current.
func (r *reloading[T]) reload() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refresh()
	return r.cur
}

// refresh loads the files again if they changed since the last load. r.mu
// is held.
func (r *reloading[T]) refresh() {
	seen := stat(r.files)
	if slices.EqualFunc(seen, r.seen, sameFile) {
		return
	}
	// Recorded whether the load succeeds or not: a failure is logged
	// once, and the next change (the rest of a renewal) is tried again.
	r.seen = seen
	v, err := r.load()
	if err != nil {
		r.log.Warn("renewed TLS files cannot be used; the last good ones are still served", "key", r.key, "err", err)
		return
	}
	r.cur = v
	attrs := []any{"key", r.key}
	if r.about != nil {
		attrs = append(attrs, r.about(v)...)
	}
	r.log.Info("TLS files reloaded", attrs...)
}

// stat returns the files' info, nil for one that cannot be read.
func stat(files []string) []os.FileInfo {
	out := make([]os.FileInfo, len(files))
	for i, f := range files {
		if fi, err := os.Stat(f); err == nil {
			out[i] = fi
		}
	}
	return out
}

// sameFile reports whether a and b describe one unchanged file: the same
// file (a rename over it or a switched link makes another), size and
// modification time.
func sameFile(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// reloadingPair watches a certificate and its private key, checked as
// keyPair checks them.
func reloadingPair(certFile, keyFile, certKey, keyKey string, opts *Options) (*reloading[*tls.Certificate], error) {
	load := func() (*tls.Certificate, error) {
		pair, err := keyPair(certFile, keyFile, certKey, keyKey)
		if err != nil {
			return nil, err
		}
		return &pair, nil
	}
	about := func(c *tls.Certificate) []any {
		if c.Leaf == nil {
			return nil
		}
		return []any{"subject", c.Leaf.Subject.String(), "notAfter", c.Leaf.NotAfter.UTC()}
	}
	return newReloading(certKey, []string{certFile, keyFile}, load, about, opts)
}

// reloadingPool watches a file of CA certificates.
func reloadingPool(file, key string, opts *Options) (*reloading[*x509.CertPool], error) {
	return newReloading(key, []string{file}, func() (*x509.CertPool, error) { return certPool(file, key) }, nil, opts)
}

// clientCertificate offers pair when the server asks for a client
// certificate, as crypto/tls chooses among Config.Certificates: the
// empty certificate when the server names CAs that did not sign it.
func clientCertificate(pair *reloading[*tls.Certificate]) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		c := pair.get()
		if cri.SupportsCertificate(c) != nil {
			return &tls.Certificate{}, nil
		}
		return c, nil
	}
}
