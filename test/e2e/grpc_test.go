package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	atraxv1 "github.com/atrax-mcp/atrax/gen/atrax/v1"
)

// TestGRPCurl drives the control plane with grpcurl, as the README tells
// operators to: reflection and health without a token, every unary RPC of
// ServerService, AuthService, StatusService and AuditService with one.
func TestGRPCurl(t *testing.T) {
	t.Parallel()
	p := startAtrax(t, "serve", tokenConfig(`"mcpServers": {"cfg": {"url": "http://127.0.0.1:9/mcp"}},`), adminEnv())
	auth := []string{"-plaintext", "-H", "authorization: Bearer " + adminToken}
	call := func(t *testing.T, method, body string) map[string]any {
		t.Helper()
		return grpcurlJSON(t, append(auth, "-d", body, p.GRPC, method)...)
	}

	t.Run("list without a token", func(t *testing.T) {
		out, errOut, err := grpcurl(t, "-plaintext", p.GRPC, "list")
		if err != nil {
			t.Fatalf("grpcurl list: %v\n%s", err, errOut)
		}
		got := strings.Fields(out)
		for _, want := range []string{
			"atrax.v1.AuditService", "atrax.v1.AuthService", "atrax.v1.EdgeService",
			"atrax.v1.ServerService", "atrax.v1.StatusService",
			"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
		} {
			if !slices.Contains(got, want) {
				t.Errorf("grpcurl list: %q missing from %q", want, got)
			}
		}
	})

	t.Run("describe without a token", func(t *testing.T) {
		out, errOut, err := grpcurl(t, "-plaintext", p.GRPC, "describe", "atrax.v1.ServerService")
		if err != nil {
			t.Fatalf("grpcurl describe: %v\n%s", err, errOut)
		}
		for _, want := range []string{
			"rpc ListServers", "rpc GetServer", "rpc CreateServer", "rpc UpdateServer", "rpc DeleteServer",
			"rpc StartServer", "rpc StopServer", "rpc RestartServer",
			"rpc WatchServers ( .atrax.v1.WatchServersRequest ) returns ( stream .atrax.v1.WatchServersResponse )",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("describe atrax.v1.ServerService lacks %q:\n%s", want, out)
			}
		}
		out, _, err = grpcurl(t, "-plaintext", p.GRPC, "describe", "atrax.v1.Server")
		if err != nil || !strings.Contains(out, "string transport_type = 2;") {
			t.Errorf("describe atrax.v1.Server: %v; want the string field transport_type:\n%s", err, out)
		}
	})

	t.Run("health without a token", func(t *testing.T) {
		got := grpcurlJSON(t, "-plaintext", p.GRPC, "grpc.health.v1.Health/Check")
		if got["status"] != "SERVING" {
			t.Errorf("health Check: got %v, want status SERVING", got)
		}
	})

	t.Run("ListServers needs a token", func(t *testing.T) {
		got := call(t, "atrax.v1.ServerService/ListServers", `{}`)
		if diff := cmp.Diff([]string{"cfg"}, serverNames(t, got)); diff != "" {
			t.Errorf("ListServers with a token (-want +got):\n%s", diff)
		}
		out, errOut, err := grpcurl(t, "-plaintext", "-d", "{}", p.GRPC, "atrax.v1.ServerService/ListServers")
		if err == nil || !strings.Contains(errOut, "Code: Unauthenticated") {
			t.Errorf("ListServers without a token: err %v, stderr %q, stdout %q; want it to fail with Unauthenticated", err, errOut, out)
		}
	})

	t.Run("every protected RPC refuses no token", func(t *testing.T) {
		for _, m := range []string{
			"atrax.v1.ServerService/ListServers", "atrax.v1.ServerService/GetServer",
			"atrax.v1.ServerService/CreateServer", "atrax.v1.ServerService/UpdateServer",
			"atrax.v1.ServerService/DeleteServer", "atrax.v1.ServerService/StartServer",
			"atrax.v1.ServerService/StopServer", "atrax.v1.ServerService/RestartServer",
			"atrax.v1.ServerService/WatchServers",
			"atrax.v1.AuthService/RevokeToken", "atrax.v1.AuthService/RotateSigningKey",
			"atrax.v1.AuditService/ListAuditEvents",
		} {
			_, errOut, err := grpcurl(t, "-plaintext", "-d", `{}`, p.GRPC, m)
			if err == nil || !strings.Contains(errOut, "Code: Unauthenticated") {
				t.Errorf("%s without a token: err %v, stderr %q; want Unauthenticated", m, err, errOut)
			}
		}
	})

	t.Run("ServerService", func(t *testing.T) {
		created := call(t, "atrax.v1.ServerService/CreateServer",
			`{"server": {"name": "g1", "url": "http://127.0.0.1:9/mcp", "description": "a", "tags": ["t"]}}`)["server"].(map[string]any)
		want := map[string]any{"name": "g1", "url": "http://127.0.0.1:9/mcp", "description": "a", "tags": []any{"t"}}
		if diff := cmp.Diff(want, definition(created)); diff != "" {
			t.Errorf("CreateServer (-want +got):\n%s", diff)
		}
		got := call(t, "atrax.v1.ServerService/GetServer", `{"name": "g1"}`)["server"].(map[string]any)
		if diff := cmp.Diff(created, got); diff != "" {
			t.Errorf("GetServer (-created +got):\n%s", diff)
		}
		// REST sees what gRPC made.
		rest := mustStatus(t, http.StatusOK, "GET", p.HTTP+"/servers/g1", adminToken, "").JSON(t)
		if diff := cmp.Diff(created, rest); diff != "" {
			t.Errorf("GET /servers/g1 (-gRPC +REST):\n%s", diff)
		}

		merged := call(t, "atrax.v1.ServerService/UpdateServer",
			`{"server": {"name": "g1", "description": "b"}, "updateMask": {"paths": ["description"]}}`)["server"].(map[string]any)
		want["description"] = "b"
		if diff := cmp.Diff(want, definition(merged)); diff != "" {
			t.Errorf("UpdateServer with update_mask (-want +got):\n%s", diff)
		}
		replaced := call(t, "atrax.v1.ServerService/UpdateServer",
			`{"server": {"name": "g1", "url": "http://127.0.0.1:9/v2"}}`)["server"].(map[string]any)
		if diff := cmp.Diff(map[string]any{"name": "g1", "url": "http://127.0.0.1:9/v2"}, definition(replaced)); diff != "" {
			t.Errorf("UpdateServer without update_mask replaces (-want +got):\n%s", diff)
		}

		for _, c := range []struct{ method, state string }{
			{"StopServer", "stopped"}, {"StartServer", "running"}, {"RestartServer", "running"},
		} {
			s := call(t, "atrax.v1.ServerService/"+c.method, `{"name": "g1"}`)["server"].(map[string]any)
			if s["state"] != c.state {
				t.Errorf("%s: state %v, want %s", c.method, s["state"], c.state)
			}
			if c.method == "RestartServer" && s["restartTime"] == nil {
				t.Errorf("RestartServer: no restartTime in %v", s)
			}
		}

		if got := call(t, "atrax.v1.ServerService/DeleteServer", `{"name": "g1"}`); len(got) != 0 {
			t.Errorf("DeleteServer: got %v, want {}", got)
		}
		_, errOut, err := grpcurl(t, append(auth, "-d", `{"name": "g1"}`, p.GRPC, "atrax.v1.ServerService/GetServer")...)
		if err == nil || !strings.Contains(errOut, "Code: NotFound") {
			t.Errorf("GetServer after delete: err %v, stderr %q; want NotFound", err, errOut)
		}
		_, errOut, err = grpcurl(t, append(auth, "-d", `{"name": "cfg"}`, p.GRPC, "atrax.v1.ServerService/DeleteServer")...)
		if err == nil || !strings.Contains(errOut, "Code: FailedPrecondition") {
			t.Errorf("DeleteServer of a config server: err %v, stderr %q; want FailedPrecondition", err, errOut)
		}
	})

	t.Run("AuthService", func(t *testing.T) {
		keys := grpcurlJSON(t, "-plaintext", "-d", `{}`, p.GRPC, "atrax.v1.AuthService/ListSigningKeys")["keys"].([]any)
		if len(keys) != 1 {
			t.Fatalf("ListSigningKeys (no token): got %d keys, want 1: %v", len(keys), keys)
		}
		firstKid := str(keys[0].(map[string]any)["kid"])

		tok := grpcurlJSON(t, "-plaintext", "-d", `{"token": "`+adminToken+`"}`, p.GRPC, "atrax.v1.AuthService/IssueToken")
		if kid := jwtKid(t, str(tok["access_token"])); kid != firstKid {
			t.Errorf("IssueToken: kid %q, want the current key %q", kid, firstKid)
		}
		jti := str(tok["jti"])
		if jti == "" || tok["token_type"] != "Bearer" {
			t.Errorf("IssueToken: got %v, want a jti and token_type Bearer", tok)
		}
		rev := call(t, "atrax.v1.AuthService/RevokeToken", `{"jti": "`+jti+`"}`)
		if rev["jti"] != jti || rev["revokeTime"] == nil {
			t.Errorf("RevokeToken: got %v, want jti %q and a revokeTime", rev, jti)
		}
		_, errOut, err := grpcurl(t, "-plaintext", "-H", "authorization: Bearer "+str(tok["access_token"]), "-d", `{}`, p.GRPC, "atrax.v1.ServerService/ListServers")
		if err == nil || !strings.Contains(errOut, "Code: Unauthenticated") {
			t.Errorf("ListServers with the revoked token: err %v, stderr %q; want Unauthenticated", err, errOut)
		}

		newKey := call(t, "atrax.v1.AuthService/RotateSigningKey", `{}`)["key"].(map[string]any)
		newKid := str(newKey["kid"])
		if newKid == "" || newKid == firstKid || newKey["alg"] != "EdDSA" {
			t.Errorf("RotateSigningKey: got %v, want a new EdDSA key", newKey)
		}
		var kids []string
		for _, k := range grpcurlJSON(t, "-plaintext", "-d", `{}`, p.GRPC, "atrax.v1.AuthService/ListSigningKeys")["keys"].([]any) {
			kids = append(kids, str(k.(map[string]any)["kid"]))
		}
		slices.Sort(kids)
		want := []string{firstKid, newKid}
		slices.Sort(want)
		if diff := cmp.Diff(want, kids); diff != "" {
			t.Errorf("ListSigningKeys after rotation (-want +got):\n%s", diff)
		}
		tok2 := grpcurlJSON(t, "-plaintext", "-d", `{"token": "`+adminToken+`"}`, p.GRPC, "atrax.v1.AuthService/IssueToken")
		if kid := jwtKid(t, str(tok2["access_token"])); kid != newKid {
			t.Errorf("IssueToken after rotation: kid %q, want the new key %q", kid, newKid)
		}
		// A token signed by the old key keeps working.
		mustStatus(t, http.StatusOK, "GET", p.HTTP+"/servers", issueToken(t, p.HTTP, `{"token": "`+adminToken+`"}`).AccessToken, "")
	})

	t.Run("StatusService without a token", func(t *testing.T) {
		h := grpcurlJSON(t, "-plaintext", "-d", `{}`, p.GRPC, "atrax.v1.StatusService/GetHealth")
		if h["status"] != "ok" || h["component"] != "controlplane" {
			t.Errorf("GetHealth: got %v, want status ok, component controlplane", h)
		}
		st := grpcurlJSON(t, "-plaintext", "-d", `{}`, p.GRPC, "atrax.v1.StatusService/GetStatus")
		if got := serverNamesOfStatus(t, st); !slices.Contains(got, "cfg") {
			t.Errorf("GetStatus servers: got %v, want cfg among them", got)
		}
		edges, _ := st["edges"].([]any)
		if len(edges) != 1 || edges[0].(map[string]any)["edgeId"] != p.EdgeID || edges[0].(map[string]any)["connected"] != true {
			t.Errorf("GetStatus edges: got %v, want the one connected edge %q", edges, p.EdgeID)
		}
	})

	t.Run("AuditService", func(t *testing.T) {
		got := call(t, "atrax.v1.AuditService/ListAuditEvents", `{"action": "server.create"}`)
		events, _ := got["events"].([]any)
		if len(events) != 1 {
			t.Fatalf("ListAuditEvents action=server.create: got %v, want the one create", got)
		}
		ev := events[0].(map[string]any)
		if ev["server"] != "g1" || ev["actor"] != "static:default" || ev["outcome"] != "ok" {
			t.Errorf("audit event: got %v, want server g1, actor static:default, outcome ok", ev)
		}
	})
}

