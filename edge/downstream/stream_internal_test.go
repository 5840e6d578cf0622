package downstream

import (
	"errors"
	"fmt"
	"testing"
)

// Under pressure notifications give way, answers and requests never: a
// server that floods a call with progress does not cost the client the
// call's answer, and only a backlog of what may not be dropped fails.
func TestStreamNotificationsGiveWay(t *testing.T) {
	s := newStream("1", 4)
	for i := range 50 {
		if err := s.pushNote("", []byte(fmt.Sprintf(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":%d}}`, i))); err != nil {
			t.Fatalf("note %d refused: %v", i, err)
		}
	}
	if err := s.push("", []byte(`{"jsonrpc":"2.0","id":7,"method":"sampling/createMessage"}`), false); err != nil {
		t.Fatalf("a request was refused: %v", err)
	}
	if err := s.push("", []byte(`{"jsonrpc":"2.0","id":1,"result":{}}`), true); err != nil {
		t.Fatalf("the answer was refused: %v", err)
	}
	evs, closed, _ := s.take(0)
	if closed || len(evs) > 4 {
		t.Fatalf("%d events held (closed %v), want at most 4", len(evs), closed)
	}
	if last := evs[len(evs)-1]; !last.resp {
		t.Errorf("the answer is not the last event held: %+v", last)
	}
	if s.dropped < 46 {
		t.Errorf("%d notifications dropped, want at least 46", s.dropped)
	}
	// Five requests nobody reads: nothing can give way.
	r := newStream("2", 4)
	var err error
	for i := range 5 {
		err = r.push("", []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"roots/list"}`, i)), false)
	}
	if err2 := r.push("", []byte(`{}`), false); !errors.Is(err2, errSlowClient) && !errors.Is(err, errSlowClient) {
		t.Errorf("a backlog of requests beyond the limit did not fail the stream: %v, %v", err, err2)
	}
}

func TestIsNote(t *testing.T) {
	for raw, want := range map[string]bool{
		`{"jsonrpc":"2.0","method":"notifications/message"}`: true,
		`{"jsonrpc":"2.0","id":1,"method":"roots/list"}`:     false,
		`{"jsonrpc":"2.0","id":1,"result":{}}`:               false,
		`not json`:                                           false,
	} {
		if got := isNote([]byte(raw)); got != want {
			t.Errorf("isNote(%s) = %v, want %v", raw, got, want)
		}
	}
}
