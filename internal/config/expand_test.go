package config_test

import (
	"testing"

	"github.com/atrax-mcp/atrax/internal/config"
)

func TestExpand(t *testing.T) {
	lookup := env(map[string]string{"A": "a", "B": "b", "EMPTY": "", "_X1": "x"})
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"plain", "plain"},
		{"${A}", "a"},
		{"x${A}y${B}z", "xaybz"},
		{"${_X1}", "x"},
		{"${EMPTY}", ""},
		{"${UNSET:-def}", "def"},
		{"${EMPTY:-def}", "def"}, // the shell's ":-": unset or empty
		{"${A:-def}", "a"},
		{"${UNSET:-}", ""},
		{"${UNSET:-a:-b}", "a:-b"},
		{"${UNSET:-${A}", "${A"}, // a default is literal, up to the first "}"
		{"${A}}", "a}"},
		// Only the braced form expands; a lone "$" is literal.
		{"$", "$"},
		{"$$", "$$"},
		{"$A", "$A"},
		{"cost: $5", "cost: $5"},
		{"a$", "a$"},
		{"${A}$", "a$"},
		// "$${" is a literal "${".
		{"$${A}", "${A}"},
		{"$${", "${"},
		{"x$${A}${A}", "x${A}a"},
		{"$$${A}", "$${A}"}, // "$" then "$${": the escape wins, left to right
	}
	for _, tt := range tests {
		got, err := config.Expand(tt.in, lookup)
		if err != nil || got != tt.want {
			t.Errorf("Expand(%q) = %q, %v; want %q, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestExpandErrors(t *testing.T) {
	lookup := env(map[string]string{"A": "a"})
	const (
		unterminated = `malformed variable reference: "${" without a closing "}" (write "$${" for a literal "${")`
		empty        = `malformed variable reference: empty name in "${}"`
		badName      = `malformed variable reference: a name is letters, digits and "_", not starting with a digit (write "$${" for a literal "${")`
	)
	tests := []struct {
		in, want string
	}{
		{"${MCP_TOKEN}", "variable MCP_TOKEN is not set"},
		{"${A}${B}", "variable B is not set"},
		{"${", unterminated},
		{"${A", unterminated},
		{"x ${A:-b", unterminated},
		{"${}", empty},
		{"${:-x}", empty},
		{"${1X}", badName},
		{"${A B}", badName},
		{"${A-b}", badName},
		{"${A:?b}", badName},
		{"${é}", badName},
	}
	for _, tt := range tests {
		got, err := config.Expand(tt.in, lookup)
		if err == nil || err.Error() != tt.want {
			t.Errorf("Expand(%q) = %q, %v; want error %q", tt.in, got, err, tt.want)
		}
	}
}

func TestExpandNilLookup(t *testing.T) {
	t.Setenv("ATRAX_CONFIG_TEST_VAR", "from-os")
	got, err := config.Expand("${ATRAX_CONFIG_TEST_VAR}", nil)
	if err != nil || got != "from-os" {
		t.Errorf("Expand with a nil lookup = %q, %v; want the process environment", got, err)
	}
}
