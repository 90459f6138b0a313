package stages

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nodeinit/nodeinit/image"
)

// StatusPoster posts events to nodeinit.status_url as JSON, one request per event,
// from a bounded queue so a slow or dead server never stalls the install. Progress
// events are dropped when the queue is full; start/done/failed are retried.
type StatusPoster struct {
	URL      string
	Client   *http.Client
	Retries  int           // per event; default 3
	Backoff  time.Duration // first retry delay, doubled each time; default 500ms
	queue    chan Event
	wg       sync.WaitGroup
	mu       sync.Mutex
	failures int
}

// NewStatusPoster starts the background sender; call Close to flush it.
func NewStatusPoster(url string) *StatusPoster {
	s := &StatusPoster{URL: url, Client: &http.Client{Timeout: 5 * time.Second, CheckRedirect: image.CheckRedirect}, Retries: 3, Backoff: 500 * time.Millisecond,
		queue: make(chan Event, 64)}
	s.wg.Add(1)
	go s.loop()
	return s
}

// Emit queues e; a progress event is dropped rather than block.
func (s *StatusPoster) Emit(e Event) {
	if e.Kind == EventProgress {
		select {
		case s.queue <- e:
		default:
		}
		return
	}
	select {
	case s.queue <- e:
	case <-time.After(2 * time.Second):
		s.mu.Lock()
		s.failures++
		s.mu.Unlock()
	}
}

// Close flushes queued events, waiting at most the given time, and reports how many were lost.
func (s *StatusPoster) Close(wait time.Duration) (lost int) {
	close(s.queue)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failures
}

func (s *StatusPoster) loop() {
	defer s.wg.Done()
	for e := range s.queue {
		if err := s.post(e); err != nil {
			s.mu.Lock()
			s.failures++
			s.mu.Unlock()
		}
	}
}

func (s *StatusPoster) post(e Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	delay := s.Backoff
	var last error
	for attempt := 0; attempt <= s.Retries; attempt++ {
		if attempt > 0 {
			time.Sleep(delay)
			delay *= 2
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.Client.Timeout)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
		if err != nil {
			cancel()
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := s.Client.Do(req)
		cancel()
		err = image.WithoutURL(err)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 300 {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
			if resp.StatusCode < 500 {
				return err
			}
		}
		last = err
		if e.Kind == EventProgress {
			break
		}
	}
	return fmt.Errorf("post status to %s: %w", image.RedactRawURL(s.URL), last)
}
