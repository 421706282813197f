package retry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/bucket/buckettest"
	"github.com/releng-project/releng/internal/bucket/dir"
	"github.com/releng-project/releng/internal/bucket/limit"
	"github.com/releng-project/releng/internal/bucket/retry"
	"github.com/releng-project/releng/internal/bucket/s3"
	"github.com/releng-project/releng/internal/credentials"
	policy "github.com/releng-project/releng/internal/retry"
	"github.com/releng-project/releng/internal/testenv"
)

var fast = policy.Policy{Attempts: 6, Initial: time.Millisecond, Max: 5 * time.Millisecond}

func newDir(t *testing.T) *dir.Bucket {
	b, err := dir.New(t.TempDir() + "/b")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConformance: the decorators stack keeps every guarantee.
func TestConformance(t *testing.T) {
	buckettest.Run(t, func(t *testing.T) bucket.Bucket {
		return retry.New(limit.New(newDir(t), 8), retry.Options{Policy: fast})
	})
}

var errFlaky = &bucket.ServerError{StatusCode: 503, Code: "SlowDown"}

// flaky fails the first failures calls of each operation with err (a
// 503 when nil), after reading consume bytes of a Put's body.
type flaky struct {
	bucket.Bucket
	mu       sync.Mutex
	failures int
	consume  int
	err      error
	calls    map[string]int
}

func (f *flaky) failure() error {
	if f.err != nil {
		return f.err
	}
	return errFlaky
}

func (f *flaky) fail(op string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[op]++
	return f.calls[op] <= f.failures
}

func (f *flaky) Stat(ctx context.Context, key string) (bucket.ObjectInfo, error) {
	if f.fail("stat") {
		return bucket.ObjectInfo{}, f.failure()
	}
	return f.Bucket.Stat(ctx, key)
}

func (f *flaky) Put(ctx context.Context, key string, body io.Reader, size int64, opts bucket.PutOptions) (bucket.ObjectInfo, error) {
	if f.fail("put") {
		io.CopyN(io.Discard, body, int64(f.consume))
		return bucket.ObjectInfo{}, f.failure()
	}
	return f.Bucket.Put(ctx, key, body, size, opts)
}

func TestRetries(t *testing.T) {
	ctx := context.Background()
	data := []byte("0123456789abcdefghij")
	tests := []struct {
		name     string
		body     func() io.Reader
		failures int
		consume  int
		wantErr  error
	}{
		{"seeker", func() io.Reader { return bytes.NewReader(data) }, 3, 5, nil},
		{"reopener", func() io.Reader {
			return bucket.Reopen(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		}, 3, 5, nil},
		{"stream, nothing read", func() io.Reader { return buckettest.Stream(data) }, 3, 0, nil},
		{"stream, partly read", func() io.Reader { return buckettest.Stream(data) }, 3, 5, bucket.ErrNotRewindable},
		{"too many failures", func() io.Reader { return bytes.NewReader(data) }, 10, 5, errFlaky},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inner := newDir(t)
			var events []retry.Event
			b := retry.New(&flaky{Bucket: inner, failures: tc.failures, consume: tc.consume}, retry.Options{
				Policy: fast, OnRetry: func(e retry.Event) { events = append(events, e) },
			})
			_, err := b.Put(ctx, "k", tc.body(), int64(len(data)), bucket.PutOptions{})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("put = %v; want %v", err, tc.wantErr)
				}
				buckettest.CheckMissing(t, inner, "k")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			buckettest.CheckContent(t, inner, "k", data)
			if len(events) != tc.failures || events[0].Op != "put" || !strings.HasSuffix(events[0].URL, "/k") {
				t.Errorf("retry events %+v; want %d for put of k", events, tc.failures)
			}
		})
	}
	t.Run("stat", func(t *testing.T) {
		inner := newDir(t)
		buckettest.Put(t, inner, "k", data, bucket.PutOptions{})
		b := retry.New(&flaky{Bucket: inner, failures: 2}, retry.Options{Policy: fast})
		if _, err := b.Stat(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		// Not found is an answer, not a failure.
		f := &flaky{Bucket: inner}
		if _, err := retry.New(f, retry.Options{Policy: fast}).Stat(ctx, "missing"); !errors.Is(err, bucket.ErrNotFound) || f.calls["stat"] != 1 {
			t.Errorf("stat missing: %v after %d calls; want ErrNotFound after 1", err, f.calls["stat"])
		}
	})
}

