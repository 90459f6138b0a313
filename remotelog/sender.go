package remotelog

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/nodeinit/nodeinit/internal/backoff"
	"github.com/nodeinit/nodeinit/stages"
)

// sender delivers one collector's queue from its own goroutine.
type sender struct {
	target   Target
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	identity func() Identity
	bo       backoff.Backoff

	mu      sync.Mutex
	queue   []stages.Event // oldest first, at most max
	max     int
	dropped int
	closing bool

	wake   chan struct{} // an event was queued, or NetworkUp
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func newSender(t Target, o Options, identity func() Identity) *sender {
	ctx, cancel := context.WithCancel(context.Background())
	return &sender{target: t, dial: o.Dial, identity: identity, max: o.QueueSize,
		bo:   backoff.Backoff{Policy: o.Backoff, Rand: o.Rand},
		wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// push queues e, dropping the oldest event when the queue is full.
func (s *sender) push(e stages.Event) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	if len(s.queue) >= s.max {
		s.queue = s.queue[1:]
		s.dropped++
	}
	s.queue = append(s.queue, e)
	s.mu.Unlock()
	s.signal()
}

func (s *sender) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// kick ends the current backoff wait: the network came up.
func (s *sender) kick() {
	s.mu.Lock()
	s.bo.Reset()
	s.mu.Unlock()
	s.signal()
}

// queued is how many events wait, counting the one being sent.
func (s *sender) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

func (s *sender) droppedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// front is the oldest queued event.
func (s *sender) front() (stages.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return stages.Event{}, false
	}
	return s.queue[0], true
}

func (s *sender) pop() {
	s.mu.Lock()
	if len(s.queue) > 0 {
		s.queue = s.queue[1:]
	}
	s.mu.Unlock()
}

// loop connects, sends the queue in order and, when the collector cannot
// be reached or a write fails, waits as the backoff says (or until kicked)
// and tries again, keeping the event it could not send.
func (s *sender) loop() {
	defer close(s.done)
	var conn net.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for {
		e, ok := s.front()
		if !ok {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return
			}
			select {
			case <-s.wake:
			case <-s.ctx.Done():
				return
			}
			continue
		}
		if conn == nil {
			c, err := s.dial(s.ctx, s.target.Network, s.target.Addr)
			if err != nil {
				if !s.pause() {
					return
				}
				continue
			}
			conn = c
		}
		conn.SetWriteDeadline(time.Now().Add(3 * time.Second))
		if _, err := conn.Write(s.encode(e)); err != nil {
			conn.Close()
			conn = nil
			if !s.pause() {
				return
			}
			continue
		}
		s.pop()
		s.mu.Lock()
		s.bo.Reset()
		s.mu.Unlock()
	}
}

// pause waits out the backoff, or a kick; false when the sender is stopped.
func (s *sender) pause() bool {
	s.mu.Lock()
	d, ok := s.bo.Next()
	if !ok {
		s.bo.Reset()
		d, _ = s.bo.Next()
	}
	s.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.wake:
	case <-s.ctx.Done():
		return false
	}
	return true
}

// encode frames e for the target.
func (s *sender) encode(e stages.Event) []byte {
	id := s.identity()
	switch {
	case s.target.Format == Text:
		return []byte(TextLine(e) + "\n")
	case s.target.Network == "tcp":
		return OctetCounted(Message(e, id))
	default:
		return TruncateUDP(Message(e, id))
	}
}

// close lets the queue drain for at most wait, then stops the sender and
// counts what was left.
func (s *sender) close(wait time.Duration) int {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.signal()
	t := time.NewTimer(max(wait, 0))
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		s.cancel()
		<-s.done
	}
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped + len(s.queue)
}
