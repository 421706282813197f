package retry

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock advances by each wait at once and records the waits.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

var errTransient = errors.New("transient")

func isTransient(err error) bool { return errors.Is(err, errTransient) }

// failing returns an fn failing with errs[i] on try i+1, then nil.
func failing(errs ...error) (func(int) error, *int) {
	calls := new(int)
	return func(attempt int) error {
		*calls++
		if attempt != *calls {
			panic("attempt numbers out of order")
		}
		if attempt <= len(errs) {
			return errs[attempt-1]
		}
		return nil
	}, calls
}

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

func TestDo(t *testing.T) {
	ra := WithAfter(errTransient, 3*time.Second)
	raHuge := WithAfter(errTransient, time.Hour)
	tests := []struct {
		name      string
		policy    Policy
		errs      []error
		wantErr   bool
		wantCalls int
		// wantWaits are the exact waits, with jitter returning the
		// largest value allowed.
		wantWaits []time.Duration
	}{
		{"success", Policy{}, nil, false, 1, nil},
		{"transient then success", Policy{}, repeat(errTransient, 2), false, 3,
			[]time.Duration{250 * time.Millisecond, 500 * time.Millisecond}},
		{"attempts bounded", Policy{Attempts: 3, Initial: time.Second}, repeat(errTransient, 10), true, 3,
			[]time.Duration{time.Second, 2 * time.Second}},
		{"default attempts", Policy{}, repeat(errTransient, 10), true, DefaultAttempts,
			[]time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second}},
		{"one attempt", Policy{Attempts: 1}, repeat(errTransient, 10), true, 1, nil},
		{"capped by Max", Policy{Attempts: 5, Initial: time.Second, Max: 3 * time.Second}, repeat(errTransient, 10), true, 5,
			[]time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}},
		{"permanent not retried", Policy{}, []error{errors.New("permanent")}, true, 1, nil},
		{"permanent after transient", Policy{}, []error{errTransient, errors.New("permanent")}, true, 2,
			[]time.Duration{250 * time.Millisecond}},
		{"retry-after honoured", Policy{}, []error{ra, ra}, false, 3,
			[]time.Duration{3 * time.Second, 3 * time.Second}},
		{"retry-after capped by Max", Policy{Max: 5 * time.Second}, []error{raHuge}, false, 2,
			[]time.Duration{5 * time.Second}},
		// A minute of 404s (SPEC §8.5): unlimited tries, bounded by
		// MaxElapsed, the last wait shortened to end at it.
		{"max elapsed", Policy{Attempts: -1, Initial: 10 * time.Second, Max: 25 * time.Second, MaxElapsed: time.Minute}, repeat(errTransient, 100), true, 5,
			[]time.Duration{10 * time.Second, 20 * time.Second, 25 * time.Second, 5 * time.Second}},
		{"max elapsed and attempts", Policy{Attempts: 2, MaxElapsed: time.Hour}, repeat(errTransient, 100), true, 2,
			[]time.Duration{250 * time.Millisecond}},
		{"negative attempts without max elapsed", Policy{Attempts: -1}, repeat(errTransient, 100), true, DefaultAttempts, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{now: time.Unix(1e9, 0)}
			p := tc.policy
			p.clk = clk
			p.jitter = func(n int64) int64 { return n - 1 } // the longest wait
			fn, calls := failing(tc.errs...)
			var events []Event
			err := p.Do(context.Background(), isTransient, fn, func(e Event) { events = append(events, e) })
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v; want error %v", err, tc.wantErr)
			}
			if *calls != tc.wantCalls {
				t.Errorf("%d calls; want %d", *calls, tc.wantCalls)
			}
			if tc.wantWaits != nil && !equal(clk.waits, tc.wantWaits) {
				t.Errorf("waits %v; want %v", clk.waits, tc.wantWaits)
			}
			if len(events) != len(clk.waits) {
				t.Fatalf("%d events for %d waits", len(events), len(clk.waits))
			}
			for i, e := range events {
				if e.Attempt != i+1 || e.Wait != clk.waits[i] || e.Err == nil || e.Reason != e.Err.Error() {
					t.Errorf("event %d = %+v", i, e)
				}
				if e.RetryAfter != (After(e.Err) > 0) {
					t.Errorf("event %d: RetryAfter = %v for %v", i, e.RetryAfter, e.Err)
				}
			}
		})
	}
}

func equal(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestJitter: with the real random source, every wait lies between 0 and
// its nominal value, and the waits are spread over that range.
func TestJitter(t *testing.T) {
	p := Policy{Attempts: 8, Initial: 100 * time.Millisecond, Max: 800 * time.Millisecond}
	low, high := 0, 0
	for range 200 {
		clk := &fakeClock{}
		p.clk = clk
		fn, _ := failing(repeat(errTransient, 10)...)
		_ = p.Do(context.Background(), isTransient, fn, nil)
		if len(clk.waits) != 7 {
			t.Fatalf("%d waits; want 7", len(clk.waits))
		}
		for i, w := range clk.waits {
			nominal := p.Nominal(i + 1)
			if w < 0 || w > nominal {
				t.Fatalf("wait %d = %s; want within [0, %s]", i+1, w, nominal)
			}
			if w < nominal/4 {
				low++
			}
			if w > nominal*3/4 {
				high++
			}
		}
	}
	// 1400 draws: each quarter gets about 350.
	if low < 200 || high < 200 {
		t.Errorf("waits are not spread over [0, nominal]: %d in the lowest quarter, %d in the highest", low, high)
	}
}

func TestNominal(t *testing.T) {
	p := Policy{Initial: time.Second, Max: 10 * time.Second}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		if got := p.Nominal(i + 1); got != w {
			t.Errorf("Nominal(%d) = %s; want %s", i+1, got, w)
		}
	}
	if got := (Policy{}).Nominal(1000); got != DefaultMax {
		t.Errorf("Nominal(1000) = %s; want %s", got, DefaultMax)
	}
}

