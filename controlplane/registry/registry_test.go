package registry_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/atrax-mcp/atrax/controlplane/registry"
	"github.com/atrax-mcp/atrax/controlplane/store"
	"github.com/atrax-mcp/atrax/controlplane/store/boltstore"
	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
	"github.com/atrax-mcp/atrax/internal/config"
	"github.com/atrax-mcp/atrax/internal/fakeclock"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// env is a store and a clock that registries can be opened on, again and
// again, as successive starts of the control plane.
type env struct {
	t     *testing.T
	store store.Store
	clock *fakeclock.Clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "atrax.db"), boltstore.Options{})
	if err != nil {
		t.Fatalf("boltstore.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return &env{t: t, store: st, clock: fakeclock.New(t0)}
}

// open opens a registry on the env's store with the config servers cfg.
func (e *env) open(cfg ...config.Server) *registry.Registry {
	e.t.Helper()
	return e.openWith(registry.Options{Config: cfg})
}

func (e *env) openWith(opts registry.Options) *registry.Registry {
	e.t.Helper()
	opts.Store, opts.Now = e.store, e.clock.Now
	r, err := registry.Open(context.Background(), opts)
	if err != nil {
		e.t.Fatalf("registry.Open: %v", err)
	}
	return r
}

func httpConfig(name string) config.Server {
	return config.Server{Name: name, URL: "https://mcp.example.com/" + name}
}

func stdioConfig(name string) config.Server {
	return config.Server{Name: name, Command: "npx", Args: []string{"-y", "@modelcontextprotocol/server-" + name}}
}

func httpServer(name string) *atraxv1.Server {
	return &atraxv1.Server{Name: name, Url: "https://api.example.com/" + name}
}

var ctx = context.Background()

// ignoreTimes leaves the timestamps out of a comparison.
var ignoreTimes = protocmp.IgnoreFields(&atraxv1.Server{}, "create_time", "update_time", "restart_time")

func names(servers []*atraxv1.Server) []string {
	var out []string
	for _, s := range servers {
		out = append(out, s.GetName())
	}
	return out
}

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

func mustCreate(t *testing.T, r *registry.Registry, s *atraxv1.Server) *atraxv1.Server {
	t.Helper()
	got, err := r.Create(ctx, s)
	if err != nil {
		t.Fatalf("Create(%s): %v", s.GetName(), err)
	}
	return got
}

func mustGet(t *testing.T, r *registry.Registry, name string) *atraxv1.Server {
	t.Helper()
	got, err := r.Get(name)
	if err != nil {
		t.Fatalf("Get(%s): %v", name, err)
	}
	return got
}

func TestOpenAppliesConfig(t *testing.T) {
	e := newEnv(t)
	disabled := stdioConfig("alpha")
	disabled.Disabled = true
	r := e.open(httpConfig("zeta"), disabled)

	list, version := r.List()
	want := []*atraxv1.Server{
		{Name: "zeta", Url: "https://mcp.example.com/zeta", Source: "config", State: "running", CreateTime: ts(t0), UpdateTime: ts(t0)},
		{Name: "alpha", Command: "npx", Args: []string{"-y", "@modelcontextprotocol/server-alpha"}, Disabled: true, Source: "config", State: "stopped", CreateTime: ts(t0), UpdateTime: ts(t0)},
	}
	if diff := cmp.Diff(want, list, protocmp.Transform()); diff != "" {
		t.Errorf("List after Open mismatch (-want +got):\n%s", diff)
	}
	rev, err := e.store.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if version != rev || version == 0 {
		t.Errorf("List version = %d, want the store's revision %d (not 0)", version, rev)
	}
	stored, err := e.store.ListServers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"alpha", "zeta"}, names(stored)); diff != "" {
		t.Errorf("stored servers mismatch (-want +got):\n%s", diff)
	}
}

func TestOpenReplacesAPIServerOfSameName(t *testing.T) {
	e := newEnv(t)
	r := e.open()
	mustCreate(t, r, &atraxv1.Server{Name: "memory", Url: "https://api.example.com/memory", Description: "from the API", Tags: []string{"api"}})
	if _, err := r.SetState(ctx, "memory", false); err != nil {
		t.Fatal(err)
	}

	e.clock.Advance(time.Minute)
	r = e.open(stdioConfig("memory"))
	got := mustGet(t, r, "memory")
	want := &atraxv1.Server{
		Name: "memory", Command: "npx", Args: []string{"-y", "@modelcontextprotocol/server-memory"},
		Source: "config", State: "running",
		CreateTime: ts(t0.Add(time.Minute)), UpdateTime: ts(t0.Add(time.Minute)),
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("server after the file took it over (-want +got):\n%s", diff)
	}
	if _, err := r.Update(ctx, httpServer("memory"), nil); !errors.Is(err, registry.ErrReadOnly) {
		t.Errorf("Update of the taken-over server = %v, want ErrReadOnly", err)
	}
}

