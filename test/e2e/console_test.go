package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/internal/syncbuf"
)

// The web console in a real browser: Debian's Chromium, headless, driven
// by playwright-core (clients/console_drive.mjs) against `atrax serve`
// with ui.enabled. No browser is ever downloaded: the test uses
// /usr/bin/chromium, installing Debian's package when it is missing.

// chromiumBin is Debian's Chromium.
const chromiumBin = "/usr/bin/chromium"

// consoleViewerToken is a static token without the admin scope.
const consoleViewerToken = "e2e-console-viewer-token-8d41"

// consoleClientSecret is the secret of a client without the admin scope.
const consoleClientSecret = "e2e-console-client-secret-31c7"

// consoleTimeout bounds the browser script; the console test runs well
// under a minute, the bound leaves room for a loaded machine.
const consoleTimeout = 2 * time.Minute

var (
	chromiumOnce sync.Once
	chromiumErr  error
)

// needChromium returns the path of Debian's Chromium, installing the
// package (apt-get install -y chromium) when it is missing, and skips the
// test with the reason when that fails.
func needChromium(t *testing.T) string {
	t.Helper()
	chromiumOnce.Do(func() { chromiumErr = installChromium() })
	if chromiumErr != nil {
		t.Skipf("the console's browser tests need Debian's chromium at %s, and it could not be installed: %v", chromiumBin, chromiumErr)
	}
	return chromiumBin
}