// TestCancel: cancelling ctx ends a wait at once, and the error says both
// what failed and why it was not retried.
func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := Policy{Attempts: 10, Initial: time.Hour, Max: time.Hour}
	calls := 0
	done := make(chan error)
	go func() {
		done <- p.Do(ctx, isTransient, func(int) error {
			calls++
			return errTransient
		}, func(Event) { cancel() })
	}()
	select {
	case err := <-done:
		if !errors.Is(err, errTransient) || !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v; want it to wrap the failure and context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Do did not stop waiting when ctx was cancelled")
	}
	if calls != 1 {
		t.Errorf("%d calls; want 1", calls)
	}
	// A context that has already ended: no wait at all.
	err := p.Do(ctx, isTransient, func(int) error { return errTransient }, func(Event) { t.Error("a retry was announced") })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v; want context.Canceled", err)
	}
}

// TestRealWaits: small real durations, end to end.
func TestRealWaits(t *testing.T) {
	p := Policy{Attempts: 4, Initial: time.Millisecond, Max: 4 * time.Millisecond}
	start := time.Now()
	fn, calls := failing(repeat(errTransient, 3)...)
	if err := p.Do(context.Background(), isTransient, fn, nil); err != nil || *calls != 4 {
		t.Fatalf("err = %v after %d calls", err, *calls)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"99999999999999", 24 * time.Hour, true},
		{"Sat, 01 Mar 2025 12:00:30 GMT", 30 * time.Second, true},
		{"Sat, 01 Mar 2025 11:00:00 GMT", 0, true},
		{"Saturday, 01-Mar-25 12:01:00 GMT", time.Minute, true},
		{"", 0, false},
		{"-3", 0, false},
		{"soon", 0, false},
		{"1.5", 0, false},
	}
	for _, tc := range tests {
		got, ok := ParseRetryAfter(tc.v, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}

func TestResponseDelay(t *testing.T) {
	resp := func(status int, ra string) *http.Response {
		h := http.Header{}
		if ra != "" {
			h.Set("Retry-After", ra)
		}
		return &http.Response{StatusCode: status, Header: h}
	}
	tests := []struct {
		resp *http.Response
		want time.Duration
	}{
		{resp(429, "4"), 4 * time.Second},
		{resp(503, "2"), 2 * time.Second},
		{resp(503, ""), 0},
		{resp(500, "4"), 0}, // only 429 and 503 ask to come back later
		{resp(301, "4"), 0},
		{nil, 0},
	}
	for _, tc := range tests {
		if got := ResponseDelay(tc.resp); got != tc.want {
			t.Errorf("ResponseDelay(%v) = %s; want %s", tc.resp, got, tc.want)
		}
	}
}

func TestAfter(t *testing.T) {
	base := errors.New("slow down")
	err := WithAfter(base, 5*time.Second)
	wrapped := errors.Join(errors.New("context"), err)
	if After(err) != 5*time.Second || After(wrapped) != 5*time.Second || !errors.Is(wrapped, base) {
		t.Error("After does not find the delay through wrapping")
	}
	if After(base) != 0 || After(nil) != 0 || WithAfter(base, 0) != base || WithAfter(nil, time.Second) != nil {
		t.Error("no delay is not 0")
	}
	if err.Error() != base.Error() {
		t.Errorf("WithAfter changed the message: %q", err)
	}
}

func TestEventString(t *testing.T) {
	e := Event{Op: "put", URL: "s3://b/k", Attempt: 2, Wait: 1234567 * time.Microsecond, Reason: "server answered 503"}
	if got := e.String(); got != "retrying put of s3://b/k in 1.235s (try 2 failed: server answered 503)" {
		t.Errorf("String() = %q", got)
	}
	e.RetryAfter = true
	if !strings.Contains(e.String(), "as the server asked") {
		t.Errorf("String() = %q does not say the server chose the wait", e.String())
	}
}

// TestOnRetryFromContext: without a hook of its own, Do reports to the
// one attached to ctx; an explicit hook wins.
func TestOnRetryFromContext(t *testing.T) {
	var fromCtx, explicit int
	ctx := WithOnRetry(context.Background(), func(Event) { fromCtx++ })
	p := Policy{Attempts: 3, Initial: time.Microsecond}
	fn, _ := failing(repeat(errTransient, 2)...)
	if err := p.Do(ctx, isTransient, fn, nil); err != nil || fromCtx != 2 {
		t.Errorf("err %v, %d events from ctx; want 2", err, fromCtx)
	}
	fn, _ = failing(repeat(errTransient, 2)...)
	if err := p.Do(ctx, isTransient, fn, func(Event) { explicit++ }); err != nil || explicit != 2 || fromCtx != 2 {
		t.Errorf("err %v, %d explicit and %d ctx events; want 2 and still 2", err, explicit, fromCtx)
	}
	if OnRetryFrom(context.Background()) != nil {
		t.Error("a bare context has a hook")
	}
}
