package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// server is one mcpServers entry of a benchmark config, in order.
type server struct {
	Name string
	Def  map[string]any
}

// httpServer is a streamable HTTP upstream at url.
func httpServer(name, url string) server {
	return server{name, map[string]any{"type": "http", "url": url, "isolation": "shared"}}
}

// stdioServer is a benchserver child on stdio.
func stdioServer(name, bin string) server {
	return server{name, map[string]any{"command": bin, "isolation": "shared"}}
}

// atrax is one running `atrax serve`.
type atrax struct {
	p     *proc
	base  string // http://127.0.0.1:PORT
	pprof string // 127.0.0.1:PORT, "" without
	dir   string
}

// writeConfig writes an `atrax serve` config for servers into a new
// directory under root: token auth with the static token, everything on
// 127.0.0.1 with ports the OS picks.
func (b *bench) writeConfig(servers []server) (dir, path string, err error) {
	dir, err = os.MkdirTemp(b.tmp, "atrax-")
	if err != nil {
		return "", "", err
	}
	var ms bytes.Buffer
	ms.WriteString("{")
	for i, s := range servers {
		if i > 0 {
			ms.WriteString(",")
		}
		k, _ := json.Marshal(s.Name)
		v, _ := json.Marshal(s.Def)
		ms.Write(k)
		ms.WriteString(":")
		ms.Write(v)
	}
	ms.WriteString("}")
	// One token drives every session of the benchmark: the limits stay on,
	// raised above what the figures open at once.
	limits := `
  "limits": {"maxInFlightPerToken": 1024, "maxSessionsPerToken": 20000, "maxSessions": 20000, "maxInFlightPerUpstream": 1024},`
	if b.noLimits {
		limits = ""
	}
	cfg := fmt.Sprintf(`{
  "port": 0,
  "host": "127.0.0.1",
  "auth": {"type": "token", "options": {"token": %q}},
  "controlPlane": {"address": "127.0.0.1:0"},
  "dataDir": %q,%s
  "mcpServers": %s
}`, b.token, filepath.Join(dir, "data"), limits, ms.String())
	path = filepath.Join(dir, "atrax.json")
	return dir, path, os.WriteFile(path, []byte(cfg), 0o600)
}

// startAtrax starts `atrax serve` for servers and waits until it serves
// the merged tool list of all of them (wantTools tools).
func (b *bench) startAtrax(ctx context.Context, servers []server, wantTools int, pprof bool) (*atrax, error) {
	dir, path, err := b.writeConfig(servers)
	if err != nil {
		return nil, err
	}
	env := append(baseEnv(), b.atraxEnv...)
	if pprof {
		env = append(env, "ATRAX_PPROF=127.0.0.1:0")
	}
	p, err := startProc("atrax", b.atraxBin, []string{"serve", "-f", path}, env, dir)
	if err != nil {
		return nil, err
	}
	a := &atrax{p: p, dir: dir}
	m, err := p.waitLog(ctx, "edge serving", startTimeout)
	if err != nil {
		a.stop()
		return nil, err
	}
	a.base = "http://" + m["address"].(string)
	if pprof {
		m, err := p.waitLog(ctx, "pprof serving", startTimeout)
		if err != nil {
			a.stop()
			return nil, err
		}
		a.pprof = m["address"].(string)
	}
	if err := b.waitTools(ctx, a.base+"/mcp", b.token, wantTools, startTimeout); err != nil {
		a.stop()
		return nil, fmt.Errorf("%w\n%s", err, p.stderrTail())
	}
	return a, nil
}

func (a *atrax) stop() {
	a.p.stop()
	_ = os.RemoveAll(a.dir)
}

// waitTools polls tools/list at url until it lists want tools.
func (b *bench) waitTools(ctx context.Context, url, token string, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := b.countTools(ctx, url, token)
		if err == nil && n == want {
			return nil
		}
		last = err
		if err == nil {
			last = fmt.Errorf("%d tools listed, want %d", n, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("tools at %s: %v", url, last)
}

// countTools opens a session and counts the tools of every page.
func (b *bench) countTools(ctx context.Context, url, token string) (int, error) {
	c, err := openStream(ctx, b.hc, url, token)
	if err != nil {
		return 0, err
	}
	defer c.close()
	n := 0
	cursor := ""
	for range 100 {
		params := []byte(`{}`)
		if cursor != "" {
			params, _ = json.Marshal(map[string]string{"cursor": cursor})
		}
		msg, err := c.call(ctx, "tools/list", params)
		if err != nil {
			return 0, err
		}
		var r struct {
			Result struct {
				Tools      []json.RawMessage `json:"tools"`
				NextCursor string            `json:"nextCursor"`
			} `json:"result"`
		}
		if err := json.Unmarshal(msg, &r); err != nil {
			return 0, err
		}
		n += len(r.Result.Tools)
		if r.Result.NextCursor == "" {
			return n, nil
		}
		cursor = r.Result.NextCursor
	}
	return 0, fmt.Errorf("too many pages")
}

// issueJWT exchanges the static token for a JWT at /auth.
func (b *bench) issueJWT(ctx context.Context, base string) (string, error) {
	body := fmt.Sprintf(`{"token":%q}`, b.token)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/auth", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST /auth: %s: %s", resp.Status, data)
	}
	var r struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(data, &r); err != nil || r.AccessToken == "" {
		return "", fmt.Errorf("POST /auth: no access_token in %s", data)
	}
	return r.AccessToken, nil
}

// fetch GETs url into path (profiles).
func (b *bench) fetch(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
