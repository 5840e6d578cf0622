package boltstore

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/atrax-mcp/atrax/controlplane/store"
	"github.com/atrax-mcp/atrax/controlplane/store/storetest"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// openTemp opens a new store in a temporary directory and closes it at the
// end of the test.
func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "atrax.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// TestStore runs the store conformance suite shared with etcdstore.
func TestStore(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			s, _ := openTemp(t)
			return s
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			re, err := Open(s.(*Store).path, Options{})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			t.Cleanup(func() { re.Close() })
			return re
		},
		ErrClosed:      ErrClosed,
		DenseRevisions: true,
	})
}

// Helpers of the suite that the tests of this file use too.
var (
	server = storetest.Server
	must   = storetest.Must
)

func TestOpenCreatesDirectoryAndFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "atrax")
	path := filepath.Join(dir, "atrax.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	for _, c := range []struct {
		path string
		want os.FileMode
	}{{dir, 0o700 | os.ModeDir}, {path, 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != c.want {
			t.Errorf("mode of %s = %v, want %v", c.path, got, c.want)
		}
	}
	rev, err := s.Revision(t.Context())
	if err != nil || rev != 0 {
		t.Errorf("Revision of a new store = %d, %v; want 0, nil", rev, err)
	}
}

// editMeta opens the file with bbolt directly and lets fn damage it.
func editMeta(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesUnknownFiles(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(tx *bolt.Tx) error
		tooNew    bool
		wantTexts []string
	}{
		{
			name: "newer schema",
			edit: func(tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint64(nil, 2))
			},
			tooNew:    true,
			wantTexts: []string{"has schema version 2; this atrax supports up to 1: upgrade atrax"},
		},
		{
			name:      "meta missing",
			edit:      func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketMeta) },
			wantTexts: []string{"damaged", `"meta"`},
		},
		{
			name:      "schema missing",
			edit:      func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keySchema) },
			wantTexts: []string{"damaged", "schema version"},
		},
		{
			name:      "schema malformed",
			edit:      func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("1")) },
			wantTexts: []string{"damaged", "schema version"},
		},
		{
			name: "schema zero",
			edit: func(tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint64(nil, 0))
			},
			wantTexts: []string{"damaged", "schema version 0"},
		},
		{
			name:      "revision missing",
			edit:      func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyRevision) },
			wantTexts: []string{"damaged", "revision"},
		},
		{
			name:      "bucket missing",
			edit:      func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketAudit) },
			wantTexts: []string{"damaged", `"audit"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "atrax.db")
			s, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			editMeta(t, path, tt.edit)

			s, err = Open(path, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if got := errors.Is(err, store.ErrSchemaTooNew); got != tt.tooNew {
				t.Errorf("errors.Is(%v, ErrSchemaTooNew) = %v, want %v", err, got, tt.tooNew)
			}
			for _, want := range append(tt.wantTexts, path) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestOpenLockedFile(t *testing.T) {
	_, path := openTemp(t)
	start := time.Now()
	s, err := Open(path, Options{Timeout: 50 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatal("second Open of an open file succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Errorf("errors.Is(%v, ErrLocked) = false", err)
	}
	for _, want := range []string{path, "in use by another atrax process"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Open took %v; the timeout was not applied", d)
	}
}

// helperEnv names the data file for TestHelperProcess.
const helperEnv = "BOLTSTORE_TEST_HELPER_PATH"

// TestHelperProcess is not a test: TestWriteSurvivesKill runs the test
// binary again with helperEnv set, and then this opens the store, writes a
// server, says "written" and waits to be killed.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process of TestWriteSurvivesKill")
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutServers(context.Background(), []*atraxv1.Server{server("durable")}, nil); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("written\n")
	time.Sleep(time.Minute) // killed long before
}

func TestWriteSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	path := filepath.Join(t.TempDir(), "atrax.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})

	written := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "written" {
				written <- true
				return
			}
		}
		written <- false
	}()
	select {
	case ok := <-written:
		if !ok {
			t.Fatal("helper process ended without writing")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("helper process did not write within 30s")
	}

	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	cmd.Wait() // the lock goes with the process

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open after kill: %v", err)
	}
	defer s.Close()
	got, err := s.GetServer(t.Context(), "durable")
	if err != nil {
		t.Fatalf("GetServer after kill: %v", err)
	}
	if diff := cmp.Diff(server("durable"), got, protocmp.Transform()); diff != "" {
		t.Errorf("server after kill (-want +got):\n%s", diff)
	}
	if rev := must(t)(s.Revision(t.Context())); rev != 1 {
		t.Errorf("Revision after kill = %d, want 1", rev)
	}
}

func TestOpenExistingFiles(t *testing.T) {
	t.Run("empty file is new", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "atrax.db")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("Open of an empty file: %v", err)
		}
		defer s.Close()
		if rev := must(t)(s.Revision(t.Context())); rev != 0 {
			t.Errorf("Revision = %d, want 0", rev)
		}
	})
	t.Run("not a data file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "atrax.db")
		if err := os.WriteFile(path, []byte(strings.Repeat("not bolt\n", 2000)), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, Options{})
		if err == nil {
			s.Close()
			t.Fatal("Open of a text file succeeded")
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name %s", err, path)
		}
	})
}
