package httpstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/bucket/buckettest"
	"github.com/releng-project/releng/internal/bucket/httpstore"
	"github.com/releng-project/releng/internal/bucket/location"
	"github.com/releng-project/releng/internal/bucket/s3"
	"github.com/releng-project/releng/internal/credentials"
	"github.com/releng-project/releng/internal/retry"
	"github.com/releng-project/releng/internal/testenv"
)

var seq atomic.Int64

// pairs returns, for each call, a new MinIO bucket readable anonymously
// (as a binary cache served over HTTP is) and an S3 writer and an HTTP
// reader on it; through location.Open (with its decorators) when
// decorated.
func pairs(m *testenv.MinIO, decorated bool) func(t *testing.T) (bucket.Bucket, bucket.Bucket) {
	return func(t *testing.T) (bucket.Bucket, bucket.Bucket) {
		name := fmt.Sprintf("releng-http-%d", seq.Add(1))
		m.MakeBucket(t, name, true)
		w, err := s3.New(s3.Config{
			Bucket: name, Endpoint: m.Endpoint, Scheme: "http", AddressingStyle: "path",
			Credentials: &s3.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: credentials.Secret(m.SecretKey)},
			PartSize:    bucket.MinPartSize,
		})
		if err != nil {
			t.Fatal(err)
		}
		url := m.URL() + "/" + name + "/"
		var r bucket.Bucket
		if decorated {
			r, err = location.Open(url, location.Options{Concurrency: 4})
		} else {
			r, err = httpstore.New(httpstore.Config{URL: url})
		}
		if err != nil {
			t.Fatal(err)
		}
		return w, r
	}
}

// TestConformance runs the read-only suite against MinIO's anonymous HTTP
// endpoint, the way stock Nix reads a binary cache.
func TestConformance(t *testing.T) {
	m := testenv.StartMinIO(t)
	t.Run("plain", func(t *testing.T) { buckettest.RunReadOnly(t, pairs(m, false)) })
	t.Run("opened", func(t *testing.T) { buckettest.RunReadOnly(t, pairs(m, true)) })
}

// TestRecordedSHA256: the SHA-256 releng's S3 uploads record comes back
// over HTTP too.
func TestRecordedSHA256(t *testing.T) {
	m := testenv.StartMinIO(t)
	w, r := pairs(m, false)(t)
	data := []byte("recorded")
	buckettest.Put(t, w, "k", data, bucket.PutOptions{})
	st, err := r.Stat(context.Background(), "k")
	if err != nil || st.SHA256 != buckettest.SHA256(data) {
		t.Errorf("stat = %+v, %v; want sha256 %s", st, err, buckettest.SHA256(data))
	}
}

func TestParseURL(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{in: "https://cache.example.org", want: "https://cache.example.org"},
		{in: "https://cache.example.org/", want: "https://cache.example.org"},
		{in: "http://127.0.0.1:9000/bucket/pre%20fix//", want: "http://127.0.0.1:9000/bucket/pre%20fix"},
		{in: "ftp://x", err: "want http(s)://"},
		{in: "https://user:secret@x", err: "credentials do not belong"},
		{in: "https:///path", err: "no host"},
		{in: "https://x?priority=30", err: "no ?parameters"},
		{in: "https://x#frag", err: "no ?parameters"},
	}
	for _, tc := range tests {
		u, err := httpstore.ParseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "secret") {
				t.Errorf("ParseURL(%q) = %v, %v; want error containing %q (without the secret)", tc.in, u, err, tc.err)
			}
			continue
		}
		if err != nil || u.String() != tc.want {
			t.Errorf("ParseURL(%q) = %v, %v; want %s", tc.in, u, err, tc.want)
		}
	}
}

// TestStatusCodes: how answers map to errors, with a server that gives
// each in turn.
func TestStatusCodes(t *testing.T) {
	var status atomic.Int64
	var lastPath atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lastPath.Store(r.URL.EscapedPath())
		if r.Header.Get("Accept-Encoding") != "" {
			t.Errorf("request asks for Accept-Encoding %q: a compressed object would be decoded", r.Header.Get("Accept-Encoding"))
		}
		switch s := int(status.Load()); s {
		case 200:
			w.Header().Set("Content-Type", "text/x-nix-narinfo")
			w.Header().Set("Content-Encoding", "zstd")
			w.Header().Set("Last-Modified", "Sat, 01 Mar 2025 12:00:00 GMT")
			w.Header().Set("X-Amz-Meta-Sha256", "NOT-HEX")
			w.Write([]byte("body"))
		case 429, 503:
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(s)
		default:
			w.WriteHeader(s)
		}
	}))
	defer srv.Close()
	b, err := httpstore.New(httpstore.Config{URL: srv.URL + "/cache"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	status.Store(200)
	st, err := b.Stat(ctx, "dir/a b+c.narinfo")
	if err != nil {
		t.Fatal(err)
	}
	if p := lastPath.Load(); p != "/cache/dir/a%20b%2Bc.narinfo" {
		t.Errorf("requested %s", p)
	}
	if !st.ModTime.Equal(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("mod time %s", st.ModTime)
	}
	st.ModTime = time.Time{}
	want := bucket.ObjectInfo{Key: "dir/a b+c.narinfo", Size: 4, ContentType: "text/x-nix-narinfo", ContentEncoding: "zstd"}
	if st != want {
		t.Errorf("stat = %+v; want %+v (a malformed sha256 header ignored)", st, want)
	}
	tests := []struct {
		status    int
		is        error
		transient bool
		delay     time.Duration
	}{
		{404, bucket.ErrNotFound, false, 0},
		{410, bucket.ErrNotFound, false, 0},
		{403, bucket.ErrForbidden, false, 0},
		{401, nil, false, 0},
		{500, nil, true, 0},
		{503, nil, true, 7 * time.Second},
		{429, nil, true, 7 * time.Second},
	}
	for _, tc := range tests {
		status.Store(int64(tc.status))
		_, serr := b.Stat(ctx, "k")
		rc, gerr := b.Get(ctx, "k")
		if rc != nil {
			rc.Close()
		}
		for _, err := range []error{serr, gerr} {
			if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || bucket.IsTransient(err) != tc.transient || retry.After(err) != tc.delay {
				t.Errorf("%d: %v (transient %v, retry after %s); want %v, transient %v, retry after %s", tc.status, err, bucket.IsTransient(err), retry.After(err), tc.is, tc.transient, tc.delay)
			}
			if err != nil && !strings.Contains(err.Error(), srv.URL+"/cache/k") {
				t.Errorf("%d: error %q does not name the object", tc.status, err)
			}
		}
	}
}

// TestRetriedWhenOpened: through location.Open, a 503 with Retry-After is
// retried after the wait the server asked for (capped by the policy).
func TestRetriedWhenOpened(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(503)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	var events []retry.Event
	b, err := location.Open(srv.URL, location.Options{
		Retry:   retry.Policy{Initial: time.Millisecond, Max: 20 * time.Millisecond},
		OnRetry: func(e retry.Event) { events = append(events, e) },
	})
	if err != nil {
		t.Fatal(err)
	}
	buckettest.CheckContent(t, b, "k", []byte("ok"))
	if len(events) != 2 {
		t.Fatalf("events %+v; want 2", events)
	}
	for _, e := range events {
		if !e.RetryAfter || e.Wait != 20*time.Millisecond || e.Op != "get" || e.URL != srv.URL+"/k" || e.Host != strings.TrimPrefix(srv.URL, "http://") {
			t.Errorf("event %+v", e)
		}
	}
}