// TestRetryAfter: a server's Retry-After replaces the drawn wait, capped
// by the policy's Max, and the events say so.
func TestRetryAfter(t *testing.T) {
	ctx := context.Background()
	inner := newDir(t)
	buckettest.Put(t, inner, "k", []byte("x"), bucket.PutOptions{})
	for _, tc := range []struct{ delay, want time.Duration }{
		{15 * time.Millisecond, 15 * time.Millisecond},
		{time.Hour, 40 * time.Millisecond},
	} {
		f := &flaky{Bucket: inner, failures: 2, err: &bucket.Error{Op: "stat", URL: "s3://b/k", Err: &bucket.ServerError{StatusCode: 503, Delay: tc.delay}}}
		var events []retry.Event
		b := retry.New(f, retry.Options{
			Policy:  policy.Policy{Initial: time.Millisecond, Max: 40 * time.Millisecond},
			OnRetry: func(e retry.Event) { events = append(events, e) },
			Host:    "s3.example.com",
		})
		if _, err := b.Stat(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if len(events) != 2 {
			t.Fatalf("events %+v; want 2", events)
		}
		for _, e := range events {
			if !e.RetryAfter || e.Wait != tc.want || e.Host != "s3.example.com" || e.Op != "stat" || !strings.HasSuffix(e.URL, "/k") || e.Reason == "" {
				t.Errorf("Retry-After %s: event %+v; want a wait of %s", tc.delay, e, tc.want)
			}
		}
	}
}

// TestHashObject: the decorators forward HashObject to a directory
// bucket, and answer errors.ErrUnsupported for a bucket that cannot.
func TestHashObject(t *testing.T) {
	ctx := context.Background()
	inner, err := dir.NewNixCache(t.TempDir() + "/cache")
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("no record kept")
	buckettest.Put(t, inner, "k", data, bucket.PutOptions{})
	b := retry.New(limit.New(inner, 2), retry.Options{Policy: fast})
	if _, ok := b.(bucket.Hasher); !ok {
		t.Fatal("the decorators do not implement bucket.Hasher")
	}
	if st, err := bucket.StatSHA256(ctx, b, "k"); err != nil || st.SHA256 != buckettest.SHA256(data) {
		t.Errorf("StatSHA256 through the decorators = %+v, %v", st, err)
	}
	// A bucket that is not a Hasher (flaky hides dir's methods but the
	// interface's).
	opaque := retry.New(limit.New(&flaky{Bucket: inner}, 2), retry.Options{Policy: fast})
	if _, err := bucket.HashObject(ctx, opaque, "k"); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("HashObject of an opaque bucket: %v; want errors.ErrUnsupported", err)
	}
	if st, err := bucket.StatSHA256(ctx, opaque, "k"); err != nil || st.SHA256 != "" || st.Size != int64(len(data)) {
		t.Errorf("StatSHA256 of an opaque bucket = %+v, %v; want the size and no sha256", st, err)
	}
}

// failingParts fails PutResumable with a transient error after every
// two parts, as a flaky network would.
type failingParts struct {
	bucket.Bucket
	attempts int
}

func (f *failingParts) PutResumable(ctx context.Context, key string, body io.ReaderAt, size int64, opts bucket.ResumableOptions) (bucket.ObjectInfo, error) {
	f.attempts++
	n := 0
	onPart := opts.OnPart
	opts.OnPart = func(p bucket.Part) error {
		if err := onPart(p); err != nil {
			return err
		}
		if n++; n == 2 {
			return errFlaky
		}
		return nil
	}
	return f.Bucket.PutResumable(ctx, key, body, size, opts)
}

