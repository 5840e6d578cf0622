package upstream_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
)

// helperEnv makes the test binary, run as a stdio child, act as a fake MCP
// server ("server") or a process that only sleeps ("sleep").
const helperEnv = "ATRAX_TEST_UPSTREAM"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "server":
		fakeServer()
		os.Exit(0)
	case "sleep":
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fake is a tiny MCP server over newline-delimited JSON-RPC on stdin and
// stdout. Its tools:
//
//	echo      answers with its arguments (after delay_ms), sending one
//	          progress notification first when the call has a token
//	env       answers with the process environment
//	pid       answers with the process id
//	hang      says "hanging" (notifications/message) and never answers
//	progress  sends `steps` progress notifications `every` ms apart, then
//	          answers with the token it saw
//	sample    asks the client for sampling and answers with what it said
//	log       sends notifications/message with `text`, then answers
//	mutate    adds a tool, sends tools/list_changed, answers
//	spawn     starts a grandchild (this binary, sleeping) and answers with
//	          its pid
//
// notifications/cancelled is answered with a notifications/message whose
// data is "cancelled ID: REASON". tools/list pages hold two tools.
type fake struct {
	out   sync.Mutex
	w     *bufio.Writer
	mu    sync.Mutex
	tools []string
	next  int
	wait  map[string]chan *jsonrpc.Response
}

func fakeServer() {
	f := &fake{
		w:     bufio.NewWriter(os.Stdout),
		tools: []string{"echo", "env", "pid", "hang", "progress", "sample", "log", "mutate", "spawn"},
		wait:  map[string]chan *jsonrpc.Response{},
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		msgs, _, err := jsonrpc.Decode(sc.Bytes())
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake: bad line:", err)
			continue
		}
		switch m := msgs[0].(type) {
		case *jsonrpc.Response:
			f.mu.Lock()
			ch := f.wait[fmt.Sprint(m.ID.Raw())]
			f.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		case *jsonrpc.Request:
			if m.IsCall() {
				go f.handle(m)
			} else if m.Method == "notifications/cancelled" {
				var p struct {
					RequestID any    `json:"requestId"`
					Reason    string `json:"reason"`
				}
				_ = json.Unmarshal(m.Params, &p)
				f.notify("notifications/message", map[string]any{"level": "info", "data": fmt.Sprintf("cancelled %v: %s", p.RequestID, p.Reason)})
			}
		}
	}
}

func (f *fake) send(m jsonrpc.Message) {
	data, _ := jsonrpc.Encode(m)
	f.out.Lock()
	defer f.out.Unlock()
	f.w.Write(data)
	f.w.WriteByte('\n')
	f.w.Flush()
}

func (f *fake) notify(method string, params any) {
	p, _ := json.Marshal(params)
	f.send(&jsonrpc.Request{Method: method, Params: p})
}

func (f *fake) reply(id jsonrpc.ID, result any) {
	r, _ := json.Marshal(result)
	f.send(jsonrpc.ResultResponse(id, r))
}

func (f *fake) handle(req *jsonrpc.Request) {
	switch req.Method {
	case "initialize":
		var p struct{ ProtocolVersion string }
		_ = json.Unmarshal(req.Params, &p)
		f.reply(req.ID, map[string]any{
			"protocolVersion": p.ProtocolVersion,
			"capabilities": map[string]any{
				"tools": map[string]any{"listChanged": true}, "prompts": map[string]any{},
				"resources": map[string]any{"subscribe": true}, "logging": map[string]any{},
			},
			"serverInfo":   map[string]string{"name": "fake", "version": "1"},
			"instructions": "a fake for tests",
		})
	case "ping":
		f.reply(req.ID, map[string]any{})
	case "tools/list":
		cursor, _ := jsonrpc.StringField(req.Params, "cursor")
		start, _ := strconv.Atoi(strings.TrimPrefix(cursor, "page-"))
		f.mu.Lock()
		tools := append([]string(nil), f.tools...)
		f.mu.Unlock()
		end := min(start+2, len(tools))
		var items []map[string]any
		for _, t := range tools[start:end] {
			items = append(items, map[string]any{"name": t, "inputSchema": map[string]string{"type": "object"}})
		}
		res := map[string]any{"tools": items}
		if end < len(tools) {
			res["nextCursor"] = fmt.Sprintf("page-%d", end)
		}
		f.reply(req.ID, res)
	case "prompts/list":
		f.reply(req.ID, map[string]any{"prompts": []map[string]string{{"name": "greet"}}})
	case "resources/list":
		f.reply(req.ID, map[string]any{"resources": []map[string]string{{"uri": "file:///fake"}}})
	case "resources/templates/list":
		f.send(jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "no templates")))
	case "tools/call":
		f.tool(req)
	default:
		f.send(jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, "unknown method %s", req.Method)))
	}
}

func (f *fake) tool(req *jsonrpc.Request) {
	var p struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
		Meta      struct {
			ProgressToken json.RawMessage `json:"progressToken"`
		} `json:"_meta"`
	}
	_ = json.Unmarshal(req.Params, &p)
	var args struct {
		DelayMS int    `json:"delay_ms"`
		Steps   int    `json:"steps"`
		Every   int    `json:"every"`
		Text    string `json:"text"`
	}
	_ = json.Unmarshal(p.Arguments, &args)
	tok := p.Meta.ProgressToken
	switch p.Name {
	case "echo":
		if len(tok) > 0 {
			f.notify("notifications/progress", map[string]any{"progressToken": tok, "progress": 1, "message": string(p.Arguments)})
		}
		time.Sleep(time.Duration(args.DelayMS) * time.Millisecond)
		f.reply(req.ID, map[string]any{"arguments": p.Arguments})
	case "env":
		f.reply(req.ID, map[string]any{"env": os.Environ()})
	case "pid":
		f.reply(req.ID, map[string]any{"pid": os.Getpid()})
	case "hang":
		f.notify("notifications/message", map[string]any{"level": "info", "data": "hanging"})
	case "progress":
		for i := 1; i <= args.Steps; i++ {
			time.Sleep(time.Duration(args.Every) * time.Millisecond)
			f.notify("notifications/progress", map[string]any{"progressToken": tok, "progress": i, "total": args.Steps})
		}
		f.reply(req.ID, map[string]any{"token": tok})
	case "sample":
		f.mu.Lock()
		f.next++
		id := fmt.Sprintf("srv-%d", f.next)
		ch := make(chan *jsonrpc.Response, 1)
		f.wait[id] = ch
		f.mu.Unlock()
		f.send(&jsonrpc.Request{ID: jsonrpc.StringID(id), Method: "sampling/createMessage", Params: json.RawMessage(`{"messages":[],"maxTokens":1}`)})
		r := <-ch
		f.reply(req.ID, map[string]any{"client": r.Result, "error": jsonrpc.WireError(r)})
	case "log":
		f.notify("notifications/message", map[string]any{"level": "info", "data": args.Text})
		f.reply(req.ID, map[string]any{})
	case "mutate":
		f.mu.Lock()
		f.tools = append(f.tools, "added")
		f.mu.Unlock()
		f.notify("notifications/tools/list_changed", nil)
		f.reply(req.ID, map[string]any{})
	case "spawn":
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=sleep")
		if err := cmd.Start(); err != nil {
			f.send(jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInternalError, "%v", err)))
			return
		}
		go cmd.Wait()
		f.reply(req.ID, map[string]any{"pid": cmd.Process.Pid})
	default:
		f.send(jsonrpc.ErrorResponse(req.ID, jsonrpc.NewError(jsonrpc.CodeInvalidParams, "unknown tool %s", p.Name)))
	}
}
