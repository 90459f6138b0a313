package stages

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/internal/backoff"
)

// StatusPoster posts to nodeinit.status_url as JSON. Made by NewResultPoster,
// it posts the run's Result once, when the run ends (EndsRun), and with
// nodeinit.status_stages every stage transition as well; made by
// NewStatusPoster, it posts every event. Events go one request each from a
// bounded queue, so a slow or dead server never stalls the install:
// progress events are dropped when the queue is full, start/done/failed are
// retried. The result is posted in the caller's goroutine, retried with
// jittered backoff within ResultWait, so that the machine does not reboot
// before it has left, nor wait for a dead server for longer than that.
//
// Every request follows image.CheckRedirect (no downgrade from https, at
// most image.MaxRedirects hops), and no error names the URL's credentials.
type StatusPoster struct {
	URL     string
	Client  *http.Client
	Retries int           // per event; default 3
	Backoff time.Duration // first retry delay, doubled each time; default 500ms
	// ResultRetries and ResultWait bound the result's posting: at most
	// ResultRetries retries (default 6), waiting at most ResultWait in all
	// (default 30s).
	ResultRetries int
	ResultWait    time.Duration
	// Rand draws the backoff's jitter; nil means math/rand/v2.
	Rand func() float64

	queue    chan Event
	wg       sync.WaitGroup
	mu       sync.Mutex
	failures int

	result     *ResultRecorder // nil: every event is posted
	stages     bool            // with a result: post stage transitions too
	resultOnce sync.Once
	resultErr  error
	now        func() time.Time
}

// NewStatusPoster starts the background sender of every event; call Close to flush it.
func NewStatusPoster(url string) *StatusPoster {
	s := &StatusPoster{URL: url, Client: &http.Client{Timeout: 5 * time.Second, CheckRedirect: image.CheckRedirect}, Retries: 3, Backoff: 500 * time.Millisecond,
		ResultRetries: 6, ResultWait: 30 * time.Second, queue: make(chan Event, 64), now: time.Now}
	s.wg.Add(1)
	go s.loop()
	return s
}

// NewResultPoster returns a poster of rec's Result, posted once when the run
// ends; with stages (nodeinit.status_stages), each stage transition is
// posted as well. rec records nothing through the poster: put rec among the
// engine's sinks from the first event on, before the poster (as in
// Fanout{rec, poster}), so the record holds the event that ends the run.
func NewResultPoster(url string, rec *ResultRecorder, stages bool) *StatusPoster {
	s := NewStatusPoster(url)
	s.result, s.stages = rec, stages
	return s
}

// Emit queues e; a progress event is dropped rather than block. With a
// result, an event that ends the run posts the result before Emit returns.
func (s *StatusPoster) Emit(e Event) {
	if s.result != nil {
		if s.stages {
			Transitions{Next: SinkFunc(s.enqueue)}.Emit(e)
		}
		if EndsRun(e) {
			s.PostResult()
		}
		return
	}
	s.enqueue(e)
}

func (s *StatusPoster) enqueue(e Event) {
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

// PostResult posts the result record now, unless it was posted (or tried)
// already: the record leaves once per run. It returns the posting's error.
func (s *StatusPoster) PostResult() error {
	if s.result == nil {
		return nil
	}
	s.resultOnce.Do(func() {
		s.resultErr = s.postResult(s.result.Result(s.now()))
		if s.resultErr != nil {
			s.mu.Lock()
			s.failures++
			s.mu.Unlock()
		}
	})
	return s.resultErr
}

// Close posts the result if no event ended the run (a dry run, a rescue
// shell), flushes queued events, waiting at most the given time for them,
// and reports how many events and records were lost.
func (s *StatusPoster) Close(wait time.Duration) (lost int) {
	s.PostResult()
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
		err := s.send(body, "")
		if err == nil {
			return nil
		}
		var perm *permanentStatus
		if errors.As(err, &perm) {
			return fmt.Errorf("post status to %s: %w", image.RedactRawURL(s.URL), err)
		}
		last = err
		if e.Kind == EventProgress {
			break
		}
	}
	return fmt.Errorf("post status to %s: %w", image.RedactRawURL(s.URL), last)
}

// postResult posts res, retrying server errors and network failures with
// jittered backoff, bounded by ResultRetries and ResultWait.
func (s *StatusPoster) postResult(res Result) error {
	body, err := json.Marshal(res)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.ResultWait)
	defer cancel()
	bo := backoff.Backoff{Policy: backoff.Policy{Min: s.Backoff, Max: 8 * s.Backoff, Retries: s.ResultRetries, Budget: s.ResultWait},
		Rand: s.Rand}
	for {
		err := s.send(body, res.InstallID)
		if err == nil {
			return nil
		}
		var perm *permanentStatus
		if errors.As(err, &perm) {
			return fmt.Errorf("post the result to %s: %w", image.RedactRawURL(s.URL), err)
		}
		if werr := bo.Wait(ctx); werr != nil {
			return fmt.Errorf("post the result to %s: gave up after %d attempts: %w", image.RedactRawURL(s.URL), bo.Retries()+1, err)
		}
	}
}

// permanentStatus is a server's answer that retrying cannot change (a 4xx
// other than 408 and 429).
type permanentStatus struct{ status string }

func (p *permanentStatus) Error() string { return "status " + p.status }

// send makes one POST of body. key, when set, goes in Idempotency-Key: a
// retried record whose first answer was lost carries the same key, so a
// collector can keep one record per install id.
func (s *StatusPoster) send(body []byte, key string) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.Client.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return &permanentStatus{status: image.WithoutURL(err).Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		// net/http's error carries the URL with its credentials: keep the cause.
		return image.WithoutURL(err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout:
		return fmt.Errorf("status %s", resp.Status)
	default:
		return &permanentStatus{status: resp.Status}
	}
}
