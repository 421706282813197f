package bucket

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff retries an operation with exponential backoff while it fails
// with a transient error (IsTransient). The zero value means the defaults.
type Backoff struct {
	// Attempts is the number of tries in all (default 5; 1 disables
	// retrying).
	Attempts int
	// Initial is the wait before the second try (default 250ms); each
	// further wait doubles, up to Max (default 20s). Each wait is drawn
	// between half and all of its nominal value (jitter).
	Initial, Max time.Duration
	// OnRetry, if set, is told about each failure that will be retried,
	// and how long the wait is.
	OnRetry func(attempt int, err error, wait time.Duration)
}

func (b Backoff) withDefaults() Backoff {
	if b.Attempts <= 0 {
		b.Attempts = 5
	}
	if b.Initial <= 0 {
		b.Initial = 250 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 20 * time.Second
	}
	return b
}

// Do calls fn until it succeeds, fails with an error that is not
// transient, the attempts are used up, or ctx ends; it returns fn's last
// error (or ctx's, if ctx ended while waiting).
func (b Backoff) Do(ctx context.Context, fn func(attempt int) error) error {
	b = b.withDefaults()
	wait := b.Initial
	for attempt := 1; ; attempt++ {
		err := fn(attempt)
		if err == nil || attempt >= b.Attempts || !IsTransient(err) || ctx.Err() != nil {
			return err
		}
		d := wait/2 + rand.N(wait/2+1)
		if b.OnRetry != nil {
			b.OnRetry(attempt, err, d)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait *= 2
		if wait > b.Max {
			wait = b.Max
		}
	}
}