func installChromium() error {
	if st, err := os.Stat(chromiumBin); err == nil && st.Mode()&0o111 != 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	run := func(name string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return errors.New("apt-get is not on PATH (not a Debian machine)")
	}
	// A package list that does not know chromium yet is refreshed first.
	if out, err := run("apt-cache", "policy", "chromium"); err != nil || !strings.Contains(out, "Candidate:") || strings.Contains(out, "Candidate: (none)") {
		if out, err := run("apt-get", "update"); err != nil {
			return fmt.Errorf("apt-get update: %w\n%s", err, tail(out, 2000))
		}
	}
	if out, err := run("apt-get", "install", "-y", "chromium"); err != nil {
		return fmt.Errorf("apt-get install -y chromium: %w\n%s", err, tail(out, 2000))
	}
	if _, err := os.Stat(chromiumBin); err != nil {
		return fmt.Errorf("the chromium package installed no %s", chromiumBin)
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// consoleStep is one line of console_drive.mjs's output.
type consoleStep struct {
	Step        string   `json:"step"`
	Done        bool     `json:"done"`
	Fatal       string   `json:"fatal"`
	URL         string   `json:"url"`
	Screenshots []string `json:"screenshots"`
	// Set on the last line.
	RevokedToken string `json:"revokedToken"`
	JTI          string `json:"jti"`
	RequestID    string `json:"requestId"`
}

// TestConsole drives the web console as an operator would, in headless
// Chromium: sign in, see a server come up, add a server through the form
// and see its tools, edit and restart it, issue a token and revoke it (the
// next call with it is refused), try a tool and read its audit entry, get
// a prompt and read resources (listed, from a template, a blob, one no
// server has), and sign in as a client without the admin scope (then with
// a JWT) to see the admin actions disabled and explained. Every page is
// checked with axe-core and by keyboard, and photographed into
// test/e2e/artifacts/console/.
//
// It is not parallel: a browser is the heaviest thing these tests run,
// and alone it stays well under a minute.
func TestConsole(t *testing.T) {
	chromium := needChromium(t)
	pe := installPeers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// A remote server to add through the form.
	remote, err := pe.StartEverything(ctx, "streamableHttp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = remote.Stop() })

	ev := pe.EverythingStdio()
	def, _ := json.Marshal(mcpStdioDef(ev, nil, nil))
	p := startAtrax(t, "serve", fmt.Sprintf(`{
  "auth": {"type": "token", "options": {
    "token": %q,
    "tokens": [{"name": "viewer", "token": %q, "servers": ["*"]}],
    "clients": [{"id": "console-viewer", "secret": %q}]
  }},
  "ui": {"enabled": true},
  "mcpServers": {"everything": %s}
}`, adminToken, consoleViewerToken, consoleClientSecret, def), nil)

	artifacts := filepath.Join(repoRoot, "test", "e2e", "artifacts", "console")
	if err := os.RemoveAll(artifacts); err != nil {
		t.Fatal(err)
	}
	plan, _ := json.Marshal(map[string]any{
		"base":        p.HTTP,
		"token":       adminToken,
		"viewerToken": consoleViewerToken,
		"client":      map[string]string{"id": "console-viewer", "secret": consoleClientSecret},
		"chromium":    chromium,
		"artifacts":   artifacts,
		"server":      "everything",
		"echoTool":    "everything__echo",
		"remote":      map[string]string{"name": "remote", "url": remote.URL},
		// What server-everything offers: a prompt with a required
		// argument, a listed document, a text template and a blob one, and
		// what each answers.
		// A tool that asks its caller to fill in a form (elicitation),
		// with one required field.
		"elicitTool": map[string]string{"name": "everything__trigger-elicitation-request", "field": "name", "value": "Ada Lovelace", "want": "Name: Ada Lovelace"},
		// A tool that asks its caller for a model's reply (sampling).
		"samplingTool": map[string]string{"name": "everything__trigger-sampling-request", "prompt": "a haiku about gateways", "reply": "One port, many doors"},
		"prompt":       map[string]string{"name": "everything__args-prompt", "argument": "city", "value": "Lisbon", "want": "What's weather in Lisbon?"},
		"resource": map[string]string{"uri": mcpStaticDoc, "want": "Server Instructions",
			"template": mcpDynamicText, "variable": "{resourceId}", "value": "42", "templateWant": "Resource 42:",
			"blob": "demo://resource/dynamic/blob/7", "missing": "demo://nobody/has/this"},
	})

	runCtx, runCancel := context.WithTimeout(ctx, consoleTimeout)
	defer runCancel()
	cmd := pe.Command(runCtx, filepath.Join("clients", "console_drive.mjs"), string(plan))
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the browser script: %v", err)
	}
	var last consoleStep
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var s consoleStep
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Logf("browser script: %s", sc.Text())
			continue
		}
		last = s
		switch {
		case s.Fatal != "":
			t.Errorf("console step %q failed at %s:\n%s", s.Step, s.URL, s.Fatal)
		case s.Step != "":
			t.Logf("console: %s (%s)", s.Step, time.Since(start).Round(time.Millisecond))
		}
	}
	waitErr := cmd.Wait()
	if len(last.Screenshots) > 0 {
		t.Logf("console screenshots (%d) in %s", len(last.Screenshots), artifacts)
	}
	if waitErr != nil || !last.Done {
		t.Fatalf("the browser script did not finish (%v, after %s); its stderr:\n%s", waitErr, time.Since(start).Round(time.Millisecond), stderr.String())
	}

	// What the browser did, seen from outside it.
	if r := statelessCall(t, p.HTTP, last.RevokedToken, "tools/call", map[string]any{"name": "everything__echo", "arguments": map[string]any{"message": "x"}}, nil); r.Status != 401 {
		t.Errorf("a call with the token revoked in the console: status %d, want 401", r.Status)
	}
	events := mustStatus(t, 200, "GET", p.HTTP+"/audit?pageSize=200", adminToken, "").JSON(t)["events"].([]any)
	want := map[string]bool{"server.create remote": false, "server.update remote": false, "server.restart remote": false, "token.revoke ": false, "tool.call everything " + last.RequestID: false}
	for _, e := range events {
		m := e.(map[string]any)
		key := str(m["action"]) + " " + str(m["server"])
		if str(m["action"]) == "tool.call" {
			key += " " + str(m["requestId"])
		}
		if _, ok := want[key]; ok && str(m["outcome"]) == "ok" {
			want[key] = true
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("the audit log has no successful %q", k)
		}
	}
	for _, shot := range last.Screenshots {
		if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
			t.Errorf("screenshot %s: %v", shot, err)
		}
	}
}
