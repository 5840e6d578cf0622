package cli

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/atrax-mcp/atrax/internal/config"
)

//go:embed init.jsonc
var initTemplate string

// exampleConfig returns the config `atrax init` writes, with token as its
// admin token.
func exampleConfig(token string) string {
	return strings.Replace(initTemplate, "{{TOKEN}}", token, 1)
}

var initCmd = &command{
	name:    "init",
	summary: "write a commented example config (atrax.json)",
	detail: `
The config puts two servers from npm (everything, memory) behind one endpoint,
with a freshly generated admin token. It refuses to overwrite a file unless
--force is given; -o - writes it to stdout.`,
	setup: func(e *env, fset *flag.FlagSet) func(context.Context, []string) error {
		var path string
		var force bool
		fset.StringVar(&path, "o", "atrax.json", "write the config to `PATH` (- for stdout)")
		fset.BoolVar(&force, "force", false, "overwrite an existing file")
		return func(context.Context, []string) error {
			token, err := newToken()
			if err != nil {
				return err
			}
			text := exampleConfig(token)
			if path == "-" {
				_, err := fmt.Fprint(e.stdout, text)
				return err
			}
			flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if force {
				flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			}
			// 0600: the file holds a token.
			f, err := os.OpenFile(path, flags, 0o600)
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s already exists: keep it, choose another path with -o, or overwrite it with --force", path)
			}
			if err != nil {
				return err
			}
			_, werr := f.WriteString(text)
			if err := errors.Join(werr, f.Close()); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
			cfg, err := config.Load(path, config.Options{LookupEnv: func(string) (string, bool) { return "", false }})
			if err != nil {
				return fmt.Errorf("the config written to %s does not validate (a bug; please report it):\n%w", path, err)
			}
			fmt.Fprintf(e.stdout, "Wrote %s: %s behind one endpoint on http://%s:%d/mcp.\n\n", path, plural(len(cfg.Servers), "server", "servers"), cfg.Host, cfg.Port)
			fmt.Fprintf(e.stdout, "Start it, and manage it from another shell:\n\n  atrax serve -f %s\n  export ATRAX_TOKEN=%s\n  atrax status --wait\n", path, token)
			return nil
		}
	},
}

// newToken returns a random admin token.
func newToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "atrax_" + base64.RawURLEncoding.EncodeToString(b), nil
}
