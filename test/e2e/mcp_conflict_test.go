package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// mcpMemoryTools are the tools of server-memory.
var mcpMemoryTools = []string{
	"add_observations", "create_entities", "create_relations", "delete_entities", "delete_observations",
	"delete_relations", "open_nodes", "read_graph", "search_nodes",
}

// TestMCPConflicts puts three server-memory instances, alpha, beta and
// gamma (in that config order), behind gateways that prefix nothing (mode
// never), so that every tool name collides, under each conflict strategy.
// Each instance's graph holds one entity named after it, so read_graph
// tells who answered.
func TestMCPConflicts(t *testing.T) {
	t.Parallel()
	pe := installPeers(t)
	servers := func(t *testing.T) []mcpServer {
		var out []mcpServer
		for _, name := range []string{"alpha", "beta", "gamma"} {
			out = append(out, mcpServer{name, mcpStdioDef(pe.MemoryStdio(mcpMemoryFile(t, "from-"+name)), nil, nil)})
		}
		return out
	}
	// readGraph returns the entities read_graph (by the visible name)
	// returns.
	readGraph := func(t *testing.T, c *mcpClient, name string) []string {
		t.Helper()
		res := c.ok(mcpOp{"op": "callTool", "name": name})
		var g struct {
			Entities []struct {
				Name string `json:"name"`
			} `json:"entities"`
		}
		if err := json.Unmarshal([]byte(mcpText(t, res)), &g); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, res)
		}
		var out []string
		for _, e := range g.Entities {
			out = append(out, e.Name)
		}
		return out
	}

	for _, tc := range []struct {
		conflict string
		prefer   string
		// winner answers read_graph; "" when nobody may.
		winner string
	}{
		{conflict: "first-wins", winner: "alpha"},
		{conflict: "last-wins", winner: "gamma"},
		// beta is neither first nor last.
		{conflict: "prefer-server", prefer: `["beta", "gamma"]`, winner: "beta"},
		{conflict: "rename", winner: "alpha"},
		{conflict: "reject"},
	} {
		t.Run(tc.conflict, func(t *testing.T) {
			t.Parallel()
			ns := `{"mode": "never", "conflict": "` + tc.conflict + `"`
			if tc.prefer != "" {
				ns += `, "prefer": ` + tc.prefer
			}
			ns += "}"
			g := startMCPGateway(t, pe, mcpConfig(t, ns, servers(t)...), "alpha", "beta", "gamma")
			c := mcpConnect(t, pe, g.plan("streamable", mcpAdminToken, "header"))
			tools := mcpNames(t, c.ok(mcpOp{"op": "listTools"}), "tools")

			want := slices.Clone(mcpMemoryTools)
			switch tc.conflict {
			case "rename":
				// The later servers' tools get "__" and their name.
				for _, n := range mcpMemoryTools {
					want = append(want, n+"__beta", n+"__gamma")
				}
				slices.Sort(want)
			case "reject":
				want = nil
			}
			if !slices.Equal(tools, want) {
				t.Errorf("tools/list under %s: got %v, want %v", tc.conflict, tools, want)
			}

			if tc.winner == "" {
				if ev := c.do(mcpOp{"op": "callTool", "name": "read_graph"}); ev.OK && !mcpIsToolError(ev.Result) {
					t.Errorf("read_graph under reject answered %s", ev.Result)
				}
				mcpCheckRejectLogged(t, g, "read_graph", "alpha", "beta", "gamma")
				return
			}
			if got := readGraph(t, c, "read_graph"); !slices.Equal(got, []string{"from-" + tc.winner}) {
				t.Errorf("read_graph under %s: answered by the server holding %v, want %s", tc.conflict, got, tc.winner)
			}
			if tc.conflict == "rename" {
				for _, who := range []string{"beta", "gamma"} {
					if got := readGraph(t, c, "read_graph__"+who); !slices.Equal(got, []string{"from-" + who}) {
						t.Errorf("read_graph__%s under rename: answered by the server holding %v", who, got)
					}
				}
			}
		})
	}
}

// mcpCheckRejectLogged checks that the gateway logged the conflict over name
// naming the servers: the first against each later one.
func mcpCheckRejectLogged(t *testing.T, g *mcpGateway, name string, servers ...string) {
	t.Helper()
	named := map[string]bool{}
	for _, m := range g.Logs() {
		if m["msg"] != "name conflict" || m["name"] != name {
			continue
		}
		list, _ := m["servers"].([]any)
		for _, s := range list {
			named[str(s)] = true
		}
	}
	for _, s := range servers {
		if !named[s] {
			var lines []string
			for _, m := range g.Logs() {
				if strings.Contains(str(m["msg"]), "conflict") {
					b, _ := json.Marshal(m)
					lines = append(lines, string(b))
				}
			}
			t.Errorf("no %q log line names server %s for %s; conflict lines:\n%s", "name conflict", s, name, strings.Join(lines, "\n"))
		}
	}
}
