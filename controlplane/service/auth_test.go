package service

import (
	"context"
	"encoding/base64"
	"testing"

	"google.golang.org/grpc/metadata"
)

func TestBasicAuth(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name          string
		authorization []string
		id, secret    string
		ok            bool
	}{
		{"plain", []string{"Basic " + b64("ci:s3cret")}, "ci", "s3cret", true},
		{"scheme in any case", []string{"basic " + b64("ci:s3cret")}, "ci", "s3cret", true},
		{"spaces around", []string{"  Basic   " + b64("ci:s3cret") + " "}, "ci", "s3cret", true},
		// RFC 6749 2.3.1: both parts are form-encoded before base64.
		{"form-encoded", []string{"Basic " + b64("my%20client:p%40ss%3Aword")}, "my client", "p@ss:word", true},
		{"plus is a space", []string{"Basic " + b64("ci:a+b")}, "ci", "a b", true},
		{"colon in the secret", []string{"Basic " + b64("ci:a:b")}, "ci", "a:b", true},
		{"bad escape kept as written", []string{"Basic " + b64("ci%zz:s%")}, "ci%zz", "s%", true},
		{"empty secret", []string{"Basic " + b64("ci:")}, "ci", "", true},
		{"no colon", []string{"Basic " + b64("ci")}, "", "", false},
		{"not base64", []string{"Basic !!!"}, "", "", false},
		{"bearer", []string{"Bearer token"}, "", "", false},
		{"bearer then basic", []string{"Bearer token", "Basic " + b64("ci:s3cret")}, "ci", "s3cret", true},
		{"scheme alone", []string{"Basic"}, "", "", false},
		{"none", nil, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := metadata.MD{}
			for _, a := range tt.authorization {
				md.Append("authorization", a)
			}
			id, secret, ok := basicAuth(metadata.NewIncomingContext(context.Background(), md))
			if id != tt.id || secret != tt.secret || ok != tt.ok {
				t.Errorf("basicAuth = %q, %q, %v; want %q, %q, %v", id, secret, ok, tt.id, tt.secret, tt.ok)
			}
		})
	}
	if _, _, ok := basicAuth(context.Background()); ok {
		t.Error("basicAuth without metadata reported credentials")
	}
}
