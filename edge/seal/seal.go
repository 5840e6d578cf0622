// Package seal protects state that the edge hands to a client and takes
// back later (the requestState of an input_required result): authenticated
// encryption with keys every edge gets from the control plane, so that the
// client can neither read nor change it, and any edge holding the keys can
// open it.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
)

// version prefixes every sealed value, so that the format can change.
const version = "a1"

// Errors of Open. Every failure wraps ErrInvalid.
var (
	ErrInvalid = errors.New("sealed state is not valid")
	ErrNoKey   = fmt.Errorf("%w: sealed with a key this edge does not have", ErrInvalid)
)

// Key is one sealing key: 32 bytes for AES-256-GCM.
type Key struct {
	ID  string
	Key []byte
}

// Ring holds the current keys; the first seals, all open. It is safe for
// concurrent use, and Set swaps the keys atomically.
type Ring struct {
	keys atomic.Pointer[[]ringKey]
}

type ringKey struct {
	id   string
	aead cipher.AEAD
}

// Set replaces the keys. Keys of the wrong size are refused.
func (r *Ring) Set(keys []Key) error {
	out := make([]ringKey, 0, len(keys))
	for _, k := range keys {
		if len(k.Key) != 32 {
			return fmt.Errorf("seal key %q has %d bytes, want 32", k.ID, len(k.Key))
		}
		if strings.Contains(k.ID, ".") || k.ID == "" {
			return fmt.Errorf("seal key id %q must be non-empty and without dots", k.ID)
		}
		block, err := aes.NewCipher(k.Key)
		if err != nil {
			return err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return err
		}
		out = append(out, ringKey{id: k.ID, aead: aead})
	}
	r.keys.Store(&out)
	return nil
}

// Seal encrypts plaintext, binding it to aad (data the caller will supply
// again to Open: who may open it and for which request).
func (r *Ring) Seal(plaintext, aad []byte) (string, error) {
	p := r.keys.Load()
	if p == nil || len(*p) == 0 {
		return "", errors.New("no seal key yet: the edge has not received one from the control plane")
	}
	k := (*p)[0]
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	ct := k.aead.Seal(nonce, nonce, plaintext, aad)
	return version + "." + k.id + "." + base64.RawURLEncoding.EncodeToString(ct), nil
}

// Open decrypts a sealed value; it fails unless it was sealed with one of
// the ring's keys and the same aad, and not changed since.
func (r *Ring) Open(sealed string, aad []byte) ([]byte, error) {
	v, rest, ok := strings.Cut(sealed, ".")
	if !ok || v != version {
		return nil, fmt.Errorf("%w: unknown format", ErrInvalid)
	}
	id, body, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, fmt.Errorf("%w: unknown format", ErrInvalid)
	}
	ct, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64url", ErrInvalid)
	}
	p := r.keys.Load()
	if p == nil {
		return nil, ErrNoKey
	}
	for _, k := range *p {
		if k.id != id {
			continue
		}
		n := k.aead.NonceSize()
		if len(ct) < n {
			return nil, fmt.Errorf("%w: too short", ErrInvalid)
		}
		pt, err := k.aead.Open(nil, ct[:n], ct[n:], aad)
		if err != nil {
			return nil, fmt.Errorf("%w: it was changed, or is not for this request or caller", ErrInvalid)
		}
		return pt, nil
	}
	return nil, ErrNoKey
}
