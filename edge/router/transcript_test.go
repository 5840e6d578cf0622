package router_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
	"github.com/atrax-mcp/atrax/edge/router"
)

var update = flag.Bool("update", false, "rewrite the expected messages of testdata/*.txtar from what the router answers")

// transcriptConfig is the config.json of a transcript: the servers (fake,
// answering every call with what they received), the namespacing, and
// the session's principal and capabilities.
type transcriptConfig struct {
	Namespacing struct {
		Mode, Separator, Conflict string
		Prefer                    []string
	} `json:"namespacing"`
	PageSize  int `json:"pageSize"`
	Principal struct {
		Servers []string `json:"servers"`
		Tools   []string `json:"tools"`
	} `json:"principal"`
	Capabilities json.RawMessage `json:"capabilities"`
	Servers      []struct {
		Name, Prefix string
		Allow, Deny  []string
		Tools        []string
		Prompts      []string
		Resources    []string
		Templates    []string
		Logging      bool
	} `json:"servers"`
}

// TestTranscripts replays testdata/*.txtar: each holds config.json and a
// transcript of client messages ("> ") and the router's answers ("< ").
// Run with -update to rewrite the answers, then review the diff.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts in testdata (%v)", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			ar := parseTxtar(data)
			var cfg transcriptConfig
			if err := json.Unmarshal(ar.file("config.json"), &cfg); err != nil {
				t.Fatalf("config.json: %v", err)
			}
			r, c := transcriptRouter(t, cfg)

			// Each "> " line is followed by the "< " lines it is answered with.
			type step struct {
				before []string // comment and blank lines
				in     string
				want   []string
			}
			var steps []step
			var pending []string
			for _, line := range strings.Split(strings.TrimRight(string(ar.file("transcript")), "\n"), "\n") {
				switch {
				case strings.HasPrefix(line, "> "):
					steps = append(steps, step{before: pending, in: strings.TrimPrefix(line, "> ")})
					pending = nil
				case strings.HasPrefix(line, "< ") && len(steps) > 0:
					steps[len(steps)-1].want = append(steps[len(steps)-1].want, strings.TrimPrefix(line, "< "))
				default:
					pending = append(pending, line)
				}
			}
			var out bytes.Buffer
			for _, st := range steps {
				for _, l := range st.before {
					out.WriteString(l + "\n")
				}
				out.WriteString("> " + st.in + "\n")
				msgs, _, err := jsonrpc.Decode([]byte(st.in))
				if err != nil {
					t.Fatalf("bad message %s: %v", st.in, err)
				}
				req := msgs[0].(*jsonrpc.Request)
				var got []string
				if req.IsCall() {
					ctx, done := c.Begin(context.Background(), req.ID)
					resp := r.Handle(ctx, c.Session, req)
					done()
					data, err := jsonrpc.Encode(resp)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, string(data))
				} else {
					r.HandleNotification(context.Background(), c.Session, req)
				}
				for _, g := range got {
					out.WriteString("< " + g + "\n")
				}
				if *update {
					continue
				}
				if len(got) != len(st.want) {
					t.Errorf("> %s\nanswered %q, want %q", st.in, got, st.want)
					continue
				}
				for i := range got {
					if diff := diffJSON(t, st.want[i], got[i]); diff != "" {
						t.Errorf("> %s\nanswer (-want +got):\n%s", st.in, diff)
					}
				}
			}
			for _, l := range pending {
				out.WriteString(l + "\n")
			}
			if *update {
				ar.set("transcript", bytes.TrimRight(out.Bytes(), "\n"))
				if err := os.WriteFile(file, ar.format(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func transcriptRouter(t *testing.T, cfg transcriptConfig) (*router.Router, *client) {
	var es []*router.Entry
	for _, s := range cfg.Servers {
		f := newServer(s.Name).withTools(s.Tools...)
		if len(s.Prompts) > 0 {
			f.withPrompts(s.Prompts...)
		}
		if len(s.Resources) > 0 {
			f.withResources(s.Resources...)
		}
		if len(s.Templates) > 0 {
			f.withTemplates(s.Templates...)
		}
		if s.Logging {
			f.withLogging()
		}
		prefix := s.Prefix
		if prefix == "" {
			prefix = s.Name
		}
		es = append(es, &router.Entry{Server: f, Prefix: prefix, Allow: s.Allow, Deny: s.Deny})
	}
	r := router.New(router.Options{PageSize: cfg.PageSize})
	ns := cfg.Namespacing
	r.SetServers(es, router.Namespacing{Mode: ns.Mode, Separator: ns.Separator, Conflict: ns.Conflict, Prefer: ns.Prefer})
	caps := string(cfg.Capabilities)
	if caps == "" {
		caps = `{}`
	}
	return r, newClient(t, "transcript", principal(cfg.Principal.Servers, cfg.Principal.Tools), caps)
}

// archive is a txtar archive (golang.org/x/tools/txtar's format): a
// comment, then files each introduced by a "-- name --" line.
type archive struct {
	comment []byte
	names   []string
	files   map[string][]byte
}

func parseTxtar(data []byte) *archive {
	ar := &archive{files: map[string][]byte{}}
	cur := ""
	inFile := false
	for _, line := range strings.SplitAfter(string(data), "\n") {
		trimmed := strings.TrimRight(line, "\n")
		if strings.HasPrefix(trimmed, "-- ") && strings.HasSuffix(trimmed, " --") && len(trimmed) > 6 {
			cur = strings.TrimSpace(trimmed[3 : len(trimmed)-3])
			ar.names = append(ar.names, cur)
			ar.files[cur] = nil
			inFile = true
			continue
		}
		if !inFile {
			ar.comment = append(ar.comment, line...)
			continue
		}
		ar.files[cur] = append(ar.files[cur], line...)
	}
	return ar
}

func (ar *archive) file(name string) []byte { return ar.files[name] }

func (ar *archive) set(name string, data []byte) { ar.files[name] = data }

func (ar *archive) format() []byte {
	var b bytes.Buffer
	b.Write(ar.comment)
	for _, n := range ar.names {
		b.WriteString("-- " + n + " --\n")
		d := ar.files[n]
		b.Write(d)
		if len(d) > 0 && d[len(d)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func TestTxtarRoundTrip(t *testing.T) {
	in := "comment line\n-- a.json --\n{}\n-- b --\nx\ny\n"
	ar := parseTxtar([]byte(in))
	if diff := cmp.Diff(in, string(ar.format())); diff != "" {
		t.Errorf("format(parse(x)) (-want +got):\n%s", diff)
	}
	if string(ar.file("b")) != "x\ny\n" {
		t.Errorf("file b = %q", ar.file("b"))
	}
}
