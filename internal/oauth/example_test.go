package oauth_test

import (
	"fmt"

	"github.com/atrax-mcp/atrax/internal/oauth"
)

// Where the metadata of a Keycloak realm is looked for, in order.
func ExampleMetadataURLs() {
	urls, _ := oauth.MetadataURLs("https://sso.example.com/realms/main")
	for _, u := range urls {
		fmt.Println(u)
	}
	// Output:
	// https://sso.example.com/.well-known/oauth-authorization-server/realms/main
	// https://sso.example.com/.well-known/openid-configuration/realms/main
	// https://sso.example.com/realms/main/.well-known/openid-configuration
}

// A JWK Set's keys, each pinned to one algorithm; the HMAC key is skipped.
func ExampleParseJWKS() {
	keys, skipped, _ := oauth.ParseJWKS([]byte(`{"keys": [
		{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
		{"kty": "oct", "kid": "k2", "k": "c2VjcmV0"}
	]}`))
	fmt.Println(keys["k1"].Algorithm, len(skipped))
	// Output: EdDSA 1
}