func TestPutResumableContinues(t *testing.T) {
	inner := newDir(t)
	f := &failingParts{Bucket: inner}
	b := retry.New(f, retry.Options{Policy: policy.Policy{Attempts: 10, Initial: time.Millisecond}})
	data := buckettest.Data(1, 7*bucket.MinPartSize)
	var sent []int
	starts := 0
	_, err := b.PutResumable(context.Background(), "big", bytes.NewReader(data), int64(len(data)), bucket.ResumableOptions{
		State:   bucket.UploadState{PartSize: bucket.MinPartSize},
		OnStart: func(bucket.UploadState) error { starts++; return nil },
		OnPart:  func(p bucket.Part) error { sent = append(sent, p.Number); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if starts != 1 || f.attempts != 4 || len(sent) != 7 {
		t.Errorf("%d starts, %d attempts, parts sent %v; want 1 start, 4 attempts, each of the 7 parts once", starts, f.attempts, sent)
	}
	buckettest.CheckContent(t, inner, "big", data)
}

// TestFaultInjection puts a proxy that resets connections and answers 503
// in front of a real MinIO; uploads through the retry decorator still end
// complete and correct.
func TestFaultInjection(t *testing.T) {
	m := testenv.StartMinIO(t)
	ctx := context.Background()
	m.MakeBucket(t, "faults", false)
	p := buckettest.NewProxy(t, m.Endpoint)
	newS3 := func(partAttempts int) bucket.Bucket {
		b, err := s3.New(s3.Config{
			Bucket: "faults", Endpoint: p.Addr, Scheme: "http", AddressingStyle: "path",
			Credentials: &s3.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: credentials.Secret(m.SecretKey)},
			PartSize:    bucket.MinPartSize, PartConcurrency: 2,
			Retry: policy.Policy{Attempts: partAttempts, Initial: time.Millisecond},
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	direct, err := s3.New(s3.Config{Bucket: "faults", Endpoint: m.Endpoint, Scheme: "http",
		Credentials: &s3.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: credentials.Secret(m.SecretKey)}})
	if err != nil {
		t.Fatal(err)
	}
	small := []byte("a small object\n")
	big := buckettest.Data(9, 3*bucket.MinPartSize+777)
	faults := []struct {
		name  string
		fault buckettest.Fault
	}{
		{"503", buckettest.Fault503},
		{"reset", buckettest.FaultReset},
		{"reset mid-body", buckettest.FaultResetMidBody},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			// The S3 bucket does not retry itself: every retry is the
			// decorator's, which restarts the whole Put from the rewound
			// body.
			retries := 0
			b := retry.New(newS3(1), retry.Options{Policy: fast, OnRetry: func(retry.Event) { retries++ }})
			for _, obj := range []struct {
				key  string
				data []byte
			}{{"small-" + f.name, small}, {"big-" + f.name, big}} {
				p.Fail(3, f.fault)
				if _, err := b.Put(ctx, obj.key, bytes.NewReader(obj.data), int64(len(obj.data)), bucket.PutOptions{SHA256: buckettest.SHA256(obj.data)}); err != nil {
					t.Fatalf("put %s: %v", obj.key, err)
				}
				if p.Pending() != 0 {
					t.Errorf("%d faults were not injected", p.Pending())
				}
				buckettest.CheckContent(t, direct, obj.key, obj.data)
				if st, err := direct.Stat(ctx, obj.key); err != nil || st.SHA256 != buckettest.SHA256(obj.data) {
					t.Errorf("stat %s = %+v, %v", obj.key, st, err)
				}
			}
			if retries < 6 {
				t.Errorf("%d retries; want at least 6 (3 faults per object)", retries)
			}
			// Reads and deletes are retried too.
			p.Fail(2, f.fault)
			if _, err := b.Stat(ctx, "small-"+f.name); err != nil {
				t.Errorf("stat: %v", err)
			}
			p.Fail(2, f.fault)
			if rc, err := b.Get(ctx, "small-"+f.name); err != nil {
				t.Errorf("get: %v", err)
			} else {
				rc.Close()
			}
			p.Fail(2, f.fault)
			if _, err := b.List(ctx, "", bucket.ListOptions{Recursive: true}); err != nil {
				t.Errorf("list: %v", err)
			}
		})
	}
	t.Run("part retries", func(t *testing.T) {
		// With its own part retries, the S3 bucket survives faults in
		// the middle of a multipart stream without starting over.
		b := newS3(5)
		p.Reset()
		pr, pw := io.Pipe()
		go func() {
			pw.Write(big[:bucket.MinPartSize+10])
			p.Fail(3, buckettest.FaultResetMidBody)
			pw.Write(big[bucket.MinPartSize+10:])
			pw.Close()
		}()
		if _, err := b.Put(ctx, "stream-faults", pr, -1, bucket.PutOptions{SHA256: buckettest.SHA256(big)}); err != nil {
			t.Fatal(err)
		}
		buckettest.CheckContent(t, direct, "stream-faults", big)
	})
	t.Run("stream not rewindable", func(t *testing.T) {
		// A plain stream cannot be sent again: the decorator fails with
		// ErrNotRewindable, and no truncated object appears.
		b := retry.New(newS3(1), retry.Options{Policy: fast})
		p.Fail(1, buckettest.FaultResetMidBody)
		_, err := b.Put(ctx, "stream-lost", buckettest.Stream(big), -1, bucket.PutOptions{})
		if !errors.Is(err, bucket.ErrNotRewindable) {
			t.Fatalf("put = %v; want ErrNotRewindable", err)
		}
		p.Fail(1, buckettest.FaultResetMidBody)
		_, err = b.Put(ctx, "stream-lost", buckettest.Stream(small), -1, bucket.PutOptions{})
		if !errors.Is(err, bucket.ErrNotRewindable) {
			t.Fatalf("put small = %v; want ErrNotRewindable", err)
		}
		buckettest.CheckMissing(t, direct, "stream-lost")
		// The same stream through bucket.Reopen is retried.
		p.Fail(2, buckettest.FaultResetMidBody)
		body := bucket.Reopen(func() (io.ReadCloser, error) { return io.NopCloser(buckettest.Stream(big)), nil })
		if _, err := b.Put(ctx, "stream-lost", body, -1, bucket.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		buckettest.CheckContent(t, direct, "stream-lost", big)
	})
	t.Run("resumable", func(t *testing.T) {
		b := retry.New(newS3(1), retry.Options{Policy: fast})
		var sent []int
		p.Fail(1, buckettest.Fault503) // create
		_, err := b.PutResumable(ctx, "resumable", bytes.NewReader(big), int64(len(big)), bucket.ResumableOptions{
			OnPart: func(pt bucket.Part) error {
				sent = append(sent, pt.Number)
				if len(sent) == 1 {
					p.Fail(2, buckettest.FaultResetMidBody)
				}
				return nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(sent) != 4 {
			t.Errorf("parts reported %v; want each of 4 once", sent)
		}
		buckettest.CheckContent(t, direct, "resumable", big)
	})
}
