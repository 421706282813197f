package s3_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/releng-project/releng/internal/bucket"
	"github.com/releng-project/releng/internal/bucket/buckettest"
	"github.com/releng-project/releng/internal/bucket/s3"
	"github.com/releng-project/releng/internal/testenv"
)

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// violations lists what in r Garage, older MinIO or R2 would reject:
// request checksums, trailers, aws-chunked bodies, streaming signatures.
func violations(r buckettest.Request) []string {
	var v []string
	for k, vals := range r.Header {
		lk := strings.ToLower(k)
		switch {
		case strings.HasPrefix(lk, "x-amz-checksum"), lk == "x-amz-trailer", lk == "x-amz-sdk-checksum-algorithm", lk == "x-amz-decoded-content-length":
			v = append(v, k+": "+strings.Join(vals, ","))
		}
	}
	if sha := r.Header.Get("X-Amz-Content-Sha256"); strings.HasPrefix(sha, "STREAMING-") {
		v = append(v, "X-Amz-Content-Sha256: "+sha)
	}
	if ce := r.Header.Get("Content-Encoding"); strings.Contains(ce, "aws-chunked") {
		v = append(v, "Content-Encoding: "+ce)
	}
	if len(r.TransferEncoding) > 0 {
		v = append(v, "Transfer-Encoding: "+strings.Join(r.TransferEncoding, ","))
	}
	if len(r.Trailer) > 0 {
		v = append(v, "HTTP trailers")
	}
	return v
}

