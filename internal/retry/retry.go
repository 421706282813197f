// Package retry is releng's one retry policy (SPEC §10.4): bounded
// exponential backoff with full jitter that honours a server's
// Retry-After. The buckets (the bucket/retry decorator and the S3 requests
// below it), the binary cache and the registry pushes of internal/image all
// retry through a Policy; what is worth retrying is the caller's
// classifier (bucket.IsTransient for object stores, registry.Transient
// for registries).
//
// The package prints nothing: each retry is reported as an Event, which
// the CLI renders.
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Defaults of a Policy's zero fields.
const (
	DefaultAttempts = 5
	DefaultInitial  = 250 * time.Millisecond
	DefaultMax      = 20 * time.Second
)

// Policy says how often and how long to retry.
type Policy struct {
	// Attempts is the number of tries in all: 0 means DefaultAttempts, 1
	// disables retrying, and a negative number means no limit but
	// MaxElapsed (DefaultAttempts when MaxElapsed is not set either).
	Attempts int
	// Initial is the nominal wait after the first failure (default
	// DefaultInitial); each further nominal wait doubles, up to Max
	// (default DefaultMax). The wait actually taken is drawn uniformly
	// between zero and the nominal wait ("full jitter"), so that clients
	// failing together do not retry together. A server's Retry-After
	// replaces the drawn wait, capped by Max.
	Initial, Max time.Duration
	// MaxElapsed, if set, bounds the time from the first try to the last:
	// a wait is shortened to end at MaxElapsed, and no try starts after
	// it.
	MaxElapsed time.Duration

	// clk and jitter replace time and randomness in tests.
	clk    clock
	jitter func(n int64) int64
}

// clock is the time source of Do.
type clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) After(d time.Duration) <-chan time.Time {
	// A fresh timer per wait; since Go 1.23 an unreferenced timer is
	// collected even if it has not fired.
	return time.NewTimer(d).C
}

