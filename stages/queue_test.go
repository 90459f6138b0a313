package stages

import (
	"fmt"
	"sync"
	"testing"
)

// gatedSink records events, each only once the test lets it through gate.
type gatedSink struct {
	gate chan struct{}
	mu   sync.Mutex
	got  []string
}

func (g *gatedSink) Emit(e Event) {
	<-g.gate
	g.mu.Lock()
	g.got = append(g.got, e.Message)
	g.mu.Unlock()
}

func (g *gatedSink) messages() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.got...)
}

// TestQueueEmitDoesNotWaitForTheSink: with the sink stuck, every Emit still
// returns; once the sink moves, Flush returns with every event passed on, in
// the order emitted.
func TestQueueEmitDoesNotWaitForTheSink(t *testing.T) {
	sink := &gatedSink{gate: make(chan struct{})}
	q := NewQueue(sink)
	const n = 100
	for i := range n {
		q.Emit(Event{Message: fmt.Sprint(i)}) // would hang here if Emit waited for the sink
	}
	if got := sink.messages(); len(got) != 0 {
		t.Fatalf("the stuck sink already has %d events", len(got))
	}
	close(sink.gate)
	q.Flush()
	got := sink.messages()
	if len(got) != n {
		t.Fatalf("after Flush the sink has %d events, want %d", len(got), n)
	}
	for i, m := range got {
		if m != fmt.Sprint(i) {
			t.Fatalf("event %d is %q: out of order", i, m)
		}
	}
	q.Close()
}

// TestQueueCloseDrainsThenDrops: Close passes on what was queued, and an
// event emitted after Close reaches no one (and does not panic).
func TestQueueCloseDrainsThenDrops(t *testing.T) {
	gate := make(chan struct{})
	sink := &gatedSink{gate: gate}
	q := NewQueue(sink)
	q.Emit(Event{Message: "a"})
	q.Emit(Event{Message: "b"})
	closed := make(chan struct{})
	go func() { q.Close(); close(closed) }()
	close(gate)
	<-closed
	q.Emit(Event{Message: "late"})
	q.Flush() // returns at once on a stopped queue
	if got := sink.messages(); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("sink got %q, want [a b]", got)
	}
}

// TestQueueConcurrentEmitters: events from several goroutines all arrive, and
// each goroutine's own events keep their order.
func TestQueueConcurrentEmitters(t *testing.T) {
	sink := &gatedSink{gate: make(chan struct{})}
	close(sink.gate)
	q := NewQueue(sink)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				q.Emit(Event{Message: fmt.Sprintf("%d/%d", g, i)})
			}
		}()
	}
	wg.Wait()
	q.Close()
	got := sink.messages()
	if len(got) != 200 {
		t.Fatalf("sink got %d events, want 200", len(got))
	}
	next := map[int]int{}
	for _, m := range got {
		var g, i int
		fmt.Sscanf(m, "%d/%d", &g, &i)
		if i != next[g] {
			t.Fatalf("goroutine %d: event %d came when %d was next", g, i, next[g])
		}
		next[g]++
	}
}
