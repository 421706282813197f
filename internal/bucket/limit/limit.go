// Package limit is a bucket.Bucket decorator that bounds the number of
// operations in flight (a semaphore), so that many goroutines can upload
// small objects through one bucket without opening a connection each.
// location.Open puts it around every bucket it opens (inside the retry
// decorator, so a request waiting to be retried holds no slot). A Get
// holds its slot until the reader is closed: a caller holding as many
// readers open as the limit must close one before its next operation.
package limit

import (
	"context"
	"io"
	"sync"

	"github.com/releng-project/releng/internal/bucket"
)

type limited struct {
	b   bucket.Bucket
	sem chan struct{}
}

// New returns b allowing at most n operations at once (n < 1 means 1).
func New(b bucket.Bucket, n int) bucket.Bucket {
	return &limited{b: b, sem: make(chan struct{}, max(n, 1))}
}

func (l *limited) acquire(ctx context.Context) error {
	select {
	case l.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *limited) release() { <-l.sem }

func (l *limited) String() string { return l.b.String() }

func (l *limited) Stat(ctx context.Context, key string) (bucket.ObjectInfo, error) {
	if err := l.acquire(ctx); err != nil {
		return bucket.ObjectInfo{}, err
	}
	defer l.release()
	return l.b.Stat(ctx, key)
}

// Get holds a slot until the returned reader is closed.
func (l *limited) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := l.acquire(ctx); err != nil {
		return nil, err
	}
	rc, err := l.b.Get(ctx, key)
	if err != nil {
		l.release()
		return nil, err
	}
	return &releasingReader{ReadCloser: rc, release: l.release}, nil
}

type releasingReader struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (r *releasingReader) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.release)
	return err
}

func (l *limited) Put(ctx context.Context, key string, body io.Reader, size int64, opts bucket.PutOptions) (bucket.ObjectInfo, error) {
	if err := l.acquire(ctx); err != nil {
		return bucket.ObjectInfo{}, err
	}
	defer l.release()
	return l.b.Put(ctx, key, body, size, opts)
}

func (l *limited) Delete(ctx context.Context, key string) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	return l.b.Delete(ctx, key)
}

func (l *limited) List(ctx context.Context, prefix string, opts bucket.ListOptions) ([]bucket.ObjectInfo, error) {
	if err := l.acquire(ctx); err != nil {
		return nil, err
	}
	defer l.release()
	return l.b.List(ctx, prefix, opts)
}

func (l *limited) PutResumable(ctx context.Context, key string, body io.ReaderAt, size int64, opts bucket.ResumableOptions) (bucket.ObjectInfo, error) {
	if err := l.acquire(ctx); err != nil {
		return bucket.ObjectInfo{}, err
	}
	defer l.release()
	return l.b.PutResumable(ctx, key, body, size, opts)
}

func (l *limited) AbortUpload(ctx context.Context, key, uploadID string) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	return l.b.AbortUpload(ctx, key, uploadID)
}

// HashObject implements bucket.Hasher when the wrapped bucket does.
func (l *limited) HashObject(ctx context.Context, key string) (bucket.ObjectInfo, error) {
	if err := l.acquire(ctx); err != nil {
		return bucket.ObjectInfo{}, err
	}
	defer l.release()
	return bucket.HashObject(ctx, l.b, key)
}

// Leftovers implements bucket.Cleaner when the wrapped bucket does (one
// slot for the whole listing).
func (l *limited) Leftovers(ctx context.Context, objs []bucket.ObjectInfo) ([]bucket.Leftover, error) {
	if err := l.acquire(ctx); err != nil {
		return nil, err
	}
	defer l.release()
	return bucket.Leftovers(ctx, l.b, objs)
}

// RemoveLeftover implements bucket.Cleaner when the wrapped bucket does.
func (l *limited) RemoveLeftover(ctx context.Context, lo bucket.Leftover) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	return bucket.RemoveLeftover(ctx, l.b, lo)
}