// WithDefaults returns p with its zero fields set to the defaults.
func (p Policy) WithDefaults() Policy {
	if p.Attempts == 0 || (p.Attempts < 0 && p.MaxElapsed <= 0) {
		p.Attempts = DefaultAttempts
	}
	if p.Initial <= 0 {
		p.Initial = DefaultInitial
	}
	if p.Max <= 0 {
		p.Max = DefaultMax
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	if p.clk == nil {
		p.clk = realClock{}
	}
	if p.jitter == nil {
		p.jitter = rand.Int64N
	}
	return p
}

// Nominal is the nominal wait after the failure of try attempt (1 for the
// first): Initial doubled attempt-1 times, at most Max.
func (p Policy) Nominal(attempt int) time.Duration {
	p = p.WithDefaults()
	d := p.Initial
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// Event describes a failure that is about to be retried.
type Event struct {
	// Op is what failed: "stat", "put", … for a bucket; "blob upload",
	// "manifest put", "index put" … for a registry.
	Op string `json:"op,omitempty"`
	// URL is what it failed on: an object's URL (s3://bucket/key,
	// file:///dir/key, https://host/key) or an image reference. It never
	// holds credentials.
	URL string `json:"url,omitempty"`
	// Host is the server ("host:port"); empty for a local directory.
	Host string `json:"host,omitempty"`
	// Attempt is the try that failed, 1 for the first.
	Attempt int `json:"attempt"`
	// Wait is the time until the next try.
	Wait time.Duration `json:"wait_ns"`
	// RetryAfter reports that Wait is the server's Retry-After (capped
	// by the policy's Max).
	RetryAfter bool `json:"retry_after,omitempty"`
	// Reason is the error text (Err.Error()).
	Reason string `json:"error"`
	// Err is the failure.
	Err error `json:"-"`
}

// String renders the event for a log line: "retrying put of
// s3://b/k in 1.2s (try 2 failed: …)".
func (e Event) String() string {
	var b strings.Builder
	b.WriteString("retrying")
	if e.Op != "" {
		b.WriteString(" " + e.Op)
	}
	if e.URL != "" {
		if e.Op != "" {
			b.WriteString(" of")
		}
		b.WriteString(" " + e.URL)
	}
	fmt.Fprintf(&b, " in %s", e.Wait.Round(time.Millisecond))
	if e.RetryAfter {
		b.WriteString(" (as the server asked)")
	}
	fmt.Fprintf(&b, " (try %d failed: %s)", e.Attempt, e.Reason)
	return b.String()
}

// Do calls fn with the number of the try (from 1) until it returns nil,
// returns an error retryable says is not worth retrying, the tries or
// MaxElapsed are used up, or ctx ends. Before each wait it calls onRetry
// with the Event (Op, URL and Host are left for the caller to fill in);
// a nil onRetry means the one attached to ctx with WithOnRetry, if any.
// Do returns fn's last error; when ctx ends during a wait, an error that
// wraps both fn's last error and ctx's.
func (p Policy) Do(ctx context.Context, retryable func(error) bool, fn func(attempt int) error, onRetry func(Event)) error {
	p = p.WithDefaults()
	if onRetry == nil {
		onRetry = OnRetryFrom(ctx)
	}
	start := p.clk.Now()
	for attempt := 1; ; attempt++ {
		err := fn(attempt)
		if err == nil || !retryable(err) || (p.Attempts > 0 && attempt >= p.Attempts) {
			return err
		}
		if ctx.Err() != nil {
			return stopped(err, ctx)
		}
		wait, fromServer := p.wait(attempt, err)
		if p.MaxElapsed > 0 {
			left := p.MaxElapsed - p.clk.Now().Sub(start)
			if left <= 0 {
				return err
			}
			wait = min(wait, left)
		}
		if onRetry != nil {
			onRetry(Event{Attempt: attempt, Wait: wait, RetryAfter: fromServer, Reason: err.Error(), Err: err})
		}
		select {
		case <-ctx.Done():
			return stopped(err, ctx)
		case <-p.clk.After(wait):
		}
	}
}

type onRetryKey struct{}

// WithOnRetry returns ctx carrying onRetry, which Do calls for the retries
// of code that takes no hook of its own (the registry requests of an image
// push, the requests below a bucket's own retries); the CLI attaches it
// once.
func WithOnRetry(ctx context.Context, onRetry func(Event)) context.Context {
	return context.WithValue(ctx, onRetryKey{}, onRetry)
}

// OnRetryFrom is the hook attached to ctx with WithOnRetry, or nil.
func OnRetryFrom(ctx context.Context) func(Event) {
	f, _ := ctx.Value(onRetryKey{}).(func(Event))
	return f
}

// wait is the wait after the failure of try attempt with err, and whether
// it is the server's Retry-After.
func (p Policy) wait(attempt int, err error) (time.Duration, bool) {
	if d := After(err); d > 0 {
		return min(d, p.Max), true
	}
	return time.Duration(p.jitter(int64(p.Nominal(attempt)) + 1)), false
}

func stopped(err error, ctx context.Context) error {
	return fmt.Errorf("%w (not retried: %w)", err, context.Cause(ctx))
}

// RetryAfter is implemented by errors that carry a server's Retry-After.
type RetryAfter interface {
	// RetryAfter is how long the server asked to wait; 0 if it did not.
	RetryAfter() time.Duration
}

// After is the Retry-After carried by err or an error it wraps, 0 if none.
func After(err error) time.Duration {
	var ra RetryAfter
	if errors.As(err, &ra) {
		return max(ra.RetryAfter(), 0)
	}
	return 0
}

// AfterError adds a server's Retry-After to an error.
type AfterError struct {
	Err   error
	Delay time.Duration
}

func (e *AfterError) Error() string             { return e.Err.Error() }
func (e *AfterError) Unwrap() error             { return e.Err }
func (e *AfterError) RetryAfter() time.Duration { return e.Delay }

// WithAfter returns err carrying the Retry-After delay d; err itself when
// d is not positive.
func WithAfter(err error, d time.Duration) error {
	if err == nil || d <= 0 {
		return err
	}
	return &AfterError{Err: err, Delay: d}
}

// ParseRetryAfter parses a Retry-After header value, a number of seconds
// or an HTTP date (a date in the past is 0, "retry now"), as of now.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		// A silly value must not overflow: a day is more than any Max.
		return time.Duration(min(s, 86400)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// ResponseDelay is the Retry-After of a 429 (Too Many Requests) or 503
// (Service Unavailable) response, 0 for any other response or without a
// valid header.
func ResponseDelay(resp *http.Response) time.Duration {
	if resp == nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return 0
	}
	d, _ := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return d
}
