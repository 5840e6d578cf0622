package upstream

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/atrax-mcp/atrax/edge/jsonrpc"
)

const testWait = 5 * time.Second

// pipeConn is a lineConn reading what the test writes to w.
func pipeConn(t *testing.T, max int) (*lineConn, io.WriteCloser, *io.PipeReader) {
	t.Helper()
	r, w := io.Pipe()
	out, outW := io.Pipe()
	c := newLineConn(r, outW, max, slog.New(slog.DiscardHandler))
	t.Cleanup(func() {
		c.Close()
		w.Close()
		out.Close()
	})
	return c, w, out
}

func readMsg(t *testing.T, c *lineConn) (jsonrpc.Message, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	return c.Read(ctx)
}

func TestLineConnSkipsGarbage(t *testing.T) {
	c, w, _ := pipeConn(t, 1024)
	valid := `{"jsonrpc":"2.0","id":1,"result":{"ok":true}}`
	go func() {
		lines := []string{
			"npm WARN deprecated something",
			"",
			"   ",
			`{"not":"jsonrpc"}`,
			`{"jsonrpc":"2.0","id":9,"method":""}`,
			`[{"jsonrpc":"2.0","method":"a"}]`, // batches are not stdio messages
			`{"jsonrpc":"2.0","id":2,"result":` + strings.Repeat(" ", 2000) + `{}}`,          // over the cap
			`{"jsonrpc":"2.0","method":"x","params":"` + strings.Repeat("y", 200<<10) + `"}`, // over the cap and the reader's buffer
			valid,
			`{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"` + strings.Repeat("z", 900) + `"}}`, // under the cap
		}
		for _, l := range lines {
			io.WriteString(w, l+"\n")
		}
		io.WriteString(w, `{"jsonrpc":"2.0","id":3,"result":{}}`) // the last line needs no newline
		w.Close()
	}()
	var got []string
	for {
		m, err := readMsg(t, c)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Errorf("read ended with %v, want EOF", err)
			}
			break
		}
		data, _ := jsonrpc.Encode(m)
		got = append(got, string(data))
	}
	// The response over the cap still ends its call, with an error.
	if len(got) != 4 || !strings.HasPrefix(got[0], `{"jsonrpc":"2.0","id":2,"error":{"code":-32603,"message":"the server's response exceeds`) ||
		got[1] != valid || !strings.Contains(got[2], "zzz") || got[3] != `{"jsonrpc":"2.0","id":3,"result":{}}` {
		t.Errorf("messages read = %.120q, want an error for id 2 (over the cap), then the three valid ones", got)
	}
	if c.skipped != 6 {
		t.Errorf("skipped = %d lines, want 6", c.skipped)
	}
}

// A line over the cap whose end never comes ends the connection (EOF),
// without keeping the line.
func TestLineConnOverLongAtEOF(t *testing.T) {
	r := iotest.OneByteReader(strings.NewReader(`{"jsonrpc":"2.0","id":1,"result":"` + strings.Repeat("a", 300) + `"}`))
	c := newLineConn(r, nopCloser{io.Discard}, 100, slog.New(slog.DiscardHandler))
	defer c.Close()
	if m, err := readMsg(t, c); !errors.Is(err, io.EOF) {
		t.Errorf("Read = %v, %v; want EOF", m, err)
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func TestLineConnWrite(t *testing.T) {
	c, _, out := pipeConn(t, 0)
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 4096)
		n, _ := io.ReadAtLeast(out, buf, 1)
		got <- string(buf[:n])
	}()
	if err := c.Write(context.Background(), &jsonrpc.Request{ID: jsonrpc.IntID(1), Method: "ping"}); err != nil {
		t.Fatal(err)
	}
	select {
	case line := <-got:
		if line != `{"jsonrpc":"2.0","id":1,"method":"ping"}`+"\n" {
			t.Errorf("wrote %q, want one line", line)
		}
	case <-time.After(testWait):
		t.Fatal("nothing written")
	}
	c.Close()
	if err := c.Write(context.Background(), &jsonrpc.Request{Method: "x"}); err == nil {
		t.Error("Write after Close succeeded")
	}
	if _, err := readMsg(t, c); !errors.Is(err, io.EOF) {
		t.Errorf("Read after Close = %v, want EOF", err)
	}
}