// TestNoChecksumTrailers sends every kind of request through a recording
// proxy in front of MinIO and checks that none carries what S3-compatible
// servers reject, and that every body is signed with its SHA-256. A
// control shows that minio-go's defaults do send such requests, so the
// check would catch them.
func TestNoChecksumTrailers(t *testing.T) {
	m := testenv.StartMinIO(t)
	p := buckettest.NewProxy(t, m.Endpoint)
	ctx := context.Background()
	name := newBucketName()
	m.MakeBucket(t, name, false)

	t.Run("control", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			opts minio.Options
			put  minio.PutObjectOptions
		}{
			{"defaults", minio.Options{}, minio.PutObjectOptions{}},
			{"trailing headers", minio.Options{TrailingHeaders: true}, minio.PutObjectOptions{DisableContentSha256: true}},
		} {
			tc.opts.Creds = miniocreds.NewStaticV4(m.AccessKey, m.SecretKey, "")
			tc.opts.Region = "us-east-1"
			c, err := minio.New(p.Addr, &tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			p.Reset()
			data := []byte("control object")
			if _, err := c.PutObject(ctx, name, "control", bytes.NewReader(data), int64(len(data)), tc.put); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			var found []string
			for _, r := range p.Requests() {
				found = append(found, violations(r)...)
			}
			if len(found) == 0 {
				t.Errorf("minio-go with %s sent nothing the check catches; the check is blind", tc.name)
			}
			t.Logf("minio-go v7.4.1 with %s sends: %v", tc.name, found)
		}
	})

	b, err := s3.New(s3.Config{Bucket: name, Prefix: "p", Endpoint: p.Addr, Scheme: "http", Credentials: creds(m), PartSize: bucket.MinPartSize, PartConcurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	p.Reset()
	small := []byte("StorePath: /nix/store/x\n")
	big := buckettest.Data(1, 2*bucket.MinPartSize+99)
	buckettest.Put(t, b, "x.narinfo", small, bucket.PutOptions{ContentType: "text/x-nix-narinfo", ContentEncoding: "zstd"})
	buckettest.Put(t, b, "big.tar.xz", big, bucket.PutOptions{SHA256: buckettest.SHA256(big)})
	if _, err := b.Put(ctx, "nar/stream.nar.zst", buckettest.Stream(big), -1, bucket.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	crash := errors.New("crash")
	var st bucket.UploadState
	_, err = b.PutResumable(ctx, "resumed", bytes.NewReader(big), int64(len(big)), bucket.ResumableOptions{
		OnStart: func(s bucket.UploadState) error { st = s; return nil },
		OnPart:  func(bucket.Part) error { return crash },
	})
	if !errors.Is(err, crash) {
		t.Fatal(err)
	}
	if _, err := b.PutResumable(ctx, "resumed", bytes.NewReader(big), int64(len(big)), bucket.ResumableOptions{State: st}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutResumable(ctx, "abandoned", bytes.NewReader(big), int64(len(big)), bucket.ResumableOptions{
		OnStart: func(s bucket.UploadState) error { st = s; return nil },
		OnPart:  func(bucket.Part) error { return crash },
	}); !errors.Is(err, crash) {
		t.Fatal(err)
	}
	if err := b.AbortUpload(ctx, "abandoned", st.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, "x.narinfo"); err != nil {
		t.Fatal(err)
	}
	buckettest.CheckContent(t, b, "resumed", big)
	buckettest.CheckContent(t, b, "nar/stream.nar.zst", big)
	if _, err := b.List(ctx, "", bucket.ListOptions{Recursive: true, SHA256: true}); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "x.narinfo"); err != nil {
		t.Fatal(err)
	}

	reqs := p.Requests()
	kinds := map[string]int{}
	for _, r := range reqs {
		kinds[requestKind(r.Method, r.RawQuery)]++
		if v := violations(r); len(v) > 0 {
			t.Errorf("%s %s?%s sends %v", r.Method, r.Path, r.RawQuery, v)
		}
		if r.Method == "PUT" && r.ContentLength > 0 && !hex64.MatchString(r.Header.Get("X-Amz-Content-Sha256")) {
			t.Errorf("%s %s?%s: X-Amz-Content-Sha256 %q is not the payload's SHA-256", r.Method, r.Path, r.RawQuery, r.Header.Get("X-Amz-Content-Sha256"))
		}
	}
	for _, k := range []string{"PUT", "PUT part", "POST create-multipart", "POST complete", "GET list-parts/abort", "DELETE list-parts/abort", "HEAD", "GET", "DELETE"} {
		if kinds[k] == 0 {
			t.Errorf("no %s request was checked (saw %v)", k, kinds)
		}
	}
	t.Logf("checked %d requests: %v", len(reqs), kinds)
}

// requestKind names an S3 request by its method and query.
func requestKind(method, query string) string {
	switch {
	case strings.Contains(query, "partNumber="):
		return method + " part"
	case strings.Contains(query, "uploads"):
		return method + " create-multipart"
	case strings.Contains(query, "uploadId=") && method == "POST":
		return method + " complete"
	case strings.Contains(query, "uploadId="):
		return method + " list-parts/abort"
	}
	return method
}

// recorder is an HTTP transport that notes each request's kind and
// x-amz-content-sha256 before sending it on.
type recorder struct {
	inner http.RoundTripper
	mu    sync.Mutex
	seen  []buckettest.Request
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.seen = append(r.seen, buckettest.Request{Method: req.Method, Path: req.URL.Path, RawQuery: req.URL.RawQuery,
		Header: req.Header.Clone(), Trailer: req.Trailer, ContentLength: req.ContentLength, TransferEncoding: req.TransferEncoding})
	r.mu.Unlock()
	return r.inner.RoundTrip(req)
}

// TestPayloadHashOverTLS: over HTTPS (a real MinIO with a test
// certificate) the parts of multipart uploads go as UNSIGNED-PAYLOAD, so
// their bytes are hashed once, and still nothing S3-compatible servers
// reject is sent; a single PUT signs the payload's SHA-256, which is the
// object's. The objects read back byte for byte with the right SHA-256.
// (Over plain HTTP every payload is signed: TestNoChecksumTrailers.)
func TestPayloadHashOverTLS(t *testing.T) {
	m := testenv.StartMinIOTLS(t)
	ctx := context.Background()
	name := newBucketName()
	m.MakeBucket(t, name, false)
	rec := &recorder{inner: m.Transport()}
	b, err := s3.New(s3.Config{Bucket: name, Endpoint: m.Endpoint, Scheme: "https", Credentials: creds(m),
		PartSize: bucket.MinPartSize, PartConcurrency: 2, Transport: rec})
	if err != nil {
		t.Fatal(err)
	}
	small := []byte("StorePath: /nix/store/x\n")
	big := buckettest.Data(2, 2*bucket.MinPartSize+99)
	buckettest.Put(t, b, "x.narinfo", small, bucket.PutOptions{})
	info, err := b.Put(ctx, "nar/stream.nar.zst", buckettest.Stream(big), -1, bucket.PutOptions{SizeHint: int64(len(big))})
	if err != nil {
		t.Fatal(err)
	}
	if info.SHA256 != buckettest.SHA256(big) {
		t.Errorf("Put reported SHA-256 %s, want %s", info.SHA256, buckettest.SHA256(big))
	}
	if _, err := b.PutResumable(ctx, "resumed", bytes.NewReader(big), int64(len(big)), bucket.ResumableOptions{}); err != nil {
		t.Fatal(err)
	}
	buckettest.CheckContent(t, b, "x.narinfo", small)
	buckettest.CheckContent(t, b, "nar/stream.nar.zst", big)
	buckettest.CheckContent(t, b, "resumed", big)

	parts := 0
	for _, r := range rec.seen {
		if v := violations(r); len(v) > 0 {
			t.Errorf("%s %s?%s sends %v", r.Method, r.Path, r.RawQuery, v)
		}
		sha := r.Header.Get("X-Amz-Content-Sha256")
		switch kind := requestKind(r.Method, r.RawQuery); kind {
		case "PUT part":
			parts++
			if sha != "UNSIGNED-PAYLOAD" {
				t.Errorf("part %s?%s: X-Amz-Content-Sha256 %q, want UNSIGNED-PAYLOAD over TLS", r.Path, r.RawQuery, sha)
			}
		case "PUT":
			if want := buckettest.SHA256(small); sha != want {
				t.Errorf("single PUT %s: X-Amz-Content-Sha256 %q, want the payload's SHA-256 %s", r.Path, sha, want)
			}
		}
	}
	if parts != 6 {
		t.Errorf("saw %d parts, want 6 (two uploads of 3)", parts)
	}
}
