// Package retry is a bucket.Bucket decorator that retries operations
// failing with transient errors (bucket.IsTransient: connection resets,
// 5xx, 429, timeouts) under the shared retry policy (internal/retry:
// exponential backoff with full jitter, a server's Retry-After honoured).
// location.Open puts it around every bucket it opens.
//
// A Put is retried only if its body can start over: a bucket.Rewinder
// (such as bucket.Reopen, for a stream that can be produced again) or an
// io.Seeker, rewound to where it was when Put was called. Any other body
// is retried only if the failed attempt read none of it; otherwise Put
// fails with bucket.ErrNotRewindable rather than risk sending a truncated
// object. A PutResumable is retried from where it stopped: the decorator
// passes the parts reported so far as the state of the next attempt. Get
// retries opening the object, not reads from it. HashObject is forwarded
// (and retried) when the wrapped bucket is a bucket.Hasher, Leftovers and
// RemoveLeftover when it is a bucket.Cleaner.
package retry

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/retry"
)

// Event describes a failure that is about to be retried; Op is the bucket
// operation ("stat", "get", "put", "delete", "list", "abort upload",
// "hash"), URL the object's.
type Event = retry.Event

// Options configure the decorator.
type Options struct {
	// Policy is the retry schedule (zero: the defaults).
	Policy retry.Policy
	// OnRetry, if set, is told about each retry (the CLI logs them).
	OnRetry func(Event)
	// Host is the server, for the events ("" for a local directory).
	Host string
}

type retrying struct {
	b    bucket.Bucket
	opts Options
}

// New returns b with retries.
func New(b bucket.Bucket, opts Options) bucket.Bucket { return &retrying{b: b, opts: opts} }

func (r *retrying) String() string { return r.b.String() }

func (r *retrying) do(ctx context.Context, op, key string, fn func() error) error {
	var onRetry func(Event)
	if r.opts.OnRetry != nil {
		url := bucket.ObjectURL(r.b, key)
		onRetry = func(e Event) {
			e.Op, e.URL, e.Host = op, url, r.opts.Host
			r.opts.OnRetry(e)
		}
	}
	return r.opts.Policy.Do(ctx, bucket.IsTransient, func(int) error { return fn() }, onRetry)
}

func (r *retrying) Stat(ctx context.Context, key string) (info bucket.ObjectInfo, err error) {
	err = r.do(ctx, "stat", key, func() (err error) {
		info, err = r.b.Stat(ctx, key)
		return err
	})
	return info, err
}

func (r *retrying) Get(ctx context.Context, key string) (rc io.ReadCloser, err error) {
	err = r.do(ctx, "get", key, func() (err error) {
		rc, err = r.b.Get(ctx, key)
		return err
	})
	return rc, err
}

func (r *retrying) Delete(ctx context.Context, key string) error {
	return r.do(ctx, "delete", key, func() error { return r.b.Delete(ctx, key) })
}

func (r *retrying) List(ctx context.Context, prefix string, opts bucket.ListOptions) (out []bucket.ObjectInfo, err error) {
	err = r.do(ctx, "list", prefix, func() (err error) {
		out, err = r.b.List(ctx, prefix, opts)
		return err
	})
	return out, err
}

// HashObject implements bucket.Hasher when the wrapped bucket does.
func (r *retrying) HashObject(ctx context.Context, key string) (info bucket.ObjectInfo, err error) {
	err = r.do(ctx, "hash", key, func() (err error) {
		info, err = bucket.HashObject(ctx, r.b, key)
		return err
	})
	return info, err
}

// Leftovers implements bucket.Cleaner when the wrapped bucket does.
func (r *retrying) Leftovers(ctx context.Context, objs []bucket.ObjectInfo) (out []bucket.Leftover, err error) {
	err = r.do(ctx, "list leftovers", "", func() (err error) {
		out, err = bucket.Leftovers(ctx, r.b, objs)
		return err
	})
	return out, err
}

// RemoveLeftover implements bucket.Cleaner when the wrapped bucket does.
func (r *retrying) RemoveLeftover(ctx context.Context, l bucket.Leftover) error {
	return r.do(ctx, "remove leftover", l.Key, func() error { return bucket.RemoveLeftover(ctx, r.b, l) })
}

func (r *retrying) AbortUpload(ctx context.Context, key, uploadID string) error {
	return r.do(ctx, "abort upload", key, func() error { return r.b.AbortUpload(ctx, key, uploadID) })
}

// counter counts the bytes read from a body.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (r *retrying) Put(ctx context.Context, key string, body io.Reader, size int64, opts bucket.PutOptions) (info bucket.ObjectInfo, err error) {
	rewind, _ := bucket.Rewind(body)
	attempt := 0
	err = r.do(ctx, "put", key, func() (err error) {
		attempt++
		if attempt > 1 && rewind != nil {
			if err := rewind(); err != nil {
				return bucket.Permanent(fmt.Errorf("rewind the body of %s to retry: %w", bucket.ObjectURL(r.b, key), err))
			}
		}
		c := &counter{r: body}
		info, err = r.b.Put(ctx, key, c, size, opts)
		if err != nil && rewind == nil && c.n > 0 && bucket.IsTransient(err) {
			return bucket.Permanent(fmt.Errorf("%w (not retried: %d bytes of the body were consumed): %w", bucket.ErrNotRewindable, c.n, err))
		}
		return err
	})
	return info, err
}

func (r *retrying) PutResumable(ctx context.Context, key string, body io.ReaderAt, size int64, opts bucket.ResumableOptions) (info bucket.ObjectInfo, err error) {
	// Track the state as the attempts report it, and resume from it.
	var mu sync.Mutex
	st := opts.State
	st.Parts = slices.Clone(st.Parts)
	inner := opts
	inner.OnStart = func(s bucket.UploadState) error {
		mu.Lock()
		st = s
		st.Parts = nil
		mu.Unlock()
		if opts.OnStart != nil {
			return opts.OnStart(s)
		}
		return nil
	}
	inner.OnPart = func(p bucket.Part) error {
		mu.Lock()
		st.Parts = append(st.Parts, p)
		mu.Unlock()
		if opts.OnPart != nil {
			return opts.OnPart(p)
		}
		return nil
	}
	err = r.do(ctx, "put", key, func() (err error) {
		mu.Lock()
		inner.State = st
		inner.State.Parts = slices.Clone(st.Parts)
		mu.Unlock()
		info, err = r.b.PutResumable(ctx, key, body, size, inner)
		return err
	})
	return info, err
}
