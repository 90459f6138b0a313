package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWaitsStayWithinFloorAndCeiling(t *testing.T) {
	p := Policy{Min: 100 * time.Millisecond, Max: time.Second, Retries: 8, Budget: time.Hour}
	for _, r := range []float64{0, 0.5, 0.999999} {
		b := &Backoff{Policy: p, Rand: func() float64 { return r }}
		for n := 1; n <= 8; n++ {
			d, ok := b.Next()
			if !ok {
				t.Fatalf("rand %v: retry %d refused", r, n)
			}
			if d < p.Floor(n) || d > p.Ceiling(n) {
				t.Errorf("rand %v: wait %d = %s, outside [%s, %s]", r, n, d, p.Floor(n), p.Ceiling(n))
			}
		}
		if _, ok := b.Next(); ok {
			t.Errorf("rand %v: a 9th retry was allowed with Retries 8", r)
		}
	}
}

func TestCeilingDoublesToMax(t *testing.T) {
	p := Policy{Min: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := p.Ceiling(i + 1); got != w*time.Millisecond {
			t.Errorf("Ceiling(%d) = %s, want %s", i+1, got, w*time.Millisecond)
		}
	}
}

func TestJitterSpreadsNodes(t *testing.T) {
	p := Policy{Min: time.Second, Max: time.Second}
	lo := (&Backoff{Policy: p, Rand: func() float64 { return 0 }})
	hi := (&Backoff{Policy: p, Rand: func() float64 { return 0.99 }})
	a, _ := lo.Next()
	b, _ := hi.Next()
	if a != 500*time.Millisecond || b < 990*time.Millisecond {
		t.Errorf("waits %s and %s: the jitter does not span [Max/2, Max]", a, b)
	}
}

func TestBudgetBoundsTotalWait(t *testing.T) {
	p := Policy{Min: time.Second, Max: time.Second, Retries: 100, Budget: 3 * time.Second}
	b := &Backoff{Policy: p, Rand: func() float64 { return 0.999 }}
	n := 0
	for {
		if _, ok := b.Next(); !ok {
			break
		}
		n++
	}
	if n != 3 || b.Waited() > p.Budget {
		t.Errorf("%d waits, %s in all; want 3 within %s", n, b.Waited(), p.Budget)
	}
	b.Reset()
	if _, ok := b.Next(); !ok || b.Retries() != 1 {
		t.Error("Reset did not start a new series")
	}
}

func TestWaitExhaustedAndCancelled(t *testing.T) {
	b := &Backoff{Policy: Policy{Min: time.Millisecond, Retries: 1}, Rand: func() float64 { return 0 }}
	if err := b.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(context.Background()); !errors.Is(err, ErrExhausted) {
		t.Fatalf("second Wait = %v, want ErrExhausted", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b = &Backoff{Policy: Policy{Min: time.Hour, Max: time.Hour, Budget: 2 * time.Hour}}
	if err := b.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on a cancelled context = %v", err)
	}
}
