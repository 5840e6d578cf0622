package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/controlplane"
	"github.com/atrax-mcp/atrax/controlplane/store/boltstore"
	"github.com/atrax-mcp/atrax/controlplane/store/etcdstore/etcdtest"
	"github.com/atrax-mcp/atrax/controlplane/store/storetest"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// TestStoreMigrate runs atrax store migrate as main wires it, from a data
// directory into a real etcd, twice: the second copy is refused.
func TestStoreMigrate(t *testing.T) {
	dataDir := t.TempDir()
	src, err := boltstore.Open(filepath.Join(dataDir, controlplane.StoreFile), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := src.PutServers(ctx, []*atraxv1.Server{storetest.Server("memory")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := src.PutSigningKey(ctx, storetest.SigningKey(t, "k1", time.Now())); err != nil {
		t.Fatal(err)
	}
	src.Close()

	c := etcdtest.Start(t, 1)
	cfg := filepath.Join(t.TempDir(), "fleet.json")
	os.WriteFile(cfg, fmt.Appendf(nil, `{
		"auth": {"type": "token", "options": {"token": "t"}},
		"store": {"etcd": {"endpoints": [%q], "prefix": "/fleet"}},
	}`, c.Endpoints()[0]), 0o600)
	migrate := func() (int, string, string) {
		var out, errb bytes.Buffer
		code := run([]string{"store", "migrate", "--from-data-dir", dataDir, "-f", cfg}, strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}

	code, out, errOut := migrate()
	if code != 0 || !strings.Contains(out, "Copied "+filepath.Join(dataDir, controlplane.StoreFile)+" to etcd /fleet") || !strings.Contains(out, "servers       1") {
		t.Errorf("store migrate: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	code, _, errOut = migrate()
	if code != 1 || !strings.Contains(errOut, "atrax store migrate: ") || !strings.Contains(errOut, "prefix /fleet already holds data") {
		t.Errorf("store migrate again: exit %d, stderr %s; want 1 and a refusal", code, errOut)
	}
}