// jwtKid returns the kid of a compact JWT's header, without verifying it.
func jwtKid(t testing.TB, tok string) string {
	t.Helper()
	head, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatalf("JWT header: %v", err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("JWT header: %v", err)
	}
	return h.Kid
}

// protoJSON is a message as REST shows it: its protojson form, decoded.
func protoJSON(t testing.TB, m proto.Message) map[string]any {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestWatchServers opens WatchServers with a Go client: the registry first,
// then every change made through REST, in order, versions increasing.
func TestWatchServers(t *testing.T) {
	t.Parallel()
	p := startAtrax(t, "serve", tokenConfig(`"mcpServers": {"cfg": {"url": "http://127.0.0.1:9/mcp"}},`), adminEnv())
	client := atraxv1.NewServerServiceClient(dialGRPC(t, p.GRPC))
	ctx, cancel := context.WithTimeout(withToken(t, adminToken), pollTimeout)
	defer cancel()
	stream, err := client.WatchServers(ctx, &atraxv1.WatchServersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatalf("first WatchServers message: %v", err)
	}
	if first.GetEvent() != "snapshot" {
		t.Errorf("first event: got %q, want snapshot", first.GetEvent())
	}
	list := mustStatus(t, http.StatusOK, "GET", p.HTTP+"/servers", adminToken, "").JSON(t)
	if diff := cmp.Diff(list, protoJSON(t, &atraxv1.ListServersResponse{Servers: first.GetServers()})); diff != "" {
		t.Errorf("snapshot servers differ from GET /servers (-REST +watch):\n%s", diff)
	}

	type step struct {
		method, path, body string
		event, name        string
	}
	steps := []step{
		{"POST", "/servers", `{"name": "w1", "url": "http://127.0.0.1:9/mcp"}`, "created", "w1"},
		{"PATCH", "/servers/w1", `{"description": "changed"}`, "updated", "w1"},
		{"POST", "/servers", `{"name": "w2", "url": "http://127.0.0.1:9/mcp"}`, "created", "w2"},
		{"DELETE", "/servers/w1", "", "deleted", "w1"},
		{"POST", "/servers/w2/stop", "", "updated", "w2"},
		{"POST", "/servers/cfg/restart", "", "updated", "cfg"},
	}
	var confirmed []map[string]any // what REST answered, per step
	for _, s := range steps {
		confirmed = append(confirmed, mustStatus(t, http.StatusOK, s.method, p.HTTP+s.path, adminToken, s.body).JSON(t))
	}
	version := first.GetVersion()
	for i, s := range steps {
		msg, err := stream.Recv()
		if err != nil {
			t.Fatalf("event %d (%s %s): %v", i, s.method, s.path, err)
		}
		if msg.GetEvent() != s.event || len(msg.GetServers()) != 1 || msg.GetServers()[0].GetName() != s.name {
			t.Errorf("event %d after %s %s: got %q %v, want %q for %s", i, s.method, s.path, msg.GetEvent(), msg.GetServers(), s.event, s.name)
			continue
		}
		if msg.GetVersion() <= version {
			t.Errorf("event %d: version %d, want more than %d", i, msg.GetVersion(), version)
		}
		version = msg.GetVersion()
		if s.event != "deleted" {
			if diff := cmp.Diff(confirmed[i], protoJSON(t, msg.GetServers()[0])); diff != "" {
				t.Errorf("event %d carries another server than REST returned (-REST +watch):\n%s", i, diff)
			}
		}
	}

	// A watcher that starts now sees the result as its snapshot.
	later, err := client.WatchServers(ctx, &atraxv1.WatchServersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := later.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range snap.GetServers() {
		names = append(names, s.GetName())
	}
	if diff := cmp.Diff([]string{"cfg", "w2"}, names); diff != "" {
		t.Errorf("second watcher's snapshot (-want +got):\n%s", diff)
	}
	if snap.GetVersion() != version {
		t.Errorf("second watcher's snapshot version %d, want the last event's %d", snap.GetVersion(), version)
	}

	noToken, err := client.WatchServers(withToken(t, ""), &atraxv1.WatchServersRequest{})
	if err == nil {
		_, err = noToken.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("WatchServers without a token: got %v, want Unauthenticated", err)
	}
	cancel()
}

// TestEdgeSync speaks EdgeService.Sync as an edge would: hello, snapshot,
// newer snapshots after changes, reports that GetStatus shows.
func TestEdgeSync(t *testing.T) {
	t.Parallel()
	p := startAtrax(t, "serve", authConfig, authEnv())
	edges := atraxv1.NewEdgeServiceClient(dialGRPC(t, p.GRPC))

	open := func(t *testing.T, token string) (atraxv1.EdgeService_SyncClient, context.CancelFunc) {
		ctx, cancel := context.WithTimeout(withToken(t, token), pollTimeout)
		s, err := edges.Sync(ctx)
		if err != nil {
			cancel()
			t.Fatalf("Sync: %v", err)
		}
		return s, cancel
	}
	hello := &atraxv1.SyncRequest{Message: &atraxv1.SyncRequest_Hello{Hello: &atraxv1.EdgeHello{
		EdgeId: "e2e-edge", Address: "http://e2e.invalid:1", Version: "e2e",
	}}}

	t.Run("token without the edge scope", func(t *testing.T) {
		for _, c := range []struct {
			token string
			code  codes.Code
		}{{noScopeToken, codes.PermissionDenied}, {"", codes.Unauthenticated}, {"wrong", codes.Unauthenticated}} {
			s, cancel := open(t, c.token)
			s.Send(hello)
			_, err := s.Recv()
			cancel()
			if status.Code(err) != c.code {
				t.Errorf("Sync with token %q: got %v, want %v", c.token, err, c.code)
			}
		}
	})

	s, cancel := open(t, adminToken)
	defer cancel()
	if err := s.Send(hello); err != nil {
		t.Fatal(err)
	}
	first, err := s.Recv()
	if err != nil {
		t.Fatalf("first Sync message: %v", err)
	}
	snap := first.GetSnapshot()
	if snap.GetVersion() <= 0 {
		t.Errorf("snapshot version %d, want positive", snap.GetVersion())
	}
	if !slices.ContainsFunc(snap.GetServers(), func(s *atraxv1.Server) bool { return s.GetName() == "memory" }) {
		t.Errorf("snapshot servers %v lack the config server memory", snap.GetServers())
	}
	if snap.GetTokenIssuer() != "atrax" || snap.GetTokenAudience() != "atrax" {
		t.Errorf("snapshot issuer/audience: got %q/%q, want atrax/atrax", snap.GetTokenIssuer(), snap.GetTokenAudience())
	}
	if len(snap.GetSealKeys()) == 0 || len(snap.GetSealKeys()[0].GetKey()) != 32 {
		t.Errorf("snapshot seal keys: got %d, want at least one 32-byte key", len(snap.GetSealKeys()))
	}
	tok := issueToken(t, p.HTTP, `{"token": "`+adminToken+`"}`)
	kid := jwtKid(t, tok.AccessToken)
	if !slices.ContainsFunc(snap.GetVerificationKeys(), func(k *atraxv1.VerificationKey) bool {
		return k.GetKid() == kid && k.GetAlgorithm() == "EdDSA" && len(k.GetPublicKey()) == 32
	}) {
		t.Errorf("snapshot verification keys %v lack the signing key %q", snap.GetVerificationKeys(), kid)
	}

	// next returns the next snapshot, which must be newer than the last.
	last := snap.GetVersion()
	next := func(what string) *atraxv1.Snapshot {
		t.Helper()
		m, err := s.Recv()
		if err != nil {
			t.Fatalf("Sync after %s: %v", what, err)
		}
		if v := m.GetSnapshot().GetVersion(); v <= last {
			t.Errorf("snapshot after %s: version %d, want more than %d", what, v, last)
		}
		last = m.GetSnapshot().GetVersion()
		return m.GetSnapshot()
	}

	mustStatus(t, http.StatusOK, "POST", p.HTTP+"/servers", adminToken, `{"name": "synced", "url": "http://127.0.0.1:9/mcp", "headers": {"X-Key": "${E2E_SECRET}"}}`)
	got := next("creating a server")
	i := slices.IndexFunc(got.GetServers(), func(s *atraxv1.Server) bool { return s.GetName() == "synced" })
	if i < 0 {
		t.Fatalf("snapshot after create lacks the server: %v", got.GetServers())
	}
	if h := got.GetServers()[i].GetHeaders()["X-Key"]; h != "${E2E_SECRET}" {
		t.Errorf("snapshot header X-Key: got %q, want ${E2E_SECRET} as written (secrets never travel)", h)
	}

	mustStatus(t, http.StatusOK, "POST", p.HTTP+"/auth/revoke", adminToken, `{"jti": "`+tok.Jti+`"}`)
	got = next("revoking a token")
	if !slices.ContainsFunc(got.GetRevocations(), func(r *atraxv1.Revocation) bool { return r.GetJti() == tok.Jti }) {
		t.Errorf("snapshot after revocation lacks jti %s: %v", tok.Jti, got.GetRevocations())
	}

	// The edge's report is what /status shows for it.
	report := &atraxv1.EdgeReport{
		SnapshotVersion: last,
		Upstreams:       []*atraxv1.UpstreamStatus{{Name: "memory", State: "running", TransportType: "http", ToolCount: 3, Restarts: 1}},
		Sessions:        []*atraxv1.SessionCount{{Transport: "sse", Count: 2}},
	}
	if err := s.Send(&atraxv1.SyncRequest{Message: &atraxv1.SyncRequest_Report{Report: report}}); err != nil {
		t.Fatal(err)
	}
	var edge map[string]any
	if !poll(pollTimeout, func() bool {
		edge = statusEdge(t, p.HTTP, "e2e-edge")
		return edge != nil && edge["upstreams"] != nil
	}) {
		t.Fatalf("GET /status never showed the report of e2e-edge; last: %v", edge)
	}
	want := protoJSON(t, report)
	for _, k := range []string{"upstreams", "sessions", "snapshotVersion"} {
		if diff := cmp.Diff(want[k], edge[k]); diff != "" {
			t.Errorf("GET /status edge %s (-reported +shown):\n%s", k, diff)
		}
	}
	if edge["connected"] != true || edge["address"] != "http://e2e.invalid:1" || edge["version"] != "e2e" {
		t.Errorf("GET /status edge: got %v, want connected, with the hello's address and version", edge)
	}

	s.CloseSend()
	cancel()
	if !poll(pollTimeout, func() bool {
		e := statusEdge(t, p.HTTP, "e2e-edge")
		return e != nil && e["connected"] == nil
	}) {
		t.Errorf("GET /status still shows e2e-edge connected after its stream closed: %v", statusEdge(t, p.HTTP, "e2e-edge"))
	}

	// A stream must open with a hello.
	s2, cancel2 := open(t, adminToken)
	defer cancel2()
	s2.Send(&atraxv1.SyncRequest{Message: &atraxv1.SyncRequest_Report{Report: report}})
	if _, err := s2.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Sync opened with a report: got %v, want InvalidArgument", err)
	}
}

// statusEdge returns the edge with id from GET /status, or nil.
func statusEdge(t testing.TB, base, id string) map[string]any {
	t.Helper()
	st := mustStatus(t, http.StatusOK, "GET", base+"/status", "", "").JSON(t)
	list, _ := st["edges"].([]any)
	for _, e := range list {
		if m, ok := e.(map[string]any); ok && m["edgeId"] == id {
			return m
		}
	}
	return nil
}
