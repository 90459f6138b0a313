// Package backoff spaces out retries: exponential waits with jitter, bounded
// in count and in total time. Forty nodes that lose the same server at the
// same moment must not all come back at the same moment, and no node may
// retry for ever.
//
// The n-th wait (n from 1) is drawn uniformly from [c/2, c], where
// c = min(Max, Min·2^(n-1)) ("equal jitter"): half of each wait is spread
// across the fleet, and the other half is a floor that no node goes below,
// so a server sees retries no faster than Floor(n) apart.
package backoff

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Policy bounds a series of retries. A zero field takes the default named
// on it.
type Policy struct {
	// Min is the ceiling of the first wait (default 500ms); each retry
	// doubles it up to Max (default 15s).
	Min, Max time.Duration
	// Retries is how many waits a series may make (default 6).
	Retries int
	// Budget is the most time the waits of a series may add up to (default
	// 2 minutes); a wait that would overrun it is not made.
	Budget time.Duration
}

func (p Policy) withDefaults() Policy {
	if p.Min <= 0 {
		p.Min = 500 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 15 * time.Second
	}
	p.Max = max(p.Max, p.Min)
	if p.Retries <= 0 {
		p.Retries = 6
	}
	if p.Budget <= 0 {
		p.Budget = 2 * time.Minute
	}
	return p
}

// Ceiling is the longest the n-th wait (n from 1) may be: Min·2^(n-1),
// capped at Max.
func (p Policy) Ceiling(n int) time.Duration {
	p = p.withDefaults()
	d := p.Min
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// Floor is the shortest the n-th wait may be: half its ceiling.
func (p Policy) Floor(n int) time.Duration { return p.Ceiling(n) / 2 }

// ErrExhausted is returned by Wait when the policy allows no more retries.
var ErrExhausted = errors.New("retries exhausted")

// Backoff is one series of retries under a Policy. The zero value with a
// Policy set is ready; it is not safe for concurrent use.
type Backoff struct {
	Policy Policy
	// Rand returns a number in [0, 1); nil means math/rand/v2. Tests inject
	// their own to make the waits deterministic.
	Rand func() float64

	n      int
	waited time.Duration
}

// New returns a series under p.
func New(p Policy) *Backoff { return &Backoff{Policy: p} }

// Next returns the wait before the next retry and counts it, or false when
// the count or the time budget is spent.
func (b *Backoff) Next() (time.Duration, bool) {
	p := b.Policy.withDefaults()
	if b.n >= p.Retries {
		return 0, false
	}
	c := p.Ceiling(b.n + 1)
	r := b.Rand
	if r == nil {
		r = rand.Float64
	}
	d := c/2 + time.Duration(r()*float64(c-c/2))
	if b.waited+d > p.Budget {
		return 0, false
	}
	b.n++
	b.waited += d
	return d, true
}

// Wait sleeps for the next wait. It returns ErrExhausted when no retry is
// left, or ctx's error when ctx ends first.
func (b *Backoff) Wait(ctx context.Context) error {
	d, ok := b.Next()
	if !ok {
		return ErrExhausted
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Retries is how many waits the series has made.
func (b *Backoff) Retries() int { return b.n }

// Waited is the time the series has waited in all.
func (b *Backoff) Waited() time.Duration { return b.waited }

// Reset starts a new series, after progress: the count and the time budget
// start again.
func (b *Backoff) Reset() { b.n, b.waited = 0, 0 }
