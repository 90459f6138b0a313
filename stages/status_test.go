package stages

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func TestStatusPosterDeliversAndRetries(t *testing.T) {
	var mu sync.Mutex
	var got []Event
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 { // the first attempt fails: the poster must retry
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var e Event
		if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
			t.Errorf("bad body: %v", err)
		}
		got = append(got, e)
	}))
	defer srv.Close()
	s := NewStatusPoster(srv.URL)
	s.Backoff = time.Millisecond
	s.Emit(Event{Stage: "partition", Kind: EventStart})
	s.Emit(Event{Stage: "partition", Kind: EventDone})
	if lost := s.Close(5 * time.Second); lost != 0 {
		t.Fatalf("lost %d events", lost)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Kind != EventStart || got[1].Kind != EventDone {
		t.Fatalf("server got %+v", got)
	}
}

func TestStatusPosterBoundedWhenServerIsDown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	url := srv.URL
	srv.Close() // nothing listens any more
	s := NewStatusPoster(url)
	s.Backoff = time.Millisecond
	s.Retries = 1
	s.Emit(Event{Stage: "report", Kind: EventDone})
	lost := s.Close(5 * time.Second)
	if lost != 1 {
		t.Fatalf("lost = %d, want 1", lost)
	}
}
