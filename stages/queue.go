package stages

import "sync"

// Queue passes events on to Next from a goroutine of its own, in the order
// they were emitted, so that a slow sink does not hold up the step that
// emitted the event: a serial port of JSON lines at 115200 baud (nodeinit.events=),
// or the first JSON encoding of the run, which under software emulation costs
// the first step about 0.1 s. Emit never blocks on Next.
//
// Flush waits until Next has every event emitted before it, for a reader of
// what Next wrote (the report stage copying the event log); Close flushes and
// stops, and drops what is emitted after it.
type Queue struct {
	next Sink

	mu      sync.Mutex
	cond    *sync.Cond
	pending []Event
	busy    bool // the goroutine is passing a batch on
	closed  bool // Close was called: Emit drops
	stopped bool // the goroutine has ended
}

// NewQueue starts a Queue in front of next.
func NewQueue(next Sink) *Queue {
	q := &Queue{next: next}
	q.cond = sync.NewCond(&q.mu)
	go q.run()
	return q
}

// Emit queues e for Next.
func (q *Queue) Emit(e Event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.pending = append(q.pending, e)
	q.cond.Broadcast()
}

func (q *Queue) run() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		for len(q.pending) == 0 && !q.closed {
			q.cond.Wait()
		}
		if len(q.pending) == 0 {
			q.stopped = true
			q.cond.Broadcast()
			return
		}
		batch := q.pending
		q.pending, q.busy = nil, true
		q.mu.Unlock()
		for _, e := range batch {
			q.next.Emit(e)
		}
		q.mu.Lock()
		q.busy = false
		q.cond.Broadcast()
	}
}

// Flush returns when Next has been given every event emitted before the call.
func (q *Queue) Flush() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for (len(q.pending) > 0 || q.busy) && !q.stopped {
		q.cond.Wait()
	}
}

// Close flushes the queue and stops its goroutine. Later events are dropped.
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
	for !q.stopped {
		q.cond.Wait()
	}
}
