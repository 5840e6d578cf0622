package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIMain checks the dispatch between the server commands (here) and
// the rest (internal/cli), and the exit codes: 0 ok, 1 error, 2 usage.
func TestCLIMain(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.json")
	for _, tc := range []struct {
		args        []string
		code        int
		out, errOut string
	}{
		{[]string{"version"}, 0, "atrax dev", ""},
		{[]string{"--version"}, 0, "atrax dev", ""},
		{[]string{"help"}, 0, "serve -f CONFIG", ""},
		{nil, 2, "", "Usage: atrax COMMAND"},
		{[]string{"nope"}, 2, "", `unknown command "nope"`},
		{[]string{"serve"}, 2, "", "atrax serve: -f CONFIG is required"},
		{[]string{"edge", "-f", "x", "extra"}, 2, "", `atrax edge: unexpected argument "extra"`},
		{[]string{"controlplane", "-bogus"}, 2, "", "flag provided but not defined: -bogus"},
		{[]string{"serve", "-h"}, 0, "", "-f string"},
		{[]string{"serve", "-f", missing}, 1, "", "no such file or directory"},
		{[]string{"config", "validate", "-f", missing}, 1, "", "atrax config validate: " + missing},
		{[]string{"config", "validate"}, 2, "", "-f CONFIG is required"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, strings.NewReader(""), &out, &errb)
		if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errb.String(), tc.errOut) {
			t.Errorf("atrax %s: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				strings.Join(tc.args, " "), code, out.String(), errb.String(), tc.code, tc.out, tc.errOut)
		}
	}
}
