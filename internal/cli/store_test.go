package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/internal/cli"
	"github.com/atrax-mcp/atrax/internal/config"
)

func TestCLIStoreMigrate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fleet.json")
	os.WriteFile(path, []byte(`{
		"auth": {"type": "token", "options": {"token": "t"}},
		"store": {"etcd": {"endpoints": ["127.0.0.1:2379"], "prefix": "/prod/atrax", "username": "atrax", "password": "${ETCD_PASSWORD}"}},
	}`), 0o600)
	copied := cli.StoreCopy{From: "/var/lib/atrax/atrax.db", To: "etcd /prod/atrax", Servers: 3, SigningKeys: 2, SealKeys: 1, Revocations: 4, AuditEvents: 1532}
	var gotDir string
	var gotCfg *config.Config
	var fail error
	migrate := func(_ context.Context, dir string, cfg *config.Config) (cli.StoreCopy, error) {
		gotDir, gotCfg = dir, cfg
		if fail != nil {
			return cli.StoreCopy{}, fail
		}
		return copied, nil
	}
	runMigrate := func(args ...string) result {
		t.Helper()
		var out, errb bytes.Buffer
		code := cli.Run(t.Context(), append([]string{"store", "migrate"}, args...), cli.Options{
			Stdout: &out, Stderr: &errb,
			LookupEnv: func(k string) (string, bool) {
				return map[string]string{"ETCD_PASSWORD": "pw"}[k], k == "ETCD_PASSWORD"
			},
			MigrateStore: migrate,
		})
		return result{out.String(), errb.String(), code}
	}

	r := runMigrate("--from-data-dir", "/var/lib/atrax", "-f", path)
	r.want(t, 0, "Copied /var/lib/atrax/atrax.db to etcd /prod/atrax", "audit events  1532", "signing keys  2", "atrax controlplane -f "+path)
	if gotDir != "/var/lib/atrax" || gotCfg.Store.Etcd.Prefix != "/prod/atrax" || gotCfg.Store.Etcd.Password != "pw" {
		t.Errorf("migrate called with %q and prefix %q, password %q; want the flag's directory and the config, its environment read",
			gotDir, gotCfg.Store.Etcd.Prefix, gotCfg.Store.Etcd.Password)
	}

	r = runMigrate("--from-data-dir", "/var/lib/atrax", "-f", path, "-o", "json")
	r.want(t, 0)
	var got cli.StoreCopy
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("-o json: %v\n%s", err, r.stdout)
	}
	if diff := cmp.Diff(copied, got); diff != "" {
		t.Errorf("-o json (-want +got):\n%s", diff)
	}
	if !strings.Contains(r.stdout, `"auditEvents": 1532`) {
		t.Errorf("-o json lacks auditEvents:\n%s", r.stdout)
	}

	fail = errors.New("/var/lib/atrax/atrax.db is in use: stop the control plane first")
	runMigrate("--from-data-dir", "/var/lib/atrax", "-f", path).want(t, cli.ExitError, "atrax store migrate: /var/lib/atrax/atrax.db is in use: stop the control plane first")

	os.WriteFile(path, []byte(`{"store": {"etcd": {"endpoints": []}}}`), 0o600)
	runMigrate("--from-data-dir", "/var/lib/atrax", "-f", path).want(t, cli.ExitError, "store.etcd.endpoints: must name at least one etcd member")
}
