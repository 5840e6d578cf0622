// Package e2e tests the atrax binary from the outside: it builds the binary
// (and grpcurl, pinned in tools/go.mod) once, starts real processes on
// 127.0.0.1 ports the operating system picks, and drives them over real
// HTTP and gRPC, reflection included. Every wait is bounded and no process
// outlives the test that started it.
//
// The package is skipped by go test -short.
package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Paths of the binaries TestMain builds, and of the repository they were
// built from.
var (
	repoRoot   string
	atraxBin   string
	grpcurlBin string
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("test/e2e: skipped with -short (these tests build and run the atrax binary)")
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := findRepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "test/e2e:", err)
		return 1
	}
	repoRoot = root
	dir, err := os.MkdirTemp("", "atrax-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "test/e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	atraxBin = filepath.Join(dir, "atrax")
	grpcurlBin = filepath.Join(dir, "grpcurl")
	builds := [][]string{
		{"go", "build", "-o", atraxBin, "./cmd/atrax"},
		{"go", "build", "-modfile=tools/go.mod", "-o", grpcurlBin, "github.com/fullstorydev/grpcurl/cmd/grpcurl"},
	}
	for _, args := range builds {
		if err := build(root, args); err != nil {
			fmt.Fprintln(os.Stderr, "test/e2e: BUILD FAILED:", err)
			return 1
		}
	}
	return m.Run()
}

// build runs a go build command in the repository root, bounded in time.
func build(root string, args []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// findRepoRoot returns the directory of the main module's go.mod: from
// `go env GOMOD`, else by walking up from the working directory.
func findRepoRoot() (string, error) {
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			return filepath.Dir(gomod), nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod found above the working directory")
		}
		dir = parent
	}
}