func TestOpenDeletesRemovedConfigServers(t *testing.T) {
	e := newEnv(t)
	r := e.open(httpConfig("a"), httpConfig("b"))
	mustCreate(t, r, httpServer("c"))

	r = e.open(httpConfig("a"))
	list, _ := r.List()
	if diff := cmp.Diff([]string{"a", "c"}, names(list)); diff != "" {
		t.Errorf("List after b left the file (-want +got):\n%s", diff)
	}
	if _, err := r.Get("b"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Get(b) = %v, want ErrNotFound", err)
	}
	if _, err := e.store.GetServer(ctx, "b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("store GetServer(b) = %v, want ErrNotFound", err)
	}
	if got := mustGet(t, r, "c"); got.GetSource() != registry.SourceAPI {
		t.Errorf("API server c has source %q after reopen, want api", got.GetSource())
	}

	// With no config at all, every config server goes and API ones stay.
	r = e.open()
	list, _ = r.List()
	if diff := cmp.Diff([]string{"c"}, names(list)); diff != "" {
		t.Errorf("List with an empty file (-want +got):\n%s", diff)
	}
}

func TestOpenKeepsWhatTheAPIDid(t *testing.T) {
	e := newEnv(t)
	r := e.open(httpConfig("a"))
	e.clock.Advance(time.Minute) // t0+1m
	if _, err := r.Restart(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SetState(ctx, "a", false); err != nil {
		t.Fatal(err)
	}

	// Same file: state, restart and update times kept.
	e.clock.Advance(time.Minute) // t0+2m
	r = e.open(httpConfig("a"))
	want := &atraxv1.Server{
		Name: "a", Url: "https://mcp.example.com/a", Source: "config", State: "stopped",
		CreateTime: ts(t0), UpdateTime: ts(t0.Add(time.Minute)), RestartTime: ts(t0.Add(time.Minute)),
	}
	if diff := cmp.Diff(want, mustGet(t, r, "a"), protocmp.Transform()); diff != "" {
		t.Errorf("after a reopen with the same file (-want +got):\n%s", diff)
	}

	// The file changes the definition: state kept, update time moves.
	changed := httpConfig("a")
	changed.Description = "now described"
	r = e.open(changed)
	want.Description, want.UpdateTime = "now described", ts(t0.Add(2*time.Minute))
	if diff := cmp.Diff(want, mustGet(t, r, "a"), protocmp.Transform()); diff != "" {
		t.Errorf("after the file changed the definition (-want +got):\n%s", diff)
	}

	// The file disables, then enables it: the state follows the file.
	e.clock.Advance(time.Minute) // t0+3m
	changed.Disabled = true
	r = e.open(changed)
	if got := mustGet(t, r, "a"); got.GetState() != registry.StateStopped || !got.GetDisabled() {
		t.Errorf("after the file disabled it: state %q disabled %v, want stopped true", got.GetState(), got.GetDisabled())
	}
	changed.Disabled = false
	r = e.open(changed)
	got := mustGet(t, r, "a")
	if got.GetState() != registry.StateRunning {
		t.Errorf("after the file enabled it again: state %q, want running", got.GetState())
	}
	if !proto.Equal(got.GetCreateTime(), ts(t0)) || !proto.Equal(got.GetUpdateTime(), ts(t0.Add(3*time.Minute))) {
		t.Errorf("times after the file enabled it: create %v update %v, want %v and %v",
			got.GetCreateTime().AsTime(), got.GetUpdateTime().AsTime(), t0, t0.Add(3*time.Minute))
	}
}

func TestOpenBumpsVersion(t *testing.T) {
	// Every start writes, so edges take the new snapshot even when nothing
	// changed.
	e := newEnv(t)
	_, v1 := e.open(httpConfig("a")).List()
	_, v2 := e.open(httpConfig("a")).List()
	if v2 <= v1 {
		t.Errorf("version after a second Open = %d, want more than %d", v2, v1)
	}
}

func TestListOrder(t *testing.T) {
	// Config servers in file order, then API servers by name, however the
	// API servers were created; conflict strategies such as first-wins
	// follow this order, so it must not depend on creation order or on
	// whether the control plane restarted since.
	e := newEnv(t)
	r := e.open(httpConfig("zz-config"), httpConfig("aa-config"))
	for _, n := range []string{"mike", "bravo", "zulu", "alpha"} {
		mustCreate(t, r, httpServer(n))
	}
	want := []string{"zz-config", "aa-config", "alpha", "bravo", "mike", "zulu"}
	list, _ := r.List()
	if diff := cmp.Diff(want, names(list)); diff != "" {
		t.Errorf("List order (-want +got):\n%s", diff)
	}
	_, _, _, _, stop := r.Watch()
	stop()
	servers, _, _, _, stop := r.Watch()
	stop()
	if diff := cmp.Diff(want, names(servers)); diff != "" {
		t.Errorf("Watch order (-want +got):\n%s", diff)
	}

	if err := r.Delete(ctx, "bravo"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, r, httpServer("charlie"))
	mustCreate(t, r, httpServer("bravo"))
	want = []string{"zz-config", "aa-config", "alpha", "bravo", "charlie", "mike", "zulu"}
	list, _ = r.List()
	if diff := cmp.Diff(want, names(list)); diff != "" {
		t.Errorf("List order after delete and create (-want +got):\n%s", diff)
	}

	// The same order after a restart.
	list, _ = e.open(httpConfig("zz-config"), httpConfig("aa-config")).List()
	if diff := cmp.Diff(want, names(list)); diff != "" {
		t.Errorf("List order after reopen (-want +got):\n%s", diff)
	}
}

func TestListReturnsCopies(t *testing.T) {
	e := newEnv(t)
	r := e.open(httpConfig("a"))
	list, _ := r.List()
	list[0].Url = "https://evil.example.com"
	got := mustGet(t, r, "a")
	got.Description = "changed"
	if got := mustGet(t, r, "a"); got.GetUrl() != "https://mcp.example.com/a" || got.GetDescription() != "" {
		t.Errorf("changing List and Get results changed the registry: %v", got)
	}
}

func TestCreate(t *testing.T) {
	e := newEnv(t)
	r := e.open(httpConfig("config-server"))
	_, before := r.List()

	in := &atraxv1.Server{
		Name: "memory", Url: "https://api.example.com/mcp", Headers: map[string]string{"Authorization": "Bearer ${TOKEN}"},
		Tools: &atraxv1.ToolFilter{Allow: []string{"read_*"}},
		// Read-only fields are ignored.
		Source: "config", State: "stopped", CreateTime: ts(t0.Add(-time.Hour)), RestartTime: ts(t0.Add(-time.Hour)),
	}
	e.clock.Advance(time.Minute)
	got := mustCreate(t, r, in)
	want := &atraxv1.Server{
		Name: "memory", Url: "https://api.example.com/mcp", Headers: map[string]string{"Authorization": "Bearer ${TOKEN}"},
		Tools:  &atraxv1.ToolFilter{Allow: []string{"read_*"}},
		Source: "api", State: "running", CreateTime: ts(t0.Add(time.Minute)), UpdateTime: ts(t0.Add(time.Minute)),
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("Create result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, mustGet(t, r, "memory"), protocmp.Transform()); diff != "" {
		t.Errorf("Get after Create (-want +got):\n%s", diff)
	}
	stored, err := e.store.GetServer(ctx, "memory")
	if err != nil {
		t.Fatalf("store GetServer after Create: %v", err)
	}
	if diff := cmp.Diff(want, stored, protocmp.Transform()); diff != "" {
		t.Errorf("stored server (-want +got):\n%s", diff)
	}
	if _, after := r.List(); after <= before {
		t.Errorf("version after Create = %d, want more than %d", after, before)
	}

	// The registry keeps its own copy of the request.
	in.Tools.Allow[0] = "*"
	in.Url = "https://evil.example.com"
	if diff := cmp.Diff(want, mustGet(t, r, "memory"), protocmp.Transform()); diff != "" {
		t.Errorf("Get after the caller changed its request (-want +got):\n%s", diff)
	}

	// A disabled server starts stopped.
	d := httpServer("off")
	d.Disabled = true
	if got := mustCreate(t, r, d); got.GetState() != registry.StateStopped {
		t.Errorf("Create(disabled) state = %q, want stopped", got.GetState())
	}

	for _, name := range []string{"memory", "config-server"} {
		_, before := r.List()
		if _, err := r.Create(ctx, httpServer(name)); !errors.Is(err, registry.ErrExists) {
			t.Errorf("Create(%s) again = %v, want ErrExists", name, err)
		}
		if _, after := r.List(); after != before {
			t.Errorf("a refused Create changed the version from %d to %d", before, after)
		}
	}
}

func TestCreateInvalid(t *testing.T) {
	tests := []struct {
		name   string
		server *atraxv1.Server
		paths  []string
	}{
		{"no name", &atraxv1.Server{Url: "https://x.example.com"}, []string{"name"}},
		{"bad name", &atraxv1.Server{Name: "-dash", Url: "https://x.example.com"}, []string{"name"}},
		{"name with a slash", &atraxv1.Server{Name: "a/b", Url: "https://x.example.com"}, []string{"name"}},
		{"long name", &atraxv1.Server{Name: strings.Repeat("a", 49), Url: "https://x.example.com"}, []string{"name"}},
		{"neither command nor url", &atraxv1.Server{Name: "s"}, []string{""}},
		{"ftp url", &atraxv1.Server{Name: "s", Url: "ftp://x.example.com"}, []string{"url"}},
		{"unknown transport", &atraxv1.Server{Name: "s", TransportType: "grpc", Url: "https://x.example.com"}, []string{"transportType"}},
		{"command on http", &atraxv1.Server{Name: "s", TransportType: "http", Url: "https://x.example.com", Command: "npx"}, []string{"command"}},
		{"bad header", &atraxv1.Server{Name: "s", Url: "https://x.example.com", Headers: map[string]string{"Bad Header": "v"}}, []string{"headers[\"Bad Header\"]"}},
		{"empty allow pattern", &atraxv1.Server{Name: "s", Url: "https://x.example.com", Tools: &atraxv1.ToolFilter{Allow: []string{"ok", ""}}}, []string{"tools.allow[1]"}},
		{"several problems", &atraxv1.Server{Name: "s", Url: "https://x.example.com", Isolation: "never", Timeout: "soon", Prefix: "-p"}, []string{"isolation", "prefix", "timeout"}},
		{"malformed variable", &atraxv1.Server{Name: "s", Url: "https://x.example.com/${"}, []string{"url"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.openWith(registry.Options{AllowCommands: config.AllowCommands{All: true}})
			_, before := r.List()
			_, err := r.Create(ctx, tt.server)
			if !errors.Is(err, registry.ErrInvalid) {
				t.Fatalf("Create = %v, want ErrInvalid", err)
			}
			var paths []string
			for _, fe := range registry.FieldErrors(err) {
				paths = append(paths, fe.Path)
				if fe.Msg == "" {
					t.Errorf("field error at %q has no message", fe.Path)
				}
			}
			if diff := cmp.Diff(tt.paths, paths); diff != "" {
				t.Errorf("field error paths (-want +got):\n%s\nerror: %v", diff, err)
			}
			if list, after := r.List(); len(list) != 0 || after != before {
				t.Errorf("a refused Create left %d servers and version %d (was %d)", len(list), after, before)
			}
		})
	}
}

func TestCommandPolicy(t *testing.T) {
	npx := &atraxv1.Server{Name: "memory", Command: "npx", Args: []string{"-y", "@modelcontextprotocol/server-memory"}}
	tests := []struct {
		name  string
		allow config.AllowCommands
		ok    bool
	}{
		{"none", config.AllowCommands{}, false},
		{"all", config.AllowCommands{All: true}, true},
		{"listed", config.AllowCommands{Commands: []string{"uvx", "npx"}}, true},
		{"not listed", config.AllowCommands{Commands: []string{"uvx"}}, false},
		{"listed by another path", config.AllowCommands{Commands: []string{"/usr/bin/npx"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			// A stdio server in the file is fine whatever the policy.
			r := e.openWith(registry.Options{Config: []config.Server{stdioConfig("filed")}, AllowCommands: tt.allow})
			_, err := r.Create(ctx, npx)
			if tt.ok {
				if err != nil {
					t.Fatalf("Create: %v", err)
				}
			} else {
				if !errors.Is(err, registry.ErrCommandNotAllowed) || errors.Is(err, registry.ErrInvalid) {
					t.Fatalf("Create = %v, want ErrCommandNotAllowed alone", err)
				}
				if !strings.Contains(err.Error(), "allowCommands") {
					t.Errorf("error %q does not say which setting to change", err)
				}
			}

			// Turning an HTTP server into a stdio one meets the same rule.
			mustCreate(t, r, httpServer("web"))
			_, err = r.Update(ctx, &atraxv1.Server{Name: "web", Command: "npx"}, nil)
			if tt.ok != (err == nil) || !tt.ok && !errors.Is(err, registry.ErrCommandNotAllowed) {
				t.Errorf("Update to stdio = %v, want allowed %v", err, tt.ok)
			}
		})
	}
}

func TestUpdateReplace(t *testing.T) {
	e := newEnv(t)
	r := e.open(httpConfig("filed"))
	mustCreate(t, r, &atraxv1.Server{Name: "s", Url: "https://a.example.com", Description: "d", Tags: []string{"t"}, Tools: &atraxv1.ToolFilter{Deny: []string{"rm"}}})
	e.clock.Advance(time.Minute)
	if _, err := r.Restart(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SetState(ctx, "s", false); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)

	// An empty mask replaces the definition: what the body leaves out goes.
	got, err := r.Update(ctx, &atraxv1.Server{Name: "s", Url: "https://b.example.com", State: "running", Source: "config"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &atraxv1.Server{
		Name: "s", Url: "https://b.example.com", Source: "api", State: "stopped",
		CreateTime: ts(t0), RestartTime: ts(t0.Add(time.Minute)), UpdateTime: ts(t0.Add(2 * time.Minute)),
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("Update result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, mustGet(t, r, "s"), protocmp.Transform()); diff != "" {
		t.Errorf("Get after Update (-want +got):\n%s", diff)
	}

	// Changing disabled sets the state to match.
	got, err = r.Update(ctx, &atraxv1.Server{Name: "s", Url: "https://b.example.com", Disabled: true}, nil)
	if err != nil || got.GetState() != registry.StateStopped {
		t.Fatalf("Update(disabled) = %v, %v; want state stopped", got.GetState(), err)
	}
	got, err = r.Update(ctx, &atraxv1.Server{Name: "s", Url: "https://b.example.com"}, nil)
	if err != nil || got.GetState() != registry.StateRunning {
		t.Fatalf("Update(enabled) = %v, %v; want state running", got.GetState(), err)
	}

	for _, tt := range []struct {
		name string
		want error
	}{{"filed", registry.ErrReadOnly}, {"missing", registry.ErrNotFound}} {
		_, before := r.List()
		_, err := r.Update(ctx, httpServer(tt.name), nil)
		if !errors.Is(err, tt.want) {
			t.Errorf("Update(%s) = %v, want %v", tt.name, err, tt.want)
		}
		_, err = r.Update(ctx, httpServer(tt.name), []string{"description"})
		if !errors.Is(err, tt.want) {
			t.Errorf("Update(%s, mask) = %v, want %v", tt.name, err, tt.want)
		}
		if _, after := r.List(); after != before {
			t.Errorf("a refused Update changed the version from %d to %d", before, after)
		}
	}

	// An invalid replacement leaves the server as it was.
	before := mustGet(t, r, "s")
	if _, err := r.Update(ctx, &atraxv1.Server{Name: "s"}, nil); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("Update without url or command = %v, want ErrInvalid", err)
	}
	if diff := cmp.Diff(before, mustGet(t, r, "s"), protocmp.Transform()); diff != "" {
		t.Errorf("a refused Update changed the server (-before +after):\n%s", diff)
	}
}

func TestUpdateMask(t *testing.T) {
	base := func() *atraxv1.Server {
		return &atraxv1.Server{
			Name: "s", Command: "npx", Args: []string{"a"}, Env: map[string]string{"A": "1", "B": "2"},
			Description: "d", Tags: []string{"t1"},
			Tools: &atraxv1.ToolFilter{Allow: []string{"x*"}, Deny: []string{"y"}},
		}
	}
	tests := []struct {
		name  string
		mask  []string
		body  *atraxv1.Server
		want  func(s *atraxv1.Server) // changes base into the expected result
		paths []string                // field errors expected instead
	}{{
		name: "one field, the rest of the body ignored",
		mask: []string{"description"},
		body: &atraxv1.Server{Description: "new", Command: "ignored", Tags: []string{"ignored"}},
		want: func(s *atraxv1.Server) { s.Description = "new" },
	}, {
		name: "a field cleared",
		mask: []string{"description"},
		body: &atraxv1.Server{},
		want: func(s *atraxv1.Server) { s.Description = "" },
	}, {
		name: "several fields",
		mask: []string{"description", "tags", "pin_tools"},
		body: &atraxv1.Server{Description: "new", Tags: []string{"t2", "t3"}, PinTools: true},
		want: func(s *atraxv1.Server) { s.Description, s.Tags, s.PinTools = "new", []string{"t2", "t3"}, true },
	}, {
		name: "nested field",
		mask: []string{"tools.allow"},
		body: &atraxv1.Server{Tools: &atraxv1.ToolFilter{Allow: []string{"z*"}, Deny: []string{"ignored"}}},
		want: func(s *atraxv1.Server) { s.Tools.Allow = []string{"z*"} },
	}, {
		name: "nested field cleared by an absent message",
		mask: []string{"tools.deny"},
		body: &atraxv1.Server{},
		want: func(s *atraxv1.Server) { s.Tools.Deny = nil },
	}, {
		name: "whole message",
		mask: []string{"tools"},
		body: &atraxv1.Server{Tools: &atraxv1.ToolFilter{Deny: []string{"z"}}},
		want: func(s *atraxv1.Server) { s.Tools = &atraxv1.ToolFilter{Deny: []string{"z"}} },
	}, {
		name: "whole message cleared",
		mask: []string{"tools"},
		body: &atraxv1.Server{},
		want: func(s *atraxv1.Server) { s.Tools = nil },
	}, {
		name: "map replaced whole",
		mask: []string{"env"},
		body: &atraxv1.Server{Env: map[string]string{"C": "3"}},
		want: func(s *atraxv1.Server) { s.Env = map[string]string{"C": "3"} },
	}, {
		name: "path into a map replaces the map",
		mask: []string{"env.A"},
		body: &atraxv1.Server{Env: map[string]string{"A": "9"}},
		want: func(s *atraxv1.Server) { s.Env = map[string]string{"A": "9"} },
	}, {
		name: "list replaced whole",
		mask: []string{"args"},
		body: &atraxv1.Server{Args: []string{"b", "c"}},
		want: func(s *atraxv1.Server) { s.Args = []string{"b", "c"} },
	}, {
		name: "name in the mask changes nothing",
		mask: []string{"name", "description"},
		body: &atraxv1.Server{Description: "new"},
		want: func(s *atraxv1.Server) { s.Description = "new" },
	}, {
		name:  "read-only field",
		mask:  []string{"state"},
		body:  &atraxv1.Server{State: "stopped"},
		paths: []string{"update_mask"},
	}, {
		name:  "read-only time",
		mask:  []string{"description", "create_time"},
		body:  &atraxv1.Server{Description: "new", CreateTime: ts(t0)},
		paths: []string{"update_mask"},
	}, {
		name:  "unknown field",
		mask:  []string{"nope"},
		body:  &atraxv1.Server{},
		paths: []string{"update_mask"},
	}, {
		name:  "unknown nested field",
		mask:  []string{"tools.nope"},
		body:  &atraxv1.Server{},
		paths: []string{"update_mask"},
	}, {
		name:  "json name instead of the proto name",
		mask:  []string{"pinTools"},
		body:  &atraxv1.Server{PinTools: true},
		paths: []string{"update_mask"},
	}, {
		name:  "every bad path reported",
		mask:  []string{"state", "nope"},
		body:  &atraxv1.Server{},
		paths: []string{"update_mask", "update_mask"},
	}, {
		name:  "merged result validated",
		mask:  []string{"url"},
		body:  &atraxv1.Server{Url: "https://x.example.com"},
		paths: []string{""},
	}, {
		name:  "bad value",
		mask:  []string{"tools.allow"},
		body:  &atraxv1.Server{Tools: &atraxv1.ToolFilter{Allow: []string{""}}},
		paths: []string{"tools.allow[0]"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.openWith(registry.Options{AllowCommands: config.AllowCommands{All: true}})
			mustCreate(t, r, base())
			before := mustGet(t, r, "s")
			e.clock.Advance(time.Minute)

			body := proto.Clone(tt.body).(*atraxv1.Server)
			body.Name = "s"
			got, err := r.Update(ctx, body, tt.mask)
			if tt.paths != nil {
				if !errors.Is(err, registry.ErrInvalid) {
					t.Fatalf("Update = %v, want ErrInvalid", err)
				}
				var paths []string
				for _, fe := range registry.FieldErrors(err) {
					paths = append(paths, fe.Path)
				}
				if diff := cmp.Diff(tt.paths, paths); diff != "" {
					t.Errorf("field error paths (-want +got):\n%s\nerror: %v", diff, err)
				}
				if diff := cmp.Diff(before, mustGet(t, r, "s"), protocmp.Transform()); diff != "" {
					t.Errorf("a refused Update changed the server (-before +after):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			want := base()
			tt.want(want)
			want.Source, want.State = registry.SourceAPI, registry.StateRunning
			want.CreateTime, want.UpdateTime = ts(t0), ts(t0.Add(time.Minute))
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("Update result (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, mustGet(t, r, "s"), protocmp.Transform()); diff != "" {
				t.Errorf("Get after Update (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUpdateCannotRename(t *testing.T) {
	// The name in the body is the server updated: there is no other name
	// to rename it to, so a body naming another server updates that one or
	// fails, and never moves s.
	e := newEnv(t)
	r := e.open()
	mustCreate(t, r, httpServer("s"))
	if _, err := r.Update(ctx, httpServer("t"), nil); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Update naming a server that does not exist = %v, want ErrNotFound", err)
	}
	if _, err := r.Update(ctx, httpServer("t"), []string{"name"}); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Update(mask name) naming a server that does not exist = %v, want ErrNotFound", err)
	}
	list, _ := r.List()
	if diff := cmp.Diff([]string{"s"}, names(list)); diff != "" {
		t.Errorf("servers after rename attempts (-want +got):\n%s", diff)
	}
}

func TestDelete(t *testing.T) {
	e := newEnv(t)
	r := e.open(httpConfig("filed"))
	mustCreate(t, r, httpServer("s"))
	_, before := r.List()
	if err := r.Delete(ctx, "s"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	list, after := r.List()
	if diff := cmp.Diff([]string{"filed"}, names(list)); diff != "" {
		t.Errorf("List after Delete (-want +got):\n%s", diff)
	}
	if after <= before {
		t.Errorf("version after Delete = %d, want more than %d", after, before)
	}
	if _, err := e.store.GetServer(ctx, "s"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("store GetServer after Delete = %v, want ErrNotFound", err)
	}
	if err := r.Delete(ctx, "s"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	if err := r.Delete(ctx, "filed"); !errors.Is(err, registry.ErrReadOnly) {
		t.Errorf("Delete of a config server = %v, want ErrReadOnly", err)
	}
	if _, err := r.Get("filed"); err != nil {
		t.Errorf("Get of the config server after a refused Delete: %v", err)
	}
	// The name is free again.
	mustCreate(t, r, httpServer("s"))
}

func TestSetState(t *testing.T) {
	e := newEnv(t)
	r := e.open(httpConfig("filed"))
	for _, name := range []string{"filed", "api"} {
		if name == "api" {
			mustCreate(t, r, httpServer("api"))
		}
		e.clock.Advance(time.Minute)
		_, before := r.List()
		got, err := r.SetState(ctx, name, false)
		if err != nil {
			t.Fatalf("SetState(%s, false): %v", name, err)
		}
		if got.GetState() != registry.StateStopped || !proto.Equal(got.GetUpdateTime(), ts(e.clock.Now())) {
			t.Errorf("SetState(%s, false) = state %q updated %v; want stopped at %v", name, got.GetState(), got.GetUpdateTime().AsTime(), e.clock.Now())
		}
		_, after := r.List()
		if after <= before {
			t.Errorf("SetState(%s, false) left the version at %d", name, after)
		}

		// The state it already has: nothing changes, not even the version.
		e.clock.Advance(time.Minute)
		again, err := r.SetState(ctx, name, false)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(got, again, protocmp.Transform()); diff != "" {
			t.Errorf("SetState(%s, false) twice changed the server (-first +second):\n%s", name, diff)
		}
		if _, v := r.List(); v != after {
			t.Errorf("SetState(%s) to the current state moved the version from %d to %d", name, after, v)
		}

		got, err = r.SetState(ctx, name, true)
		if err != nil || got.GetState() != registry.StateRunning {
			t.Errorf("SetState(%s, true) = %q, %v; want running", name, got.GetState(), err)
		}
	}
	if _, err := r.SetState(ctx, "missing", true); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("SetState(missing) = %v, want ErrNotFound", err)
	}
}

func TestRestart(t *testing.T) {
	e := newEnv(t)
	r := e.open(httpConfig("filed"))
	if _, err := r.SetState(ctx, "filed", false); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		e.clock.Advance(time.Minute)
		_, before := r.List()
		got, err := r.Restart(ctx, "filed")
		if err != nil {
			t.Fatalf("Restart %d: %v", i, err)
		}
		now := ts(e.clock.Now())
		// A stopped server starts; a running one restarts, which is still a
		// change edges must see.
		if got.GetState() != registry.StateRunning || !proto.Equal(got.GetRestartTime(), now) || !proto.Equal(got.GetUpdateTime(), now) {
			t.Errorf("Restart %d = state %q restart %v update %v; want running at %v", i, got.GetState(), got.GetRestartTime().AsTime(), got.GetUpdateTime().AsTime(), now.AsTime())
		}
		if _, after := r.List(); after <= before {
			t.Errorf("Restart %d left the version at %d", i, after)
		}
	}
	if _, err := r.Restart(ctx, "missing"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Restart(missing) = %v, want ErrNotFound", err)
	}
}

// recv returns the next change, failing the test if none comes soon.
func recv(t *testing.T, ch <-chan registry.Change) registry.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed, want a change")
		}
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no change within 5s")
	}
	panic("unreachable")
}

func noChange(t *testing.T, ch <-chan registry.Change) {
	t.Helper()
	select {
	case c, ok := <-ch:
		t.Fatalf("unexpected change %+v (open %v)", c, ok)
	default:
	}
}

func TestWatch(t *testing.T) {
	e := newEnv(t)
	r := e.open(httpConfig("filed"))
	servers, version, changes, lagged, stop := r.Watch()
	defer stop()
	list, listVersion := r.List()
	if diff := cmp.Diff(list, servers, protocmp.Transform()); diff != "" {
		t.Errorf("Watch snapshot (-List +Watch):\n%s", diff)
	}
	if version != listVersion {
		t.Errorf("Watch version = %d, want %d", version, listVersion)
	}
	noChange(t, changes)

	mustCreate(t, r, httpServer("s"))
	if _, err := r.Update(ctx, &atraxv1.Server{Name: "s", Description: "d"}, []string{"description"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SetState(ctx, "s", false); err != nil {
		t.Fatal(err)
	}
	// Changes that fail or change nothing are not sent.
	if _, err := r.SetState(ctx, "s", false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create(ctx, httpServer("s")); err == nil {
		t.Fatal("Create of an existing server succeeded")
	}
	if err := r.Delete(ctx, "filed"); err == nil {
		t.Fatal("Delete of a config server succeeded")
	}
	if _, err := r.Restart(ctx, "filed"); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, "s"); err != nil {
		t.Fatal(err)
	}

	type event struct {
		Event, Server, State, Description string
	}
	want := []event{
		{"created", "s", "running", ""},
		{"updated", "s", "running", "d"},
		{"updated", "s", "stopped", "d"},
		{"updated", "filed", "running", ""},
		{"deleted", "s", "stopped", "d"},
	}
	var got []event
	last := version
	for range want {
		c := recv(t, changes)
		got = append(got, event{c.Event, c.Server.GetName(), c.Server.GetState(), c.Server.GetDescription()})
		if c.Version <= last {
			t.Errorf("change %s %s has version %d, not above %d", c.Event, c.Server.GetName(), c.Version, last)
		}
		last = c.Version
		// A change is the watcher's to keep.
		c.Server.Description = "changed by the watcher"
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	noChange(t, changes)
	if _, v := r.List(); v != last {
		t.Errorf("List version = %d, want the last change's %d", v, last)
	}
	if got := mustGet(t, r, "filed"); got.GetDescription() != "" {
		t.Errorf("a watcher changing its copy changed the registry: %q", got.GetDescription())
	}
	if lagged() {
		t.Error("lagged() = true for a watcher that kept up")
	}

	stop()
	if c, ok := <-changes; ok {
		t.Errorf("after stop, got change %+v, want a closed channel", c)
	}
	stop() // twice is fine
	if lagged() {
		t.Error("lagged() = true after stop")
	}
	// The registry goes on without the watcher.
	mustCreate(t, r, httpServer("after"))
}

func TestWatchLagged(t *testing.T) {
	e := newEnv(t)
	r := e.open(httpConfig("filed"))
	_, _, slow, slowLagged, stopSlow := r.Watch()
	defer stopSlow()
	_, _, fast, fastLagged, stopFast := r.Watch()
	defer stopFast()

	// The buffer holds 256 changes; the 257th cuts the slow watcher off.
	// The fast one reads each change as it comes and misses none.
	const n = 257
	for i := range n {
		if _, err := r.Restart(ctx, "filed"); err != nil {
			t.Fatal(err)
		}
		recv(t, fast)
		if i < n-1 && slowLagged() {
			t.Fatalf("slow watcher cut off after %d changes, want %d", i+1, n)
		}
	}
	if !slowLagged() {
		t.Fatal("slow watcher not cut off")
	}
	got := 0
	for range slow {
		got++
	}
	if got != n-1 {
		t.Errorf("slow watcher got %d changes before its channel closed, want %d", got, n-1)
	}
	stopSlow() // after the registry closed the channel: no double close

	if fastLagged() {
		t.Error("fast watcher reported lagged")
	}
	if _, err := r.Restart(ctx, "filed"); err != nil {
		t.Fatal(err)
	}
	if c := recv(t, fast); c.Server.GetName() != "filed" {
		t.Errorf("fast watcher got %+v after the slow one was cut off", c)
	}
}

func TestOnChange(t *testing.T) {
	// OnChange runs after each stored change and without the registry's
	// lock: the snapshot builder it stands for reads the registry. Calling
	// List from it deadlocked once; every mutation is checked here.
	e := newEnv(t)
	var (
		r     *registry.Registry
		mu    sync.Mutex
		calls int
		seen  [][]string
	)
	r = e.openWith(registry.Options{
		Config:        []config.Server{httpConfig("filed")},
		AllowCommands: config.AllowCommands{All: true},
		OnChange: func() {
			list, _ := r.List()
			if _, err := r.Get("filed"); err != nil {
				t.Errorf("Get from OnChange: %v", err)
			}
			_, _, _, _, stop := r.Watch()
			stop()
			mu.Lock()
			defer mu.Unlock()
			calls++
			seen = append(seen, names(list))
		},
	})

	steps := []struct {
		name    string
		do      func() error
		changed bool
	}{
		{"create", func() error { _, err := r.Create(ctx, httpServer("s")); return err }, true},
		{"update", func() error { _, err := r.Update(ctx, httpServer("s"), nil); return err }, true},
		{"update with mask", func() error {
			_, err := r.Update(ctx, &atraxv1.Server{Name: "s", Description: "x"}, []string{"description"})
			return err
		}, true},
		{"stop", func() error { _, err := r.SetState(ctx, "s", false); return err }, true},
		{"stop again", func() error { _, err := r.SetState(ctx, "s", false); return err }, false},
		{"restart", func() error { _, err := r.Restart(ctx, "filed"); return err }, true},
		{"delete", func() error { return r.Delete(ctx, "s") }, true},
		{"create existing", func() error { _, err := r.Create(ctx, httpServer("filed")); return err }, false},
		{"create invalid", func() error { _, err := r.Create(ctx, &atraxv1.Server{Name: "bad"}); return err }, false},
		{"update config server", func() error { _, err := r.Update(ctx, httpServer("filed"), nil); return err }, false},
		{"update missing", func() error { _, err := r.Update(ctx, httpServer("s"), nil); return err }, false},
		{"delete missing", func() error { return r.Delete(ctx, "s") }, false},
		{"restart missing", func() error { _, err := r.Restart(ctx, "s"); return err }, false},
	}
	for _, step := range steps {
		mu.Lock()
		before := calls
		mu.Unlock()
		done := make(chan error, 1)
		go func() { done <- step.do() }()
		select {
		case err := <-done:
			if step.changed && err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not return within 5s: OnChange blocked on the registry", step.name)
		}
		mu.Lock()
		after := calls
		mu.Unlock()
		want := before
		if step.changed {
			want++
		}
		if after != want {
			t.Errorf("%s: OnChange called %d times, want %d", step.name, after-before, want-before)
		}
	}

	// Each call saw the change it was called for.
	want := [][]string{{"filed", "s"}, {"filed", "s"}, {"filed", "s"}, {"filed", "s"}, {"filed", "s"}, {"filed"}}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("servers OnChange saw (-want +got):\n%s", diff)
	}
}

func TestConcurrentUse(t *testing.T) {
	// For the race detector: changes, reads and watchers at once.
	e := newEnv(t)
	r := e.open(httpConfig("filed"))
	_, _, changes, _, stop := r.Watch()
	defer stop()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			name := "s" + string(rune('a'+i))
			mustCreate(t, r, httpServer(name))
			for range 5 {
				r.Restart(ctx, name)
				r.List()
			}
		})
	}
	wg.Wait()
	var versions []int64
	for len(changes) > 0 {
		versions = append(versions, (<-changes).Version)
	}
	if len(versions) != 24 || !slices.IsSorted(versions) {
		t.Errorf("watcher got %d changes with versions %v, want 24 in increasing order", len(versions), versions)
	}
}

func TestFieldError(t *testing.T) {
	fe := &registry.FieldError{Path: "url", Msg: "must be an absolute http or https URL"}
	if got, want := fe.Error(), "url: must be an absolute http or https URL"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := (&registry.FieldError{Msg: "needs a command"}).Error(); got != "needs a command" {
		t.Errorf("Error() without a path = %q", got)
	}
	if !errors.Is(fe, registry.ErrInvalid) {
		t.Error("a FieldError is not ErrInvalid")
	}
	if got := registry.FieldErrors(registry.ErrNotFound); got != nil {
		t.Errorf("FieldErrors(ErrNotFound) = %v, want nil", got)
	}
	joined := errors.Join(fe, &registry.FieldError{Path: "name", Msg: "required"})
	if got := len(registry.FieldErrors(joined)); got != 2 {
		t.Errorf("FieldErrors of two joined = %d errors, want 2", got)
	}
}

func TestTransportType(t *testing.T) {
	// "type" is the VS Code spelling of transportType; aliases are stored
	// in their canonical form, as the config file stores them.
	url := "https://x.example.com/mcp"
	tests := []struct {
		name      string
		server    *atraxv1.Server
		transport string   // stored transport_type
		paths     []string // field errors instead
	}{
		{"type", &atraxv1.Server{Name: "s", Type: "http", Url: url}, "http", nil},
		{"type alias", &atraxv1.Server{Name: "s", Type: "streamable-http", Url: url}, "http", nil},
		{"transportType alias", &atraxv1.Server{Name: "s", TransportType: "streamableHttp", Url: url}, "http", nil},
		{"both agreeing", &atraxv1.Server{Name: "s", Type: "http", TransportType: "streamable-http", Url: url}, "http", nil},
		{"sse", &atraxv1.Server{Name: "s", Type: "sse", Url: url}, "sse", nil},
		{"neither", &atraxv1.Server{Name: "s", Url: url}, "", nil},
		{"unknown type", &atraxv1.Server{Name: "s", Type: "grpc", Url: url}, "", []string{"type"}},
		{"conflict", &atraxv1.Server{Name: "s", Type: "sse", TransportType: "http", Url: url}, "", []string{"type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.open()
			got, err := r.Create(ctx, tt.server)
			if tt.paths != nil {
				var paths []string
				for _, fe := range registry.FieldErrors(err) {
					paths = append(paths, fe.Path)
				}
				if !errors.Is(err, registry.ErrInvalid) || !cmp.Equal(paths, tt.paths) {
					t.Fatalf("Create = %v (paths %q), want ErrInvalid at %q", err, paths, tt.paths)
				}
				return
			}
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			for _, s := range []*atraxv1.Server{got, mustGet(t, r, "s")} {
				if s.GetTransportType() != tt.transport || s.GetType() != "" {
					t.Errorf("stored transport_type %q, type %q; want %q and none", s.GetTransportType(), s.GetType(), tt.transport)
				}
			}
			// The same folding on update.
			body := proto.Clone(tt.server).(*atraxv1.Server)
			got, err = r.Update(ctx, body, nil)
			if err != nil || got.GetTransportType() != tt.transport || got.GetType() != "" {
				t.Errorf("Update = transport_type %q, type %q, %v; want %q", got.GetTransportType(), got.GetType(), err, tt.transport)
			}
		})
	}
}
