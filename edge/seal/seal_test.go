package seal

import (
	"bytes"
	"errors"
	"testing"
)

func ring(t *testing.T, keys ...Key) *Ring {
	t.Helper()
	r := &Ring{}
	if err := r.Set(keys); err != nil {
		t.Fatal(err)
	}
	return r
}

func key(id string, b byte) Key { return Key{ID: id, Key: bytes.Repeat([]byte{b}, 32)} }

func TestRoundTrip(t *testing.T) {
	r := ring(t, key("k1", 1))
	s, err := r.Seal([]byte("state"), []byte("alice"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Open(s, []byte("alice"))
	if err != nil || string(got) != "state" {
		t.Fatalf("Open = %q, %v; want state", got, err)
	}
	if bytes.Contains([]byte(s), []byte("state")) {
		t.Errorf("sealed value %q shows the plaintext", s)
	}
}

func TestRefusals(t *testing.T) {
	r := ring(t, key("k1", 1))
	s, err := r.Seal([]byte("state"), []byte("alice"))
	if err != nil {
		t.Fatal(err)
	}
	flip := []byte(s)
	flip[len(flip)-3] ^= 1
	other := ring(t, key("k1", 2))
	tests := []struct {
		name   string
		r      *Ring
		sealed string
		aad    string
	}{
		{"other caller", r, s, "mallory"},
		{"tampered", r, string(flip), "alice"},
		{"other key same id", other, s, "alice"},
		{"unknown key id", ring(t, key("k2", 1)), s, "alice"},
		{"garbage", r, "hello", "alice"},
		{"wrong version", r, "zz" + s[2:], "alice"},
		{"not base64", r, "a1.k1.!!!", "alice"},
		{"too short", r, "a1.k1.AAAA", "alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.r.Open(tt.sealed, []byte(tt.aad)); !errors.Is(err, ErrInvalid) {
				t.Errorf("Open = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	old := ring(t, key("k1", 1))
	s, _ := old.Seal([]byte("state"), nil)
	rotated := ring(t, key("k2", 2), key("k1", 1))
	if got, err := rotated.Open(s, nil); err != nil || string(got) != "state" {
		t.Fatalf("a key retired to second place must still open: %q, %v", got, err)
	}
	s2, _ := rotated.Seal([]byte("new"), nil)
	if _, err := old.Open(s2, nil); !errors.Is(err, ErrNoKey) {
		t.Errorf("sealed with the new key, opened by an edge without it: %v, want ErrNoKey", err)
	}
}

func TestSetRefusesBadKeys(t *testing.T) {
	r := &Ring{}
	if err := r.Set([]Key{{ID: "k", Key: []byte("short")}}); err == nil {
		t.Error("a 5-byte key was accepted")
	}
	if err := r.Set([]Key{{ID: "a.b", Key: bytes.Repeat([]byte{1}, 32)}}); err == nil {
		t.Error("a key id with a dot was accepted")
	}
	if _, err := (&Ring{}).Seal([]byte("x"), nil); err == nil {
		t.Error("Seal without keys succeeded")
	}
}
