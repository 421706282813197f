package limit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/bucket/buckettest"
	"github.com/releng-project/releng/internal/bucket/dir"
	"github.com/releng-project/releng/internal/bucket/limit"
)

func newDir(t *testing.T) *dir.Bucket {
	b, err := dir.New(t.TempDir() + "/b")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	buckettest.Run(t, func(t *testing.T) bucket.Bucket { return limit.New(newDir(t), 3) })
}

// gauge records the most operations seen in flight at once.
type gauge struct {
	bucket.Bucket
	cur, peak atomic.Int64
}

func (g *gauge) enter() func() {
	n := g.cur.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	time.Sleep(2 * time.Millisecond)
	return func() { g.cur.Add(-1) }
}

func (g *gauge) Put(ctx context.Context, key string, body io.Reader, size int64, opts bucket.PutOptions) (bucket.ObjectInfo, error) {
	defer g.enter()()
	return g.Bucket.Put(ctx, key, body, size, opts)
}

func (g *gauge) Stat(ctx context.Context, key string) (bucket.ObjectInfo, error) {
	defer g.enter()()
	return g.Bucket.Stat(ctx, key)
}

func TestLimit(t *testing.T) {
	for _, n := range []int{1, 4} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			g := &gauge{Bucket: newDir(t)}
			b := limit.New(g, n)
			var wg sync.WaitGroup
			for i := range 40 {
				wg.Go(func() {
					key := fmt.Sprintf("k%d", i)
					if _, err := b.Put(context.Background(), key, bytes.NewReader([]byte(key)), int64(len(key)), bucket.PutOptions{}); err != nil {
						t.Error(err)
					}
					if _, err := b.Stat(context.Background(), key); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if p := g.peak.Load(); p > int64(n) || p < 1 {
				t.Errorf("peak in flight %d; limit %d", p, n)
			}
		})
	}
}

func TestGetHoldsSlot(t *testing.T) {
	inner := newDir(t)
	buckettest.Put(t, inner, "k", []byte("x"), bucket.PutOptions{})
	b := limit.New(inner, 1)
	rc, err := b.Get(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.Stat(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stat while a Get is open: %v; want to wait for the slot", err)
	}
	rc.Close()
	rc.Close() // a second Close does not free a second slot
	if _, err := b.Stat(context.Background(), "k"); err != nil {
		t.Error(err)
	}
	// A failed Get frees its slot.
	if _, err := b.Get(context.Background(), "missing"); !errors.Is(err, bucket.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := b.Stat(context.Background(), "k"); err != nil {
		t.Error(err)
	}
}