func TestChildEnv(t *testing.T) {
	t.Setenv("PATH", "/usr/bin:/bin")
	t.Setenv("HOME", "/home/edge")
	t.Setenv("ATRAX_ADMIN_TOKEN", "secret")
	t.Setenv("GITHUB_TOKEN", "secret")
	os.Unsetenv("TZ")
	got := childEnv(map[string]string{"HOME": "/srv/child", "API_KEY": "configured"})
	slices.Sort(got)
	var names []string
	for _, kv := range got {
		k, v, _ := strings.Cut(kv, "=")
		names = append(names, k)
		if v == "secret" {
			t.Errorf("childEnv passed %s of the edge's own environment", k)
		}
		if !slices.Contains(safeEnv, k) && k != "API_KEY" {
			t.Errorf("childEnv passed %s, outside the safe base and the config", k)
		}
	}
	for _, want := range []string{"API_KEY=configured", "HOME=/srv/child", "PATH=/usr/bin:/bin"} {
		if !slices.Contains(got, want) {
			t.Errorf("childEnv = %q, want %s", got, want)
		}
	}
	if n := len(slices.Compact(slices.Clone(names))); n != len(names) {
		t.Errorf("childEnv names %q repeat a variable", names)
	}
	if slices.Contains(names, "TZ") {
		t.Error("childEnv invented TZ, which the edge does not have")
	}
}

func TestEventScanner(t *testing.T) {
	stream := "retry: 1500\r\n" +
		": keep-alive\r\n" +
		"\r\n" +
		"id: 1\r\n" +
		"event: message\r\n" +
		"data: {\"a\":\r\n" +
		"data: 1}\r\n" +
		"\r\n" +
		"id: 2\n" +
		"data:{}\n" +
		"\n" +
		"data: last\r" +
		"\r"
	want := []event{
		{ID: "1", Name: "message", Data: []byte("{\"a\":\n1}"), Retry: 1500 * time.Millisecond},
		{ID: "2", Data: []byte("{}")},
		{Data: []byte("last")},
	}
	for name, r := range map[string]io.Reader{
		"whole":     strings.NewReader(stream),
		"one byte":  iotest.OneByteReader(strings.NewReader(stream)),
		"half-read": iotest.HalfReader(strings.NewReader(stream)),
	} {
		t.Run(name, func(t *testing.T) {
			sc := newEventScanner(r, 1<<20)
			var got []event
			for sc.Next() {
				got = append(got, sc.Event())
			}
			if sc.Err() != nil {
				t.Errorf("Err = %v", sc.Err())
			}
			// The retry field belongs to no event; the scanner keeps it on the next.
			for i := range got {
				if got[i].Retry != 0 && i != 0 {
					t.Errorf("event %d carries retry %v", i, got[i].Retry)
				}
			}
			if len(got) > 0 {
				got[0].Retry = 1500 * time.Millisecond
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEventScannerCap(t *testing.T) {
	sc := newEventScanner(strings.NewReader("data: "+strings.Repeat("x", 5000)+"\n\n"), 1000)
	if sc.Next() {
		t.Error("an event over the cap was read")
	}
	if !errors.Is(sc.Err(), ErrMessageTooLarge) {
		t.Errorf("Err = %v, want ErrMessageTooLarge", sc.Err())
	}
}

// The start of a line over the cap gives the id of the call it answered,
// when the id comes before the result; anything else answers no call.
func TestOversizedResponse(t *testing.T) {
	for _, tc := range []struct {
		head string
		id   any // nil: no response
	}{
		{`{"jsonrpc":"2.0","id":7,"result":{"content":[{"text":"aaaa`, int64(7)},
		{`{"id":"s-1","jsonrpc":"2.0","error":{"code":1,"message":"bbbb`, "s-1"},
		{`{"jsonrpc":"2.0","result":{"content":"cccc`, nil},                             // the id would come after
		{`{"jsonrpc":"2.0","id":3,"method":"sampling/createMessage","params":{"x`, nil}, // a request
		{`{"jsonrpc":"2.0","method":"notifications/message","params":{"x`, nil},
		{`not json at all`, nil},
		{`{"jsonrpc":"2.0","id":{"x":1},"result":{`, nil},
	} {
		r := oversizedResponse([]byte(tc.head), 100)
		switch {
		case tc.id == nil && r != nil:
			t.Errorf("%s: got a response for id %v, want none", tc.head, r.ID.Raw())
		case tc.id != nil && (r == nil || r.ID.Raw() != tc.id || jsonrpc.WireError(r) == nil):
			t.Errorf("%s: got %+v, want an error response for id %v", tc.head, r, tc.id)
		}
	}
}
